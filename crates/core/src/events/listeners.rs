//! Listeners from flows: a deployed flow's start (event listeners or a cron schedule), and the
//! waits of instances in `consumeEvent` / `eventsXor` / `eventsAnd` states.

use std::time::Duration;

use faasbox_events::{CronSchedule, EventFilter, ListenMode};
use faasbox_store::Store;
use faasbox_store::{Delivery, Listener, ListenerKind};
use serde_json::{Map, Value};

use crate::failure::Failure;

/// How a flow starts, as far as events and schedules are concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowStart {
    /// `default`: only when run.
    Default,
    /// `scheduled` with its cron expression.
    Scheduled {
        /// The cron expression its instances start on (UTC; five fields, or six with seconds).
        cron: String,
    },
    /// `event` (mode One), `eventsXor` (Xor) or `eventsAnd` (And, with its lifespan).
    Events {
        /// Whether one event, any one of the filters, or all of them start it.
        mode: ListenMode,
        /// The events it listens for (type and context).
        filters: Vec<EventFilter>,
        /// `eventsAnd`: gathered events older than this no longer count (`None`: they always do).
        lifespan: Option<Duration>,
    },
}

/// Checks a start before a deploy is accepted: a bad cron expression is refused with the fix.
pub fn check_flow_start(start: &FlowStart) -> Result<(), String> {
    match start {
        FlowStart::Scheduled { cron } => CronSchedule::parse(cron)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        FlowStart::Events { filters, .. } if filters.is_empty() => {
            Err("an event start needs at least one event type".into())
        }
        _ => Ok(()),
    }
}

/// Puts a deployed flow's start into effect: its event listeners replace the previous
/// version's, and its schedule is set or removed. Call it in the deploy, after the flow is
/// stored.
pub async fn set_flow_start(
    store: &dyn Store,
    namespace: &str,
    flow: &str,
    start: &FlowStart,
    now_ms: i64,
) -> Result<(), Failure> {
    check_flow_start(start).map_err(Failure::invalid)?;
    let listeners = match start {
        FlowStart::Events {
            mode,
            filters,
            lifespan,
        } => vec![Listener {
            id: uuid::Uuid::new_v4().to_string(),
            namespace: namespace.to_string(),
            kind: ListenerKind::Start,
            flow: flow.to_string(),
            instance_id: None,
            mode: mode.as_str().to_string(),
            filters: filters_json(filters)?,
            lifespan_ms: lifespan.map(duration_ms),
            deadline_ms: None,
            after_seq: store.event_watermark().await?,
            created_ms: now_ms,
        }],
        _ => Vec::new(),
    };
    store
        .replace_start_listeners(namespace, flow, &listeners)
        .await?;
    match start {
        FlowStart::Scheduled { cron } => store.put_schedule(namespace, flow, cron, now_ms).await?,
        _ => {
            store.delete_schedule(namespace, flow).await?;
        }
    }
    Ok(())
}

/// Removes a deleted flow's event listeners and schedule.
pub async fn on_flow_removed(
    store: &dyn Store,
    namespace: &str,
    flow: &str,
) -> Result<(), Failure> {
    store.replace_start_listeners(namespace, flow, &[]).await?;
    store.delete_schedule(namespace, flow).await?;
    Ok(())
}

/// An instance that begins to wait in an event state.
#[derive(Debug, Clone)]
pub struct WaitRequest {
    /// The instance's namespace.
    pub namespace: String,
    /// The instance's flow (its path).
    pub flow: String,
    /// The waiting instance.
    pub instance_id: String,
    /// One for `consumeEvent`, Xor for `eventsXor`, And for `eventsAnd`.
    pub mode: ListenMode,
    /// The state's events with their `context` values already evaluated.
    pub filters: Vec<EventFilter>,
    /// When the wait times out (the engine enforces it and then calls
    /// `Store::delete_instance_listeners`).
    pub deadline_ms: Option<i64>,
    /// `Store::event_watermark()` taken when the state started (kept in its `Wait`): events
    /// accepted since then count, even those dispatched before this wait was stored.
    pub after_seq: i64,
    /// Now, in milliseconds since the Unix epoch: when the wait is stored.
    pub now_ms: i64,
}

/// Stores the wait and returns its listener id, plus the delivery if events that arrived
/// while it was being set up fire it at once (the dispatcher hands it to the runner: the
/// caller only has to wake it, see `EventBus::wake`).
pub async fn register_wait(
    store: &dyn Store,
    wait: &WaitRequest,
) -> Result<(String, Option<Delivery>), Failure> {
    if wait.filters.is_empty() {
        return Err(Failure::invalid("an event state needs at least one event"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let listener = Listener {
        id: id.clone(),
        namespace: wait.namespace.clone(),
        kind: ListenerKind::Wait,
        flow: wait.flow.clone(),
        instance_id: Some(wait.instance_id.clone()),
        mode: wait.mode.as_str().to_string(),
        filters: filters_json(&wait.filters)?,
        lifespan_ms: None,
        deadline_ms: wait.deadline_ms,
        after_seq: wait.after_seq,
        created_ms: wait.now_ms,
    };
    let fired = store
        .add_listener(&listener, Box::new(super::decide::decide_for))
        .await?;
    Ok((id, fired))
}

/// An event-started instance's input: each event (structured JSON) under its type, as
/// Direktiv gives it (`jq(."com.example.type".data)`).
pub fn instance_input(events: &[Value]) -> Value {
    let mut input = Map::new();
    for event in events {
        if let Some(event_type) = event.get("type").and_then(Value::as_str) {
            input.insert(event_type.to_string(), event.clone());
        }
    }
    Value::Object(input)
}

fn filters_json(filters: &[EventFilter]) -> Result<String, Failure> {
    serde_json::to_string(filters).map_err(|e| Failure::internal(e.to_string()))
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn input_puts_each_event_under_its_type() {
        let a = json!({"type": "a", "id": "1", "data": {"x": 1}});
        let b = json!({"type": "b.c", "id": "2"});
        assert_eq!(
            instance_input(&[a.clone(), b.clone()]),
            json!({"a": a, "b.c": b})
        );
    }

    #[test]
    fn bad_cron_is_refused_with_the_fix() {
        let err = check_flow_start(&FlowStart::Scheduled {
            cron: "every day".into(),
        })
        .unwrap_err();
        assert!(err.contains("use 5 fields"), "{err}");
        assert!(check_flow_start(&FlowStart::Scheduled {
            cron: "*/5 * * * *".into()
        })
        .is_ok());
    }

    #[tokio::test]
    async fn deploy_sets_and_replaces_listeners_and_schedules() {
        let store = faasbox_store_sqlite::SqliteStore::open_in_memory().unwrap();
        store.create_namespace("demo", "t").unwrap();
        let start = FlowStart::Events {
            mode: ListenMode::And,
            filters: vec![EventFilter::new("a"), EventFilter::new("b")],
            lifespan: Some(Duration::from_secs(60)),
        };
        set_flow_start(&store, "demo", "/f", &start, 1)
            .await
            .unwrap();
        let listeners = store.list_listeners("demo").unwrap();
        assert_eq!(listeners.len(), 1);
        assert_eq!(listeners[0].listener.mode, "and");
        assert_eq!(listeners[0].listener.lifespan_ms, Some(60_000));
        let cron = FlowStart::Scheduled {
            cron: "* * * * * *".into(),
        };
        set_flow_start(&store, "demo", "/f", &cron, 2)
            .await
            .unwrap();
        assert!(store.list_listeners("demo").unwrap().is_empty());
        assert_eq!(store.schedules().unwrap().len(), 1);
        on_flow_removed(&store, "demo", "/f").await.unwrap();
        assert!(store.schedules().unwrap().is_empty());
    }
}
