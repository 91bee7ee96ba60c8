//! The nodes table on SQLite. One SQLite database serves one server, so there is one node;
//! the same statements as on PostgreSQL keep the behaviour alike. The clock is SQLite's own
//! (`unixepoch('subsec')`, this host's).

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use faasbox_store::nodes::{NODE_DEAD, NODE_LEFT, NODE_UP};
use faasbox_store::{NewNode, NodeList, NodeLoad, NodeRecord, NodeStore, Result};

use crate::{sql, SqliteStore};

/// The database's clock in milliseconds since the epoch.
const NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

const COLUMNS: &str = "id, addr, version, started, heartbeat_ms, state, taken_by, capacity, \
                       instances, runs";

fn node_row(row: &Row) -> rusqlite::Result<NodeRecord> {
    Ok(NodeRecord {
        id: row.get(0)?,
        addr: row.get(1)?,
        version: row.get(2)?,
        started: row.get(3)?,
        heartbeat_ms: row.get(4)?,
        state: row.get(5)?,
        taken_by: row.get(6)?,
        capacity: row.get(7)?,
        instances: u64::try_from(row.get::<_, i64>(8)?).unwrap_or(0),
        runs: u64::try_from(row.get::<_, i64>(9)?).unwrap_or(0),
    })
}

#[async_trait]
impl NodeStore for SqliteStore {
    async fn register_node(&self, node: &NewNode) -> Result<Option<String>> {
        let node = node.clone();
        self.run(move |s| {
            sql(|| {
                let mut conn = s.conn();
                let tx = conn.transaction()?;
                let before: Option<String> = tx
                    .query_row("SELECT state FROM nodes WHERE id = ?1", [&node.id], |r| {
                        r.get(0)
                    })
                    .optional()?;
                tx.execute(
                    &format!(
                        "INSERT INTO nodes (id, addr, version, started, heartbeat_ms, state,
                                            taken_by, capacity, instances, runs)
                         VALUES (?1, ?2, ?3, ?4, {NOW_MS}, '{NODE_UP}', NULL, ?5, 0, 0)
                         ON CONFLICT (id) DO UPDATE SET addr = excluded.addr,
                             version = excluded.version, started = excluded.started,
                             heartbeat_ms = excluded.heartbeat_ms, state = excluded.state,
                             taken_by = NULL, capacity = excluded.capacity, instances = 0,
                             runs = 0"
                    ),
                    params![
                        node.id,
                        node.addr,
                        node.version,
                        node.started,
                        node.capacity
                    ],
                )?;
                tx.commit()?;
                Ok(before)
            })
        })
        .await
    }

    async fn heartbeat(&self, id: &str, load: &NodeLoad) -> Result<bool> {
        let id = id.to_string();
        let load = load.clone();
        self.run(move |s| {
            sql(|| {
                let changed = s.conn().execute(
                    &format!(
                        "UPDATE nodes SET heartbeat_ms = {NOW_MS}, capacity = ?2,
                             instances = ?3, runs = ?4
                         WHERE id = ?1 AND state = '{NODE_UP}'"
                    ),
                    params![
                        id,
                        load.capacity,
                        i64::try_from(load.instances).unwrap_or(i64::MAX),
                        i64::try_from(load.runs).unwrap_or(i64::MAX)
                    ],
                )?;
                Ok(changed == 1)
            })
        })
        .await
    }

    async fn nodes(&self) -> Result<NodeList> {
        self.run(|s| {
            sql(|| {
                let conn = s.conn();
                let now_ms: i64 = conn.query_row(&format!("SELECT {NOW_MS}"), [], |r| r.get(0))?;
                let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM nodes ORDER BY id"))?;
                let nodes = stmt
                    .query_map([], node_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(NodeList { nodes, now_ms })
            })
        })
        .await
    }

    async fn take_over_dead(&self, me: &str, lease_ms: i64) -> Result<Vec<String>> {
        let me = me.to_string();
        self.run(move |s| {
            sql(|| {
                let conn = s.conn();
                let mut stmt = conn.prepare(&format!(
                    "UPDATE nodes SET state = '{NODE_DEAD}', taken_by = ?1
                     WHERE state = '{NODE_UP}' AND id <> ?1 AND heartbeat_ms < {NOW_MS} - ?2
                     RETURNING id"
                ))?;
                let mut taken = stmt
                    .query_map(params![me, lease_ms], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                taken.sort();
                Ok(taken)
            })
        })
        .await
    }

    async fn leave(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.run(move |s| {
            sql(|| {
                s.conn().execute(
                    &format!("UPDATE nodes SET state = '{NODE_LEFT}' WHERE id = ?1"),
                    [&id],
                )?;
                Ok(())
            })
        })
        .await
    }
}
