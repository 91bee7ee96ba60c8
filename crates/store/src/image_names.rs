//! The cluster's image catalog: which image (by manifest digest) each name of each scope
//! (a namespace, or [`crate::GLOBAL_OWNER`] for the server-wide names) points to. With a
//! cluster registry configured, the catalog is the truth about image names across servers:
//! each server's local image store follows it, pulling the content from the registry by
//! digest. Without one, nothing writes it.

use async_trait::async_trait;

use crate::Result;

/// One name of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNameRecord {
    /// The namespace whose name table holds the name, or [`crate::GLOBAL_OWNER`].
    pub owner: String,
    /// The image's name with its tag (`repo:tag`), as in the local name tables.
    pub name: String,
    /// The manifest digest (`sha256:…`) the name points to.
    pub digest: String,
    /// When the name was last given (the caller's RFC 3339 text).
    pub updated: String,
}

/// The shared image catalog. A namespace's names go with the namespace
/// ([`crate::NamespaceStore::delete_namespace`]); [`crate::GLOBAL_OWNER`]'s stay.
#[async_trait]
pub trait ImageCatalogStore: Send + Sync {
    /// Gives `owner`'s name `name` to `digest` (replacing what it pointed to); `now` is when.
    /// The owner is not checked.
    async fn put_image_name(&self, owner: &str, name: &str, digest: &str, now: &str) -> Result<()>;

    /// Removes `owner`'s name `name`; false when it was not there.
    async fn delete_image_name(&self, owner: &str, name: &str) -> Result<bool>;

    /// `owner`'s name `name`, if the catalog has it.
    async fn image_name(&self, owner: &str, name: &str) -> Result<Option<ImageNameRecord>>;

    /// The names of `owner` (every owner's when `None`), ordered by owner, then name.
    async fn image_names(&self, owner: Option<&str>) -> Result<Vec<ImageNameRecord>>;
}
