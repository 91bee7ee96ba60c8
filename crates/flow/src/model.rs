//! The workflow/v1 language as Rust types: what a parsed and validated flow is made of.
//! Templates and expressions stay JSON values (`jq(…)` strings) and are evaluated by the engine.

use std::time::Duration;

use serde_json::Value;

pub use crate::pattern::ErrorPattern;
use crate::yaml::Pos;

/// A whole flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The flow's `description`, shown to people only.
    pub description: Option<String>,
    /// The `functions` its actions may call, by id.
    pub functions: Vec<FunctionDef>,
    /// How instances start (`start`): by hand, on a schedule or on events.
    pub start: Start,
    /// The `states`, in the order written.
    pub states: Vec<State>,
    /// The flow-wide `timeouts`.
    pub timeouts: Timeouts,
}

/// Flow-wide timeouts: `interrupt` (soft, catchable) and `kill` (hard).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeouts {
    /// After this the running state gets the catchable `direktiv.cancels.timeout.soft`.
    pub interrupt: Option<Duration>,
    /// After this the instance ends, whatever it is doing.
    pub kill: Option<Duration>,
}

/// One entry of `functions`: something an action can call by `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    /// The id actions name in `function`.
    pub id: String,
    /// Where the entry is written, for messages.
    pub pos: Pos,
    /// What is called: an image, a deployed function, a global service or a subflow.
    pub kind: FunctionKind,
}

/// The `type` of a function definition, with that type's own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionKind {
    /// `knative-workflow` (alias `reusable`): an image run for this flow only.
    Workflow {
        /// The image reference.
        image: String,
        /// The command line to run instead of the image's entrypoint.
        cmd: Option<String>,
        /// Environment variables for the function, in the order written.
        envs: Vec<(String, String)>,
        /// Direktiv's size name (`small`, `medium`, `large`).
        size: Option<String>,
    },
    /// `knative-namespace`: a function deployed in the flow's namespace.
    Namespace {
        /// The deployed function's name.
        service: String,
    },
    /// `knative-global`: a global service.
    Global {
        /// The global service's name.
        service: String,
    },
    /// `subflow`: another flow of the namespace.
    Subflow {
        /// The flow's path, as [`crate::subflow`] resolves it.
        workflow: String,
    },
}

/// The flow's `start`: what starts an instance and in which state.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// The start `type` with its own fields.
    pub kind: StartKind,
    /// The first state; the first listed state when absent.
    pub state: Option<String>,
}

/// The start `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum StartKind {
    /// `default`: run by hand (the API) or as a subflow.
    Default,
    /// `scheduled`: one instance per due slot of a cron expression.
    Scheduled {
        /// The cron expression (5 fields, or 6 with seconds).
        cron: String,
    },
    /// `event`: one instance per event that matches.
    Event {
        /// Which events start an instance.
        event: EventFilter,
    },
    /// `eventsXor`: one instance per event matching any of the filters.
    EventsXor {
        /// The filters, any of which starts an instance.
        events: Vec<EventFilter>,
    },
    /// `eventsAnd`: one instance once an event matched every filter.
    EventsAnd {
        /// The filters that must all have matched.
        events: Vec<EventFilter>,
        /// How long a matched event counts; older ones are forgotten.
        lifespan: Option<Duration>,
    },
}

/// Which CloudEvents match: a type and context attributes that must be equal.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    /// The CloudEvent `type` to match exactly.
    pub event_type: String,
    /// Context attributes that must exist and match (`*` is any run of characters).
    pub context: serde_json::Map<String, Value>,
}

/// One of the flow's `states`: the fields every state has, and its type's own.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The id transitions name.
    pub id: String,
    /// Where the state is written, for messages.
    pub pos: Pos,
    /// A template logged when the state starts.
    pub log: Option<Value>,
    /// A template (or `jq(…)`) that replaces the instance data after the state.
    pub transform: Option<Value>,
    /// The state to go to next; the instance ends when absent.
    pub transition: Option<String>,
    /// Error patterns this state catches, tried in order.
    pub catch: Vec<Catch>,
    /// How long the state may run (`timeout`).
    pub timeout: Option<Duration>,
    /// A template whose value becomes the instance's metadata, shown with the instance.
    pub metadata: Option<Value>,
    /// The state `type` with its own fields.
    pub kind: StateKind,
}

/// One entry of a state's `catch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Catch {
    /// Matched against the error code (see [`ErrorPattern`]).
    pub error: ErrorPattern,
    /// Where a caught error goes (with the error under `.error`); the instance ends when absent.
    pub transition: Option<String>,
}

/// The state `type`, with that type's own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum StateKind {
    /// `action`: call one function.
    Action {
        /// The call.
        action: Action,
        /// `async`: start the call and go on without its result.
        run_async: bool,
    },
    /// `noop`: does nothing (but log and transform).
    Noop,
    /// `switch`: the first condition that holds picks the transition.
    Switch {
        /// The conditions, tried in order.
        conditions: Vec<Condition>,
        /// Where to go when no condition holds.
        default_transition: Option<String>,
        /// The transform when no condition holds.
        default_transform: Option<Value>,
    },
    /// `delay`: wait, then go on.
    Delay {
        /// How long to wait.
        duration: Duration,
    },
    /// `error`: raise an error with a code; the instance still follows its transition (to
    /// clean up) and ends with the error.
    Error {
        /// The error code.
        error: String,
        /// The message, with `%s`/`%v` filled from `args`.
        message: String,
        /// Templates that fill the message's placeholders.
        args: Vec<Value>,
    },
    /// `foreach`: the same action once per element of an array, several at a time.
    Foreach {
        /// The expression giving the array.
        array: Value,
        /// The call made per element.
        action: Action,
    },
    /// `parallel`: several actions at once.
    Parallel {
        /// The calls.
        actions: Vec<Action>,
        /// Whether all must succeed or the first success ends the state.
        mode: ParallelMode,
    },
    /// `validate`: check data against a JSON schema.
    Validate {
        /// What to check (a template); the instance data when absent.
        subject: Option<Value>,
        /// The JSON schema.
        schema: Value,
    },
    /// `getter`: read variables into `.var`.
    Getter {
        /// The variables to read.
        variables: Vec<VarGet>,
    },
    /// `setter`: write variables.
    Setter {
        /// The variables to write.
        variables: Vec<VarSet>,
    },
    /// `consumeEvent`: wait for one matching event.
    ConsumeEvent {
        /// Which event ends the wait.
        event: EventFilter,
    },
    /// `generateEvent`: send a CloudEvent into the namespace.
    GenerateEvent {
        /// The event to send.
        event: GeneratedEvent,
        /// Send the event this long after the state ran (the instance does not wait).
        delay: Option<Duration>,
    },
    /// `eventsAnd`: wait until an event matched every filter.
    EventsAnd {
        /// The filters that must all have matched.
        events: Vec<EventFilter>,
    },
    /// `eventsXor`: wait for the first event matching any filter; it picks the transition.
    EventsXor {
        /// The filters, each with where it leads.
        events: Vec<XorBranch>,
    },
}

impl StateKind {
    /// The state type as written in YAML.
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Action { .. } => "action",
            StateKind::Noop => "noop",
            StateKind::Switch { .. } => "switch",
            StateKind::Delay { .. } => "delay",
            StateKind::Error { .. } => "error",
            StateKind::Foreach { .. } => "foreach",
            StateKind::Parallel { .. } => "parallel",
            StateKind::Validate { .. } => "validate",
            StateKind::Getter { .. } => "getter",
            StateKind::Setter { .. } => "setter",
            StateKind::ConsumeEvent { .. } => "consumeEvent",
            StateKind::GenerateEvent { .. } => "generateEvent",
            StateKind::EventsAnd { .. } => "eventsAnd",
            StateKind::EventsXor { .. } => "eventsXor",
        }
    }
}

/// A call of one of the flow's functions.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The id of the [`FunctionDef`] called.
    pub function: String,
    /// Where the action is written, for messages.
    pub pos: Pos,
    /// The input template; the instance data when absent.
    pub input: Option<Value>,
    /// Namespace secrets the input template may read as `.secrets.NAME`.
    pub secrets: Vec<String>,
    /// How failed calls are tried again.
    pub retries: Option<Retries>,
    /// Variables placed as files in the call's directory.
    pub files: Vec<ActionFile>,
}

/// A variable placed as a file in the call's temp dir.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionFile {
    /// Where the entry is written, for messages.
    pub pos: Pos,
    /// The variable's key.
    pub key: String,
    /// Which variables the key is looked up in.
    pub scope: VarScope,
    /// The file's name (`as`); the key when absent.
    pub as_name: Option<String>,
    /// As written; validation refuses what [`FileType::parse`] does not know.
    pub file_type: Option<String>,
}

impl ActionFile {
    /// The file's name in the call's directory: `as`, else the key.
    pub fn name(&self) -> &str {
        self.as_name.as_deref().unwrap_or(&self.key)
    }
}

/// How an action file's variable becomes the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A string as is; any other JSON value as JSON text.
    Plain,
    /// A string holding base64, decoded.
    Base64,
    /// A string holding the base64 of a tar archive, unpacked into the directory of the name.
    Tar,
    /// The same for a gzip-compressed tar archive.
    TarGz,
}

impl FileType {
    /// The names a flow may write (none is `plain`).
    pub const NAMES: &'static str = "plain, base64, tar, tar.gz";

    /// The type a `type` names (absent is `plain`); `None` for a name not in [`Self::NAMES`].
    pub fn parse(name: Option<&str>) -> Option<FileType> {
        match name {
            None | Some("plain") => Some(FileType::Plain),
            Some("base64") => Some(FileType::Base64),
            Some("tar") => Some(FileType::Tar),
            Some("tar.gz") => Some(FileType::TarGz),
            Some(_) => None,
        }
    }
}

/// An action's `retries`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retries {
    /// How many times a failed call is tried again, at most.
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub delay: Duration,
    /// What each wait is multiplied by for the next (0: the delay does not grow).
    pub multiplier: f64,
    /// The error codes that are retried (see [`ErrorPattern`]).
    pub codes: Vec<ErrorPattern>,
}

/// One of a `switch` state's conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The `jq(…)` expression; it holds when its result is truthy.
    pub condition: Value,
    /// Where to go when it holds.
    pub transition: Option<String>,
    /// The transform when it holds.
    pub transform: Option<Value>,
}

/// A `parallel` state's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParallelMode {
    /// Every action must succeed; the state's result holds all outputs.
    And,
    /// The first action to succeed ends the state.
    Or,
}

/// Where a variable lives (`scope`): shared by a namespace, by a flow's instances, or one
/// instance's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarScope {
    /// Every flow of the namespace.
    Namespace,
    /// Every instance of the flow.
    Workflow,
    /// This instance only.
    Instance,
}

impl VarScope {
    /// The scope a flow names; `None` for an unknown one.
    pub fn parse(text: &str) -> Option<VarScope> {
        match text {
            "namespace" => Some(VarScope::Namespace),
            "workflow" => Some(VarScope::Workflow),
            "instance" => Some(VarScope::Instance),
            _ => None,
        }
    }

    /// The scope's name as written in flows and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            VarScope::Namespace => "namespace",
            VarScope::Workflow => "workflow",
            VarScope::Instance => "instance",
        }
    }
}

/// One variable a `getter` reads.
#[derive(Debug, Clone, PartialEq)]
pub struct VarGet {
    /// The variable's key.
    pub key: String,
    /// Where it is looked up.
    pub scope: VarScope,
    /// The name under `.var`; the key when absent.
    pub as_name: Option<String>,
}

/// One variable a `setter` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct VarSet {
    /// The variable's key.
    pub key: String,
    /// Where it is written.
    pub scope: VarScope,
    /// The template of its new value.
    pub value: Value,
}

/// The CloudEvent a `generateEvent` state sends; its fields are templates.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedEvent {
    /// The event's `type`.
    pub event_type: String,
    /// The event's `source`.
    pub source: String,
    /// The event's `data`.
    pub data: Option<Value>,
    /// The event's `datacontenttype`.
    pub data_content_type: Option<String>,
    /// Extension context attributes.
    pub context: serde_json::Map<String, Value>,
}

/// One filter of an `eventsXor` state with where its event leads.
#[derive(Debug, Clone, PartialEq)]
pub struct XorBranch {
    /// Which event takes this branch.
    pub event: EventFilter,
    /// Where to go when it arrived first.
    pub transition: Option<String>,
    /// The transform when it arrived first.
    pub transform: Option<Value>,
}

impl Workflow {
    /// The state with this id.
    pub fn state(&self, id: &str) -> Option<&State> {
        self.states.iter().find(|s| s.id == id)
    }

    /// The function definition with this id.
    pub fn function(&self, id: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.id == id)
    }

    /// The id of the first state.
    pub fn first_state(&self) -> Option<&str> {
        self.start
            .state
            .as_deref()
            .or_else(|| self.states.first().map(|s| s.id.as_str()))
    }
}

/// How a state moves to another ([`State::edges`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// The state's `transition` when it ends normally.
    Transition,
    /// One of a switch's conditions.
    Condition,
    /// A switch's `defaultTransition`.
    Default,
    /// A `catch` entry.
    Catch,
    /// An event arrived: an eventsXor branch, or the transition of a state that waits for
    /// events.
    Event,
    /// A `catch` entry written for the state's soft timeout ([`crate::graph`] tells them
    /// from other catches; [`State::edges`] gives every catch as [`EdgeKind::Catch`]).
    Timeout,
}

/// One way out of a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge<'a> {
    /// The state it leads to.
    pub to: &'a str,
    /// How.
    pub kind: EdgeKind,
    /// What picks it: a condition's expression, an event type, an error pattern.
    pub label: Option<String>,
}

impl State {
    /// Every state this one can move to.
    pub fn targets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.transition.iter().map(String::as_str).collect();
        out.extend(self.catch.iter().filter_map(|c| c.transition.as_deref()));
        match &self.kind {
            StateKind::Switch {
                conditions,
                default_transition,
                ..
            } => {
                out.extend(conditions.iter().filter_map(|c| c.transition.as_deref()));
                out.extend(default_transition.as_deref());
            }
            StateKind::EventsXor { events } => {
                out.extend(events.iter().filter_map(|e| e.transition.as_deref()));
            }
            _ => {}
        }
        out
    }

    /// Every way out of this state, with its kind and label, in the order written: the
    /// `transition`, a switch's conditions and default, an eventsXor's events, then the
    /// catches. [`Self::targets`] is the same list without kinds.
    pub fn edges(&self) -> Vec<Edge<'_>> {
        let mut out: Vec<Edge<'_>> = Vec::new();
        fn add<'a>(
            out: &mut Vec<Edge<'a>>,
            to: Option<&'a str>,
            kind: EdgeKind,
            label: Option<String>,
        ) {
            if let Some(to) = to {
                out.push(Edge { to, kind, label });
            }
        }
        let mut push = |to, kind, label| add(&mut out, to, kind, label);
        let kind_of_transition = match &self.kind {
            StateKind::ConsumeEvent { .. } | StateKind::EventsAnd { .. } => EdgeKind::Event,
            _ => EdgeKind::Transition,
        };
        push(self.transition.as_deref(), kind_of_transition, None);
        match &self.kind {
            StateKind::Switch {
                conditions,
                default_transition,
                ..
            } => {
                for c in conditions {
                    let label = match &c.condition {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    push(c.transition.as_deref(), EdgeKind::Condition, Some(label));
                }
                push(default_transition.as_deref(), EdgeKind::Default, None);
            }
            StateKind::EventsXor { events } => {
                for e in events {
                    push(
                        e.transition.as_deref(),
                        EdgeKind::Event,
                        Some(e.event.event_type.clone()),
                    );
                }
            }
            _ => {}
        }
        for c in &self.catch {
            push(
                c.transition.as_deref(),
                EdgeKind::Catch,
                Some(c.error.as_str().to_string()),
            );
        }
        out
    }

    /// The actions the state runs.
    pub fn actions(&self) -> Vec<&Action> {
        match &self.kind {
            StateKind::Action { action, .. } | StateKind::Foreach { action, .. } => vec![action],
            StateKind::Parallel { actions, .. } => actions.iter().collect(),
            _ => Vec::new(),
        }
    }
}
