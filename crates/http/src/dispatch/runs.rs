//! `POST /v1/runs?functionName=NAME`: Dispatch's run of a function, blocking. The call is an
//! ordinary faasbox call (the invoker: the function's scale, timeout, secrets, logs and
//! invocation record); the answer is Dispatch's `Run`: 200 when the function returned, 422
//! (`InputError`) or 502 (`FunctionError`) as Dispatch's swagger declares, with the run in the
//! error body so its record (`name` = the invocation id) is found.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::models::{self, InvocationError, Logs, Run, RunRequest};
use super::{require_org, DispatchError, DispatchResult, Org};
use crate::held_body;
use faasbox_core::invoker::{self, CallOptions, CallRequest};
use faasbox_core::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunQuery {
    function_name: Option<String>,
}

pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    org: Org,
    Query(query): Query<RunQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match run_blocking(state, org, query, headers, body).await {
        Ok(run) => (StatusCode::OK, Json(run)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run_blocking(
    state: Arc<AppState>,
    Org(ns): Org,
    query: RunQuery,
    headers: HeaderMap,
    body: Body,
) -> DispatchResult<Run> {
    require_org(&state, &ns).await?;
    let (max, wait) = (
        state.config.max_input_bytes as u64,
        state.config.queue_timeout,
    );
    let held = held_body::read(body, &headers, max, &state.bodies, wait).await?;
    let request: RunRequest = serde_json::from_slice(&held.bytes).map_err(|e| {
        DispatchError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a Dispatch Run (`{{\"blocking\": true, \"input\": …}}`): {e}"),
        )
    })?;
    let function = query
        .function_name
        .or(request.function_name)
        .ok_or_else(|| {
            DispatchError::new(
                StatusCode::BAD_REQUEST,
                "name the function to run: `POST /v1/runs?functionName=NAME`",
            )
        })?;
    faasbox_core::model::check_name("function", &function)
        .map_err(|e| DispatchError::new(StatusCode::BAD_REQUEST, e))?;
    if !request.blocking {
        return Err(DispatchError::new(
            StatusCode::NOT_IMPLEMENTED,
            "faasbox runs Dispatch runs blocking only for now: send `\"blocking\": true` (the \
             answer is the finished run)",
        ));
    }
    if !request.secrets.is_empty() || !request.services.is_empty() {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            "a run cannot name secrets or services of its own in faasbox: name them on the \
             function (`secrets`, `services`), whose every run gets them",
        ));
    }
    let input = request
        .input
        .unwrap_or_else(|| RawValue::from_string("null".to_owned()).expect("null is JSON"));
    let options = CallOptions {
        permit: Some(held.permit),
        ..CallOptions::default()
    };
    let bytes = bytes::Bytes::copy_from_slice(input.get().as_bytes());
    let executed = unix_now();
    let invocation = invoker::invoke(
        state,
        CallRequest::function(&ns, &function, bytes).with(options),
    )
    .await;
    let mut run = Run {
        name: invocation.id.clone().unwrap_or_default(),
        function_name: function,
        function_id: String::new(),
        blocking: true,
        input,
        output: None,
        logs: Logs::of(&invocation.logs),
        error: None,
        status: models::status::READY,
        reason: Vec::new(),
        secrets: Vec::new(),
        services: Vec::new(),
        tags: Vec::new(),
        executed_time: executed,
        finished_time: unix_now(),
    };
    match invocation.result {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output).into_owned();
            run.output = Some(RawValue::from_string(text).map_err(|e| {
                DispatchError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("the function's output is not JSON: {e}"),
                )
            })?);
            Ok(run)
        }
        Err(failure) => {
            // A request refused before it became a call (no such function) has no run.
            let error = InvocationError::of(&failure);
            let status = match error.kind.as_str() {
                models::INPUT_ERROR if invocation.id.is_some() => StatusCode::UNPROCESSABLE_ENTITY,
                models::FUNCTION_ERROR if invocation.id.is_some() => StatusCode::BAD_GATEWAY,
                _ => crate::error::status_of(failure.kind),
            };
            let answer = DispatchError::new(status, failure.message.clone());
            if invocation.id.is_none() {
                return Err(answer);
            }
            run.status = models::status::ERROR;
            run.reason = vec![error.message.clone()];
            run.error = Some(error);
            Err(answer.with_run(run))
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
