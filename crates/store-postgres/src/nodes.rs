//! NodeStore on PostgreSQL: the servers sharing the database. Every heartbeat and every age is
//! the database's clock (`clock_timestamp()`, not `now()`, which is the transaction's start),
//! so the servers never compare their own clocks. Declaring a node dead is one conditional
//! UPDATE: of several servers doing it at once, one updates the row and the others find it no
//! longer up.

use async_trait::async_trait;
use faasbox_store::nodes::{NODE_DEAD, NODE_LEFT, NODE_UP};
use faasbox_store::{NewNode, NodeList, NodeLoad, NodeRecord, NodeStore, Result};
use tokio_postgres::Row;

use crate::{db, PgStore};

/// The database's clock in milliseconds since the epoch.
pub(crate) const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

const COLUMNS: &str = "id, addr, version, started, heartbeat_ms, state, taken_by, capacity, \
                       instances, runs";

fn node_row(row: &Row) -> Result<NodeRecord> {
    let count = |i: usize| -> Result<u64> {
        Ok(u64::try_from(row.try_get::<_, i64>(i).map_err(db)?).unwrap_or(0))
    };
    Ok(NodeRecord {
        id: row.try_get(0).map_err(db)?,
        addr: row.try_get(1).map_err(db)?,
        version: row.try_get(2).map_err(db)?,
        started: row.try_get(3).map_err(db)?,
        heartbeat_ms: row.try_get(4).map_err(db)?,
        state: row.try_get(5).map_err(db)?,
        taken_by: row.try_get(6).map_err(db)?,
        capacity: row.try_get(7).map_err(db)?,
        instances: count(8)?,
        runs: count(9)?,
    })
}

fn bigint(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl NodeStore for PgStore {
    async fn register_node(&self, node: &NewNode) -> Result<Option<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The row locked (if it exists) so the state read is the one replaced.
        let before: Option<String> = tx
            .query_opt(
                "SELECT state FROM nodes WHERE id = $1 FOR UPDATE",
                &[&node.id],
            )
            .await
            .map_err(db)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(db)?;
        tx.execute(
            &format!(
                "INSERT INTO nodes (id, addr, version, started, heartbeat_ms, state, taken_by,
                                    capacity, instances, runs)
                 VALUES ($1, $2, $3, $4, {NOW_MS}, '{NODE_UP}', NULL, $5, 0, 0)
                 ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, version = excluded.version,
                     started = excluded.started, heartbeat_ms = excluded.heartbeat_ms,
                     state = excluded.state, taken_by = NULL, capacity = excluded.capacity,
                     instances = 0, runs = 0"
            ),
            &[
                &node.id,
                &node.addr,
                &node.version,
                &node.started,
                &node.capacity,
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(before)
    }

    async fn heartbeat(&self, id: &str, load: &NodeLoad) -> Result<bool> {
        let changed = self
            .client()
            .await?
            .execute(
                &format!(
                    "UPDATE nodes SET heartbeat_ms = {NOW_MS}, capacity = $2, instances = $3,
                         runs = $4
                     WHERE id = $1 AND state = '{NODE_UP}'"
                ),
                &[
                    &id,
                    &load.capacity,
                    &bigint(load.instances),
                    &bigint(load.runs),
                ],
            )
            .await
            .map_err(db)?;
        Ok(changed == 1)
    }

    async fn nodes(&self) -> Result<NodeList> {
        let client = self.client().await?;
        let now_ms: i64 = client
            .query_one(&format!("SELECT {NOW_MS}"), &[])
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let nodes = client
            .query(&format!("SELECT {COLUMNS} FROM nodes ORDER BY id"), &[])
            .await
            .map_err(db)?
            .iter()
            .map(node_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(NodeList { nodes, now_ms })
    }

    async fn take_over_dead(&self, me: &str, lease_ms: i64) -> Result<Vec<String>> {
        let mut taken: Vec<String> = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE nodes SET state = '{NODE_DEAD}', taken_by = $1
                     WHERE state = '{NODE_UP}' AND id <> $1 AND heartbeat_ms < {NOW_MS} - $2
                     RETURNING id"
                ),
                &[&me, &lease_ms],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?;
        taken.sort();
        Ok(taken)
    }

    async fn leave(&self, id: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                &format!("UPDATE nodes SET state = '{NODE_LEFT}' WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}
