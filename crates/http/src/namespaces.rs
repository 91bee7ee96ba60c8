//! `/api/v1/namespaces`: create, list, show, delete (with everything of the namespace: its
//! functions, flows, secrets, tokens and images).

use std::sync::Arc;

use super::records::{self, NamespaceRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::auth::Access;
use super::json_body::{JsonBody, JsonShape};
use super::{require_namespace, valid_name};
use crate::error::{ApiError, ApiResult};
use faasbox_core::clock;
use faasbox_core::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespace {
    name: String,
}

impl JsonShape for CreateNamespace {
    fn problem(detail: &str) -> String {
        format!("expected {{\"name\": \"…\"}}: {detail}")
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<CreateNamespace>,
) -> ApiResult<(StatusCode, Json<NamespaceRecord>)> {
    valid_name("namespace", &body.name)?;
    let record = state
        .to_completion(move |s| async move {
            let record = s
                .store
                .create_namespace(&body.name, &clock::now_rfc3339())
                .await?;
            // A new namespace starts without images, whatever one of its name left.
            s.blocking(move |s| Ok(s.images.remove_namespace(&body.name)?))
                .await?;
            Ok(record)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Every namespace for the admin token; a namespace token sees only its own.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Access(caller): Access,
) -> ApiResult<Json<Vec<NamespaceRecord>>> {
    let mut all = state.store.list_namespaces().await?;
    all.retain(|ns| caller.sees_namespace(&ns.name));
    Ok(Json(records::all(all)))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<NamespaceRecord>> {
    require_namespace(&state, &ns).await?;
    let record = state.store.namespace(&ns).await?;
    record
        .map(|r| Json(r.into()))
        .ok_or_else(|| ApiError::not_found("namespace was deleted meanwhile"))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    // Its instances stop first, so their running calls get their cancel before the pools
    // go; the store then removes them with the namespace, so none resumes at the next start.
    // Meanwhile none starts running (an event or a schedule may be creating one right now).
    let _deleting = state.flow_runs.deleting(&ns);
    faasbox_core::flows::runner::cancel_namespace(&state, &ns).await?;
    state.deployments.deactivate_namespace(&ns);
    // Its builds of functions from code stop, and their cached layers go.
    faasbox_core::code::forget_namespace(&state, &ns).await;
    state
        .to_completion(move |s| async move {
            if s.store.delete_namespace(&ns).await? {
                faasbox_core::follow::publish(
                    &*s.store,
                    faasbox_core::follow::Kind::NamespaceDeleted,
                    &ns,
                )
                .await;
            }
            // Its images go too (layers other images use stay).
            s.blocking(move |s| Ok(s.images.remove_namespace(&ns)?))
                .await?;
            // Its tokens and its routes went with it.
            s.tokens.reload(&*s.store).await?;
            s.routes.reload(&*s.store).await
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
