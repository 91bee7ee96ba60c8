//! `/api/v1/namespaces/{ns}/services`: a namespace's service instances (see
//! `faasbox_core::services`): create or replace (PUT), list, show, delete. Secret parameters go
//! in only: answers name their keys, never their values, and nothing here logs one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::json_body::{JsonBody, JsonShape};
use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::services::{self, ServiceBody, ServiceView};
use faasbox_core::state::AppState;

/// The largest PUT body.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

impl JsonShape for ServiceBody {
    fn problem(detail: &str) -> String {
        format!(
            "the body must be {{\"params\": {{\"key\": \"value\"}}, \"secret_params\": \
             {{\"key\": \"value\"}}}} (both optional, values are strings): {detail}"
        )
    }
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<JsonBody<ServiceBody>, ApiError>,
) -> ApiResult<(StatusCode, Json<ServiceView>)> {
    require_namespace(&state, &ns).await?;
    let JsonBody(body) = body?;
    let (view, existed) = services::put(&state, &ns, &name, body).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(services::list(&state, &ns).await?))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<ServiceView>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(services::get(&state, &ns, &name).await?))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    services::delete(&state, &ns, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
