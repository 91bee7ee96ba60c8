//! Service instances: a namespace's named bundles of parameters a function can be bound to
//! (Dispatch's service bindings). The plain `params` are kept in clear; each secret parameter
//! arrives already encrypted (by `faasbox-secrets`, under the namespace's data key) and leaves
//! as the same opaque blob. A namespace's services go with it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// One stored service instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The namespace it belongs to.
    pub namespace: String,
    /// Its name, unique in its namespace.
    pub name: String,
    /// Its non-secret parameters, in clear.
    pub params: BTreeMap<String, String>,
    /// Its secret parameters, each encrypted with the namespace's data key: opaque to the
    /// store.
    pub secret_params: BTreeMap<String, Vec<u8>>,
    /// When it was first stored; kept when it is replaced.
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

/// Service instances, their secret parameters as opaque blobs.
#[async_trait]
pub trait ServiceStore: Send + Sync {
    /// Creates or replaces a service (all its parameters; `created` is kept on replace and
    /// `record.modified` is taken as the time), in one transaction with the checks: the
    /// namespace must exist (`NoNamespace`) and, when there are secret parameters, have a data
    /// key (`NoDataKey`). Returns the service as stored.
    async fn put_service(&self, record: &ServiceRecord) -> Result<ServiceRecord>;

    /// The service `name` of `namespace`; `None` when there is none.
    async fn service(&self, namespace: &str, name: &str) -> Result<Option<ServiceRecord>>;

    /// The services of a namespace ordered by name (empty for an unknown namespace).
    async fn list_services(&self, namespace: &str) -> Result<Vec<ServiceRecord>>;

    /// Deletes a service; whether it existed.
    async fn delete_service(&self, namespace: &str, name: &str) -> Result<bool>;
}
