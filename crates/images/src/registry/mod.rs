//! Pulling images from and pushing them to registries that speak the OCI
//! distribution protocol (Docker Hub, GHCR, Harbor, `registry:2`, ...).
//!
//! # Pull
//!
//! The manifest is resolved (an image index or docker manifest list picks
//! linux on this machine's architecture), then the config and every layer
//! blob are downloaded into `<root>/downloads/` and verified against their
//! digests. The verified blobs are hard-linked into an OCI image layout in
//! `tmp/pull-<uuid>/`, which goes through the very import the OCI-layout
//! import uses (`ingest.rs`): layers are checked
//! against the config's diff IDs, extracted into `tmp/` and renamed into
//! `layers/`, and the name is recorded last. A pull that fails or is
//! interrupted therefore stores no image.
//!
//! # Resume
//!
//! `downloads/<hex>.partial` holds the bytes of a blob received so far;
//! `open` keeps it (only files untouched for [`STALE_DOWNLOAD`](crate::STALE_DOWNLOAD) are
//! pruned). The next pull of that blob hashes the partial file and asks
//! the registry for the rest with an HTTP `Range` request; a registry that
//! answers with the whole blob instead (200) starts it over. A complete
//! download is verified and renamed to `downloads/<hex>`, where it stays
//! until an image using it is imported, so a pull that fails on a later
//! layer does not download the earlier ones again. Blobs already in
//! `blobs/` are never downloaded.
//!
//! # Push
//!
//! Layer blobs and the config are uploaded unless the registry has them
//! (HEAD), then the manifest under the target tag. The manifest is an OCI
//! manifest: the stored one when it is OCI already (so the pushed digest is
//! the local one), else one written for the same config and layers.
//!
//! # Credentials
//!
//! Passwords are handed to the HTTP client and nowhere else: [`RegistryAuth`]
//! does not print it, errors name only the user, and text that comes back
//! from a registry is scrubbed of it before it is put into an error.
//!
//! # Modules
//!
//! `reference` (which registry and repository a reference names), `auth`
//! (credentials, the HTTP client, error translation), `download` (one blob,
//! resumable), `pull`, `push`.

mod auth;
mod download;
mod pull;
mod push;
mod reference;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::ImageError;
use crate::store::ImageStore;
use crate::{ImageRecord, Scope};

/// Credentials for one registry host.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The user name.
    pub username: String,
    /// The password or token; never in a `Debug` or a message.
    pub password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Picks credentials by registry host (`host[:port]`, `docker.io` for
/// Docker Hub); the server asks the namespace's registries first, then the
/// global ones.
pub trait CredentialSource: Send + Sync {
    /// The credentials for `registry_host`; `None` to go anonymous.
    fn credentials(&self, registry_host: &str) -> Option<RegistryAuth>;
}

/// No credentials for any registry: anonymous pulls only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn credentials(&self, _registry_host: &str) -> Option<RegistryAuth> {
        None
    }
}

/// The same credentials for every registry.
impl CredentialSource for RegistryAuth {
    fn credentials(&self, _registry_host: &str) -> Option<RegistryAuth> {
        Some(self.clone())
    }
}

/// Credentials by registry host.
impl CredentialSource for HashMap<String, RegistryAuth> {
    fn credentials(&self, registry_host: &str) -> Option<RegistryAuth> {
        self.get(registry_host).cloned()
    }
}

/// How to talk to registries, and how to record a pulled image.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Registry hosts (`host[:port]`) spoken to over plain HTTP. Loopback
    /// hosts (`127.0.0.0/8`, `localhost`, `[::1]`) always are.
    pub insecure_registries: Vec<String>,
    /// A pull into the server-wide table with global-private credentials:
    /// record the name for global services only.
    pub services_only: bool,
}

/// Progress of a pull or push, for a CLI progress bar. Layers may be
/// transferred concurrently, so events of different layers interleave.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The manifest is known: this many layers of this total blob size.
    Resolved {
        /// How many layers the image has.
        layers: usize,
        /// Their blob sizes added up.
        total_bytes: u64,
    },
    /// A layer transfer begins (also reported for layers that need none).
    LayerStarted {
        /// The layer blob's digest.
        digest: String,
        /// Its size in bytes.
        size: u64,
    },
    /// `done` of `size` bytes of a layer are transferred (resumed bytes
    /// count as done).
    Bytes {
        /// The layer blob's digest.
        digest: String,
        /// Bytes transferred so far.
        done: u64,
        /// The blob's size.
        size: u64,
    },
    /// A layer is complete.
    LayerDone {
        /// The layer blob's digest.
        digest: String,
    },
    /// The image is stored (pull) or its manifest is pushed (push).
    Done,
}

impl ImageStore {
    /// Pulls `reference` (`[host[:port]/]repo[:tag][@sha256:…]`; no host
    /// means Docker Hub) and stores it in `scope`'s table under the reference
    /// as [`normalize_reference`](crate::normalize_reference) writes it,
    /// replacing any image of that name there. The manifest is always
    /// fetched from the registry with `creds`, also when every blob is local
    /// already, so a pull shows that these credentials may read the image.
    ///
    /// Takes `self: &Arc<Self>` because the import runs in
    /// `spawn_blocking`. Must run inside a tokio runtime.
    pub async fn pull(
        self: &Arc<Self>,
        scope: &Scope,
        reference: &str,
        creds: &dyn CredentialSource,
        options: &PullOptions,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<ImageRecord, ImageError> {
        pull::pull(self, scope, reference, creds, options, None, progress).await
    }

    /// [`pull`](Self::pull), but the image is stored under `name` (normalised) instead of the
    /// reference: a cluster's servers pull `<registry>/…@<digest>` into the name the image has
    /// in the cluster's catalog.
    pub async fn pull_as(
        self: &Arc<Self>,
        scope: &Scope,
        reference: &str,
        name: &str,
        creds: &dyn CredentialSource,
        options: &PullOptions,
    ) -> Result<ImageRecord, ImageError> {
        pull::pull(self, scope, reference, creds, options, Some(name), &|_| {}).await
    }

    /// Pushes the image `local_name` (name or manifest digest) of `scope`'s
    /// table to `target` (`host[:port]/repo[:tag]`); returns the digest of
    /// the pushed manifest.
    pub async fn push(
        self: &Arc<Self>,
        scope: &Scope,
        local_name: &str,
        target: &str,
        creds: &dyn CredentialSource,
        options: &PullOptions,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<String, ImageError> {
        push::push(self, scope, local_name, target, creds, options, progress).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let auth = RegistryAuth {
            username: "admin".into(),
            password: "8QwFLg%D$qg*".into(),
        };
        let shown = format!("{auth:?} {:?}", Some(auth.clone()));
        assert!(shown.contains("admin"), "{shown}");
        assert!(!shown.contains("8QwFLg"), "{shown}");
    }

    fn assert_send<T: Send>(_: &T) {}

    #[allow(dead_code)]
    fn pull_and_push_futures_are_send(store: Arc<ImageStore>) {
        let progress = |_: Progress| {};
        let options = PullOptions::default();
        let pull = store.pull(&Scope::Global, "x", &NoCredentials, &options, &progress);
        assert_send(&pull);
        let push = store.push(
            &Scope::Global,
            "x",
            "y",
            &NoCredentials,
            &options,
            &progress,
        );
        assert_send(&push);
    }
}
