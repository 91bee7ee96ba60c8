//! The dispatcher: accepts delayed events that are due, offers every stored, undispatched
//! event to its namespace's listeners (one transaction per event), then hands the stored
//! deliveries over: a flow's to the flow runner, a subscription's to the runs. With several
//! servers on one store, each delivery is claimed by one server for a lease; one whose
//! server stopped before finishing it is claimed by another once that claim expired.

use std::sync::Arc;
use std::time::Duration;

use faasbox_store::Store;
use faasbox_store::{Delivery, ListenerKind};
use serde_json::Value;

use super::decide::decide_for;
use crate::event_bus::{FlowRunner, RunnerError};
use crate::state::AppState;
use crate::subscriptions::Handed;

/// How often pending work is looked at without a wake-up (retries, deliveries left over).
const IDLE_TICK: Duration = Duration::from_secs(1);

pub async fn run(state: Arc<AppState>) {
    loop {
        let dispatched = dispatch_round(&*state.store).await;
        let next_due = match dispatched {
            Ok(next_due) => next_due,
            Err(e) => {
                tracing::error!("dispatching events: {e}");
                None
            }
        };
        deliver_pending(&state).await;
        tokio::select! {
            _ = state.events.woken() => {}
            _ = tokio::time::sleep(idle_for(next_due, crate::clock::store_ms())) => {}
        }
    }
}

/// How long to sleep without a wake-up: until the next delayed event is due, at most
/// [`IDLE_TICK`].
fn idle_for(next_due_ms: Option<i64>, now_ms: i64) -> Duration {
    match next_due_ms {
        Some(due) => Duration::from_millis(u64::try_from(due - now_ms).unwrap_or(0)).min(IDLE_TICK),
        None => IDLE_TICK,
    }
}

/// Accepts the delayed events that are due, dispatches every undispatched event, and tells
/// when the next delayed event is due.
async fn dispatch_round(store: &dyn Store) -> faasbox_store::Result<Option<i64>> {
    store.release_due_events(crate::clock::store_ms()).await?;
    dispatch_pending(store).await?;
    store.next_delayed_event_due().await
}

/// Dispatches every undispatched event, oldest first.
async fn dispatch_pending(store: &dyn Store) -> faasbox_store::Result<()> {
    loop {
        let events = store.undispatched_events(100).await?;
        if events.is_empty() {
            return Ok(());
        }
        for event in events {
            store
                .dispatch_event(event.seq, Box::new(decide_for))
                .await?;
        }
    }
}

/// How many deliveries one round claims.
const DELIVERIES_PER_ROUND: u32 = 100;

/// Claims the stored deliveries nobody holds and hands them over (a flow's to the runner, a
/// subscription's to the runs); what was taken (or can never be) is removed. One not done
/// with is handed over again once its claim expired (by this server or another).
async fn deliver_pending(state: &Arc<AppState>) {
    // Flows are not running (yet): deliveries wait, unclaimed.
    let Some(runner) = state.events.runner() else {
        return;
    };
    let node = state.node.as_str();
    let lease_ms = state.config.cluster.lease_ms();
    let pending = match state
        .store
        .claim_deliveries(node, lease_ms, DELIVERIES_PER_ROUND)
        .await
    {
        Ok(pending) => pending,
        Err(e) => {
            tracing::error!("claiming event deliveries: {e}");
            return;
        }
    };
    for delivery in pending {
        let to = match delivery.kind {
            ListenerKind::Subscription => To::Runs,
            _ => To::Flows(runner.clone()),
        };
        if !state.events.take(delivery.id) {
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            let done = match to {
                To::Flows(runner) => hand_over(runner.as_ref(), &delivery).await,
                To::Runs => hand_to_runs(&state, &delivery).await,
            };
            if done {
                let id = delivery.id;
                if let Err(e) = state.store.finish_delivery(id).await {
                    tracing::error!("finishing event delivery {id}: {e}");
                }
            }
            state.events.release(delivery.id);
        });
    }
}

/// Who takes a delivery.
enum To {
    Flows(Arc<dyn FlowRunner>),
    Runs,
}

/// Hands one delivery to the flow runner; whether it is done with (taken, or never can be).
async fn hand_over(runner: &dyn FlowRunner, delivery: &Delivery) -> bool {
    match deliver(runner, delivery).await {
        Ok(()) => true,
        Err(RunnerError::Gone(why)) => {
            tracing::warn!(flow = %delivery.flow, instance = %delivery.instance_id, "event delivery dropped: {why}");
            true
        }
        Err(RunnerError::Retry(why)) => {
            tracing::warn!(flow = %delivery.flow, instance = %delivery.instance_id, "event delivery will be retried: {why}");
            false
        }
    }
}

/// Hands a subscription's delivery to the runs; whether it is done with.
async fn hand_to_runs(state: &Arc<AppState>, delivery: &Delivery) -> bool {
    match crate::subscriptions::deliver(state, delivery).await {
        Handed::Done => true,
        Handed::Gone(why) => {
            tracing::warn!(subscription = %delivery.flow, run = %delivery.instance_id, "event delivery dropped: {why}");
            true
        }
        Handed::Retry(why) => {
            tracing::warn!(subscription = %delivery.flow, run = %delivery.instance_id, "event delivery will be retried: {why}");
            false
        }
    }
}

async fn deliver(runner: &dyn FlowRunner, delivery: &Delivery) -> Result<(), RunnerError> {
    let events: Vec<Value> = serde_json::from_str(&delivery.events)
        .map_err(|e| RunnerError::Gone(format!("unreadable events: {e}")))?;
    match delivery.kind {
        ListenerKind::Start => {
            let input = super::listeners::instance_input(&events);
            runner
                .start_instance(
                    &delivery.namespace,
                    &delivery.flow,
                    &delivery.instance_id,
                    input,
                    "cloudevent",
                )
                .await
        }
        ListenerKind::Wait => {
            runner
                .resume_instance(&delivery.instance_id, &delivery.listener_id, events)
                .await
        }
        ListenerKind::Subscription => Err(RunnerError::Gone(
            "a subscription's delivery is the runs', not a flow's".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_next_delayed_event_at_most_a_tick() {
        assert_eq!(idle_for(None, 1_000), IDLE_TICK);
        assert_eq!(idle_for(Some(1_250), 1_000), Duration::from_millis(250));
        assert_eq!(idle_for(Some(900), 1_000), Duration::ZERO, "overdue");
        assert_eq!(idle_for(Some(60_000), 1_000), IDLE_TICK);
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod flow_tests;
