//! `GET /api/v1/nodes` (admin token only, by the rules for server-wide paths): the servers
//! sharing this store, with their address, version, state, last heartbeat, capacity and load,
//! as `faasbox nodes` shows them. With SQLite there is one: this server.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::error::ApiResult;
use faasbox_core::state::AppState;

/// One server sharing the store.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NodeView {
    /// Its node id (`<data-dir>/node.id`).
    pub id: String,
    /// The API address it advertises.
    pub addr: String,
    pub version: String,
    /// When it (last) started (RFC 3339).
    pub started: String,
    /// `up`, `left` (stopped gracefully) or `dead` (missed its heartbeats; `taken_by` took
    /// its work over).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_by: Option<String>,
    /// Its last heartbeat (RFC 3339, by the database's clock).
    pub last_heartbeat: String,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub heartbeat_age_ms: i64,
    /// What it can run: cores, memory_bytes, runs_in_flight.
    #[schema(value_type = Object)]
    pub capacity: serde_json::Value,
    /// Its function instances at the last heartbeat.
    pub instances: u64,
    /// Its asynchronous runs in flight at the last heartbeat.
    pub runs: u64,
    /// Whether it is the server that answers this request.
    pub this: bool,
}

/// The servers sharing the store and the lease after which a silent one is declared dead.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NodesView {
    pub nodes: Vec<NodeView>,
    /// Seconds without a heartbeat after which a server is declared dead and its work taken
    /// over (this server's `--cluster-lease-seconds`).
    pub lease_seconds: u64,
}

pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult<Json<NodesView>> {
    let list = state.store.nodes().await?;
    let nodes = list
        .nodes
        .into_iter()
        .map(|node| NodeView {
            this: node.id == state.node.as_str(),
            last_heartbeat: heartbeat_time(node.heartbeat_ms),
            heartbeat_age_ms: (list.now_ms - node.heartbeat_ms).max(0),
            capacity: serde_json::from_str(&node.capacity).unwrap_or(serde_json::Value::Null),
            id: node.id,
            addr: node.addr,
            version: node.version,
            started: node.started,
            state: node.state,
            taken_by: node.taken_by,
            instances: node.instances,
            runs: node.runs,
        })
        .collect();
    Ok(Json(NodesView {
        nodes,
        lease_seconds: state.cluster.lease.as_secs(),
    }))
}

/// A heartbeat's time (ms since the epoch) as RFC 3339.
fn heartbeat_time(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(faasbox_core::clock::format_rfc3339)
        .unwrap_or_default()
}
