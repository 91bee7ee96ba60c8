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

/// A function of a namespace, or a global service (then `namespace` is [`GLOBAL_OWNER`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    /// Its namespace, or [`GLOBAL_OWNER`] for a global service.
    pub namespace: String,
    /// Its name, unique in its namespace (global services: among global services).
    pub name: String,
    /// The function spec as JSON text (the current revision's).
    pub spec: String,
    /// When it was first stored; kept when it is replaced.
    pub created: String,
    /// When its spec (or current revision) last changed.
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
    /// The function's name.
    pub function: String,
    /// Its number: 1 for a function's first, then one above the highest ever stored for it
    /// (numbers are not reused while the function exists, even after old revisions went).
    pub revision: u32,
    /// The spec as JSON text.
    pub spec: String,
    /// The image's manifest digest; `None` until the image is local.
    pub digest: Option<String>,
    /// The table the image name was found in: a namespace, or `None` for the server-wide one.
    pub image_namespace: Option<String>,
    /// How the deploy pulled: `always`, `missing` or `never`.
    pub pull: String,
    /// When it was stored.
    pub created: String,
    /// The name of the token that made it.
    pub created_by: String,
}

/// What a deploy or update stores: the fields of a [`RevisionRecord`] but its owner, function
/// and number.
#[derive(Debug, Clone)]
pub struct NewRevision<'a> {
    /// The spec as JSON text; it becomes the function's spec.
    pub spec: &'a str,
    /// The image's manifest digest, if the image is local already.
    pub digest: Option<&'a str>,
    /// The table the image name was found in (`None`: the server-wide one).
    pub image_namespace: Option<&'a str>,
    /// How the deploy pulled: `always`, `missing` or `never`.
    pub pull: &'a str,
    /// When: the revision's `created` and the function's `updated` (and its `created` if new).
    pub created: &'a str,
    /// The name of the token that made it.
    pub created_by: &'a str,
}

/// The outcome of [`FunctionStore::add_revision`].
#[derive(Debug, Clone)]
pub struct Revised {
    /// The function as stored now, pointing at the new revision.
    pub function: FunctionRecord,
    /// The new revision.
    pub revision: RevisionRecord,
    /// The revision that was current before, if the function existed and had one (read in the
    /// same transaction, before the old revisions were pruned).
    pub previous: Option<RevisionRecord>,
}

/// Functions of namespaces, global services, and the revisions of both. A revision's owner is
/// the function's namespace or [`GLOBAL_OWNER`]; the `owner` arguments take either.
#[async_trait]
pub trait FunctionStore: Send + Sync {
    // --- functions of namespaces ---------------------------------------------------------

    /// Creates or replaces a function's spec (keeping `created` on replace; `now` is `updated`,
    /// and `created` too when new); `NoNamespace` when the namespace does not exist. Leaves the
    /// current revision as it was (`None` for a new function): deploys go through
    /// [`FunctionStore::add_revision`]. Returns the stored record.
    async fn put_function(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord>;

    /// The function `name` of `namespace`; `None` when it does not exist.
    async fn function(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>>;

    /// A namespace's functions, ordered by name (empty for a namespace that does not exist).
    async fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionRecord>>;

    /// Every function of every namespace, ordered by namespace, then name; no global services
    /// (the server builds its pools from this at start).
    async fn all_functions(&self) -> Result<Vec<FunctionRecord>>;

    /// Deletes a function with its revisions, in one transaction. False when the function did
    /// not exist. Its pull failure is the caller's to clear.
    async fn delete_function(&self, namespace: &str, name: &str) -> Result<bool>;

    // --- global services ------------------------------------------------------------------

    /// Creates or replaces a global service's spec (keeping `created` on replace), like
    /// [`FunctionStore::put_function`] but without a namespace to check. The record's
    /// namespace is [`GLOBAL_OWNER`].
    async fn put_global_function(
        &self,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord>;

    /// The global service `name` (namespace [`GLOBAL_OWNER`]); `None` when it does not exist.
    async fn global_function(&self, name: &str) -> Result<Option<FunctionRecord>>;

    /// Every global service, ordered by name.
    async fn list_global_functions(&self) -> Result<Vec<FunctionRecord>>;

    /// Deletes a global service with its revisions, in one transaction. False when it did not
    /// exist.
    async fn delete_global_function(&self, name: &str) -> Result<bool>;

    // --- revisions --------------------------------------------------------------------------

    /// Stores a new revision of `owner/function`, numbered one above the highest so far, and
    /// makes it current (creating the function, or replacing its spec and `updated`), in one
    /// transaction. Then deletes the revisions numbered `new - keep` and below, so the `keep`
    /// newest numbers stay, and the new (current) one always stays even with `keep` 0. Fails
    /// with `NoNamespace` when the owner is a namespace that does not exist; [`GLOBAL_OWNER`]
    /// needs none.
    async fn add_revision(
        &self,
        owner: &str,
        function: &str,
        new: &NewRevision<'_>,
        keep: u32,
    ) -> Result<Revised>;

    /// The kept revisions of `owner/function`, oldest first (by number); empty when none.
    async fn revisions(&self, owner: &str, function: &str) -> Result<Vec<RevisionRecord>>;

    /// One revision of `owner/function`; `None` when it is not kept (or never was).
    async fn revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
    ) -> Result<Option<RevisionRecord>>;

    /// Makes the kept revision `revision` of `owner/function` current again (its spec becomes
    /// the function's, `now` its `updated`), in one transaction. Returns the function as stored
    /// now and the revision. `None` when the function or that revision does not exist; then
    /// nothing changes. No revision is added or deleted.
    async fn make_current(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        now: &str,
    ) -> Result<Option<(FunctionRecord, RevisionRecord)>>;

    /// Pins the image of revision `revision` of `owner/function` to `digest` (found in the
    /// table of `image_namespace`), if it has no digest yet: a pinned digest never changes.
    /// Returns whether it did (false also when the revision does not exist).
    async fn pin_revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        digest: &str,
        image_namespace: Option<&str>,
    ) -> Result<bool>;

    /// Every digest a kept revision (of any owner) pins: image contents the image store keeps
    /// although no name points at them any more.
    async fn revision_digests(&self) -> Result<HashSet<String>>;

    /// Every digest a kept revision pins whose image name was found in the table of
    /// `image_namespace` (`None`: the server-wide one): what a prune of that table keeps.
    async fn digests_pinned_from(&self, image_namespace: Option<&str>) -> Result<HashSet<String>>;

    /// The kept revisions that pin `digest`, ordered by owner, function and revision.
    async fn revisions_pinning(&self, digest: &str) -> Result<Vec<RevisionRecord>>;
}
