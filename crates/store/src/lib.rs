//! faasbox's metadata store: namespaces, function specs, invocations and their logs.
//!
//! SQLite (one file in the data directory, WAL mode) is the embedded default. The store is
//! synchronous; the server calls it from `spawn_blocking`. Function specs are kept as JSON text:
//! their shape belongs to the server, the store only persists them. Secrets and registry
//! credentials are stored as opaque encrypted blobs (see [`secrets`]); the crypto lives in
//! `faasbox-secrets`.

pub mod delayed_events;
pub mod events;
pub mod flows;
pub mod function_logs;
pub mod global_functions;
pub mod pull_failures;
pub mod revisions;
mod schema;
pub mod secrets;
pub mod tokens;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use faasbox_proto::{LogLine, LogStream};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

pub use delayed_events::DelayedEvent;
pub use events::{
    Delivery, EventInsert, GatheredRecord, Listener, ListenerAction, ListenerKind, ListenerRecord,
    ScheduleRecord, StoredEvent,
};
pub use flows::{
    FlowInstanceRecord, FlowRecord, InstanceCallRecord, InstanceLogRecord, NewInstance,
    NewInstanceLog,
};
pub use function_logs::{FunctionLogLine, FunctionLogs};
pub use global_functions::GLOBAL_OWNER;
pub use pull_failures::PullFailure;
pub use revisions::{NewRevision, Revised, RevisionRecord};
pub use schema::SCHEMA_VERSION;
pub use secrets::{is_pseudo_namespace, DataKeyRecord, RegistryRecord, SecretEntry, SecretRecord};
pub use tokens::TokenRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot make the database {path} private (mode 0600): {source}")]
    Private {
        path: String,
        source: std::io::Error,
    },
    #[error("namespace '{0}' does not exist")]
    NoNamespace(String),
    #[error("namespace '{0}' already exists")]
    NamespaceExists(String),
    #[error("'{0}' has no data key (its namespace was deleted meanwhile?)")]
    NoDataKey(String),
    #[error("the database was written by a newer faasbox (schema {found}, this build knows {known}); upgrade faasbox")]
    TooNew { found: i64, known: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamespaceRecord {
    pub name: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub namespace: String,
    pub name: String,
    /// The function spec as JSON text (the current revision's).
    pub spec: String,
    pub created: String,
    pub updated: String,
    /// The current revision; `None` for a function stored before revisions existed (it
    /// gets revision 1 at the server's next start).
    pub revision: Option<u32>,
}

/// The life of one call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvocationRecord {
    pub id: String,
    pub namespace: String,
    pub function: String,
    /// `running`, `succeeded`, `failed`, `crashed` or `timeout`.
    pub status: String,
    pub started: String,
    pub ended: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// How a call ended, for [`Store::finish_invocation`].
#[derive(Debug, Clone)]
pub struct InvocationEnd<'a> {
    pub status: &'a str,
    pub ended: &'a str,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
}

pub struct Store {
    conn: Mutex<Connection>,
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

impl Store {
    /// Opens (creating or migrating) the database at `path`. The database file and the
    /// files SQLite keeps next to it (`-wal`, `-shm`, `-journal`) are readable by their owner
    /// only: the file is made 0600 before SQLite opens it, and SQLite creates the others with
    /// the database file's mode.
    pub fn open(path: &Path) -> Result<Store> {
        private_files(path).map_err(|source| StoreError::Private {
            path: path.display().to_string(),
            source,
        })?;
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
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

    pub fn create_namespace(&self, name: &str, created: &str) -> Result<NamespaceRecord> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO namespaces (name, created) VALUES (?1, ?2)",
            params![name, created],
        )?;
        if inserted == 0 {
            return Err(StoreError::NamespaceExists(name.to_string()));
        }
        Ok(NamespaceRecord {
            name: name.to_string(),
            created: created.to_string(),
        })
    }

    pub fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>> {
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
    }

    pub fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, created FROM namespaces ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(NamespaceRecord {
                name: r.get(0)?,
                created: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes the namespace with its functions, invocations, logs, secrets, registry
    /// credentials and data key. False when absent.
    pub fn delete_namespace(&self, name: &str) -> Result<bool> {
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
        secrets::delete_namespace_secrets(&tx, name)?;
        flows::delete_namespace_flows(&tx, name)?;
        let deleted = tx.execute("DELETE FROM namespaces WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(deleted > 0)
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
        let conn = self.conn();
        if !namespace_exists(&conn, namespace)? {
            return Err(StoreError::NoNamespace(namespace.to_string()));
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
    }

    pub fn function(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT namespace, name, spec, created, updated, revision FROM functions
                 WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                function_from_row,
            )
            .optional()?)
    }

    pub fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT namespace, name, spec, created, updated, revision FROM functions
             WHERE namespace = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([namespace], function_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every function of every namespace (the server builds its pools from this at start).
    pub fn all_functions(&self) -> Result<Vec<FunctionRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT namespace, name, spec, created, updated, revision FROM functions ORDER BY namespace, name",
        )?;
        let rows = stmt.query_map([], function_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a function with its revisions. False when absent.
    pub fn delete_function(&self, namespace: &str, name: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM functions WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
        )?;
        revisions::delete_all(&tx, namespace, name)?;
        tx.commit()?;
        Ok(deleted > 0)
    }

    // --- invocations --------------------------------------------------------------------

    pub fn start_invocation(
        &self,
        id: &str,
        namespace: &str,
        function: &str,
        started: &str,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO invocations (id, namespace, function, status, started)
             VALUES (?1, ?2, ?3, 'running', ?4)",
            params![id, namespace, function, started],
        )?;
        Ok(())
    }

    /// Records how a call ended together with its logs, in one transaction.
    pub fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE invocations SET status = ?2, ended = ?3, error_code = ?4, error_message = ?5
             WHERE id = ?1",
            params![id, end.status, end.ended, end.error_code, end.error_message],
        )?;
        append_logs_in(&tx, id, logs)?;
        tx.commit()?;
        Ok(())
    }

    pub fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, namespace, function, status, started, ended, error_code, error_message
                 FROM invocations WHERE id = ?1",
                [id],
                invocation_from_row,
            )
            .optional()?)
    }

    /// The newest invocations of a namespace (optionally of one function), newest first.
    pub fn list_invocations(
        &self,
        namespace: &str,
        function: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, namespace, function, status, started, ended, error_code, error_message
             FROM invocations WHERE namespace = ?1 AND (?2 IS NULL OR function = ?2)
             ORDER BY started DESC, rowid DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![namespace, function, limit], invocation_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn append_logs(&self, invocation_id: &str, logs: &[LogLine]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        append_logs_in(&tx, invocation_id, logs)?;
        tx.commit()?;
        Ok(())
    }

    pub fn logs(&self, invocation_id: &str) -> Result<Vec<LogLine>> {
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
    }

    /// Marks calls that were running when the server stopped as failed. Returns how many.
    pub fn fail_interrupted_invocations(&self, ended: &str) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE invocations SET status = 'crashed', ended = ?1,
                 error_code = NULL,
                 error_message = 'the server stopped while this call ran'
             WHERE status = 'running'",
            [ended],
        )?)
    }
}

pub(crate) fn namespace_exists(conn: &Connection, namespace: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM namespaces WHERE name = ?1",
            [namespace],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn append_logs_in(
    tx: &rusqlite::Transaction<'_>,
    invocation_id: &str,
    logs: &[LogLine],
) -> Result<()> {
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

fn invocation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InvocationRecord> {
    Ok(InvocationRecord {
        id: r.get(0)?,
        namespace: r.get(1)?,
        function: r.get(2)?,
        status: r.get(3)?,
        started: r.get(4)?,
        ended: r.get(5)?,
        error_code: r.get(6)?,
        error_message: r.get(7)?,
    })
}

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod tests;
