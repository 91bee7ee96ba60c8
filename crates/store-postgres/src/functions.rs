//! FunctionStore on PostgreSQL: functions of namespaces and global services here (SQLite's
//! `lib.rs` functions section and `global_functions.rs`), their revisions in `revisions.rs`.

mod revisions;

use std::collections::HashSet;

use async_trait::async_trait;
use faasbox_store::{
    FunctionRecord, FunctionStore, NewRevision, Result, Revised, RevisionRecord, StoreError,
    GLOBAL_OWNER,
};
use tokio_postgres::Row;

use crate::{db, is_foreign_key_violation, PgStore};

/// The columns of a function record, in [`function_from_row`]'s order.
const FUNCTION_COLUMNS: &str = "namespace, name, spec, created, updated, revision";

/// The global services as function records (their namespace is [`GLOBAL_OWNER`]'s text).
/// (The literal is cast so the column's type is text for certain, as the row mapping reads it.)
const GLOBAL_SELECT: &str =
    "SELECT '*global'::text, name, spec, created, updated, revision FROM global_functions";

/// A stored revision number (BIGINT) as the records' `u32`.
fn revision_number(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        StoreError::backend(format!(
            "a stored revision number is {value}, outside 0..=4294967295"
        ))
    })
}

fn function_from_row(row: &Row) -> Result<FunctionRecord> {
    Ok(FunctionRecord {
        namespace: row.try_get(0).map_err(db)?,
        name: row.try_get(1).map_err(db)?,
        spec: row.try_get(2).map_err(db)?,
        created: row.try_get(3).map_err(db)?,
        updated: row.try_get(4).map_err(db)?,
        revision: row
            .try_get::<_, Option<i64>>(5)
            .map_err(db)?
            .map(revision_number)
            .transpose()?,
    })
}

#[async_trait]
impl FunctionStore for PgStore {
    async fn put_function(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord> {
        // SQLite checks the namespace first; here the foreign key does it in the same statement
        // (a function row exists only while its namespace does, so a missing namespace always
        // takes the insert path and fails there).
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO functions (namespace, name, spec, created, updated)
                     VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (namespace, name) DO UPDATE SET spec = excluded.spec,
                         updated = excluded.updated
                     RETURNING {FUNCTION_COLUMNS}"
                ),
                &[&namespace, &name, &spec, &now],
            )
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NoNamespace(namespace.to_string())
                } else {
                    db(e)
                }
            })?;
        function_from_row(&row)
    }

    async fn function(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>> {
        self.client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {FUNCTION_COLUMNS} FROM functions WHERE namespace = $1 AND name = $2"
                ),
                &[&namespace, &name],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(function_from_row)
            .transpose()
    }

    async fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionRecord>> {
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {FUNCTION_COLUMNS} FROM functions WHERE namespace = $1 ORDER BY name"
                ),
                &[&namespace],
            )
            .await
            .map_err(db)?
            .iter()
            .map(function_from_row)
            .collect()
    }

    async fn all_functions(&self) -> Result<Vec<FunctionRecord>> {
        self.client()
            .await?
            .query(
                &format!("SELECT {FUNCTION_COLUMNS} FROM functions ORDER BY namespace, name"),
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(function_from_row)
            .collect()
    }

    async fn delete_function(&self, namespace: &str, name: &str) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // PostgreSQL only: wait for a revision being added to this function, so it cannot add
        // its row after the delete below and leave a revision without its function.
        revisions::lock_function(&tx, namespace, name).await?;
        let deleted = tx
            .execute(
                "DELETE FROM functions WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )
            .await
            .map_err(db)?;
        revisions::delete_all(&tx, namespace, name).await?;
        tx.commit().await.map_err(db)?;
        Ok(deleted > 0)
    }

    async fn put_global_function(
        &self,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO global_functions (name, spec, created, updated) VALUES ($1, $2, $3, $3)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated = excluded.updated",
            &[&name, &spec, &now],
        )
        .await
        .map_err(db)?;
        let row = tx
            .query_one(&format!("{GLOBAL_SELECT} WHERE name = $1"), &[&name])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        function_from_row(&row)
    }

    async fn global_function(&self, name: &str) -> Result<Option<FunctionRecord>> {
        self.client()
            .await?
            .query_opt(&format!("{GLOBAL_SELECT} WHERE name = $1"), &[&name])
            .await
            .map_err(db)?
            .as_ref()
            .map(function_from_row)
            .transpose()
    }

    async fn list_global_functions(&self) -> Result<Vec<FunctionRecord>> {
        self.client()
            .await?
            .query(&format!("{GLOBAL_SELECT} ORDER BY name"), &[])
            .await
            .map_err(db)?
            .iter()
            .map(function_from_row)
            .collect()
    }

    async fn delete_global_function(&self, name: &str) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // As in `delete_function`: no revision is added meanwhile.
        revisions::lock_function(&tx, GLOBAL_OWNER, name).await?;
        let deleted = tx
            .execute("DELETE FROM global_functions WHERE name = $1", &[&name])
            .await
            .map_err(db)?;
        revisions::delete_all(&tx, GLOBAL_OWNER, name).await?;
        tx.commit().await.map_err(db)?;
        Ok(deleted > 0)
    }

    async fn add_revision(
        &self,
        owner: &str,
        function: &str,
        new: &NewRevision<'_>,
        keep: u32,
    ) -> Result<Revised> {
        revisions::add_revision(self, owner, function, new, keep).await
    }

    async fn revisions(&self, owner: &str, function: &str) -> Result<Vec<RevisionRecord>> {
        revisions::revisions(self, owner, function).await
    }

    async fn revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
    ) -> Result<Option<RevisionRecord>> {
        revisions::revision(self, owner, function, revision).await
    }

    async fn make_current(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        now: &str,
    ) -> Result<Option<(FunctionRecord, RevisionRecord)>> {
        revisions::make_current(self, owner, function, revision, now).await
    }

    async fn pin_revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        digest: &str,
        image_namespace: Option<&str>,
    ) -> Result<bool> {
        revisions::pin_revision(self, owner, function, revision, digest, image_namespace).await
    }

    async fn revision_digests(&self) -> Result<HashSet<String>> {
        revisions::revision_digests(self).await
    }

    async fn digests_pinned_from(&self, image_namespace: Option<&str>) -> Result<HashSet<String>> {
        revisions::digests_pinned_from(self, image_namespace).await
    }

    async fn revisions_pinning(&self, digest: &str) -> Result<Vec<RevisionRecord>> {
        revisions::revisions_pinning(self, digest).await
    }
}
