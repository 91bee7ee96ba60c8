//! The database schema and its migrations, applied in order on open.

use rusqlite::Connection;

use crate::{Result, StoreError};

/// The newest schema this build writes.
pub const SCHEMA_VERSION: i64 = 3;

const MIGRATIONS: &[&str] = &[
    // 1: namespaces, functions, invocations, logs.
    "CREATE TABLE namespaces (
         name TEXT PRIMARY KEY,
         created TEXT NOT NULL
     );
     CREATE TABLE functions (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         spec TEXT NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, name)
     );
     CREATE TABLE invocations (
         id TEXT PRIMARY KEY,
         namespace TEXT NOT NULL,
         function TEXT NOT NULL,
         status TEXT NOT NULL,
         started TEXT NOT NULL,
         ended TEXT,
         error_code TEXT,
         error_message TEXT
     );
     CREATE INDEX invocations_by_namespace ON invocations (namespace, started);
     CREATE TABLE invocation_logs (
         invocation_id TEXT NOT NULL,
         seq INTEGER NOT NULL,
         ts_ms INTEGER NOT NULL,
         stream TEXT NOT NULL,
         line TEXT NOT NULL,
         PRIMARY KEY (invocation_id, seq)
     );",
    // 2: secrets and registry credentials. The store keeps only blobs: values and passwords are
    // encrypted by faasbox-secrets before they get here. `data_keys.namespace` and
    // `registries.namespace` also hold the pseudo-namespaces of global scopes, which start with
    // '*' (real namespace names cannot), so these two tables have no foreign key.
    "CREATE TABLE data_keys (
         namespace TEXT PRIMARY KEY,
         key_id TEXT NOT NULL,
         wrapped BLOB NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL
     );
     CREATE TABLE secrets (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         ciphertext BLOB NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, name)
     );
     CREATE TABLE registries (
         id TEXT PRIMARY KEY,
         namespace TEXT NOT NULL,
         url TEXT NOT NULL,
         host TEXT NOT NULL,
         username TEXT NOT NULL,
         ciphertext BLOB NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         UNIQUE (namespace, host)
     );",
    // 3: workflows: flow sources, instances with their checkpoint (saved state by state),
    // the states each finished, instance logs, and variables of three scopes.
    "CREATE TABLE flows (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         path TEXT NOT NULL,
         source TEXT NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, path)
     );
     CREATE TABLE flow_instances (
         id TEXT PRIMARY KEY,
         namespace TEXT NOT NULL,
         flow TEXT NOT NULL,
         source TEXT NOT NULL,
         status TEXT NOT NULL,
         input TEXT NOT NULL,
         output TEXT,
         error_code TEXT,
         error_message TEXT,
         checkpoint TEXT NOT NULL,
         parent TEXT,
         created TEXT NOT NULL,
         updated TEXT NOT NULL
     );
     CREATE INDEX flow_instances_by_namespace ON flow_instances (namespace, created);
     CREATE INDEX flow_instances_by_status ON flow_instances (status);
     CREATE TABLE flow_instance_states (
         instance TEXT NOT NULL,
         step INTEGER NOT NULL,
         state TEXT NOT NULL,
         finished TEXT NOT NULL,
         PRIMARY KEY (instance, step)
     );
     CREATE TABLE flow_instance_logs (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         instance TEXT NOT NULL,
         ts_ms INTEGER NOT NULL,
         message TEXT NOT NULL
     );
     CREATE INDEX flow_instance_logs_by_instance ON flow_instance_logs (instance, seq);
     CREATE TABLE flow_variables (
         namespace TEXT NOT NULL,
         scope TEXT NOT NULL,
         owner TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, scope, owner, key)
     );",
];

pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))?;
    }
    Ok(())
}
