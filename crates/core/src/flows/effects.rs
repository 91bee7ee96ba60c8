//! The engine's effects in the server: calls through [`super::functions`] (subflows through
//! the runner's [`Subflows`]), secrets from the vault, variables, checkpoints and logs in the
//! store. A run's progress is written in as few transactions as durability allows: log lines
//! and a state's start wait for the next write of the run (the checkpoint after the state,
//! a call, the end), every finished state's checkpoint is written (with the end of its step in
//! the timeline and the start of the next) before the instance moves on, and the checkpoint
//! of the last state is written with the instance's end ([`ServerEffects::finish`]), since
//! nothing happens between the two. Every checkpoint and metadata write carries the run's
//! fence (this server's node and the epoch of its hold on the instance): once another server
//! took the instance over, the store refuses it, and the run stops without recording anything
//! more ([`ServerEffects::lease_lost`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use faasbox_flow::engine::{Checkpoint, Effects, FlowError, FunctionCall, InstanceRef};
use faasbox_flow::model::{FunctionKind, VarScope};
use faasbox_store::ProgressWrite;
use serde_json::Value;

use super::call_log::Held;
use super::functions::Subflows;
use crate::clock;
use crate::failure::Failure;
use crate::state::AppState;

/// The effects of one instance run.
pub struct ServerEffects {
    state: Arc<AppState>,
    subflows: Arc<dyn Subflows>,
    /// The last saved step and the state it was at, to record which state finished.
    last: Mutex<(u64, Option<String>)>,
    /// The secret values this run read: masked in the timeline's inputs and outputs.
    secret_values: Mutex<Vec<String>>,
    /// This server's node id and the epoch of its hold on the instance: the fence of its
    /// writes.
    fence: (String, i64),
    /// Set once the store refused a fenced write: another server drives the instance now.
    lost: AtomicBool,
    /// Progress not written yet (log lines, a step's start, the last checkpoint): written
    /// with the run's next write.
    pending: Held,
    /// Set (under `pending`'s lock) once the run's end or wait was written: what is logged
    /// after that (an `async` action's failure) is written at once.
    closed: AtomicBool,
}

/// The (uncatchable) error a run ends with once another server took its instance over; the
/// run records nothing more, so this error is never an instance's.
pub const LEASE_LOST: &str = "faasbox.flow.leaseLost";

impl ServerEffects {
    /// The effects of the run of an instance resumed from (or started at) checkpoint `cp`,
    /// held by this server at `epoch` (0 for an instance it created, else its claim's).
    pub fn new(
        state: Arc<AppState>,
        subflows: Arc<dyn Subflows>,
        cp: &Checkpoint,
        epoch: i64,
    ) -> ServerEffects {
        let node = state.node.as_str().to_string();
        ServerEffects {
            state,
            subflows,
            last: Mutex::new((cp.step, cp.state.clone())),
            secret_values: Mutex::new(Vec::new()),
            fence: (node, epoch),
            lost: AtomicBool::new(false),
            pending: Held::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// The fence of this run's writes.
    pub fn fence(&self) -> faasbox_store::Fence<'_> {
        Some((self.fence.0.as_str(), self.fence.1))
    }

    /// Whether the store refused one of this run's fenced writes: another server took the
    /// instance over, and this run must record nothing more.
    pub fn lease_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The engine's error for a failed fenced write; a refused one marks the run as lost.
    fn fenced_error(&self, e: faasbox_store::StoreError) -> FlowError {
        match e {
            faasbox_store::StoreError::LeaseLost { .. } => {
                self.lost.store(true, Ordering::SeqCst);
                FlowError::fatal(LEASE_LOST, e.to_string())
            }
            e => store_failed(e),
        }
    }

    /// Records the start of the state `cp` is at (its input is `cp`'s data), unless that step
    /// was recorded already (a resumed instance), with the run's next write. Call it before
    /// the engine runs `cp`.
    pub fn begin(&self, cp: &Checkpoint) {
        if let Some(start) = self.step_start(cp) {
            // Nothing is closed before the run.
            let _ = self.hold(start);
        }
    }

    /// `value` as the timeline keeps it: masked, or `None` past [`STEP_VALUE_LIMIT`].
    fn kept(&self, value: &Value) -> Option<String> {
        let secrets = self.secret_values.lock().unwrap_or_else(|p| p.into_inner());
        let text =
            crate::mask::Masker::new(secrets.iter().map(|s| s.as_bytes())).mask(&value.to_string());
        (text.len() <= STEP_VALUE_LIMIT).then_some(text)
    }

    /// The start of the step `cp` is at, for the timeline; `None` when it is at no state.
    fn step_start(&self, cp: &Checkpoint) -> Option<ProgressWrite> {
        let state = cp.state.as_deref()?;
        let input = self.kept(&cp.data);
        Some(ProgressWrite::StartStep {
            step: cp.step + 1,
            state: state.to_string(),
            started: clock::now_rfc3339(),
            truncated: input.is_none(),
            input,
        })
    }

    /// The end of the open step with `output` (the data it left) or `error`, for the timeline.
    fn step_end(&self, output: Option<&Value>, error: Option<(&str, &str)>) -> ProgressWrite {
        let kept = output.map(|v| self.kept(v));
        ProgressWrite::EndStep {
            finished: clock::now_rfc3339(),
            truncated: matches!(kept, Some(None)),
            output: kept.flatten(),
            error: error.map(|(c, m)| (c.to_string(), m.to_string())),
        }
    }

    /// Keeps `write` for the run's next write; gives it back once the run's end or wait was
    /// written (the caller writes it at once).
    fn hold(&self, write: ProgressWrite) -> Option<ProgressWrite> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            return Some(write);
        }
        pending.push(write);
        None
    }

    /// What is held for the run's next write, taken out.
    fn take_pending(&self) -> Vec<ProgressWrite> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// What is held, taken out for the run's last write: nothing is held after it.
    fn take_last(&self) -> Vec<ProgressWrite> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::SeqCst);
        std::mem::take(&mut *pending)
    }

    /// Writes what is held as the run's last write (it waits, or the server shuts down);
    /// nothing is held after it.
    pub async fn close(&self, instance: &str) -> Result<(), FlowError> {
        let writes = self.take_last();
        if writes.is_empty() || self.lease_lost() {
            return Ok(());
        }
        self.write(instance, writes).await.map(|_| ())
    }

    /// Writes what is held (log lines, a step's start) in one transaction; nothing once the
    /// lease is lost. Around a call.
    pub async fn flush(&self, instance: &str) -> Result<(), FlowError> {
        let writes = self.take_pending();
        if writes.is_empty() || self.lease_lost() {
            return Ok(());
        }
        self.write(instance, writes).await.map(|_| ())
    }

    /// Writes `writes` in one fenced transaction: whether a `Finish` among them recorded the
    /// end.
    async fn write(&self, instance: &str, writes: Vec<ProgressWrite>) -> Result<bool, FlowError> {
        self.state
            .store
            .record_progress(instance, writes, self.fence())
            .await
            .map_err(|e| self.fenced_error(e))
    }

    /// Records the instance's end (`status`, its output or error) in one transaction with
    /// everything held: the last state's checkpoint, its step's end (`error`: the state that
    /// was running ends with it) and the log lines, `line` last. Whether this end was
    /// recorded (false when the instance had ended already); `Err` when another server holds
    /// the instance (nothing is written then).
    pub async fn finish(
        &self,
        instance: &str,
        status: &str,
        output: Option<String>,
        error: Option<(&str, &str)>,
        line: String,
    ) -> Result<bool, FlowError> {
        let mut writes = self.take_last();
        if error.is_some() {
            writes.push(self.step_end(None, error));
        }
        writes.push(ProgressWrite::Log {
            ts_ms: self.now_ms() as i64,
            message: line,
            state: None,
            invocation: None,
        });
        writes.push(ProgressWrite::Finish {
            status: status.to_string(),
            output,
            error: error.map(|(c, m)| (c.to_string(), m.to_string())),
            now: clock::now_rfc3339(),
        });
        self.write(instance, writes).await
    }
}

/// The largest input or output (JSON text) an instance's timeline keeps per state; a larger
/// one is left out (`truncated`).
pub const STEP_VALUE_LIMIT: usize = 64 * 1024;

pub(crate) fn store_error(e: Failure) -> FlowError {
    FlowError::internal(format!("the store failed: {}", e.message))
}

/// Like `store_error`, for the store's own error.
pub fn store_failed(e: faasbox_store::StoreError) -> FlowError {
    store_error(e.into())
}

fn owner(instance: &InstanceRef, scope: VarScope) -> &str {
    match scope {
        VarScope::Namespace => "",
        VarScope::Workflow => &instance.flow,
        VarScope::Instance => &instance.id,
    }
}

#[async_trait]
impl Effects for ServerEffects {
    async fn call(
        &self,
        instance: &InstanceRef,
        call: FunctionCall<'_>,
    ) -> Result<Value, FlowError> {
        if self.lease_lost() {
            return Err(FlowError::fatal(
                LEASE_LOST,
                format!("instance {} is driven by another server now", instance.id),
            ));
        }
        // The state's start and the lines before the call are in the timeline and the log
        // before the function runs: written with the call's record, or (a subflow, a call
        // refused before it was recorded) on their own.
        if matches!(call.function.kind, FunctionKind::Subflow { .. }) {
            self.flush(&instance.id).await?;
        }
        let result = super::functions::call(
            &self.state,
            self.subflows.as_ref(),
            instance,
            call,
            &self.pending,
        )
        .await;
        self.flush(&instance.id).await?;
        result
    }

    async fn secrets(
        &self,
        instance: &InstanceRef,
        names: &[String],
    ) -> Result<Vec<(String, String)>, FlowError> {
        let flow_name = format!("flow {}", instance.flow);
        let secrets =
            crate::call_input::read_secrets(&self.state, &instance.namespace, &flow_name, names)
                .await
                .map_err(|e| FlowError::catchable(&e.code, e.message))?;
        {
            let mut seen = self.secret_values.lock().unwrap_or_else(|p| p.into_inner());
            for (_, value) in &secrets {
                if let Ok(text) = std::str::from_utf8(value) {
                    seen.push(text.to_string());
                }
            }
        }
        secrets
            .into_iter()
            .map(|(name, value)| {
                String::from_utf8(value.to_vec())
                    .map(|v| (name.clone(), v))
                    .map_err(|_| {
                        FlowError::catchable(
                            crate::call_input::SECRET_MISSING,
                            format!("secret '{name}' is not text"),
                        )
                    })
            })
            .collect()
    }

    async fn get_var(
        &self,
        instance: &InstanceRef,
        scope: VarScope,
        key: &str,
    ) -> Result<Option<Value>, FlowError> {
        let text = self
            .state
            .store
            .variable(
                &instance.namespace,
                scope.as_str(),
                owner(instance, scope),
                key,
            )
            .await
            .map_err(store_failed)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn set_var(
        &self,
        instance: &InstanceRef,
        scope: VarScope,
        key: &str,
        value: Option<Value>,
    ) -> Result<(), FlowError> {
        let text = value.map(|v| v.to_string());
        self.state
            .store
            .set_variable(
                &instance.namespace,
                scope.as_str(),
                owner(instance, scope),
                key,
                text.as_deref(),
                &clock::now_rfc3339(),
            )
            .await
            .map_err(store_failed)
    }

    async fn save(&self, instance: &InstanceRef, cp: &Checkpoint) -> Result<(), FlowError> {
        let finished = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let finished =
                (cp.step > last.0).then(|| (cp.step, last.1.clone().unwrap_or_default()));
            *last = (cp.step, cp.state.clone());
            finished
        };
        let text = serde_json::to_string(cp).map_err(|e| FlowError::internal(e.to_string()))?;
        let status = if cp.wait.is_some() {
            "waiting"
        } else {
            "running"
        };
        let mut writes = self.take_pending();
        writes.push(ProgressWrite::Checkpoint {
            status: status.to_string(),
            checkpoint: text,
            finished: finished.clone(),
            now: clock::now_rfc3339(),
        });
        // The timeline: the state that finished left this data; the next one starts with it.
        if finished.is_some() {
            writes.push(self.step_end(Some(&cp.data), None));
            writes.extend(self.step_start(cp));
        }
        if cp.state.is_none() && cp.wait.is_none() && !self.lease_lost() {
            // The last state: the instance ends next, with nothing done in between; its
            // checkpoint is written with that end ([`ServerEffects::finish`]).
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(writes);
            return Ok(());
        }
        self.write(&instance.id, writes).await.map(|_| ())
    }

    async fn generate_event(
        &self,
        instance: &InstanceRef,
        event: Value,
        delay: Option<Duration>,
    ) -> Result<(), FlowError> {
        let id = super::event_waits::generate(&self.state, instance, event, delay)
            .await
            .map_err(|e| FlowError::catchable("direktiv.events.invalid", e))?;
        let line = match delay {
            Some(d) => format!("generated event {id}, sent in {} ms", d.as_millis()),
            None => format!("generated event {id}"),
        };
        self.log(instance, line).await;
        Ok(())
    }

    async fn event_watermark(&self) -> Result<Option<i64>, FlowError> {
        let mark = self
            .state
            .store
            .event_watermark()
            .await
            .map_err(store_failed)?;
        Ok(Some(mark))
    }

    async fn set_metadata(&self, instance: &InstanceRef, metadata: Value) -> Result<(), FlowError> {
        self.state
            .store
            .set_instance_metadata(
                &instance.id,
                &metadata.to_string(),
                &crate::clock::now_rfc3339(),
                self.fence(),
            )
            .await
            .map_err(|e| self.fenced_error(e))
    }

    async fn log(&self, instance: &InstanceRef, message: String) {
        if self.lease_lost() {
            return;
        }
        // Written with the run's next write (the state's checkpoint, a call, the end).
        let line = ProgressWrite::Log {
            ts_ms: self.now_ms() as i64,
            message,
            state: None,
            invocation: None,
        };
        if let Some(line) = self.hold(line) {
            // The run has ended or waits (an `async` action's line): written at once.
            let stored = self
                .state
                .store
                .record_progress(&instance.id, vec![line], None)
                .await;
            if let Err(e) = stored {
                tracing::error!("storing a log line of instance {} failed: {e}", instance.id);
            }
        }
    }
}
