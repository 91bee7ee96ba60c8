//! API tokens: only a token's SHA-256 hash is stored, with its id, name, namespace (none for
//! server-wide admin tokens) and role. A namespace's tokens go with it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// One API token, without the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    /// `None` for a server-wide admin token.
    pub namespace: Option<String>,
    /// `admin` or `invoke`.
    pub role: String,
    /// Hex SHA-256 of the token.
    #[serde(skip_serializing)]
    pub hash: String,
    pub created: String,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a token; fails with `NoNamespace` when its namespace does not exist.
    async fn insert_token(&self, record: &TokenRecord) -> Result<()>;

    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Deletes a token by id; whether it existed.
    async fn delete_token(&self, id: &str) -> Result<bool>;
}
