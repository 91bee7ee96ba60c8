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

    /// Every remembered failure.
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

#[cfg(test)]
mod tests {
    use crate::SqliteStore as Store;

    #[test]
    fn failures_are_kept_replaced_cleared_and_go_with_their_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.create_namespace("demo", "t0").unwrap();
        store
            .record_pull_failure("demo", "a", "first", "t1")
            .unwrap();
        store
            .record_pull_failure("demo", "a", "second", "t2")
            .unwrap();
        store
            .record_pull_failure("demo", "b", "b failed", "t2")
            .unwrap();
        store
            .record_pull_failure("*global", "g", "g failed", "t2")
            .unwrap();
        drop(store);

        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let all = store.pull_failures().unwrap();
        let seen: Vec<(&str, &str, &str)> = all
            .iter()
            .map(|f| (f.owner.as_str(), f.function.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("*global", "g", "g failed"),
                ("demo", "a", "second"),
                ("demo", "b", "b failed")
            ]
        );
        store.clear_pull_failure("demo", "a").unwrap();
        assert!(store.delete_namespace("demo").unwrap());
        let left = store.pull_failures().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].owner, "*global");
    }
}
