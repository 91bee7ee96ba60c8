//! Persistence for global services: functions an admin deploys once for every namespace. They
//! come back as [`FunctionRecord`]s whose namespace is the pseudo-namespace [`GLOBAL_OWNER`].

use rusqlite::{params, OptionalExtension};

use faasbox_store::{FunctionRecord, Result, GLOBAL_OWNER};

use crate::{function_from_row, sql, SqliteStore, GLOBAL_SELECT};

impl SqliteStore {
    /// Creates or replaces a global service's spec (keeping `created` on replace).
    pub fn put_global_function(&self, name: &str, spec: &str, now: &str) -> Result<FunctionRecord> {
        sql(|| {
            let conn = self.conn();
            conn.execute(
            "INSERT INTO global_functions (name, spec, created, updated) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated = excluded.updated",
            params![name, spec, now],
        )?;
            Ok(conn.query_row(
                &format!("{GLOBAL_SELECT} WHERE name = ?1"),
                params![name],
                function_from_row,
            )?)
        })
    }

    /// The global service `name`; `None` when it does not exist.
    pub fn global_function(&self, name: &str) -> Result<Option<FunctionRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!("{GLOBAL_SELECT} WHERE name = ?1"),
                    params![name],
                    function_from_row,
                )
                .optional()?)
        })
    }

    /// Every global service, ordered by name.
    pub fn list_global_functions(&self) -> Result<Vec<FunctionRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!("{GLOBAL_SELECT} ORDER BY name"))?;
            let rows = stmt.query_map([], function_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Deletes a global service with its revisions. False when absent.
    pub fn delete_global_function(&self, name: &str) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let deleted = tx.execute(
                "DELETE FROM global_functions WHERE name = ?1",
                params![name],
            )?;
            crate::revisions::delete_all(&tx, GLOBAL_OWNER, name)?;
            tx.commit()?;
            Ok(deleted > 0)
        })
    }
}
