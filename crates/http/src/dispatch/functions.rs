//! `/v1/function[/{name}]`: Dispatch's function store, on faasbox's functions built from code
//! (`faasbox_core::code::functions`). A create or update answers at once with the function
//! INITIALIZED; its build runs in the background (poll `GET /v1/function/{name}` for READY or
//! ERROR with the reason).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::models::{Function, FunctionRequest};
use super::{read_json, require_org, DispatchError, DispatchResult, Org};
use faasbox_core::code::functions::{self as code, CodeFunctionBody};
use faasbox_core::model::{CodeSchema, HumanDuration};
use faasbox_core::state::AppState;

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    body: axum::body::Bytes,
) -> DispatchResult<(StatusCode, Json<Function>)> {
    require_org(&state, &ns).await?;
    let request: FunctionRequest = read_json(&body, "Function")?;
    if code::get(&state, &ns, &request.name).await.is_ok() {
        return Err(DispatchError::new(
            StatusCode::CONFLICT,
            format!(
                "function '{}' already exists in {ns}: update it with `PUT /v1/function/{}`",
                request.name, request.name
            ),
        ));
    }
    let name = request.name.clone();
    let view = code::put(&state, &ns, &name, body_of(request)?).await?;
    Ok((StatusCode::CREATED, Json(Function::of(&ns, view))))
}

pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> DispatchResult<Json<Function>> {
    require_org(&state, &ns).await?;
    let request: FunctionRequest = read_json(&body, "Function")?;
    if request.name != name {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body names function '{}' but the path '{name}': a function cannot be renamed",
                request.name
            ),
        ));
    }
    code::get(&state, &ns, &name).await?;
    let view = code::put(&state, &ns, &name, body_of(request)?).await?;
    Ok(Json(Function::of(&ns, view)))
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Function>> {
    require_org(&state, &ns).await?;
    let view = code::get(&state, &ns, &name).await?;
    Ok(Json(Function::of(&ns, view)))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
) -> DispatchResult<Json<Vec<Function>>> {
    require_org(&state, &ns).await?;
    let views = code::list(&state, &ns).await?;
    Ok(Json(
        views.into_iter().map(|v| Function::of(&ns, v)).collect(),
    ))
}

/// Deletes the function (its build, its record, the deployed function) and answers it as it
/// was, as Dispatch does.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Function>> {
    require_org(&state, &ns).await?;
    let view = code::get(&state, &ns, &name).await?;
    crate::functions::delete(State(state), Path((ns.clone(), name))).await?;
    let mut function = Function::of(&ns, view);
    function.status = "DELETED".to_owned();
    Ok(Json(function))
}

/// faasbox's request for a Dispatch function.
fn body_of(request: FunctionRequest) -> DispatchResult<CodeFunctionBody> {
    if !request.tags.is_empty() {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            "faasbox does not keep tags on functions: send the function without `tags`",
        ));
    }
    let Some(source) = request.source.filter(|s| !s.is_empty()) else {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            "`source` is missing: send the function's code as base64 of a tar.gz \
             (`tar czf - -C DIR . | base64 -w0`)",
        ));
    };
    Ok(CodeFunctionBody {
        image: request.image,
        handler: request.handler,
        source,
        schema: request.schema.map(|s| CodeSchema {
            input: s.input,
            output: s.output,
        }),
        secrets: request.secrets,
        services: request.services,
        timeout: request
            .timeout
            .filter(|ms| *ms > 0)
            .map(|ms| HumanDuration(std::time::Duration::from_millis(ms))),
        size: None,
        scale: None,
        envs: Default::default(),
        network: None,
    })
}
