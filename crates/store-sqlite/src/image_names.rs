//! The cluster's image catalog (`image_names`): which digest each scope's image name points
//! to, the truth the servers' local image stores follow when a cluster registry is set.

use rusqlite::{params, OptionalExtension};

use faasbox_store::{ImageNameRecord, Result};

use crate::{sql, SqliteStore};

/// The columns every read selects, in [`record`]'s order.
const COLUMNS: &str = "owner, name, digest, updated";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageNameRecord> {
    Ok(ImageNameRecord {
        owner: r.get(0)?,
        name: r.get(1)?,
        digest: r.get(2)?,
        updated: r.get(3)?,
    })
}

impl SqliteStore {
    /// Gives `owner`'s `name` to `digest`, replacing what it pointed to.
    pub fn put_image_name(&self, owner: &str, name: &str, digest: &str, now: &str) -> Result<()> {
        sql(|| {
            self.conn().execute(
                "INSERT INTO image_names (owner, name, digest, updated) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner, name) DO UPDATE SET digest = excluded.digest,
                     updated = excluded.updated",
                params![owner, name, digest, now],
            )?;
            Ok(())
        })
    }

    /// Removes `owner`'s `name`; false when absent.
    pub fn delete_image_name(&self, owner: &str, name: &str) -> Result<bool> {
        sql(|| {
            let deleted = self.conn().execute(
                "DELETE FROM image_names WHERE owner = ?1 AND name = ?2",
                params![owner, name],
            )?;
            Ok(deleted > 0)
        })
    }

    /// `owner`'s `name`, if there.
    pub fn image_name(&self, owner: &str, name: &str) -> Result<Option<ImageNameRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!("SELECT {COLUMNS} FROM image_names WHERE owner = ?1 AND name = ?2"),
                    params![owner, name],
                    record,
                )
                .optional()?)
        })
    }

    /// `owner`'s names (every owner's when `None`), by owner, then name.
    pub fn image_names(&self, owner: Option<&str>) -> Result<Vec<ImageNameRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM image_names WHERE ?1 IS NULL OR owner = ?1
                 ORDER BY owner, name"
            ))?;
            let rows = stmt.query_map(params![owner], record)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
