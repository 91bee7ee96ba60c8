//! SecretStore on PostgreSQL: wrapped data keys, secret ciphertexts and registry credentials,
//! as opaque blobs (the SQL mirrors faasbox-store-sqlite's secrets.rs).
//!
//! What SQLite gets from its single connection is made explicit here:
//! - the first data key of a namespace wins with `ON CONFLICT DO NOTHING` (a racing insert
//!   waits for the other's commit and then does nothing) and the stored key is read back;
//! - a re-wrap locks the table against every writer (`SHARE ROW EXCLUSIVE`) for its one
//!   transaction, so no key is added or changed between its read and its commit;
//! - a write that checks its namespace and data key holds both rows `FOR SHARE` until it
//!   commits, so neither can be deleted under it.

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use faasbox_store::{
    is_pseudo_namespace, DataKeyRecord, RegistryRecord, Result, Rewrap, SecretEntry, SecretRecord,
    SecretStore, StoreError,
};
use tokio_postgres::Row;

use crate::{db, is_foreign_key_violation, PgStore};

const DATA_KEY_COLUMNS: &str = "namespace, key_id, wrapped, created, updated";
const SECRET_COLUMNS: &str = "namespace, name, ciphertext, created, updated";
const REGISTRY_COLUMNS: &str = "id, namespace, url, host, username, ciphertext, created, updated";

#[async_trait]
impl SecretStore for PgStore {
    async fn data_key(&self, namespace: &str) -> Result<Option<DataKeyRecord>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE namespace = $1"),
            &[&namespace],
        )
        .await
        .map_err(db)?
        .map(|r| data_key_from_row(&r))
        .transpose()
    }

    async fn insert_data_key(&self, record: &DataKeyRecord) -> Result<DataKeyRecord> {
        let c = self.client().await?;
        // Two statements, as on SQLite: under READ COMMITTED the SELECT takes a fresh snapshot,
        // so it sees the winner's row whether this insert or a concurrent one stored it (a
        // concurrent insert of the same key makes this one wait for its commit).
        c.execute(
            &format!(
                "INSERT INTO data_keys ({DATA_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (namespace) DO NOTHING"
            ),
            &[
                &record.namespace,
                &record.key_id,
                &record.wrapped,
                &record.created,
                &record.updated,
            ],
        )
        .await
        .map_err(db)?;
        let stored = c
            .query_opt(
                &format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE namespace = $1"),
                &[&record.namespace],
            )
            .await
            .map_err(db)?;
        match stored {
            Some(row) => data_key_from_row(&row),
            // Only a namespace deleted right between the two statements gets here.
            None => Err(StoreError::NoNamespace(record.namespace.clone())),
        }
    }

    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>> {
        let c = self.client().await?;
        c.query(
            &format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY namespace"),
            &[],
        )
        .await
        .map_err(db)?
        .iter()
        .map(data_key_from_row)
        .collect()
    }

    async fn rewrap_data_keys(&self, now: &str, mut rewrap: Rewrap) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // SQLite's IMMEDIATE transaction: this mode conflicts with every INSERT, UPDATE and
        // DELETE (and with itself) but not with reads, so no key is added, changed or deleted
        // by anyone else until the commit.
        tx.batch_execute("LOCK TABLE data_keys IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(db)?;
        let records = tx
            .query(
                &format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY namespace"),
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(data_key_from_row)
            .collect::<Result<Vec<_>>>()?;
        let update = tx
            .prepare(
                "UPDATE data_keys SET key_id = $2, wrapped = $3, updated = $4 WHERE namespace = $1",
            )
            .await
            .map_err(db)?;
        for record in &records {
            // An error returns here and drops `tx`: every key stays as it was.
            let (key_id, wrapped) = rewrap(record)?;
            tx.execute(&update, &[&record.namespace, &key_id, &wrapped, &now])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(records.len())
    }

    async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        ciphertext: &[u8],
        now: &str,
    ) -> Result<SecretRecord> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        require_namespace_with_key(&tx, namespace).await?;
        tx.execute(
            "INSERT INTO secrets (namespace, name, ciphertext, created, updated)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (namespace, name)
             DO UPDATE SET ciphertext = excluded.ciphertext, updated = excluded.updated",
            &[&namespace, &name, &ciphertext, &now],
        )
        .await
        .map_err(|e| namespace_error(e, namespace))?;
        let row = tx
            .query_one(
                &format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE namespace = $1 AND name = $2"),
                &[&namespace, &name],
            )
            .await
            .map_err(db)?;
        let record = secret_from_row(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(record)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretRecord>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE namespace = $1 AND name = $2"),
            &[&namespace, &name],
        )
        .await
        .map_err(db)?
        .map(|r| secret_from_row(&r))
        .transpose()
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<SecretEntry>> {
        let c = self.client().await?;
        c.query(
            "SELECT namespace, name, created, updated FROM secrets
             WHERE namespace = $1 ORDER BY name",
            &[&namespace],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(SecretEntry {
                namespace: r.try_get(0).map_err(db)?,
                name: r.try_get(1).map_err(db)?,
                created: r.try_get(2).map_err(db)?,
                updated: r.try_get(3).map_err(db)?,
            })
        })
        .collect()
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM secrets WHERE namespace = $1 AND name = $2",
            &[&namespace, &name],
        )
        .await
        .map_err(db)?
            > 0)
    }

    async fn put_registry(&self, record: &RegistryRecord) -> Result<RegistryRecord> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        require_namespace_with_key(&tx, &record.namespace).await?;
        tx.execute(
            &format!(
                "INSERT INTO registries ({REGISTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (namespace, host) DO UPDATE SET url = excluded.url,
                     username = excluded.username, ciphertext = excluded.ciphertext,
                     updated = excluded.updated"
            ),
            &[
                &record.id,
                &record.namespace,
                &record.url,
                &record.host,
                &record.username,
                &record.ciphertext,
                &record.created,
                &record.updated,
            ],
        )
        .await
        .map_err(db)?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT {REGISTRY_COLUMNS} FROM registries WHERE namespace = $1 AND host = $2"
                ),
                &[&record.namespace, &record.host],
            )
            .await
            .map_err(db)?;
        let stored = registry_from_row(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn registry(&self, namespace: &str, host: &str) -> Result<Option<RegistryRecord>> {
        let c = self.client().await?;
        c.query_opt(
            &format!(
                "SELECT {REGISTRY_COLUMNS} FROM registries WHERE namespace = $1 AND host = $2"
            ),
            &[&namespace, &host],
        )
        .await
        .map_err(db)?
        .map(|r| registry_from_row(&r))
        .transpose()
    }

    async fn list_registries(&self, namespace: &str) -> Result<Vec<RegistryRecord>> {
        let c = self.client().await?;
        c.query(
            &format!(
                "SELECT {REGISTRY_COLUMNS} FROM registries WHERE namespace = $1 ORDER BY host"
            ),
            &[&namespace],
        )
        .await
        .map_err(db)?
        .iter()
        .map(registry_from_row)
        .collect()
    }

    async fn delete_registry(&self, namespace: &str, host: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM registries WHERE namespace = $1 AND host = $2",
            &[&namespace, &host],
        )
        .await
        .map_err(db)?
            > 0)
    }
}

/// A real namespace must exist, and every owner of encrypted rows must have a data key (it can
/// vanish with a namespace deleted while a value was being encrypted). Both rows are locked
/// `FOR SHARE` until the caller's transaction ends: a concurrent `delete_namespace` waits for
/// its commit and then deletes what it wrote, instead of leaving it behind.
pub(crate) async fn require_namespace_with_key(
    tx: &Transaction<'_>,
    namespace: &str,
) -> Result<()> {
    if !is_pseudo_namespace(namespace) {
        require_namespace(tx, namespace).await?;
    }
    let has_key = tx
        .query_opt(
            "SELECT 1 FROM data_keys WHERE namespace = $1 FOR SHARE",
            &[&namespace],
        )
        .await
        .map_err(db)?
        .is_some();
    if !has_key {
        return Err(StoreError::NoDataKey(namespace.to_string()));
    }
    Ok(())
}

/// The namespace must exist (`NoNamespace`); its row stays locked `FOR SHARE` until the
/// caller's transaction ends, so it cannot be deleted under the caller's writes (SQLite's
/// `namespace_exists` in the writing transaction).
pub(crate) async fn require_namespace(tx: &Transaction<'_>, namespace: &str) -> Result<()> {
    let exists = tx
        .query_opt(
            "SELECT 1 FROM namespaces WHERE name = $1 FOR SHARE",
            &[&namespace],
        )
        .await
        .map_err(db)?
        .is_some();
    if !exists {
        return Err(StoreError::NoNamespace(namespace.to_string()));
    }
    Ok(())
}

/// A write's error, as `NoNamespace` when the namespace was missing after all.
pub(crate) fn namespace_error(e: tokio_postgres::Error, namespace: &str) -> StoreError {
    if is_foreign_key_violation(&e) {
        StoreError::NoNamespace(namespace.to_string())
    } else {
        db(e)
    }
}

fn data_key_from_row(r: &Row) -> Result<DataKeyRecord> {
    Ok(DataKeyRecord {
        namespace: r.try_get(0).map_err(db)?,
        key_id: r.try_get(1).map_err(db)?,
        wrapped: r.try_get(2).map_err(db)?,
        created: r.try_get(3).map_err(db)?,
        updated: r.try_get(4).map_err(db)?,
    })
}

fn secret_from_row(r: &Row) -> Result<SecretRecord> {
    Ok(SecretRecord {
        namespace: r.try_get(0).map_err(db)?,
        name: r.try_get(1).map_err(db)?,
        ciphertext: r.try_get(2).map_err(db)?,
        created: r.try_get(3).map_err(db)?,
        updated: r.try_get(4).map_err(db)?,
    })
}

fn registry_from_row(r: &Row) -> Result<RegistryRecord> {
    Ok(RegistryRecord {
        id: r.try_get(0).map_err(db)?,
        namespace: r.try_get(1).map_err(db)?,
        url: r.try_get(2).map_err(db)?,
        host: r.try_get(3).map_err(db)?,
        username: r.try_get(4).map_err(db)?,
        ciphertext: r.try_get(5).map_err(db)?,
        created: r.try_get(6).map_err(db)?,
        updated: r.try_get(7).map_err(db)?,
    })
}
