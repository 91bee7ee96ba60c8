//! `/api/v1/namespaces/{ns}/events`: accept a CloudEvent (POST, structured or binary HTTP
//! mode) and list the latest accepted ones (GET).
//!
//! An accepted event is stored before the answer (202), then dispatched to the namespace's
//! event starts and waiting instances. The same source and id again is accepted and ignored.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use faasbox_events::{from_http, CloudEvent};
use faasbox_store::EventInsert;
use serde::Deserialize;
use serde_json::{json, Value};

use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::state::AppState;

pub async fn post(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require_namespace(&state, &ns).await?;
    let body = body?;
    let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
    let event = from_http(pairs, &body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut answer = accepted(&event);
    let inserted = faasbox_core::events::emit(&state, &ns, event).await?;
    let duplicate = matches!(inserted, EventInsert::Duplicate(_));
    if !duplicate {
        faasbox_core::metrics::event_accepted(&ns);
    }
    answer["duplicate"] = json!(duplicate);
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

fn accepted(event: &CloudEvent) -> Value {
    json!({ "id": event.id, "source": event.source, "type": event.event_type })
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u64>,
    /// The next page: events accepted before the event with this seq.
    before: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    require_namespace(&state, &ns).await?;
    let limit = super::list_limit(query.limit, 100, &faasbox_core::bounds::EVENT_LIST_LIMIT)?;
    let events = match &query.before {
        None => state.store.list_events(&ns, limit).await?,
        Some(before) => {
            let unknown = || super::paging::unknown_before("the seq of an event", &ns, before);
            let seq: i64 = before.parse().map_err(|_| unknown())?;
            state
                .store
                .list_events_before(&ns, seq, limit)
                .await?
                .ok_or_else(unknown)?
        }
    };
    let rows: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let event: Value = serde_json::from_str(&e.event).unwrap_or(Value::Null);
            json!({
                "seq": e.seq,
                "received": faasbox_core::clock::format_rfc3339(
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.received_ms) * 1_000_000)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                ),
                "event": event,
            })
        })
        .collect();
    Ok(super::paging::page(rows, limit, |row| {
        row["seq"].to_string()
    }))
}
