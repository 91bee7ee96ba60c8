//! The events machinery's handle in the server state ([`EventBus`]): the dispatcher's wake-up,
//! the deliveries being handed over, and the workflow engine as a [`FlowRunner`] — an
//! interface, so `crate::events` never depends on `crate::flows` (the flows install their
//! runner at start-up).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use faasbox_store::ScheduleRecord;
use serde_json::Value;
use tokio::sync::Notify;

use crate::failure::Failure;

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

    /// Claims a cron slot of `schedule` together with its instance (one store transaction);
    /// the instance id if this call claimed it. A flow that cannot run has its slot claimed
    /// without one.
    async fn claim_slot(
        &self,
        schedule: &ScheduleRecord,
        slot_ms: i64,
    ) -> Result<Option<String>, Failure>;

    /// Drives an instance that was created already (a claimed cron slot's).
    fn drive_created(&self, id: String);
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

    /// Resolves at the next [`EventBus::wake`] (or at once if one came since the last).
    pub(crate) fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Installs the engine; deliveries and cron slots wait until it is there.
    pub fn set_runner(&self, runner: Arc<dyn FlowRunner>) {
        if self.runner.set(runner).is_err() {
            tracing::warn!("the flow runner was installed twice; keeping the first");
        }
        self.wake();
    }

    /// Marks a delivery as being handed over; false if it is already.
    pub(crate) fn take(&self, delivery: i64) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(delivery)
    }

    pub(crate) fn release(&self, delivery: i64) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&delivery);
    }

    pub(crate) fn runner(&self) -> Option<Arc<dyn FlowRunner>> {
        self.runner.get().cloned()
    }
}
