//! `/api/v1/namespaces/{ns}/flows/{path}`: deploy (PUT, the YAML as body), show, list,
//! delete, run (POST `…/{path}/run[?wait=true]`), validate without deploying (POST
//! `…/{path}/validate`, the YAML as body), the graph (`GET …/{path}?graph=true`); and `/api/v1/namespaces/{ns}/instances`:
//! list, show, logs, cancel.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use faasbox_flow::engine::Outcome;
use faasbox_store::{FlowInstanceRecord, FlowRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::records::{self, InstanceCallRecord, InstanceLogRecord};
use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::failure::FailureKind;
use faasbox_core::flows::{deployment, runner};
use faasbox_core::state::AppState;

pub const INSTANCE_ID_HEADER: &str = "faasbox-instance-id";
/// How long `?wait=true` waits for an instance that waits for events; then it answers 202
/// with the instance id.
const RUN_WAIT_BOUND: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Direktiv's headers of a failed instance's `?wait=true` answer (left out when the text is
/// not a valid header value).
pub const ERROR_CODE_HEADER: &str = "direktiv-instance-error-code";
pub const ERROR_MESSAGE_HEADER: &str = "direktiv-instance-error-message";
/// The error code of a flow refused at deploy.
pub const FLOW_INVALID: &str = runner::FLOW_INVALID;

#[derive(Serialize, utoipa::ToSchema)]
pub struct FlowView {
    pub namespace: String,
    pub path: String,
    pub created: String,
    pub updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What a deploy accepted but reports (states no transition reaches), with line and
    /// column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<faasbox_flow::Problem>,
    /// With `?graph=true`: its states and the edges between them, for drawing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub graph: Option<faasbox_flow::graph::Graph>,
}

fn view(record: FlowRecord, with_source: bool) -> FlowView {
    FlowView {
        namespace: record.namespace,
        path: record.path,
        created: record.created,
        updated: record.updated,
        source: with_source.then_some(record.source),
        warnings: Vec::new(),
        graph: None,
    }
}

/// A flow path as given, written from the namespace's root (`/a/b.yaml`, `%2Fa%2Fb.yaml`, as
/// Direktiv accepts it) or not (`a/b.yaml`): without the leading slashes.
fn from_root(path: String) -> String {
    match path.strip_prefix('/') {
        Some(rest) => rest.trim_start_matches('/').to_string(),
        None => path,
    }
}

fn check_path(path: &str) -> Result<(), ApiError> {
    Ok(deployment::check_path(path)?)
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, path)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match deploy(state, ns, from_root(path), body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn deploy(
    state: Arc<AppState>,
    ns: String,
    path: String,
    body: Bytes,
) -> ApiResult<Response> {
    check_path(&path)?;
    require_namespace(&state, &ns).await?;
    let source = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the flow is not UTF-8 text"))?;
    let deployed = match deployment::deploy(&state, &ns, &path, source).await {
        Ok(deployed) => deployed,
        Err(deployment::DeployError::Invalid(problems)) => {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let body = json!({
                "error": {
                    "code": FLOW_INVALID,
                    "message": format!("flow {ns}/{path} was not deployed: {} problem(s): {}", problems.len(), listed.join("; ")),
                    "problems": problems,
                }
            });
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
        Err(deployment::DeployError::Refused(failure)) => return Err(failure.into()),
    };
    let status = if deployed.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut shown = view(deployed.record, false);
    shown.warnings = deployed.warnings;
    Ok((status, Json(shown)).into_response())
}

async fn stored(state: &Arc<AppState>, ns: &str, path: &str) -> ApiResult<FlowRecord> {
    check_path(path)?;
    require_namespace(state, ns).await?;
    state
        .store
        .flow(ns, path)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("flow {ns}/{path} does not exist; deploy it with `faasbox flow deploy {ns}/{path} FILE`")))
}

#[derive(Deserialize)]
pub struct GetQuery {
    #[serde(default)]
    graph: bool,
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, path)): Path<(String, String)>,
    Query(query): Query<GetQuery>,
) -> ApiResult<Json<FlowView>> {
    let path = from_root(path);
    let record = stored(&state, &ns, &path).await?;
    let graph = if query.graph {
        // A stored flow loads (it was checked at deploy); one that no longer does has no graph.
        faasbox_core::flows::load(&record.source)
            .await
            .ok()
            .map(|flow| faasbox_flow::graph::of(&flow))
    } else {
        None
    };
    let mut shown = view(record, true);
    shown.graph = graph;
    Ok(Json(shown))
}

/// The answer of `POST …/flows/{path}/validate`.
#[derive(Serialize)]
pub struct ValidationView {
    /// Whether a deploy would take it.
    pub valid: bool,
    /// What a deploy would refuse, with line and column (empty when valid).
    pub problems: Vec<faasbox_flow::Problem>,
    /// What a deploy would take but report.
    pub warnings: Vec<faasbox_flow::Problem>,
    /// The flow's graph when it is valid, else null.
    pub graph: Option<faasbox_flow::graph::Graph>,
}

/// Checks `body` as flow `ns/path` exactly as a deploy does, and stores nothing.
async fn validate(
    state: Arc<AppState>,
    ns: String,
    path: String,
    body: Body,
) -> ApiResult<Json<ValidationView>> {
    check_path(&path)?;
    require_namespace(&state, &ns).await?;
    let max = state.config.max_input_bytes;
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::bad_request(format!(
            "the flow is larger than the server's max_input_bytes ({max} bytes), or its body could not be read; send a smaller flow"
        ))
    })?;
    let source = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the flow is not UTF-8 text"))?;
    Ok(Json(match deployment::check(&source).await {
        Ok(checked) => ValidationView {
            valid: true,
            problems: Vec::new(),
            warnings: checked.warnings,
            graph: Some(faasbox_flow::graph::of(&checked.flow)),
        },
        Err(problems) => ValidationView {
            valid: false,
            problems,
            warnings: Vec::new(),
            graph: None,
        },
    }))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<FlowView>>> {
    require_namespace(&state, &ns).await?;
    let records = state.store.list_flows(&ns).await?;
    Ok(Json(records.into_iter().map(|r| view(r, false)).collect()))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, path)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let path = from_root(path);
    stored(&state, &ns, &path).await?;
    deployment::remove(&state, &ns, &path).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    wait: bool,
}

/// `POST …/flows/{path}` must end in `/run` (run the flow) or `/validate` (check a YAML body
/// as a deploy would, storing nothing).
pub async fn post(
    State(state): State<Arc<AppState>>,
    Path((ns, path)): Path<(String, String)>,
    Query(query): Query<RunQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = from_root(path);
    if let Some(flow) = path.strip_suffix("/validate") {
        return match validate(state, ns, flow.to_string(), body).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
    }
    let Some(flow) = path.strip_suffix("/run") else {
        return ApiError::not_found(format!(
            "to run flow {ns}/{path}, POST to /api/v1/namespaces/{ns}/flows/{path}/run (or check it without deploying: POST its YAML to …/flows/{path}/validate)"
        ))
        .into_response();
    };
    let declared_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    // The input is held (within the body budget) until the instance has stored it.
    let (max, wait) = (
        state.config.max_input_bytes as u64,
        state.config.queue_timeout,
    );
    let held = match super::held_body::read(body, &headers, max, &state.bodies, wait).await {
        Ok(held) => held,
        Err(e) => return e.into_response(),
    };
    match run(state, ns, flow.to_string(), query.wait, held, declared_json).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A run's input, as Direktiv reads it: no body is `{}`; a body that is not JSON is kept as
/// base64 text (the instance sees it at `.input`), unless it was sent as JSON, which gets a
/// 400 naming the mistake.
fn run_input(body: &[u8], declared_json: bool) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice(body) {
        Ok(input) => Ok(input),
        Err(e) if declared_json => Err(ApiError::bad_request(format!(
            "the input is not JSON: {e} (a body sent without Content-Type: application/json \
             that is not JSON is passed to the flow as base64 at .input)"
        ))),
        Err(_) => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(body),
        )),
    }
}

async fn run(
    state: Arc<AppState>,
    ns: String,
    path: String,
    wait: bool,
    held: super::held_body::HeldBody,
    declared_json: bool,
) -> ApiResult<Response> {
    // The flow is read once, as the instance is made; the namespace only when it is missing.
    check_path(&path)?;
    super::valid_name("namespace", &ns)?;
    let input = match run_input(&held.bytes, declared_json) {
        Ok(input) => input,
        Err(e) => {
            // A flow that does not exist is named first.
            stored(&state, &ns, &path).await?;
            return Err(e);
        }
    };
    let started = runner::start(&state, &ns, &path, input, runner::StartedBy::Api).await;
    let (id, handle) = match started {
        Ok(started) => started,
        Err(e) if e.kind == FailureKind::NotFound => {
            // A missing namespace is named as such.
            require_namespace(&state, &ns).await?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    drop(held);
    let mut response = if !wait {
        (
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": "running"})),
        )
            .into_response()
    } else {
        let ended = match handle.await {
            Ok(Outcome::Completed(output)) => Ok(Some(Ok(output))),
            Ok(Outcome::Failed(e)) => Ok(Some(Err(e))),
            // As in Direktiv, waiting for events is part of the run being waited for.
            Ok(Outcome::Waiting(_)) => {
                Ok(runner::wait_until_ended(&state, &id, RUN_WAIT_BOUND).await)
            }
            Err(e) => Err(ApiError::from(e)),
        };
        match ended {
            Ok(Some(Ok(output))) => (StatusCode::OK, Json(output)).into_response(),
            Ok(Some(Err(e))) => {
                // The instance's own message, as Direktiv answers it; the instance id is in
                // `instance` (and the header below).
                let body = json!({"error": {"code": e.code, "message": e.message, "instance": id}});
                let mut r = (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
                for (name, value) in [
                    (ERROR_CODE_HEADER, &e.code),
                    (ERROR_MESSAGE_HEADER, &e.message),
                ] {
                    if let Ok(value) = HeaderValue::from_str(value) {
                        r.headers_mut().insert(name, value);
                    }
                }
                r
            }
            Ok(None) => (
                StatusCode::ACCEPTED,
                Json(json!({"id": id, "status": "waiting"})),
            )
                .into_response(),
            Err(e) => e.into_response(),
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(INSTANCE_ID_HEADER, value);
    }
    Ok(response)
}

/// An instance as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub namespace: String,
    pub flow: String,
    pub status: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// What a state's `metadata` last set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    pub created: String,
    pub updated: String,
    /// The states the instance finished, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub states: Option<Vec<String>>,
    /// What its actions called, in order: function invocations (`faasbox logs ID`) and
    /// subflow instances, each with the state that made the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<Vec<InstanceCallRecord>>,
    /// Each state it ran, in order: when, with its input and output (or error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<StepView>>,
}

/// One state an instance ran.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub step: u64,
    pub state: String,
    pub started: String,
    /// `null` while it runs or waits.
    pub finished: Option<String>,
    /// Secret values masked; `null` past 64 KiB (then `truncated`).
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// `{"code", "message"}` when it failed.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub truncated: bool,
}

fn step_view(r: faasbox_store::StepRecord) -> StepView {
    let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    StepView {
        step: r.step,
        state: r.state,
        started: r.started,
        finished: r.finished,
        input: parse(r.input),
        output: parse(r.output),
        error: r
            .error_code
            .map(|code| json!({"code": code, "message": r.error_message.unwrap_or_default()})),
        truncated: r.truncated,
    }
}

fn instance_view(r: FlowInstanceRecord, states: Option<Vec<String>>) -> InstanceView {
    let parse = |t: &str| serde_json::from_str(t).unwrap_or(Value::Null);
    InstanceView {
        input: parse(&r.input),
        output: r.output.as_deref().map(parse),
        metadata: r.metadata.as_deref().map(parse),
        error: r
            .error_code
            .map(|code| json!({"code": code, "message": r.error_message.unwrap_or_default()})),
        id: r.id,
        namespace: r.namespace,
        flow: r.flow,
        status: r.status,
        parent: r.parent,
        created: r.created,
        updated: r.updated,
        states,
        calls: None,
        timeline: None,
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u64>,
    /// Only this flow's instances.
    flow: Option<String>,
    /// Only instances with this status.
    status: Option<String>,
    /// The next page: instances older than this one.
    before: Option<String>,
}

/// Every status an instance can have.
const INSTANCE_STATUSES: [&str; 5] = ["running", "waiting", "complete", "failed", "cancelled"];

pub async fn instances(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    require_namespace(&state, &ns).await?;
    let limit: u32 = super::list_limit(q.limit, 100, &faasbox_core::bounds::LIST_LIMIT)?;
    if let Some(status) = q.status.as_deref() {
        if !INSTANCE_STATUSES.contains(&status) {
            return Err(ApiError::bad_request(format!(
                "status '{status}' is not an instance status: use one of {}",
                INSTANCE_STATUSES.join(", ")
            )));
        }
    }
    if let Some(before) = &q.before {
        let known = state.store.instance(before).await?;
        if known.is_none_or(|r| r.namespace != ns) {
            return Err(super::paging::unknown_before("an instance", &ns, before));
        }
    }
    let filter = faasbox_store::InstanceFilter {
        namespace: ns,
        flow: q.flow.map(from_root),
        status: q.status,
        before: q.before,
        limit,
    };
    let views: Vec<InstanceView> = state
        .store
        .list_instances_by(&filter)
        .await?
        .into_iter()
        .map(|r| instance_view(r, None))
        .collect();
    Ok(super::paging::page(views, limit as usize, |v| v.id.clone()))
}

async fn instance_record(
    state: &Arc<AppState>,
    ns: &str,
    id: &str,
) -> ApiResult<FlowInstanceRecord> {
    require_namespace(state, ns).await?;
    let record = state.store.instance(id).await?;
    record
        .filter(|r| r.namespace == ns)
        .ok_or_else(|| ApiError::not_found(format!("instance {id} does not exist in namespace {ns}; list them with `faasbox flow instances {ns}`")))
}

pub async fn instance(
    State(state): State<Arc<AppState>>,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    let record = instance_record(&state, &ns, &id).await?;
    let states = state.store.finished_states(&id).await?;
    // Its calls' records may still be with the record writer (written just after each call's
    // answer, grouped over 2 ms).
    state.runs.records.settle().await;
    let calls = state.store.instance_calls(&id).await?;
    let mut view = instance_view(record, Some(states.into_iter().map(|(_, s)| s).collect()));
    view.calls = Some(records::all(calls));
    let steps = state.store.instance_steps(&id).await?;
    view.timeline = Some(steps.into_iter().map(step_view).collect());
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct LogsQuery {
    /// Only lines after this sequence number (0: all).
    #[serde(default)]
    after: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InstanceLogs)]
pub struct LogsView {
    pub status: String,
    pub logs: Vec<InstanceLogRecord>,
}

pub async fn logs(
    State(state): State<Arc<AppState>>,
    Path((ns, id)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Json<LogsView>> {
    let record = instance_record(&state, &ns, &id).await?;
    let logs = state
        .store
        .instance_logs(&id, i64::try_from(q.after).unwrap_or(i64::MAX))
        .await?;
    Ok(Json(LogsView {
        status: record.status,
        logs: records::all(logs),
    }))
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let record = instance_record(&state, &ns, &id).await?;
    if !runner::cancel_instance(&state, &id).await? {
        return Err(ApiError::conflict(format!("instance {id} has ended already ({}); only running or waiting instances can be cancelled", record.status)));
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        Json(json!({"id": id, "status": "cancelling"})),
    )
        .into_response())
}

/// The namespace of instance `id`, for the routes that name an instance by id alone.
async fn namespace_of(state: &Arc<AppState>, id: &str) -> ApiResult<String> {
    let record = state.store.instance(id).await?;
    record.map(|r| r.namespace).ok_or_else(|| {
        ApiError::not_found(format!(
            "instance {id} does not exist; list them with `faasbox flow instances NAMESPACE`"
        ))
    })
}

pub async fn instance_by_id(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<InstanceView>> {
    let ns = namespace_of(&state, &id).await?;
    instance(State(state), Path((ns, id))).await
}

pub async fn logs_by_id(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Query<LogsQuery>,
) -> ApiResult<Json<LogsView>> {
    let ns = namespace_of(&state, &id).await?;
    logs(State(state), Path((ns, id)), query).await
}

pub async fn cancel_by_id(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let ns = namespace_of(&state, &id).await?;
    cancel(State(state), Path((ns, id))).await
}
