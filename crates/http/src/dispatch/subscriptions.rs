//! `/v1/event/subscriptions[/{name}]` and `POST /v1/event`: Dispatch's event manager on
//! faasbox's event subscriptions (`faasbox_core::subscriptions`) and event intake (the same as
//! `POST /api/v1/namespaces/{ns}/events`). A Dispatch Subscription `{name, eventType,
//! function, source?}` is a subscription on the type (and the source pattern); an emitted
//! event (Dispatch's Emission `{"event": …}`, or a CloudEvent 1.0 as it is) runs the
//! function of every matching subscription asynchronously.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use faasbox_core::subscriptions::{self, SubscriptionBody, SubscriptionView};
use faasbox_events::CloudEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::models::{id_of, unix_seconds, Tag};
use super::{read_json, require_org, DispatchError, DispatchResult, Org};
use faasbox_core::state::AppState;

/// Dispatch's `Subscription` as a client sends it: what faasbox reads of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionRequest {
    name: String,
    event_type: String,
    function: String,
    /// A pattern the event's source must match (faasbox's; Dispatch matches the type alone).
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
}

/// Dispatch's `Subscription` as faasbox answers it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Subscription {
    id: String,
    name: String,
    kind: &'static str,
    event_type: String,
    function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    secrets: Vec<String>,
    status: &'static str,
    reason: Vec<String>,
    tags: Vec<Tag>,
    created_time: i64,
    modified_time: i64,
}

impl Subscription {
    fn of(view: SubscriptionView) -> Subscription {
        Subscription {
            id: id_of(&view.namespace, "subscription", &view.name),
            kind: "Subscription",
            event_type: view.event_type,
            function: view.function,
            source: view.source,
            secrets: Vec::new(),
            status: super::models::status::READY,
            reason: Vec::new(),
            tags: Vec::new(),
            created_time: unix_seconds(&view.created),
            modified_time: unix_seconds(&view.modified),
            name: view.name,
        }
    }
}

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    body: axum::body::Bytes,
) -> DispatchResult<(StatusCode, Json<Subscription>)> {
    require_org(&state, &ns).await?;
    let request: SubscriptionRequest = read_json(&body, "Subscription")?;
    if !request.secrets.is_empty() {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            "a subscription cannot name secrets of its own in faasbox: name them on the \
             function (`secrets`), whose every run gets them",
        ));
    }
    if subscriptions::get(&state, &ns, &request.name).await.is_ok() {
        return Err(DispatchError::new(
            StatusCode::CONFLICT,
            format!(
                "subscription '{}' already exists in {ns}: delete it first \
                 (`DELETE /v1/event/subscriptions/{}`)",
                request.name, request.name
            ),
        ));
    }
    let body = SubscriptionBody {
        function: request.function,
        event_type: request.event_type,
        source: request.source,
        context: Default::default(),
    };
    let (view, _) = subscriptions::put(&state, &ns, &request.name, body).await?;
    Ok((StatusCode::CREATED, Json(Subscription::of(view))))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
) -> DispatchResult<Json<Vec<Subscription>>> {
    require_org(&state, &ns).await?;
    let views = subscriptions::list(&state, &ns).await?;
    Ok(Json(views.into_iter().map(Subscription::of).collect()))
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Subscription>> {
    require_org(&state, &ns).await?;
    let view = subscriptions::get(&state, &ns, &name).await?;
    Ok(Json(Subscription::of(view)))
}

/// Deletes a subscription and answers it, as Dispatch does.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Subscription>> {
    require_org(&state, &ns).await?;
    let view = subscriptions::get(&state, &ns, &name).await?;
    subscriptions::delete(&state, &ns, &name).await?;
    Ok(Json(Subscription::of(view)))
}

/// `POST /v1/event`: accepts the event into the org's namespace, as
/// `POST /api/v1/namespaces/{ns}/events` does; answers Dispatch's Emission (200).
pub(crate) async fn emit(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    body: axum::body::Bytes,
) -> DispatchResult<Json<Value>> {
    require_org(&state, &ns).await?;
    let body: Value = read_json(&body, "Emission")?;
    let event = cloudevent_of(body).map_err(|e| {
        DispatchError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not an Emission ({{\"event\": CloudEvent}}) nor a CloudEvent 1.0: {e}"
            ),
        )
    })?;
    let structured = event.to_json();
    let inserted = faasbox_core::events::emit(&state, &ns, event).await?;
    if matches!(inserted, faasbox_store::EventInsert::New(_)) {
        faasbox_core::metrics::event_accepted(&ns);
    }
    Ok(Json(json!({ "event": structured, "tags": [] })))
}

/// The event of an Emission (`{"event": …, "tags": …}`) or of a bare CloudEvent; Dispatch's
/// CloudEvents 0.1 attribute names (`eventType`, `eventID`, `eventTime`, `contentType`,
/// `schemaURL`, `extensions`) are read as CloudEvents 1.0's.
fn cloudevent_of(body: Value) -> Result<CloudEvent, String> {
    let event = match body {
        Value::Object(mut map) if map.get("event").is_some_and(Value::is_object) => {
            map.remove("event").unwrap_or_default()
        }
        other => other,
    };
    let Value::Object(map) = event else {
        return Err("the event is not a JSON object".into());
    };
    let mut v1 = Map::new();
    for (name, value) in map {
        let name = match name.as_str() {
            "eventType" => "type",
            "eventID" => "id",
            "eventTime" => "time",
            "contentType" => "datacontenttype",
            "schemaURL" => "dataschema",
            "cloudEventsVersion" | "eventTypeVersion" => continue,
            "extensions" => {
                if let Value::Object(extensions) = value {
                    for (k, v) in extensions {
                        v1.entry(k).or_insert(v);
                    }
                }
                continue;
            }
            other => other,
        };
        v1.insert(name.to_string(), value);
    }
    v1.entry("specversion").or_insert_with(|| json!("1.0"));
    CloudEvent::from_json(Value::Object(v1)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emission_of_a_dispatch_cloudevent_is_read_as_one_of_1_0() {
        let event = cloudevent_of(json!({"event": {
            "cloudEventsVersion": "0.1", "eventType": "order.created", "eventID": "7",
            "source": "/shop", "contentType": "application/json", "data": {"n": 1},
            "extensions": {"region": "eu"}
        }, "tags": []}))
        .unwrap();
        assert_eq!(event.event_type, "order.created");
        assert_eq!(event.id, "7");
        assert_eq!(event.attribute("region").as_deref(), Some("eu"));
        assert_eq!(event.to_json()["data"], json!({"n": 1}));
        let bare =
            cloudevent_of(json!({"specversion": "1.0", "type": "t", "id": "1", "source": "/s"}))
                .unwrap();
        assert_eq!(bare.event_type, "t");
        assert!(cloudevent_of(json!({"event": {"eventType": "t"}})).is_err());
    }
}
