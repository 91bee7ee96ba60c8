//! Revisions of functions and global services on PostgreSQL (SQLite's `revisions.rs`): every
//! deploy stores the whole spec numbered per function, the function row points at the current
//! one, a rollback points it at an older one.
//!
//! What PostgreSQL needs beyond SQLite: servers sharing the database may deploy one function at
//! the same moment. Every method that reads a function's revisions and then writes them first
//! takes a transaction-scoped advisory lock of that function ([`lock_function`]), so two
//! deploys number their revisions one after the other instead of both taking `MAX + 1` (the
//! function's row cannot serve as the lock: a first deploy has no row yet).

use std::collections::HashSet;

use faasbox_store::{
    FunctionRecord, NewRevision, Result, Revised, RevisionRecord, StoreError, GLOBAL_OWNER,
};
use tokio_postgres::{Row, Transaction};

use super::{function_from_row, revision_number, FUNCTION_COLUMNS, GLOBAL_SELECT};
use crate::namespaces::namespace_exists;
use crate::{db, PgStore};

const COLUMNS: &str = "owner, function, revision, spec, digest, image_namespace, pull, created, \
                       created_by";

/// The first key of the functions' advisory locks ("fnrv"); the second is a hash of the
/// function's owner and name. Two functions whose hashes collide only wait for each other.
const FUNCTION_LOCK_CLASS: i32 = 0x666e_7276;

fn from_row(row: &Row) -> Result<RevisionRecord> {
    Ok(RevisionRecord {
        owner: row.try_get(0).map_err(db)?,
        function: row.try_get(1).map_err(db)?,
        revision: revision_number(row.try_get(2).map_err(db)?)?,
        spec: row.try_get(3).map_err(db)?,
        digest: row.try_get(4).map_err(db)?,
        image_namespace: row.try_get(5).map_err(db)?,
        pull: row.try_get(6).map_err(db)?,
        created: row.try_get(7).map_err(db)?,
        created_by: row.try_get(8).map_err(db)?,
    })
}

/// Holds `owner/function`'s advisory lock until `tx` ends (PostgreSQL only; see the top).
pub(super) async fn lock_function(tx: &Transaction<'_>, owner: &str, function: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))",
        &[&FUNCTION_LOCK_CLASS, &owner, &function],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// The function row of `owner/function` inside a transaction.
async fn function_row(
    tx: &Transaction<'_>,
    owner: &str,
    function: &str,
) -> Result<Option<FunctionRecord>> {
    let found = if owner == GLOBAL_OWNER {
        tx.query_opt(&format!("{GLOBAL_SELECT} WHERE name = $1"), &[&function])
            .await
    } else {
        tx.query_opt(
            &format!("SELECT {FUNCTION_COLUMNS} FROM functions WHERE namespace = $1 AND name = $2"),
            &[&owner, &function],
        )
        .await
    };
    found
        .map_err(db)?
        .as_ref()
        .map(function_from_row)
        .transpose()
}

async fn revision_row(
    tx: &Transaction<'_>,
    owner: &str,
    function: &str,
    revision: u32,
) -> Result<Option<RevisionRecord>> {
    tx.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM function_revisions
             WHERE owner = $1 AND function = $2 AND revision = $3"
        ),
        &[&owner, &function, &i64::from(revision)],
    )
    .await
    .map_err(db)?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Points the function row at `revision` with its spec (creating the row if needed).
async fn set_current(
    tx: &Transaction<'_>,
    owner: &str,
    function: &str,
    spec: &str,
    revision: u32,
    now: &str,
) -> Result<()> {
    let revision = i64::from(revision);
    if owner == GLOBAL_OWNER {
        tx.execute(
            "INSERT INTO global_functions (name, spec, created, updated, revision)
             VALUES ($1, $2, $3, $3, $4)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated = excluded.updated,
                 revision = excluded.revision",
            &[&function, &spec, &now, &revision],
        )
        .await
        .map_err(db)?;
    } else {
        tx.execute(
            "INSERT INTO functions (namespace, name, spec, created, updated, revision)
             VALUES ($1, $2, $3, $4, $4, $5)
             ON CONFLICT (namespace, name) DO UPDATE SET spec = excluded.spec,
                 updated = excluded.updated, revision = excluded.revision",
            &[&owner, &function, &spec, &now, &revision],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Deletes every revision of `owner/function` (with the function).
pub(super) async fn delete_all(tx: &Transaction<'_>, owner: &str, function: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM function_revisions WHERE owner = $1 AND function = $2",
        &[&owner, &function],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// `FunctionStore::add_revision`.
pub(super) async fn add_revision(
    store: &PgStore,
    owner: &str,
    function: &str,
    new: &NewRevision<'_>,
    keep: u32,
) -> Result<Revised> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    lock_function(&tx, owner, function).await?;
    // The namespace's row stays locked (FOR KEY SHARE) to the commit: a namespace being deleted
    // meanwhile cannot keep this revision (function_revisions has no foreign key).
    if owner != GLOBAL_OWNER && !namespace_exists(&tx, owner).await? {
        return Err(StoreError::NoNamespace(owner.to_string()));
    }
    let previous = match function_row(&tx, owner, function)
        .await?
        .and_then(|f| f.revision)
    {
        Some(current) => revision_row(&tx, owner, function, current).await?,
        None => None,
    };
    let number: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(revision), 0) + 1 FROM function_revisions
             WHERE owner = $1 AND function = $2",
            &[&owner, &function],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    let number = revision_number(number)?;
    tx.execute(
        &format!(
            "INSERT INTO function_revisions ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        &[
            &owner,
            &function,
            &i64::from(number),
            &new.spec,
            &new.digest,
            &new.image_namespace,
            &new.pull,
            &new.created,
            &new.created_by,
        ],
    )
    .await
    .map_err(db)?;
    set_current(&tx, owner, function, new.spec, number, new.created).await?;
    tx.execute(
        "DELETE FROM function_revisions
         WHERE owner = $1 AND function = $2 AND revision <= $3 AND revision <> $4",
        &[
            &owner,
            &function,
            &i64::from(number.saturating_sub(keep)),
            &i64::from(number),
        ],
    )
    .await
    .map_err(db)?;
    let function_record = function_row(&tx, owner, function)
        .await?
        .ok_or_else(|| StoreError::backend("the function just written is not there"))?;
    let revision = revision_row(&tx, owner, function, number)
        .await?
        .ok_or_else(|| StoreError::backend("the revision just written is not there"))?;
    tx.commit().await.map_err(db)?;
    Ok(Revised {
        function: function_record,
        revision,
        previous,
    })
}

/// `FunctionStore::revisions`.
pub(super) async fn revisions(
    store: &PgStore,
    owner: &str,
    function: &str,
) -> Result<Vec<RevisionRecord>> {
    store
        .client()
        .await?
        .query(
            &format!(
                "SELECT {COLUMNS} FROM function_revisions WHERE owner = $1 AND function = $2
                 ORDER BY revision"
            ),
            &[&owner, &function],
        )
        .await
        .map_err(db)?
        .iter()
        .map(from_row)
        .collect()
}

/// `FunctionStore::revision`.
pub(super) async fn revision(
    store: &PgStore,
    owner: &str,
    function: &str,
    revision: u32,
) -> Result<Option<RevisionRecord>> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    revision_row(&tx, owner, function, revision).await
}

/// `FunctionStore::make_current`.
pub(super) async fn make_current(
    store: &PgStore,
    owner: &str,
    function: &str,
    revision: u32,
    now: &str,
) -> Result<Option<(FunctionRecord, RevisionRecord)>> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    // PostgreSQL only: no deploy prunes the revision, no delete removes the function, and no
    // namespace deletion removes the namespace between the reads and the write below.
    lock_function(&tx, owner, function).await?;
    if owner != GLOBAL_OWNER && !namespace_exists(&tx, owner).await? {
        return Ok(None);
    }
    if function_row(&tx, owner, function).await?.is_none() {
        return Ok(None);
    }
    let Some(record) = revision_row(&tx, owner, function, revision).await? else {
        return Ok(None);
    };
    set_current(&tx, owner, function, &record.spec, revision, now).await?;
    let function_record = function_row(&tx, owner, function)
        .await?
        .ok_or_else(|| StoreError::backend("the function just written is not there"))?;
    tx.commit().await.map_err(db)?;
    Ok(Some((function_record, record)))
}

/// `FunctionStore::pin_revision`: one conditional update, so a pinned digest never changes
/// however many servers pin at once.
pub(super) async fn pin_revision(
    store: &PgStore,
    owner: &str,
    function: &str,
    revision: u32,
    digest: &str,
    image_namespace: Option<&str>,
) -> Result<bool> {
    let updated = store
        .client()
        .await?
        .execute(
            "UPDATE function_revisions SET digest = $4, image_namespace = $5
             WHERE owner = $1 AND function = $2 AND revision = $3 AND digest IS NULL",
            &[
                &owner,
                &function,
                &i64::from(revision),
                &digest,
                &image_namespace,
            ],
        )
        .await
        .map_err(db)?;
    Ok(updated > 0)
}

/// The first column of every row, as a set of text.
fn text_set(rows: &[Row]) -> Result<HashSet<String>> {
    rows.iter()
        .map(|row| row.try_get::<_, String>(0).map_err(db))
        .collect()
}

/// `FunctionStore::revision_digests`.
pub(super) async fn revision_digests(store: &PgStore) -> Result<HashSet<String>> {
    let rows = store
        .client()
        .await?
        .query(
            "SELECT DISTINCT digest FROM function_revisions WHERE digest IS NOT NULL",
            &[],
        )
        .await
        .map_err(db)?;
    text_set(&rows)
}

/// `FunctionStore::digests_pinned_from`.
pub(super) async fn digests_pinned_from(
    store: &PgStore,
    image_namespace: Option<&str>,
) -> Result<HashSet<String>> {
    // SQLite's `IS ?1` (equal, or both NULL) is PostgreSQL's `IS NOT DISTINCT FROM`.
    let rows = store
        .client()
        .await?
        .query(
            "SELECT DISTINCT digest FROM function_revisions
             WHERE digest IS NOT NULL AND image_namespace IS NOT DISTINCT FROM $1",
            &[&image_namespace],
        )
        .await
        .map_err(db)?;
    text_set(&rows)
}

/// `FunctionStore::revisions_pinning`.
pub(super) async fn revisions_pinning(
    store: &PgStore,
    digest: &str,
) -> Result<Vec<RevisionRecord>> {
    store
        .client()
        .await?
        .query(
            &format!(
                "SELECT {COLUMNS} FROM function_revisions WHERE digest = $1
                 ORDER BY owner, function, revision"
            ),
            &[&digest],
        )
        .await
        .map_err(db)?
        .iter()
        .map(from_row)
        .collect()
}
