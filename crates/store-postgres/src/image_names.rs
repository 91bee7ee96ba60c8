//! ImageCatalogStore on PostgreSQL: the cluster's image catalog (SQLite's `image_names.rs`,
//! statement by statement; each method is one statement, so racing servers need nothing more:
//! the newest put wins).

use async_trait::async_trait;
use faasbox_store::{ImageCatalogStore, ImageNameRecord, Result};
use tokio_postgres::Row;

use crate::{db, PgStore};

fn record(row: &Row) -> Result<ImageNameRecord> {
    Ok(ImageNameRecord {
        owner: row.try_get(0).map_err(db)?,
        name: row.try_get(1).map_err(db)?,
        digest: row.try_get(2).map_err(db)?,
        updated: row.try_get(3).map_err(db)?,
    })
}

#[async_trait]
impl ImageCatalogStore for PgStore {
    async fn put_image_name(&self, owner: &str, name: &str, digest: &str, now: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO image_names (owner, name, digest, updated) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (owner, name) DO UPDATE SET digest = excluded.digest,
                     updated = excluded.updated",
                &[&owner, &name, &digest, &now],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_image_name(&self, owner: &str, name: &str) -> Result<bool> {
        let deleted = self
            .client()
            .await?
            .execute(
                "DELETE FROM image_names WHERE owner = $1 AND name = $2",
                &[&owner, &name],
            )
            .await
            .map_err(db)?;
        Ok(deleted > 0)
    }

    async fn image_name(&self, owner: &str, name: &str) -> Result<Option<ImageNameRecord>> {
        self.client()
            .await?
            .query_opt(
                "SELECT owner, name, digest, updated FROM image_names
                 WHERE owner = $1 AND name = $2",
                &[&owner, &name],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(record)
            .transpose()
    }

    async fn image_names(&self, owner: Option<&str>) -> Result<Vec<ImageNameRecord>> {
        self.client()
            .await?
            .query(
                "SELECT owner, name, digest, updated FROM image_names
                 WHERE $1::TEXT IS NULL OR owner = $1 ORDER BY owner, name",
                &[&owner],
            )
            .await
            .map_err(db)?
            .iter()
            .map(record)
            .collect()
    }
}
