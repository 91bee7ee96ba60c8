//! Persistence for HTTP routes: a row per route, its spec as JSON text. Routes go with their
//! namespace (the foreign key cascades).

use rusqlite::{params, Connection, OptionalExtension, Row};

use faasbox_store::{Result, RouteRecord, StoreError};

use crate::{namespace_exists, sql, Sql, SqliteStore};

const COLUMNS: &str = "namespace, name, spec, created, modified";

impl SqliteStore {
    /// Creates or replaces a route, keeping `created` on replace. The namespace must exist.
    pub fn put_route(&self, record: &RouteRecord) -> Result<RouteRecord> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            if !namespace_exists(&tx, &record.namespace)? {
                return Err(StoreError::NoNamespace(record.namespace.clone()).into());
            }
            tx.execute(
                "INSERT INTO routes (namespace, name, spec, created, modified)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (namespace, name)
                 DO UPDATE SET spec = excluded.spec, modified = excluded.modified",
                params![
                    record.namespace,
                    record.name,
                    record.spec,
                    record.created,
                    record.modified
                ],
            )?;
            let stored = read_route(&tx, &record.namespace, &record.name)?
                .ok_or_else(|| StoreError::backend("the route just written is not there"))?;
            tx.commit()?;
            Ok(stored)
        })
    }

    /// The route `name` of `namespace`; `None` when there is none.
    pub fn route(&self, namespace: &str, name: &str) -> Result<Option<RouteRecord>> {
        sql(|| read_route(&self.conn(), namespace, name))
    }

    /// The routes of a namespace ordered by name.
    pub fn list_routes(&self, namespace: &str) -> Result<Vec<RouteRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM routes WHERE namespace = ?1 ORDER BY name"
            ))?;
            let rows = stmt.query_map([namespace], route_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Every route, ordered by namespace then name.
    pub fn all_routes(&self) -> Result<Vec<RouteRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM routes ORDER BY namespace, name"
            ))?;
            let rows = stmt.query_map([], route_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Deletes a route; whether it existed.
    pub fn delete_route(&self, namespace: &str, name: &str) -> Result<bool> {
        sql(|| {
            Ok(self.conn().execute(
                "DELETE FROM routes WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
            )? > 0)
        })
    }
}

fn read_route(conn: &Connection, namespace: &str, name: &str) -> Sql<Option<RouteRecord>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM routes WHERE namespace = ?1 AND name = ?2"),
            params![namespace, name],
            route_row,
        )
        .optional()?)
}

fn route_row(r: &Row<'_>) -> rusqlite::Result<RouteRecord> {
    Ok(RouteRecord {
        namespace: r.get(0)?,
        name: r.get(1)?,
        spec: r.get(2)?,
        created: r.get(3)?,
        modified: r.get(4)?,
    })
}
