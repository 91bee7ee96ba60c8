//! The servers sharing one store (nodes): each registers at start, beats while it runs, and
//! leaves when it stops; a server whose heartbeat is older than the lease is declared dead by
//! exactly one other server, which then takes its work over. Heartbeat times are the
//! database's clock (in milliseconds), never the servers' own, so servers with skewed clocks
//! still judge each other alike.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A node is serving and beating.
pub const NODE_UP: &str = "up";
/// A node stopped gracefully (its work was handed back first).
pub const NODE_LEFT: &str = "left";
/// A node missed its lease and its work was taken over (`taken_by` names the taker).
pub const NODE_DEAD: &str = "dead";

/// A server joining (or rejoining) the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    /// Its node id.
    pub id: String,
    /// The API URL it advertises.
    pub addr: String,
    /// Its faasbox version.
    pub version: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// What it can run, JSON text (opaque to the store).
    pub capacity: String,
}

/// What a node reports with each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLoad {
    /// What it can run, JSON text (opaque to the store).
    pub capacity: String,
    /// Its function instances running now.
    pub instances: u64,
    /// Its asynchronous runs in flight now.
    pub runs: u64,
}

/// One stored node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its node id.
    pub id: String,
    /// The API URL it advertises.
    pub addr: String,
    /// Its faasbox version.
    pub version: String,
    /// When it (last) started.
    pub started: String,
    /// Its last heartbeat, by the database's clock (ms since the epoch).
    pub heartbeat_ms: i64,
    /// [`NODE_UP`], [`NODE_LEFT`] or [`NODE_DEAD`].
    pub state: String,
    /// The node that declared it dead, if one did.
    pub taken_by: Option<String>,
    /// What it can run, JSON text.
    pub capacity: String,
    /// Its instances at the last heartbeat.
    pub instances: u64,
    /// Its runs in flight at the last heartbeat.
    pub runs: u64,
}

/// The nodes and the database's clock when they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeList {
    /// Every node ever registered, by id.
    pub nodes: Vec<NodeRecord>,
    /// The database's clock (ms since the epoch): a heartbeat's age is `now_ms - heartbeat_ms`.
    pub now_ms: i64,
}

/// The nodes (servers) sharing this store.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Registers `node` as up with a heartbeat now (a new row, or the same id starting again:
    /// address, version, start and capacity replaced, `taken_by` cleared). Returns the state
    /// it had before (`None`: it is new), so a restarted server knows whether its old work
    /// was taken over (`dead`) or is still its own (`up`, `left`).
    async fn register_node(&self, node: &NewNode) -> Result<Option<String>>;

    /// Records a heartbeat of node `id` (now, with `load`) if it is still up; `false` when it
    /// is not (declared dead by another meanwhile, or never registered): its work is no
    /// longer its own.
    async fn heartbeat(&self, id: &str, load: &NodeLoad) -> Result<bool>;

    /// Every node, by id, with the database's clock.
    async fn nodes(&self) -> Result<NodeList>;

    /// Declares dead every node other than `me` that is up with a heartbeat older than
    /// `lease_ms`, with `taken_by = me`, and returns their ids. Of several servers doing this
    /// at once, each dead node goes to exactly one.
    async fn take_over_dead(&self, me: &str, lease_ms: i64) -> Result<Vec<String>>;

    /// Marks node `id` as left (a graceful stop, after its work was handed back).
    async fn leave(&self, id: &str) -> Result<()>;
}
