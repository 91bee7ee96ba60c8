//! Functions: a namespace's under `/api/v1/namespaces/{ns}/functions`, global services under
//! `/api/v1/functions` (deploy with PUT, show, list, delete). Deploying a function whose image
//! is not local pulls it; if that fails the function is still saved, its `image` state says why,
//! and the next call pulls again.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{require_namespace, valid_name};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::image_pull::{self, ImageState};
use crate::model::FunctionSpec;
use crate::owner::Owner;
use crate::pool::PoolStats;
use crate::state::{function_key, AppState};

/// A function as the API shows it.
#[derive(Serialize)]
pub struct FunctionView {
    /// Absent for a global service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub global: bool,
    pub name: String,
    pub spec: FunctionSpec,
    pub created: String,
    pub updated: String,
    pub image: ImageState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<PoolStats>,
}

fn view(state: &AppState, record: faasbox_store::FunctionRecord) -> ApiResult<FunctionView> {
    let owner = Owner::from_key(&record.namespace);
    let spec: FunctionSpec = serde_json::from_str(&record.spec).map_err(|e| {
        ApiError::internal(format!(
            "stored spec of {} is unreadable: {e}",
            owner.describe(&record.name)
        ))
    })?;
    let instances = state
        .deployed(&record.namespace, &record.name)
        .map(|d| d.pool.stats());
    let image = state.image_pulls.state(
        state,
        &function_key(&record.namespace, &record.name),
        &spec.image,
    );
    Ok(FunctionView {
        namespace: match owner {
            Owner::Namespace(ns) => Some(ns),
            Owner::Global => None,
        },
        global: record.namespace == faasbox_store::GLOBAL_OWNER,
        name: record.name,
        spec,
        created: record.created,
        updated: record.updated,
        image,
        instances,
    })
}

async fn deploy(
    state: &Arc<AppState>,
    owner: Owner,
    name: String,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    let what = owner.describe(&name);
    let spec = FunctionSpec::from_json(&body)
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
    let pull = known.is_none() && image_pull::names_a_registry(&spec.image);
    if known.is_none() && !pull && !spec.image.trim().is_empty() {
        problems.push(format!(
            "image '{}' is not in the local store; import it first with `faasbox image import FILE --name {}` \
             (see `faasbox image ls`), or give a reference with its registry host to pull it",
            spec.image, spec.image
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{what} was not deployed: {}",
            problems.join("; ")
        )));
    }
    if let Some(template) = &spec.input {
        crate::template::check(template).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                crate::template::BAD_COMMAND,
                format!("{what} was not deployed: its input template is invalid: {e}"),
            )
        })?;
    }
    if pull {
        // A failure is remembered and shown in the answer's `image`; the function is saved.
        if let Err(e) = image_pull::ensure(state, &owner, &name, &spec.image).await {
            tracing::warn!("{}", e.message);
        }
    } else {
        image_pull::forget(state, &owner, &name).await;
    }
    let text = serde_json::to_string(&spec).map_err(|e| ApiError::internal(e.to_string()))?;
    let (saved_owner, saved_name, checked) = (owner.clone(), name.clone(), spec.clone());
    // The namespace's quotas are checked and the function stored as one step.
    let _deploys = state.quotas.lock_deploys().await;
    let (record, existed) = state
        .blocking(move |s| {
            let existed = saved_owner.load_function(&s.store, &saved_name)?.is_some();
            check_quotas(s, &saved_owner, &saved_name, &checked, existed)?;
            let record =
                saved_owner.store_function(&s.store, &saved_name, &text, &clock::now_rfc3339())?;
            Ok((record, existed))
        })
        .await?;
    state.activate(owner.key(), &name, spec);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(state, record)?)))
}

/// Checks a namespace function against its namespace's quotas (global services have none).
fn check_quotas(
    state: &AppState,
    owner: &Owner,
    name: &str,
    spec: &FunctionSpec,
    existed: bool,
) -> ApiResult<()> {
    let Owner::Namespace(namespace) = owner else {
        return Ok(());
    };
    // The `scale.min` of the namespace's other functions (a stored spec that cannot be read
    // runs nowhere: it counts as a function only).
    let others: Vec<u32> = owner
        .list_functions(&state.store)?
        .into_iter()
        .filter(|r| r.name != name)
        .map(|r| {
            serde_json::from_str::<FunctionSpec>(&r.spec)
                .map(|s| s.scale.min)
                .unwrap_or(0)
        })
        .collect();
    state
        .quotas
        .quotas
        .check_deploy(namespace, name, spec, &others, existed)
}

async fn show(state: &Arc<AppState>, owner: Owner, name: String) -> ApiResult<Json<FunctionView>> {
    let (o, n) = (owner.clone(), name.clone());
    let record = state
        .blocking(move |s| Ok(o.load_function(&s.store, &n)?))
        .await?;
    let record = record.ok_or_else(|| owner.missing(&name))?;
    Ok(Json(view(state, record)?))
}

async fn list_of(state: &Arc<AppState>, owner: Owner) -> ApiResult<Json<Vec<FunctionView>>> {
    let records = state
        .blocking(move |s| Ok(owner.list_functions(&s.store)?))
        .await?;
    let views = records
        .into_iter()
        .map(|r| view(state, r))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(views))
}

async fn remove(state: &Arc<AppState>, owner: Owner, name: String) -> ApiResult<StatusCode> {
    let (o, n) = (owner.clone(), name.clone());
    let deleted = state
        .blocking(move |s| Ok(o.delete_function(&s.store, &n)?))
        .await?;
    if !deleted {
        return Err(owner.missing(&name));
    }
    state.deactivate(owner.key(), &name);
    image_pull::forget(state, &owner, &name).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    valid_name("function", &name)?;
    require_namespace(&state, &ns).await?;
    deploy(&state, Owner::Namespace(ns), name, body?).await
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<FunctionView>> {
    require_namespace(&state, &ns).await?;
    show(&state, Owner::Namespace(ns), name).await
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<FunctionView>>> {
    require_namespace(&state, &ns).await?;
    list_of(&state, Owner::Namespace(ns)).await
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    remove(&state, Owner::Namespace(ns), name).await
}

pub async fn put_global(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    valid_name("global service", &name)?;
    deploy(&state, Owner::Global, name, body?).await
}

pub async fn get_global(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<FunctionView>> {
    show(&state, Owner::Global, name).await
}

pub async fn list_global(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<FunctionView>>> {
    list_of(&state, Owner::Global).await
}

pub async fn delete_global(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    remove(&state, Owner::Global, name).await
}
