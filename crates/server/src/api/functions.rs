//! `/api/v1/namespaces/{ns}/functions`: deploy (PUT), show, list, delete.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{require_namespace, valid_name};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::FunctionSpec;
use crate::pool::PoolStats;
use crate::state::AppState;

/// A function as the API shows it.
#[derive(Serialize)]
pub struct FunctionView {
    pub namespace: String,
    pub name: String,
    pub spec: FunctionSpec,
    pub created: String,
    pub updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<PoolStats>,
}

fn view(state: &AppState, record: faasbox_store::FunctionRecord) -> ApiResult<FunctionView> {
    let spec: FunctionSpec = serde_json::from_str(&record.spec).map_err(|e| {
        ApiError::internal(format!(
            "stored spec of {}/{} is unreadable: {e}",
            record.namespace, record.name
        ))
    })?;
    let instances = state
        .deployed(&record.namespace, &record.name)
        .map(|d| d.pool.stats());
    Ok(FunctionView {
        namespace: record.namespace,
        name: record.name,
        spec,
        created: record.created,
        updated: record.updated,
        instances,
    })
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    valid_name("function", &name)?;
    require_namespace(&state, &ns).await?;
    let spec: FunctionSpec = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the function spec is not valid: {e}")))?;
    let mut problems = spec.problems();
    let image = spec.image.clone();
    let known = state
        .blocking(move |s| {
            s.images
                .get(&image)
                .map_err(|e| ApiError::internal(e.to_string()))
        })
        .await?;
    if known.is_none() && !spec.image.trim().is_empty() {
        problems.push(format!(
            "image '{}' is not in the local store; import it first with `faasbox image import FILE --name {}` (see `faasbox image ls`)",
            spec.image, spec.image
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::bad_request(format!(
            "function {ns}/{name} was not deployed: {}",
            problems.join("; ")
        )));
    }
    if let Some(template) = &spec.input {
        crate::template::check(template).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                crate::template::BAD_COMMAND,
                format!(
                    "function {ns}/{name} was not deployed: its input template is invalid: {e}"
                ),
            )
        })?;
    }
    let text = serde_json::to_string(&spec).map_err(|e| ApiError::internal(e.to_string()))?;
    let (ns2, name2) = (ns.clone(), name.clone());
    let (record, existed) = state
        .blocking(move |s| {
            let existed = s.store.function(&ns2, &name2)?.is_some();
            Ok((
                s.store
                    .put_function(&ns2, &name2, &text, &clock::now_rfc3339())?,
                existed,
            ))
        })
        .await?;
    state.activate(&ns, &name, spec);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(&state, record)?)))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<FunctionView>> {
    require_namespace(&state, &ns).await?;
    let (ns2, name2) = (ns.clone(), name.clone());
    let record = state
        .blocking(move |s| Ok(s.store.function(&ns2, &name2)?))
        .await?;
    let record = record
        .ok_or_else(|| ApiError::not_found(format!("function {ns}/{name} does not exist")))?;
    Ok(Json(view(&state, record)?))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<FunctionView>>> {
    require_namespace(&state, &ns).await?;
    let records = state
        .blocking(move |s| Ok(s.store.list_functions(&ns)?))
        .await?;
    let views = records
        .into_iter()
        .map(|r| view(&state, r))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(views))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    let (ns2, name2) = (ns.clone(), name.clone());
    let deleted = state
        .blocking(move |s| Ok(s.store.delete_function(&ns2, &name2)?))
        .await?;
    if !deleted {
        return Err(ApiError::not_found(format!(
            "function {ns}/{name} does not exist"
        )));
    }
    state.deactivate(&ns, &name);
    Ok(StatusCode::NO_CONTENT)
}
