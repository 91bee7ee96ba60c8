//! Revisions of functions and global services: every deploy or update stores the whole spec
//! with the image's pinned manifest digest, numbered per function, and the function row points
//! at the current one. A rollback points it at an older one; the newest revisions (and always
//! the current one) are kept.

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Transaction};

use faasbox_store::{
    FunctionRecord, NewRevision, Result, Revised, RevisionRecord, StoreError, GLOBAL_OWNER,
};

use crate::global_functions;
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
            &format!("{} WHERE name = ?1", global_functions::SELECT),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore as Store;

    fn new<'a>(spec: &'a str, digest: Option<&'a str>) -> NewRevision<'a> {
        NewRevision {
            spec,
            digest,
            image_namespace: Some("demo"),
            pull: "missing",
            created: "t1",
            created_by: "admin",
        }
    }

    #[test]
    fn revisions_are_numbered_kept_rolled_back_and_deleted_with_their_function() {
        let store = Store::open_in_memory().unwrap();
        assert!(matches!(
            store.add_revision("demo", "f", &new("{}", None), 3),
            Err(StoreError::NoNamespace(_))
        ));
        store.create_namespace("demo", "t0").unwrap();
        let first = store
            .add_revision("demo", "f", &new(r#"{"v":1}"#, Some("sha256:1")), 3)
            .unwrap();
        assert_eq!(first.revision.revision, 1);
        assert!(first.previous.is_none());
        assert_eq!(first.function.revision, Some(1));
        for v in 2..=5 {
            let spec = format!(r#"{{"v":{v}}}"#);
            let revised = store
                .add_revision("demo", "f", &new(&spec, Some("sha256:2")), 3)
                .unwrap();
            assert_eq!(revised.revision.revision, v);
            assert_eq!(revised.previous.unwrap().revision, v - 1);
            assert_eq!(revised.function.spec, spec);
        }
        let kept: Vec<u32> = store
            .revisions("demo", "f")
            .unwrap()
            .iter()
            .map(|r| r.revision)
            .collect();
        assert_eq!(kept, [3, 4, 5], "the newest three are kept");
        assert_eq!(
            store.revision_digests().unwrap(),
            HashSet::from(["sha256:2".to_string()])
        );

        // A rollback points at an older revision; the next deploy numbers on.
        let (function, back) = store.make_current("demo", "f", 3, "t9").unwrap().unwrap();
        assert_eq!(
            (function.revision, function.spec.as_str()),
            (Some(3), r#"{"v":3}"#)
        );
        assert_eq!(function.updated, "t9");
        assert_eq!(back.revision, 3);
        assert!(store.make_current("demo", "f", 1, "t9").unwrap().is_none());
        assert!(store.make_current("demo", "g", 3, "t9").unwrap().is_none());
        assert_eq!(
            store.digests_pinned_from(Some("demo")).unwrap(),
            HashSet::from(["sha256:2".to_string()])
        );
        assert!(store.digests_pinned_from(None).unwrap().is_empty());
        // Keeping one: the new revision (current now) is all that stays.
        let six = store
            .add_revision("demo", "f", &new("{}", None), 1)
            .unwrap();
        assert_eq!(six.revision.revision, 6);
        assert_eq!(six.previous.unwrap().revision, 3);
        assert!(store
            .pin_revision("demo", "f", 6, "sha256:6", None)
            .unwrap());
        assert!(!store
            .pin_revision("demo", "f", 6, "sha256:7", None)
            .unwrap());
        let pinned = store.revision("demo", "f", 6).unwrap().unwrap();
        assert_eq!(pinned.digest.as_deref(), Some("sha256:6"));
        assert_eq!(pinned.image_namespace, None);
        assert_eq!(store.revisions_pinning("sha256:6").unwrap().len(), 1);
        assert_eq!(
            store.digests_pinned_from(None).unwrap(),
            HashSet::from(["sha256:6".to_string()])
        );
        assert!(
            store.digests_pinned_from(Some("demo")).unwrap().is_empty(),
            "keeping one, revision 3 went"
        );

        // Global services have revisions too.
        let g = store
            .add_revision(GLOBAL_OWNER, "svc", &new("{}", Some("sha256:g")), 10)
            .unwrap();
        assert_eq!(g.function.namespace, GLOBAL_OWNER);
        assert_eq!(
            store.global_function("svc").unwrap().unwrap().revision,
            Some(1)
        );
        assert!(store.delete_global_function("svc").unwrap());
        assert!(store.revisions(GLOBAL_OWNER, "svc").unwrap().is_empty());

        assert!(store.delete_function("demo", "f").unwrap());
        assert!(store.revisions("demo", "f").unwrap().is_empty());
        store
            .add_revision("demo", "f", &new("{}", None), 3)
            .unwrap();
        assert!(store.delete_namespace("demo").unwrap());
        assert!(store.revision_digests().unwrap().is_empty());
        assert!(store.revisions("demo", "f").unwrap().is_empty());
    }
}
