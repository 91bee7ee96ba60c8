//! What a listener does with an offered event ([`decide_for`]): faasbox-events' rules over the
//! forms the store keeps. The dispatcher offers each event with it, and a listener registered
//! with events already waiting is offered those.

use faasbox_events::{decide, CloudEvent, Decision, EventFilter, Gathered, ListenMode, Offered};
use faasbox_store::{ListenerAction, ListenerKind, ListenerRecord, StoredEvent};
use serde_json::Value;

/// What `listener` does with `event`: faasbox-events' rules over the stored forms. A listener
/// or event that cannot be read (it was stored by this server, so only a bug does that) is
/// logged and ignored.
pub fn decide_for(event: &StoredEvent, listener: &ListenerRecord) -> ListenerAction {
    match try_decide(event, listener) {
        Ok(action) => action,
        Err(e) => {
            tracing::error!(listener = %listener.listener.id, event = event.seq, "cannot offer the event: {e}");
            ListenerAction::Ignore
        }
    }
}

/// Why a stored listener or event cannot be read back.
type Unreadable = String;

fn try_decide(event: &StoredEvent, record: &ListenerRecord) -> Result<ListenerAction, Unreadable> {
    let listener = &record.listener;
    let mode = ListenMode::parse(&listener.mode)
        .ok_or_else(|| format!("unknown listen mode '{}'", listener.mode))?;
    let filters: Vec<EventFilter> =
        serde_json::from_str(&listener.filters).map_err(|e| format!("its filters: {e}"))?;
    let offered_event = parse_event(&event.event)?;
    let gathered = record
        .gathered
        .iter()
        .map(|g| {
            Ok(Gathered {
                filter_index: usize::try_from(g.filter_index).map_err(|e| e.to_string())?,
                event_seq: g.event_seq,
                received_ms: g.received_ms,
                event: parse_event(&g.event)?,
            })
        })
        .collect::<Result<Vec<_>, Unreadable>>()?;
    let offered = Offered {
        seq: event.seq,
        received_ms: event.received_ms,
        event: &offered_event,
    };
    Ok(
        match decide(mode, &filters, listener.lifespan_ms, &gathered, offered) {
            Decision::Ignore => ListenerAction::Ignore,
            Decision::Keep {
                filter_index,
                expired,
            } => ListenerAction::Keep {
                filter_index: filter_index as i64,
                expired: expired.into_iter().map(|i| i as i64).collect(),
            },
            Decision::Fire(events) => ListenerAction::Fire {
                instance_id: match (&listener.instance_id, listener.kind) {
                    (Some(waiting), _) => waiting.clone(),
                    // A subscription's delivery id is its run's id (32 hex digits).
                    (None, ListenerKind::Subscription) => crate::record_id::run(),
                    (None, _) => crate::record_id::instance(),
                },
                events: Value::Array(events.iter().map(CloudEvent::to_json).collect()).to_string(),
            },
        },
    )
}

fn parse_event(json: &str) -> Result<CloudEvent, Unreadable> {
    let value = serde_json::from_str(json).map_err(|e| format!("an event: {e}"))?;
    CloudEvent::from_json(value).map_err(|e| format!("an event: {e}"))
}
