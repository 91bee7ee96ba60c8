//! Tests of the SQLite store on real database files.

use super::*;

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
