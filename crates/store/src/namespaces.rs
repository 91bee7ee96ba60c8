//! Namespaces: the record and the trait that creates, finds and deletes them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A namespace: the unit that owns functions, flows, events, secrets and tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    /// Its name, unique in the store (the server validates it; it never starts with `*`).
    pub name: String,
    /// When it was created.
    pub created: String,
}

/// Creates, finds, lists and deletes namespaces.
#[async_trait]
pub trait NamespaceStore: Send + Sync {
    /// Creates a namespace and returns it; `NamespaceExists` when one of that name exists
    /// (then nothing changes). The check and the insert are atomic: of two callers racing for
    /// one name, exactly one succeeds.
    async fn create_namespace(&self, name: &str, created: &str) -> Result<NamespaceRecord>;

    /// The namespace `name`; `None` when it does not exist.
    async fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>>;

    /// Every namespace, ordered by name.
    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>>;

    /// Deletes the namespace with its functions and their revisions, invocations, logs, image
    /// pull failures, secrets, registry credentials, data key, flows (instances, their logs,
    /// states and calls, variables), events, listeners, deliveries, schedules and delayed events,
    /// and its namespace tokens, in one transaction. Only rows of `name` go: rows of
    /// pseudo-namespaces (`*…`: global services' revisions and pull failures, global registry
    /// credentials and data keys) stay. False when the namespace did not exist. A namespace
    /// created again under the same name starts empty.
    async fn delete_namespace(&self, name: &str) -> Result<bool>;
}
