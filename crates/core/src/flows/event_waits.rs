//! What the workflow engine's instances do with events (`crate::events`): a waiting instance's
//! wait stored as a listener, the events that fired it matched to the wait, a deployed flow's
//! start as a [`FlowStart`], and `generateEvent`'s events emitted into the namespace. The
//! runner and the effects use it; `super::events` (the events' `FlowRunner`) sits above them.

use std::sync::Arc;
use std::time::Duration;

use faasbox_events::{EventFilter, ListenMode};
use faasbox_flow::engine::{InstanceRef, Wait, WaitMode};
use faasbox_flow::model::StartKind;
use faasbox_flow::Workflow;
use serde_json::{Map, Value};

use crate::events::{FlowStart, GeneratedFields, WaitRequest};
use crate::state::AppState;

/// Pairs each event with the index of the wait's event it answers: in order for eventsAnd
/// (the listener fires in filter order), the first matching filter otherwise.
pub fn match_to_wait(wait: &Wait, events: Vec<Value>) -> Vec<(usize, Value)> {
    if wait.mode == WaitMode::And {
        return events.into_iter().enumerate().collect();
    }
    let filters = wait_filters(wait);
    events
        .into_iter()
        .map(|event| {
            let index = faasbox_events::CloudEvent::from_json(event.clone())
                .ok()
                .and_then(|e| filters.iter().position(|f| f.matches(&e)))
                .unwrap_or(0);
            (index, event)
        })
        .collect()
}

fn wait_filters(wait: &Wait) -> Vec<EventFilter> {
    wait.events
        .iter()
        .map(|e| {
            crate::events::event_filter(&e.event_type, &e.context, |v| {
                Ok::<_, std::convert::Infallible>(v.clone())
            })
            .unwrap_or_else(|never| match never {})
        })
        .collect()
}

/// Stores the wait of an instance the engine left waiting: events accepted since its state
/// started (its watermark) count. `fallback_after_seq` stands in for a wait saved without a
/// watermark (by an older version): the mark taken when this run of the instance began.
pub async fn on_waiting(
    state: &Arc<AppState>,
    instance: &InstanceRef,
    wait: &Wait,
    fallback_after_seq: i64,
) {
    let request = WaitRequest {
        namespace: instance.namespace.clone(),
        flow: instance.flow.clone(),
        instance_id: instance.id.clone(),
        mode: match wait.mode {
            WaitMode::Consume => ListenMode::One,
            WaitMode::Xor => ListenMode::Xor,
            WaitMode::And => ListenMode::And,
        },
        filters: wait_filters(wait),
        deadline_ms: wait.deadline_ms.map(|d| d as i64),
        after_seq: wait.watermark.unwrap_or(fallback_after_seq),
        now_ms: crate::events::now_ms(),
    };
    let stored = store_wait(state, &request).await;
    match stored {
        Ok(Some((_, fired))) => {
            if fired.is_some() {
                state.events.wake();
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(instance = %instance.id, "storing the instance's event wait failed: {e}")
        }
    }
}

/// Stores an instance's wait, unless it is stored already (a wait resumed after a restart);
/// `None` then. The check and the insert are two store calls: only this instance's own run
/// stores its wait, so nothing comes between them that matters.
async fn store_wait(
    state: &AppState,
    request: &WaitRequest,
) -> Result<Option<(String, Option<faasbox_store::Delivery>)>, crate::failure::Failure> {
    let stored = state
        .store
        .wait_listeners()
        .await?
        .iter()
        .any(|l| l.instance_id.as_deref() == Some(request.instance_id.as_str()));
    if stored {
        return Ok(None);
    }
    Ok(Some(
        crate::events::register_wait(&*state.store, request).await?,
    ))
}

/// A flow's start as the events machinery sees it.
pub fn flow_start(flow: &Workflow) -> FlowStart {
    let filter = |f: &faasbox_flow::model::EventFilter| {
        crate::events::event_filter(&f.event_type, &f.context, |v| {
            Ok::<_, std::convert::Infallible>(v.clone())
        })
        .unwrap_or_else(|never| match never {})
    };
    match &flow.start.kind {
        StartKind::Default => FlowStart::Default,
        StartKind::Scheduled { cron } => FlowStart::Scheduled { cron: cron.clone() },
        StartKind::Event { event } => FlowStart::Events {
            mode: ListenMode::One,
            filters: vec![filter(event)],
            lifespan: None,
        },
        StartKind::EventsXor { events } => FlowStart::Events {
            mode: ListenMode::Xor,
            filters: events.iter().map(filter).collect(),
            lifespan: None,
        },
        StartKind::EventsAnd { events, lifespan } => FlowStart::Events {
            mode: ListenMode::And,
            filters: events.iter().map(filter).collect(),
            lifespan: *lifespan,
        },
    }
}

/// `generateEvent`: the engine's evaluated event (attributes, `data`, and the context as
/// further members) emitted into the instance's namespace, at once or after `delay`.
pub async fn generate(
    state: &Arc<AppState>,
    instance: &InstanceRef,
    event: Value,
    delay: Option<Duration>,
) -> Result<String, String> {
    let Value::Object(mut members) = event else {
        return Err("the generated event is not an object".into());
    };
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    members.remove("specversion");
    let fields = GeneratedFields {
        event_type: text(members.remove("type")),
        source: text(members.remove("source")),
        data: members.remove("data"),
        data_content_type: members.remove("datacontenttype").map(|v| text(Some(v))),
        context: members.into_iter().collect::<Map<String, Value>>(),
    };
    let event = crate::events::generated_event(&fields)?;
    let id = event.id.clone();
    match delay {
        Some(delay) => crate::events::emit_later(state, &instance.namespace, event, delay).await,
        None => crate::events::emit(state, &instance.namespace, event)
            .await
            .map(|_| ()),
    }
    .map_err(|e| e.message)?;
    Ok(id)
}
