//! Namespaces: the record and the trait that creates, finds and deletes them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub name: String,
    pub created: String,
}

#[async_trait]
pub trait NamespaceStore: Send + Sync {
    /// Creates a namespace; `NamespaceExists` when one of that name exists.
    async fn create_namespace(&self, name: &str, created: &str) -> Result<NamespaceRecord>;

    async fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>>;

    /// Every namespace, by name.
    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>>;

    /// Deletes the namespace with its functions and their revisions, invocations, logs, image
    /// pull failures, secrets, registry credentials, data key, flows (instances, their logs,
    /// states and calls, variables), events, listeners, deliveries, schedules and delayed events,
    /// in one transaction. False when absent.
    async fn delete_namespace(&self, name: &str) -> Result<bool>;
}
