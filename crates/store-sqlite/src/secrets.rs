//! Persistence for secrets and registry credentials: wrapped data keys, secret ciphertexts and
//! registry rows.
//!
//! The store holds no crypto. Values and passwords arrive already encrypted (by
//! `faasbox-secrets`) and leave as the same opaque blobs. Rows belong to a namespace, or to a
//! pseudo-namespace of a global scope: those start with `*`, which a real namespace name cannot,
//! so deleting a namespace never touches them.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use faasbox_store::{
    is_pseudo_namespace, DataKeyRecord, RegistryRecord, Result, SecretEntry, SecretRecord,
    StoreError,
};

use crate::{db, namespace_exists, sql, Sql, SqliteStore};

const DATA_KEY_COLUMNS: &str = "namespace, key_id, wrapped, created, updated";
const SECRET_COLUMNS: &str = "namespace, name, ciphertext, created, updated";
const REGISTRY_COLUMNS: &str = "id, namespace, url, host, username, ciphertext, created, updated";

impl SqliteStore {
    // --- data keys ----------------------------------------------------------------------

    /// The data key of `namespace` (real or pseudo); `None` when it has none.
    pub fn data_key(&self, namespace: &str) -> Result<Option<DataKeyRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE namespace = ?1"),
                    [namespace],
                    data_key_from_row,
                )
                .optional()?)
        })
    }

    /// Stores a new data key unless the namespace already has one, and returns the one that is
    /// stored: when two callers race, both end up with the winner's key.
    pub fn insert_data_key(&self, record: &DataKeyRecord) -> Result<DataKeyRecord> {
        sql(|| {
            let conn = self.conn();
            conn.execute(
                &format!(
                "INSERT OR IGNORE INTO data_keys ({DATA_KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
                params![
                    record.namespace,
                    record.key_id,
                    record.wrapped,
                    record.created,
                    record.updated
                ],
            )?;
            Ok(conn.query_row(
                &format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE namespace = ?1"),
                [&record.namespace],
                data_key_from_row,
            )?)
        })
    }

    /// Every data key, ordered by namespace.
    pub fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY namespace"
            ))?;
            let rows = stmt.query_map([], data_key_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Re-wraps every data key in one write transaction: `rewrap` gets each stored key and
    /// returns its new `(key_id, wrapped)`. If `rewrap` fails for any key nothing is changed.
    /// No data key can be added or changed by anyone else between the read and the commit.
    /// Returns how many keys were re-wrapped. `rewrap` runs with the store locked: it must not
    /// call the store.
    pub fn rewrap_data_keys<E, F>(&self, now: &str, mut rewrap: F) -> std::result::Result<usize, E>
    where
        E: From<StoreError>,
        F: FnMut(&DataKeyRecord) -> std::result::Result<(String, Vec<u8>), E>,
    {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let records = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY namespace"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], data_key_from_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?
        };
        for record in &records {
            let (key_id, wrapped) = rewrap(record)?;
            tx.execute(
                "UPDATE data_keys SET key_id = ?2, wrapped = ?3, updated = ?4 WHERE namespace = ?1",
                params![record.namespace, key_id, wrapped, now],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(records.len())
    }

    // --- secrets ------------------------------------------------------------------------

    /// Creates or replaces a secret's ciphertext (keeping `created` on replace). The namespace
    /// must exist and have a data key.
    pub fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        ciphertext: &[u8],
        now: &str,
    ) -> Result<SecretRecord> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            require_namespace_with_key(&tx, namespace)?;
            tx.execute(
                "INSERT INTO secrets (namespace, name, ciphertext, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (namespace, name)
             DO UPDATE SET ciphertext = excluded.ciphertext, updated = excluded.updated",
                params![namespace, name, ciphertext, now],
            )?;
            let record = tx.query_row(
                &format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE namespace = ?1 AND name = ?2"),
                params![namespace, name],
                secret_from_row,
            )?;
            tx.commit()?;
            Ok(record)
        })
    }

    /// The secret `name` of `namespace`; `None` when there is none.
    pub fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!(
                        "SELECT {SECRET_COLUMNS} FROM secrets WHERE namespace = ?1 AND name = ?2"
                    ),
                    params![namespace, name],
                    secret_from_row,
                )
                .optional()?)
        })
    }

    /// The secrets of a namespace by name, without their values.
    pub fn list_secrets(&self, namespace: &str) -> Result<Vec<SecretEntry>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT namespace, name, created, updated FROM secrets
             WHERE namespace = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([namespace], |r| {
                Ok(SecretEntry {
                    namespace: r.get(0)?,
                    name: r.get(1)?,
                    created: r.get(2)?,
                    updated: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Deletes a secret; whether it existed.
    pub fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool> {
        sql(|| {
            Ok(self.conn().execute(
                "DELETE FROM secrets WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
            )? > 0)
        })
    }

    // --- registries ---------------------------------------------------------------------

    /// Creates or replaces the credentials of `record.host` in `record.namespace`. On replace
    /// the stored `id` and `created` are kept and `record.updated` is taken as the time.
    /// A real namespace must exist; every namespace (real or pseudo) must have a data key.
    pub fn put_registry(&self, record: &RegistryRecord) -> Result<RegistryRecord> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            require_namespace_with_key(&tx, &record.namespace)?;
            tx.execute(
                &format!(
                "INSERT INTO registries ({REGISTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (namespace, host) DO UPDATE SET url = excluded.url,
                     username = excluded.username, ciphertext = excluded.ciphertext,
                     updated = excluded.updated"
            ),
                params![
                    record.id,
                    record.namespace,
                    record.url,
                    record.host,
                    record.username,
                    record.ciphertext,
                    record.created,
                    record.updated
                ],
            )?;
            let stored = tx.query_row(
                &format!(
                    "SELECT {REGISTRY_COLUMNS} FROM registries WHERE namespace = ?1 AND host = ?2"
                ),
                params![record.namespace, record.host],
                registry_from_row,
            )?;
            tx.commit()?;
            Ok(stored)
        })
    }

    /// The credentials of `host` in `namespace`; `None` when there are none.
    pub fn registry(&self, namespace: &str, host: &str) -> Result<Option<RegistryRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!(
                    "SELECT {REGISTRY_COLUMNS} FROM registries WHERE namespace = ?1 AND host = ?2"
                ),
                    params![namespace, host],
                    registry_from_row,
                )
                .optional()?)
        })
    }

    /// A namespace's (or pseudo-namespace's) registry credentials, ordered by host.
    pub fn list_registries(&self, namespace: &str) -> Result<Vec<RegistryRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {REGISTRY_COLUMNS} FROM registries WHERE namespace = ?1 ORDER BY host"
            ))?;
            let rows = stmt.query_map([namespace], registry_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Deletes the credentials of `host` in `namespace`; whether they existed.
    pub fn delete_registry(&self, namespace: &str, host: &str) -> Result<bool> {
        sql(|| {
            Ok(self.conn().execute(
                "DELETE FROM registries WHERE namespace = ?1 AND host = ?2",
                params![namespace, host],
            )? > 0)
        })
    }
}

/// Deletes a namespace's secrets, registries and data key (part of deleting the namespace).
pub(crate) fn delete_namespace_secrets(tx: &Connection, namespace: &str) -> Sql<()> {
    if is_pseudo_namespace(namespace) {
        return Ok(());
    }
    tx.execute("DELETE FROM secrets WHERE namespace = ?1", [namespace])?;
    tx.execute("DELETE FROM registries WHERE namespace = ?1", [namespace])?;
    tx.execute("DELETE FROM data_keys WHERE namespace = ?1", [namespace])?;
    Ok(())
}

/// A real namespace must exist, and every owner of encrypted rows must have a data key (it
/// can vanish with a namespace deleted while a value was being encrypted).
fn require_namespace_with_key(conn: &Connection, namespace: &str) -> Sql<()> {
    if !is_pseudo_namespace(namespace) && !namespace_exists(conn, namespace)? {
        return Err(StoreError::NoNamespace(namespace.to_string()).into());
    }
    let has_key = conn
        .query_row(
            "SELECT 1 FROM data_keys WHERE namespace = ?1",
            [namespace],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_key {
        return Err(StoreError::NoDataKey(namespace.to_string()).into());
    }
    Ok(())
}

fn data_key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DataKeyRecord> {
    Ok(DataKeyRecord {
        namespace: r.get(0)?,
        key_id: r.get(1)?,
        wrapped: r.get(2)?,
        created: r.get(3)?,
        updated: r.get(4)?,
    })
}

fn secret_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRecord> {
    Ok(SecretRecord {
        namespace: r.get(0)?,
        name: r.get(1)?,
        ciphertext: r.get(2)?,
        created: r.get(3)?,
        updated: r.get(4)?,
    })
}

fn registry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RegistryRecord> {
    Ok(RegistryRecord {
        id: r.get(0)?,
        namespace: r.get(1)?,
        url: r.get(2)?,
        host: r.get(3)?,
        username: r.get(4)?,
        ciphertext: r.get(5)?,
        created: r.get(6)?,
        updated: r.get(7)?,
    })
}
