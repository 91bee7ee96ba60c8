//! The web UI's sessions on SQLite (`SessionStore`); PostgreSQL's `sessions.rs` runs the same
//! statements.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use faasbox_store::{Result, SessionCaps, SessionRecord, SessionStore};

use crate::{sql, SqliteStore};

const COLUMNS: &str = "key, token_hash, token_name, csrf, created_ms, last_used_ms, expires";

fn session_row(row: &Row) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        key: row.get(0)?,
        token_hash: row.get(1)?,
        token_name: row.get(2)?,
        csrf: row.get(3)?,
        created_ms: row.get(4)?,
        last_used_ms: row.get(5)?,
        expires: row.get(6)?,
    })
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn open_session(&self, record: &SessionRecord, caps: &SessionCaps) -> Result<()> {
        let (record, caps) = (record.clone(), *caps);
        self.run(move |s| {
            sql(|| {
                let mut conn = s.conn();
                let tx = conn.transaction()?;
                let now = record.created_ms;
                tx.execute(
                    "DELETE FROM ui_sessions WHERE created_ms <= ?1 OR last_used_ms <= ?2",
                    params![now - caps.lifetime_ms, now - caps.idle_ms],
                )?;
                tx.execute(
                    "DELETE FROM ui_sessions WHERE key IN (
                         SELECT key FROM ui_sessions WHERE token_hash = ?1
                         ORDER BY created_ms DESC, key LIMIT -1 OFFSET ?2)",
                    params![record.token_hash, i64::from(caps.max_per_token) - 1],
                )?;
                tx.execute(
                    "DELETE FROM ui_sessions WHERE key IN (
                         SELECT key FROM ui_sessions
                         ORDER BY created_ms DESC, key LIMIT -1 OFFSET ?1)",
                    params![i64::from(caps.max_sessions) - 1],
                )?;
                tx.execute(
                    &format!(
                        "INSERT INTO ui_sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    ),
                    params![
                        record.key,
                        record.token_hash,
                        record.token_name,
                        record.csrf,
                        record.created_ms,
                        record.last_used_ms,
                        record.expires
                    ],
                )?;
                tx.commit()?;
                Ok(())
            })
        })
        .await
    }

    async fn session(&self, key: &str) -> Result<Option<SessionRecord>> {
        let key = key.to_owned();
        self.run(move |s| {
            sql(|| {
                Ok(s.conn()
                    .query_row(
                        &format!("SELECT {COLUMNS} FROM ui_sessions WHERE key = ?1"),
                        [&key],
                        session_row,
                    )
                    .optional()?)
            })
        })
        .await
    }

    async fn touch_session(&self, key: &str, used_ms: i64) -> Result<()> {
        let key = key.to_owned();
        self.run(move |s| {
            sql(|| {
                s.conn().execute(
                    "UPDATE ui_sessions SET last_used_ms = ?2 WHERE key = ?1 AND last_used_ms < ?2",
                    params![key, used_ms],
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn close_session(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.run(move |s| {
            sql(|| {
                Ok(s.conn()
                    .execute("DELETE FROM ui_sessions WHERE key = ?1", [&key])?
                    == 1)
            })
        })
        .await
    }

    async fn count_sessions(&self) -> Result<u64> {
        self.run(|s| {
            sql(|| {
                let count: i64 =
                    s.conn()
                        .query_row("SELECT COUNT(*) FROM ui_sessions", [], |r| r.get(0))?;
                Ok(u64::try_from(count).unwrap_or(0))
            })
        })
        .await
    }
}
