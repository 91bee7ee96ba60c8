//! Workflows: flow sources, instances (with the engine's checkpoint as JSON text, saved after
//! every state), the states each instance finished, instance logs, the calls an instance's
//! actions made, and variables of the namespace, workflow and instance scopes. The shapes of
//! sources and checkpoints belong to faasbox-flow; the store keeps them as text.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A deployed workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Its namespace.
    pub namespace: String,
    /// Its path, unique in its namespace.
    pub path: String,
    /// Its source (YAML or JSON text, as deployed).
    pub source: String,
    /// When it was first deployed; kept on redeploy.
    pub created: String,
    /// When its source last changed.
    pub updated: String,
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInstanceRecord {
    /// Its id (unique; chosen by the server).
    pub id: String,
    /// The namespace it runs in.
    pub namespace: String,
    /// The path of its flow.
    pub flow: String,
    /// The flow's source when the instance started (a redeploy does not change it).
    pub source: String,
    /// `running`, `waiting`, `complete`, `failed` or `cancelled`.
    pub status: String,
    /// Its input (JSON text).
    pub input: String,
    /// Its output (JSON text) once it completed.
    pub output: Option<String>,
    /// The error's code once it failed.
    pub error_code: Option<String>,
    /// The error's message once it failed.
    pub error_message: Option<String>,
    /// The engine's checkpoint (JSON text), as last saved.
    pub checkpoint: String,
    /// The instance that started it as a subflow, if one did.
    pub parent: Option<String>,
    /// How many subflow calls deep it runs: 0 for an instance started from outside, its
    /// caller's depth + 1 for a subflow (an `async` action's too, which records no parent).
    pub depth: u32,
    /// When it was created.
    pub created: String,
    /// When it last changed (checkpoint, metadata or end).
    pub updated: String,
    /// The JSON a state's `metadata` last set, if any.
    pub metadata: Option<String>,
}

/// A new instance, for [`FlowStore::create_instance`].
pub struct NewInstance<'a> {
    /// Its id; a second instance with the same id is a backend error.
    pub id: &'a str,
    /// The namespace it runs in.
    pub namespace: &'a str,
    /// The path of its flow.
    pub flow: &'a str,
    /// The flow's source it runs.
    pub source: &'a str,
    /// Its input (JSON text).
    pub input: &'a str,
    /// The engine's first checkpoint (JSON text).
    pub checkpoint: &'a str,
    /// The instance that started it as a subflow, if one did.
    pub parent: Option<&'a str>,
    /// How many subflow calls deep it runs (see [`FlowInstanceRecord::depth`]).
    pub depth: u32,
    /// Its `created` and `updated`.
    pub now: &'a str,
    /// The server that drives it (its creator), holding it with a lease of `lease_ms` from now
    /// (by the database's clock) at epoch 0; `None`: no owner, any server may take it over.
    pub owner: Option<&'a str>,
    /// How long the owner's lease lasts, in milliseconds (ignored without an owner).
    pub lease_ms: i64,
}

/// What [`FlowStore::claim_instance`] claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A `waiting` instance, to resume it (a delivery or a timeout): it becomes `running`.
    /// Of several servers resuming one wait, one gets it.
    Resume,
    /// A `running` instance whose owner's lease expired (or that has no owner): a server that
    /// died or lost the database left it.
    TakeOver,
    /// A `running` instance this node owns already (start-up: a restarted server resumes its
    /// own instances whatever their lease).
    Mine,
}

/// A `running` instance nobody holds ([`FlowStore::expired_instances`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredInstance {
    /// Its id.
    pub id: String,
    /// The instance that started it as a subflow, if one did (its parent drives it).
    pub parent: Option<String>,
    /// The server whose lease expired; `None` when it never had an owner.
    pub owner: Option<String>,
}

/// The fence of a write to an instance: the node that drives it and the epoch its claim
/// returned. `None` for writes that must win whoever drives it (a cancel).
pub type Fence<'a> = Option<(&'a str, i64)>;

/// One line of an instance's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLogRecord {
    /// The cursor: unique among the lines of all instances, and lines stored later have larger
    /// ones (always above 0).
    pub seq: i64,
    /// When it was logged (ms since the epoch).
    pub ts_ms: i64,
    /// The text.
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
    /// When it was logged (ms since the epoch).
    pub ts_ms: i64,
    /// The text.
    pub message: &'a str,
    /// The state it belongs to, if any.
    pub state: Option<&'a str>,
    /// The invocation it came from, if any.
    pub invocation: Option<&'a str>,
}

/// A call an instance's action made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCallRecord {
    /// The invocation's id (`kind` "invocation") or the subflow's instance id ("instance").
    pub id: String,
    /// `invocation` or `instance`.
    pub kind: String,
    /// The state whose action made the call.
    pub state: String,
    /// The flow's function id.
    pub function: String,
    /// When the call started.
    pub started: String,
    /// The invocation's status (`running`, `succeeded`, …) or the subflow instance's, read when
    /// the calls are listed; `None` when that invocation or instance is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Which instances [`FlowStore::list_instances_by`] lists.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// The namespace.
    pub namespace: String,
    /// Only this flow's.
    pub flow: Option<String>,
    /// Only instances with this status.
    pub status: Option<String>,
    /// Only instances after this one (its id) in the list's order, that is older: the next
    /// page. An instance that is not of the namespace gives none.
    pub before: Option<String>,
    /// At most this many (newest first).
    pub limit: u32,
}

/// The start of one state of an instance ([`FlowStore::start_step`]).
#[derive(Debug, Clone, Default)]
pub struct StepStart<'a> {
    /// The instance's id.
    pub instance: &'a str,
    /// From 1: the how manieth state of the instance.
    pub step: u64,
    /// The state's id.
    pub state: &'a str,
    /// When it started (RFC 3339).
    pub started: &'a str,
    /// The state's input (JSON text); `None` when it was too large to keep.
    pub input: Option<&'a str>,
    /// Whether the input was left out.
    pub truncated: bool,
}

/// The end of an instance's open step ([`FlowStore::end_step`]).
#[derive(Debug, Clone, Default)]
pub struct StepEnd<'a> {
    /// When it ended (RFC 3339).
    pub finished: &'a str,
    /// Its output (JSON text); `None` on error or when too large (`truncated`).
    pub output: Option<&'a str>,
    /// Its error: code and message.
    pub error: Option<(&'a str, &'a str)>,
    /// Whether the output was left out.
    pub truncated: bool,
}

/// One write of an instance's progress, for [`FlowStore::record_progress`]: what the single
/// methods of the same name write, owned so a batch can move to a blocking thread whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressWrite {
    /// A log line ([`FlowStore::append_instance_logs`]).
    Log {
        /// When it was logged (ms since the epoch).
        ts_ms: i64,
        /// The text.
        message: String,
        /// The state it belongs to, if any.
        state: Option<String>,
        /// The invocation it came from, if any.
        invocation: Option<String>,
    },
    /// The start of a step ([`FlowStore::start_step`]).
    StartStep {
        /// From 1: the how manieth state of the instance.
        step: u64,
        /// The state's id.
        state: String,
        /// When it started (RFC 3339).
        started: String,
        /// Its input (JSON text, masked); `None` when too large.
        input: Option<String>,
        /// Whether the input was left out.
        truncated: bool,
    },
    /// The end of the open step ([`FlowStore::end_step`]).
    EndStep {
        /// When it ended (RFC 3339).
        finished: String,
        /// Its output (JSON text, masked); `None` on error or when too large.
        output: Option<String>,
        /// Its error: code and message.
        error: Option<(String, String)>,
        /// Whether the output was left out.
        truncated: bool,
    },
    /// A checkpoint with the state that finished ([`FlowStore::save_checkpoint`]); fenced.
    Checkpoint {
        /// `running` or `waiting`.
        status: String,
        /// The engine's checkpoint (JSON text).
        checkpoint: String,
        /// The step that finished and its state.
        finished: Option<(u64, String)>,
        /// Becomes `updated` (RFC 3339).
        now: String,
    },
    /// A call the instance's action made ([`FlowStore::record_instance_call`]).
    Call(InstanceCallRecord),
    /// How the instance ended ([`FlowStore::finish_instance`]); fenced.
    Finish {
        /// `complete`, `failed` or `cancelled`.
        status: String,
        /// The output (JSON text) of a completed instance.
        output: Option<String>,
        /// The error: code and message.
        error: Option<(String, String)>,
        /// Becomes `updated` (RFC 3339).
        now: String,
    },
}

/// A [`ProgressWrite`] borrowed as the arguments of the single write it stands for, so that
/// every backend turns the owned form into its writes the same way.
#[derive(Debug)]
pub enum ProgressView<'a> {
    /// [`FlowStore::append_instance_logs`] of one line.
    Log(NewInstanceLog<'a>),
    /// [`FlowStore::start_step`].
    StartStep(StepStart<'a>),
    /// [`FlowStore::end_step`].
    EndStep(StepEnd<'a>),
    /// [`FlowStore::save_checkpoint`]'s arguments after the instance and before the fence.
    Checkpoint {
        /// `running` or `waiting`.
        status: &'a str,
        /// The engine's checkpoint (JSON text).
        checkpoint: &'a str,
        /// The step that finished and its state.
        finished: Option<(u64, &'a str)>,
        /// Becomes `updated` (RFC 3339).
        now: &'a str,
    },
    /// [`FlowStore::record_instance_call`].
    Call(&'a InstanceCallRecord),
    /// [`FlowStore::finish_instance`]'s arguments after the instance and before the fence.
    Finish {
        /// `complete`, `failed` or `cancelled`.
        status: &'a str,
        /// The output (JSON text) of a completed instance.
        output: Option<&'a str>,
        /// The error: code and message.
        error: Option<(&'a str, &'a str)>,
        /// Becomes `updated` (RFC 3339).
        now: &'a str,
    },
}

impl ProgressWrite {
    /// This write borrowed as its single write's arguments, for instance `instance`.
    pub fn view<'a>(&'a self, instance: &'a str) -> ProgressView<'a> {
        let pair = |e: &'a Option<(String, String)>| {
            e.as_ref()
                .map(|(code, message)| (code.as_str(), message.as_str()))
        };
        match self {
            ProgressWrite::Log {
                ts_ms,
                message,
                state,
                invocation,
            } => ProgressView::Log(NewInstanceLog {
                ts_ms: *ts_ms,
                message,
                state: state.as_deref(),
                invocation: invocation.as_deref(),
            }),
            ProgressWrite::StartStep {
                step,
                state,
                started,
                input,
                truncated,
            } => ProgressView::StartStep(StepStart {
                instance,
                step: *step,
                state,
                started,
                input: input.as_deref(),
                truncated: *truncated,
            }),
            ProgressWrite::EndStep {
                finished,
                output,
                error,
                truncated,
            } => ProgressView::EndStep(StepEnd {
                finished,
                output: output.as_deref(),
                error: pair(error),
                truncated: *truncated,
            }),
            ProgressWrite::Checkpoint {
                status,
                checkpoint,
                finished,
                now,
            } => ProgressView::Checkpoint {
                status,
                checkpoint,
                finished: finished
                    .as_ref()
                    .map(|(step, state)| (*step, state.as_str())),
                now,
            },
            ProgressWrite::Call(call) => ProgressView::Call(call),
            ProgressWrite::Finish {
                status,
                output,
                error,
                now,
            } => ProgressView::Finish {
                status,
                output: output.as_deref(),
                error: pair(error),
                now,
            },
        }
    }
}

/// One state an instance ran: a row of its timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// From 1: the how manieth state of the instance.
    pub step: u64,
    /// The state's id.
    pub state: String,
    /// When it started.
    pub started: String,
    /// `None` while it runs (or waits).
    pub finished: Option<String>,
    /// Its input (JSON text, masked).
    pub input: Option<String>,
    /// Its output (JSON text, masked).
    pub output: Option<String>,
    /// Its error's code, when it failed.
    pub error_code: Option<String>,
    /// Its error's message.
    pub error_message: Option<String>,
    /// Whether its input or output was left out (too large).
    pub truncated: bool,
}

/// Flows, their instances with logs and calls, and variables. A namespace's rows of all of
/// these go with the namespace ([`crate::NamespaceStore::delete_namespace`]).
#[async_trait]
pub trait FlowStore: Send + Sync {
    // --- flows ------------------------------------------------------------------------------

    /// Creates or replaces a flow's source (keeping `created` on replace); `NoNamespace` when
    /// the namespace does not exist. Instances keep the source they started with. Returns the
    /// stored record.
    async fn put_flow(
        &self,
        namespace: &str,
        path: &str,
        source: &str,
        now: &str,
    ) -> Result<FlowRecord>;

    /// The flow at `path` in `namespace`; `None` when there is none.
    async fn flow(&self, namespace: &str, path: &str) -> Result<Option<FlowRecord>>;

    /// A namespace's flows, ordered by path.
    async fn list_flows(&self, namespace: &str) -> Result<Vec<FlowRecord>>;

    /// Deletes a flow and its workflow-scoped variables, in one transaction. Its instances,
    /// listeners and schedule stay (the server removes those it must). False when the flow did
    /// not exist.
    async fn delete_flow(&self, namespace: &str, path: &str) -> Result<bool>;

    // --- instances --------------------------------------------------------------------------

    /// Stores a new instance as `running` (no output, error or metadata). The namespace is not
    /// checked.
    async fn create_instance(&self, new: &NewInstance<'_>) -> Result<()>;

    /// Sets the instance's metadata (a state's `metadata`, as JSON text) and `updated`, replacing
    /// what it had. Nothing for an unknown instance.
    /// With a fence, the instance must be held by that node at that epoch, or the write is
    /// refused with [`crate::StoreError::LeaseLost`] (nothing for an unknown instance).
    async fn set_instance_metadata(
        &self,
        id: &str,
        metadata: &str,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()>;

    /// Saves an instance's checkpoint and status; with `finished`, records (in the same
    /// transaction) that state `finished.1` was the instance's step `finished.0` (once: a
    /// second save of the same step keeps the first). `now` becomes `updated`. The status is
    /// set as given, whatever the instance's status was. Saving `waiting` ends the owner's
    /// lease (nobody drives a waiting instance; [`Claim::Resume`] claims it) and keeps the
    /// owner as the node that saved the wait. With a fence, the instance must be held by that
    /// node at that epoch, or nothing is saved and the answer is
    /// [`crate::StoreError::LeaseLost`] (nothing for an unknown instance).
    async fn save_checkpoint(
        &self,
        id: &str,
        status: &str,
        checkpoint: &str,
        finished: Option<(u64, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()>;

    /// Records how an instance ended (`error`: code and message). An instance that already
    /// ended (status other than `running` or `waiting`) keeps its end, so of two racing ends
    /// the first wins; returns whether this one was recorded (false too for an unknown id).
    /// Sets status, output, error and `updated`; the checkpoint stays, the lease ends. With a
    /// fence, an instance that has not ended and is held by another node or epoch is refused
    /// with [`crate::StoreError::LeaseLost`]. Without one (a cancel, which may come through
    /// another server than the one driving the instance), the epoch moves on too, so the
    /// driver's next fenced write is refused and it stops.
    async fn finish_instance(
        &self,
        id: &str,
        status: &str,
        output: Option<&str>,
        error: Option<(&str, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<bool>;

    /// Claims instance `id` for `node` as `want` says, with a lease of `lease_ms` from now (by
    /// the database's clock), and moves its epoch on by one: the epoch the claimer's fenced
    /// writes then carry. `None` when the instance is not in the state `want` asks for (gone,
    /// ended, another server claimed it first, its lease has not expired).
    async fn claim_instance(
        &self,
        id: &str,
        node: &str,
        lease_ms: i64,
        want: Claim,
    ) -> Result<Option<i64>>;

    /// Extends the lease of every `running` instance `node` owns to `lease_ms` from now (by
    /// the database's clock); returns how many. A server calls it well within each lease.
    async fn renew_leases(&self, node: &str, lease_ms: i64) -> Result<u64>;

    /// `running` instances whose owner's lease expired, or that have no owner, oldest (by
    /// `created`) first, at most `limit`. The candidates for [`Claim::TakeOver`].
    async fn expired_instances(&self, limit: u32) -> Result<Vec<ExpiredInstance>>;

    /// The ids of the `running` instances `node` owns, oldest first (a restarted server's own
    /// instances, for [`Claim::Mine`]).
    async fn instances_owned_by(&self, node: &str) -> Result<Vec<String>>;

    /// The instance `id`; `None` when there is none (never was, or its namespace was deleted).
    async fn instance(&self, id: &str) -> Result<Option<FlowInstanceRecord>>;

    /// A namespace's newest `limit` instances, newest first: by `created`, instances created at
    /// the same time the later stored first.
    async fn list_instances(&self, namespace: &str, limit: u32) -> Result<Vec<FlowInstanceRecord>>;

    /// A namespace's instances as `filter` says, newest first: the latest stored first.
    async fn list_instances_by(&self, filter: &InstanceFilter) -> Result<Vec<FlowInstanceRecord>>;

    /// Instances of every namespace with `status`, oldest (by `created`) first (the server
    /// resumes the `running` ones at start).
    async fn instances_with_status(&self, status: &str) -> Result<Vec<FlowInstanceRecord>>;

    /// The ids of a namespace's instances that have not ended (`running` or `waiting`),
    /// oldest (by `created`) first.
    async fn unfinished_instances(&self, namespace: &str) -> Result<Vec<String>>;

    /// How many instances of a namespace have each status, by status.
    async fn instance_counts(&self, namespace: &str) -> Result<Vec<(String, u64)>>;

    /// Records that the instance started its `step`th state (once: a second start of the same
    /// step keeps the first), with its input (JSON text, `None` when left out: `truncated`).
    async fn start_step(&self, start: &StepStart<'_>) -> Result<()>;

    /// Ends the instance's open step (the one started and not ended), if any, with its output
    /// or its error; `truncated` when an output was left out.
    async fn end_step(&self, instance: &str, end: &StepEnd<'_>) -> Result<()>;

    /// The instance's steps (its timeline), in order; empty for an unknown id.
    async fn instance_steps(&self, instance: &str) -> Result<Vec<StepRecord>>;

    /// The states an instance finished, by step: (step, state id). Empty for an unknown id.
    async fn finished_states(&self, id: &str) -> Result<Vec<(u64, String)>>;

    // --- instance logs and calls ---------------------------------------------------------

    /// Appends a line to an instance's log; nothing for an instance that is gone (a run that
    /// ends after its namespace was deleted leaves no lines behind).
    async fn append_instance_log(&self, id: &str, ts_ms: i64, message: &str) -> Result<()>;

    /// Appends lines to an instance's log in one transaction (nothing for an instance that is
    /// gone).
    async fn append_instance_logs(&self, id: &str, lines: &[NewInstanceLog<'_>]) -> Result<()>;

    /// An instance's log lines with a cursor above `after_seq` (0: all), in the order stored.
    /// Empty for an unknown instance.
    async fn instance_logs(&self, id: &str, after_seq: i64) -> Result<Vec<InstanceLogRecord>>;

    /// Records a call instance `id`'s state made (`kind`: "invocation" or "instance"; the
    /// record's `status` is not stored); nothing for an instance that is gone. A call id may be
    /// recorded more than once.
    async fn record_instance_call(&self, id: &str, call: &InstanceCallRecord) -> Result<()>;

    /// The calls instance `id` made, in the order recorded, each with its invocation's or
    /// subflow instance's status now. Empty for an unknown instance.
    async fn instance_calls(&self, id: &str) -> Result<Vec<InstanceCallRecord>>;

    /// Writes instance `id`'s progress (log lines, step starts and ends, a checkpoint, a call,
    /// its end), in order, each as its single method writes it; a backend writes them in one
    /// transaction, so a refused fenced write (a `Checkpoint` or `Finish` with `fence`, see
    /// [`FlowStore::save_checkpoint`]) leaves none of them. Returns whether a `Finish` recorded
    /// the end (false without one). The default writes them one by one (a refused write leaves
    /// those before it written).
    async fn record_progress(
        &self,
        id: &str,
        writes: Vec<ProgressWrite>,
        fence: Fence<'_>,
    ) -> Result<bool> {
        let mut ended = false;
        let mut lines = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            match write.view(id) {
                ProgressView::Log(line) => {
                    // Lines in a row go in as one append.
                    lines.push(line);
                    let last = !matches!(writes.get(i + 1), Some(ProgressWrite::Log { .. }));
                    if last {
                        self.append_instance_logs(id, &std::mem::take(&mut lines))
                            .await?;
                    }
                }
                ProgressView::StartStep(start) => self.start_step(&start).await?,
                ProgressView::EndStep(end) => self.end_step(id, &end).await?,
                ProgressView::Checkpoint {
                    status,
                    checkpoint,
                    finished,
                    now,
                } => {
                    self.save_checkpoint(id, status, checkpoint, finished, now, fence)
                        .await?
                }
                ProgressView::Call(call) => self.record_instance_call(id, call).await?,
                ProgressView::Finish {
                    status,
                    output,
                    error,
                    now,
                } => {
                    ended = self
                        .finish_instance(id, status, output, error, now, fence)
                        .await?;
                }
            }
        }
        Ok(ended)
    }

    // --- variables --------------------------------------------------------------------------

    /// A variable's JSON text; `None` when it is not set. `scope` is `namespace`, `workflow`
    /// or `instance`; `owner` is "" for the namespace scope, the flow's path for the workflow
    /// scope and the instance id for the instance scope. The four together name one variable.
    async fn variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<String>>;

    /// Sets a variable (JSON text), replacing its value, or deletes it with `None` (deleting
    /// one that is not set is no error). The namespace is not checked.
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
