//! Flow events and schedules in the server: accepted CloudEvents are dispatched to event
//! listeners (flow event starts, instances waiting in event states), fired listeners start or
//! resume instances through the [`FlowRunner`], and scheduled flows start on their cron.
//!
//! Everything goes through the store first: an accepted event is stored before the API
//! answers, a fired listener is a stored delivery until the runner took it, a cron slot is
//! claimed in the store before its instance starts. So a crash loses nothing accepted, and a
//! restart fires no slot twice.

mod dispatch;
mod emit;
pub mod engine;
mod listeners;
mod scheduler;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

pub use dispatch::decide_for;
pub use emit::{emit, emit_later, event_filter, generated_event, GeneratedFields};
pub use listeners::{
    check_flow_start, instance_input, on_flow_removed, register_wait, set_flow_start, FlowStart,
    WaitRequest,
};
pub use scheduler::now_ms;

use crate::state::AppState;

/// Why a delivery could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The flow or the waiting instance is gone: the delivery is dropped.
    #[error("{0}")]
    Gone(String),
    /// Try again later (the delivery stays stored).
    #[error("{0}")]
    Retry(String),
}

/// What the events machinery needs from the workflow engine.
#[async_trait]
pub trait FlowRunner: Send + Sync {
    /// Starts an instance of `flow` with this id and input. An instance with this id that
    /// exists already means an earlier attempt got through: answer `Ok`.
    async fn start_instance(
        &self,
        namespace: &str,
        flow: &str,
        instance_id: &str,
        input: Value,
        invoker: &str,
    ) -> Result<(), RunnerError>;

    /// Resumes an instance waiting in an event state (the wait `listener_id`) with the events
    /// that fired it (structured CloudEvents, in the order of the state's `events`).
    async fn resume_instance(
        &self,
        instance_id: &str,
        listener_id: &str,
        events: Vec<Value>,
    ) -> Result<(), RunnerError>;
}

/// The events machinery's handle in the server state.
#[derive(Default)]
pub struct EventBus {
    wake: Notify,
    runner: OnceLock<Arc<dyn FlowRunner>>,
    /// Deliveries being handed over now (a resume runs until its instance moves on).
    in_flight: Mutex<HashSet<i64>>,
}

impl EventBus {
    /// Wakes the dispatcher (an event was accepted, a wait fired at registration).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Installs the engine; deliveries and cron slots wait until it is there.
    pub fn set_runner(&self, runner: Arc<dyn FlowRunner>) {
        if self.runner.set(runner).is_err() {
            tracing::warn!("the flow runner was installed twice; keeping the first");
        }
        self.wake();
    }

    /// Marks a delivery as being handed over; false if it is already.
    fn take(&self, delivery: i64) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(delivery)
    }

    fn release(&self, delivery: i64) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&delivery);
    }

    fn runner(&self) -> Option<Arc<dyn FlowRunner>> {
        self.runner.get().cloned()
    }
}

/// The newest accepted event's seq (0 when unknown): a wait stored with it counts every
/// event accepted after this moment.
pub async fn watermark(state: &Arc<AppState>) -> i64 {
    state
        .blocking(|s| Ok(s.store.event_watermark()?))
        .await
        .unwrap_or(0)
}

/// Starts the dispatcher and the scheduler; they run until the returned handles are aborted.
pub fn spawn(state: &Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(dispatch::run(state.clone())),
        tokio::spawn(scheduler::run(state.clone())),
    ]
}
