//! Registry credentials: `/api/v1/namespaces/{ns}/registries`, the global ones under
//! `/api/v1/registries` (`scope`: `global` or `global-private`), and Direktiv's
//! `POST /api/functions/registries/namespaces/{ns}`. Passwords go in only: lists show the URL,
//! host, username and times.

mod body;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use faasbox_secrets::{RegistryInfo, RegistryScope};
use serde::{Deserialize, Serialize};

pub use self::body::RegistryBody;
use super::json_body::JsonBody;
use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::state::AppState;

/// A registry as listed: never its password.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegistryView {
    /// `namespace`, `global` or `global-private`.
    pub scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub url: String,
    pub host: String,
    pub username: String,
    pub created: String,
    pub updated: String,
}

impl From<RegistryInfo> for RegistryView {
    fn from(info: RegistryInfo) -> Self {
        let (scope, namespace) = match info.scope {
            RegistryScope::Namespace(ns) => ("namespace", Some(ns)),
            RegistryScope::Global => ("global", None),
            RegistryScope::GlobalPrivate => ("global-private", None),
        };
        RegistryView {
            scope,
            namespace,
            url: info.url,
            host: info.host,
            username: info.username,
            created: info.created,
            updated: info.updated,
        }
    }
}

#[derive(Deserialize)]
pub struct RegistryQuery {
    url: Option<String>,
    scope: Option<String>,
}

/// `global` or `global-private`.
fn global_scope(scope: Option<&str>) -> ApiResult<RegistryScope> {
    match scope.unwrap_or("global") {
        "global" => Ok(RegistryScope::Global),
        "global-private" => Ok(RegistryScope::GlobalPrivate),
        other => Err(ApiError::bad_request(format!(
            "scope '{}' is invalid: use global or global-private",
            other.escape_debug()
        ))),
    }
}

async fn store(
    state: &Arc<AppState>,
    scope: RegistryScope,
    body: RegistryBody,
) -> ApiResult<(StatusCode, Json<RegistryView>)> {
    let registry = body.into_registry()?;
    let info = state
        .vault
        .put_registry(scope, &registry.url, &registry.username, &registry.password)
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

async fn list_scope(state: &Arc<AppState>, scope: RegistryScope) -> ApiResult<Vec<RegistryView>> {
    let list = state.vault.list_registries(&scope).await?;
    Ok(list.into_iter().map(RegistryView::from).collect())
}

async fn remove(
    state: &Arc<AppState>,
    scope: RegistryScope,
    url: Option<String>,
) -> ApiResult<StatusCode> {
    let url = url.ok_or_else(|| ApiError::bad_request("give the registry as ?url=URL"))?;
    let deleted = state.vault.delete_registry(&scope, &url).await?;
    let shown = url;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no registry '{}' is stored there",
            shown.escape_debug()
        )))
    }
}

/// Also serves Direktiv's `POST /api/functions/registries/namespaces/{ns}`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    body: Result<JsonBody<RegistryBody>, ApiError>,
) -> ApiResult<(StatusCode, Json<RegistryView>)> {
    require_namespace(&state, &ns).await?;
    let JsonBody(body) = body?;
    if body.scope.as_deref().is_some_and(|s| s != "namespace") {
        return Err(ApiError::bad_request(
            "a namespace's registries have scope namespace; add global ones under /api/v1/registries",
        ));
    }
    store(&state, RegistryScope::Namespace(ns), body).await
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<RegistryView>>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(
        list_scope(&state, RegistryScope::Namespace(ns)).await?,
    ))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    Query(query): Query<RegistryQuery>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    remove(&state, RegistryScope::Namespace(ns), query.url).await
}

pub async fn create_global(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<RegistryBody>,
) -> ApiResult<(StatusCode, Json<RegistryView>)> {
    let scope = global_scope(body.scope.as_deref())?;
    store(&state, scope, body).await
}

/// Both global scopes, or the one `?scope=` names.
pub async fn list_global(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RegistryQuery>,
) -> ApiResult<Json<Vec<RegistryView>>> {
    let mut views = Vec::new();
    let scopes = match query.scope.as_deref() {
        None => vec![RegistryScope::Global, RegistryScope::GlobalPrivate],
        Some(scope) => vec![global_scope(Some(scope))?],
    };
    for scope in scopes {
        views.extend(list_scope(&state, scope).await?);
    }
    Ok(Json(views))
}

pub async fn delete_global(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RegistryQuery>,
) -> ApiResult<StatusCode> {
    let scope = global_scope(query.scope.as_deref())?;
    remove(&state, scope, query.url).await
}
