//! faasbox's local, content-addressed OCI image store.
//!
//! An [`ImageStore`] owns one directory and imports images from files — a
//! `docker save` archive, an OCI image layout (tar or directory), or a plain
//! root filesystem tarball — or pulls them from a registry, extracting every
//! layer once into a directory that the runtime stacks with overlayfs. It
//! also pushes stored images to registries, and makes new images from stored ones by
//! appending a layer ([`ImageStore::append_layer`], with [`code_layer`] to turn source code
//! into such a layer). The import calls block (the
//! server runs them in `spawn_blocking`); [`ImageStore::pull`] and
//! [`ImageStore::push`] are async and need a tokio runtime.
//!
//! # Store layout
//!
//! The store's directories are 0700 and the files it writes 0600 (see `private.rs`); only
//! extracted layers keep the modes their image gives them.
//!
//! ```text
//! <root>/
//!   images.json             the name tables (server-wide, and one per namespace: name →
//!                           manifest digest) and the image contents by manifest digest
//!                           (run config, layers); rewritten atomically (tmp file + fsync
//!                           + rename)
//!   blobs/sha256/<hex>      raw blobs: manifests, configs and layer blobs exactly as
//!                           received (compressed or not), named by their verified digest
//!   layers/<diff-id-hex>/   one extracted layer, in overlayfs form (whiteouts are 0:0
//!                           character devices, opaque directories carry
//!                           `trusted.overlay.opaque=y`); used as an overlayfs lowerdir
//!                           and shared by every image that has that layer
//!   tmp/                    scratch space of running imports and pulls; emptied by `open`
//!   downloads/              registry downloads: `<hex>.partial` (unverified, resumable)
//!                           and `<hex>` (verified, until its image is imported); kept
//!                           by `open`, which prunes only week-old files
//! ```
//!
//! # Names, scopes and contents
//!
//! Every name lives in one [`Scope`]: the server-wide table or one namespace's
//! table, so the same name in two namespaces is two images and no namespace
//! can change what another's name means. A name points at a manifest digest;
//! the image *content* (run config and layers) is kept once per digest and
//! shared. Content stays while a name points at it, while something holds it
//! ([`ImageStore::hold`]: a running function), or while the owner of the store
//! says it is in use ([`ImageStore::open_with`]: a pinned deploy), so a tag
//! that moves does not take the old digest away from a function that pinned
//! it. Blobs and layers stay while a kept content refers to them.
//!
//! # Crash safety
//!
//! An import writes only inside its own `tmp/<uuid>/` until each piece is
//! complete: blobs are verified and then linked or renamed into `blobs/`,
//! layers are extracted into `tmp/` and renamed into `layers/`, and the name
//! is recorded in `images.json` last. Anything a crash leaves behind is either
//! in `tmp/` (removed by [`ImageStore::open`]) or an unreferenced blob or layer
//! (garbage-collected by `open`). Layer contents are not fsynced file by file;
//! only `images.json` is, so a power loss in the middle of an import can
//! at worst lose that import.
//!
//! One `ImageStore` per root directory per process: `open` clears `tmp/`,
//! which would disturb another store importing into the same root.
//!
//! # Verification
//!
//! Every blob that arrives with a digest (OCI layouts, docker 25+ archives)
//! is checked against it; every layer is checked against the diff ID its
//! image config lists — also when that layer is already extracted, so an
//! image cannot borrow another image's layer by naming its diff ID.
//!
//! # Modules
//!
//! `store` (the API, name tables, holds; with `downloads`, the locks and pruning of
//! `downloads/`) is at the bottom and knows nothing of imports or registries; `gc` (garbage
//! collection) works on it. `ingest` (storing a plan: verified blobs, extracted layers, the
//! name last) is on top of it and shared by `import` (files, read into a plan by
//! `formats::{docker, oci, rootfs}`) and `registry` (pulls into an OCI layout in `tmp/`, then
//! the same ingest; pushes over the OCI distribution protocol), which do not use each other.
//! `append` ([`ImageStore::append_layer`]: a held image's content plus one more layer, e.g. a
//! function's code or a dependency install's changes) plans on top of `ingest` as well, and
//! `code_layer` ([`code_layer`]: source code re-packed as a canonical layer tar) stands
//! alone. Beside them: `archive` (outer archive detection and extraction), `extract` (safe layer
//! extraction), `config` and `manifest` (JSON documents), `index` (`images.json`), `scope`,
//! `reference`, `digest`, `compress`, `paths`, `copy`, `private`, `remove`.
//!
//! # Layer extraction rules
//!
//! Enforced by the crate-private `extract` module: entry paths are
//! normalised and may not contain `..`; nothing is ever written through a
//! symlink; hard links must point inside the layer; device nodes are refused,
//! but skipped (and counted in the import's notes) under `/dev`;
//! setuid/setgid bits on files are dropped; extended attributes from the
//! archive are not applied. Files get the owners the layer gives them when the
//! process runs as root; a store opened by another user keeps them as its own.

mod append;
mod archive;
mod code_layer;
mod compress;
mod config;
mod copy;
mod digest;
mod downloads;
mod error;
mod extract;
mod formats;
mod gc;
mod import;
mod index;
mod ingest;
mod manifest;
mod paths;
mod private;
mod reference;
mod registry;
mod remove;
mod scope;
mod store;

pub use code_layer::{code_layer, CodeLayer, MAX_CODE_ENTRIES, MAX_CODE_PATH};
pub use config::ConfigChanges;
pub use downloads::STALE_DOWNLOAD;
pub use error::ImageError;
pub use extract::ImportLimits;
pub use reference::normalize_reference;
pub use registry::{CredentialSource, NoCredentials, Progress, PullOptions, RegistryAuth};
pub use scope::Scope;
pub use store::{Freed, ImageHold, ImageStore, InUse, Pruned};

use serde::{Deserialize, Serialize};

/// The run configuration of a root filesystem tarball, which carries none of
/// its own (like `docker import --change`). Ignored for docker archives and
/// OCI layouts, whose image config already says how to run them.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// The program and its first arguments.
    pub entrypoint: Vec<String>,
    /// Arguments after the entrypoint (the program itself when there is none).
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// The working directory; `/` when absent.
    pub workdir: Option<String>,
    /// The user to run as (`name`, `uid`, `uid:gid`); root when absent.
    pub user: Option<String>,
}

/// One named image in the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ImageRecord {
    /// The namespace whose table holds the name; `None` for the server-wide table.
    pub namespace: Option<String>,
    /// The normalised reference, e.g. `demo/echo:latest`.
    pub name: String,
    /// `sha256:<hex>` of the image manifest (an OCI manifest synthesised by
    /// faasbox for docker archives and root filesystem tarballs).
    pub digest: String,
    /// How to run it.
    pub config: RunConfig,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Sum of the layer blob sizes, in bytes.
    pub size: u64,
    /// RFC 3339 time of the import.
    pub created: String,
    /// A server-wide image pulled with global-private credentials: only global services use
    /// it (a namespace's reference does not find it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub services_only: bool,
    /// What the import that answers with this record did that its caller should know (device
    /// nodes skipped under `/dev`); empty, and absent from JSON, anywhere else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ImageRecord {
    /// The table the name is in.
    pub fn scope(&self) -> Scope {
        Scope::of(self.namespace.as_deref())
    }
}

/// An image's content, by manifest digest, whatever names point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageContent {
    /// `sha256:<hex>` of the image manifest.
    pub digest: String,
    /// How to run it.
    pub config: RunConfig,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Sum of the layer blob sizes, in bytes.
    pub size: u64,
}

/// How to run an image, taken from its image config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RunConfig {
    /// The program and its first arguments.
    pub entrypoint: Vec<String>,
    /// Arguments after the entrypoint (the program itself when there is none).
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries, as in the image config. No default `PATH` is added.
    pub env: Vec<String>,
    /// Working directory; `""` when the image does not set one.
    pub workdir: String,
    /// User (`name`, `uid`, `uid:gid`, ...); `""` when the image does not set one.
    pub user: String,
}

/// One layer of an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the layer blob as stored (possibly compressed).
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed layer tar.
    pub diff_id: String,
    /// Size of the layer blob in bytes.
    pub size: u64,
}
