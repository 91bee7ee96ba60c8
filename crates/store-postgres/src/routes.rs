//! RouteStore on PostgreSQL: HTTP routes, their specs as JSON text (SQLite's `routes.rs`,
//! statement by statement). Routes go with their namespace (the foreign key cascades).

use async_trait::async_trait;
use faasbox_store::{Result, RouteRecord, RouteStore, StoreError};
use tokio_postgres::Row;

use crate::namespaces::namespace_exists;
use crate::{db, is_foreign_key_violation, PgStore};

const COLUMNS: &str = "namespace, name, spec, created, modified";

fn route_row(row: &Row) -> Result<RouteRecord> {
    Ok(RouteRecord {
        namespace: row.try_get(0).map_err(db)?,
        name: row.try_get(1).map_err(db)?,
        spec: row.try_get(2).map_err(db)?,
        created: row.try_get(3).map_err(db)?,
        modified: row.try_get(4).map_err(db)?,
    })
}

#[async_trait]
impl RouteStore for PgStore {
    async fn put_route(&self, record: &RouteRecord) -> Result<RouteRecord> {
        let no_namespace = || StoreError::NoNamespace(record.namespace.clone());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        if !namespace_exists(&tx, &record.namespace).await? {
            return Err(no_namespace());
        }
        let stored = tx
            .query_one(
                &format!(
                    "INSERT INTO routes (namespace, name, spec, created, modified)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (namespace, name)
                     DO UPDATE SET spec = excluded.spec, modified = excluded.modified
                     RETURNING {COLUMNS}"
                ),
                &[
                    &record.namespace,
                    &record.name,
                    &record.spec,
                    &record.created,
                    &record.modified,
                ],
            )
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    no_namespace()
                } else {
                    db(e)
                }
            })?;
        let stored = route_row(&stored)?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn route(&self, namespace: &str, name: &str) -> Result<Option<RouteRecord>> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM routes WHERE namespace = $1 AND name = $2"),
                &[&namespace, &name],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(route_row)
            .transpose()
    }

    async fn list_routes(&self, namespace: &str) -> Result<Vec<RouteRecord>> {
        self.client()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM routes WHERE namespace = $1 ORDER BY name"),
                &[&namespace],
            )
            .await
            .map_err(db)?
            .iter()
            .map(route_row)
            .collect()
    }

    async fn all_routes(&self) -> Result<Vec<RouteRecord>> {
        self.client()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM routes ORDER BY namespace, name"),
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(route_row)
            .collect()
    }

    async fn delete_route(&self, namespace: &str, name: &str) -> Result<bool> {
        let deleted = self
            .client()
            .await?
            .execute(
                "DELETE FROM routes WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )
            .await
            .map_err(db)?;
        Ok(deleted > 0)
    }
}
