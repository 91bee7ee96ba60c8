//! Invoking functions (blocking, bounded by the server's `--blocking-timeout`, or
//! asynchronously) and reading back what calls did: status and logs. The runs routes
//! (`…/runs…`, see `runs.rs`) share the record and logs handlers here.

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
use faasbox_core::runs::Submission;
use faasbox_core::state::AppState;

pub const INVOCATION_ID_HEADER: &str = "faasbox-invocation-id";
/// Where an asynchronous run's result is POSTed when it ends.
pub const CALLBACK_HEADER: &str = "x-callback-url";

/// `?async=true` on an invoke.
#[derive(Deserialize, Default)]
pub struct InvokeQuery {
    #[serde(rename = "async")]
    run_async: Option<String>,
}

/// Whether the caller asks for an asynchronous run (`?async=true` or `Prefer: respond-async`).
fn wants_async(query: &InvokeQuery, headers: &HeaderMap) -> Result<bool, ApiError> {
    let by_query = match query.run_async.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "async={other} is not valid: use async=true or async=false"
            )))
        }
    };
    let by_header = headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        })
    });
    Ok(by_query || by_header)
}

pub async fn invoke(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match wants_async(&query, &headers) {
        Ok(true) => submit(state, ns, name, &headers, body, false).await,
        Ok(false) => call(state, ns, name, &headers, body, false).await,
        Err(e) => e.into_response(),
    }
}

/// `POST /api/v1/namespaces/{ns}/global-functions/{name}/invoke`: a global service called on
/// behalf of `ns` (the call and its logs are `ns`'s).
pub async fn invoke_global(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match wants_async(&query, &headers) {
        Ok(true) => submit(state, ns, name, &headers, body, true).await,
        Ok(false) => call(state, ns, name, &headers, body, true).await,
        Err(e) => e.into_response(),
    }
}

/// The answer of an accepted run: 202 with its id (also in the header) and status.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: String,
}

fn accepted(id: String, status: &str) -> Response {
    let header_value = HeaderValue::from_str(&id).ok();
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            id,
            status: status.to_string(),
        }),
    )
        .into_response();
    if let Some(value) = header_value {
        response.headers_mut().insert(INVOCATION_ID_HEADER, value);
    }
    response
}

/// How a blocking call bounded in time ended for its answer.
pub(crate) enum Bounded {
    /// It ended within the bound.
    Ended(invoker::Invocation),
    /// It outlasted the bound: its run's id (the call goes on without the request).
    Running(String),
}

/// Makes `request` (whose `on_recorded` this sets) in a task of its own and waits at most
/// `bound` for it: past the bound, the run's id once it is recorded. A call refused before it
/// was recorded has no id: its answer is there, or nearly, and is waited for.
pub(crate) async fn call_within(
    state: Arc<AppState>,
    mut request: CallRequest,
    bound: std::time::Duration,
) -> Result<Bounded, faasbox_core::failure::Failure> {
    let (recorded, id) = tokio::sync::oneshot::channel::<String>();
    request.options.on_recorded = Some(Box::new(move |id| {
        Box::pin(async move {
            let _ = recorded.send(id);
        })
    }));
    // The call runs in its own task already (`invoker::spawn`): this only waits for it.
    let task = invoker::spawn(state, request);
    tokio::pin!(task);
    let ended = tokio::select! {
        done = &mut task => done,
        _ = tokio::time::sleep(bound) => match id.await {
            Ok(id) => return Ok(Bounded::Running(id)),
            Err(_) => task.await,
        },
    };
    Ok(Bounded::Ended(ended))
}

/// Stores an asynchronous run (with its input) and answers 202 with its id.
async fn submit(
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
    let callback_url = match headers.get(CALLBACK_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(url)) => Some(url.trim().to_string()),
        Some(Err(_)) => {
            return ApiError::bad_request("the X-Callback-Url header is not text").into_response()
        }
    };
    let (max, wait) = (
        state.config.max_input_bytes as u64,
        state.config.queue_timeout,
    );
    let held = match bodies::read(body, headers, max, &state.bodies, wait).await {
        Ok(held) => held,
        Err(e) => return e.into_response(),
    };
    let submission = Submission {
        namespace: ns,
        function: name,
        input: held.bytes,
        callback_url,
        global,
        ..Submission::default()
    };
    match faasbox_core::runs::submit(&state, submission).await {
        Ok(submitted) => accepted(submitted.id, &submitted.status),
        Err(e) => ApiError::from(e).into_response(),
    }
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
    let bound = state.config.blocking_timeout;
    let invocation = match call_within(state, request.with(options), bound).await {
        Ok(Bounded::Ended(invocation)) => invocation,
        Ok(Bounded::Running(id)) => return accepted(id, "running"),
        Err(e) => return ApiError::from(e).into_response(),
    };
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
    status: Option<String>,
    since: Option<String>,
    limit: Option<u64>,
    /// The next page: runs older than this run (the previous page's `Faasbox-Next`).
    before: Option<String>,
}

/// `GET …/runs` (and its alias `…/invocations`): the namespace's runs, newest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    require_namespace(&state, &ns).await?;
    let limit = super::list_limit(query.limit, 100, &faasbox_core::bounds::LIST_LIMIT)?;
    let since = match query.since.as_deref() {
        Some(since) => Some(faasbox_core::runs::since(since)?),
        None => None,
    };
    if let Some(status) = query.status.as_deref() {
        faasbox_core::runs::check_status(status)?;
    }
    if let Some(before) = &query.before {
        state.runs.records.settle().await;
        let known = state.store.invocation(before).await?;
        if known.is_none_or(|r| r.namespace != ns) {
            return Err(super::paging::unknown_before("a run", &ns, before));
        }
    }
    let filter = faasbox_store::RunFilter {
        namespace: ns,
        function: query.function,
        status: query.status,
        since,
        before: query.before,
        limit,
    };
    // The blocking calls' records the writer holds are written first (see `run_writer`).
    state.runs.records.settle().await;
    let records: Vec<InvocationRecord> = records::all(state.store.list_runs(&filter).await?);
    Ok(super::paging::page(records, limit as usize, |r| {
        r.id.clone()
    }))
}

async fn find(state: &Arc<AppState>, ns: Option<&str>, id: String) -> ApiResult<InvocationRecord> {
    let shown = id.clone();
    state.runs.records.settle().await;
    let record = state.store.invocation(&id).await?;
    match record {
        Some(r) if ns.is_none_or(|ns| ns == r.namespace) => Ok(r.into()),
        _ => Err(ApiError::not_found(format!("run '{shown}' does not exist"))),
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

/// A run's log lines after the first `after`, and where to go on from.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvocationLogs)]
pub struct LogsView {
    /// The run's id.
    pub run: String,
    /// The same id (the name of earlier answers).
    pub invocation: String,
    pub logs: Vec<LogLine>,
    /// How many lines there are so far: pass it as `after` to get only newer ones.
    pub next: usize,
    /// The run has ended: no more lines come.
    pub done: bool,
}

#[derive(Deserialize)]
pub struct LogsQuery {
    after: Option<usize>,
}

async fn logs_of(
    state: &Arc<AppState>,
    ns: Option<&str>,
    id: String,
    after: Option<usize>,
) -> ApiResult<Json<LogsView>> {
    let record = find(state, ns, id).await?;
    // Whether it ended is read before the lines: an ended run's lines are all stored.
    let done = !matches!(record.status.as_str(), "queued" | "running");
    let mut logs = state.store.logs(&record.id).await?;
    let next = logs.len();
    let after = after.unwrap_or(0).min(next);
    logs.drain(..after);
    Ok(Json(LogsView {
        run: record.id.clone(),
        invocation: record.id,
        logs,
        next,
        done,
    }))
}

pub async fn logs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Json<LogsView>> {
    logs_of(&state, None, id, query.after).await
}

pub async fn logs_in_namespace(
    State(state): State<Arc<AppState>>,
    Path((ns, id)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Json<LogsView>> {
    require_namespace(&state, &ns).await?;
    logs_of(&state, Some(&ns), id, query.after).await
}

/// `POST …/runs/{id}/cancel`: a queued run is cancelled at once, a running one gets its
/// cancel; 409 `faasbox.run.ended` for an ended one.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<InvocationRecord>> {
    let record = faasbox_core::runs::cancel::cancel(&state, None, &id).await?;
    Ok(Json(record.into()))
}

pub async fn cancel_in_namespace(
    State(state): State<Arc<AppState>>,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<InvocationRecord>> {
    require_namespace(&state, &ns).await?;
    let record = faasbox_core::runs::cancel::cancel(&state, Some(&ns), &id).await?;
    Ok(Json(record.into()))
}
