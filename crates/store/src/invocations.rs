//! Invocations (the life of each call) with their log lines, and a function's recent lines
//! across its calls, with a cursor for following new ones.

use async_trait::async_trait;
use faasbox_proto::LogLine;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The life of one call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// The call's id (unique; chosen by the server).
    pub id: String,
    /// The namespace of the called function.
    pub namespace: String,
    /// The function as the server names it (a flow's calls use names of their own).
    pub function: String,
    /// `running`, `succeeded`, `failed`, `crashed` or `timeout`.
    pub status: String,
    /// When it started.
    pub started: String,
    /// When it ended; `None` while it runs.
    pub ended: Option<String>,
    /// The error's code when it did not succeed, if it has one.
    pub error_code: Option<String>,
    /// The error's message when it did not succeed.
    pub error_message: Option<String>,
}

/// How a call ended, for [`InvocationStore::finish_invocation`].
#[derive(Debug, Clone)]
pub struct InvocationEnd<'a> {
    /// The final status (`succeeded`, `failed`, `crashed` or `timeout`).
    pub status: &'a str,
    /// When it ended.
    pub ended: &'a str,
    /// The error's code, if any.
    pub error_code: Option<&'a str>,
    /// The error's message, if any.
    pub error_message: Option<&'a str>,
}

/// One line of one of the function's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionLogLine {
    /// The cursor: unique among all stored lines of every function, and lines stored later
    /// have larger ones.
    pub seq: i64,
    /// The id of the call that logged it.
    pub invocation: String,
    /// The line itself.
    #[serde(flatten)]
    pub line: LogLine,
}

/// Lines of a function, oldest first, and the cursor to ask for newer ones with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionLogs {
    /// The lines, oldest (smallest cursor) first.
    pub logs: Vec<FunctionLogLine>,
    /// Pass as `after` to get only lines stored after these.
    pub next: i64,
}

/// Invocations and their log lines. None of these methods checks the namespace: a call is
/// recorded for a function the server has just run.
#[async_trait]
pub trait InvocationStore: Send + Sync {
    /// Stores a call as `running` (no end, no error). A second call with the same id is a
    /// backend error.
    async fn start_invocation(
        &self,
        id: &str,
        namespace: &str,
        function: &str,
        started: &str,
    ) -> Result<()>;

    /// Records how a call ended together with its last log lines (appended after those it has,
    /// as [`InvocationStore::append_logs`] does), in one transaction. The server passes only
    /// ids it started.
    async fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<()>;

    /// The call `id`; `None` when there is none (never was, or its namespace was deleted).
    async fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>>;

    /// The newest `limit` invocations of a namespace (optionally of one function), newest
    /// first: by `started`, calls started at the same time the later stored first.
    async fn list_invocations(
        &self,
        namespace: &str,
        function: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>>;

    /// Appends lines to a call's log (after those it has, in the given order), in one
    /// transaction. No lines is no change.
    async fn append_logs(&self, invocation_id: &str, logs: &[LogLine]) -> Result<()>;

    /// A call's log lines, in the order they were appended; empty for an unknown call.
    async fn logs(&self, invocation_id: &str) -> Result<Vec<LogLine>>;

    /// Marks every call still `running` as `crashed`, ended at `ended`, with no error code and
    /// an error message that says the server stopped while it ran (called at start, when no
    /// call can be running). Returns how many.
    async fn fail_interrupted_invocations(&self, ended: &str) -> Result<usize>;

    /// The lines of `namespace`'s function `function` (as its invocations name it), from its
    /// `limit` newest calls: without `after` the newest `limit` lines, with it the oldest
    /// `limit` lines stored after that cursor. With no lines, `next` is the caller's cursor,
    /// or without one the newest cursor of any line (where a follower starts). A line of
    /// another namespace's function of the same name is never included.
    async fn function_logs(
        &self,
        namespace: &str,
        function: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<FunctionLogs>;
}
