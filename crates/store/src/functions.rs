//! Functions of namespaces and global services (functions an admin deploys once for every
//! namespace, handed out as records of the pseudo-namespace [`GLOBAL_OWNER`]), and their
//! revisions: every deploy or update stores the whole spec with the image's pinned manifest
//! digest, numbered per function, and the function points at the current one. A rollback
//! points it at an older one; the newest revisions (and always the current one) are kept.

use std::collections::HashSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The owner of global services where a namespace would be (no real namespace starts with `*`).
pub const GLOBAL_OWNER: &str = "*global";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub namespace: String,
    pub name: String,
    /// The function spec as JSON text (the current revision's).
    pub spec: String,
    pub created: String,
    pub updated: String,
    /// The current revision; `None` for a function stored before revisions existed (it
    /// gets revision 1 at the server's next start).
    pub revision: Option<u32>,
}

/// One stored revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRecord {
    /// The function's namespace, or [`GLOBAL_OWNER`] for a global service.
    pub owner: String,
    pub function: String,
    pub revision: u32,
    /// The spec as JSON text.
    pub spec: String,
    /// The image's manifest digest; `None` until the image is local.
    pub digest: Option<String>,
    /// The table the image name was found in: a namespace, or `None` for the server-wide one.
    pub image_namespace: Option<String>,
    /// How the deploy pulled: `always`, `missing` or `never`.
    pub pull: String,
    pub created: String,
    /// The name of the token that made it.
    pub created_by: String,
}

/// What a deploy or update stores.
#[derive(Debug, Clone)]
pub struct NewRevision<'a> {
    pub spec: &'a str,
    pub digest: Option<&'a str>,
    pub image_namespace: Option<&'a str>,
    pub pull: &'a str,
    pub created: &'a str,
    pub created_by: &'a str,
}

/// The outcome of [`FunctionStore::add_revision`].
#[derive(Debug, Clone)]
pub struct Revised {
    pub function: FunctionRecord,
    pub revision: RevisionRecord,
    /// The revision that was current before, if the function existed.
    pub previous: Option<RevisionRecord>,
}

#[async_trait]
pub trait FunctionStore: Send + Sync {
    // --- functions of namespaces ---------------------------------------------------------

    /// Creates or replaces a function's spec (keeping `created` on replace); `NoNamespace`
    /// when the namespace does not exist. Returns the stored record.
    async fn put_function(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord>;

    async fn function(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>>;

    /// A namespace's functions, by name.
    async fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionRecord>>;

    /// Every function of every namespace, by namespace and name (the server builds its pools
    /// from this at start).
    async fn all_functions(&self) -> Result<Vec<FunctionRecord>>;

    /// Deletes a function with its revisions, in one transaction. False when absent.
    async fn delete_function(&self, namespace: &str, name: &str) -> Result<bool>;

    // --- global services ------------------------------------------------------------------

    /// Creates or replaces a global service's spec (keeping `created` on replace).
    async fn put_global_function(
        &self,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord>;

    async fn global_function(&self, name: &str) -> Result<Option<FunctionRecord>>;

    /// Every global service, by name.
    async fn list_global_functions(&self) -> Result<Vec<FunctionRecord>>;

    /// Deletes a global service with its revisions, in one transaction. False when absent.
    async fn delete_global_function(&self, name: &str) -> Result<bool>;

    // --- revisions --------------------------------------------------------------------------

    /// Stores a new revision of `owner/function`, numbered one above the highest so far, and
    /// makes it current (creating the function), in one transaction. Keeps the `keep` newest
    /// revisions and the current one. Fails with `NoNamespace` when the owner is a namespace
    /// that does not exist.
    async fn add_revision(
        &self,
        owner: &str,
        function: &str,
        new: &NewRevision<'_>,
        keep: u32,
    ) -> Result<Revised>;

    /// The kept revisions of `owner/function`, oldest first.
    async fn revisions(&self, owner: &str, function: &str) -> Result<Vec<RevisionRecord>>;

    /// One revision of `owner/function`.
    async fn revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
    ) -> Result<Option<RevisionRecord>>;

    /// Makes the kept revision `revision` of `owner/function` current again (its spec becomes
    /// the function's), in one transaction. `None` when the function or that revision does
    /// not exist.
    async fn make_current(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        now: &str,
    ) -> Result<Option<(FunctionRecord, RevisionRecord)>>;

    /// Pins the image of revision `revision` of `owner/function` to `digest` (found in the
    /// table of `image_namespace`), if it has no digest yet. Returns whether it did.
    async fn pin_revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        digest: &str,
        image_namespace: Option<&str>,
    ) -> Result<bool>;

    /// Every digest a kept revision pins.
    async fn revision_digests(&self) -> Result<HashSet<String>>;

    /// Every digest a kept revision pins whose image name was found in the table of
    /// `image_namespace` (`None`: the server-wide one).
    async fn digests_pinned_from(&self, image_namespace: Option<&str>) -> Result<HashSet<String>>;

    /// The kept revisions that pin `digest`, by owner, function and revision.
    async fn revisions_pinning(&self, digest: &str) -> Result<Vec<RevisionRecord>>;
}
