//! Workflows: flow sources, instances (with the engine's checkpoint as JSON text, saved after
//! every state), the states each instance finished, instance logs, the calls an instance's
//! actions made, and variables of the namespace, workflow and instance scopes. The shapes of
//! sources and checkpoints belong to faasbox-flow; the store keeps them as text.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub namespace: String,
    pub path: String,
    pub source: String,
    pub created: String,
    pub updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInstanceRecord {
    pub id: String,
    pub namespace: String,
    pub flow: String,
    /// The flow's source when the instance started (a redeploy does not change it).
    pub source: String,
    /// `running`, `waiting`, `complete`, `failed` or `cancelled`.
    pub status: String,
    pub input: String,
    pub output: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub checkpoint: String,
    pub parent: Option<String>,
    pub created: String,
    pub updated: String,
    /// The JSON a state's `metadata` last set, if any.
    pub metadata: Option<String>,
}

/// A new instance, for [`FlowStore::create_instance`].
pub struct NewInstance<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
    pub flow: &'a str,
    pub source: &'a str,
    pub input: &'a str,
    pub checkpoint: &'a str,
    pub parent: Option<&'a str>,
    pub now: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A line for [`FlowStore::append_instance_logs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstanceLog<'a> {
    pub ts_ms: i64,
    pub message: &'a str,
    pub state: Option<&'a str>,
    pub invocation: Option<&'a str>,
}

/// A call an instance's action made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[async_trait]
pub trait FlowStore: Send + Sync {
    // --- flows ------------------------------------------------------------------------------

    /// Creates or replaces a flow's source (keeping `created` on replace); `NoNamespace` when
    /// the namespace does not exist.
    async fn put_flow(
        &self,
        namespace: &str,
        path: &str,
        source: &str,
        now: &str,
    ) -> Result<FlowRecord>;

    async fn flow(&self, namespace: &str, path: &str) -> Result<Option<FlowRecord>>;

    /// A namespace's flows, by path.
    async fn list_flows(&self, namespace: &str) -> Result<Vec<FlowRecord>>;

    /// Deletes a flow and its workflow-scoped variables, in one transaction. False when absent.
    async fn delete_flow(&self, namespace: &str, path: &str) -> Result<bool>;

    // --- instances --------------------------------------------------------------------------

    /// Stores a new instance as `running`.
    async fn create_instance(&self, new: &NewInstance<'_>) -> Result<()>;

    /// Sets the instance's metadata (a state's `metadata`, as JSON text).
    async fn set_instance_metadata(&self, id: &str, metadata: &str, now: &str) -> Result<()>;

    /// Saves an instance's checkpoint and status; with `finished`, records (in the same
    /// transaction) that state `finished.1` was the instance's step `finished.0` (once: a
    /// second save of the same step keeps the first).
    async fn save_checkpoint(
        &self,
        id: &str,
        status: &str,
        checkpoint: &str,
        finished: Option<(u64, &str)>,
        now: &str,
    ) -> Result<()>;

    /// Records how an instance ended (`error`: code and message). An instance that already
    /// ended keeps its end; returns whether this one was recorded.
    async fn finish_instance(
        &self,
        id: &str,
        status: &str,
        output: Option<&str>,
        error: Option<(&str, &str)>,
        now: &str,
    ) -> Result<bool>;

    async fn instance(&self, id: &str) -> Result<Option<FlowInstanceRecord>>;

    /// A namespace's instances, newest first.
    async fn list_instances(&self, namespace: &str, limit: u32) -> Result<Vec<FlowInstanceRecord>>;

    /// Instances with `status`, oldest first (the server resumes the `running` ones at start).
    async fn instances_with_status(&self, status: &str) -> Result<Vec<FlowInstanceRecord>>;

    /// The ids of a namespace's instances that have not ended (`running` or `waiting`),
    /// oldest first.
    async fn unfinished_instances(&self, namespace: &str) -> Result<Vec<String>>;

    /// The states an instance finished, in order: (step, state id).
    async fn finished_states(&self, id: &str) -> Result<Vec<(u64, String)>>;

    // --- instance logs and calls ---------------------------------------------------------

    /// Appends a line to an instance's log; nothing for an instance that is gone (a run that
    /// ends after its namespace was deleted leaves no lines behind).
    async fn append_instance_log(&self, id: &str, ts_ms: i64, message: &str) -> Result<()>;

    /// Appends lines to an instance's log in one transaction (nothing for an instance that is
    /// gone).
    async fn append_instance_logs(&self, id: &str, lines: &[NewInstanceLog<'_>]) -> Result<()>;

    /// An instance's log lines after `after_seq` (0: all), in order.
    async fn instance_logs(&self, id: &str, after_seq: i64) -> Result<Vec<InstanceLogRecord>>;

    /// Records a call instance `id`'s state made (`kind`: "invocation" or "instance"; the
    /// record's `status` is not stored); nothing for an instance that is gone.
    async fn record_instance_call(&self, id: &str, call: &InstanceCallRecord) -> Result<()>;

    /// The calls instance `id` made, in order, each with its invocation's or subflow
    /// instance's status now.
    async fn instance_calls(&self, id: &str) -> Result<Vec<InstanceCallRecord>>;

    // --- variables --------------------------------------------------------------------------

    /// A variable's JSON text. `owner` is "" for the namespace scope, the flow's path for the
    /// workflow scope and the instance id for the instance scope.
    async fn variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<String>>;

    /// Sets a variable (JSON text), or deletes it with `None`.
    async fn set_variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
        value: Option<&str>,
        now: &str,
    ) -> Result<()>;
}
