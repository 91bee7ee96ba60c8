//! The workflow/v1 language as Rust types: what a parsed and validated flow is made of.
//! Templates and expressions stay JSON values (`jq(…)` strings) and are evaluated by the engine.

use std::time::Duration;

use serde_json::Value;

pub use crate::pattern::ErrorPattern;
use crate::yaml::Pos;

/// A whole flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub description: Option<String>,
    pub functions: Vec<FunctionDef>,
    pub start: Start,
    pub states: Vec<State>,
    pub timeouts: Timeouts,
}

/// Flow-wide timeouts: `interrupt` (soft, catchable) and `kill` (hard).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeouts {
    pub interrupt: Option<Duration>,
    pub kill: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    pub id: String,
    pub pos: Pos,
    pub kind: FunctionKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FunctionKind {
    /// `knative-workflow` (alias `reusable`): an image run for this flow only.
    Workflow {
        image: String,
        cmd: Option<String>,
        envs: Vec<(String, String)>,
        size: Option<String>,
    },
    /// `knative-namespace`: a function deployed in the flow's namespace.
    Namespace { service: String },
    /// `knative-global`: a global service.
    Global { service: String },
    /// `subflow`: another flow of the namespace.
    Subflow { workflow: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub kind: StartKind,
    /// The first state; the first listed state when absent.
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartKind {
    Default,
    Scheduled {
        cron: String,
    },
    Event {
        event: EventFilter,
    },
    EventsXor {
        events: Vec<EventFilter>,
    },
    EventsAnd {
        events: Vec<EventFilter>,
        lifespan: Option<Duration>,
    },
}

/// Which CloudEvents match: a type and context attributes that must be equal.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub event_type: String,
    pub context: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub id: String,
    pub pos: Pos,
    pub log: Option<Value>,
    pub transform: Option<Value>,
    pub transition: Option<String>,
    pub catch: Vec<Catch>,
    pub timeout: Option<Duration>,
    pub metadata: Option<Value>,
    pub kind: StateKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catch {
    /// Matched against the error code (see [`ErrorPattern`]).
    pub error: ErrorPattern,
    pub transition: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StateKind {
    Action {
        action: Action,
        run_async: bool,
    },
    Noop,
    Switch {
        conditions: Vec<Condition>,
        default_transition: Option<String>,
        default_transform: Option<Value>,
    },
    Delay {
        duration: Duration,
    },
    Error {
        error: String,
        message: String,
        args: Vec<Value>,
    },
    Foreach {
        array: Value,
        action: Action,
    },
    Parallel {
        actions: Vec<Action>,
        mode: ParallelMode,
    },
    Validate {
        subject: Option<Value>,
        schema: Value,
    },
    Getter {
        variables: Vec<VarGet>,
    },
    Setter {
        variables: Vec<VarSet>,
    },
    ConsumeEvent {
        event: EventFilter,
    },
    GenerateEvent {
        event: GeneratedEvent,
        /// Send the event this long after the state ran (the instance does not wait).
        delay: Option<Duration>,
    },
    EventsAnd {
        events: Vec<EventFilter>,
    },
    EventsXor {
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

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub function: String,
    pub pos: Pos,
    pub input: Option<Value>,
    pub secrets: Vec<String>,
    pub retries: Option<Retries>,
    pub files: Vec<ActionFile>,
}

/// A variable placed as a file in the call's temp dir.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionFile {
    pub pos: Pos,
    pub key: String,
    pub scope: VarScope,
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

#[derive(Debug, Clone, PartialEq)]
pub struct Retries {
    pub max_attempts: u32,
    pub delay: Duration,
    pub multiplier: f64,
    /// The error codes that are retried (see [`ErrorPattern`]).
    pub codes: Vec<ErrorPattern>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub condition: Value,
    pub transition: Option<String>,
    pub transform: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParallelMode {
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarScope {
    Namespace,
    Workflow,
    Instance,
}

impl VarScope {
    pub fn parse(text: &str) -> Option<VarScope> {
        match text {
            "namespace" => Some(VarScope::Namespace),
            "workflow" => Some(VarScope::Workflow),
            "instance" => Some(VarScope::Instance),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VarScope::Namespace => "namespace",
            VarScope::Workflow => "workflow",
            VarScope::Instance => "instance",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VarGet {
    pub key: String,
    pub scope: VarScope,
    /// The name under `.var`; the key when absent.
    pub as_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VarSet {
    pub key: String,
    pub scope: VarScope,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedEvent {
    pub event_type: String,
    pub source: String,
    pub data: Option<Value>,
    pub data_content_type: Option<String>,
    pub context: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct XorBranch {
    pub event: EventFilter,
    pub transition: Option<String>,
    pub transform: Option<Value>,
}

impl Workflow {
    pub fn state(&self, id: &str) -> Option<&State> {
        self.states.iter().find(|s| s.id == id)
    }

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

    /// The actions the state runs.
    pub fn actions(&self) -> Vec<&Action> {
        match &self.kind {
            StateKind::Action { action, .. } | StateKind::Foreach { action, .. } => vec![action],
            StateKind::Parallel { actions, .. } => actions.iter().collect(),
            _ => Vec::new(),
        }
    }
}
