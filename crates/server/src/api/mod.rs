//! The REST API under `/api/v1`: routes, and the handlers grouped by resource.

mod admin;
mod events;
mod flows;
mod function_logs;
mod functions;
pub mod guard;
mod images;
mod invocations;
pub mod json_body;
mod namespaces;
mod pulls;
mod registries;
mod secrets;
mod tokens;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// The OpenAPI document describing every route below.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every route, without the token check: `app::serve` puts `auth::require_token` around the
/// whole router (so routes merged in anywhere are covered).
pub fn router(state: Arc<AppState>) -> Router {
    let max_input = state.config.max_input_bytes;
    let router = Router::new()
        .route(crate::auth::HEALTH_PATH, get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route(crate::metrics::PATH, get(crate::metrics::serve))
        .route(
            "/api/v1/namespaces",
            post(namespaces::create).get(namespaces::list),
        )
        .route(
            "/api/v1/namespaces/{ns}",
            get(namespaces::get).delete(namespaces::delete),
        )
        .route(
            "/api/v1/images/import",
            post(images::import).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/images/pull", post(pulls::pull))
        .route("/api/v1/images/push", post(pulls::push))
        .route("/api/v1/images/prune", post(images::prune))
        .route("/api/v1/images", get(images::list).delete(images::remove))
        .route(
            "/api/v1/namespaces/{ns}/images/import",
            post(images::import_ns).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/namespaces/{ns}/images/pull", post(pulls::pull_ns))
        .route("/api/v1/namespaces/{ns}/images/push", post(pulls::push_ns))
        .route(
            "/api/v1/namespaces/{ns}/images/prune",
            post(images::prune_ns),
        )
        .route(
            "/api/v1/namespaces/{ns}/images",
            get(images::list_ns).delete(images::remove_ns),
        )
        .route("/api/v1/namespaces/{ns}/functions", get(functions::list))
        .route(
            "/api/v1/namespaces/{ns}/functions/{name}",
            get(functions::get)
                .put(functions::put)
                .patch(functions::patch)
                .delete(functions::delete),
        )
        // Invoke bodies are read by `crate::bodies` (bounded by max_input_bytes and the
        // body budget), not by an extractor.
        .route(
            "/api/v1/namespaces/{ns}/functions/{name}/revisions",
            get(functions::revisions),
        )
        .route(
            "/api/v1/namespaces/{ns}/functions/{name}/rollback",
            post(functions::rollback),
        )
        .route(
            "/api/v1/namespaces/{ns}/functions/{name}/logs",
            get(function_logs::logs),
        )
        .route(
            "/api/v1/namespaces/{ns}/functions/{name}/invoke",
            post(invocations::invoke),
        )
        .route(
            "/api/v1/namespaces/{ns}/global-functions/{name}/invoke",
            post(invocations::invoke_global),
        )
        .route("/api/v1/functions", get(functions::list_global))
        .route(
            "/api/v1/functions/{name}",
            get(functions::get_global)
                .put(functions::put_global)
                .patch(functions::patch_global)
                .delete(functions::delete_global),
        )
        .route(
            "/api/v1/functions/{name}/revisions",
            get(functions::revisions_global),
        )
        .route(
            "/api/v1/functions/{name}/rollback",
            post(functions::rollback_global),
        )
        .route(
            "/api/v1/namespaces/{ns}/invocations",
            get(invocations::list),
        )
        .route(
            "/api/v1/namespaces/{ns}/invocations/{id}",
            get(invocations::get_in_namespace),
        )
        .route(
            "/api/v1/namespaces/{ns}/invocations/{id}/logs",
            get(invocations::logs_in_namespace),
        )
        .route(
            "/api/v1/namespaces/{ns}/events",
            post(events::post).get(events::list),
        )
        .route("/api/v1/namespaces/{ns}/secrets", get(secrets::list))
        .route(
            "/api/v1/namespaces/{ns}/secrets/{name}",
            put(secrets::put)
                .delete(secrets::delete)
                .layer(DefaultBodyLimit::max(secrets::MAX_BODY_BYTES)),
        )
        .route(
            "/api/v1/namespaces/{ns}/registries",
            post(registries::create)
                .get(registries::list)
                .delete(registries::delete),
        )
        .route(
            "/api/v1/registries",
            post(registries::create_global)
                .get(registries::list_global)
                .delete(registries::delete_global),
        )
        .route(
            "/api/functions/registries/namespaces/{ns}",
            post(registries::create),
        )
        .route(
            "/api/v1/admin/rotate-master-key",
            post(admin::rotate_master_key),
        )
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/api/v1/tokens/{id}", delete(tokens::delete))
        .route("/api/v1/namespaces/{ns}/flows", get(flows::list))
        .route(
            "/api/v1/namespaces/{ns}/flows/{*path}",
            put(flows::put)
                .get(flows::get)
                .delete(flows::delete)
                .post(flows::post)
                .layer(DefaultBodyLimit::max(max_input)),
        )
        .route("/api/v1/namespaces/{ns}/instances", get(flows::instances))
        .route(
            "/api/v1/namespaces/{ns}/instances/{id}",
            get(flows::instance),
        )
        .route(
            "/api/v1/namespaces/{ns}/instances/{id}/logs",
            get(flows::logs),
        )
        .route(
            "/api/v1/namespaces/{ns}/instances/{id}/cancel",
            post(flows::cancel),
        )
        .route("/api/v1/instances/{id}", get(flows::instance_by_id))
        .route("/api/v1/instances/{id}/logs", get(flows::logs_by_id))
        .route("/api/v1/instances/{id}/cancel", post(flows::cancel_by_id))
        .route("/api/v1/invocations/{id}", get(invocations::get))
        .route("/api/v1/invocations/{id}/logs", get(invocations::logs))
        .fallback(not_found);
    guard::with_test_hook(router).with_state(state)
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn openapi() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API route; see /api/v1/openapi.json for the routes")
}

/// A list's `?limit=`: `default` when absent, else checked against `range` (400 naming it).
fn list_limit<T: TryFrom<u64>>(
    given: Option<u64>,
    default: u64,
    range: &crate::bounds::CountRange,
) -> Result<T, ApiError> {
    let limit = given.unwrap_or(default);
    range.check(limit).map_err(ApiError::bad_request)?;
    T::try_from(limit).map_err(|_| ApiError::bad_request(format!("`{}` is too large", range.field)))
}

/// Checks a name taken from a path or body.
fn valid_name(kind: &str, name: &str) -> Result<(), ApiError> {
    crate::model::check_name(kind, name).map_err(ApiError::bad_request)
}

/// Checks that a namespace exists (404 with the fix otherwise).
async fn require_namespace(state: &Arc<AppState>, ns: &str) -> Result<(), ApiError> {
    valid_name("namespace", ns)?;
    let name = ns.to_string();
    let exists = state
        .blocking(move |s| Ok(s.store.namespace(&name)?.is_some()))
        .await?;
    if exists {
        Ok(())
    } else {
        Err(no_such_namespace(ns))
    }
}

/// The answer for a namespace that does not exist (or that the caller's token cannot see).
pub fn no_such_namespace(ns: &str) -> ApiError {
    ApiError::not_found(format!(
        "namespace '{ns}' does not exist; create it with `faasbox ns create {ns}`"
    ))
}
