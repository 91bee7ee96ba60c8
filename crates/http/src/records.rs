//! The API's forms of store records that handlers answer with as they are: the same fields
//! and JSON as the store's records, with their OpenAPI schemas (named as before). The store's
//! records are not API types; a change to one of them does not change the API unnoticed.

use faasbox_proto::LogLine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamespaceRecord {
    pub name: String,
    pub created: String,
}

impl From<faasbox_store::NamespaceRecord> for NamespaceRecord {
    fn from(r: faasbox_store::NamespaceRecord) -> Self {
        NamespaceRecord {
            name: r.name,
            created: r.created,
        }
    }
}

/// The life of one call (a run), as stored: what it was asked with, how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvocationRecord {
    pub id: String,
    pub namespace: String,
    pub function: String,
    /// The function's revision that ran (`null` until known).
    pub revision: Option<i64>,
    /// `sync` (the caller waited) or `async` (accepted, run later).
    pub mode: String,
    /// `queued`, `running`, `succeeded`, `failed`, `crashed`, `timeout` or `cancelled`.
    pub status: String,
    /// When the run was accepted.
    pub accepted: String,
    /// When it started running (`null` while queued).
    pub started: Option<String>,
    pub ended: Option<String>,
    /// The request's input, secret values masked.
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// The function's output, when it succeeded.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Why it did not succeed, classified.
    pub error: Option<RunError>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The CloudEvent (without its data) that caused the run.
    #[schema(value_type = Option<Object>)]
    pub event: Option<Value>,
    /// The HTTP request that caused the run.
    #[schema(value_type = Option<Object>)]
    pub http_context: Option<Value>,
    /// Whether the run had to start a new instance.
    pub cold_start: Option<bool>,
    /// How long its phases took.
    pub phases: Option<RunPhases>,
    /// How many times it was started (2: it was interrupted by a server crash and ran again).
    pub attempts: u32,
    /// Where its result is POSTed when it ends.
    pub callback_url: Option<String>,
    /// How that POST went, once tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_status: Option<String>,
    /// Secrets the run got on top of its function's.
    pub secrets: Vec<String>,
    /// Services the run got on top of its function's.
    pub services: Vec<String>,
    /// The server (node id, `faasbox nodes`) that runs it or ran it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A run's error: its class (`InputError`, `FunctionError` or `SystemError`), code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunError {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
    pub message: String,
    pub stacktrace: Vec<String>,
}

/// How long a run waited for an instance, started one, and ran, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunPhases {
    pub wait_ms: u64,
    pub init_ms: u64,
    pub run_ms: u64,
}

/// A stored JSON text as JSON (a text that is not JSON, which the server never stores, as a
/// string).
fn json(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

impl From<faasbox_store::InvocationRecord> for InvocationRecord {
    fn from(r: faasbox_store::InvocationRecord) -> Self {
        let error = match (&r.error_code, &r.error_message, &r.error_type) {
            (None, None, None) => None,
            (code, message, kind) => Some(RunError {
                kind: kind.clone().unwrap_or_else(|| "SystemError".into()),
                code: code.clone().unwrap_or_default(),
                message: message.clone().unwrap_or_default(),
                stacktrace: Vec::new(),
            }),
        };
        InvocationRecord {
            id: r.id,
            namespace: r.namespace,
            function: r.function,
            revision: r.revision,
            mode: r.mode,
            status: r.status,
            accepted: r.accepted,
            started: r.started,
            ended: r.ended,
            input: json(r.input),
            output: json(r.output),
            error,
            error_code: r.error_code,
            error_message: r.error_message,
            event: json(r.event),
            http_context: json(r.http_context),
            cold_start: r.cold_start,
            phases: r.phases.map(|p| RunPhases {
                wait_ms: p.wait_ms,
                init_ms: p.init_ms,
                run_ms: p.run_ms,
            }),
            attempts: r.attempts,
            callback_url: r.callback_url,
            callback_status: r.callback_status,
            secrets: r.secrets,
            services: r.services,
            node: r.node,
        }
    }
}

/// One API token, without the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    /// `None` for a server-wide admin token.
    pub namespace: Option<String>,
    /// `admin` or `invoke`.
    pub role: String,
    pub created: String,
}

impl From<faasbox_store::TokenRecord> for TokenRecord {
    fn from(r: faasbox_store::TokenRecord) -> Self {
        TokenRecord {
            id: r.id,
            name: r.name,
            namespace: r.namespace,
            role: r.role,
            created: r.created,
        }
    }
}

/// One line of one of the function's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FunctionLogLine {
    /// The cursor: lines stored later have larger ones.
    pub seq: i64,
    pub invocation: String,
    #[serde(flatten)]
    pub line: LogLine,
}

/// Lines of a function, oldest first, and the cursor to ask for newer ones with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FunctionLogs {
    pub logs: Vec<FunctionLogLine>,
    /// Pass as `after` to get only lines stored after these.
    pub next: i64,
}

impl From<faasbox_store::FunctionLogs> for FunctionLogs {
    fn from(r: faasbox_store::FunctionLogs) -> Self {
        FunctionLogs {
            logs: r
                .logs
                .into_iter()
                .map(|l| FunctionLogLine {
                    seq: l.seq,
                    invocation: l.invocation,
                    line: l.line,
                })
                .collect(),
            next: r.next,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceLogRecord {
    pub seq: i64,
    pub ts_ms: i64,
    pub message: String,
    /// The state the line belongs to (set for the lines a state's function logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The invocation the line came from (a function's own line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation: Option<String>,
}

impl From<faasbox_store::InstanceLogRecord> for InstanceLogRecord {
    fn from(r: faasbox_store::InstanceLogRecord) -> Self {
        InstanceLogRecord {
            seq: r.seq,
            ts_ms: r.ts_ms,
            message: r.message,
            state: r.state,
            invocation: r.invocation,
        }
    }
}

/// A call an instance's action made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceCallRecord {
    /// The invocation's id (`kind` "invocation") or the subflow's instance id ("instance").
    pub id: String,
    pub kind: String,
    pub state: String,
    /// The flow's function id.
    pub function: String,
    pub started: String,
    /// The invocation's status (`running`, `succeeded`, …) or the subflow instance's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl From<faasbox_store::InstanceCallRecord> for InstanceCallRecord {
    fn from(r: faasbox_store::InstanceCallRecord) -> Self {
        InstanceCallRecord {
            id: r.id,
            kind: r.kind,
            state: r.state,
            function: r.function,
            started: r.started,
            status: r.status,
        }
    }
}

/// Converts each of a list of store records.
pub fn all<R, A: From<R>>(records: Vec<R>) -> Vec<A> {
    records.into_iter().map(A::from).collect()
}
