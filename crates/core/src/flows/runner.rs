//! Starting, driving, resuming and cancelling instances. An instance is created in the store
//! with its first checkpoint before it runs, so an accepted run survives a crash; at start the
//! server drives its own instances that were `running` again from their last checkpoint.
//!
//! With several servers on one store, each instance is driven by one server at a time: the
//! one that holds its lease (its creator, or the server that claimed it to resume a wait, at
//! start-up, or to take it over from a server that stopped: `super::leases`). Every run
//! carries the epoch of its hold, and the store refuses its writes once another server
//! claimed the instance; the run then stops without recording anything more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use faasbox_flow::engine::{
    codes, Checkpoint, Engine, FlowError, FunctionCall, InstanceRef, Outcome, Wait, WaitResolution,
};
use faasbox_flow::model::{StartKind, StateKind};
use faasbox_store::{Claim, NewInstance};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::effects::{store_error, store_failed, ServerEffects};
use super::functions::Subflows;
use crate::clock;
use crate::failure::{Failure, FailureKind};
use crate::state::AppState;

/// The error code of a stored flow that no longer parses (it was stored by another version).
pub const FLOW_INVALID: &str = "faasbox.flow.invalid";
/// Direktiv's code for a flow that cannot be started this way (an event-started flow run by
/// hand or as a subflow).
pub const CANNOT_INVOKE: &str = "direktiv.workflow.invoke";
/// Direktiv's code for a subflow that does not exist (catchable in faasbox).
pub const SUBFLOW_NOT_FOUND: &str = "direktiv.workflow.notfound";

/// Who starts an instance. A flow that starts on events is started by its events only, as
/// in Direktiv: its input is the events, which a run by hand or a parent does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedBy {
    /// `POST …/flows/{path}/run`.
    Api,
    /// A parent's `subflow` action.
    Subflow,
    /// Its events or its schedule.
    Trigger,
}

/// How deep subflows may nest: an instance started from outside is depth 0, and a subflow
/// deeper than this (`async` actions' included) fails its caller, as in Direktiv.
pub const MAX_SUBFLOW_DEPTH: u32 = 5;
/// The (uncatchable) error of a subflow call past [`MAX_SUBFLOW_DEPTH`], Direktiv's code.
pub const SUBFLOW_TOO_DEEP: &str = "direktiv.limits.depth";

/// Where an instance comes from: started from outside, or by a subflow call.
#[derive(Debug, Clone, Copy)]
pub struct Lineage<'a> {
    /// The calling instance, recorded as its parent (`None` when started from outside, and for
    /// an `async` action's subflow, which nobody waits for).
    pub parent: Option<&'a str>,
    /// How many subflow calls deep it runs.
    pub depth: u32,
}

impl Lineage<'static> {
    /// An instance started from outside (the API, an event, a schedule).
    pub const TOP: Lineage<'static> = Lineage {
        parent: None,
        depth: 0,
    };
}

/// Creates an instance of `namespace/path` with `input`; it does not run yet (see [`spawn`]).
pub async fn create(
    state: &Arc<AppState>,
    namespace: &str,
    path: &str,
    input: Value,
    by: StartedBy,
) -> Result<String, Failure> {
    let id = crate::record_id::instance();
    create_as(state, &id, namespace, path, input, Lineage::TOP, by).await
}

/// [`create`] with the instance id chosen by the caller (an event delivery's, so that
/// handing it over again after a crash finds the instance instead of making another), and
/// the lineage of a subflow.
pub async fn create_as(
    state: &Arc<AppState>,
    id: &str,
    namespace: &str,
    path: &str,
    input: Value,
    lineage: Lineage<'_>,
    by: StartedBy,
) -> Result<String, Failure> {
    let new = prepare(state, id, namespace, path, input, lineage, by).await?;
    state
        .store
        .create_instance(&new.record(&clock::now_rfc3339()))
        .await?;
    crate::metrics::flow_started(namespace);
    Ok(id.to_string())
}

/// An instance ready to be stored: its flow read and checked, its first checkpoint made.
pub struct PreparedInstance {
    id: String,
    namespace: String,
    flow: String,
    source: String,
    input: String,
    checkpoint: String,
    parent: Option<String>,
    depth: u32,
    /// This server's node id: it drives the instance it creates.
    owner: String,
    lease_ms: i64,
}

impl PreparedInstance {
    /// The instance's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The instance as the store holds it once [`PreparedInstance::record`] was stored at
    /// `now`.
    fn into_record(self, now: String) -> faasbox_store::FlowInstanceRecord {
        faasbox_store::FlowInstanceRecord {
            id: self.id,
            namespace: self.namespace,
            flow: self.flow,
            source: self.source,
            status: "running".to_string(),
            input: self.input,
            output: None,
            error_code: None,
            error_message: None,
            checkpoint: self.checkpoint,
            parent: self.parent,
            depth: self.depth,
            created: now.clone(),
            updated: now,
            metadata: None,
        }
    }

    /// The store's record of it, created at `now`.
    pub fn record<'a>(&'a self, now: &'a str) -> NewInstance<'a> {
        NewInstance {
            id: &self.id,
            namespace: &self.namespace,
            flow: &self.flow,
            source: &self.source,
            input: &self.input,
            checkpoint: &self.checkpoint,
            parent: self.parent.as_deref(),
            depth: self.depth,
            now,
            owner: Some(&self.owner),
            lease_ms: self.lease_ms,
        }
    }
}

/// Reads and checks `namespace/path` and makes the first checkpoint of an instance `id` of
/// it (stored by [`create_as`], or by a caller that stores it with more in one transaction).
pub async fn prepare(
    state: &Arc<AppState>,
    id: &str,
    namespace: &str,
    path: &str,
    input: Value,
    lineage: Lineage<'_>,
    by: StartedBy,
) -> Result<PreparedInstance, Failure> {
    let record = state.store.flow(namespace, path).await?;
    let Some(record) = record else {
        return Err(Failure::not_found(format!(
            "flow {namespace}/{path} does not exist; deploy it with `faasbox flow deploy {namespace}/{path} FILE`"
        )));
    };
    let flow = super::load_cached(&record.source)
        .await
        .map_err(|problems| {
            Failure::new(
                FailureKind::Conflict,
                FLOW_INVALID,
                format!("flow {namespace}/{path} is invalid: {}", problems[0]),
            )
        })?;
    let on_events = matches!(
        flow.start.kind,
        StartKind::Event { .. } | StartKind::EventsXor { .. } | StartKind::EventsAnd { .. }
    );
    match by {
        StartedBy::Api if on_events => {
            return Err(Failure::new(
                FailureKind::Conflict,
                CANNOT_INVOKE,
                format!(
                    "cannot manually invoke event-based workflow: flow {namespace}/{path} \
                     starts when its events arrive; send one with `faasbox event send \
                     {namespace} --type TYPE --source SOURCE`"
                ),
            ))
        }
        StartedBy::Subflow if on_events => {
            return Err(Failure::new(
                FailureKind::Conflict,
                CANNOT_INVOKE,
                format!(
                    "cannot invoke event-based workflow as a subflow: flow {namespace}/{path} \
                     starts when its events arrive"
                ),
            ))
        }
        _ => {}
    }
    let cp = Checkpoint::start(flow.first_state(), input.clone(), clock_ms());
    Ok(PreparedInstance {
        id: id.to_string(),
        namespace: namespace.to_string(),
        flow: path.to_string(),
        source: record.source,
        input: input.to_string(),
        checkpoint: json_text(&cp)?,
        parent: lineage.parent.map(str::to_string),
        depth: lineage.depth,
        owner: state.node.as_str().to_string(),
        lease_ms: state.config.cluster.lease_ms(),
    })
}

/// Runs an instance this server just created (it holds it at epoch 0) in a task of its own.
pub fn spawn(state: &Arc<AppState>, id: String) -> tokio::task::JoinHandle<Outcome> {
    spawn_claimed(state, id, 0)
}

/// Runs an instance this server holds at `epoch` (its claim's) in a task of its own.
pub fn spawn_claimed(
    state: &Arc<AppState>,
    id: String,
    epoch: i64,
) -> tokio::task::JoinHandle<Outcome> {
    let state = state.clone();
    tokio::spawn(async move { drive(&state, &id, epoch, None, CancellationToken::new()).await })
}

/// Claims instance `id` for this server as `want` says (see [`Claim`]): the epoch its run
/// carries; `None` when another server has it (or it is not in the state `want` asks for).
pub async fn claim(state: &Arc<AppState>, id: &str, want: Claim) -> Result<Option<i64>, Failure> {
    let lease_ms = state.config.cluster.lease_ms();
    Ok(state
        .store
        .claim_instance(id, state.node.as_str(), lease_ms, want)
        .await?)
}

/// Runs (or resumes) an instance until it ends or waits, and records how it ended. This
/// server holds the instance at `epoch` (0 for one it created, else its claim's): every
/// write of the run carries it, and once the store refuses one (another server took the
/// instance over) the run stops without recording anything more. A `resolution` resumes the
/// instance's wait (claimed with [`Claim::Resume`]). `cancel` (with [`cancel_instance`])
/// stops it.
pub async fn drive(
    state: &Arc<AppState>,
    id: &str,
    epoch: i64,
    resolution: Option<WaitResolution>,
    cancel: CancellationToken,
) -> Outcome {
    let record = match state.store.instance(id).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Outcome::Failed(FlowError::internal(format!("instance {id} does not exist")))
        }
        Err(e) => return Outcome::Failed(store_failed(e)),
    };
    drive_record(state, record, epoch, resolution, cancel).await
}

/// [`create`] and [`spawn`] in one: the instance is stored, then run in a task of its own from
/// what was stored (not read back). Its id and the task.
pub async fn start(
    state: &Arc<AppState>,
    namespace: &str,
    path: &str,
    input: Value,
    by: StartedBy,
) -> Result<(String, tokio::task::JoinHandle<Outcome>), Failure> {
    let id = crate::record_id::instance();
    let new = prepare(state, &id, namespace, path, input, Lineage::TOP, by).await?;
    let now = clock::now_rfc3339();
    state.store.create_instance(&new.record(&now)).await?;
    crate::metrics::flow_started(namespace);
    let record = new.into_record(now);
    let state = state.clone();
    let run = tokio::spawn(async move {
        drive_record(&state, record, 0, None, CancellationToken::new()).await
    });
    Ok((id, run))
}

/// [`drive`] of the instance stored as `record`.
async fn drive_record(
    state: &Arc<AppState>,
    record: faasbox_store::FlowInstanceRecord,
    epoch: i64,
    resolution: Option<WaitResolution>,
    cancel: CancellationToken,
) -> Outcome {
    let id = record.id.as_str();
    if state.flow_runs.is_deleting(&record.namespace) {
        // Its namespace goes with everything in it; nothing to record.
        return Outcome::Failed(FlowError::fatal(
            codes::CANCELLED,
            "the instance's namespace is being deleted",
        ));
    }
    let Some(registered) = state.flow_runs.register(id, cancel.clone()) else {
        return Outcome::Failed(FlowError::internal(format!(
            "instance {id} is already running"
        )));
    };
    if record.status != "running" {
        // Claiming a wait makes it `running`; an instance that ended or waits is not driven.
        return Outcome::Failed(FlowError::internal(format!(
            "instance {id} is {}; only a running instance (a claimed wait too) is driven",
            record.status
        )));
    }
    let inst = InstanceRef {
        id: id.to_string(),
        namespace: record.namespace.clone(),
        flow: record.flow.clone(),
    };
    let parsed = super::load_cached(&record.source).await;
    let cp = serde_json::from_str::<Checkpoint>(&record.checkpoint);
    let effects = Arc::new(ServerEffects::new(
        state.clone(),
        Arc::new(RunSubflows),
        cp.as_ref()
            .unwrap_or(&Checkpoint::start(None, Value::Null, 0)),
        epoch,
    ));
    let outcome = match (parsed, cp) {
        // A running instance whose checkpoint waits: a server claimed its wait to resume it
        // and stopped before it moved on. It waits again; its resumption comes again (the
        // event delivery, handed over anew, or the timeout the wait stored again fires).
        (
            Ok(_),
            Ok(Checkpoint {
                wait: Some(wait), ..
            }),
        ) if resolution.is_none() => {
            let saved = state
                .store
                .save_checkpoint(
                    id,
                    "waiting",
                    &record.checkpoint,
                    None,
                    &clock::now_rfc3339(),
                    effects.fence(),
                )
                .await;
            drop(registered);
            match saved {
                Err(e @ faasbox_store::StoreError::LeaseLost { .. }) => {
                    return lost(id, Outcome::Failed(store_failed(e)));
                }
                Err(e) => return Outcome::Failed(store_failed(e)),
                Ok(()) => {}
            }
            if !delivery_pending(state, id).await {
                let mark = crate::events::watermark(state).await;
                super::event_waits::on_waiting(state, &inst, &wait, mark).await;
            }
            Outcome::Waiting(wait)
        }
        (Ok(flow), Ok(cp)) => {
            effects.begin(&cp);
            // Only a flow with event states can end up waiting for events.
            let watermark = if waits_for_events(&flow) {
                crate::events::watermark(state).await
            } else {
                0
            };
            let engine = Engine::new(effects.clone(), state.evaluator.clone())
                .with_limits(state.config.flow_limits);
            let outcome = match resolution {
                Some(r) => engine.resume(&inst, &flow, cp, r, &cancel).await,
                None => engine.run(&inst, &flow, cp, &cancel).await,
            };
            // No longer driven: an event that arrives once its wait is stored resumes it.
            drop(registered);
            if effects.lease_lost() {
                return lost(id, outcome);
            }
            if let Outcome::Waiting(wait) = &outcome {
                super::event_waits::on_waiting(state, &inst, wait, watermark).await;
            }
            outcome
        }
        (Err(problems), _) => Outcome::Failed(FlowError::fatal(
            FLOW_INVALID,
            format!("the instance's flow is invalid: {}", problems[0]),
        )),
        (_, Err(e)) => Outcome::Failed(FlowError::internal(format!(
            "the instance's checkpoint is unreadable: {e}"
        ))),
    };
    if state.flow_runs.is_shutting_down() && !matches!(outcome, Outcome::Waiting(_)) {
        // What it did so far is kept (a last checkpoint too: it ends at once when resumed).
        if let Err(e) = effects.close(id).await {
            tracing::warn!("recording the progress of instance {id} failed: {e}");
        }
        return outcome;
    }
    if let Err(refused) = record_end(&inst, &outcome, &effects).await {
        return lost(id, Outcome::Failed(refused));
    }
    if let Outcome::Waiting(Wait {
        deadline_ms: Some(deadline),
        ..
    }) = &outcome
    {
        schedule_wait_timeout(state, id.to_string(), *deadline);
    }
    outcome
}

/// The end of a run whose instance another server took over: nothing more is recorded (that
/// server drives it now); one warning says so.
fn lost(id: &str, outcome: Outcome) -> Outcome {
    tracing::warn!(
        instance = %id,
        "another server took flow instance {id} over (this server's lease on it expired); this server stops driving it and records nothing more"
    );
    match outcome {
        Outcome::Failed(e) if e.code == super::effects::LEASE_LOST => Outcome::Failed(e),
        _ => Outcome::Failed(FlowError::fatal(
            super::effects::LEASE_LOST,
            format!("instance {id} is driven by another server now"),
        )),
    }
}

/// Whether an event delivery that resumes instance `id` is still stored (it is handed over
/// again, so the instance's wait must not be stored again).
async fn delivery_pending(state: &Arc<AppState>, id: &str) -> bool {
    match state.store.pending_deliveries().await {
        Ok(pending) => pending
            .iter()
            .any(|d| d.kind == faasbox_store::ListenerKind::Wait && d.instance_id == id),
        // Storing the wait again at worst resumes it twice; the second finds it moved on.
        Err(_) => false,
    }
}

/// Resumes a waiting instance with [`WaitResolution::TimedOut`] at `deadline` (ms since the
/// epoch), if it still waits for the same wait then. The fast path on the server that saved
/// the wait; [`sweep_due_waits`] fires it on any server.
pub fn schedule_wait_timeout(state: &Arc<AppState>, id: String, deadline: u64) {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(clock_ms()))).await;
        fire_wait_timeout(&state, &id, deadline).await;
    });
}

/// Times out instance `id`'s wait with `deadline`, if it still waits for that wait: of every
/// server (and timer) trying, the one whose `delete_instance_listeners` removed the wait's
/// listener claims it ([`Claim::Resume`]) and drives it. True when this call did.
async fn fire_wait_timeout(state: &Arc<AppState>, id: &str, deadline: u64) -> bool {
    let Ok(Some(record)) = state.store.instance(id).await else {
        return false;
    };
    let same_wait = serde_json::from_str::<Checkpoint>(&record.checkpoint)
        .ok()
        .and_then(|cp| cp.wait)
        .is_some_and(|w| w.deadline_ms == Some(deadline));
    if record.status != "waiting" || !same_wait {
        return false;
    }
    // The wait's event listener goes with the timeout; if an event took it first, the
    // event resumes the instance and the timeout does nothing.
    let took_wait = state
        .store
        .delete_instance_listeners(id)
        .await
        .is_ok_and(|removed| removed > 0);
    if !took_wait {
        return false;
    }
    match claim(state, id, Claim::Resume).await {
        Ok(Some(epoch)) => {
            let resolution = Some(WaitResolution::TimedOut);
            drive(state, id, epoch, resolution, CancellationToken::new()).await;
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::error!(instance = %id, "claiming a timed-out wait failed: {e}");
            false
        }
    }
}

/// How many due waits one sweep looks at.
const DUE_WAITS_PER_SWEEP: u32 = 100;

/// Times out every wait whose deadline has come, whichever server saved it (a wait saved by a
/// server that is gone has no timer anywhere else); returns how many this server fired. Each
/// runs in a task of its own.
pub async fn sweep_due_waits(state: &Arc<AppState>) -> Result<usize, Failure> {
    let due = state
        .store
        .due_waits(clock_ms() as i64, DUE_WAITS_PER_SWEEP)
        .await?;
    let mut fired = Vec::new();
    for (id, deadline) in due {
        let Ok(deadline) = u64::try_from(deadline) else {
            continue;
        };
        let state = state.clone();
        fired.push(tokio::spawn(async move {
            fire_wait_timeout(&state, &id, deadline).await
        }));
    }
    let mut count = 0;
    for task in fired {
        // A fired wait is counted once its instance has been driven (or has waited again).
        if task.await.unwrap_or(false) {
            count += 1;
        }
    }
    Ok(count)
}

/// Sweeps due waits ([`sweep_due_waits`]) once a second until the server stops. Called once
/// at start.
pub fn start_wait_sweeper(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if state.flow_runs.is_shutting_down() {
                return;
            }
            let state = state.clone();
            // A sweep waits for the instances it fired; the next tick does not wait for it.
            tokio::spawn(async move {
                if let Err(e) = sweep_due_waits(&state).await {
                    tracing::warn!("looking for due flow waits failed: {e}");
                }
            });
        }
    });
}

/// Records how a run ended (for a wait, saved already, only the log lines held), fenced, in
/// one transaction with the run's last progress: `Err` when another server took the instance
/// over before its end was recorded.
async fn record_end(
    inst: &InstanceRef,
    outcome: &Outcome,
    effects: &ServerEffects,
) -> Result<(), FlowError> {
    let (status, output, error) = match outcome {
        Outcome::Waiting(_) => {
            return match effects.close(&inst.id).await {
                Err(e) if e.code == super::effects::LEASE_LOST => Err(e),
                Err(e) => {
                    tracing::error!("recording the log of instance {} failed: {e}", inst.id);
                    Ok(())
                }
                Ok(()) => Ok(()),
            }
        }
        Outcome::Completed(output) => ("complete", Some(output.to_string()), None),
        Outcome::Failed(e) if e.code == codes::CANCELLED => {
            ("cancelled", None, Some((e.code.clone(), e.message.clone())))
        }
        Outcome::Failed(e) => ("failed", None, Some((e.code.clone(), e.message.clone()))),
    };
    let line = match &error {
        None => "instance completed".to_string(),
        Some((code, message)) => format!("instance {status}: {code}: {message}"),
    };
    let error = error.as_ref().map(|(c, m)| (c.as_str(), m.as_str()));
    match effects.finish(&inst.id, status, output, error, line).await {
        Ok(true) => crate::metrics::flow_finished(&inst.namespace, status),
        Ok(false) => {}
        Err(e) if e.code == super::effects::LEASE_LOST => return Err(e),
        Err(e) => tracing::error!("recording the end of instance {} failed: {e}", inst.id),
    }
    Ok(())
}

/// Whether `flow` has a state that waits for events (only then can a run end up waiting).
fn waits_for_events(flow: &faasbox_flow::Workflow) -> bool {
    flow.states.iter().any(|s| {
        matches!(
            s.kind,
            StateKind::ConsumeEvent { .. }
                | StateKind::EventsAnd { .. }
                | StateKind::EventsXor { .. }
        )
    })
}

/// The runner as the [`Subflows`] of its instances' effects.
struct RunSubflows;

#[async_trait::async_trait]
impl Subflows for RunSubflows {
    async fn run(
        &self,
        state: &Arc<AppState>,
        parent: &InstanceRef,
        reference: &str,
        call: &FunctionCall<'_>,
    ) -> Result<Value, FlowError> {
        run_subflow(state, parent, reference, call).await
    }
}

/// Runs the flow a `subflow` function's `reference` names (see [`faasbox_flow::subflow`]) as
/// a child of `parent` and gives its output (its error if it fails).
///
/// The child's id is derived from the parent's and the call's `key`, so when a resumed parent
/// makes the same call again it finds the child it started before the restart: an ended
/// child gives its end, an unfinished one is driven on from its own last checkpoint — its
/// finished states do not run again.
async fn run_subflow(
    state: &Arc<AppState>,
    parent: &InstanceRef,
    reference: &str,
    call: &FunctionCall<'_>,
) -> Result<Value, FlowError> {
    let (input, detached, cancel) = (call.input.clone(), call.detached, call.cancel.clone());
    let id = child_id(&parent.id, &call.key());
    let existing = state.store.instance(&id).await.map_err(store_failed)?;
    let (waiting, epoch) = match existing {
        None => {
            let path = find_subflow(state, parent, reference).await?;
            let depth = subflow_depth(state, parent).await?;
            // An `async` action's subflow has no parent to come back for it: it is resumed
            // on its own after a restart, like any instance started from outside. It still
            // counts its depth, so `async` recursion is bounded too.
            let lineage = Lineage {
                parent: (!detached).then_some(parent.id.as_str()),
                depth,
            };
            let by = StartedBy::Subflow;
            create_as(state, &id, &parent.namespace, &path, input, lineage, by)
                .await
                .map_err(|e| match e.code.as_str() {
                    CANNOT_INVOKE => FlowError::fatal(&e.code, e.message),
                    _ => FlowError::catchable(&e.code, e.message),
                })?;
            super::call_log::Link::new(state, parent, call)
                .started(&id, super::call_log::Kind::Subflow)
                .await;
            if detached {
                append_log(
                    state,
                    &parent.id,
                    format!("started subflow instance {id} of an async action"),
                )
                .await;
            }
            (false, 0)
        }
        Some(child) => {
            if let Some(end) = ended(&child) {
                return end;
            }
            append_log(
                state,
                &parent.id,
                format!("continuing subflow instance {id}, started before the restart"),
            )
            .await;
            match hold_child(state, &id, &cancel).await? {
                ChildHold::Claimed(epoch) => (false, epoch),
                ChildHold::Waiting => (true, 0),
                ChildHold::Ended(end) => return end,
            }
        }
    };
    if waiting {
        return wait_for_end(state, &id, &cancel).await;
    }
    match drive(state, &id, epoch, None, cancel.child_token()).await {
        Outcome::Completed(output) => Ok(output),
        Outcome::Failed(e) => Err(e),
        Outcome::Waiting(_) => wait_for_end(state, &id, &cancel).await,
    }
}

/// What a resumed parent finds of a child it started before.
enum ChildHold {
    /// This server claimed it (at this epoch) to drive it on.
    Claimed(i64),
    /// It waits (for its events; whoever resumes it drives it).
    Waiting,
    /// It ended.
    Ended(Result<Value, FlowError>),
}

/// Claims a `running` child of a resumed parent to drive it on: this server's own (after a
/// restart), or one whose lease expired (its server stopped, like its parent's). While
/// another server still holds it, it is polled until that server's lease on it expires or
/// the child ends or waits.
async fn hold_child(
    state: &Arc<AppState>,
    id: &str,
    cancel: &CancellationToken,
) -> Result<ChildHold, FlowError> {
    loop {
        for want in [Claim::Mine, Claim::TakeOver] {
            if let Some(epoch) = claim(state, id, want).await.map_err(store_error)? {
                return Ok(ChildHold::Claimed(epoch));
            }
        }
        let record = state.store.instance(id).await.map_err(store_failed)?;
        let Some(record) = record else {
            return Err(FlowError::internal(format!(
                "subflow instance {id} vanished"
            )));
        };
        if let Some(end) = ended(&record) {
            return Ok(ChildHold::Ended(end));
        }
        if record.status == "waiting" {
            return Ok(ChildHold::Waiting);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = cancel.cancelled() => return Err(FlowError::cancelled()),
        }
    }
}

/// The stored flow a subflow reference names: the first of its candidates that exists; a
/// catchable `direktiv.workflow.notfound` naming where it looked when none does.
async fn find_subflow(
    state: &Arc<AppState>,
    parent: &InstanceRef,
    reference: &str,
) -> Result<String, FlowError> {
    let candidates = faasbox_flow::subflow::candidates(&parent.flow, reference);
    let mut found = None;
    for path in &candidates {
        let stored = state
            .store
            .flow(&parent.namespace, path)
            .await
            .map_err(store_failed)?;
        if stored.is_some() {
            found = Some(path.clone());
            break;
        }
    }
    found.ok_or_else(|| {
        let ns = &parent.namespace;
        let message = match candidates.first() {
            Some(first) => format!(
                "subflow '{reference}' not found: flow {} has none of {}; deploy it with \
                 `faasbox flow deploy {ns}/{first} FILE`",
                parent.flow,
                candidates
                    .iter()
                    .map(|c| format!("{ns}/{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!(
                "subflow '{reference}' not found: it names no flow (a reference is a flow's \
                 path, absolute from the namespace's root or relative to the calling flow's \
                 folder)"
            ),
        };
        FlowError::catchable(SUBFLOW_NOT_FOUND, message)
    })
}

/// The id of the child instance a parent's call (by its key) starts: a UUID made from a
/// SHA-256 of both, the same every time.
/// The depth a subflow of `parent` runs at, or the uncatchable [`SUBFLOW_TOO_DEEP`] past
/// [`MAX_SUBFLOW_DEPTH`].
async fn subflow_depth(state: &Arc<AppState>, parent: &InstanceRef) -> Result<u32, FlowError> {
    let record = state
        .store
        .instance(&parent.id)
        .await
        .map_err(store_failed)?;
    let depth = record.map_or(0, |r| r.depth).saturating_add(1);
    if depth > MAX_SUBFLOW_DEPTH {
        return Err(FlowError::fatal(
            SUBFLOW_TOO_DEEP,
            format!(
                "instance aborted for exceeding the maximum subflow depth ({MAX_SUBFLOW_DEPTH}): \
                 a flow that calls itself, directly, through other flows or in an `async` \
                 action, needs a condition (a `switch`) that ends the recursion"
            ),
        ));
    }
    Ok(depth)
}

fn child_id(parent: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("subflow\n{parent}\n{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// An ended instance's output, or its error (catchable for the caller); `None` while it runs
/// or waits.
fn ended(record: &faasbox_store::FlowInstanceRecord) -> Option<Result<Value, FlowError>> {
    match record.status.as_str() {
        "complete" => Some(Ok(record
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or(Value::Null))),
        "failed" | "cancelled" => {
            let code = record.error_code.as_deref().unwrap_or(codes::CRASHED);
            Some(Err(FlowError::catchable(
                code,
                record.error_message.clone().unwrap_or_default(),
            )))
        }
        _ => None,
    }
}

/// Polls the store until a (waiting) child instance ended.
async fn wait_for_end(
    state: &Arc<AppState>,
    id: &str,
    cancel: &CancellationToken,
) -> Result<Value, FlowError> {
    loop {
        let record = state.store.instance(id).await.map_err(store_failed)?;
        let Some(record) = record else {
            return Err(FlowError::internal(format!(
                "subflow instance {id} vanished"
            )));
        };
        if let Some(end) = ended(&record) {
            return end;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = cancel.cancelled() => {
                cancel_instance(state, id).await.map_err(store_error)?;
                return Err(FlowError::cancelled());
            }
        }
    }
}

/// Waits (polling the store) until instance `id` ended, at most `bound`: its output or
/// error; `None` if it still runs or waits then (or is gone).
pub async fn wait_until_ended(
    state: &Arc<AppState>,
    id: &str,
    bound: Duration,
) -> Option<Result<Value, FlowError>> {
    let until = tokio::time::Instant::now() + bound;
    let mut pause = Duration::from_millis(100);
    loop {
        let record = state.store.instance(id).await.ok()??;
        if let Some(end) = ended(&record) {
            return Some(end);
        }
        if tokio::time::Instant::now() + pause > until {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

async fn append_log(state: &Arc<AppState>, id: &str, line: String) {
    let stored = state
        .store
        .append_instance_log(id, clock_ms() as i64, &line)
        .await;
    if let Err(e) = stored {
        tracing::error!("storing a log line failed: {e}");
    }
}

/// How many instances without an owner (stored before leases) one start takes over.
const UNOWNED_PER_START: u32 = 1000;

/// Drives again the instances this server was running when it stopped (called at start):
/// its own `running` instances ([`Claim::Mine`]), and `running` instances without an owner
/// (stored before leases; [`Claim::TakeOver`]). Instances another server holds are left to
/// it (if it stopped, `super::leases::tick` takes them over once its lease expired). Also
/// sets the timers of every waiting instance's timeout. Returns how many it resumed.
pub async fn resume_unfinished(state: &Arc<AppState>) -> Result<usize, Failure> {
    let mine = state.store.instances_owned_by(state.node.as_str()).await?;
    let unowned = state
        .store
        .expired_instances(UNOWNED_PER_START)
        .await?
        .into_iter()
        .filter(|e| e.owner.is_none())
        .map(|e| e.id);
    let candidates = mine
        .into_iter()
        .map(|id| (id, Claim::Mine))
        .chain(unowned.map(|id| (id, Claim::TakeOver)));
    let mut count = 0;
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    let mut top = Vec::new();
    for (id, want) in candidates {
        let Some(record) = state.store.instance(&id).await? else {
            continue;
        };
        let Some(parent) = record.parent else {
            if let Some(epoch) = claim(state, &id, want).await? {
                count += 1;
                top.push((id, epoch));
            }
            continue;
        };
        // A subflow is driven by its parent's action, which runs again on resume and finds
        // it (see `run_subflow`); one whose parent ended is cancelled.
        let parent_runs = state
            .store
            .instance(&parent)
            .await?
            .is_some_and(|p| p.status == "running");
        if parent_runs {
            count += 1;
            children.entry(parent).or_default().push(id);
        } else {
            cancel_instance(state, &id).await?;
        }
    }
    for (id, epoch) in top {
        let run = spawn_claimed(state, id.clone(), epoch);
        let Some(children) = children.remove(&id) else {
            continue;
        };
        // A resumed parent that did not come back to its child (its state timed out
        // meanwhile, say) leaves it behind: cancelled once the parent has run.
        let state = state.clone();
        tokio::spawn(async move {
            let _ = run.await;
            if state.flow_runs.is_shutting_down() {
                return;
            }
            for child in children {
                if let Err(e) = cancel_instance(&state, &child).await {
                    tracing::error!("cancelling the left-behind subflow {child} failed: {e}");
                }
            }
        });
    }
    let waiting = state.store.instances_with_status("waiting").await?;
    for record in waiting {
        let deadline = serde_json::from_str::<Checkpoint>(&record.checkpoint)
            .ok()
            .and_then(|cp| cp.wait)
            .and_then(|w| w.deadline_ms);
        if let Some(deadline) = deadline {
            schedule_wait_timeout(state, record.id, deadline);
        }
    }
    Ok(count)
}

/// Resumes a waiting instance with the events it received (or its wait's timeout): claims
/// it ([`Claim::Resume`]) and drives it in a task of its own until it ends or waits again.
/// `None` when it was not this server's to resume (another claimed it first, or it no longer
/// waits). For the events ingestion.
pub async fn resume_waiting(
    state: &Arc<AppState>,
    id: String,
    resolution: WaitResolution,
) -> Result<Option<Outcome>, Failure> {
    let Some(epoch) = claim(state, &id, Claim::Resume).await? else {
        return Ok(None);
    };
    let state = state.clone();
    let run = tokio::spawn(async move {
        drive(
            &state,
            &id,
            epoch,
            Some(resolution),
            CancellationToken::new(),
        )
        .await
    });
    run.await
        .map(Some)
        .map_err(|e| Failure::internal(format!("resuming the instance failed: {e}")))
}

/// Cancels an instance: a running one stops (its running calls get their cancel), a waiting
/// one is marked cancelled. False if it had ended already.
pub async fn cancel_instance(state: &Arc<AppState>, id: &str) -> Result<bool, Failure> {
    if state.flow_runs.cancel(id) {
        return Ok(true);
    }
    // Three store calls, as before (`finish_instance` keeps an end recorded first, so an
    // instance that ends meanwhile is not marked cancelled), run to the end even if the
    // caller goes away: a wait's listener is not removed without the instance's end.
    let id = id.to_string();
    let cancelled = state
        .to_completion(move |s| async move {
            s.store.delete_instance_listeners(&id).await?;
            let namespace = s.store.instance(&id).await?.map(|r| r.namespace);
            let error = FlowError::cancelled();
            let now = clock::now_rfc3339();
            let done = s
                .store
                .finish_instance(
                    &id,
                    "cancelled",
                    None,
                    Some((codes::CANCELLED, error.message.as_str())),
                    &now,
                    None,
                )
                .await?;
            if done {
                // The timeline: the state it waited in ends cancelled.
                let end = faasbox_store::StepEnd {
                    finished: &now,
                    error: Some((codes::CANCELLED, error.message.as_str())),
                    ..Default::default()
                };
                s.store.end_step(&id, &end).await?;
            }
            Ok(namespace.filter(|_| done))
        })
        .await?;
    if let Some(namespace) = &cancelled {
        crate::metrics::flow_finished(namespace, "cancelled");
    }
    Ok(cancelled.is_some())
}

/// How long deleting a namespace waits for its running instances to stop (their running
/// calls get their cancel meanwhile).
const NAMESPACE_CANCEL_WAIT: Duration = Duration::from_secs(15);

/// Cancels every instance of `namespace` that has not ended and waits (bounded) until those
/// running here stopped. For deleting the namespace.
pub async fn cancel_namespace(state: &Arc<AppState>, namespace: &str) -> Result<(), Failure> {
    let ids = state.store.unfinished_instances(namespace).await?;
    for id in &ids {
        cancel_instance(state, id).await?;
    }
    let until = tokio::time::Instant::now() + NAMESPACE_CANCEL_WAIT;
    while ids.iter().any(|id| state.flow_runs.is_running(id)) {
        if tokio::time::Instant::now() >= until {
            tracing::warn!("instances of namespace {namespace} still stopping; deleting it anyway");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn clock_ms() -> u64 {
    clock::now_ms()
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::internal(e.to_string()))
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
