//! Revisions of functions and global services: every deploy or update stores the whole spec
//! with the image's pinned manifest digest, numbered per function, and the function row points
//! at the current one. A rollback points it at an older one; the newest revisions (and always
//! the current one) are kept.

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Transaction};

use faasbox_store::{
    FunctionRecord, NewRevision, Result, Revised, RevisionRecord, StoreError, GLOBAL_OWNER,
};

use crate::{function_from_row, namespace_exists, sql, Sql, SqliteStore};

const COLUMNS: &str = "owner, function, revision, spec, digest, image_namespace, pull, created, \
                       created_by";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RevisionRecord> {
    Ok(RevisionRecord {
        owner: r.get(0)?,
        function: r.get(1)?,
        revision: r.get(2)?,
        spec: r.get(3)?,
        digest: r.get(4)?,
        image_namespace: r.get(5)?,
        pull: r.get(6)?,
        created: r.get(7)?,
        created_by: r.get(8)?,
    })
}

/// The function row of `owner/function` inside a transaction.
fn function_row(tx: &Transaction<'_>, owner: &str, function: &str) -> Sql<Option<FunctionRecord>> {
    let found = if owner == GLOBAL_OWNER {
        tx.query_row(
            &format!("{} WHERE name = ?1", crate::GLOBAL_SELECT),
            params![function],
            function_from_row,
        )
    } else {
        tx.query_row(
            "SELECT namespace, name, spec, created, updated, revision FROM functions
             WHERE namespace = ?1 AND name = ?2",
            params![owner, function],
            function_from_row,
        )
    };
    Ok(found.optional()?)
}

fn revision_row(
    tx: &Transaction<'_>,
    owner: &str,
    function: &str,
    revision: u32,
) -> Sql<Option<RevisionRecord>> {
    Ok(tx
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM function_revisions
                 WHERE owner = ?1 AND function = ?2 AND revision = ?3"
            ),
            params![owner, function, revision],
            from_row,
        )
        .optional()?)
}

/// Points the function row at `revision` with its spec (creating the row if needed).
fn set_current(
    tx: &Transaction<'_>,
    owner: &str,
    function: &str,
    spec: &str,
    revision: u32,
    now: &str,
) -> Sql<()> {
    if owner == GLOBAL_OWNER {
        tx.execute(
            "INSERT INTO global_functions (name, spec, created, updated, revision)
             VALUES (?1, ?2, ?3, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated = excluded.updated,
                 revision = excluded.revision",
            params![function, spec, now, revision],
        )?;
    } else {
        tx.execute(
            "INSERT INTO functions (namespace, name, spec, created, updated, revision)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)
             ON CONFLICT (namespace, name) DO UPDATE SET spec = excluded.spec,
                 updated = excluded.updated, revision = excluded.revision",
            params![owner, function, spec, now, revision],
        )?;
    }
    Ok(())
}

/// Deletes every revision of `owner/function` (with the function).
pub(crate) fn delete_all(tx: &Transaction<'_>, owner: &str, function: &str) -> Sql<()> {
    tx.execute(
        "DELETE FROM function_revisions WHERE owner = ?1 AND function = ?2",
        params![owner, function],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Stores a new revision of `owner/function`, numbered one above the highest so far, and
    /// makes it current (creating the function). Keeps the `keep` newest revisions and the
    /// current one. Fails with `NoNamespace` when the owner is a namespace that does not exist.
    pub fn add_revision(
        &self,
        owner: &str,
        function: &str,
        new: &NewRevision<'_>,
        keep: u32,
    ) -> Result<Revised> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            if owner != GLOBAL_OWNER && !namespace_exists(&tx, owner)? {
                return Err(StoreError::NoNamespace(owner.to_string()).into());
            }
            let previous = match function_row(&tx, owner, function)?.and_then(|f| f.revision) {
                Some(current) => revision_row(&tx, owner, function, current)?,
                None => None,
            };
            let number: u32 = tx.query_row(
                "SELECT COALESCE(MAX(revision), 0) + 1 FROM function_revisions
             WHERE owner = ?1 AND function = ?2",
                params![owner, function],
                |r| r.get(0),
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO function_revisions ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    owner,
                    function,
                    number,
                    new.spec,
                    new.digest,
                    new.image_namespace,
                    new.pull,
                    new.created,
                    new.created_by
                ],
            )?;
            set_current(&tx, owner, function, new.spec, number, new.created)?;
            tx.execute(
                "DELETE FROM function_revisions
             WHERE owner = ?1 AND function = ?2 AND revision <= ?3 AND revision <> ?4",
                params![owner, function, number.saturating_sub(keep), number],
            )?;
            let function_record =
                function_row(&tx, owner, function)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            let revision = revision_row(&tx, owner, function, number)?
                .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            tx.commit()?;
            Ok(Revised {
                function: function_record,
                revision,
                previous,
            })
        })
    }

    /// The kept revisions of `owner/function`, oldest first.
    pub fn revisions(&self, owner: &str, function: &str) -> Result<Vec<RevisionRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM function_revisions WHERE owner = ?1 AND function = ?2
             ORDER BY revision"
            ))?;
            let rows = stmt.query_map(params![owner, function], from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// One revision of `owner/function`.
    pub fn revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
    ) -> Result<Option<RevisionRecord>> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            revision_row(&tx, owner, function, revision)
        })
    }

    /// Makes the kept revision `revision` of `owner/function` current again (its spec becomes
    /// the function's). `None` when the function or that revision does not exist.
    pub fn make_current(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        now: &str,
    ) -> Result<Option<(FunctionRecord, RevisionRecord)>> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            if function_row(&tx, owner, function)?.is_none() {
                return Ok(None);
            }
            let Some(record) = revision_row(&tx, owner, function, revision)? else {
                return Ok(None);
            };
            set_current(&tx, owner, function, &record.spec, revision, now)?;
            let function_record =
                function_row(&tx, owner, function)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            tx.commit()?;
            Ok(Some((function_record, record)))
        })
    }

    /// Pins the image of revision `revision` of `owner/function` to `digest` (found in the
    /// table of `image_namespace`), if it has no digest yet. Returns whether it did.
    pub fn pin_revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        digest: &str,
        image_namespace: Option<&str>,
    ) -> Result<bool> {
        sql(|| {
            Ok(self.conn().execute(
                "UPDATE function_revisions SET digest = ?4, image_namespace = ?5
             WHERE owner = ?1 AND function = ?2 AND revision = ?3 AND digest IS NULL",
                params![owner, function, revision, digest, image_namespace],
            )? > 0)
        })
    }

    /// Every digest a kept revision pins.
    pub fn revision_digests(&self) -> Result<HashSet<String>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT DISTINCT digest FROM function_revisions WHERE digest IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Every digest a kept revision pins whose image name was found in the table of
    /// `image_namespace` (`None`: the server-wide one).
    pub fn digests_pinned_from(&self, image_namespace: Option<&str>) -> Result<HashSet<String>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT DISTINCT digest FROM function_revisions
             WHERE digest IS NOT NULL AND image_namespace IS ?1",
            )?;
            let rows = stmt.query_map(params![image_namespace], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The kept revisions that pin `digest`, by owner, function and revision.
    pub fn revisions_pinning(&self, digest: &str) -> Result<Vec<RevisionRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM function_revisions WHERE digest = ?1
             ORDER BY owner, function, revision"
            ))?;
            let rows = stmt.query_map(params![digest], from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
