//! The changes feed: what one server changed that the others keep in memory (tokens,
//! functions in service, routes, deleted namespaces). Each change is a numbered row
//! (`seq`, its kind, the key of what changed, when); a server reads the rows after the last
//! seq it applied and updates its caches. Seqs grow in the order changes become visible, so a
//! reader that saw seq `n` never later finds a new row below `n`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// One published change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Its number; later changes have larger ones (gaps are allowed).
    pub seq: i64,
    /// What kind of thing changed (`token`, `function`, `route`, `namespace`, …; the server
    /// names them, the store keeps them verbatim).
    pub kind: String,
    /// Which one (a function's `owner/name`, a namespace, …; may be empty).
    pub key: String,
    /// When it was published, ms since the epoch (the database's clock where it has one).
    pub at_ms: i64,
}

/// Publishes and reads changes.
#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// Publishes a change; returns its seq.
    async fn publish_change(&self, kind: &str, key: &str) -> Result<i64>;

    /// At most `limit` changes with a seq above `after`, in seq order.
    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<ChangeRecord>>;

    /// The newest change's seq (0 when there is none): where a reader that starts now begins.
    async fn newest_change(&self) -> Result<i64>;

    /// Deletes the changes published before `before_ms` (ms since the epoch), except the
    /// newest one (so [`newest_change`](Self::newest_change) never goes back); how many.
    async fn purge_changes(&self, before_ms: i64) -> Result<u64>;
}
