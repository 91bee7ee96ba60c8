//! The engine: runs one instance state by state. Every effect goes through [`Effects`]; after
//! each finished state the progress ([`Checkpoint`]) is saved, so a restarted server resumes an
//! instance at the state that had not finished, and a finished state never runs again.
//!
//! A state either moves on (to its transition, or the end), waits for events ([`Wait`],
//! saved and later resumed with [`Engine::resume`]), or fails. A catchable failure is matched
//! against the state's `catch` patterns; anything else ends the instance.
//!
//! Every expression runs through the engine's [`Evaluator`] (bounded, and stopped by the
//! instance's cancel), and an instance is bounded by [`Limits`]: the states it may run and the
//! size of its data, each ending it with its own error code when it goes past.

mod actions;
mod checkpoint;
mod data;
mod effects;
mod error;
mod states;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use faasbox_expr::sandbox::Evaluator;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use checkpoint::{Checkpoint, Wait, WaitEvent, WaitMode, WaitResolution};
pub use effects::{Effects, FileOfCall, FunctionCall, InstanceRef};
pub use error::{codes, FlowError};

use crate::model::{State, StateKind, Workflow};

/// How far a run got.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The flow ended; its output.
    Completed(Value),
    /// The flow ended with an error nothing caught.
    Failed(FlowError),
    /// The current state waits for events; resume with [`Engine::resume`].
    Waiting(Wait),
}

/// How long a stopped state's calls get to hand their cancel to the functions.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// What a state did.
enum Done {
    /// Move on with this data to `next` (or end).
    Next {
        data: Value,
        next: Option<String>,
        pending_error: Option<FlowError>,
    },
    Wait(Wait),
}

/// The bounds of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most states one instance may run (each finished or caught state counts, also
    /// across restarts).
    pub max_transitions: u64,
    /// The largest instance data, as JSON text (bytes).
    pub max_data: usize,
}

/// The default bound on states run by one instance.
pub const DEFAULT_MAX_TRANSITIONS: u64 = 10_000;
/// The default bound on instance data (8 MiB).
pub const DEFAULT_MAX_DATA: usize = 8 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_transitions: DEFAULT_MAX_TRANSITIONS,
            max_data: DEFAULT_MAX_DATA,
        }
    }
}

/// The longest `log` line a state writes; longer ones are cut.
const MAX_LOG_LINE: usize = 16 * 1024;

/// Runs instances.
#[derive(Clone)]
pub struct Engine {
    effects: Arc<dyn Effects>,
    evaluator: Evaluator,
    limits: Limits,
    /// How many calls of one `foreach` state run at once.
    foreach_concurrency: usize,
}

impl Engine {
    /// An engine over `effects` whose expressions run through `evaluator`, with the default
    /// [`Limits`].
    pub fn new(effects: Arc<dyn Effects>, evaluator: Evaluator) -> Engine {
        Engine {
            effects,
            evaluator,
            limits: Limits::default(),
            foreach_concurrency: 10,
        }
    }

    /// The same engine holding instances to `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Engine {
        self.limits = limits;
        self
    }

    /// The same engine running at most `n` calls of one `foreach` at a time (at least 1).
    pub fn with_foreach_concurrency(mut self, n: usize) -> Engine {
        self.foreach_concurrency = n.max(1);
        self
    }

    /// What the engine's instances do their effects through.
    pub fn effects(&self) -> &Arc<dyn Effects> {
        &self.effects
    }

    /// Runs (or resumes after a restart) an instance from its checkpoint until it ends, waits
    /// or is cancelled. A waiting checkpoint stays waiting.
    pub async fn run(
        &self,
        inst: &InstanceRef,
        flow: &Arc<Workflow>,
        cp: Checkpoint,
        cancel: &CancellationToken,
    ) -> Outcome {
        if let Some(wait) = &cp.wait {
            return Outcome::Waiting(wait.clone());
        }
        self.run_from(inst, flow, cp, cancel, None).await
    }

    /// Resumes a waiting instance with the events it received, or with its wait's timeout.
    pub async fn resume(
        &self,
        inst: &InstanceRef,
        flow: &Arc<Workflow>,
        mut cp: Checkpoint,
        resolution: WaitResolution,
        cancel: &CancellationToken,
    ) -> Outcome {
        let Some(wait) = cp.wait.take() else {
            return self.run_from(inst, flow, cp, cancel, None).await;
        };
        let Some(state) = cp.state.as_deref().and_then(|id| flow.state(id)) else {
            return Outcome::Failed(FlowError::internal(
                "a waiting instance has no current state",
            ));
        };
        let first = match resolution {
            WaitResolution::TimedOut => Err(FlowError::catchable(
                codes::TIMEOUT_SOFT,
                format!("state '{}' timed out waiting for events", state.id),
            )),
            WaitResolution::Events(events) => {
                states::received_events(self, state, &wait, cp.data.clone(), events, cancel).await
            }
        };
        self.run_from(inst, flow, cp, cancel, Some(first)).await
    }

    async fn run_from(
        &self,
        inst: &InstanceRef,
        flow: &Arc<Workflow>,
        mut cp: Checkpoint,
        cancel: &CancellationToken,
        mut first: Option<Result<Done, FlowError>>,
    ) -> Outcome {
        // The data's size is checked after every state; before the first, it is what the
        // instance started or resumed with.
        let mut first_round = true;
        loop {
            if cancel.is_cancelled() {
                return Outcome::Failed(cancelled());
            }
            let Some(id) = cp.state.clone() else {
                return match cp.pending_error.take() {
                    Some(e) => Outcome::Failed(e),
                    None => Outcome::Completed(cp.data),
                };
            };
            let Some(state) = flow.state(&id) else {
                return Outcome::Failed(FlowError::internal(format!(
                    "the flow has no state '{id}'"
                )));
            };
            if let Err(e) = self.within_limits(&cp, &id, first_round) {
                return self.fail(inst, &id, "not run", e).await;
            }
            first_round = false;
            let result = match first.take() {
                Some(result) => result,
                None => {
                    if let Err(e) = self.prepare(inst, state, &mut cp, cancel).await {
                        return Outcome::Failed(e);
                    }
                    match self.set_metadata(inst, state, &cp, cancel).await {
                        Ok(()) => self.guarded(inst, flow, state, &cp, cancel).await,
                        Err(e) => Err(e),
                    }
                }
            };
            match result {
                Ok(Done::Next {
                    data,
                    next,
                    pending_error,
                }) => {
                    cp.data = data;
                    cp.state = next;
                    cp.step += 1;
                    cp.wake_at_ms = None;
                    if pending_error.is_some() {
                        cp.pending_error = pending_error;
                    }
                }
                Ok(Done::Wait(wait)) => {
                    cp.wait = Some(wait.clone());
                    if let Err(e) = self.effects.save(inst, &cp).await {
                        return Outcome::Failed(e);
                    }
                    self.effects
                        .log(inst, format!("state '{id}' waits for events"))
                        .await;
                    return Outcome::Waiting(wait);
                }
                Err(e) if cancel.is_cancelled() && !e.catchable => return Outcome::Failed(e),
                Err(e) => {
                    let catch = state
                        .catch
                        .iter()
                        .find(|c| e.catchable && c.error.matches(&e.code));
                    let Some(catch) = catch else {
                        return self.fail(inst, &id, "failed", e).await;
                    };
                    self.effects
                        .log(
                            inst,
                            format!(
                                "state '{id}' failed with {}, caught by '{}'",
                                e.code,
                                catch.error.as_str()
                            ),
                        )
                        .await;
                    if let Value::Object(map) = &mut cp.data {
                        map.insert("error".to_string(), e.to_json());
                    }
                    cp.state = catch.transition.clone();
                    cp.step += 1;
                    cp.wake_at_ms = None;
                }
            }
            // Data past its bound is never saved: the instance ends with the last good one.
            if let Err(e) = data::require_size(&cp.data, self.limits.max_data, &id) {
                return self.fail(inst, &id, "failed", e).await;
            }
            if let Err(e) = self.effects.save(inst, &cp).await {
                return Outcome::Failed(e);
            }
        }
    }

    /// Logs that state `id` failed (or was not run, `what`) and ends the instance with `e`.
    async fn fail(&self, inst: &InstanceRef, id: &str, what: &str, e: FlowError) -> Outcome {
        self.effects
            .log(
                inst,
                format!("state '{id}' {what}: {}: {}", e.code, e.message),
            )
            .await;
        Outcome::Failed(e)
    }

    /// Whether the instance may run state `id` next: it has not run too many states, and (when
    /// `check_data`: the data it started or resumed with) its data is within its bound.
    fn within_limits(&self, cp: &Checkpoint, id: &str, check_data: bool) -> Result<(), FlowError> {
        if cp.step >= self.limits.max_transitions {
            return Err(FlowError::fatal(
                codes::TOO_MANY_TRANSITIONS,
                format!(
                    "the instance ran {} states; an instance may run at most {} (the server's \
                     flow-max-transitions setting): end loops sooner, or split the work over \
                     several instances",
                    cp.step, self.limits.max_transitions
                ),
            ));
        }
        if check_data {
            data::require_size(&cp.data, self.limits.max_data, id)?;
        }
        Ok(())
    }

    /// Sets the instance's metadata from the state's `metadata` (evaluated against the state's
    /// data as it starts); an expression that fails fails the state, catchably.
    async fn set_metadata(
        &self,
        inst: &InstanceRef,
        state: &State,
        cp: &Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<(), FlowError> {
        let Some(template) = &state.metadata else {
            return Ok(());
        };
        let metadata = self.render(template, &cp.data, cancel).await?;
        self.effects.set_metadata(inst, metadata).await
    }

    /// Logs the state's start and its `log`, and fixes a delay's end before it starts waiting.
    async fn prepare(
        &self,
        inst: &InstanceRef,
        state: &State,
        cp: &mut Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<(), FlowError> {
        self.effects
            .log(
                inst,
                format!("running state '{}' ({})", state.id, state.kind.type_name()),
            )
            .await;
        if let Some(log) = &state.log {
            match self.render(log, &cp.data, cancel).await {
                Ok(Value::String(text)) => self.effects.log(inst, cut(text)).await,
                Ok(other) => self.effects.log(inst, cut(other.to_string())).await,
                Err(e) if e.code == codes::CANCELLED => return Err(e),
                Err(e) => {
                    self.effects
                        .log(
                            inst,
                            format!("the log of state '{}' failed: {}", state.id, e.message),
                        )
                        .await
                }
            }
        }
        if let StateKind::Delay { duration } = &state.kind {
            if cp.wake_at_ms.is_none() {
                cp.wake_at_ms = Some(self.effects.now_ms() + duration.as_millis() as u64);
                self.effects.save(inst, cp).await?;
            }
        }
        Ok(())
    }

    /// Runs a state under its timeout, the flow's timeouts and the instance's cancel.
    async fn guarded(
        &self,
        inst: &InstanceRef,
        flow: &Arc<Workflow>,
        state: &State,
        cp: &Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<Done, FlowError> {
        let now = self.effects.now_ms();
        let until = |ms: u64| Duration::from_millis(ms.saturating_sub(now));
        let interrupt = flow
            .timeouts
            .interrupt
            .map(|d| until(cp.started_ms + d.as_millis() as u64));
        let soft = match (state.timeout, interrupt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let hard = flow
            .timeouts
            .kill
            .map(|d| until(cp.started_ms + d.as_millis() as u64));
        let state_cancel = cancel.child_token();
        let _stop_calls = state_cancel.clone().drop_guard();
        let run = states::execute(self, inst, flow, state, cp, &state_cancel);
        tokio::pin!(run);
        let sleep_or_never = |d: Option<Duration>| async move {
            match d {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let stopped = tokio::select! {
            result = &mut run => return if cancel.is_cancelled() { Err(cancelled()) } else { result },
            _ = cancel.cancelled() => cancelled(),
            _ = sleep_or_never(soft) => FlowError::catchable(codes::TIMEOUT_SOFT, format!("state '{}' ran into its timeout", state.id)),
            _ = sleep_or_never(hard) => FlowError::fatal(codes::TIMEOUT_HARD, "the instance ran into the flow's kill timeout"),
        };
        // Give running calls the chance to deliver their cancel to the function.
        state_cancel.cancel();
        let _ = tokio::time::timeout(CANCEL_GRACE, &mut run).await;
        Err(stopped)
    }
}

fn cancelled() -> FlowError {
    FlowError::cancelled()
}

/// A log line cut to [`MAX_LOG_LINE`] bytes.
fn cut(mut line: String) -> String {
    if line.len() > MAX_LOG_LINE {
        let total = line.len();
        let mut end = MAX_LOG_LINE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str(&format!("… ({} of {total} bytes shown)", end));
    }
    line
}
