//! Tests of the SQLite store on real database files.

use faasbox_store::*;

use super::*;
use crate::SqliteStore as Store;

fn log(line: &str) -> LogLine {
    LogLine {
        ts_ms: 1,
        stream: LogStream::Function,
        line: line.into(),
    }
}

#[test]
fn namespaces_are_unique_and_deletion_cascades() {
    let store = Store::open_in_memory().unwrap();
    store.create_namespace("demo", "t0").unwrap();
    assert!(matches!(
        store.create_namespace("demo", "t1"),
        Err(StoreError::NamespaceExists(_))
    ));
    store.put_function("demo", "echo", "{}", "t0").unwrap();
    store.start_invocation("i1", "demo", "echo", "t0").unwrap();
    store.append_logs("i1", &[log("a")]).unwrap();
    assert!(store.delete_namespace("demo").unwrap());
    assert!(store.function("demo", "echo").unwrap().is_none());
    assert!(store.invocation("i1").unwrap().is_none());
    assert!(store.logs("i1").unwrap().is_empty());
    assert!(!store.delete_namespace("demo").unwrap());
}

#[test]
fn function_needs_namespace_and_update_keeps_created() {
    let store = Store::open_in_memory().unwrap();
    assert!(matches!(
        store.put_function("nope", "f", "{}", "t0"),
        Err(StoreError::NoNamespace(_))
    ));
    store.create_namespace("demo", "t0").unwrap();
    store.put_function("demo", "f", r#"{"v":1}"#, "t1").unwrap();
    let updated = store.put_function("demo", "f", r#"{"v":2}"#, "t2").unwrap();
    assert_eq!(updated.created, "t1");
    assert_eq!(updated.updated, "t2");
    assert_eq!(updated.spec, r#"{"v":2}"#);
    assert_eq!(store.list_functions("demo").unwrap().len(), 1);
}

#[test]
fn logs_keep_their_order_across_appends() {
    let store = Store::open_in_memory().unwrap();
    store.create_namespace("demo", "t0").unwrap();
    store.start_invocation("i1", "demo", "f", "t0").unwrap();
    store.append_logs("i1", &[log("one"), log("two")]).unwrap();
    store
        .finish_invocation(
            "i1",
            &InvocationEnd {
                status: "failed",
                ended: "t1",
                error_code: Some("x.y"),
                error_message: Some("boom"),
            },
            &[log("three")],
        )
        .unwrap();
    let lines: Vec<_> = store
        .logs("i1")
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(lines, ["one", "two", "three"]);
    let inv = store.invocation("i1").unwrap().unwrap();
    assert_eq!(inv.status, "failed");
    assert_eq!(inv.error_code.as_deref(), Some("x.y"));
}

#[test]
fn interrupted_calls_are_marked_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faasbox.db");
    {
        let store = Store::open(&path).unwrap();
        store.create_namespace("demo", "t0").unwrap();
        store.start_invocation("i1", "demo", "f", "t0").unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.fail_interrupted_invocations("t9").unwrap(), 1);
    let inv = store.invocation("i1").unwrap().unwrap();
    assert_eq!(inv.status, "crashed");
    assert_eq!(inv.ended.as_deref(), Some("t9"));
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faasbox.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
}

// --- secrets, data keys and registries (migration 2) ---------------------------------------

fn data_key(namespace: &str, key_id: &str, wrapped: &[u8]) -> DataKeyRecord {
    DataKeyRecord {
        namespace: namespace.into(),
        key_id: key_id.into(),
        wrapped: wrapped.to_vec(),
        created: "t0".into(),
        updated: "t0".into(),
    }
}

fn registry(id: &str, namespace: &str, host: &str, username: &str, now: &str) -> RegistryRecord {
    RegistryRecord {
        id: id.into(),
        namespace: namespace.into(),
        url: format!("https://{host}/v2/"),
        host: host.into(),
        username: username.into(),
        ciphertext: vec![1, 2, 3],
        created: now.into(),
        updated: now.into(),
    }
}

#[test]
fn first_data_key_wins() {
    let store = Store::open_in_memory().unwrap();
    let first = store
        .insert_data_key(&data_key("demo", "k1", b"a"))
        .unwrap();
    let second = store
        .insert_data_key(&data_key("demo", "k1", b"b"))
        .unwrap();
    assert_eq!(first.wrapped, b"a");
    assert_eq!(second.wrapped, b"a");
    assert_eq!(store.data_key("demo").unwrap().unwrap().wrapped, b"a");
    assert!(store.data_key("other").unwrap().is_none());
}

#[test]
fn secrets_need_namespace_and_data_key_and_keep_created() {
    let store = Store::open_in_memory().unwrap();
    assert!(matches!(
        store.put_secret("demo", "token", b"x", "t0"),
        Err(StoreError::NoNamespace(_))
    ));
    store.create_namespace("demo", "t0").unwrap();
    assert!(matches!(
        store.put_secret("demo", "token", b"x", "t0"),
        Err(StoreError::NoDataKey(_))
    ));
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .unwrap();
    store.put_secret("demo", "token", b"x", "t1").unwrap();
    let updated = store.put_secret("demo", "token", b"y", "t2").unwrap();
    assert_eq!(
        (updated.created.as_str(), updated.updated.as_str()),
        ("t1", "t2")
    );
    assert_eq!(
        store.secret("demo", "token").unwrap().unwrap().ciphertext,
        b"y"
    );
    store.put_secret("demo", "a-first", b"z", "t3").unwrap();
    let names: Vec<_> = store
        .list_secrets("demo")
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a-first", "token"]);
    assert!(store.delete_secret("demo", "token").unwrap());
    assert!(!store.delete_secret("demo", "token").unwrap());
    assert!(store.secret("demo", "token").unwrap().is_none());
}

#[test]
fn registries_are_unique_per_namespace_and_host() {
    let store = Store::open_in_memory().unwrap();
    store.create_namespace("demo", "t0").unwrap();
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .unwrap();
    store
        .insert_data_key(&data_key("*global", "k1", b"g"))
        .unwrap();
    let first = store
        .put_registry(&registry("r1", "demo", "ghcr.io", "alice", "t1"))
        .unwrap();
    let replaced = store
        .put_registry(&registry("r2", "demo", "ghcr.io", "bob", "t2"))
        .unwrap();
    assert_eq!(replaced.id, first.id);
    assert_eq!(replaced.created, "t1");
    assert_eq!(replaced.updated, "t2");
    assert_eq!(replaced.username, "bob");
    store
        .put_registry(&registry("r3", "*global", "ghcr.io", "carol", "t3"))
        .unwrap();
    assert_eq!(store.list_registries("demo").unwrap().len(), 1);
    assert_eq!(
        store
            .registry("*global", "ghcr.io")
            .unwrap()
            .unwrap()
            .username,
        "carol"
    );
    assert!(matches!(
        store.put_registry(&registry("r4", "nope", "ghcr.io", "x", "t4")),
        Err(StoreError::NoNamespace(_))
    ));
    assert!(store.delete_registry("demo", "ghcr.io").unwrap());
    assert!(!store.delete_registry("demo", "ghcr.io").unwrap());
}

#[test]
fn deleting_a_namespace_deletes_its_secrets_but_not_global_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("faasbox.db")).unwrap();
    store.create_namespace("demo", "t0").unwrap();
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .unwrap();
    store
        .insert_data_key(&data_key("*global", "k1", b"g"))
        .unwrap();
    store.put_secret("demo", "token", b"x", "t1").unwrap();
    store
        .put_registry(&registry("r1", "demo", "ghcr.io", "alice", "t1"))
        .unwrap();
    store
        .put_registry(&registry("r2", "*global", "ghcr.io", "bob", "t1"))
        .unwrap();
    assert!(store.delete_namespace("demo").unwrap());
    assert!(store.secret("demo", "token").unwrap().is_none());
    assert!(store.list_registries("demo").unwrap().is_empty());
    assert!(store.data_key("demo").unwrap().is_none());
    assert!(store.data_key("*global").unwrap().is_some());
    assert_eq!(store.list_registries("*global").unwrap().len(), 1);
    // A namespace created again under the same name starts empty.
    store.create_namespace("demo", "t2").unwrap();
    assert!(store.list_secrets("demo").unwrap().is_empty());
}

#[test]
fn rewrap_changes_every_key_or_none() {
    let store = Store::open_in_memory().unwrap();
    store.insert_data_key(&data_key("a", "old", b"1")).unwrap();
    store.insert_data_key(&data_key("b", "old", b"2")).unwrap();
    let failed: std::result::Result<usize, StoreError> = store.rewrap_data_keys("t1", |r| {
        if r.namespace == "b" {
            Err(StoreError::NoDataKey("b".into()))
        } else {
            Ok(("new".into(), b"x".to_vec()))
        }
    });
    assert!(failed.is_err());
    assert!(store
        .list_data_keys()
        .unwrap()
        .iter()
        .all(|k| k.key_id == "old"));
    let count = store
        .rewrap_data_keys::<StoreError, _>("t2", |r| {
            let mut wrapped = r.wrapped.clone();
            wrapped.push(b'!');
            Ok(("new".into(), wrapped))
        })
        .unwrap();
    assert_eq!(count, 2);
    let keys = store.list_data_keys().unwrap();
    assert!(keys.iter().all(|k| k.key_id == "new" && k.updated == "t2"));
    assert_eq!(keys[0].wrapped, b"1!");
    assert_eq!(keys[0].created, "t0");
}

#[test]
fn schema_1_database_is_migrated_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faasbox.db");
    {
        let store = Store::open(&path).unwrap();
        store.create_namespace("demo", "t0").unwrap();
        store.put_function("demo", "f", "{}", "t0").unwrap();
    }
    // Turn it back into a schema-1 database.
    Connection::open(&path)
        .unwrap()
        .execute_batch(&schema_1_downgrade(&path))
        .unwrap();
    let store = Store::open(&path).unwrap();
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
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .unwrap();
    store.put_secret("demo", "token", b"x", "t1").unwrap();
    store.put_flow("demo", "hello", "states: []", "t1").unwrap();
    assert!(store.flow("demo", "hello").unwrap().is_some());
}

#[test]
fn flow_instances_keep_checkpoints_finished_states_logs_and_variables() {
    let store = Store::open_in_memory().unwrap();
    store.create_namespace("demo", "t0").unwrap();
    store.put_flow("demo", "a/b", "source", "t0").unwrap();
    store
        .create_instance(&NewInstance {
            id: "i1",
            namespace: "demo",
            flow: "a/b",
            source: "source",
            input: "{}",
            checkpoint: "cp0",
            parent: None,
            now: "t0",
        })
        .unwrap();
    store
        .save_checkpoint("i1", "running", "cp1", Some((1, "first")), "t1")
        .unwrap();
    store
        .save_checkpoint("i1", "running", "cp1", Some((1, "first")), "t1")
        .unwrap();
    assert_eq!(
        store.finished_states("i1").unwrap(),
        vec![(1, "first".to_string())]
    );
    assert_eq!(store.instances_with_status("running").unwrap().len(), 1);
    assert_eq!(store.unfinished_instances("demo").unwrap(), ["i1"]);
    assert!(store.unfinished_instances("other").unwrap().is_empty());
    store.append_instance_log("i1", 5, "hello").unwrap();
    store.append_instance_log("gone", 5, "nobody's").unwrap();
    assert!(
        store.instance_logs("gone", 0).unwrap().is_empty(),
        "no lines for an instance that does not exist"
    );
    assert_eq!(store.instance_logs("i1", 0).unwrap()[0].message, "hello");
    assert!(store
        .finish_instance("i1", "complete", Some("{}"), None, "t2")
        .unwrap());
    assert!(
        !store
            .finish_instance("i1", "failed", None, Some(("x", "y")), "t3")
            .unwrap(),
        "an ended instance keeps its end"
    );
    assert!(store.unfinished_instances("demo").unwrap().is_empty());
    let record = store.instance("i1").unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.checkpoint.as_str()),
        ("complete", "cp1")
    );
    store
        .set_variable("demo", "workflow", "a/b", "k", Some("1"), "t1")
        .unwrap();
    assert_eq!(
        store
            .variable("demo", "workflow", "a/b", "k")
            .unwrap()
            .as_deref(),
        Some("1")
    );
    store.delete_flow("demo", "a/b").unwrap();
    assert_eq!(
        store.variable("demo", "workflow", "a/b", "k").unwrap(),
        None
    );
    store.delete_namespace("demo").unwrap();
    assert!(store.instance("i1").unwrap().is_none());
}

/// SQL that drops every table the migrations after the first added.
#[test]
fn an_instance_keeps_its_calls_and_its_functions_lines_by_state() {
    let store = Store::open_in_memory().unwrap();
    store.create_namespace("demo", "t0").unwrap();
    store.create_namespace("other", "t0").unwrap();
    for (id, ns) in [("i1", "demo"), ("child", "demo"), ("o1", "other")] {
        store
            .create_instance(&NewInstance {
                id,
                namespace: ns,
                flow: "f",
                source: "source",
                input: "{}",
                checkpoint: "cp0",
                parent: None,
                now: "t0",
            })
            .unwrap();
    }
    store
        .start_invocation("inv1", "demo", "flow:f:get", "t1")
        .unwrap();
    let call = |id: &str, kind: &str| InstanceCallRecord {
        id: id.into(),
        kind: kind.into(),
        state: "getter".into(),
        function: "get".into(),
        started: "t1".into(),
        status: None,
    };
    store
        .record_instance_call("i1", &call("inv1", "invocation"))
        .unwrap();
    store
        .record_instance_call("i1", &call("child", "instance"))
        .unwrap();
    store
        .record_instance_call("gone", &call("inv1", "invocation"))
        .unwrap();
    let line = |message| NewInstanceLog {
        ts_ms: 7,
        message,
        state: Some("getter"),
        invocation: Some("inv1"),
    };
    store
        .append_instance_log("i1", 6, "running state 'getter'")
        .unwrap();
    store
        .append_instance_logs("i1", &[line("hello1"), line("hello2")])
        .unwrap();
    store
        .append_instance_logs("gone", &[line("nobody's")])
        .unwrap();
    let logs = store.instance_logs("i1", 0).unwrap();
    assert_eq!(logs.len(), 3);
    assert_eq!(
        (logs[0].state.as_deref(), logs[0].invocation.as_deref()),
        (None, None)
    );
    assert_eq!(logs[1].message, "hello1");
    assert_eq!(logs[2].state.as_deref(), Some("getter"));
    assert_eq!(logs[2].invocation.as_deref(), Some("inv1"));
    assert!(store.instance_logs("gone", 0).unwrap().is_empty());
    let calls = store.instance_calls("i1").unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "inv1");
    assert_eq!(calls[0].status.as_deref(), Some("running"));
    assert_eq!(calls[1].kind, "instance");
    assert_eq!(calls[1].status.as_deref(), Some("running"));
    assert!(store.instance_calls("gone").unwrap().is_empty());
    store.delete_namespace("demo").unwrap();
    assert!(store.instance_calls("i1").unwrap().is_empty());
    assert!(store.instance_logs("i1", 0).unwrap().is_empty());
}

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
    sql.push_str("PRAGMA user_version = 1;");
    sql
}
