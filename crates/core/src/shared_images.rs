//! Images on every server of a cluster. Each server keeps its own image store (its data
//! directory's `images/`), so with several servers on one store an image imported through one
//! would be unknown to the others. With a cluster registry configured (`[cluster] registry`,
//! `--cluster-registry`) they share images without a shared filesystem:
//!
//! - The store's image catalog (`faasbox_store::ImageCatalogStore`) is the truth: which
//!   manifest digest each name of each table (a namespace's, or the server-wide one) points to.
//! - The registry holds the bytes. A server that gives a name to an image ([`share`]: import,
//!   pull, code builds) pushes it to `<registry>/<table>/<repo>:<tag>` before it answers, puts
//!   the name with the pushed digest into the catalog, and publishes an `image` change; one
//!   that removes a name ([`unshare`]) deletes the row and publishes too.
//! - Every server follows the changes ([`follow`]): it pulls `<registry>/…@<digest>` into its
//!   own store under the same name (content is addressed by digest, so what it gets is exactly
//!   what was pushed), or removes its local name. A deploy or call that needs an image this
//!   server does not have yet asks the catalog first ([`fetch_named`], [`fetch_digest`]), and
//!   at start every row is reconciled in the background ([`start`]), so a server that was down
//!   when a change went by catches up.
//!
//! Without a cluster registry nothing here does anything: a server keeps its images alone.
//! Images kept for global services only (pulled with global-private credentials) are never
//! shared: each server pulls those itself.

use std::sync::Arc;

use faasbox_images::{ImageError, ImageRecord, Scope};
use faasbox_store::GLOBAL_OWNER;

use crate::changes::{publish, Kind};
use crate::cluster::registry::ClusterRegistry;
use crate::failure::{Failure, FailureKind};
use crate::owner::Owner;
use crate::registry_credentials::{CredentialScope, VaultCredentials};
use crate::state::AppState;

/// Error code of an image that could not be shared with the cluster's other servers.
pub const CLUSTER_REGISTRY_FAILED: &str = "faasbox.cluster.registry";

/// The cluster registry of this server, if one is configured (checked at start).
pub fn registry(state: &AppState) -> Option<ClusterRegistry> {
    let url = state.cluster.registry.as_deref()?;
    match ClusterRegistry::parse(url) {
        Ok(registry) => Some(registry),
        Err(e) => {
            tracing::error!("{e}");
            None
        }
    }
}

/// The owner key of an image table.
fn owner_of(scope: &Scope) -> &str {
    scope.namespace().unwrap_or(GLOBAL_OWNER)
}

/// The image table of an owner key.
fn scope_of(owner: &str) -> Scope {
    if owner == GLOBAL_OWNER {
        Scope::Global
    } else {
        Scope::Namespace(owner.to_string())
    }
}

/// The lock of one catalog name on this server: following it, fetching it and sharing it do
/// not interleave.
fn name_lock(state: &AppState, owner: &str, name: &str) -> Arc<tokio::sync::Mutex<()>> {
    state
        .image_pulls
        .lock_for(&format!("cluster\n{owner}\n{name}"))
}

/// Shares `scope`'s image `name` (just imported, pulled or built here) with the cluster's other
/// servers: pushes it to the cluster registry, puts it into the catalog and publishes the
/// change. Nothing without a cluster registry. A failure names the registry and the fix; the
/// image stays in this server's store.
pub async fn share(state: &AppState, scope: &Scope, name: &str) -> Result<(), Failure> {
    let Some(registry) = registry(state) else {
        return Ok(());
    };
    let Some(record) = state.images.get(scope, name)? else {
        return Ok(());
    };
    if record.services_only {
        return Ok(());
    }
    let owner = owner_of(scope);
    let lock = name_lock(state, owner, &record.name);
    let _sharing = lock.lock().await;
    let target = registry.target(owner, &record.name);
    let creds = VaultCredentials::load(&state.vault, &CredentialScope::Global).await;
    let pushed = state
        .images
        .push(
            scope,
            &record.digest,
            &target,
            &creds,
            &registry.options(),
            &|_| {},
        )
        .await
        .map_err(|e| push_failed(&registry, &record.name, &e))?;
    state
        .store
        .put_image_name(owner, &record.name, &pushed, &crate::clock::now_rfc3339())
        .await?;
    publish(&*state.store, Kind::Image, &image_key(owner, &record.name)).await;
    tracing::info!(
        image = %record.name,
        %scope,
        digest = %pushed,
        "image shared with the cluster through {target}"
    );
    Ok(())
}

fn push_failed(registry: &ClusterRegistry, name: &str, e: &ImageError) -> Failure {
    Failure::new(
        FailureKind::Unavailable,
        CLUSTER_REGISTRY_FAILED,
        format!(
            "image '{name}' is stored on this server, but the cluster's other servers cannot get \
             it: pushing it to the cluster registry {} failed: {e}; check that the registry is \
             reachable from this server and that its server-wide credentials are right \
             (`faasbox registry add --global {} -u USER --password-stdin`), then import or pull \
             the image again",
            registry.url(),
            registry.host()
        ),
    )
}

/// Takes `scope`'s name `name` (removed here) out of the catalog and tells the other servers.
/// Nothing without a cluster registry.
pub async fn unshare(state: &AppState, scope: &Scope, name: &str) -> Result<(), Failure> {
    if registry(state).is_none() {
        return Ok(());
    }
    let owner = owner_of(scope);
    let name = faasbox_images::normalize_reference(name)?;
    let lock = name_lock(state, owner, &name);
    let _sharing = lock.lock().await;
    if state.store.delete_image_name(owner, &name).await? {
        publish(&*state.store, Kind::Image, &image_key(owner, &name)).await;
    }
    Ok(())
}

/// The key of an `image` change: `owner/name`.
fn image_key(owner: &str, name: &str) -> String {
    format!("{owner}/{name}")
}

/// Follows an `image` change (key `owner/name`): makes this server's name what the catalog
/// says.
pub async fn follow(state: &AppState, key: &str) -> Result<(), Failure> {
    let Some((owner, name)) = key.split_once('/') else {
        return Err(Failure::internal(format!(
            "an image change's key is owner/name, not '{key}'"
        )));
    };
    let Some(registry) = registry(state) else {
        return Ok(());
    };
    reconcile(state, &registry, owner, name).await.map(|_| ())
}

/// A namespace deleted through another server (its catalog rows went with it): its names leave
/// this server's store too. Nothing without a cluster registry (one server removed them at the
/// deletion already).
pub async fn forget_namespace(state: &AppState, namespace: &str) -> Result<(), Failure> {
    if registry(state).is_none() {
        return Ok(());
    }
    let images = state.images.clone();
    let ns = namespace.to_string();
    let freed = tokio::task::spawn_blocking(move || images.remove_namespace(&ns))
        .await
        .map_err(|e| {
            Failure::internal(format!("removing namespace {namespace}'s images: {e}"))
        })??;
    if freed.bytes > 0 {
        tracing::info!("namespace {namespace} was deleted: its images left this server too");
    }
    Ok(())
}

/// Makes `owner`'s local name `name` what the catalog says: pulled by digest from the registry
/// when it points elsewhere or is missing, removed when the catalog has no such name. The
/// image record when the name is there now.
async fn reconcile(
    state: &AppState,
    registry: &ClusterRegistry,
    owner: &str,
    name: &str,
) -> Result<Option<ImageRecord>, Failure> {
    let lock = name_lock(state, owner, name);
    let _following = lock.lock().await;
    let scope = scope_of(owner);
    let local = state.images.get(&scope, name)?;
    match state.store.image_name(owner, name).await? {
        Some(row) => {
            if let Some(local) = local.filter(|l| l.digest == row.digest) {
                return Ok(Some(local));
            }
            let reference = registry.by_digest(owner, name, &row.digest);
            let creds = VaultCredentials::load(&state.vault, &CredentialScope::Global).await;
            let record = state
                .images
                .pull_as(&scope, &reference, name, &creds, &registry.options())
                .await
                .map_err(|e| {
                    Failure::new(
                        FailureKind::Unavailable,
                        CLUSTER_REGISTRY_FAILED,
                        format!(
                            "image '{name}' of {scope} could not be pulled from the cluster \
                             registry {} ({reference}): {e}; check that the registry is \
                             reachable from this server and that its server-wide credentials \
                             are right (`faasbox registry add --global {} …`)",
                            registry.url(),
                            registry.host()
                        ),
                    )
                })?;
            tracing::info!(image = %name, %scope, digest = %row.digest, "image pulled from the cluster registry");
            Ok(Some(record))
        }
        None => {
            if local.is_some() {
                let images = state.images.clone();
                let (remove_scope, remove_name) = (scope.clone(), name.to_string());
                tokio::task::spawn_blocking(move || {
                    images.remove(&remove_scope, &remove_name, false)
                })
                .await
                .map_err(|e| Failure::internal(format!("removing image '{name}': {e}")))??;
                tracing::info!(image = %name, %scope, "image removed: the cluster's catalog no longer has it");
            }
            Ok(None)
        }
    }
}

/// An image `owner`'s function refers to as `image` that this server does not have: if the
/// catalog has the name (in the owner's table, then the server-wide one, as references are
/// resolved), it is pulled from the cluster registry now. `None` when there is no cluster
/// registry, the catalog does not have it, or the pull failed (logged).
pub async fn fetch_named(state: &AppState, owner: &Owner, image: &str) -> Option<ImageRecord> {
    let registry = registry(state)?;
    let name = faasbox_images::normalize_reference(image).ok()?;
    let mut owners = Vec::new();
    if let Some(ns) = owner.image_namespace() {
        owners.push(ns.to_string());
    }
    owners.push(GLOBAL_OWNER.to_string());
    for key in owners {
        match state.store.image_name(&key, &name).await {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("reading the cluster's image catalog: {e}");
                return None;
            }
        }
        match reconcile(state, &registry, &key, &name).await {
            Ok(found) => return found,
            Err(e) => {
                tracing::warn!("{}", e.message);
                return None;
            }
        }
    }
    None
}

/// Content `owner`'s function pinned (`digest`) that this server does not have: pulled from
/// the cluster registry by any catalog name (of the owner's table, then the server-wide one)
/// that points to it. Whether the content is here now.
pub async fn fetch_digest(state: &AppState, owner: &Owner, digest: &str) -> bool {
    if state.images.content(digest).is_some() {
        return true;
    }
    let Some(registry) = registry(state) else {
        return false;
    };
    let mut owners = Vec::new();
    if let Some(ns) = owner.image_namespace() {
        owners.push(ns.to_string());
    }
    owners.push(GLOBAL_OWNER.to_string());
    for key in owners {
        let rows = match state.store.image_names(Some(&key)).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("reading the cluster's image catalog: {e}");
                return false;
            }
        };
        for row in rows.into_iter().filter(|r| r.digest == digest) {
            match reconcile(state, &registry, &row.owner, &row.name).await {
                Ok(_) if state.images.content(digest).is_some() => return true,
                Ok(_) => {}
                Err(e) => tracing::warn!("{}", e.message),
            }
        }
    }
    state.images.content(digest).is_some()
}

/// At start, in the background: every name of the catalog is reconciled with this server's
/// store (a server that was down, or new, gets what the others shared meanwhile). Nothing
/// without a cluster registry.
pub fn start(state: Arc<AppState>) {
    let Some(registry) = registry(&state) else {
        return;
    };
    tokio::spawn(async move {
        let rows = match state.store.image_names(None).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("the cluster's image catalog could not be read; its images come with their next change or call: {e}");
                return;
            }
        };
        tracing::info!(
            "reconciling {} image names with the cluster registry {}",
            rows.len(),
            registry.url()
        );
        let (mut done, mut failed) = (0usize, 0usize);
        for row in rows {
            match reconcile(&state, &registry, &row.owner, &row.name).await {
                Ok(_) => done += 1,
                Err(e) => {
                    failed += 1;
                    tracing::warn!("{}", e.message);
                }
            }
        }
        tracing::info!(
            "images reconciled with the cluster registry: {done} names, {failed} failed"
        );
    });
}
