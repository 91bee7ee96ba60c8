//! The engine: runs one instance state by state. Every effect goes through [`Effects`]; after
//! each finished state the progress ([`Checkpoint`]) is saved, so a restarted server resumes an
//! instance at the state that had not finished, and a finished state never runs again.
//!
//! A state either moves on (to its transition, or the end), waits for events ([`Wait`],
//! saved and later resumed with [`Engine::resume`]), or fails. A catchable failure is matched
//! against the state's `catch` patterns; anything else ends the instance.

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

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use checkpoint::{Checkpoint, Wait, WaitEvent, WaitMode, WaitResolution};
pub use effects::{Effects, FileOfCall, FunctionCall, InstanceRef};
pub use error::{codes, matches, FlowError};

use crate::model::{State, StateKind, Workflow};

/// How far a run got.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The flow ended; its output.
    Completed(Value),
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

/// Runs instances.
#[derive(Clone)]
pub struct Engine {
    effects: Arc<dyn Effects>,
    /// How many calls of one `foreach` state run at once.
    foreach_concurrency: usize,
}

impl Engine {
    pub fn new(effects: Arc<dyn Effects>) -> Engine {
        Engine {
            effects,
            foreach_concurrency: 10,
        }
    }

    pub fn with_foreach_concurrency(mut self, n: usize) -> Engine {
        self.foreach_concurrency = n.max(1);
        self
    }

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
                states::received_events(state, &wait, cp.data.clone(), events)
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
            let result = match first.take() {
                Some(result) => result,
                None => {
                    if let Err(e) = self.prepare(inst, state, &mut cp).await {
                        return Outcome::Failed(e);
                    }
                    match self.set_metadata(inst, state, &cp).await {
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
                        .find(|c| e.catchable && matches(&c.error, &e.code));
                    let Some(catch) = catch else {
                        self.effects
                            .log(
                                inst,
                                format!("state '{id}' failed: {}: {}", e.code, e.message),
                            )
                            .await;
                        return Outcome::Failed(e);
                    };
                    self.effects
                        .log(
                            inst,
                            format!(
                                "state '{id}' failed with {}, caught by '{}'",
                                e.code, catch.error
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
            if let Err(e) = self.effects.save(inst, &cp).await {
                return Outcome::Failed(e);
            }
        }
    }

    /// Sets the instance's metadata from the state's `metadata` (evaluated against the state's
    /// data as it starts); an expression that fails fails the state, catchably.
    async fn set_metadata(
        &self,
        inst: &InstanceRef,
        state: &State,
        cp: &Checkpoint,
    ) -> Result<(), FlowError> {
        let Some(template) = &state.metadata else {
            return Ok(());
        };
        let metadata = faasbox_expr::render(template, &cp.data).map_err(FlowError::from_expr)?;
        self.effects.set_metadata(inst, metadata).await
    }

    /// Logs the state's start and its `log`, and fixes a delay's end before it starts waiting.
    async fn prepare(
        &self,
        inst: &InstanceRef,
        state: &State,
        cp: &mut Checkpoint,
    ) -> Result<(), FlowError> {
        self.effects
            .log(
                inst,
                format!("running state '{}' ({})", state.id, state.kind.type_name()),
            )
            .await;
        if let Some(log) = &state.log {
            match faasbox_expr::render(log, &cp.data) {
                Ok(Value::String(text)) => self.effects.log(inst, text).await,
                Ok(other) => self.effects.log(inst, other.to_string()).await,
                Err(e) => {
                    self.effects
                        .log(inst, format!("the log of state '{}' failed: {e}", state.id))
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
    FlowError::fatal(codes::CANCELLED, "the instance was cancelled")
}
