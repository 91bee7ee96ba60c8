//! The API's forms of store records that handlers answer with as they are: the same fields
//! and JSON as the store's records, with their OpenAPI schemas (named as before). The store's
//! records are not API types; a change to one of them does not change the API unnoticed.

use faasbox_proto::LogLine;
use serde::{Deserialize, Serialize};

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

/// The life of one call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvocationRecord {
    pub id: String,
    pub namespace: String,
    pub function: String,
    /// `running`, `succeeded`, `failed`, `crashed` or `timeout`.
    pub status: String,
    pub started: String,
    pub ended: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl From<faasbox_store::InvocationRecord> for InvocationRecord {
    fn from(r: faasbox_store::InvocationRecord) -> Self {
        InvocationRecord {
            id: r.id,
            namespace: r.namespace,
            function: r.function,
            status: r.status,
            started: r.started,
            ended: r.ended,
            error_code: r.error_code,
            error_message: r.error_message,
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
