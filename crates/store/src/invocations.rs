//! Invocations (the life of each call, a "run": synchronous or accepted to run later) with
//! their log lines, and a function's recent lines across its calls, with a cursor for
//! following new ones.

use async_trait::async_trait;
use faasbox_proto::LogLine;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The life of one call (a run), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// The call's id (unique; chosen by the server, or by the caller of an asynchronous run).
    pub id: String,
    /// The namespace of the called function.
    pub namespace: String,
    /// The function as the server names it (a flow's calls use names of their own).
    pub function: String,
    /// The function's revision that ran; `None` until known (or for a flow's own function).
    pub revision: Option<i64>,
    /// `sync` (the caller waits) or `async` (accepted, run later by the executor).
    pub mode: String,
    /// `queued`, `running`, `succeeded`, `failed`, `crashed`, `timeout` or `cancelled`.
    pub status: String,
    /// When it was accepted (a synchronous call: when it started).
    pub accepted: String,
    /// When it started running; `None` while queued (or cancelled before it ran).
    pub started: Option<String>,
    /// When it ended; `None` while it is queued or runs.
    pub ended: Option<String>,
    /// The input (JSON text, secret values masked; possibly cut, see the core).
    pub input: Option<String>,
    /// The output (JSON text) of a run that succeeded.
    pub output: Option<String>,
    /// The error's class when it did not succeed: `InputError`, `FunctionError` or
    /// `SystemError`.
    pub error_type: Option<String>,
    /// The error's code when it did not succeed, if it has one.
    pub error_code: Option<String>,
    /// The error's message when it did not succeed.
    pub error_message: Option<String>,
    /// The CloudEvent (JSON text, without its data) that caused the run.
    pub event: Option<String>,
    /// The HTTP request (JSON text) that caused the run.
    pub http_context: Option<String>,
    /// Whether the run had to start a new instance; `None` until known.
    pub cold_start: Option<bool>,
    /// How long its phases took; `None` until it ended (or when it never got an instance).
    pub phases: Option<RunPhases>,
    /// How many times it was started (an asynchronous run interrupted by a crash runs again
    /// once); 0 while a new asynchronous run is queued.
    pub attempts: u32,
    /// Where the result is POSTed when the run ends.
    pub callback_url: Option<String>,
    /// How that POST went (`delivered`, or why it failed), once tried.
    pub callback_status: Option<String>,
    /// Secrets the run got on top of its function's.
    pub secrets: Vec<String>,
    /// Services the run got on top of its function's.
    pub services: Vec<String>,
    /// The server (node id) that runs it or ran it last; `None` while a new run is queued, or
    /// for calls recorded before nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Whose interrupted calls and runs [`InvocationStore::fail_interrupted_invocations`] and
/// [`InvocationStore::requeue_interrupted_runs`] take, and how their records say why.
#[derive(Debug, Clone, Copy)]
pub struct Interruption<'a> {
    /// When the crashed ones end.
    pub ended: &'a str,
    /// The server whose calls they are: only calls and runs running on that node are taken,
    /// with those that name no node (recorded before nodes).
    pub node: &'a str,
    /// What happened, as the start of a sentence ("the server stopped"); the records say
    /// "<cause> while this call ran" and the like.
    pub cause: &'a str,
}

impl Interruption<'_> {
    /// The error message of a synchronous call it crashed.
    pub fn call_message(&self) -> String {
        format!("{} while this call ran", self.cause)
    }

    /// The log line of an asynchronous run it queued again.
    pub fn requeue_line(&self) -> String {
        format!(
            "{} while this run ran (attempt 1); it runs again (attempt 2)",
            self.cause
        )
    }

    /// The error message of an asynchronous run it crashed (on its second attempt).
    pub fn crash_message(&self) -> String {
        format!(
            "{} while this run ran its second attempt; it is not run again",
            self.cause
        )
    }
}

/// How long a run's phases took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPhases {
    /// Waiting for an instance (not counting starting one).
    pub wait_ms: u64,
    /// Starting a new instance (0 for a warm one).
    pub init_ms: u64,
    /// The function's call itself.
    pub run_ms: u64,
}

/// How a call ended, for [`InvocationStore::finish_invocation`]. Fields left `None` keep
/// what the record has.
#[derive(Debug, Clone, Default)]
pub struct InvocationEnd<'a> {
    /// The final status (`succeeded`, `failed`, `crashed`, `timeout` or `cancelled`).
    pub status: &'a str,
    /// When it ended.
    pub ended: &'a str,
    /// The error's code, if any.
    pub error_code: Option<&'a str>,
    /// The error's message, if any.
    pub error_message: Option<&'a str>,
    /// The error's class (see [`InvocationRecord::error_type`]), if any.
    pub error_type: Option<&'a str>,
    /// The output (JSON text), if it succeeded.
    pub output: Option<&'a str>,
    /// The input as it is to be kept (masked); `None` keeps the stored one.
    pub input: Option<&'a str>,
    /// The revision that ran; `None` keeps the stored one.
    pub revision: Option<i64>,
    /// Whether it started a new instance; `None` keeps the stored one.
    pub cold_start: Option<bool>,
    /// Its phases; `None` keeps the stored ones.
    pub phases: Option<RunPhases>,
    /// The server that ran it: with it, the end is recorded only while the record names that
    /// node (or none), so a server that was declared dead while it ran the call cannot
    /// overwrite what the server that took the call over records.
    pub node: Option<&'a str>,
}

/// An [`InvocationEnd`] of owned values: what a call's end is kept as until it is written
/// ([`CallWrite`]).
#[derive(Debug, Clone, Default)]
pub struct OwnedInvocationEnd {
    /// See [`InvocationEnd::status`].
    pub status: String,
    /// See [`InvocationEnd::ended`].
    pub ended: String,
    /// See [`InvocationEnd::error_code`].
    pub error_code: Option<String>,
    /// See [`InvocationEnd::error_message`].
    pub error_message: Option<String>,
    /// See [`InvocationEnd::error_type`].
    pub error_type: Option<String>,
    /// See [`InvocationEnd::output`].
    pub output: Option<String>,
    /// See [`InvocationEnd::input`].
    pub input: Option<String>,
    /// See [`InvocationEnd::revision`].
    pub revision: Option<i64>,
    /// See [`InvocationEnd::cold_start`].
    pub cold_start: Option<bool>,
    /// See [`InvocationEnd::phases`].
    pub phases: Option<RunPhases>,
    /// See [`InvocationEnd::node`].
    pub node: Option<String>,
}

impl OwnedInvocationEnd {
    /// An owned copy of `end`.
    pub fn of(end: &InvocationEnd<'_>) -> OwnedInvocationEnd {
        let own = |s: Option<&str>| s.map(str::to_owned);
        OwnedInvocationEnd {
            status: end.status.to_owned(),
            ended: end.ended.to_owned(),
            error_code: own(end.error_code),
            error_message: own(end.error_message),
            error_type: own(end.error_type),
            output: own(end.output),
            input: own(end.input),
            revision: end.revision,
            cold_start: end.cold_start,
            phases: end.phases,
            node: own(end.node),
        }
    }

    /// The end as [`InvocationStore::finish_invocation`] takes it.
    pub fn borrowed(&self) -> InvocationEnd<'_> {
        InvocationEnd {
            status: &self.status,
            ended: &self.ended,
            error_code: self.error_code.as_deref(),
            error_message: self.error_message.as_deref(),
            error_type: self.error_type.as_deref(),
            output: self.output.as_deref(),
            input: self.input.as_deref(),
            revision: self.revision,
            cold_start: self.cold_start,
            phases: self.phases,
            node: self.node.as_deref(),
        }
    }
}

/// One write of [`InvocationStore::write_calls`]: what the server's record writer stores of
/// the blocking calls, many at once.
// Nearly every write is `Ended` (the large one): boxing it would add an allocation per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CallWrite {
    /// A call that still runs, stored `running` ([`InvocationStore::insert_run`]).
    Running(NewRun),
    /// A call and how it ended ([`InvocationStore::record_call`]).
    Ended {
        /// The call as it started.
        run: NewRun,
        /// How it ended.
        end: OwnedInvocationEnd,
        /// Its log lines.
        logs: Vec<LogLine>,
    },
}

/// A run to store before it starts ([`InvocationStore::insert_run`]).
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    /// Its id.
    pub id: String,
    /// The namespace it belongs to.
    pub namespace: String,
    /// The function as the server names it.
    pub function: String,
    /// `sync` or `async`.
    pub mode: String,
    /// `queued` (an asynchronous run) or `running` (a call starting now).
    pub status: String,
    /// When it was accepted (also its start when it is stored `running`).
    pub accepted: String,
    /// The input (JSON text).
    pub input: Option<String>,
    /// The causing CloudEvent (JSON text, without data).
    pub event: Option<String>,
    /// The causing HTTP request (JSON text).
    pub http_context: Option<String>,
    /// Where the result is POSTed.
    pub callback_url: Option<String>,
    /// Extra secrets of the run.
    pub secrets: Vec<String>,
    /// Extra services of the run.
    pub services: Vec<String>,
    /// The server accepting it: a call starting now runs there; a queued run names the
    /// server that claims it (`InvocationStore::claim_run`).
    pub node: Option<String>,
}

/// Which runs [`InvocationStore::list_runs`] lists.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// The namespace.
    pub namespace: String,
    /// Only this function's.
    pub function: Option<String>,
    /// Only runs with this status.
    pub status: Option<String>,
    /// Only runs accepted at or after this time (RFC 3339, compared as text).
    pub since: Option<String>,
    /// Only runs after this run (its id) in the list's order, that is older: the next page.
    /// A run that is not of the namespace gives no runs.
    pub before: Option<String>,
    /// At most this many (newest first).
    pub limit: u32,
}

/// How many runs of one function ended one way: a row of [`InvocationStore::run_counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    /// The function (as its runs name it).
    pub function: String,
    /// The runs' status.
    pub status: String,
    /// Whether they started an instance (unknown counts as not).
    pub cold_start: bool,
    /// How many.
    pub count: u64,
}

/// What [`InvocationStore::requeue_interrupted_runs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Asynchronous runs that were running on their first attempt: queued again.
    pub requeued: Vec<String>,
    /// Asynchronous runs that were running on their second attempt: ended `crashed`.
    pub crashed: Vec<String>,
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
    /// ids it started. `false` (nothing recorded, no line appended) when `end.node` is given
    /// and the record names another node (or the call is unknown).
    async fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool>;

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

    /// Marks every synchronous call still `running` on `gone.node` as `crashed`, ended at
    /// `gone.ended`, with no error code and the message "<cause> while this call ran" (called
    /// when that node cannot be running it any more: at its own start, or when another server
    /// took its work over). Asynchronous runs are
    /// [`InvocationStore::requeue_interrupted_runs`]'s. Returns how many.
    async fn fail_interrupted_invocations(&self, gone: &Interruption<'_>) -> Result<usize>;

    /// Stores a run (queued, or a call starting now) with what it was asked with. `false`
    /// (nothing stored) when a run with its id exists.
    async fn insert_run(&self, run: &NewRun) -> Result<bool>;

    /// Records a call and how it ended at once: [`InvocationStore::insert_run`] (nothing when
    /// a record with its id exists already) and then [`InvocationStore::finish_invocation`]
    /// (whose answer this is), in one transaction where the backend can. What a blocking call
    /// that ended quickly writes: one write rather than one at its start and one at its end.
    async fn record_call(
        &self,
        run: &NewRun,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool> {
        self.insert_run(run).await?;
        self.finish_invocation(&run.id, end, logs).await
    }

    /// Stores `writes` in order, in one transaction where the backend can (one commit for
    /// many calls); for each, whether it was stored (see [`InvocationStore::insert_run`] and
    /// [`InvocationStore::record_call`]).
    async fn write_calls(&self, writes: &[CallWrite]) -> Result<Vec<bool>> {
        let mut stored = Vec::with_capacity(writes.len());
        for write in writes {
            stored.push(match write {
                CallWrite::Running(run) => self.insert_run(run).await?,
                CallWrite::Ended { run, end, logs } => {
                    self.record_call(run, &end.borrowed(), logs).await?
                }
            });
        }
        Ok(stored)
    }

    /// Queued runs, oldest accepted first, at most `limit`, but none of the functions in
    /// `skip` (each `namespace/function` as the record names it: those with no room now).
    async fn queued_runs(&self, limit: u32, skip: &[String]) -> Result<Vec<InvocationRecord>>;

    /// Moves run `id` from `queued` to `running` on `node` (started at `started`, one more
    /// attempt). `false` when it is not queued (claimed by another, cancelled, unknown).
    async fn claim_run(&self, id: &str, started: &str, node: &str) -> Result<bool>;

    /// Ends run `id` as `cancelled` at `ended` if it is still queued; `false` otherwise.
    async fn cancel_queued_run(&self, id: &str, ended: &str) -> Result<bool>;

    /// For asynchronous runs left `running` on `gone.node` (see
    /// [`InvocationStore::fail_interrupted_invocations`]): one on its first attempt is queued
    /// again (with a log line "<cause> while this run ran (attempt 1); it runs again (attempt
    /// 2)"), one on its second ends `crashed` at `gone.ended`. Of several servers doing this
    /// for one node at once, each run is taken once.
    async fn requeue_interrupted_runs(&self, gone: &Interruption<'_>) -> Result<Requeued>;

    /// A namespace's runs as `filter` says, newest first (by acceptance).
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<InvocationRecord>>;

    /// A namespace's runs accepted at or after `since` (RFC 3339, compared as text), counted
    /// by function, status and cold start, in that order.
    async fn run_counts(&self, namespace: &str, since: &str) -> Result<Vec<RunCount>>;

    /// Records how the POST of run `id`'s result to its callback went.
    async fn set_callback_status(&self, id: &str, status: &str) -> Result<()>;

    /// Removes ended runs (with their logs) accepted before `before`, and in each namespace
    /// every ended run beyond its newest `keep` (counting every run). Returns how many.
    async fn purge_runs(&self, before: &str, keep: u32) -> Result<usize>;

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
