//! `/api/v1/namespaces/{ns}/routes`: a namespace's HTTP routes (see
//! `faasbox_core::routes::manage` and `docs/ROUTES.md`): create or replace (PUT), change some
//! fields (PATCH), list, show, delete. Passwords and keys go in only: answers name users and
//! keys, never a credential nor its hash, and nothing here logs a body.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::json_body::{JsonBody, JsonShape};
use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::routes::manage::{self, RouteBody, RoutePatch, RouteView};
use faasbox_core::state::AppState;

/// The largest PUT or PATCH body (100 users with 1 KiB passwords fit).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

impl JsonShape for RouteBody {
    fn problem(detail: &str) -> String {
        format!(
            "the body must be a route {{\"path\": \"/hooks/github\", \"target\": {{\"function\": \
             NAME}} or {{\"flow\": PATH}}, and optional methods, hosts, auth, cors, \
             raw_response, limits, enabled}} (docs/ROUTES.md): {detail}"
        )
    }
}

impl JsonShape for RoutePatch {
    fn problem(detail: &str) -> String {
        format!(
            "the body must be the route's fields to change (path, methods, hosts, target, auth, \
             cors, raw_response, limits, enabled), e.g. {{\"enabled\": false}}: {detail}"
        )
    }
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<JsonBody<RouteBody>, ApiError>,
) -> ApiResult<(StatusCode, Json<RouteView>)> {
    require_namespace(&state, &ns).await?;
    let JsonBody(body) = body?;
    let (view, existed) = manage::put(&state, &ns, &name, body).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)))
}

pub async fn patch(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<JsonBody<RoutePatch>, ApiError>,
) -> ApiResult<Json<RouteView>> {
    require_namespace(&state, &ns).await?;
    let JsonBody(change) = body?;
    Ok(Json(manage::patch(&state, &ns, &name, change).await?))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<RouteView>>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(manage::list(&state, &ns).await?))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<RouteView>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(manage::get(&state, &ns, &name).await?))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    manage::delete(&state, &ns, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
