//! A function's image pinned to a manifest digest: at deploy the reference is resolved in the
//! owner's image tables (a namespace's own, then the server-wide one; a global service's: the
//! server-wide one only), pulling as the deploy's [`PullPolicy`] says; a deploy whose image
//! could not be had is pinned at the first call that gets it. Every instance of a deploy then
//! starts from that digest, whatever its name points at later.

use std::sync::Arc;

use faasbox_images::ImageHold;

use crate::deployments::{Deployed, Deployment};
use crate::failure::{Failure, FailureKind};
use crate::image_pull::{self, names_a_registry};
use crate::owner::Owner;
use crate::state::AppState;

pub use crate::image_book::PullPolicy;

/// A reference resolved for a deploy.
#[derive(Default)]
pub struct Resolved {
    /// `None`: not local (the pull failed); the first call that gets it pins it.
    pub digest: Option<String>,
    /// The table the name was found in (`None`: server-wide).
    pub image_namespace: Option<String>,
    /// Keeps the content until the deploy is in service.
    pub hold: Option<ImageHold>,
    /// Why a pull failed when a local copy was pinned instead.
    pub warning: Option<String>,
}

/// Resolves `owner`'s function `name`'s image reference to a digest for a deploy. An image
/// that is not local and cannot be pulled (no registry in the reference, or `never`) is a 400;
/// a pull that fails pins the local copy if there is one (with a warning), else resolves to
/// nothing (the function is saved; its image state says why).
pub async fn resolve(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    image: &str,
    policy: PullPolicy,
) -> Result<Resolved, Failure> {
    let local = || local_held(state, owner, image);
    if policy != PullPolicy::Always {
        if let Some(found) = local() {
            image_pull::forget(state, owner, name).await;
            return Ok(found);
        }
        // Shared through another server of the cluster, not here yet.
        if crate::shared_images::fetch_named(state, owner, image)
            .await
            .is_some()
        {
            if let Some(found) = local() {
                image_pull::forget(state, owner, name).await;
                return Ok(found);
            }
        }
        if policy == PullPolicy::Never || !names_a_registry(image) {
            let mut message = format!(
                "{} was not deployed: image '{image}' is not in the local store ({}); import it \
                 first with `{}` (see `faasbox image ls`)",
                owner.describe(name),
                tables(owner),
                owner.import_hint(image)
            );
            if names_a_registry(image) {
                message.push_str(", or deploy with --pull missing to pull it");
            } else {
                message.push_str(", or give a reference with its registry host to pull it");
            }
            return Err(Failure::invalid(message));
        }
    }
    match image_pull::pull_for(state, owner, name, image, false).await {
        Ok(record) => Ok(held(state, &record.digest, record.namespace)
            .or_else(local)
            .unwrap_or_default()),
        Err(e) => match local() {
            Some(mut found) => {
                found.warning = Some(format!(
                    "{}; the local copy {} is pinned instead",
                    e.message,
                    found.digest.as_deref().unwrap_or_default()
                ));
                Ok(found)
            }
            None => {
                tracing::warn!("{}", e.message);
                Ok(Resolved::default())
            }
        },
    }
}

/// Pins the image of a deployed function that has none yet (its deploy could not get it): the
/// owner's tables first, else a pull (unless its policy is `never`). Under the function's
/// change lock, so calls that wait meanwhile find it pinned and a deploy meanwhile is not
/// undone. Returns the deployment now in service.
pub async fn pin_at_call(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
) -> Result<Deployed, Failure> {
    let lock = state.change_lock(owner.key(), name);
    let _pinning = lock.lock().await;
    let deployed = state
        .deployments
        .deployed(owner.key(), name)
        .ok_or_else(|| owner.missing(name))?;
    if deployed.digest.is_some() {
        return Ok(deployed);
    }
    let image = deployed.spec.image.clone();
    if local_held(state, owner, &image).is_none() {
        // Shared through another server of the cluster, not here yet.
        crate::shared_images::fetch_named(state, owner, &image).await;
    }
    let found = match local_held(state, owner, &image) {
        Some(found) => found,
        None if deployed.pull == PullPolicy::Never => {
            return Err(Failure::new(
                FailureKind::Unavailable,
                image_pull::IMAGE_MISSING,
                format!(
                    "image '{image}' of {} is not in the local store ({}) and its pull policy is \
                     never; import or pull it",
                    owner.describe(name),
                    tables(owner)
                ),
            ))
        }
        None => {
            let record = image_pull::pull_for(state, owner, name, &image, true).await?;
            held(state, &record.digest, record.namespace).ok_or_else(|| {
                Failure::conflict(format!(
                    "image '{image}' of {} changed while it was pulled; call again",
                    owner.describe(name)
                ))
            })?
        }
    };
    let digest = found.digest.clone().unwrap_or_default();
    if let Some(revision) = deployed.revision {
        state
            .store
            .pin_revision(
                owner.key(),
                name,
                revision,
                &digest,
                found.image_namespace.as_deref(),
            )
            .await?;
    }
    tracing::info!(
        "{} runs image {image} pinned to {digest}",
        owner.describe(name)
    );
    state.deployments.activate(
        owner.key(),
        name,
        Deployment {
            spec: (*deployed.spec).clone(),
            digest: Some(digest),
            revision: deployed.revision,
            pull: deployed.pull,
        },
    );
    drop(found.hold);
    state
        .deployments
        .deployed(owner.key(), name)
        .ok_or_else(|| owner.missing(name))
}

/// The image as the owner's tables have it now, held.
fn local_held(state: &Arc<AppState>, owner: &Owner, image: &str) -> Option<Resolved> {
    let (record, hold) = state.images.resolve_held(owner.image_namespace(), image)?;
    Some(Resolved {
        digest: Some(record.digest),
        image_namespace: record.namespace,
        hold: Some(hold),
        warning: None,
    })
}

/// The content of `digest` (found in `table`), held.
fn held(state: &Arc<AppState>, digest: &str, table: Option<String>) -> Option<Resolved> {
    let hold = state.images.hold(digest)?;
    Some(Resolved {
        digest: Some(digest.to_string()),
        image_namespace: table,
        hold: Some(hold),
        warning: None,
    })
}

/// The tables an owner's references are looked up in, for messages.
fn tables(owner: &Owner) -> String {
    match owner {
        Owner::Namespace(ns) => format!("namespace {ns}'s images and the server-wide ones"),
        Owner::Global => "the server-wide images".to_string(),
    }
}
