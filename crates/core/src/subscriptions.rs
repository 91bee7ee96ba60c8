//! Event subscriptions: a namespace's function run (as an asynchronous run) for each accepted
//! CloudEvent that has a type and whose source and attributes match patterns — Direktiv's
//! event filters, as flows use them. A subscription is an event listener of kind
//! `subscription`: the dispatcher offers it every event, and a match stores a delivery (in the
//! same transaction) whose id becomes the run's id, so handing it over ([`deliver`]) twice,
//! after a crash, still runs the function once for the event.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use faasbox_events::EventFilter;
use faasbox_store::{Delivery, SubscriptionRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::failure::Failure;
use crate::runs::{self, Submission};
use crate::state::AppState;

/// What a subscription is made of (the body of `PUT …/subscriptions/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    /// The function of the namespace run for each matching event.
    pub function: String,
    /// The event `type`, matched exactly.
    #[serde(rename = "type")]
    pub event_type: String,
    /// A pattern the event's `source` must match (`*` is any run of characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Attribute name → pattern: each attribute (an extension, or `subject`, `id`, …) must
    /// exist and match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    /// Its name, unique in the namespace.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The function run for each matching event.
    pub function: String,
    /// The event type it matches.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The source pattern, if any.
    pub source: Option<String>,
    /// Attribute patterns.
    pub context: BTreeMap<String, String>,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it was last changed (RFC 3339).
    pub modified: String,
}

impl SubscriptionView {
    fn from_record(record: SubscriptionRecord) -> SubscriptionView {
        // Written by `put` from a map; a damaged row shows no patterns rather than failing.
        let context = serde_json::from_str(&record.context).unwrap_or_default();
        SubscriptionView {
            name: record.name,
            namespace: record.namespace,
            function: record.function,
            event_type: record.event_type,
            source: record.source,
            context,
            created: record.created,
            modified: record.modified,
        }
    }
}

/// The filter a subscription listens with: its type, with the source pattern as the
/// `source` attribute's.
pub fn filter(body: &SubscriptionBody) -> EventFilter {
    let mut filter = EventFilter::new(&body.event_type);
    filter.context = body.context.clone();
    if let Some(source) = &body.source {
        filter.context.insert("source".to_string(), source.clone());
    }
    filter
}

/// Checks a body: a type, attribute names as CloudEvents spell them, the source given once.
fn check(body: &SubscriptionBody) -> Result<(), Failure> {
    if body.event_type.trim().is_empty() {
        return Err(Failure::invalid(
            "a subscription needs the event `type` it runs its function for (e.g. \"type\": \"order.created\")",
        ));
    }
    crate::model::check_name("function", &body.function).map_err(Failure::invalid)?;
    for name in body.context.keys() {
        let valid = !name.is_empty()
            && name.len() <= 20
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(Failure::invalid(format!(
                "the context attribute name '{name}' is invalid: CloudEvents attribute names are 1 to 20 lower-case letters (a-z) or digits (0-9)"
            )));
        }
        if name == "type" {
            return Err(Failure::invalid(
                "the event type is the subscription's `type`, not a context pattern",
            ));
        }
    }
    if body.source.is_some() && body.context.contains_key("source") {
        return Err(Failure::invalid(
            "the source pattern is given twice (`source` and `context.source`); keep one",
        ));
    }
    Ok(())
}

/// Creates or replaces subscription `name` of `namespace`; the view and whether it was created.
/// A function that does not exist is refused (404, with how to deploy it). Events accepted
/// from now on are offered to it.
pub async fn put(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    body: SubscriptionBody,
) -> Result<(SubscriptionView, bool), Failure> {
    crate::model::check_name("subscription", name).map_err(Failure::invalid)?;
    check(&body)?;
    if state.store.namespace(namespace).await?.is_none() {
        return Err(Failure::no_such_namespace(namespace));
    }
    if state
        .store
        .function(namespace, &body.function)
        .await?
        .is_none()
    {
        return Err(Failure::not_found(format!(
            "function '{}' does not exist in namespace '{namespace}'; deploy it first (`faasbox fn deploy {namespace}/{} …`) or name another",
            body.function, body.function
        )));
    }
    let filters = serde_json::to_string(&[filter(&body)])
        .map_err(|e| Failure::internal(format!("a subscription's filter: {e}")))?;
    let context = serde_json::to_string(&body.context)
        .map_err(|e| Failure::internal(format!("a subscription's context: {e}")))?;
    let now = crate::clock::now_rfc3339();
    let record = SubscriptionRecord {
        namespace: namespace.to_string(),
        name: name.to_string(),
        function: body.function,
        event_type: body.event_type,
        source: body.source,
        context,
        listener_id: uuid::Uuid::new_v4().to_string(),
        created: now.clone(),
        modified: now,
    };
    let created = state
        .store
        .put_subscription(&record, &filters, crate::clock::store_ms())
        .await?;
    let view = get(state, namespace, name).await?;
    Ok((view, created))
}

/// Subscription `name` of `namespace` (404 with the fix when absent).
pub async fn get(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
) -> Result<SubscriptionView, Failure> {
    match state.store.get_subscription(namespace, name).await? {
        Some(record) => Ok(SubscriptionView::from_record(record)),
        None => Err(no_such(namespace, name)),
    }
}

/// A namespace's subscriptions by name.
pub async fn list(
    state: &Arc<AppState>,
    namespace: &str,
) -> Result<Vec<SubscriptionView>, Failure> {
    if state.store.namespace(namespace).await?.is_none() {
        return Err(Failure::no_such_namespace(namespace));
    }
    Ok(state
        .store
        .list_subscriptions(namespace)
        .await?
        .into_iter()
        .map(SubscriptionView::from_record)
        .collect())
}

/// Deletes a subscription: no event runs its function from now on, deliveries not handed
/// over yet included (404 with the fix when absent).
pub async fn delete(state: &Arc<AppState>, namespace: &str, name: &str) -> Result<(), Failure> {
    if state.store.delete_subscription(namespace, name).await? {
        Ok(())
    } else {
        Err(no_such(namespace, name))
    }
}

fn no_such(namespace: &str, name: &str) -> Failure {
    Failure::not_found(format!(
        "subscription '{name}' does not exist in namespace '{namespace}'; list them with `faasbox subscription ls {namespace}`"
    ))
}

/// What became of a delivery handed over.
#[derive(Debug)]
pub enum Handed {
    /// The run is stored (now, or by an earlier attempt): the delivery is done.
    Done,
    /// It can never run (the subscription or its function is gone): drop it, saying why.
    Gone(String),
    /// Not now (the runs cannot take it yet): keep it and try again later.
    Retry(String),
}

/// Hands a subscription's delivery over: submits the run of the subscription's function with
/// the delivery's id (an existing run with that id means an earlier attempt got through),
/// `input` = the event's data (`{}` without data) and `event` = the event without its data.
pub async fn deliver(state: &Arc<AppState>, delivery: &Delivery) -> Handed {
    let subscription = match state
        .store
        .get_subscription(&delivery.namespace, &delivery.flow)
        .await
    {
        Ok(Some(subscription)) => subscription,
        Ok(None) => return Handed::Gone(format!("subscription '{}' is gone", delivery.flow)),
        Err(e) => return Handed::Retry(format!("reading the subscription: {e}")),
    };
    let events: Vec<Value> = match serde_json::from_str(&delivery.events) {
        Ok(events) => events,
        Err(e) => return Handed::Gone(format!("unreadable events: {e}")),
    };
    let Some(event) = events.into_iter().next() else {
        return Handed::Gone("the delivery holds no event".into());
    };
    let (input, event) = split_event(event);
    let submission = Submission {
        id: Some(delivery.instance_id.clone()),
        namespace: delivery.namespace.clone(),
        function: subscription.function.clone(),
        input,
        event: Some(event),
        ..Submission::default()
    };
    match runs::submit(state, submission).await {
        Ok(_) => Handed::Done,
        // The caller's failures (the function is gone, the input is refused) stay so.
        Err(f) if f.is_callers() => Handed::Gone(f.to_string()),
        Err(f) => Handed::Retry(f.to_string()),
    }
}

/// The run's input (the event's `data` as JSON: text as a string, bytes as their base64;
/// `{}` without data) and the event without its data.
pub fn split_event(mut event: Value) -> (Bytes, Value) {
    let data = event.as_object_mut().and_then(|map| {
        let data = map.remove("data");
        let base64 = map.remove("data_base64");
        data.or(base64)
    });
    let input = data.unwrap_or_else(|| Value::Object(Default::default()));
    (Bytes::from(input.to_string()), event)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_input_is_the_data_and_the_event_loses_it() {
        let (input, event) = split_event(json!({"id": "1", "type": "t", "data": {"a": 1}}));
        assert_eq!(&input[..], br#"{"a":1}"#);
        assert_eq!(event, json!({"id": "1", "type": "t"}));
        let (input, event) = split_event(json!({"id": "2", "type": "t"}));
        assert_eq!(&input[..], b"{}");
        assert_eq!(event, json!({"id": "2", "type": "t"}));
        let (input, event) = split_event(json!({"id": "3", "data_base64": "AAE="}));
        assert_eq!(&input[..], br#""AAE=""#);
        assert_eq!(event, json!({"id": "3"}));
    }

    #[test]
    fn the_source_is_a_context_pattern_and_bad_names_are_refused() {
        let mut body = SubscriptionBody {
            function: "f".into(),
            event_type: "order.created".into(),
            source: Some("/shop/*".into()),
            context: BTreeMap::from([("region".to_string(), "eu*".to_string())]),
        };
        check(&body).unwrap();
        assert_eq!(
            filter(&body),
            EventFilter::new("order.created")
                .with("region", "eu*")
                .with("source", "/shop/*")
        );
        body.context.insert("source".into(), "/x".into());
        assert!(check(&body).unwrap_err().message.contains("twice"));
        body.context.clear();
        body.context.insert("Region".into(), "eu".into());
        assert!(check(&body).unwrap_err().message.contains("'Region'"));
        body.context.clear();
        body.event_type = " ".into();
        assert!(check(&body).unwrap_err().message.contains("type"));
    }
}
