//! Events that flows make: `generateEvent` builds a CloudEvent from its evaluated fields and
//! emits it into the namespace (at once, or held in the store until its `delay` passed), where
//! it starts and resumes flows like any received event.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use faasbox_events::{is_json_content_type, AttributeValue, CloudEvent, EventData, EventFilter};
use faasbox_store::{DelayedEvent, EventInsert};
use serde_json::{Map, Value};

use crate::failure::Failure;
use crate::state::AppState;

/// The evaluated fields of a `generateEvent` state (`jq(…)` already applied).
#[derive(Debug, Clone, Default)]
pub struct GeneratedFields {
    /// The event's `type`.
    pub event_type: String,
    /// The event's `source`.
    pub source: String,
    /// The event's data, if any.
    pub data: Option<Value>,
    /// The data's content type (`datacontenttype`); JSON when absent.
    pub data_content_type: Option<String>,
    /// Extension attributes to set on the event, by name.
    pub context: Map<String, Value>,
}

/// Builds the event as Direktiv does: a string under a non-JSON content type is base64 for
/// bytes (or text when it is not base64), anything else is JSON data; each context entry
/// becomes an extension attribute. The event gets a new id.
pub fn generated_event(fields: &GeneratedFields) -> Result<CloudEvent, String> {
    let mut event = CloudEvent::new(
        &uuid::Uuid::new_v4().to_string(),
        &fields.source,
        &fields.event_type,
    );
    if fields.event_type.is_empty() || fields.source.is_empty() {
        return Err("a generated event needs a non-empty type and source".into());
    }
    let content_type = fields.data_content_type.clone().filter(|ct| !ct.is_empty());
    event.data = match (&fields.data, content_type.as_deref()) {
        (None, _) => None,
        (Some(Value::String(s)), Some(ct)) if !is_json_content_type(ct) => Some(
            match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
                Ok(bytes) => EventData::Binary(bytes),
                Err(_) => EventData::Text(s.clone()),
            },
        ),
        (Some(data), _) => Some(EventData::Json(data.clone())),
    };
    event.datacontenttype = match (&event.data, content_type) {
        (Some(EventData::Json(_)), _) => Some("application/json".into()),
        (_, ct) => ct,
    };
    for (name, value) in &fields.context {
        let value = match value {
            Value::String(s) => AttributeValue::String(s.clone()),
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Number(n) if n.is_i64() => AttributeValue::Integer(n.as_i64().unwrap_or(0)),
            other => AttributeValue::String(other.to_string()),
        };
        event.extensions.insert(name.clone(), value);
    }
    // Validates names and values the same way as a received event.
    CloudEvent::from_json(event.to_json()).map_err(|e| e.to_string())
}

/// Stores the event in the namespace and, unless it is a duplicate, wakes the dispatcher.
pub async fn emit(
    state: &Arc<AppState>,
    namespace: &str,
    event: CloudEvent,
) -> Result<EventInsert, Failure> {
    let inserted = state
        .store
        .insert_event(
            namespace,
            &event.id,
            &event.source,
            &event.event_type,
            &event.to_json().to_string(),
            crate::clock::store_ms(),
        )
        .await?;
    if matches!(inserted, EventInsert::New(_)) {
        state.events.wake();
    }
    Ok(inserted)
}

/// Holds the event in the store until `delay` from now, when the dispatcher accepts it into
/// the namespace (see `Store::release_due_events`); stored before this returns, so a crash
/// does not lose it.
pub async fn emit_later(
    state: &Arc<AppState>,
    namespace: &str,
    event: CloudEvent,
    delay: Duration,
) -> Result<(), Failure> {
    let held = DelayedEvent {
        namespace: namespace.to_string(),
        id: event.id.clone(),
        source: event.source.clone(),
        event_type: event.event_type.clone(),
        event: event.to_json().to_string(),
        due_ms: crate::clock::store_ms()
            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
    };
    state.store.insert_delayed_event(&held).await?;
    // The dispatcher sleeps until the earliest due event; this one may be earlier.
    state.events.wake();
    Ok(())
}

/// A flow's event filter from its YAML `type` and `context`: context values become text
/// (strings as they are, other values as JSON). `evaluate` turns a value into its final form
/// (the engine passes its `jq(…)` evaluation for event states; starts pass values as they are).
pub fn event_filter<E>(
    event_type: &str,
    context: &Map<String, Value>,
    mut evaluate: impl FnMut(&Value) -> Result<Value, E>,
) -> Result<EventFilter, E> {
    let mut filter = EventFilter::new(event_type);
    for (name, value) in context {
        let text = match evaluate(value)? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        filter.context.insert(name.clone(), text);
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(data: Option<Value>, ct: Option<&str>) -> GeneratedFields {
        GeneratedFields {
            event_type: "t".into(),
            source: "/s".into(),
            data,
            data_content_type: ct.map(str::to_string),
            context: Map::new(),
        }
    }

    #[test]
    fn json_text_and_base64_data() {
        let e = generated_event(&fields(Some(json!({"a": 1})), None)).unwrap();
        assert_eq!(e.data, Some(EventData::Json(json!({"a": 1}))));
        assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));
        let e = generated_event(&fields(
            Some(json!("AAE=")),
            Some("application/octet-stream"),
        ))
        .unwrap();
        assert_eq!(e.data, Some(EventData::Binary(vec![0, 1])));
        let e = generated_event(&fields(Some(json!("hi there")), Some("text/plain"))).unwrap();
        assert_eq!(e.data, Some(EventData::Text("hi there".into())));
    }

    #[test]
    fn context_becomes_extensions_and_bad_names_are_refused() {
        let mut f = fields(None, None);
        f.context.insert("region".into(), json!("eu"));
        f.context.insert("count".into(), json!(3));
        let e = generated_event(&f).unwrap();
        assert_eq!(e.attribute("region").as_deref(), Some("eu"));
        assert_eq!(e.attribute("count").as_deref(), Some("3"));
        f.context.insert("Bad_Name".into(), json!("x"));
        assert!(generated_event(&f).unwrap_err().contains("Bad_Name"));
    }

    #[test]
    fn filters_evaluate_and_stringify_context() {
        let mut context = Map::new();
        context.insert("source".into(), json!("jq(.src)"));
        context.insert("n".into(), json!(5));
        let f = event_filter("t", &context, |v| {
            Ok::<_, ()>(if v == &json!("jq(.src)") {
                json!("/a/*")
            } else {
                v.clone()
            })
        })
        .unwrap();
        assert_eq!(
            f,
            EventFilter::new("t").with("source", "/a/*").with("n", "5")
        );
    }
}
