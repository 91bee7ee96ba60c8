//! Flow events and schedules in the server: accepted CloudEvents are dispatched to event
//! listeners (flow event starts, instances waiting in event states), fired listeners start or
//! resume instances through the [`FlowRunner`], and scheduled flows start on their cron. The
//! runner is the workflow engine's (`crate::flows::events`), installed at start-up: events know
//! it only as that interface.
//!
//! Everything goes through the store first: an accepted event is stored before the API
//! answers, a fired listener is a stored delivery until the runner took it, a cron slot is
//! claimed in the store before its instance starts. So a crash loses nothing accepted, and a
//! restart fires no slot twice.

mod decide;
mod dispatch;
mod emit;
mod listeners;
mod scheduler;

use std::sync::Arc;

pub use crate::clock::store_ms as now_ms;
pub use crate::event_bus::{EventBus, FlowRunner, RunnerError};
pub use decide::decide_for;
pub use emit::{emit, emit_later, event_filter, generated_event, GeneratedFields};
pub use listeners::{
    check_flow_start, instance_input, on_flow_removed, register_wait, set_flow_start, FlowStart,
    WaitRequest,
};

use crate::state::AppState;

/// The newest accepted event's seq (0 when unknown): a wait stored with it counts every
/// event accepted after this moment.
pub async fn watermark(state: &Arc<AppState>) -> i64 {
    state.store.event_watermark().await.unwrap_or(0)
}

/// Starts the dispatcher and the scheduler; they run until the returned handles are aborted.
pub fn spawn(state: &Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(dispatch::run(state.clone())),
        tokio::spawn(scheduler::run(state.clone())),
    ]
}
