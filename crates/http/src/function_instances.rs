//! `GET /api/v1/namespaces/{ns}/functions/{name}/instances`: the function's running instances
//! (id, revision, when started, calls served, busy or idle), read from its pool now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::{require_namespace, valid_name};
use crate::error::ApiResult;
use faasbox_core::owner::Owner;
use faasbox_core::state::AppState;

/// One running instance of a function.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    /// The instance's id (the container's name).
    pub id: String,
    /// The function revision it runs (none for a flow's implicit function).
    pub revision: Option<u32>,
    /// When it was started (RFC 3339).
    pub started: String,
    /// Calls it has served so far (ended ones).
    pub calls: u64,
    /// `busy` while it serves a call, else `idle`.
    pub state: String,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<InstanceView>>> {
    valid_name("function", &name)?;
    require_namespace(&state, &ns).await?;
    let owner = Owner::Namespace(ns.clone());
    if owner.load_function(&*state.store, &name).await?.is_none() {
        return Err(owner.missing(&name).into());
    }
    // A function not in service (a code function still building) has no instance.
    let Some(deployed) = state.deployments.deployed(owner.key(), &name) else {
        return Ok(Json(Vec::new()));
    };
    let views = deployed
        .pool
        .instances()
        .into_iter()
        .map(|i| InstanceView {
            id: i.id,
            revision: deployed.revision,
            started: faasbox_core::clock::format_rfc3339(i.started),
            calls: i.calls,
            state: if i.in_flight > 0 { "busy" } else { "idle" }.to_string(),
        })
        .collect();
    Ok(Json(views))
}
