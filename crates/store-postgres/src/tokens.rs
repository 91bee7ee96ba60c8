//! TokenStore on PostgreSQL: API tokens as their hashes (SQLite's `tokens.rs`, statement by
//! statement).

use async_trait::async_trait;
use faasbox_store::{Result, StoreError, TokenRecord, TokenStore};
use tokio_postgres::Row;

use crate::{db, is_foreign_key_violation, PgStore};

const COLUMNS: &str = "id, name, namespace, role, hash, created";

fn from_row(row: &Row) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get(0).map_err(db)?,
        name: row.try_get(1).map_err(db)?,
        namespace: row.try_get(2).map_err(db)?,
        role: row.try_get(3).map_err(db)?,
        hash: row.try_get(4).map_err(db)?,
        created: row.try_get(5).map_err(db)?,
    })
}

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(&self, record: &TokenRecord) -> Result<()> {
        // SQLite checks the namespace first; here the foreign key checks it in the insert
        // itself, so a namespace deleted meanwhile cannot keep the token either.
        self.client()
            .await?
            .execute(
                &format!("INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
                &[
                    &record.id,
                    &record.name,
                    &record.namespace,
                    &record.role,
                    &record.hash,
                    &record.created,
                ],
            )
            .await
            .map_err(|e| match &record.namespace {
                Some(ns) if is_foreign_key_violation(&e) => StoreError::NoNamespace(ns.clone()),
                _ => db(e),
            })?;
        Ok(())
    }

    async fn insert_first_admin(&self, record: &TokenRecord) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // Servers starting together each check for an admin token: the lock makes the check
        // and the insert one step, so exactly one of them inserts (a plain NOT EXISTS lets
        // every concurrent transaction see none).
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('first_admin'))", &[])
            .await
            .map_err(db)?;
        let changed = tx
            .execute(
                &format!(
                    "INSERT INTO tokens ({COLUMNS}) SELECT $1, $2, NULL, $3, $4, $5
                     WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE namespace IS NULL)"
                ),
                &[
                    &record.id,
                    &record.name,
                    &record.role,
                    &record.hash,
                    &record.created,
                ],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(changed == 1)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.client()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM tokens ORDER BY created, id"),
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(from_row)
            .collect()
    }

    async fn delete_token(&self, id: &str) -> Result<bool> {
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM tokens WHERE id = $1", &[&id])
            .await
            .map_err(db)?;
        Ok(deleted > 0)
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM tokens WHERE hash = $1"),
                &[&hash],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(from_row)
            .transpose()
    }
}
