//! Dispatch's runs: `POST /v1/runs?functionName=NAME` runs a function, blocking or not;
//! `GET /v1/runs[?functionName=&since=]` and `GET /v1/runs/{name}` show runs from their
//! records. A blocking run is an ordinary faasbox call (the invoker: the function's scale,
//! timeout, secrets, logs and run record); the answer is Dispatch's `Run`: 200 when the function
//! returned, 422 (`InputError`) or 502 (`FunctionError`) as Dispatch's swagger declares, with
//! the run in the error body so its record (`name` = the run id) is found. A non-blocking run
//! is submitted to the runs (`faasbox_core::runs::submit`: stored before the answer) and
//! answered 202 with the Run, status INITIALIZED. A run's own `secrets` and `services` are
//! passed on to the call.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::models::{self, InvocationError, Logs, Run, RunRequest};
use super::{require_org, DispatchError, DispatchResult, Org};
use crate::held_body;
use crate::records::InvocationRecord as RunRecord;
use faasbox_core::invoker::{self, CallOptions, CallRequest};
use faasbox_core::runs::{self, Submission};
use faasbox_core::state::AppState;
use faasbox_store::RunFilter;

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
    match start(state, org, query, headers, body).await {
        Ok((status, run)) => (status, Json(run)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn start(
    state: Arc<AppState>,
    Org(ns): Org,
    query: RunQuery,
    headers: HeaderMap,
    body: Body,
) -> DispatchResult<(StatusCode, Run)> {
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
        .clone()
        .or(request.function_name.clone())
        .ok_or_else(|| {
            DispatchError::new(
                StatusCode::BAD_REQUEST,
                "name the function to run: `POST /v1/runs?functionName=NAME`",
            )
        })?;
    faasbox_core::model::check_name("function", &function)
        .map_err(|e| DispatchError::new(StatusCode::BAD_REQUEST, e))?;
    if request.blocking {
        return run_blocking(state, ns, function, request, held.permit)
            .await
            .map(|run| (StatusCode::OK, run));
    }
    let input = input_of(request.input);
    let submitted = runs::submit(
        &state,
        Submission {
            namespace: ns,
            function: function.clone(),
            input: bytes::Bytes::copy_from_slice(input.get().as_bytes()),
            secrets: request.secrets.clone(),
            services: request.services.clone(),
            ..Submission::default()
        },
    )
    .await?;
    drop(held.permit);
    let run = Run {
        name: submitted.id,
        function_name: function,
        function_id: String::new(),
        blocking: false,
        input,
        output: None,
        logs: Logs::default(),
        error: None,
        status: models::status::INITIALIZED,
        reason: Vec::new(),
        secrets: request.secrets,
        services: request.services,
        tags: Vec::new(),
        executed_time: 0,
        finished_time: 0,
        event: None,
        http_context: None,
    };
    Ok((StatusCode::ACCEPTED, run))
}

/// The run's input: JSON `null` when it has none.
fn input_of(input: Option<Box<RawValue>>) -> Box<RawValue> {
    input.unwrap_or_else(|| RawValue::from_string("null".to_owned()).expect("null is JSON"))
}

async fn run_blocking(
    state: Arc<AppState>,
    ns: String,
    function: String,
    request: RunRequest,
    permit: faasbox_core::bodies::BodyPermit,
) -> DispatchResult<Run> {
    let input = input_of(request.input);
    let options = CallOptions {
        permit: Some(permit),
        secrets: request.secrets.clone(),
        services: request.services.clone(),
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
        secrets: request.secrets,
        services: request.services,
        tags: Vec::new(),
        executed_time: executed,
        finished_time: unix_now(),
        event: None,
        http_context: None,
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    function_name: Option<String>,
    /// Unix seconds: only runs accepted since.
    since: Option<i64>,
}

/// `GET /v1/runs`: the org's runs, newest first, of one function (`functionName`) and accepted
/// since a time (`since`, Unix seconds) when given; without their logs (`GET /v1/runs/{name}` has them).
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Query(query): Query<ListQuery>,
) -> DispatchResult<Json<Vec<Run>>> {
    require_org(&state, &ns).await?;
    if let Some(function) = &query.function_name {
        faasbox_core::model::check_name("function", function)
            .map_err(|e| DispatchError::new(StatusCode::BAD_REQUEST, e))?;
    }
    let since = match query.since {
        Some(seconds) => Some(
            time::OffsetDateTime::from_unix_timestamp(seconds)
                .map(faasbox_core::clock::format_rfc3339)
                .map_err(|e| {
                    DispatchError::new(
                        StatusCode::BAD_REQUEST,
                        format!("`since` is not a time in Unix seconds: {e}"),
                    )
                })?,
        ),
        None => None,
    };
    state.runs.records.settle().await;
    let records = state
        .store
        .list_runs(&RunFilter {
            namespace: ns,
            function: query.function_name,
            status: None,
            since,
            before: None,
            limit: u32::try_from(faasbox_core::bounds::LIST_LIMIT.max).unwrap_or(u32::MAX),
        })
        .await?;
    Ok(Json(
        records
            .into_iter()
            .map(|record| run_of_record(&RunRecord::from(record), &[]))
            .collect(),
    ))
}

/// `GET /v1/runs/{name}`: one run of the org, with its logs.
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Run>> {
    require_org(&state, &ns).await?;
    state.runs.records.settle().await;
    let record = state.store.invocation(&name).await?;
    let Some(record) = record.filter(|r| r.namespace == ns) else {
        return Err(DispatchError::new(
            StatusCode::NOT_FOUND,
            format!("run '{name}' does not exist in org '{ns}'; list them with `GET /v1/runs`"),
        ));
    };
    let logs = state.store.logs(&name).await?;
    Ok(Json(run_of_record(&RunRecord::from(record), &logs)))
}

/// Dispatch's Run of a run record, read from its JSON (the runs API's shape).
fn run_of_record(record: &impl serde::Serialize, logs: &[faasbox_proto::LogLine]) -> Run {
    let json = serde_json::to_value(record).unwrap_or_default();
    let text = |key: &str| json[key].as_str().unwrap_or_default().to_owned();
    let raw = |value: &Value| serde_json::value::to_raw_value(value).ok();
    let status = text("status");
    let error = match status.as_str() {
        "queued" | "running" | "succeeded" => None,
        _ => Some(error_of(&json)),
    };
    let time = |key: &str| json[key].as_str().map(models::unix_seconds).unwrap_or(0);
    let present = |key: &str| Some(json[key].clone()).filter(|v| !v.is_null());
    let names = |key: &str| {
        json[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Run {
        name: text("id"),
        function_name: text("function"),
        function_id: String::new(),
        blocking: json["mode"].as_str() != Some("async"),
        input: raw(&json["input"]).unwrap_or_else(|| input_of(None)),
        output: present("output").and_then(|v| raw(&v)),
        logs: Logs::of(logs),
        reason: error.iter().map(|e| e.message.clone()).collect(),
        error,
        status: dispatch_status(&status),
        secrets: names("secrets"),
        services: names("services"),
        tags: Vec::new(),
        executed_time: time("started"),
        finished_time: time("ended"),
        event: present("event"),
        http_context: present("http_context"),
    }
}

/// Dispatch's status of a run's: queued → INITIALIZED, running → CREATING, succeeded →
/// READY, any other end → ERROR.
fn dispatch_status(status: &str) -> &'static str {
    match status {
        "queued" => models::status::INITIALIZED,
        "running" => models::status::CREATING,
        "succeeded" => models::status::READY,
        _ => models::status::ERROR,
    }
}

/// The error of an ended run: the record's `error` (type, message, stacktrace), else its
/// `error_message` as a SystemError.
fn error_of(json: &Value) -> InvocationError {
    let error = &json["error"];
    let message = error["message"]
        .as_str()
        .or(json["error_message"].as_str())
        .unwrap_or("the run failed")
        .to_owned();
    InvocationError {
        kind: error["type"]
            .as_str()
            .unwrap_or(models::SYSTEM_ERROR)
            .to_owned(),
        message,
        stacktrace: error["stacktrace"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_run_record_becomes_dispatchs_run() {
        let record = json!({
            "id": "abc", "namespace": "demo", "function": "echo", "mode": "async",
            "status": "failed", "started": "2026-01-01T00:00:10Z", "ended": "2026-01-01T00:00:12Z",
            "input": {"a": 1}, "output": null,
            "error": {"type": "FunctionError", "code": "x", "message": "boom", "stacktrace": ["at f"]},
            "event": {"id": "e1", "type": "t"}, "http_context": null, "secrets": ["s"], "services": []
        });
        let run = run_of_record(&record, &[]);
        assert_eq!(run.name, "abc");
        assert!(!run.blocking);
        assert_eq!(run.status, "ERROR");
        assert_eq!(run.input.get(), r#"{"a":1}"#);
        assert!(run.output.is_none());
        let error = run.error.unwrap();
        assert_eq!(
            (error.kind.as_str(), error.message.as_str()),
            ("FunctionError", "boom")
        );
        assert_eq!(error.stacktrace, ["at f"]);
        assert_eq!(run.event, Some(json!({"id": "e1", "type": "t"})));
        assert_eq!(run.http_context, None);
        assert_eq!(run.finished_time - run.executed_time, 2);
        assert_eq!(run.secrets, ["s"]);
        for (ours, theirs) in [
            ("queued", "INITIALIZED"),
            ("running", "CREATING"),
            ("succeeded", "READY"),
            ("crashed", "ERROR"),
        ] {
            assert_eq!(dispatch_status(ours), theirs);
        }
        // Today's record (no error object): its message, a SystemError.
        let old = json!({"id": "x", "status": "crashed", "error_message": "gone"});
        let error = run_of_record(&old, &[]).error.unwrap();
        assert_eq!(
            (error.kind.as_str(), error.message.as_str()),
            ("SystemError", "gone")
        );
    }
}
