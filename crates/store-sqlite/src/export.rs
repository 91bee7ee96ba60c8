//! Every row of the database, table by table, for `faasbox admin migrate-store`: the tables in
//! the order their foreign keys need (a parent before its children), each row as plain values,
//! with SQLite's `rowid` as the last column (the PostgreSQL schema has an explicit `rowid`
//! column where SQLite's code orders by it).
//!
//! The export holds the database's write lock from [`SqliteStore::lock_for_export`] to the
//! guard's drop: nobody writes meanwhile, and every read sees the same state.

use rusqlite::types::ValueRef;

use faasbox_store::{Result, StoreError};

use crate::{sql, SqliteStore};

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL's NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text (UTF-8).
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A table to export: its name and its columns, `rowid` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTable {
    /// The table's name (the same in both backends).
    pub name: String,
    /// Its columns in SQLite's order, [`ROWID`] last.
    pub columns: Vec<String>,
}

/// The name the extra last column has: SQLite's rowid.
pub const ROWID: &str = "rowid";

/// Every table of the newest schema, parents before children (the order the migrations made
/// them in: a table is only made after the tables its foreign keys name).
const TABLES: &[&str] = &[
    "namespaces",
    "functions",
    "invocations",
    "invocation_logs",
    "data_keys",
    "secrets",
    "registries",
    "tokens",
    "global_functions",
    "flows",
    "flow_instances",
    "flow_instance_states",
    "flow_instance_logs",
    "flow_variables",
    "events",
    "event_listeners",
    "event_gathered",
    "event_deliveries",
    "schedules",
    "delayed_events",
    "image_pull_failures",
    "function_revisions",
    "flow_instance_calls",
    "code_records",
    "code_build_logs",
    "code_build_cache",
    "services",
    "service_secret_params",
    "subscriptions",
    "routes",
    "flow_instance_steps",
    "changes",
    "image_names",
];

/// Tables an export leaves out on purpose. `nodes` (sc-nodes): which servers ran on the old
/// database says nothing about the servers of the new one; each registers itself there.
// Sessions are not carried over: after a move everyone signs in again.
const NOT_EXPORTED: &[&str] = &["nodes", "ui_sessions"];

/// Holds the database's write lock while an export reads; releases it when dropped.
pub struct ExportLock {
    store: SqliteStore,
}

impl Drop for ExportLock {
    fn drop(&mut self) {
        // Nothing was written: ending the transaction releases the lock.
        let _ = self.store.conn().execute_batch("ROLLBACK");
    }
}

impl SqliteStore {
    /// Takes the database's write lock for an export, at once or not at all: when another
    /// connection holds it (a running server writing), the error says to stop that first.
    /// Reads through this store see one state until the guard is dropped.
    pub fn lock_for_export(&self) -> Result<ExportLock> {
        let conn = self.conn();
        conn.busy_timeout(std::time::Duration::ZERO)
            .map_err(crate::db)?;
        let locked = conn.execute_batch("BEGIN IMMEDIATE");
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(crate::db)?;
        match locked {
            Ok(()) => Ok(ExportLock {
                store: self.clone(),
            }),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Err(StoreError::Refused(
                    "another process is writing the database (a faasbox server running on this \
                     data directory?); stop it first"
                        .into(),
                ))
            }
            Err(e) => Err(crate::db(e)),
        }
    }

    /// The tables to export, in the order to copy them, with their columns (`rowid` last).
    /// Fails on a table this build does not know (the list would be out of date).
    pub fn export_tables(&self) -> Result<Vec<ExportTable>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )?;
            let present: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if let Some(unknown) = present
                .iter()
                .find(|t| !TABLES.contains(&t.as_str()) && !NOT_EXPORTED.contains(&t.as_str()))
            {
                return Err(StoreError::backend(format!(
                    "the database has a table this build cannot export: {unknown}"
                ))
                .into());
            }
            let mut tables = Vec::new();
            for name in TABLES {
                if !present.iter().any(|t| t == name) {
                    return Err(StoreError::backend(format!(
                        "the database lacks the table {name} (not migrated?)"
                    ))
                    .into());
                }
                let mut stmt = conn.prepare(&format!("PRAGMA table_info(\"{name}\")"))?;
                let mut columns: Vec<String> = stmt
                    .query_map([], |r| r.get::<_, String>(1))?
                    .collect::<rusqlite::Result<_>>()?;
                columns.push(ROWID.to_string());
                tables.push(ExportTable {
                    name: (*name).to_string(),
                    columns,
                });
            }
            Ok(tables)
        })
    }

    /// Up to `limit` rows of `table` whose rowid is above `after`, in rowid order; each row's
    /// values in the table's column order, its rowid last (the cursor of the next call).
    pub fn export_rows(
        &self,
        table: &ExportTable,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>> {
        sql(|| {
            let conn = self.conn();
            let columns: Vec<String> = table.columns.iter().map(|c| format!("\"{c}\"")).collect();
            let mut stmt = conn.prepare(&format!(
                "SELECT {} FROM \"{}\" WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                columns.join(", "),
                table.name
            ))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows = stmt.query(rusqlite::params![after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(table.columns.len());
                for (i, column) in table.columns.iter().enumerate() {
                    values.push(match row.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::Int(n),
                        ValueRef::Text(t) => {
                            Value::Text(String::from_utf8(t.to_vec()).map_err(|_| {
                                StoreError::backend(format!(
                                    "{}.{column} holds text that is not UTF-8",
                                    table.name
                                ))
                            })?)
                        }
                        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        ValueRef::Real(_) => {
                            return Err(StoreError::backend(format!(
                                "{}.{column} holds a floating-point number; no column of the \
                                 schema should",
                                table.name
                            ))
                            .into())
                        }
                    });
                }
                out.push(values);
            }
            Ok(out)
        })
    }

    /// How many rows `table` has.
    pub fn count_rows(&self, table: &str) -> Result<u64> {
        sql(|| {
            let n: i64 =
                self.conn()
                    .query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
                        r.get(0)
                    })?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_exported_with_its_rows_and_rowids() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .create_namespace("demo", "2026-01-01T00:00:00.000Z")
            .unwrap();
        store
            .create_namespace("ops", "2026-01-02T00:00:00.000Z")
            .unwrap();
        let tables = store.export_tables().unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, TABLES);
        let namespaces = &tables[0];
        assert_eq!(namespaces.columns, ["name", "created", "rowid"]);
        let _lock = store.lock_for_export().unwrap();
        let first = store.export_rows(namespaces, 0, 1).unwrap();
        assert_eq!(
            first,
            [vec![
                Value::Text("demo".into()),
                Value::Text("2026-01-01T00:00:00.000Z".into()),
                Value::Int(1)
            ]]
        );
        let rest = store.export_rows(namespaces, 1, 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0][0], Value::Text("ops".into()));
        assert_eq!(store.count_rows("namespaces").unwrap(), 2);
    }

    #[test]
    fn the_export_lock_is_refused_while_another_connection_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faasbox.db");
        let store = SqliteStore::open(&path).unwrap();
        let other = SqliteStore::open(&path).unwrap();
        let held = other.lock_for_export().unwrap();
        let refused = store.lock_for_export().err().expect("refused");
        assert!(refused.to_string().contains("stop it first"), "{refused}");
        drop(held);
        let _lock = store.lock_for_export().unwrap();
    }
}
