//! Persistence for API tokens: only a token's SHA-256 hash is stored, with its id, name,
//! namespace (none for server-wide admin tokens) and role.

use rusqlite::{params, Row};

use faasbox_store::{Result, StoreError, TokenRecord};

use crate::{sql, SqliteStore};

const COLUMNS: &str = "id, name, namespace, role, hash, created";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        namespace: row.get(2)?,
        role: row.get(3)?,
        hash: row.get(4)?,
        created: row.get(5)?,
    })
}

impl SqliteStore {
    /// Stores a token; fails with `NoNamespace` when its namespace does not exist.
    pub fn insert_token(&self, record: &TokenRecord) -> Result<()> {
        sql(|| {
            let conn = self.conn();
            if let Some(ns) = &record.namespace {
                if !crate::namespace_exists(&conn, ns)? {
                    return Err(StoreError::NoNamespace(ns.clone()).into());
                }
            }
            conn.execute(
                &format!("INSERT INTO tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    record.id,
                    record.name,
                    record.namespace,
                    record.role,
                    record.hash,
                    record.created
                ],
            )?;
            Ok(())
        })
    }

    /// Inserts an admin token if there is none (one statement: SQLite's one connection makes
    /// the check and the insert one step).
    pub fn insert_first_admin(&self, record: &TokenRecord) -> Result<bool> {
        sql(|| {
            let changed = self.conn().execute(
                &format!(
                    "INSERT INTO tokens ({COLUMNS}) SELECT ?1, ?2, NULL, ?3, ?4, ?5
                     WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE namespace IS NULL)"
                ),
                params![
                    record.id,
                    record.name,
                    record.role,
                    record.hash,
                    record.created
                ],
            )?;
            Ok(changed == 1)
        })
    }

    /// Every token, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM tokens ORDER BY created, id"
            ))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Deletes a token by id; whether it existed.
    pub fn delete_token(&self, id: &str) -> Result<bool> {
        sql(|| {
            Ok(self
                .conn()
                .execute("DELETE FROM tokens WHERE id = ?1", params![id])?
                > 0)
        })
    }

    /// The token whose hash is `hash`, if one is stored.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt =
                conn.prepare(&format!("SELECT {COLUMNS} FROM tokens WHERE hash = ?1"))?;
            let mut rows = stmt.query_map(params![hash], from_row)?;
            Ok(rows.next().transpose()?)
        })
    }
}
