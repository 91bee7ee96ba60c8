//! ServiceStore on PostgreSQL: a row per service (its plain parameters as a JSON object) and a
//! row per secret parameter (its ciphertext, opaque here), both going with their namespace
//! (foreign keys cascade). The SQL mirrors faasbox-store-sqlite's services.rs, except that a
//! service is read with its secret parameters in one statement (one snapshot) rather than two:
//! on PostgreSQL another connection can replace the service between two statements.

use std::collections::BTreeMap;

use async_trait::async_trait;
use faasbox_store::{Result, ServiceRecord, ServiceStore, StoreError};
use tokio_postgres::Row;

use crate::secrets::{namespace_error, require_namespace};
use crate::{db, PgStore};

/// A service's columns with one of its secret parameters (NULLs when it has none): what
/// [`services_from_rows`] folds into records.
const SERVICE_ROWS: &str = "SELECT s.namespace, s.name, s.params, s.created, s.modified,
        p.key, p.ciphertext
     FROM services s LEFT JOIN service_secret_params p
         ON p.namespace = s.namespace AND p.service = s.name";

#[async_trait]
impl ServiceStore for PgStore {
    async fn put_service(&self, record: &ServiceRecord) -> Result<ServiceRecord> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The namespace row is held FOR SHARE until the commit (see secrets.rs).
        require_namespace(&tx, &record.namespace).await?;
        if !record.secret_params.is_empty() {
            let has_key = tx
                .query_opt(
                    "SELECT 1 FROM data_keys WHERE namespace = $1 FOR SHARE",
                    &[&record.namespace],
                )
                .await
                .map_err(db)?
                .is_some();
            if !has_key {
                return Err(StoreError::NoDataKey(record.namespace.clone()));
            }
        }
        let params = serde_json::to_string(&record.params).map_err(StoreError::backend)?;
        // The upsert locks the service's row: a concurrent put of the same service waits here
        // for this one's commit, so the secret parameters are never a mix of both.
        tx.execute(
            "INSERT INTO services (namespace, name, params, created, modified)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (namespace, name)
             DO UPDATE SET params = excluded.params, modified = excluded.modified",
            &[
                &record.namespace,
                &record.name,
                &params,
                &record.created,
                &record.modified,
            ],
        )
        .await
        .map_err(|e| namespace_error(e, &record.namespace))?;
        tx.execute(
            "DELETE FROM service_secret_params WHERE namespace = $1 AND service = $2",
            &[&record.namespace, &record.name],
        )
        .await
        .map_err(db)?;
        if !record.secret_params.is_empty() {
            // All of them in one statement: the keys and ciphertexts as two parallel arrays.
            let keys: Vec<&str> = record.secret_params.keys().map(String::as_str).collect();
            let ciphertexts: Vec<&[u8]> =
                record.secret_params.values().map(Vec::as_slice).collect();
            tx.execute(
                "INSERT INTO service_secret_params (namespace, service, key, ciphertext)
                 SELECT $1, $2, key, ciphertext FROM UNNEST($3::text[], $4::bytea[])
                     AS p (key, ciphertext)",
                &[&record.namespace, &record.name, &keys, &ciphertexts],
            )
            .await
            .map_err(db)?;
        }
        let rows = tx
            .query(
                &format!("{SERVICE_ROWS} WHERE s.namespace = $1 AND s.name = $2"),
                &[&record.namespace, &record.name],
            )
            .await
            .map_err(db)?;
        let stored = services_from_rows(&rows)?
            .pop()
            .ok_or_else(|| StoreError::backend("the service just written is not there"))?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn service(&self, namespace: &str, name: &str) -> Result<Option<ServiceRecord>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("{SERVICE_ROWS} WHERE s.namespace = $1 AND s.name = $2"),
                &[&namespace, &name],
            )
            .await
            .map_err(db)?;
        Ok(services_from_rows(&rows)?.pop())
    }

    async fn list_services(&self, namespace: &str) -> Result<Vec<ServiceRecord>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("{SERVICE_ROWS} WHERE s.namespace = $1 ORDER BY s.name, p.key"),
                &[&namespace],
            )
            .await
            .map_err(db)?;
        services_from_rows(&rows)
    }

    async fn delete_service(&self, namespace: &str, name: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM services WHERE namespace = $1 AND name = $2",
            &[&namespace, &name],
        )
        .await
        .map_err(db)?
            > 0)
    }
}

/// Folds [`SERVICE_ROWS`] (one row per secret parameter, the rows of one service next to each
/// other) into services, in the rows' order.
fn services_from_rows(rows: &[Row]) -> Result<Vec<ServiceRecord>> {
    let mut services: Vec<ServiceRecord> = Vec::new();
    for row in rows {
        let namespace: String = row.try_get(0).map_err(db)?;
        let name: String = row.try_get(1).map_err(db)?;
        let same = services
            .last()
            .is_some_and(|s| s.namespace == namespace && s.name == name);
        if !same {
            let params: String = row.try_get(2).map_err(db)?;
            let params: BTreeMap<String, String> =
                serde_json::from_str(&params).map_err(StoreError::backend)?;
            services.push(ServiceRecord {
                namespace,
                name,
                params,
                secret_params: BTreeMap::new(),
                created: row.try_get(3).map_err(db)?,
                modified: row.try_get(4).map_err(db)?,
            });
        }
        let key: Option<String> = row.try_get(5).map_err(db)?;
        let ciphertext: Option<Vec<u8>> = row.try_get(6).map_err(db)?;
        if let (Some(key), Some(ciphertext), Some(service)) = (key, ciphertext, services.last_mut())
        {
            service.secret_params.insert(key, ciphertext);
        }
    }
    Ok(services)
}
