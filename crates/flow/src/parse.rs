//! From the YAML tree to a [`Workflow`], field by field, every problem kept with its position.

use serde_json::Value;

use crate::model::*;
use crate::reader::{Obj, Problems};
use crate::yaml::{Node, NodeKind};

const COMMON: &[&str] = &[
    "id",
    "type",
    "log",
    "transform",
    "transition",
    "catch",
    "timeout",
    "metadata",
];

/// The delay between retries when `retries` gives none (Direktiv's).
const DEFAULT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(5);

pub fn workflow(root: &Node, p: &mut Problems) -> Option<Workflow> {
    let top = Obj::new(
        root,
        "the flow",
        &[
            "direktiv_api",
            "id",
            "url",
            "version",
            "description",
            "functions",
            "start",
            "states",
            "timeouts",
        ],
        p,
    )?;
    if let Some(api) = top.str("direktiv_api", p) {
        if api != "workflow/v1" {
            let pos = top.get("direktiv_api").map_or(top.pos, |n| n.pos);
            p.add(
                pos,
                format!("direktiv_api is '{api}'; a flow must say 'workflow/v1'"),
            );
        }
    }
    let functions = top
        .list("functions", p)
        .iter()
        .filter_map(|n| function(n, p))
        .collect();
    let start = match top.get("start") {
        Some(node) => start(node, p),
        None => Some(Start {
            kind: StartKind::Default,
            state: None,
        }),
    };
    let states: Vec<State> = top
        .req_list("states", p)
        .iter()
        .filter_map(|n| state(n, p))
        .collect();
    let timeouts = match top.get("timeouts") {
        None => Timeouts::default(),
        Some(node) => match Obj::new(node, "timeouts", &["interrupt", "kill"], p) {
            None => Timeouts::default(),
            Some(o) => Timeouts {
                interrupt: o.duration("interrupt", p),
                kill: o.duration("kill", p),
            },
        },
    };
    Some(Workflow {
        description: top.str("description", p),
        functions,
        start: start?,
        states,
        timeouts,
    })
}

fn function(node: &Node, p: &mut Problems) -> Option<FunctionDef> {
    let probe = Obj::new(
        node,
        "a function",
        &[
            "id", "type", "image", "cmd", "size", "envs", "service", "workflow",
        ],
        &mut Problems::default(),
    )?;
    let id = probe
        .get("id")
        .and_then(Node::as_str)
        .unwrap_or("?")
        .to_string();
    let what = format!("function '{id}'");
    let ty = probe.get("type").and_then(Node::as_str).unwrap_or("");
    let allowed: &[&str] = match ty {
        "knative-workflow" | "reusable" => &["id", "type", "image", "cmd", "size", "envs"],
        "knative-namespace" | "knative-global" => &["id", "type", "service"],
        "subflow" => &["id", "type", "workflow"],
        _ => &[
            "id", "type", "image", "cmd", "size", "envs", "service", "workflow",
        ],
    };
    let o = Obj::new(node, &what, allowed, p)?;
    let id = o.req_str("id", p);
    let ty = o.req_str("type", p)?;
    let kind = match ty.as_str() {
        "knative-workflow" | "reusable" => FunctionKind::Workflow {
            image: o.req_str("image", p)?,
            cmd: o.str("cmd", p),
            envs: envs(&o, p),
            size: o.str("size", p).inspect(|s| {
                if !matches!(s.as_str(), "small" | "medium" | "large") {
                    let pos = o.get("size").map_or(o.pos, |n| n.pos);
                    p.add(
                        pos,
                        format!("size of {what} is '{s}'; use small, medium or large"),
                    );
                }
            }),
        },
        "knative-namespace" => FunctionKind::Namespace {
            service: o.req_str("service", p)?,
        },
        "knative-global" => FunctionKind::Global {
            service: o.req_str("service", p)?,
        },
        "subflow" => FunctionKind::Subflow {
            workflow: o.req_str("workflow", p)?,
        },
        other => {
            let pos = o.get("type").map_or(o.pos, |n| n.pos);
            p.add(pos, format!("{what} has unknown type '{other}'; use knative-workflow (or reusable), knative-namespace, knative-global or subflow"));
            return None;
        }
    };
    Some(FunctionDef {
        id: id?,
        pos: o.pos,
        kind,
    })
}

fn envs(o: &Obj, p: &mut Problems) -> Vec<(String, String)> {
    let Some(node) = o.get("envs") else {
        return Vec::new();
    };
    match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .map(|(k, v)| (k.name.clone(), scalar_text(v)))
            .collect(),
        NodeKind::Seq(items) => items
            .iter()
            .filter_map(|item| {
                let e = Obj::new(item, "an env entry", &["name", "value"], p)?;
                Some((e.req_str("name", p)?, e.str("value", p).unwrap_or_default()))
            })
            .collect(),
        NodeKind::Scalar { .. } => {
            p.add(
                node.pos,
                format!(
                    "envs of {} must be a list of name/value or a mapping",
                    o.what
                ),
            );
            Vec::new()
        }
    }
}

fn scalar_text(node: &Node) -> String {
    match node.to_json() {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn start(node: &Node, p: &mut Problems) -> Option<Start> {
    let probe = Obj::new(
        node,
        "start",
        &[
            "type",
            "state",
            "cron",
            "event",
            "events",
            "lifespan",
            "correlate",
        ],
        &mut Problems::default(),
    )?;
    let ty = probe
        .get("type")
        .and_then(Node::as_str)
        .unwrap_or("default")
        .to_string();
    let allowed: &[&str] = match ty.as_str() {
        "default" => &["type", "state"],
        "scheduled" => &["type", "state", "cron"],
        "event" => &["type", "state", "event"],
        "eventsXor" => &["type", "state", "events"],
        "eventsAnd" => &["type", "state", "events", "lifespan", "correlate"],
        _ => &[
            "type",
            "state",
            "cron",
            "event",
            "events",
            "lifespan",
            "correlate",
        ],
    };
    let o = Obj::new(node, "start", allowed, p)?;
    let kind = match ty.as_str() {
        "default" => StartKind::Default,
        "scheduled" => {
            let cron = o.req_str("cron", p)?;
            if let Err(e) = faasbox_events::CronSchedule::parse(&cron) {
                p.add(o.get("cron").map_or(o.pos, |n| n.pos), e.to_string());
            }
            StartKind::Scheduled { cron }
        }
        "event" => StartKind::Event {
            event: event_filter(o.get("event"), &o, p)?,
        },
        "eventsXor" => StartKind::EventsXor {
            events: event_list(&o, p),
        },
        "eventsAnd" => StartKind::EventsAnd {
            events: event_list(&o, p),
            lifespan: o.duration("lifespan", p),
        },
        other => {
            let pos = o.get("type").map_or(o.pos, |n| n.pos);
            p.add(pos, format!("unknown start type '{other}'; use default, scheduled, event, eventsXor or eventsAnd"));
            return None;
        }
    };
    Some(Start {
        kind,
        state: o.str("state", p),
    })
}

fn event_list(o: &Obj, p: &mut Problems) -> Vec<EventFilter> {
    o.req_list("events", p)
        .iter()
        .filter_map(|n| event_filter(Some(n), o, p))
        .collect()
}

fn event_filter(node: Option<&Node>, parent: &Obj, p: &mut Problems) -> Option<EventFilter> {
    let Some(node) = node else {
        p.add(
            parent.pos,
            format!("{} needs 'event' with a 'type'", parent.what),
        );
        return None;
    };
    let o = Obj::new(node, "an event", &["type", "context"], p)?;
    let context = match o.json("context") {
        None => Default::default(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            p.add(
                o.get("context").map_or(o.pos, |n| n.pos),
                "an event's context must be a mapping",
            );
            Default::default()
        }
    };
    Some(EventFilter {
        event_type: o.req_str("type", p)?,
        context,
    })
}

fn state(node: &Node, p: &mut Problems) -> Option<State> {
    let probe = Obj::new(node, "a state", &[], &mut Problems::default())?;
    let id = probe
        .get("id")
        .and_then(Node::as_str)
        .unwrap_or("?")
        .to_string();
    let what = format!("state '{id}'");
    let Some(ty_node) = probe.get("type") else {
        p.add(node.pos, format!("{what} needs 'type'"));
        return None;
    };
    let ty = ty_node.as_str().unwrap_or("");
    let own: &[&str] = match ty {
        "action" => &["action", "async"],
        "noop" => &[],
        "switch" => &["conditions", "defaultTransition", "defaultTransform"],
        "delay" => &["duration"],
        "error" => &["error", "message", "args"],
        "foreach" => &["array", "action"],
        "parallel" => &["actions", "mode"],
        "validate" => &["subject", "schema"],
        "getter" | "setter" => &["variables"],
        "consumeEvent" => &["event"],
        "generateEvent" => &["event", "delay"],
        "eventsAnd" | "eventsXor" => &["events"],
        other => {
            p.add(
                ty_node.pos,
                format!("{what} has unknown type '{other}'; use action, noop, switch, delay, error, foreach, parallel, validate, getter, setter, consumeEvent, generateEvent, eventsAnd or eventsXor"),
            );
            return None;
        }
    };
    let allowed: Vec<&str> = COMMON.iter().chain(own).copied().collect();
    let o = Obj::new(node, &what, &allowed, p)?;
    let id = o.req_str("id", p);
    let kind = state_kind(ty, &o, p);
    let catch = o.each(
        "catch",
        false,
        "a catch",
        &["error", "transition"],
        p,
        |c, p| {
            let error = c.req_str("error", p)?;
            let pos = c.get("error").map_or(c.pos, |n| n.pos);
            Some(Catch {
                error: ErrorPattern::new(&error, pos),
                transition: c.str("transition", p),
            })
        },
    );
    Some(State {
        id: id?,
        pos: o.pos,
        log: o.json("log"),
        transform: o.json("transform"),
        transition: o.str("transition", p),
        catch,
        timeout: o.duration("timeout", p),
        metadata: o.json("metadata"),
        kind: kind?,
    })
}

fn state_kind(ty: &str, o: &Obj, p: &mut Problems) -> Option<StateKind> {
    Some(match ty {
        "action" => StateKind::Action {
            action: action(o.get("action"), o, p)?,
            run_async: o.bool("async", p),
        },
        "noop" => StateKind::Noop,
        "switch" => StateKind::Switch {
            conditions: o.each(
                "conditions",
                true,
                "a condition",
                &["condition", "transition", "transform"],
                p,
                |c, p| {
                    let condition = req_expr(c, "condition", "a jq expression", p);
                    Some(Condition {
                        condition: condition?,
                        transition: c.str("transition", p),
                        transform: c.json("transform"),
                    })
                },
            ),
            default_transition: o.str("defaultTransition", p),
            default_transform: o.json("defaultTransform"),
        },
        "delay" => {
            if o.get("duration").is_none() {
                p.add(
                    o.pos,
                    format!(
                        "{} needs 'duration' (an ISO 8601 duration such as PT5S)",
                        o.what
                    ),
                );
            }
            StateKind::Delay {
                duration: o.duration("duration", p)?,
            }
        }
        "error" => StateKind::Error {
            error: o.req_str("error", p)?,
            message: o.str("message", p).unwrap_or_default(),
            args: o.list("args", p).iter().map(Node::to_json).collect(),
        },
        "foreach" => {
            let array = req_expr(o, "array", "a jq expression giving a list", p);
            let action = action(o.get("action"), o, p);
            StateKind::Foreach {
                array: array?,
                action: action?,
            }
        }
        "parallel" => {
            let actions: Vec<Action> = o
                .req_list("actions", p)
                .iter()
                .filter_map(|n| action(Some(n), o, p))
                .collect();
            let mode = match o.str("mode", p).as_deref() {
                None | Some("and") => ParallelMode::And,
                Some("or") => ParallelMode::Or,
                Some(other) => {
                    p.add(
                        o.get("mode").map_or(o.pos, |n| n.pos),
                        format!("mode of {} is '{other}'; use and or or", o.what),
                    );
                    ParallelMode::And
                }
            };
            StateKind::Parallel { actions, mode }
        }
        "validate" => {
            let schema = o.json("schema");
            match &schema {
                None => p.add(o.pos, format!("{} needs 'schema' (a JSON Schema)", o.what)),
                Some(s) => {
                    if let Err(e) = jsonschema::validator_for(s) {
                        p.add(
                            o.get("schema").map_or(o.pos, |n| n.pos),
                            format!("the schema of {} is not a valid JSON Schema: {e}", o.what),
                        );
                    }
                }
            }
            StateKind::Validate {
                subject: o.json("subject"),
                schema: schema?,
            }
        }
        "getter" => StateKind::Getter {
            variables: o.each(
                "variables",
                true,
                "a variable",
                &["key", "scope", "as"],
                p,
                |v, p| {
                    Some(VarGet {
                        key: v.req_str("key", p)?,
                        scope: scope(v, p)?,
                        as_name: v.str("as", p),
                    })
                },
            ),
        },
        "setter" => StateKind::Setter {
            variables: o.each(
                "variables",
                true,
                "a variable",
                &["key", "scope", "value", "mimeType"],
                p,
                |v, p| {
                    if v.get("value").is_none() {
                        p.add(v.pos, format!("{} needs 'value'", v.what));
                    }
                    Some(VarSet {
                        key: v.req_str("key", p)?,
                        scope: scope(v, p)?,
                        value: v.json("value")?,
                    })
                },
            ),
        },
        "consumeEvent" => StateKind::ConsumeEvent {
            event: event_filter(o.get("event"), o, p)?,
        },
        "generateEvent" => {
            // Checked first, so a bad delay is reported even when the event has problems.
            let delay = o.duration("delay", p);
            let bad_delay = o.get("delay").is_some() && delay.is_none();
            let Some(node) = o.get("event") else {
                p.add(o.pos, format!("{} needs 'event'", o.what));
                return None;
            };
            let e = Obj::new(
                node,
                "a generated event",
                &["type", "source", "data", "datacontenttype", "context"],
                p,
            )?;
            let context = match e.json("context") {
                Some(Value::Object(map)) => map,
                _ => Default::default(),
            };
            let event = GeneratedEvent {
                event_type: e.req_str("type", p)?,
                source: e.req_str("source", p)?,
                data: e.json("data"),
                data_content_type: e.str("datacontenttype", p),
                context,
            };
            if bad_delay {
                return None;
            }
            StateKind::GenerateEvent { event, delay }
        }
        "eventsAnd" => StateKind::EventsAnd {
            events: o
                .req_list("events", p)
                .iter()
                .filter_map(|n| event_filter(Some(n), o, p))
                .collect(),
        },
        "eventsXor" => StateKind::EventsXor {
            events: o.each(
                "events",
                true,
                "an event",
                &["event", "transition", "transform"],
                p,
                |b, p| {
                    Some(XorBranch {
                        event: event_filter(b.get("event"), b, p)?,
                        transition: b.str("transition", p),
                        transform: b.json("transform"),
                    })
                },
            ),
        },
        _ => return None,
    })
}

fn scope(v: &Obj, p: &mut Problems) -> Option<VarScope> {
    let text = v.req_str("scope", p)?;
    let parsed = VarScope::parse(&text);
    if parsed.is_none() {
        p.add(
            v.get("scope").map_or(v.pos, |n| n.pos),
            format!("scope is '{text}'; use namespace, workflow or instance"),
        );
    }
    parsed
}

fn action(node: Option<&Node>, parent: &Obj, p: &mut Problems) -> Option<Action> {
    let Some(node) = node else {
        p.add(parent.pos, format!("{} needs 'action'", parent.what));
        return None;
    };
    let what = format!("the action of {}", parent.what);
    let o = Obj::new(
        node,
        &what,
        &["function", "input", "secrets", "retries", "files"],
        p,
    )?;
    let secrets = o
        .list("secrets", p)
        .iter()
        .filter_map(|n| match n.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                p.add(n.pos, "a secret must be named by a value");
                None
            }
        })
        .collect();
    let retries = o.get("retries").and_then(|n| {
        let r = Obj::new(
            n,
            &format!("retries of {}", parent.what),
            &["max_attempts", "delay", "multiplier", "codes"],
            p,
        )?;
        let max_attempts = match r.json("max_attempts") {
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => {
                n.as_u64().unwrap_or(1) as u32
            }
            _ => {
                p.add(
                    r.pos,
                    "retries need 'max_attempts', a whole number of at least 1",
                );
                1
            }
        };
        // As in Direktiv: a multiplier of 0 (or none) means the delay does not grow.
        let multiplier = match r.json("multiplier") {
            None => 1.0,
            Some(Value::Number(n)) if n.as_f64() == Some(0.0) => 1.0,
            Some(Value::Number(n)) if n.as_f64().is_some_and(|m| m > 0.0) => {
                n.as_f64().unwrap_or(1.0)
            }
            Some(_) => {
                p.add(
                    r.pos,
                    "retries' multiplier must be a number, 0 (the delay does not grow) or above",
                );
                1.0
            }
        };
        let codes: Vec<ErrorPattern> = r
            .req_list("codes", p)
            .iter()
            .filter_map(|n| match n.as_str() {
                Some(code) => Some(ErrorPattern::new(code, n.pos)),
                None => {
                    p.add(n.pos, "a retry code must be a pattern (a value such as \".*\" or \"myapp.error\")");
                    None
                }
            })
            .collect();
        Some(Retries {
            max_attempts,
            // Direktiv waits 5 s between attempts when no delay is given.
            delay: r.duration("delay", p).unwrap_or(DEFAULT_RETRY_DELAY),
            multiplier,
            codes,
        })
    });
    let files = o.each(
        "files",
        false,
        "a file",
        &["key", "scope", "as", "type"],
        p,
        |f, p| {
            Some(ActionFile {
                pos: f.pos,
                key: f.req_str("key", p)?,
                scope: scope(f, p)?,
                as_name: f.str("as", p),
                file_type: f.str("type", p),
            })
        },
    );
    Some(Action {
        function: o.req_str("function", p)?,
        pos: o.pos,
        input: o.json("input"),
        secrets,
        retries,
        files,
    })
}

/// A required field that is a jq expression (bare or as `jq(…)`), checked for syntax.
fn req_expr(o: &Obj, name: &str, hint: &str, p: &mut Problems) -> Option<Value> {
    match o.get(name) {
        Some(node) => {
            raw_expr(node, p);
            Some(node.to_json())
        }
        None => {
            p.add(o.pos, format!("{} needs '{name}' ({hint})", o.what));
            None
        }
    }
}

/// A field that may be a bare jq expression (switch conditions, foreach arrays): a string
/// without `jq(` is compiled as one. Strings holding `jq(` are checked with all others.
fn raw_expr(node: &Node, p: &mut Problems) {
    if let NodeKind::Scalar { text, .. } = &node.kind {
        if !text.contains("jq(") && node.to_json().is_string() {
            if let Err(e) = faasbox_expr::Program::compile(text) {
                p.add(node.pos, format!("jq syntax error: {e}"));
            }
        }
    }
}
