//! faasbox's metadata store on SQLite: one file in the data directory, WAL mode, one
//! connection behind a mutex. [`SqliteStore`] implements every trait of `faasbox-store`; the
//! async trait methods run the synchronous ones below on tokio's blocking threads
//! (`spawn_blocking`), so no async worker waits for SQLite. The synchronous methods are public
//! too, for callers that are on a blocking thread already.
//!
//! Schema migrations are in `schema.rs`; each file holds one part's SQL, and `traits.rs` the
//! trait implementations.

mod changes;
mod code;
mod delayed_events;
mod events;
mod export;
mod flows;
mod function_logs;
mod global_functions;
mod image_names;
mod nodes;
mod pull_failures;
mod revisions;
mod routes;
mod runs;
mod schema;
mod secrets;
mod services;
mod sessions;
mod tokens;
mod traits;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use faasbox_proto::{LogLine, LogStream};
use faasbox_store::{
    FunctionRecord, Interruption, InvocationEnd, InvocationRecord, NamespaceRecord, Result,
    StoreError,
};
use rusqlite::{params, Connection, OptionalExtension};

pub use export::{ExportLock, ExportTable, Value, ROWID};
pub use schema::SCHEMA_VERSION;

/// What the SQL code fails with inside: SQLite's error or a store error. The public methods
/// turn it into a [`StoreError`] (SQLite's as [`StoreError::Backend`]).
#[derive(Debug)]
pub(crate) enum Failure {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure::Sql(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> StoreError {
        match f {
            Failure::Sql(e) => StoreError::backend(e),
            Failure::Store(e) => e,
        }
    }
}

/// The result of the SQL code inside.
pub(crate) type Sql<T> = std::result::Result<T, Failure>;

/// Runs SQL code and gives its failure as a [`StoreError`].
pub(crate) fn sql<T>(work: impl FnOnce() -> Sql<T>) -> Result<T> {
    work().map_err(StoreError::from)
}

/// SQLite's error as a [`StoreError`].
pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

/// The SQLite store. Cloning it is cheap: clones share the one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

/// The database file's companions that SQLite creates with the database file's mode.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates the database file 0600 if it is missing, and makes it and its companions 0600
/// (a database an older version left readable to everyone).
fn private_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let private = std::fs::Permissions::from_mode(0o600);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?
        .set_permissions(private.clone())?;
    for suffix in COMPANIONS {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        match std::fs::set_permissions(&companion, private.clone()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating or migrating) the database at `path`. The database file and the
    /// files SQLite keeps next to it (`-wal`, `-shm`, `-journal`) are readable by their owner
    /// only: the file is made 0600 before SQLite opens it, and SQLite creates the others with
    /// the database file's mode.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        private_files(path).map_err(|source| StoreError::Private {
            path: path.display().to_string(),
            source,
        })?;
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(source),
        })?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<SqliteStore> {
        Self::init(Connection::open_in_memory().map_err(db)?)
    }

    fn init(conn: Connection) -> Result<SqliteStore> {
        sql(|| Self::init_in(conn))
    }

    fn init_in(conn: Connection) -> Sql<SqliteStore> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (every write is one
        // statement or one transaction), so a poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    // --- namespaces ---------------------------------------------------------------------

    /// Creates a namespace; `NamespaceExists` when one of that name exists
    /// (`faasbox_store::NamespaceStore::create_namespace`).
    pub fn create_namespace(&self, name: &str, created: &str) -> Result<NamespaceRecord> {
        sql(|| {
            let conn = self.conn();
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO namespaces (name, created) VALUES (?1, ?2)",
                params![name, created],
            )?;
            if inserted == 0 {
                return Err(StoreError::NamespaceExists(name.to_string()).into());
            }
            Ok(NamespaceRecord {
                name: name.to_string(),
                created: created.to_string(),
            })
        })
    }

    /// The namespace `name`; `None` when it does not exist.
    pub fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    "SELECT name, created FROM namespaces WHERE name = ?1",
                    [name],
                    |r| {
                        Ok(NamespaceRecord {
                            name: r.get(0)?,
                            created: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    /// Every namespace, ordered by name.
    pub fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT name, created FROM namespaces ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok(NamespaceRecord {
                    name: r.get(0)?,
                    created: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Deletes the namespace with everything of it, in one transaction (the list is
    /// `faasbox_store::NamespaceStore::delete_namespace`'s): some rows by the statements here,
    /// the rest (tokens, events, listeners, deliveries, schedules, delayed events) by the
    /// schema's `ON DELETE CASCADE`. False when absent.
    pub fn delete_namespace(&self, name: &str) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM invocation_logs WHERE invocation_id IN
               (SELECT id FROM invocations WHERE namespace = ?1)",
                [name],
            )?;
            tx.execute("DELETE FROM invocations WHERE namespace = ?1", [name])?;
            tx.execute("DELETE FROM functions WHERE namespace = ?1", [name])?;
            tx.execute("DELETE FROM function_revisions WHERE owner = ?1", [name])?;
            tx.execute("DELETE FROM image_pull_failures WHERE owner = ?1", [name])?;
            tx.execute("DELETE FROM image_names WHERE owner = ?1", [name])?;
            secrets::delete_namespace_secrets(&tx, name)?;
            flows::delete_namespace_flows(&tx, name)?;
            let deleted = tx.execute("DELETE FROM namespaces WHERE name = ?1", [name])?;
            tx.commit()?;
            Ok(deleted > 0)
        })
    }

    // --- functions ----------------------------------------------------------------------

    /// Creates or replaces a function's spec. Returns the stored record.
    pub fn put_function(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord> {
        sql(|| {
            let conn = self.conn();
            if !namespace_exists(&conn, namespace)? {
                return Err(StoreError::NoNamespace(namespace.to_string()).into());
            }
            conn.execute(
            "INSERT INTO functions (namespace, name, spec, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (namespace, name) DO UPDATE SET spec = excluded.spec, updated = excluded.updated",
            params![namespace, name, spec, now],
        )?;
            let record = conn.query_row(
                "SELECT namespace, name, spec, created, updated, revision FROM functions
             WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                function_from_row,
            )?;
            Ok(record)
        })
    }

    /// The function `name` of `namespace`; `None` when it does not exist.
    pub fn function(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    "SELECT namespace, name, spec, created, updated, revision FROM functions
                 WHERE namespace = ?1 AND name = ?2",
                    params![namespace, name],
                    function_from_row,
                )
                .optional()?)
        })
    }

    /// A namespace's functions, ordered by name.
    pub fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT namespace, name, spec, created, updated, revision FROM functions
             WHERE namespace = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([namespace], function_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Every function of every namespace (the server builds its pools from this at start).
    pub fn all_functions(&self) -> Result<Vec<FunctionRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
            "SELECT namespace, name, spec, created, updated, revision FROM functions ORDER BY namespace, name",
        )?;
            let rows = stmt.query_map([], function_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Deletes a function with its revisions. False when absent.
    pub fn delete_function(&self, namespace: &str, name: &str) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let deleted = tx.execute(
                "DELETE FROM functions WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
            )?;
            revisions::delete_all(&tx, namespace, name)?;
            tx.commit()?;
            Ok(deleted > 0)
        })
    }

    // --- invocations --------------------------------------------------------------------

    /// Stores a call as `running` (`faasbox_store::InvocationStore::start_invocation`).
    pub fn start_invocation(
        &self,
        id: &str,
        namespace: &str,
        function: &str,
        started: &str,
    ) -> Result<()> {
        sql(|| {
            self.conn().execute(
                "INSERT INTO invocations (id, namespace, function, status, started, began)
             VALUES (?1, ?2, ?3, 'running', ?4, ?4)",
                params![id, namespace, function, started],
            )?;
            Ok(())
        })
    }

    /// Records how a call ended together with its logs, in one transaction.
    pub fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let recorded = finish_invocation_in(&tx, id, end, logs)?;
            if recorded {
                tx.commit()?;
            }
            Ok(recorded)
        })
    }

    /// The call `id`; `None` when there is none.
    pub fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!(
                        "SELECT {} FROM invocations WHERE id = ?1",
                        runs::RUN_COLUMNS
                    ),
                    [id],
                    runs::run_from_row,
                )
                .optional()?)
        })
    }

    /// The newest invocations of a namespace (optionally of one function), newest first.
    pub fn list_invocations(
        &self,
        namespace: &str,
        function: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {} FROM invocations WHERE namespace = ?1 AND (?2 IS NULL OR function = ?2)
                 ORDER BY started DESC, rowid DESC LIMIT ?3",
                runs::RUN_COLUMNS
            ))?;
            let rows = stmt.query_map(params![namespace, function, limit], runs::run_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Appends lines to a call's log (after those it has), in one transaction.
    pub fn append_logs(&self, invocation_id: &str, logs: &[LogLine]) -> Result<()> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            append_logs_in(&tx, invocation_id, logs)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// A call's log lines, in the order they were appended.
    pub fn logs(&self, invocation_id: &str) -> Result<Vec<LogLine>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
            "SELECT ts_ms, stream, line FROM invocation_logs WHERE invocation_id = ?1 ORDER BY seq",
        )?;
            let rows = stmt.query_map([invocation_id], |r| {
                let stream: String = r.get(1)?;
                Ok(LogLine {
                    ts_ms: r.get::<_, i64>(0)?.max(0) as u64,
                    stream: stream_from_str(&stream),
                    line: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Marks calls that were running when the server stopped as `crashed`. Returns how many.
    pub fn fail_interrupted_invocations(&self, gone: &Interruption<'_>) -> Result<usize> {
        sql(|| {
            Ok(self.conn().execute(
                "UPDATE invocations SET status = 'crashed', ended = ?1,
                 error_code = NULL, error_type = 'SystemError', error_message = ?3
             WHERE status = 'running' AND mode = 'sync' AND (node = ?2 OR node IS NULL)",
                params![gone.ended, gone.node, gone.call_message()],
            )?)
        })
    }
}

pub(crate) fn namespace_exists(conn: &Connection, namespace: &str) -> Sql<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM namespaces WHERE name = ?1",
            [namespace],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Records how call `id` ended and appends its last log lines; `false` (nothing changed) when
/// `end.node` is given and the record names another node, or there is no record.
pub(crate) fn finish_invocation_in(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    end: &InvocationEnd<'_>,
    logs: &[LogLine],
) -> Sql<bool> {
    let phases = end.phases;
    // Every call ends here: the statement is compiled once.
    let mut update = tx.prepare_cached(
        "UPDATE invocations SET status = ?2, ended = ?3, error_code = ?4,
             error_message = ?5, error_type = ?6, output = ?7,
             input = COALESCE(?8, input), revision = COALESCE(?9, revision),
             cold_start = COALESCE(?10, cold_start), wait_ms = COALESCE(?11, wait_ms),
             init_ms = COALESCE(?12, init_ms), run_ms = COALESCE(?13, run_ms)
         WHERE id = ?1 AND (?14 IS NULL OR node IS NULL OR node = ?14)",
    )?;
    let changed = update.execute(params![
        id,
        end.status,
        end.ended,
        end.error_code,
        end.error_message,
        end.error_type,
        end.output,
        end.input,
        end.revision,
        end.cold_start,
        phases.map(|p| p.wait_ms as i64),
        phases.map(|p| p.init_ms as i64),
        phases.map(|p| p.run_ms as i64),
        end.node,
    ])?;
    drop(update);
    if changed == 0 {
        return Ok(false);
    }
    append_logs_in(tx, id, logs)?;
    Ok(true)
}

pub(crate) fn append_logs_in(
    tx: &rusqlite::Transaction<'_>,
    invocation_id: &str,
    logs: &[LogLine],
) -> Sql<()> {
    if logs.is_empty() {
        return Ok(());
    }
    let next: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq) + 1, 0) FROM invocation_logs WHERE invocation_id = ?1",
        [invocation_id],
        |r| r.get(0),
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO invocation_logs (invocation_id, seq, ts_ms, stream, line) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (offset, log) in logs.iter().enumerate() {
        stmt.execute(params![
            invocation_id,
            next + offset as i64,
            log.ts_ms as i64,
            stream_name(log.stream),
            log.line
        ])?;
    }
    Ok(())
}

fn stream_name(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
        LogStream::Function => "function",
        LogStream::Agent => "agent",
    }
}

pub(crate) fn stream_from_str(s: &str) -> LogStream {
    match s {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        "function" => LogStream::Function,
        _ => LogStream::Agent,
    }
}

/// The global services as function records (their namespace is [`GLOBAL_OWNER`]'s text),
/// shared by `global_functions` and `revisions`.
pub(crate) const GLOBAL_SELECT: &str =
    "SELECT '*global', name, spec, created, updated, revision FROM global_functions";

pub(crate) fn function_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FunctionRecord> {
    Ok(FunctionRecord {
        namespace: r.get(0)?,
        name: r.get(1)?,
        spec: r.get(2)?,
        created: r.get(3)?,
        updated: r.get(4)?,
        revision: r.get(5)?,
    })
}

#[cfg(test)]
mod tests;
