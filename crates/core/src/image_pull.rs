//! Pulling a function's image into its owner's image table (a namespace's own, or the
//! server-wide one for a global service), at deploy and again at a call while it is still not
//! local, with the credentials stored at that moment (so a registry added after a failed
//! deploy works without redeploying). One pull per table and image at a time; the last failure
//! per function is kept for `GET …/functions/{fn}`, in memory and in the store (so it is still
//! there after a restart).

use std::sync::Arc;

use faasbox_images::{ImageError, ImageRecord, PullOptions};
use faasbox_secrets::RegistryScope;

use crate::failure::{Failure, FailureKind};
use crate::owner::Owner;
use crate::state::AppState;

pub use crate::image_book::{names_a_registry, ImagePulls, ImageState, IMAGE_MISSING};
pub use crate::registry_credentials::{CredentialScope, VaultCredentials};

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
    let creds = VaultCredentials::load(&state.vault, &owner.into()).await;
    let options = PullOptions {
        services_only: *owner == Owner::Global && uses_private_credentials(state, image).await,
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
            // The other servers of a cluster pull the registry's reference themselves too;
            // sharing only spares them that (so a failure here does not fail the deploy).
            if let Err(e) = crate::shared_images::share(state, &scope, &record.name).await {
                tracing::warn!("{}", e.message);
            }
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
async fn uses_private_credentials(state: &AppState, image: &str) -> bool {
    let Some((host, _)) = image.split_once('/') else {
        return false;
    };
    match state
        .vault
        .registry_credentials(&RegistryScope::GlobalPrivate, host)
        .await
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

#[cfg(test)]
mod tests {
    use faasbox_secrets::MasterKey;
    use faasbox_store_sqlite::SqliteStore;

    use super::*;
    use faasbox_images::CredentialSource;
    use faasbox_secrets::Vault;

    /// The user a transfer with `creds` would log in to `host` as.
    fn user(creds: &VaultCredentials, host: &str) -> Option<String> {
        creds.credentials(host).map(|auth| auth.username)
    }

    #[tokio::test]
    async fn credentials_are_read_before_the_transfer_with_the_owners_precedence() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create_namespace("demo", "t").unwrap();
        let vault = Vault::new(MasterKey::generate().unwrap(), Arc::new(store));
        let demo = RegistryScope::Namespace("demo".into());
        for (scope, url, username) in [
            (demo.clone(), "ghcr.io", "demo-user"),
            (RegistryScope::Global, "https://ghcr.io/v2/", "global-user"),
            (
                RegistryScope::Global,
                "https://index.docker.io/v1/",
                "hub-user",
            ),
            (RegistryScope::GlobalPrivate, "GHCR.io", "private-user"),
        ] {
            vault
                .put_registry(scope, url, username, "pw")
                .await
                .unwrap();
        }

        let of_demo =
            VaultCredentials::load(&vault, &CredentialScope::Namespace("demo".into())).await;
        assert_eq!(user(&of_demo, "ghcr.io").as_deref(), Some("demo-user"));
        // Docker Hub's hosts are one registry; the global scope stands in for the namespace.
        assert_eq!(
            user(&of_demo, "registry-1.docker.io").as_deref(),
            Some("hub-user")
        );
        assert_eq!(user(&of_demo, "quay.io"), None);

        let of_other =
            VaultCredentials::load(&vault, &CredentialScope::Namespace("other".into())).await;
        assert_eq!(user(&of_other, "ghcr.io").as_deref(), Some("global-user"));

        let of_service = VaultCredentials::load(&vault, &CredentialScope::GlobalService).await;
        assert_eq!(
            user(&of_service, "ghcr.io").as_deref(),
            Some("private-user")
        );
        assert_eq!(user(&of_service, "docker.io").as_deref(), Some("hub-user"));

        let global = VaultCredentials::load(&vault, &CredentialScope::Global).await;
        assert_eq!(user(&global, "ghcr.io").as_deref(), Some("global-user"));

        // Read once: a registry deleted afterwards is still used by this transfer.
        vault.delete_registry(&demo, "ghcr.io").await.unwrap();
        assert_eq!(user(&of_demo, "ghcr.io").as_deref(), Some("demo-user"));
    }
}
