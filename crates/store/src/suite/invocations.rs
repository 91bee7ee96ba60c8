//! Cases of invocations, their logs and a function's recent lines.

use faasbox_proto::{LogLine, LogStream};

use super::Backend;
use crate::*;

fn log(line: &str) -> LogLine {
    LogLine {
        ts_ms: 1,
        stream: LogStream::Function,
        line: line.into(),
    }
}

/// A call's lines from `append_logs` and `finish_invocation` keep their order, and the end is
/// recorded.
pub async fn logs_keep_their_order_across_appends(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .start_invocation("i1", "demo", "f", "t0")
        .await
        .unwrap();
    store
        .append_logs("i1", &[log("one"), log("two")])
        .await
        .unwrap();
    store
        .finish_invocation(
            "i1",
            &InvocationEnd {
                status: "failed",
                ended: "t1",
                error_code: Some("x.y"),
                error_message: Some("boom"),
                ..Default::default()
            },
            &[log("three")],
        )
        .await
        .unwrap();
    let lines: Vec<_> = store
        .logs("i1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(lines, ["one", "two", "three"]);
    let inv = store.invocation("i1").await.unwrap().unwrap();
    assert_eq!(inv.status, "failed");
    assert_eq!(inv.error_code.as_deref(), Some("x.y"));
}

/// A call left `running` across a reopen is marked `crashed` with its end time.
pub async fn interrupted_calls_are_marked_after_reopen(backend: &impl Backend) {
    {
        let store = backend.open().await;
        store.create_namespace("demo", "t0").await.unwrap();
        store
            .start_invocation("i1", "demo", "f", "t0")
            .await
            .unwrap();
    }
    let store = backend.open().await;
    assert_eq!(
        store
            .fail_interrupted_invocations(&super::runs::gone("t9", "n1"))
            .await
            .unwrap(),
        1
    );
    let inv = store.invocation("i1").await.unwrap().unwrap();
    assert_eq!(inv.status, "crashed");
    assert_eq!(inv.ended.as_deref(), Some("t9"));
}

fn line(text: &str) -> LogLine {
    LogLine {
        ts_ms: 1,
        stream: LogStream::Stdout,
        line: text.into(),
    }
}

async fn call(store: &dyn Store, id: &str, function: &str, started: &str, lines: &[&str]) {
    store
        .start_invocation(id, "demo", function, started)
        .await
        .unwrap();
    let end = InvocationEnd {
        status: "succeeded",
        ended: started,
        error_code: None,
        error_message: None,
        ..Default::default()
    };
    let lines: Vec<LogLine> = lines.iter().map(|l| line(l)).collect();
    store.finish_invocation(id, &end, &lines).await.unwrap();
}

fn texts(logs: &FunctionLogs) -> Vec<&str> {
    logs.logs.iter().map(|l| l.line.line.as_str()).collect()
}

/// `function_logs` gives the newest lines of one function only, bounded, and then, from a
/// cursor, only lines stored after it, oldest first.
pub async fn newest_lines_of_one_function_then_only_new_ones(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    let empty = store.function_logs("demo", "f", None, 10).await.unwrap();
    assert!(empty.logs.is_empty());
    call(&*store, "i1", "f", "t1", &["a1", "a2"]).await;
    call(&*store, "i2", "other", "t2", &["x"]).await;
    call(&*store, "i3", "f", "t3", &["b1"]).await;
    let all = store.function_logs("demo", "f", None, 10).await.unwrap();
    assert_eq!(texts(&all), ["a1", "a2", "b1"]);
    assert_eq!(all.logs[2].invocation, "i3");
    // The bound keeps the newest lines.
    let two = store.function_logs("demo", "f", None, 2).await.unwrap();
    assert_eq!(texts(&two), ["a2", "b1"]);
    // Following: nothing new, then only what came since.
    let none = store
        .function_logs("demo", "f", Some(all.next), 10)
        .await
        .unwrap();
    assert!(none.logs.is_empty());
    assert_eq!(none.next, all.next);
    call(&*store, "i4", "other", "t4", &["y"]).await;
    call(&*store, "i5", "f", "t5", &["c1", "c2", "c3"]).await;
    let new = store
        .function_logs("demo", "f", Some(all.next), 2)
        .await
        .unwrap();
    assert_eq!(texts(&new), ["c1", "c2"]);
    let rest = store
        .function_logs("demo", "f", Some(new.next), 2)
        .await
        .unwrap();
    assert_eq!(texts(&rest), ["c3"]);
    // Another namespace's function of the same name is not mixed in.
    store.create_namespace("other", "t0").await.unwrap();
    store
        .start_invocation("o1", "other", "f", "t6")
        .await
        .unwrap();
    store.append_logs("o1", &[line("theirs")]).await.unwrap();
    let mine = store
        .function_logs("demo", "f", Some(rest.next), 10)
        .await
        .unwrap();
    assert!(mine.logs.is_empty(), "{:?}", mine.logs);
}

/// A function without lines gives the newest cursor of any line, so a follower sees only its
/// lines stored later.
pub async fn a_function_without_lines_starts_followers_at_the_newest_line(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    call(&*store, "i1", "other", "t1", &["x", "y"]).await;
    let empty = store.function_logs("demo", "f", None, 10).await.unwrap();
    assert!(empty.logs.is_empty());
    assert!(empty.next >= 2, "{}", empty.next);
    call(&*store, "i2", "f", "t2", &["first"]).await;
    let new = store
        .function_logs("demo", "f", Some(empty.next), 10)
        .await
        .unwrap();
    assert_eq!(texts(&new), ["first"]);
}

/// `list_invocations` gives one namespace's calls (optionally one function's), newest first,
/// calls started at the same time the later stored first, at most `limit`. (No namespace is
/// created: the invocation methods do not check it.)
pub async fn invocations_are_listed_newest_first_within_their_namespace(backend: &impl Backend) {
    let store = backend.open().await;
    for (id, namespace, function, started) in [
        ("i1", "demo", "f", "t1"),
        ("i2", "demo", "g", "t3"),
        ("i3", "demo", "f", "t2"),
        ("i4", "other", "f", "t4"),
        ("i5", "demo", "f", "t2"),
    ] {
        store
            .start_invocation(id, namespace, function, started)
            .await
            .unwrap();
    }
    let ids = |calls: Vec<InvocationRecord>| calls.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_invocations("demo", None, 10).await.unwrap()),
        ["i2", "i5", "i3", "i1"]
    );
    assert_eq!(
        ids(store.list_invocations("demo", Some("f"), 10).await.unwrap()),
        ["i5", "i3", "i1"]
    );
    assert_eq!(
        ids(store.list_invocations("demo", Some("f"), 2).await.unwrap()),
        ["i5", "i3"]
    );
    assert_eq!(
        ids(store.list_invocations("other", None, 10).await.unwrap()),
        ["i4"]
    );
    assert!(store
        .list_invocations("nobody", None, 10)
        .await
        .unwrap()
        .is_empty());
    let call = store.invocation("i5").await.unwrap().unwrap();
    assert_eq!(
        (call.status.as_str(), call.mode.as_str(), call.attempts),
        ("running", "sync", 1)
    );
    assert_eq!(call.started.as_deref(), Some("t2"));
    assert!(store.invocation("nobody").await.unwrap().is_none());
    assert!(store.logs("nobody").await.unwrap().is_empty());
}
