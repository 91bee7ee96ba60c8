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
use faasbox_core::failure::Failure;
use faasbox_core::follow::{self, Kind};
use faasbox_core::routes::manage::{self, RouteBody, RoutePatch, RouteView, Routes, ServerBounds};
use faasbox_core::state::AppState;
use futures_util::future::BoxFuture;

/// Runs `change` on what `manage` works on, of this server (the gateway's table is reloaded
/// after every change), to its end even if the client goes away.
async fn managed<T, F>(state: &Arc<AppState>, change: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: for<'a> FnOnce(Routes<'a>) -> BoxFuture<'a, Result<T, Failure>> + Send + 'static,
{
    state
        .to_completion(move |s| async move {
            // The other servers reload theirs too.
            let reload = || -> BoxFuture<'_, Result<(), Failure>> {
                Box::pin(async {
                    follow::publish(&*s.store, Kind::Route, "").await;
                    s.routes.reload(&*s.store).await
                })
            };
            change(Routes {
                store: &*s.store,
                reload: &reload,
                bounds: ServerBounds::of(&s.config),
            })
            .await
        })
        .await
}

/// `put` of `manage`, to its end even if the client goes away (the store and the gateway's
/// table change together).
pub(crate) async fn put_route(
    state: &Arc<AppState>,
    ns: &str,
    name: &str,
    body: RouteBody,
) -> Result<(RouteView, bool), Failure> {
    let (ns, name) = (ns.to_string(), name.to_string());
    managed(state, move |r| {
        Box::pin(async move { manage::put(&r, &ns, &name, body).await })
    })
    .await
}

/// `patch` of `manage`, to its end.
pub(crate) async fn patch_route(
    state: &Arc<AppState>,
    ns: &str,
    name: &str,
    change: RoutePatch,
) -> Result<RouteView, Failure> {
    let (ns, name) = (ns.to_string(), name.to_string());
    managed(state, move |r| {
        Box::pin(async move { manage::patch(&r, &ns, &name, change).await })
    })
    .await
}

/// `delete` of `manage`, to its end.
pub(crate) async fn delete_route(
    state: &Arc<AppState>,
    ns: &str,
    name: &str,
) -> Result<(), Failure> {
    let (ns, name) = (ns.to_string(), name.to_string());
    managed(state, move |r| {
        Box::pin(async move { manage::delete(&r, &ns, &name).await })
    })
    .await
}

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
    let (view, existed) = put_route(&state, &ns, &name, body).await?;
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
    Ok(Json(patch_route(&state, &ns, &name, change).await?))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<RouteView>>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(manage::list(&*state.store, &ns).await?))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<RouteView>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(manage::get(&*state.store, &ns, &name).await?))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    delete_route(&state, &ns, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
