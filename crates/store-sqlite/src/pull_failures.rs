//! Why a function's image could not be pulled, kept until a pull succeeds or the function goes,
//! so `GET …/functions/{fn}` still says why after a restart.

use rusqlite::params;

use faasbox_store::{PullFailure, Result};

use crate::{sql, SqliteStore};

impl SqliteStore {
    /// Remembers (or replaces) the failure of `owner/function`'s last pull.
    pub fn record_pull_failure(
        &self,
        owner: &str,
        function: &str,
        message: &str,
        now: &str,
    ) -> Result<()> {
        sql(|| {
            self.conn().execute(
            "INSERT INTO image_pull_failures (owner, function, message, failed) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (owner, function) DO UPDATE SET message = excluded.message, failed = excluded.failed",
            params![owner, function, message, now],
        )?;
            Ok(())
        })
    }

    /// Forgets `owner/function`'s failure (its image is there now, or it was redeployed or
    /// deleted).
    pub fn clear_pull_failure(&self, owner: &str, function: &str) -> Result<()> {
        sql(|| {
            self.conn().execute(
                "DELETE FROM image_pull_failures WHERE owner = ?1 AND function = ?2",
                params![owner, function],
            )?;
            Ok(())
        })
    }

    /// Every remembered failure, ordered by owner, then function.
    pub fn pull_failures(&self) -> Result<Vec<PullFailure>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT owner, function, message FROM image_pull_failures ORDER BY owner, function",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(PullFailure {
                    owner: r.get(0)?,
                    function: r.get(1)?,
                    message: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }
}
