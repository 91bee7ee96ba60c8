//! Functions: a namespace's under `/api/v1/namespaces/{ns}/functions`, global services under
//! `/api/v1/functions`: deploy with PUT (the whole spec; `?pull=always|missing|never`), update
//! with PATCH (a JSON merge patch of the spec), show, list, delete, list revisions and roll
//! back. The work is in [`faasbox_core::deploy`]; a deploy whose image cannot be pulled still saves
//! the function, its `image` state says why, and the next call pulls again.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::TokenName;
use super::json_body::{JsonBody, JsonShape, OptionalJsonBody};
use super::{require_namespace, valid_name};
use crate::error::{ApiError, ApiResult};
use faasbox_core::deploy::{self, Outcome};
use faasbox_core::image_pull::ImageState;
use faasbox_core::model::FunctionSpec;
use faasbox_core::owner::Owner;
use faasbox_core::pool::PoolStats;
use faasbox_core::state::{function_key, AppState};

/// A function as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FunctionView {
    /// Absent for a global service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub global: bool,
    pub name: String,
    /// The contract it runs under: the spec's, or `cmd` for an http spec whose `cmd` is
    /// Direktiv's `/usr/share/direktiv/direktiv-cmd`.
    pub contract: faasbox_proto::Contract,
    pub spec: FunctionSpec,
    /// The current revision.
    pub revision: Option<u32>,
    /// The manifest digest the current revision runs (`null` until its image is local).
    pub digest: Option<String>,
    pub created: String,
    pub updated: String,
    pub image: ImageState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<PoolStats>,
    /// With `?stats=1h` on the list: its runs of the last hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::summary::FunctionStats>,
    /// After a deploy, update or rollback of an existing function: the revision before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<u32>,
    /// After a deploy, update or rollback: the spec fields (and `digest`) that changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<String>>,
    /// Things the deploy did that the caller should know (a failed pull of a local image).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One revision as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RevisionView {
    pub revision: u32,
    pub current: bool,
    pub digest: Option<String>,
    /// The image table the name was found in: a namespace, or `null` for the server-wide one.
    pub image_namespace: Option<String>,
    pub pull: String,
    pub created: String,
    /// The name of the token that made it.
    pub created_by: String,
    pub spec: Value,
}

/// Query of PUT and PATCH.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    /// `always`, `missing` or `never`.
    pull: Option<String>,
}

/// Body of a rollback.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    revision: Option<u32>,
}

impl JsonShape for RollbackBody {
    fn problem(detail: &str) -> String {
        format!(
            "the rollback body must be {{\"revision\": N}} (or empty for the previous revision): \
             {detail}"
        )
    }
}

impl JsonShape for FunctionSpec {
    fn problem(detail: &str) -> String {
        format!("the function spec is not valid: {detail}")
    }
}

/// The body of a PATCH: a JSON merge patch (RFC 7396) of the spec.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct MergePatch(Value);

impl JsonShape for MergePatch {
    fn problem(detail: &str) -> String {
        format!("the update is not JSON (a merge patch of the spec): {detail}")
    }
}

fn view(state: &AppState, record: faasbox_store::FunctionRecord) -> ApiResult<FunctionView> {
    let owner = Owner::from_key(&record.namespace);
    let spec: FunctionSpec = serde_json::from_str(&record.spec).map_err(|e| {
        ApiError::internal(format!(
            "stored spec of {} is unreadable: {e}",
            owner.describe(&record.name)
        ))
    })?;
    let deployed = state.deployments.deployed(&record.namespace, &record.name);
    let digest = deployed.as_ref().and_then(|d| d.digest.clone());
    let image = state.image_pulls.state(
        &state.images,
        &function_key(&record.namespace, &record.name),
        digest.as_deref(),
    );
    Ok(FunctionView {
        namespace: match owner {
            Owner::Namespace(ns) => Some(ns),
            Owner::Global => None,
        },
        global: record.namespace == faasbox_store::GLOBAL_OWNER,
        name: record.name,
        contract: spec.effective_contract(),
        spec,
        revision: record.revision,
        digest,
        created: record.created,
        updated: record.updated,
        image,
        instances: deployed.map(|d| d.pool.stats()),
        stats: None,
        previous_revision: None,
        changes: None,
        warnings: Vec::new(),
    })
}

/// The answer to a deploy or update: 201 for a new function, 200 for a changed one.
fn changed(state: &AppState, outcome: Outcome) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    let mut shown = view(state, outcome.record)?;
    shown.warnings = outcome.warnings;
    let status = match &outcome.previous {
        Some(previous) => {
            shown.previous_revision = Some(previous.revision);
            shown.changes = Some(outcome.changes);
            StatusCode::OK
        }
        None => StatusCode::CREATED,
    };
    Ok((status, Json(shown)))
}

fn pull_query(query: Result<Query<ChangeQuery>, QueryRejection>) -> ApiResult<Option<String>> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; the only query parameter is pull=always|missing|never",
            e.body_text()
        ))
    })?;
    Ok(query.pull)
}

async fn put_as(
    state: &Arc<AppState>,
    owner: Owner,
    name: String,
    pull: Option<String>,
    by: String,
    spec: FunctionSpec,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    let outcome = deploy::deploy(state, &owner, &name, spec, pull.as_deref(), &by).await?;
    changed(state, outcome)
}

async fn patch_as(
    state: &Arc<AppState>,
    owner: Owner,
    name: String,
    pull: Option<String>,
    by: String,
    MergePatch(patch): MergePatch,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    let outcome = deploy::update(state, &owner, &name, patch, pull.as_deref(), &by).await?;
    changed(state, outcome)
}

async fn show(state: &Arc<AppState>, owner: Owner, name: String) -> ApiResult<Json<FunctionView>> {
    let record = owner.load_function(&*state.store, &name).await?;
    let record = record.ok_or_else(|| owner.missing(&name))?;
    Ok(Json(view(state, record)?))
}

async fn list_of(state: &Arc<AppState>, owner: Owner) -> ApiResult<Json<Vec<FunctionView>>> {
    let records = owner.list_functions(&*state.store).await?;
    let views = records
        .into_iter()
        .map(|r| view(state, r))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(views))
}

async fn remove(state: &Arc<AppState>, owner: Owner, name: String) -> ApiResult<StatusCode> {
    deploy::remove(state, &owner, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revisions_of(
    state: &Arc<AppState>,
    owner: Owner,
    name: String,
) -> ApiResult<Json<Vec<RevisionView>>> {
    let found = match owner.load_function(&*state.store, &name).await? {
        Some(record) => Some((
            record.revision,
            state.store.revisions(owner.key(), &name).await?,
        )),
        None => None,
    };
    let (current, revisions) = found.ok_or_else(|| owner.missing(&name))?;
    Ok(Json(
        revisions
            .into_iter()
            .map(|r| RevisionView {
                current: Some(r.revision) == current,
                revision: r.revision,
                spec: serde_json::from_str(&r.spec).unwrap_or(Value::Null),
                digest: r.digest,
                image_namespace: r.image_namespace,
                pull: r.pull,
                created: r.created,
                created_by: r.created_by,
            })
            .collect(),
    ))
}

async fn rollback_as(
    state: &Arc<AppState>,
    owner: Owner,
    name: String,
    body: Option<RollbackBody>,
) -> ApiResult<Json<FunctionView>> {
    let to = body.and_then(|b| b.revision);
    let (record, target, from) = deploy::rollback(state, &owner, &name, to).await?;
    let mut shown = view(state, record)?;
    shown.previous_revision = Some(from.revision);
    shown.changes = Some(deploy::changes(&from, &target));
    Ok(Json(shown))
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    query: Result<Query<ChangeQuery>, QueryRejection>,
    TokenName(by): TokenName,
    body: Result<JsonBody<FunctionSpec>, ApiError>,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    valid_name("function", &name)?;
    require_namespace(&state, &ns).await?;
    let pull = pull_query(query)?;
    let JsonBody(spec) = body?;
    put_as(&state, Owner::Namespace(ns), name, pull, by, spec).await
}

pub async fn patch(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    query: Result<Query<ChangeQuery>, QueryRejection>,
    TokenName(by): TokenName,
    body: Result<JsonBody<MergePatch>, ApiError>,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    require_namespace(&state, &ns).await?;
    let pull = pull_query(query)?;
    let JsonBody(patch) = body?;
    patch_as(&state, Owner::Namespace(ns), name, pull, by, patch).await
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<FunctionView>> {
    require_namespace(&state, &ns).await?;
    show(&state, Owner::Namespace(ns), name).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// `1h`: add each function's runs of the last hour.
    stats: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<FunctionView>>> {
    require_namespace(&state, &ns).await?;
    let Some(window) = query.stats else {
        return list_of(&state, Owner::Namespace(ns)).await;
    };
    super::summary::check_window(&window)?;
    let stats = super::summary::function_stats(&state, &ns).await?;
    let Json(mut views) = list_of(&state, Owner::Namespace(ns)).await?;
    for view in &mut views {
        view.stats = Some(stats.get(&view.name).copied().unwrap_or_default());
    }
    Ok(Json(views))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    // A function built from code goes with its record (and its build, if one runs); one
    // whose build never made it READY has no function to remove.
    let from_code = faasbox_core::code::functions::forget(&state, &ns, &name).await?;
    match remove(&state, Owner::Namespace(ns), name).await {
        Err(e) if from_code && e.status == StatusCode::NOT_FOUND => Ok(StatusCode::NO_CONTENT),
        other => other,
    }
}

pub async fn revisions(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<RevisionView>>> {
    require_namespace(&state, &ns).await?;
    revisions_of(&state, Owner::Namespace(ns), name).await
}

pub async fn rollback(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<OptionalJsonBody<RollbackBody>, ApiError>,
) -> ApiResult<Json<FunctionView>> {
    require_namespace(&state, &ns).await?;
    let OptionalJsonBody(body) = body?;
    rollback_as(&state, Owner::Namespace(ns), name, body).await
}

pub async fn put_global(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<ChangeQuery>, QueryRejection>,
    TokenName(by): TokenName,
    body: Result<JsonBody<FunctionSpec>, ApiError>,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    valid_name("global service", &name)?;
    let pull = pull_query(query)?;
    let JsonBody(spec) = body?;
    put_as(&state, Owner::Global, name, pull, by, spec).await
}

pub async fn patch_global(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<ChangeQuery>, QueryRejection>,
    TokenName(by): TokenName,
    body: Result<JsonBody<MergePatch>, ApiError>,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    let pull = pull_query(query)?;
    let JsonBody(patch) = body?;
    patch_as(&state, Owner::Global, name, pull, by, patch).await
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

pub async fn revisions_global(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<RevisionView>>> {
    revisions_of(&state, Owner::Global, name).await
}

pub async fn rollback_global(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<OptionalJsonBody<RollbackBody>, ApiError>,
) -> ApiResult<Json<FunctionView>> {
    let OptionalJsonBody(body) = body?;
    rollback_as(&state, Owner::Global, name, body).await
}
