//! API tokens: only a token's SHA-256 hash is stored, with its id, name, namespace (none for
//! server-wide admin tokens) and role. A namespace's tokens go with it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// One API token, without the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Its id (unique; chosen by the server), for listing and deleting.
    pub id: String,
    /// The name its creator gave it (revisions record it as `created_by`).
    pub name: String,
    /// `None` for a server-wide admin token.
    pub namespace: Option<String>,
    /// `admin` or `invoke`.
    pub role: String,
    /// Hex SHA-256 of the token; unique in the store (the server finds a token by it).
    #[serde(skip_serializing)]
    pub hash: String,
    /// When it was created.
    pub created: String,
}

/// Stores, lists and deletes API tokens. A namespace's tokens are deleted with the namespace.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a token; fails with `NoNamespace` when its namespace (if it has one) does not
    /// exist. A second token with the same id or hash is a backend error.
    async fn insert_token(&self, record: &TokenRecord) -> Result<()>;

    /// Every token, oldest first (by `created`, then by id).
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Inserts `record` (an admin token: no namespace) only if there is no admin token yet;
    /// `false` when there was one. Of several servers starting at once on an empty store,
    /// exactly one inserts its token.
    async fn insert_first_admin(&self, record: &TokenRecord) -> Result<bool>;

    /// Deletes a token by id; whether it existed.
    async fn delete_token(&self, id: &str) -> Result<bool>;

    /// The token whose hash is `hash`, if one is stored (an indexed look-up: hashes are
    /// unique).
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>>;
}
