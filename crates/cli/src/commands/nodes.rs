//! `faasbox nodes`: the servers sharing the store, with their state, last heartbeat,
//! capacity and load (`GET /api/v1/nodes`).

use serde_json::Value;

use crate::cli::OutputFormat;
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{print, Table};

pub async fn run(client: &Client, format: OutputFormat) -> anyhow::Result<()> {
    let view: Value = client.get("/api/v1/nodes").await?;
    let empty = Vec::new();
    let nodes = view["nodes"].as_array().unwrap_or(&empty);
    print(format, &view, || {
        Table::new(vec![
            "NODE",
            "STATE",
            "ADDRESS",
            "HEARTBEAT",
            "CORES",
            "MEMORY",
            "INSTANCES",
            "RUNS",
            "VERSION",
        ])
        .rows(nodes.iter().map(|node| {
            let mut id = text(&node["id"]);
            if node["this"].as_bool() == Some(true) {
                id.push_str(" (this)");
            }
            let state = match node["taken_by"].as_str() {
                Some(taker) => format!("{} (taken over by {taker})", text(&node["state"])),
                None => text(&node["state"]),
            };
            vec![
                id,
                state,
                text(&node["addr"]),
                age(&node["heartbeat_age_ms"]),
                text(&node["capacity"]["cores"]),
                memory(&node["capacity"]["memory_bytes"]),
                text(&node["instances"]),
                text(&node["runs"]),
                text(&node["version"]),
            ]
        }))
    });
    Ok(())
}

/// A heartbeat's age, as "3s ago".
fn age(ms: &Value) -> String {
    match ms.as_i64() {
        Some(ms) if ms < 120_000 => format!("{}s ago", ms / 1000),
        Some(ms) if ms < 7_200_000 => format!("{}m ago", ms / 60_000),
        Some(ms) => format!("{}h ago", ms / 3_600_000),
        None => "-".to_string(),
    }
}

/// Memory in GiB (one decimal).
fn memory(bytes: &Value) -> String {
    match bytes.as_u64() {
        Some(bytes) => format!("{:.1}GiB", bytes as f64 / (1u64 << 30) as f64),
        None => "-".to_string(),
    }
}
