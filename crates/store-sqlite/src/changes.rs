//! The changes feed on SQLite: one server writes them (through one connection), so the
//! table's autoincrement seq is already the order they were written in. It still keeps the
//! rows, so the server's follower reads its own changes like a peer's would.

use rusqlite::params;

use faasbox_store::{ChangeRecord, Result};

use crate::{sql, SqliteStore};

/// Now, ms since the epoch, by SQLite's clock (the machine's).
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

impl SqliteStore {
    /// Publishes a change; its seq.
    pub fn publish_change(&self, kind: &str, key: &str) -> Result<i64> {
        sql(|| {
            let conn = self.conn();
            conn.execute(
                &format!("INSERT INTO changes (kind, key, at_ms) VALUES (?1, ?2, {NOW_MS})"),
                params![kind, key],
            )?;
            Ok(conn.last_insert_rowid())
        })
    }

    /// At most `limit` changes after `after`, oldest first.
    pub fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<ChangeRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT seq, kind, key, at_ms FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![after, limit], |row| {
                Ok(ChangeRecord {
                    seq: row.get(0)?,
                    kind: row.get(1)?,
                    key: row.get(2)?,
                    at_ms: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The newest change's seq, 0 without one.
    pub fn newest_change(&self) -> Result<i64> {
        sql(|| {
            Ok(self
                .conn()
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                    r.get(0)
                })?)
        })
    }

    /// Deletes the changes older than `before_ms` but the newest; how many.
    pub fn purge_changes(&self, before_ms: i64) -> Result<u64> {
        sql(|| {
            let deleted = self.conn().execute(
                "DELETE FROM changes WHERE at_ms < ?1
                   AND seq < (SELECT COALESCE(MAX(seq), 0) FROM changes)",
                params![before_ms],
            )?;
            Ok(deleted as u64)
        })
    }
}
