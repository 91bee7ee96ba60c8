//! NamespaceStore on PostgreSQL: creating, finding, listing and deleting namespaces. The SQL
//! mirrors faasbox-store-sqlite's `lib.rs` (its namespaces section) statement by statement.

use async_trait::async_trait;
use faasbox_store::{is_pseudo_namespace, NamespaceRecord, NamespaceStore, Result, StoreError};
use tokio_postgres::{Row, Transaction};

use crate::{db, PgStore};

/// Whether namespace `name` exists, read inside `tx` with the row locked `FOR KEY SHARE` until
/// the transaction ends: a [`NamespaceStore::delete_namespace`] (which locks the row `FOR
/// UPDATE` first) then waits for the writer, or the writer waits for it and finds no row. So a
/// write into a table without a foreign key to `namespaces` never leaves a row of a namespace
/// deleted meanwhile. (SQLite's `namespace_exists`; its one connection needs no lock.)
pub(crate) async fn namespace_exists(tx: &Transaction<'_>, name: &str) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM namespaces WHERE name = $1 FOR KEY SHARE",
            &[&name],
        )
        .await
        .map_err(db)?
        .is_some())
}

fn namespace_from_row(row: &Row) -> Result<NamespaceRecord> {
    Ok(NamespaceRecord {
        name: row.try_get(0).map_err(db)?,
        created: row.try_get(1).map_err(db)?,
    })
}

#[async_trait]
impl NamespaceStore for PgStore {
    async fn create_namespace(&self, name: &str, created: &str) -> Result<NamespaceRecord> {
        // One statement: the primary key decides between racing creators (the loser's insert
        // waits for the winner's commit, then does nothing), so exactly one sees a row added.
        let inserted = self
            .client()
            .await?
            .execute(
                "INSERT INTO namespaces (name, created) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&name, &created],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::NamespaceExists(name.to_string()));
        }
        Ok(NamespaceRecord {
            name: name.to_string(),
            created: created.to_string(),
        })
    }

    async fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>> {
        self.client()
            .await?
            .query_opt(
                "SELECT name, created FROM namespaces WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(namespace_from_row)
            .transpose()
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        self.client()
            .await?
            .query("SELECT name, created FROM namespaces ORDER BY name", &[])
            .await
            .map_err(db)?
            .iter()
            .map(namespace_from_row)
            .collect()
    }

    async fn delete_namespace(&self, name: &str) -> Result<bool> {
        // SQLite's list of statements, in one transaction; the tables not named here (tokens,
        // events, listeners, gathered, deliveries, schedules, delayed events, code, services,
        // subscriptions, routes) go by the schema's `ON DELETE CASCADE` as on SQLite.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // PostgreSQL only: lock the namespace's row first, so a writer that checks the namespace
        // with `FOR SHARE` (or inserts a row referencing it) waits for this delete instead of
        // adding a row of a namespace that is going.
        tx.execute(
            "SELECT 1 FROM namespaces WHERE name = $1 FOR UPDATE",
            &[&name],
        )
        .await
        .map_err(db)?;
        let statements = [
            "DELETE FROM invocation_logs WHERE invocation_id IN
               (SELECT id FROM invocations WHERE namespace = $1)",
            "DELETE FROM invocations WHERE namespace = $1",
            "DELETE FROM functions WHERE namespace = $1",
            "DELETE FROM function_revisions WHERE owner = $1",
            "DELETE FROM image_pull_failures WHERE owner = $1",
            "DELETE FROM image_names WHERE owner = $1",
        ];
        for statement in statements {
            tx.execute(statement, &[&name]).await.map_err(db)?;
        }
        // SQLite's `secrets::delete_namespace_secrets`: a pseudo-namespace's keys and
        // credentials are never a namespace's to delete.
        if !is_pseudo_namespace(name) {
            for statement in [
                "DELETE FROM secrets WHERE namespace = $1",
                "DELETE FROM registries WHERE namespace = $1",
                "DELETE FROM data_keys WHERE namespace = $1",
            ] {
                tx.execute(statement, &[&name]).await.map_err(db)?;
            }
        }
        // SQLite's `flows::delete_namespace_flows`.
        for statement in [
            "DELETE FROM flow_instance_logs WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = $1)",
            "DELETE FROM flow_instance_states WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = $1)",
            "DELETE FROM flow_instance_steps WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = $1)",
            "DELETE FROM flow_instance_calls WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = $1)",
            "DELETE FROM flow_instances WHERE namespace = $1",
            "DELETE FROM flow_variables WHERE namespace = $1",
            "DELETE FROM flows WHERE namespace = $1",
        ] {
            tx.execute(statement, &[&name]).await.map_err(db)?;
        }
        let deleted = tx
            .execute("DELETE FROM namespaces WHERE name = $1", &[&name])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(deleted > 0)
    }
}
