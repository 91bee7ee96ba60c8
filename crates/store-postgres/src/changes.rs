//! ChangeStore on PostgreSQL: the changes feed several servers read. A change's seq comes
//! from the `counters` row 'changes', bumped in the inserting transaction (as events' seqs):
//! the row's lock holds every other publisher until this one commits, so seqs become visible
//! in their order and a reader past seq `n` never later finds a new row below `n` (an
//! identity column would not promise that). Times are the database's clock.

use async_trait::async_trait;
use faasbox_store::{ChangeRecord, ChangeStore, Result};

use crate::{db, PgStore};

/// Now, ms since the epoch, by the database's clock.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

#[async_trait]
impl ChangeStore for PgStore {
    async fn publish_change(&self, kind: &str, key: &str) -> Result<i64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Past the newest row too: rows copied in by migrate-store (without the counter)
        // must not collide. MAX(seq) is one step down the primary key's index.
        let seq: i64 = tx
            .query_one(
                "UPDATE counters
                 SET value = GREATEST(value, (SELECT COALESCE(MAX(seq), 0) FROM changes)) + 1
                 WHERE name = 'changes' RETURNING value",
                &[],
            )
            .await
            .map_err(db)?
            .get(0);
        tx.execute(
            &format!("INSERT INTO changes (seq, kind, key, at_ms) VALUES ($1, $2, $3, {NOW_MS})"),
            &[&seq, &kind, &key],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(seq)
    }

    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<ChangeRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.client()
            .await?
            .query(
                "SELECT seq, kind, key, at_ms FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| {
                Ok(ChangeRecord {
                    seq: row.try_get(0).map_err(db)?,
                    kind: row.try_get(1).map_err(db)?,
                    key: row.try_get(2).map_err(db)?,
                    at_ms: row.try_get(3).map_err(db)?,
                })
            })
            .collect()
    }

    async fn newest_change(&self) -> Result<i64> {
        // The newest committed row, not the counter: a publisher holding the next seq has
        // not committed yet, and a reader starting here must still see its change.
        Ok(self
            .client()
            .await?
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
            .await
            .map_err(db)?
            .get(0))
    }

    async fn purge_changes(&self, before_ms: i64) -> Result<u64> {
        self.client()
            .await?
            .execute(
                "DELETE FROM changes WHERE at_ms < $1
                   AND seq < (SELECT COALESCE(MAX(seq), 0) FROM changes)",
                &[&before_ms],
            )
            .await
            .map_err(db)
    }
}
