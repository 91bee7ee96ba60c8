//! HTTP routes: a namespace's public URLs for its functions and flows. The store keeps each
//! route's spec as JSON text it does not read (credentials in it are hashes already, made by
//! `faasbox_core::routes`); a namespace's routes go with it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// One stored route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRecord {
    /// The namespace it belongs to.
    pub namespace: String,
    /// Its name, unique in its namespace.
    pub name: String,
    /// Its spec, JSON text (opaque to the store).
    pub spec: String,
    /// When it was first stored; kept when it is replaced.
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

/// HTTP routes, their specs as opaque JSON text.
#[async_trait]
pub trait RouteStore: Send + Sync {
    /// Creates or replaces a route (`created` is kept on replace and `record.modified` is
    /// taken as the time); the namespace must exist (`NoNamespace`). Returns it as stored.
    async fn put_route(&self, record: &RouteRecord) -> Result<RouteRecord>;

    /// The route `name` of `namespace`; `None` when there is none.
    async fn route(&self, namespace: &str, name: &str) -> Result<Option<RouteRecord>>;

    /// The routes of a namespace ordered by name (empty for an unknown namespace).
    async fn list_routes(&self, namespace: &str) -> Result<Vec<RouteRecord>>;

    /// Every namespace's routes, ordered by namespace then name (what the gateway serves).
    async fn all_routes(&self) -> Result<Vec<RouteRecord>>;

    /// Deletes a route; whether it existed.
    async fn delete_route(&self, namespace: &str, name: &str) -> Result<bool>;
}
