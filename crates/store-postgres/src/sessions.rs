//! The web UI's sessions on PostgreSQL (`SessionStore`), SQLite's `sessions.rs` statement by
//! statement. Opening a session holds an advisory lock, so servers signing users in at once
//! keep the caps (SQLite's one connection does that by itself).

use async_trait::async_trait;
use faasbox_store::{Result, SessionCaps, SessionRecord, SessionStore};
use tokio_postgres::Row;

use crate::{db, PgStore};

const COLUMNS: &str = "key, token_hash, token_name, csrf, created_ms, last_used_ms, expires";

fn session_row(row: &Row) -> Result<SessionRecord> {
    Ok(SessionRecord {
        key: row.try_get(0).map_err(db)?,
        token_hash: row.try_get(1).map_err(db)?,
        token_name: row.try_get(2).map_err(db)?,
        csrf: row.try_get(3).map_err(db)?,
        created_ms: row.try_get(4).map_err(db)?,
        last_used_ms: row.try_get(5).map_err(db)?,
        expires: row.try_get(6).map_err(db)?,
    })
}

#[async_trait]
impl SessionStore for PgStore {
    async fn open_session(&self, record: &SessionRecord, caps: &SessionCaps) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('ui_sessions'))", &[])
            .await
            .map_err(db)?;
        let now = record.created_ms;
        tx.execute(
            "DELETE FROM ui_sessions WHERE created_ms <= $1 OR last_used_ms <= $2",
            &[&(now - caps.lifetime_ms), &(now - caps.idle_ms)],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "DELETE FROM ui_sessions WHERE key IN (
                 SELECT key FROM ui_sessions WHERE token_hash = $1
                 ORDER BY created_ms DESC, key OFFSET $2)",
            &[&record.token_hash, &(i64::from(caps.max_per_token) - 1)],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "DELETE FROM ui_sessions WHERE key IN (
                 SELECT key FROM ui_sessions ORDER BY created_ms DESC, key OFFSET $1)",
            &[&(i64::from(caps.max_sessions) - 1)],
        )
        .await
        .map_err(db)?;
        tx.execute(
            &format!("INSERT INTO ui_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                &record.key,
                &record.token_hash,
                &record.token_name,
                &record.csrf,
                &record.created_ms,
                &record.last_used_ms,
                &record.expires,
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn session(&self, key: &str) -> Result<Option<SessionRecord>> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM ui_sessions WHERE key = $1"),
                &[&key],
            )
            .await
            .map_err(db)?
            .map(|row| session_row(&row))
            .transpose()
    }

    async fn touch_session(&self, key: &str, used_ms: i64) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE ui_sessions SET last_used_ms = $2 WHERE key = $1 AND last_used_ms < $2",
                &[&key, &used_ms],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn close_session(&self, key: &str) -> Result<bool> {
        let removed = self
            .client()
            .await?
            .execute("DELETE FROM ui_sessions WHERE key = $1", &[&key])
            .await
            .map_err(db)?;
        Ok(removed == 1)
    }

    async fn count_sessions(&self) -> Result<u64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM ui_sessions", &[])
            .await
            .map_err(db)?;
        Ok(u64::try_from(row.try_get::<_, i64>(0).map_err(db)?).unwrap_or(0))
    }
}
