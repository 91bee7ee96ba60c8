//! Invoking functions and reading back what calls did: status and logs.

use std::sync::Arc;

use super::records::{self, InvocationRecord};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use faasbox_proto::LogLine;
use serde::{Deserialize, Serialize};

use super::held_body as bodies;
use super::{require_namespace, valid_name};
use crate::error::{ApiError, ApiResult};
use faasbox_core::invoker::{self, CallOptions, CallRequest};
use faasbox_core::state::AppState;

pub const INVOCATION_ID_HEADER: &str = "faasbox-invocation-id";

pub async fn invoke(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    call(state, ns, name, &headers, body, false).await
}

/// `POST /api/v1/namespaces/{ns}/global-functions/{name}/invoke`: a global service called on
/// behalf of `ns` (the call and its logs are `ns`'s).
pub async fn invoke_global(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    call(state, ns, name, &headers, body, true).await
}

/// Reads the body (within the body budget), runs the call, and answers the output (200) or
/// the error, with the invocation id header.
async fn call(
    state: Arc<AppState>,
    ns: String,
    name: String,
    headers: &HeaderMap,
    body: Body,
    global: bool,
) -> Response {
    if let Err(e) = valid_name("namespace", &ns).and_then(|_| valid_name("function", &name)) {
        return e.into_response();
    }
    let (max, wait) = (
        state.config.max_input_bytes as u64,
        state.config.queue_timeout,
    );
    let held = match bodies::read(body, headers, max, &state.bodies, wait).await {
        Ok(held) => held,
        Err(e) => return e.into_response(),
    };
    let options = CallOptions {
        permit: Some(held.permit),
        ..CallOptions::default()
    };
    let request = if global {
        CallRequest::global(&ns, &name, held.bytes)
    } else {
        CallRequest::function(&ns, &name, held.bytes)
    };
    let invocation = invoker::invoke(state, request.with(options)).await;
    let mut response = match invocation.result {
        Ok(output) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bodies::response_body(output, invocation.held),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    // Only a request that became a call has an id (and a record and logs to look up).
    if let Some(Ok(value)) = invocation.id.as_deref().map(HeaderValue::from_str) {
        response.headers_mut().insert(INVOCATION_ID_HEADER, value);
    }
    response
}

#[derive(Deserialize)]
pub struct ListQuery {
    function: Option<String>,
    limit: Option<u64>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<InvocationRecord>>> {
    require_namespace(&state, &ns).await?;
    let limit = super::list_limit(query.limit, 100, &faasbox_core::bounds::LIST_LIMIT)?;
    let records = state
        .store
        .list_invocations(&ns, query.function.as_deref(), limit)
        .await?;
    Ok(Json(records::all(records)))
}

async fn find(state: &Arc<AppState>, ns: Option<&str>, id: String) -> ApiResult<InvocationRecord> {
    let shown = id.clone();
    let record = state.store.invocation(&id).await?;
    match record {
        Some(r) if ns.is_none_or(|ns| ns == r.namespace) => Ok(r.into()),
        _ => Err(ApiError::not_found(format!(
            "invocation '{shown}' does not exist"
        ))),
    }
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<InvocationRecord>> {
    Ok(Json(find(&state, None, id).await?))
}

pub async fn get_in_namespace(
    State(state): State<Arc<AppState>>,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<InvocationRecord>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(find(&state, Some(&ns), id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvocationLogs)]
pub struct LogsView {
    pub invocation: String,
    pub logs: Vec<LogLine>,
}

async fn logs_of(state: &Arc<AppState>, ns: Option<&str>, id: String) -> ApiResult<Json<LogsView>> {
    let record = find(state, ns, id).await?;
    let invocation = record.id.clone();
    let logs = state.store.logs(&record.id).await?;
    Ok(Json(LogsView { invocation, logs }))
}

pub async fn logs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<LogsView>> {
    logs_of(&state, None, id).await
}

pub async fn logs_in_namespace(
    State(state): State<Arc<AppState>>,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<LogsView>> {
    require_namespace(&state, &ns).await?;
    logs_of(&state, Some(&ns), id).await
}
