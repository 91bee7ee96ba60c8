//! Pulling a function's image into its owner's image table (a namespace's own, or the
//! server-wide one for a global service), at deploy and again at a call while it is still not
//! local, with the credentials stored at that moment (so a registry added after a failed
//! deploy works without redeploying). One pull per table and image at a time; the last failure
//! per function is kept for `GET …/functions/{fn}`, in memory and in the store (so it is still
//! there after a restart).

use std::sync::Arc;

use faasbox_images::{CredentialSource, ImageError, ImageRecord, PullOptions, RegistryAuth};
use faasbox_secrets::{RegistryScope, Vault};

use crate::failure::{Failure, FailureKind};
use crate::owner::Owner;
use crate::state::AppState;

pub use crate::image_book::{names_a_registry, ImagePulls, ImageState, IMAGE_MISSING};

/// Which stored registry credentials a pull may use.
#[derive(Debug, Clone)]
pub enum CredentialScope {
    /// A namespace's function: the namespace's registries, then the global ones.
    Namespace(String),
    /// The global registries only (a pull named by no namespace).
    Global,
    /// A global service: the global-private registries, then the global ones.
    GlobalService,
}

impl From<&Owner> for CredentialScope {
    fn from(owner: &Owner) -> Self {
        match owner {
            Owner::Namespace(ns) => CredentialScope::Namespace(ns.clone()),
            Owner::Global => CredentialScope::GlobalService,
        }
    }
}

/// Registry credentials from the vault, read when the transfer asks for them.
pub struct VaultCredentials {
    pub vault: Arc<Vault>,
    pub scope: CredentialScope,
}

impl CredentialSource for VaultCredentials {
    fn credentials(&self, registry_host: &str) -> Option<RegistryAuth> {
        let found = match &self.scope {
            CredentialScope::Namespace(ns) => self
                .vault
                .resolve_registry_credentials(Some(ns), registry_host),
            CredentialScope::GlobalService => {
                self.vault.resolve_registry_credentials(None, registry_host)
            }
            CredentialScope::Global => self
                .vault
                .registry_credentials(&RegistryScope::Global, registry_host),
        };
        match found {
            Ok(creds) => creds.map(|c| RegistryAuth {
                username: c.username.clone(),
                password: c.password.to_string(),
            }),
            Err(e) => {
                tracing::warn!("reading the credentials of registry {registry_host}: {e}");
                None
            }
        }
    }
}

/// Pulls `image` into the image table of `owner` for its function `name` (`None` for a pull
/// no function asked for), with the owner's credentials. With `only_if_missing`, an image
/// already in the owner's tables (looked at again once this pull has the lock) is taken as it
/// is. A failure is remembered for the function and answered with how to fix it.
pub async fn pull_for(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    image: &str,
    only_if_missing: bool,
) -> Result<ImageRecord, Failure> {
    if !names_a_registry(image) {
        return Err(Failure::new(
            FailureKind::Unavailable,
            IMAGE_MISSING,
            format!(
                "image '{image}' of {} is not in the local store and names no registry to pull it from; \
                 import it with `{}`",
                owner.describe(name),
                owner.import_hint(image)
            ),
        ));
    }
    let scope = owner.image_scope();
    let lock = state
        .image_pulls
        .lock_for(&format!("pull\n{scope}\n{image}"));
    let _pulling = lock.lock().await;
    if only_if_missing {
        // Another call may have pulled it while this one waited.
        if let Ok(Some(record)) = state.images.resolve(owner.image_namespace(), image) {
            return Ok(record);
        }
    }
    let creds = VaultCredentials {
        vault: state.vault.clone(),
        scope: owner.into(),
    };
    let options = PullOptions {
        services_only: *owner == Owner::Global && uses_private_credentials(state, image),
        ..PullOptions::default()
    };
    match state
        .images
        .pull(&scope, image, &creds, &options, &|_| {})
        .await
    {
        Ok(record) => {
            tracing::info!("pulled image {image} for {}", owner.describe(name));
            forget(state, owner, name).await;
            Ok(record)
        }
        Err(e) => {
            let message = pull_failure(owner, image, &e);
            remember(state, owner, name, Some(&message)).await;
            Err(Failure::new(
                FailureKind::Unavailable,
                IMAGE_MISSING,
                format!("{}: {message}", owner.describe(name)),
            ))
        }
    }
}

/// Whether a global service's pull of `image` goes with global-private credentials (which
/// namespaces' functions never get: the image is then kept for global services only).
fn uses_private_credentials(state: &AppState, image: &str) -> bool {
    let Some((host, _)) = image.split_once('/') else {
        return false;
    };
    match state
        .vault
        .registry_credentials(&RegistryScope::GlobalPrivate, host)
    {
        Ok(found) => found.is_some(),
        // Unknown: keep it from namespaces.
        Err(_) => true,
    }
}

/// Forgets the last pull failure of `owner`'s function `name` (its image is there, or it was
/// redeployed or deleted).
pub async fn forget(state: &Arc<AppState>, owner: &Owner, name: &str) {
    remember(state, owner, name, None).await;
}

/// Sets (or with `None` clears) the failure of `owner`'s function `name`, in memory and in the
/// store. A store error is logged: the failure still shows until the next restart.
async fn remember(state: &Arc<AppState>, owner: &Owner, name: &str, message: Option<&str>) {
    let key = crate::state::function_key(owner.key(), name);
    state.image_pulls.set(&key, message);
    let stored = match message {
        Some(m) => {
            state
                .store
                .record_pull_failure(owner.key(), name, m, &crate::clock::now_rfc3339())
                .await
        }
        None => state.store.clear_pull_failure(owner.key(), name).await,
    };
    if let Err(e) = stored {
        tracing::warn!("keeping the pull failure of {key} in the store: {e}");
    }
}

fn pull_failure(owner: &Owner, image: &str, e: &ImageError) -> String {
    let fix = match e {
        ImageError::Unauthorized { .. } => {
            format!("{}; the next call pulls again", owner.credentials_fix())
        }
        _ => "check the reference and that the registry is reachable; the next call pulls again"
            .to_string(),
    };
    format!("pulling image '{image}' failed: {e}; {fix}")
}
