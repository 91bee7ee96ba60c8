//! Image tables: a namespace's at `/api/v1/namespaces/{ns}/images`, the server-wide one at
//! `/api/v1/images` (written with the admin token only). Import an archive (streamed to disk,
//! then unpacked), list, remove (refused while a function's revision uses the image, unless
//! forced) and prune what no revision uses.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use faasbox_images::{ImageRecord, RootfsOptions, Scope};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::failure::{Failure, Fallible};
use faasbox_core::owner::Owner;
use faasbox_core::state::AppState;

/// Query of `POST …/images/import`. List values are JSON arrays of strings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    name: String,
    entrypoint: Option<String>,
    cmd: Option<String>,
    env: Option<String>,
    workdir: Option<String>,
    user: Option<String>,
}

/// Query of `DELETE …/images`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    name: String,
    /// Remove it although revisions use it (they fail at their next start).
    #[serde(default)]
    force: bool,
}

/// The answer to a removal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Removed {
    pub removed: String,
    pub namespace: Option<String>,
    pub digest: String,
    pub freed_bytes: u64,
    /// Functions whose current revision ran the removed image: they fail at their next start.
    pub will_fail: Vec<String>,
}

/// The answer to a prune.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PruneView {
    pub removed: Vec<String>,
    pub freed_bytes: u64,
    pub freed_layers: usize,
}

fn string_list(field: &str, value: Option<&str>) -> ApiResult<Vec<String>> {
    match value {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            ApiError::bad_request(format!(
                "`{field}` must be a JSON array of strings, like [\"/bin/sh\",\"-c\"]"
            ))
        }),
    }
}

async fn import_into(
    state: Arc<AppState>,
    scope: Scope,
    query: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImageRecord>)> {
    let max = state.config.limits.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(upload_too_large(max));
    }
    let Query(query) = query
        .map_err(|e| ApiError::bad_request(format!("{}; `name` is required", e.body_text())))?;
    let name = faasbox_images::normalize_reference(&query.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let options = RootfsOptions {
        entrypoint: string_list("entrypoint", query.entrypoint.as_deref())?,
        cmd: string_list("cmd", query.cmd.as_deref())?,
        env: string_list("env", query.env.as_deref())?,
        workdir: query.workdir.filter(|w| !w.is_empty()),
        user: query.user.filter(|u| !u.is_empty()),
    };
    if let Some(bad) = options
        .env
        .iter()
        .find(|kv| !kv.contains('=') || kv.starts_with('='))
    {
        return Err(ApiError::bad_request(format!(
            "env entry '{bad}' is not KEY=VALUE"
        )));
    }
    let uploads = state.config.uploads_dir();
    tokio::fs::create_dir_all(&uploads)
        .await
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", uploads.display())))?;
    tokio::fs::set_permissions(&uploads, faasbox_core::config::private_dir())
        .await
        .map_err(|e| ApiError::internal(format!("restricting {}: {e}", uploads.display())))?;
    let upload = uploads.join(uuid::Uuid::new_v4().simple().to_string());
    let guard = RemoveOnDrop(upload.clone());
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&upload)
        .await
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", upload.display())))?;
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
        received += chunk.len() as u64;
        if received > max {
            return Err(upload_too_large(max));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    drop(file);
    if received == 0 {
        return Err(ApiError::bad_request(
            "the request body is empty; send the image archive as the body",
        ));
    }
    let imported_into = scope.clone();
    let record = state
        .blocking(move |s| {
            let result = s.images.import_archive(&scope, &upload, &name, &options);
            drop(guard);
            result.map_err(|e| upload_error(e, &upload))
        })
        .await?;
    // With a cluster registry, the import is done once every server can get the image.
    faasbox_core::shared_images::share(&state, &imported_into, &record.name).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// The formats an import takes, for the answer to anything else.
pub const ACCEPTED_FORMATS: &str = "a `docker save` archive, an OCI image layout (a tar of the \
    layout directory; the CLI packs a directory itself) or a root filesystem tarball (tar, or \
    tar.gz; give its entrypoint with --entrypoint)";

/// An import's error as the uploader sees it: never the server's path of the upload, and for a
/// file that is no image, what is accepted rather than what the file holds.
fn upload_error(e: faasbox_images::ImageError, upload: &std::path::Path) -> Failure {
    if let faasbox_images::ImageError::UnknownFormat { .. } = e {
        return Failure::invalid(format!(
            "the upload is not an image faasbox can import; send {ACCEPTED_FORMATS}"
        ));
    }
    let mut error = Failure::from(e);
    let shown = upload.display().to_string();
    error.message = error
        .message
        .replace(&format!("'{shown}'"), "the upload")
        .replace(&shown, "the upload");
    error
}

async fn list_in(state: Arc<AppState>, scope: Scope) -> ApiResult<Json<Vec<ImageRecord>>> {
    let images = state.blocking(move |s| Ok(s.images.list(&scope)?)).await?;
    Ok(Json(images))
}

async fn remove_in(
    state: Arc<AppState>,
    scope: Scope,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> ApiResult<Json<Removed>> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; `name` is required (and `force=true` optionally)",
            e.body_text()
        ))
    })?;
    let (scope_read, name) = (scope.clone(), query.name.clone());
    let record = state
        .blocking(move |s| Ok(s.images.get(&scope_read, &name)?))
        .await?
        .ok_or_else(|| Failure::not_found(format!("image '{}' is not in {scope}", query.name)))?;
    // Who uses it is read before the removal, as before (a deploy in between was never kept
    // out: the removal is checked, not locked against deploys).
    let users = users_of(&state, &scope, &record.digest).await?;
    if !users.is_empty() && !query.force {
        let named: Vec<&str> = users.iter().map(|u| u.text.as_str()).collect();
        return Err(Failure::conflict(format!(
            "image '{}' is used by {}; deploy those functions with another image (or \
             delete them) first, or remove it anyway with --force (they fail when they \
             next start an instance)",
            record.name,
            named.join(", ")
        ))
        .into());
    }
    let removed_from = scope.clone();
    let removed = state
        .blocking(move |s| {
            let freed = s.images.remove(&scope, &record.name, query.force)?;
            let gone = s.images.content(&record.digest).is_none();
            let mut will_fail: Vec<String> = users
                .into_iter()
                .filter(|u| u.current && gone)
                .map(|u| u.function)
                .collect();
            will_fail.dedup();
            Ok(Removed {
                removed: record.name,
                namespace: record.namespace,
                digest: record.digest,
                freed_bytes: freed.map_or(0, |f| f.bytes),
                will_fail,
            })
        })
        .await?;
    if !removed.will_fail.is_empty() {
        tracing::warn!(
            "image {} was removed by force; {} fail at their next start",
            removed.removed,
            removed.will_fail.join(", ")
        );
    }
    faasbox_core::shared_images::unshare(&state, &removed_from, &removed.removed).await?;
    Ok(Json(removed))
}

/// A kept revision that pins an image through one table.
struct User {
    /// "function a/f" or "global service g".
    function: String,
    /// The function and its revision, for messages.
    text: String,
    current: bool,
}

/// The kept revisions that run `digest` found through `scope`'s table.
async fn users_of(state: &AppState, scope: &Scope, digest: &str) -> Fallible<Vec<User>> {
    let mut users = Vec::new();
    for revision in state.store.revisions_pinning(digest).await? {
        if revision.image_namespace.as_deref() != scope.namespace() {
            continue;
        }
        let owner = Owner::from_key(&revision.owner);
        let current = owner
            .load_function(&*state.store, &revision.function)
            .await?
            .is_some_and(|f| f.revision == Some(revision.revision));
        let function = owner.describe(&revision.function);
        users.push(User {
            text: format!(
                "{function} (revision {}{})",
                revision.revision,
                if current { ", current" } else { "" }
            ),
            function,
            current,
        });
    }
    Ok(users)
}

async fn prune_in(state: Arc<AppState>, scope: Scope) -> ApiResult<Json<PruneView>> {
    let pinned = state.store.digests_pinned_from(scope.namespace()).await?;
    let sources = flow_sources(&state, &scope).await?;
    let pruned_from = scope.clone();
    let pruned = state
        .blocking(move |s| {
            let named = flow_images(&sources);
            let pruned = s.images.prune(&scope, |r| {
                pinned.contains(&r.digest) || named.contains(&r.name)
            })?;
            Ok(pruned)
        })
        .await?;
    for record in &pruned.removed {
        faasbox_core::shared_images::unshare(&state, &pruned_from, &record.name).await?;
    }
    Ok(Json(PruneView {
        removed: pruned.removed.into_iter().map(|r| r.name).collect(),
        freed_bytes: pruned.freed.bytes,
        freed_layers: pruned.freed.layers,
    }))
}

/// The sources of the deployed flows whose images count for `scope`'s table: a namespace's
/// flows for its table, every namespace's for the server-wide one.
async fn flow_sources(state: &AppState, scope: &Scope) -> Fallible<Vec<String>> {
    let namespaces = match scope.namespace() {
        Some(ns) => vec![ns.to_string()],
        None => state
            .store
            .list_namespaces()
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect(),
    };
    let mut sources = Vec::new();
    for ns in namespaces {
        for flow in state.store.list_flows(&ns).await? {
            sources.push(flow.source);
        }
    }
    Ok(sources)
}

/// The image names that the flows of `sources` run (their `knative-workflow` functions).
/// Parsing them is work for a blocking thread.
fn flow_images(sources: &[String]) -> HashSet<String> {
    let mut names = HashSet::new();
    for source in sources {
        let Ok(workflow) = faasbox_flow::load(source) else {
            continue;
        };
        for function in &workflow.functions {
            if let faasbox_flow::model::FunctionKind::Workflow { image, .. } = &function.kind {
                if let Ok(name) = faasbox_images::normalize_reference(image) {
                    names.insert(name);
                }
            }
        }
    }
    names
}

pub async fn import(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImageRecord>)> {
    import_into(state, Scope::Global, query, headers, body).await
}

pub async fn import_ns(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    query: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImageRecord>)> {
    require_namespace(&state, &ns).await?;
    import_into(state, Scope::Namespace(ns), query, headers, body).await
}

pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<ImageRecord>>> {
    list_in(state, Scope::Global).await
}

pub async fn list_ns(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<ImageRecord>>> {
    require_namespace(&state, &ns).await?;
    list_in(state, Scope::Namespace(ns)).await
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> ApiResult<Json<Removed>> {
    remove_in(state, Scope::Global, query).await
}

pub async fn remove_ns(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> ApiResult<Json<Removed>> {
    require_namespace(&state, &ns).await?;
    remove_in(state, Scope::Namespace(ns), query).await
}

pub async fn prune(State(state): State<Arc<AppState>>) -> ApiResult<Json<PruneView>> {
    prune_in(state, Scope::Global).await
}

pub async fn prune_ns(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<PruneView>> {
    require_namespace(&state, &ns).await?;
    prune_in(state, Scope::Namespace(ns)).await
}

/// The answer to an archive over the upload bound (413; nothing is kept of it).
fn upload_too_large(max: u64) -> ApiError {
    Failure::too_large(format!(
        "the image archive is larger than the server's upload limit of {}; \
         raise it with the server's `max-upload-size` setting",
        faasbox_core::bounds::show_size(max)
    ))
    .into()
}

/// Deletes an uploaded archive however the import ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
