//! `GET /api/v1/server` (admin token only, by the rules for server-wide paths): what the web
//! UI's server page shows: version, start time and uptime, the driver, and how many
//! namespaces, functions, flows and UI sessions there are.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::error::ApiResult;
use faasbox_core::state::AppState;

/// The server at a glance.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServerInfo {
    pub version: String,
    /// When this server process started (RFC 3339).
    pub started: String,
    pub uptime_seconds: u64,
    /// The driver that runs function instances (`runc`).
    pub driver: String,
    pub namespaces: u64,
    /// Functions of every namespace (global services not counted).
    pub functions: u64,
    pub flows: u64,
    /// Web UI sessions stored now (those expired since the last sign-in included).
    pub sessions: u64,
    /// This server's node id among the servers sharing the store (`GET /api/v1/nodes`).
    pub node: String,
}

pub async fn info(State(state): State<Arc<AppState>>) -> ApiResult<Json<ServerInfo>> {
    let namespaces = state.store.list_namespaces().await?;
    let (mut functions, mut flows) = (0u64, 0u64);
    for ns in &namespaces {
        functions += state.store.list_functions(&ns.name).await?.len() as u64;
        flows += state.store.list_flows(&ns.name).await?.len() as u64;
    }
    let uptime = time::OffsetDateTime::now_utc() - state.started;
    Ok(Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started: faasbox_core::clock::format_rfc3339(state.started),
        uptime_seconds: u64::try_from(uptime.whole_seconds()).unwrap_or(0),
        driver: state.driver.name().to_string(),
        namespaces: namespaces.len() as u64,
        functions,
        flows,
        sessions: state.sessions.count(&*state.store).await?,
        node: state.node.to_string(),
    }))
}
