//! PullFailureStore on PostgreSQL: why functions' images could not be pulled (SQLite's
//! `pull_failures.rs`, statement by statement; each method is one statement, so racing servers
//! need nothing more: the newest upsert wins).

use async_trait::async_trait;
use faasbox_store::{PullFailure, PullFailureStore, Result};

use crate::{db, PgStore};

#[async_trait]
impl PullFailureStore for PgStore {
    async fn record_pull_failure(
        &self,
        owner: &str,
        function: &str,
        message: &str,
        now: &str,
    ) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO image_pull_failures (owner, function, message, failed)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (owner, function) DO UPDATE SET message = excluded.message,
                     failed = excluded.failed",
                &[&owner, &function, &message, &now],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn clear_pull_failure(&self, owner: &str, function: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM image_pull_failures WHERE owner = $1 AND function = $2",
                &[&owner, &function],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn pull_failures(&self) -> Result<Vec<PullFailure>> {
        self.client()
            .await?
            .query(
                "SELECT owner, function, message FROM image_pull_failures
                 ORDER BY owner, function",
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| {
                Ok(PullFailure {
                    owner: row.try_get(0).map_err(db)?,
                    function: row.try_get(1).map_err(db)?,
                    message: row.try_get(2).map_err(db)?,
                })
            })
            .collect()
    }
}
