//! SQLite-only tests: the schema version and migrations, the file modes and the journal mode.
//! What every backend must do is `faasbox_store::backend_suite!`, run in
//! `tests/backend_suite.rs`.

use std::os::unix::fs::PermissionsExt;

use faasbox_store::*;

use super::*;

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faasbox.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::TooNew { .. })
    ));
}

fn data_key(namespace: &str, key_id: &str, wrapped: &[u8]) -> DataKeyRecord {
    DataKeyRecord {
        namespace: namespace.into(),
        key_id: key_id.into(),
        wrapped: wrapped.to_vec(),
        created: "t0".into(),
        updated: "t0".into(),
    }
}

#[test]
fn schema_1_database_is_migrated_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faasbox.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create_namespace("demo", "t0").unwrap();
        store.put_function("demo", "f", "{}", "t0").unwrap();
        store.start_invocation("i1", "demo", "f", "t0").unwrap();
    }
    // Turn it back into a schema-1 database.
    Connection::open(&path)
        .unwrap()
        .execute_batch(&schema_1_downgrade(&path))
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let version: i64 = store
        .conn()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let old = store
        .function("demo", "f")
        .unwrap()
        .expect("the function is kept");
    assert_eq!(
        old.revision, None,
        "revision 1 is made by the server at its next start"
    );
    let call = store.invocation("i1").unwrap().expect("the call is kept");
    assert_eq!(
        (call.accepted.as_str(), call.started.as_deref()),
        ("t0", Some("t0")),
        "an old call started when it was accepted"
    );
    assert_eq!((call.mode.as_str(), call.attempts), ("sync", 1));
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .unwrap();
    store.put_secret("demo", "token", b"x", "t1").unwrap();
    store.put_flow("demo", "hello", "states: []", "t1").unwrap();
    assert!(store.flow("demo", "hello").unwrap().is_some());
}

#[test]
fn the_database_and_its_companions_are_private_and_written_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faasbox.db");
    // A database an older version left readable to everyone is made private on open.
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    store.create_namespace("demo", "t0").unwrap();
    let mode = |suffix: &str| {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o600);
    assert_eq!(
        mode("-wal"),
        0o600,
        "SQLite gives the WAL the database's mode"
    );
    let journal: String = store
        .conn()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let version: i64 = store
        .conn()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// SQL that drops every table the migrations after the first added.
fn schema_1_downgrade(path: &std::path::Path) -> String {
    const SCHEMA_1: [&str; 4] = ["namespaces", "functions", "invocations", "invocation_logs"];
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut sql = String::from("PRAGMA foreign_keys = OFF;");
    for table in tables.iter().filter(|t| !SCHEMA_1.contains(&t.as_str())) {
        sql.push_str(&format!("DROP TABLE {table};"));
    }
    // Columns later migrations added to schema 1's tables.
    sql.push_str("ALTER TABLE functions DROP COLUMN revision;");
    // Indexes later migrations added to schema 1's tables.
    sql.push_str("DROP INDEX invocations_by_function;");
    sql.push_str("DROP INDEX invocations_by_status;");
    for column in [
        "began",
        "mode",
        "revision",
        "input",
        "output",
        "error_type",
        "event",
        "http_context",
        "cold_start",
        "wait_ms",
        "init_ms",
        "run_ms",
        "attempts",
        "callback_url",
        "callback_status",
        "secrets",
        "services",
        "node",
    ] {
        sql.push_str(&format!("ALTER TABLE invocations DROP COLUMN {column};"));
    }
    sql.push_str("PRAGMA user_version = 1;");
    sql
}

/// A purge by count over more than one batch keeps exactly the newest `keep` runs of the
/// namespace (runs accepted at the same time ordered as they were inserted) and the running
/// ones, and removes the other ended runs.
#[test]
fn a_purge_by_count_spans_batches_and_orders_equal_times_by_insertion() {
    let store = SqliteStore::open_in_memory().unwrap();
    store.create_namespace("demo", "t0").unwrap();
    {
        let conn = store.conn();
        for i in 0..2500 {
            // 25 runs share each time; one old run still runs.
            let status = if i == 10 { "running" } else { "succeeded" };
            conn.execute(
                "INSERT INTO invocations (id, namespace, function, status, started)
                 VALUES (?1, 'demo', 'f', ?2, ?3)",
                params![format!("r{i:04}"), status, format!("t{:03}", i / 25)],
            )
            .unwrap();
        }
    }
    // Nothing is old enough by age ("t" is before every time).
    assert_eq!(store.purge_runs("t", 1234).unwrap(), 2500 - 1234 - 1);
    let ids: Vec<String> = {
        let conn = store.conn();
        let mut stmt = conn
            .prepare("SELECT id FROM invocations ORDER BY rowid")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    };
    let mut expected = vec!["r0010".to_string()];
    expected.extend((2500 - 1234..2500).map(|i| format!("r{i:04}")));
    assert_eq!(ids, expected);
    assert_eq!(store.purge_runs("t", 1234).unwrap(), 0, "nothing more");
    // Keeping none removes every ended run.
    assert_eq!(store.purge_runs("t", 0).unwrap(), 1234);
}

/// A call written with its end in one go (`write_calls`) reads back as the same record as one
/// written `running` first and ended over it.
#[test]
fn a_call_written_once_with_its_end_reads_as_one_written_in_two_steps() {
    let store = SqliteStore::open_in_memory().unwrap();
    store.create_namespace("demo", "t0").unwrap();
    let run = |id: &str| NewRun {
        id: id.into(),
        namespace: "demo".into(),
        function: "f".into(),
        mode: "sync".into(),
        status: "running".into(),
        accepted: "t1".into(),
        input: Some("{\"secret\":\"x\"}".into()),
        node: Some("n1".into()),
        ..NewRun::default()
    };
    let end = OwnedInvocationEnd {
        status: "failed".into(),
        ended: "t2".into(),
        error_code: Some("app.bad".into()),
        error_message: Some("no".into()),
        error_type: Some("FunctionError".into()),
        output: None,
        input: Some("{\"secret\":\"***\"}".into()),
        revision: Some(3),
        cold_start: Some(false),
        phases: Some(RunPhases {
            wait_ms: 1,
            init_ms: 0,
            run_ms: 2,
        }),
        node: Some("n1".into()),
    };
    let logs = vec![LogLine {
        ts_ms: 5,
        stream: faasbox_proto::LogStream::Stdout,
        line: "hi".into(),
    }];
    let ended = |id: &str| CallWrite::Ended {
        run: run(id),
        end: end.clone(),
        logs: logs.clone(),
    };
    assert_eq!(store.write_calls(&[ended("once")]).unwrap(), [true]);
    assert_eq!(
        store
            .write_calls(&[CallWrite::Running(run("twice"))])
            .unwrap(),
        [true]
    );
    assert_eq!(store.write_calls(&[ended("twice")]).unwrap(), [true]);
    let read = |id: &str| {
        let conn = store.conn();
        let mut record = conn
            .query_row(
                &format!(
                    "SELECT {} FROM invocations WHERE id = ?1",
                    runs::RUN_COLUMNS
                ),
                [id],
                runs::run_from_row,
            )
            .unwrap();
        record.id = String::new();
        record
    };
    assert_eq!(
        format!("{:?}", read("once")),
        format!("{:?}", read("twice"))
    );
    let logs_of = |id: &str| -> i64 {
        store
            .conn()
            .query_row(
                "SELECT count(*) FROM invocation_logs WHERE invocation_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!((logs_of("once"), logs_of("twice")), (1, 1));
    // Another node's end is not written over a record of this node's run.
    let mut foreign = end.clone();
    foreign.node = Some("n2".into());
    let write = CallWrite::Ended {
        run: run("once"),
        end: foreign,
        logs: Vec::new(),
    };
    assert_eq!(store.write_calls(&[write]).unwrap(), [false]);
}
