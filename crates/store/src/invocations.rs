//! Invocations (the life of each call) with their log lines, and a function's recent lines
//! across its calls, with a cursor for following new ones.

use async_trait::async_trait;
use faasbox_proto::LogLine;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The life of one call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// How a call ended, for [`InvocationStore::finish_invocation`].
#[derive(Debug, Clone)]
pub struct InvocationEnd<'a> {
    pub status: &'a str,
    pub ended: &'a str,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
}

/// One line of one of the function's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionLogLine {
    /// The cursor: lines stored later have larger ones.
    pub seq: i64,
    pub invocation: String,
    #[serde(flatten)]
    pub line: LogLine,
}

/// Lines of a function, oldest first, and the cursor to ask for newer ones with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionLogs {
    pub logs: Vec<FunctionLogLine>,
    /// Pass as `after` to get only lines stored after these.
    pub next: i64,
}

#[async_trait]
pub trait InvocationStore: Send + Sync {
    /// Stores a call as `running`.
    async fn start_invocation(
        &self,
        id: &str,
        namespace: &str,
        function: &str,
        started: &str,
    ) -> Result<()>;

    /// Records how a call ended together with its logs, in one transaction.
    async fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<()>;

    async fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>>;

    /// The newest invocations of a namespace (optionally of one function), newest first.
    async fn list_invocations(
        &self,
        namespace: &str,
        function: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>>;

    /// Appends lines to a call's log (after those it has), in one transaction.
    async fn append_logs(&self, invocation_id: &str, logs: &[LogLine]) -> Result<()>;

    /// A call's log lines, in order.
    async fn logs(&self, invocation_id: &str) -> Result<Vec<LogLine>>;

    /// Marks calls that were running when the server stopped as `crashed`. Returns how many.
    async fn fail_interrupted_invocations(&self, ended: &str) -> Result<usize>;

    /// The lines of `namespace`'s function `function` (as its invocations name it), from its
    /// `limit` newest calls: without `after` the newest `limit` lines, with it the oldest
    /// `limit` lines stored after that cursor. With no lines, `next` is the caller's cursor,
    /// or without one the newest cursor of any line (where a follower starts).
    async fn function_logs(
        &self,
        namespace: &str,
        function: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<FunctionLogs>;
}
