//! Cases of runs: stored before they start, claimed once, cancelled while queued, queued
//! again (once) after a crash, listed with filters, and removed by the retention policy.

use faasbox_proto::{LogLine, LogStream};

use super::Backend;
use crate::*;

fn queued(id: &str, function: &str, accepted: &str) -> NewRun {
    NewRun {
        id: id.into(),
        namespace: "demo".into(),
        function: function.into(),
        mode: "async".into(),
        status: "queued".into(),
        accepted: accepted.into(),
        input: Some(r#"{"n":1}"#.into()),
        ..Default::default()
    }
}

/// The recovery of node `node`'s runs at `ended` after it stopped.
pub(super) fn gone<'a>(ended: &'a str, node: &'a str) -> Interruption<'a> {
    Interruption {
        ended,
        node,
        cause: "the server stopped",
    }
}

fn ended<'a>(status: &'a str, at: &'a str) -> InvocationEnd<'a> {
    InvocationEnd {
        status,
        ended: at,
        ..Default::default()
    }
}

fn line(text: &str) -> LogLine {
    LogLine {
        ts_ms: 1,
        stream: LogStream::Stdout,
        line: text.into(),
    }
}

/// A run keeps what it was submitted with; a second insert of its id stores nothing; its end
/// keeps output, error class, phases, cold start and revision, and replaces the input (now
/// masked); lists filter by function, status and acceptance time, newest first.
pub async fn runs_keep_what_they_were_asked_with_and_how_they_ended(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    let run = NewRun {
        event: Some(r#"{"type":"t"}"#.into()),
        http_context: Some(r#"{"method":"POST"}"#.into()),
        callback_url: Some("http://127.0.0.1:1/cb".into()),
        secrets: vec!["s1".into()],
        services: vec!["db".into()],
        ..queued("r1", "f", "2026-01-01T00:00:01Z")
    };
    assert!(store.insert_run(&run).await.unwrap());
    let again = NewRun {
        input: Some("{}".into()),
        ..run.clone()
    };
    assert!(
        !store.insert_run(&again).await.unwrap(),
        "an id is taken once"
    );
    let r = store.invocation("r1").await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.mode.as_str(), r.attempts),
        ("queued", "async", 0)
    );
    assert_eq!(r.accepted, "2026-01-01T00:00:01Z");
    assert_eq!(r.started, None);
    assert_eq!(r.input.as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(r.event.as_deref(), Some(r#"{"type":"t"}"#));
    assert_eq!(r.http_context.as_deref(), Some(r#"{"method":"POST"}"#));
    assert_eq!(r.callback_url.as_deref(), Some("http://127.0.0.1:1/cb"));
    assert_eq!(
        (r.secrets, r.services),
        (vec!["s1".into()], vec!["db".into()])
    );

    assert!(store
        .claim_run("r1", "2026-01-01T00:00:02Z", "n1")
        .await
        .unwrap());
    let end = InvocationEnd {
        output: Some(r#"{"ok":true}"#),
        input: Some(r#"{"n":"***"}"#),
        revision: Some(3),
        cold_start: Some(true),
        phases: Some(RunPhases {
            wait_ms: 1,
            init_ms: 2,
            run_ms: 3,
        }),
        ..ended("succeeded", "2026-01-01T00:00:03Z")
    };
    store.finish_invocation("r1", &end, &[]).await.unwrap();
    store.set_callback_status("r1", "delivered").await.unwrap();
    let r = store.invocation("r1").await.unwrap().unwrap();
    assert_eq!((r.status.as_str(), r.attempts), ("succeeded", 1));
    assert_eq!(r.started.as_deref(), Some("2026-01-01T00:00:02Z"));
    assert_eq!(r.ended.as_deref(), Some("2026-01-01T00:00:03Z"));
    assert_eq!(r.output.as_deref(), Some(r#"{"ok":true}"#));
    assert_eq!(r.input.as_deref(), Some(r#"{"n":"***"}"#));
    assert_eq!((r.revision, r.cold_start), (Some(3), Some(true)));
    assert_eq!(
        r.phases.map(|p| (p.wait_ms, p.init_ms, p.run_ms)),
        Some((1, 2, 3))
    );
    assert_eq!(r.callback_status.as_deref(), Some("delivered"));
    assert_eq!(r.error_type, None);

    // A synchronous call is a run too: running at once, one attempt.
    store
        .start_invocation("s1", "demo", "g", "2026-01-01T00:00:04Z")
        .await
        .unwrap();
    let failed = InvocationEnd {
        error_type: Some("FunctionError"),
        error_code: Some("E"),
        error_message: Some("boom"),
        ..ended("failed", "2026-01-01T00:00:05Z")
    };
    store.finish_invocation("s1", &failed, &[]).await.unwrap();
    let s = store.invocation("s1").await.unwrap().unwrap();
    assert_eq!(
        (s.mode.as_str(), s.attempts, s.started.as_deref()),
        ("sync", 1, Some("2026-01-01T00:00:04Z"))
    );
    assert_eq!(s.error_type.as_deref(), Some("FunctionError"));
    assert!(store
        .insert_run(&queued("q1", "f", "2026-01-01T00:00:06Z"))
        .await
        .unwrap());

    let ids = |runs: Vec<InvocationRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let filter = RunFilter {
        namespace: "demo".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_runs(&filter).await.unwrap()),
        ["q1", "s1", "r1"]
    );
    let of_f = RunFilter {
        function: Some("f".into()),
        ..filter.clone()
    };
    assert_eq!(ids(store.list_runs(&of_f).await.unwrap()), ["q1", "r1"]);
    let failed_only = RunFilter {
        status: Some("failed".into()),
        ..filter.clone()
    };
    assert_eq!(ids(store.list_runs(&failed_only).await.unwrap()), ["s1"]);
    let since = RunFilter {
        since: Some("2026-01-01T00:00:04Z".into()),
        ..filter.clone()
    };
    assert_eq!(ids(store.list_runs(&since).await.unwrap()), ["q1", "s1"]);
    let one = RunFilter { limit: 1, ..filter };
    assert_eq!(ids(store.list_runs(&one).await.unwrap()), ["q1"]);
}

/// Queued runs come oldest first; each is claimed once; a queued run is cancelled at once,
/// a running or ended one is not.
pub async fn queued_runs_are_claimed_once_and_cancelled_only_while_queued(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    for (id, at) in [("b", "t2"), ("a", "t1"), ("c", "t3")] {
        assert!(store.insert_run(&queued(id, "f", at)).await.unwrap());
    }
    let order: Vec<String> = store
        .queued_runs(10, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(store.queued_runs(1, &[]).await.unwrap().len(), 1);
    // A function with no room is skipped, so the runs of others behind it are found.
    store.insert_run(&queued("d", "g", "t4")).await.unwrap();
    let others: Vec<String> = store
        .queued_runs(1, &["demo/f".to_string()])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(others, ["d"]);

    assert!(store.claim_run("a", "t4", "n1").await.unwrap());
    assert!(
        !store.claim_run("a", "t4", "n1").await.unwrap(),
        "claimed once"
    );
    assert!(
        !store.cancel_queued_run("a", "t5").await.unwrap(),
        "running"
    );

    assert!(store.cancel_queued_run("b", "t5").await.unwrap());
    assert!(!store.cancel_queued_run("b", "t6").await.unwrap(), "ended");
    assert!(
        !store.claim_run("b", "t6", "n1").await.unwrap(),
        "a cancelled run never runs"
    );
    let b = store.invocation("b").await.unwrap().unwrap();
    assert_eq!(
        (b.status.as_str(), b.ended.as_deref()),
        ("cancelled", Some("t5"))
    );
    assert_eq!(b.started, None);
    assert!(!store.cancel_queued_run("nope", "t6").await.unwrap());

    let left: Vec<String> = store
        .queued_runs(10, &["demo/g".to_string()])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ["c"]);
}

/// After a crash: synchronous calls that ran end `crashed`; an asynchronous run on its first
/// attempt is queued again with a log line saying so, and on its second it ends `crashed`.
pub async fn interrupted_async_runs_run_once_more_then_crash(backend: &impl Backend) {
    {
        let store = backend.open().await;
        store.create_namespace("demo", "t0").await.unwrap();
        store
            .start_invocation("sync", "demo", "f", "t1")
            .await
            .unwrap();
        store.insert_run(&queued("async", "f", "t1")).await.unwrap();
        store
            .insert_run(&queued("waiting", "f", "t2"))
            .await
            .unwrap();
        assert!(store.claim_run("async", "t2", "n1").await.unwrap());
        store.append_logs("async", &[line("first")]).await.unwrap();
    }
    {
        let store = backend.open().await;
        assert_eq!(
            store
                .fail_interrupted_invocations(&gone("t3", "n1"))
                .await
                .unwrap(),
            1
        );
        let done = store
            .requeue_interrupted_runs(&gone("t3", "n1"))
            .await
            .unwrap();
        assert_eq!(done.requeued, ["async"]);
        assert!(done.crashed.is_empty());
        assert_eq!(
            store.invocation("sync").await.unwrap().unwrap().status,
            "crashed"
        );
        let run = store.invocation("async").await.unwrap().unwrap();
        assert_eq!((run.status.as_str(), run.attempts), ("queued", 1));
        assert_eq!(run.started, None);
        let logs = store.logs("async").await.unwrap();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[0].line, "first");
        assert!(logs[1].line.contains("attempt 2"), "{}", logs[1].line);
        let waiting = store.invocation("waiting").await.unwrap().unwrap();
        assert_eq!(waiting.status, "queued", "a queued run just stays queued");
        assert!(store.claim_run("async", "t4", "n1").await.unwrap());
        assert_eq!(
            store.invocation("async").await.unwrap().unwrap().attempts,
            2
        );
    }
    let store = backend.open().await;
    assert_eq!(
        store
            .fail_interrupted_invocations(&gone("t5", "n1"))
            .await
            .unwrap(),
        0
    );
    let done = store
        .requeue_interrupted_runs(&gone("t5", "n1"))
        .await
        .unwrap();
    assert!(done.requeued.is_empty());
    assert_eq!(done.crashed, ["async"]);
    let run = store.invocation("async").await.unwrap().unwrap();
    assert_eq!(
        (run.status.as_str(), run.ended.as_deref()),
        ("crashed", Some("t5"))
    );
    assert_eq!(run.error_type.as_deref(), Some("SystemError"));
}

/// Recovering a node takes only the calls and runs running on it (and those that name no
/// node), says why in their records, and leaves every other node's running ones alone; a
/// claimed run names the node that runs it.
pub async fn recovering_a_node_takes_only_its_own_runs(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    for (id, node) in [("sync-a", "a"), ("sync-b", "b")] {
        let call = NewRun {
            mode: "sync".into(),
            status: "running".into(),
            node: Some(node.into()),
            ..queued(id, "f", "t1")
        };
        assert!(store.insert_run(&call).await.unwrap());
    }
    for (id, node) in [("async-a", "a"), ("async-b", "b")] {
        store.insert_run(&queued(id, "f", "t1")).await.unwrap();
        assert!(store.claim_run(id, "t2", node).await.unwrap());
    }
    assert_eq!(
        store
            .invocation("async-b")
            .await
            .unwrap()
            .unwrap()
            .node
            .as_deref(),
        Some("b")
    );
    let taken_over = Interruption {
        ended: "t3",
        node: "a",
        cause: "server node a stopped answering",
    };
    assert_eq!(
        store
            .fail_interrupted_invocations(&taken_over)
            .await
            .unwrap(),
        1
    );
    let done = store.requeue_interrupted_runs(&taken_over).await.unwrap();
    assert_eq!(done.requeued, ["async-a"]);
    let sync_a = store.invocation("sync-a").await.unwrap().unwrap();
    assert_eq!(sync_a.status, "crashed");
    assert_eq!(
        sync_a.error_message.as_deref(),
        Some("server node a stopped answering while this call ran")
    );
    let logs = store.logs("async-a").await.unwrap();
    assert!(
        logs.iter().any(|l| l
            .line
            .starts_with("server node a stopped answering while this run ran")),
        "{logs:?}"
    );
    for id in ["sync-b", "async-b"] {
        let other = store.invocation(id).await.unwrap().unwrap();
        assert_eq!(other.status, "running", "{id} runs on node b: untouched");
    }
    assert_eq!(
        store.requeue_interrupted_runs(&taken_over).await.unwrap(),
        Requeued::default(),
        "taken once"
    );
    // Node b claims the requeued run; node a's late end of its first attempt is not recorded.
    assert!(store.claim_run("async-a", "t4", "b").await.unwrap());
    let late = InvocationEnd {
        node: Some("a"),
        ..ended("succeeded", "t5")
    };
    assert!(!store
        .finish_invocation("async-a", &late, &[line("late")])
        .await
        .unwrap());
    let run = store.invocation("async-a").await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.attempts), ("running", 2));
    let logs = store.logs("async-a").await.unwrap();
    assert!(logs.iter().all(|l| l.line != "late"), "{logs:?}");
    let on_b = InvocationEnd {
        node: Some("b"),
        ..ended("succeeded", "t6")
    };
    assert!(store
        .finish_invocation("async-a", &on_b, &[])
        .await
        .unwrap());
    assert_eq!(
        store.invocation("async-a").await.unwrap().unwrap().status,
        "succeeded"
    );
}

/// `purge_runs` removes ended runs accepted before the cut and, per namespace, ended runs
/// beyond the newest `keep`, with their logs; queued and running runs stay.
pub async fn purge_removes_old_runs_and_runs_beyond_the_count_with_their_logs(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store.create_namespace("other", "t0").await.unwrap();
    for (id, at) in [("r1", "t1"), ("r2", "t2"), ("r3", "t3"), ("r4", "t4")] {
        store.start_invocation(id, "demo", "f", at).await.unwrap();
        store
            .finish_invocation(id, &ended("succeeded", at), &[line(id)])
            .await
            .unwrap();
    }
    store
        .insert_run(&queued("old-queued", "f", "t0"))
        .await
        .unwrap();
    store
        .start_invocation("o1", "other", "f", "t1")
        .await
        .unwrap();
    store
        .finish_invocation("o1", &ended("succeeded", "t1"), &[])
        .await
        .unwrap();
    let all = |ns: &str| RunFilter {
        namespace: ns.into(),
        limit: 100,
        ..Default::default()
    };
    let ids = |runs: Vec<InvocationRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();

    // By age: ended runs accepted before t2 go, in every namespace.
    assert_eq!(store.purge_runs("t2", 100).await.unwrap(), 2);
    assert_eq!(
        ids(store.list_runs(&all("demo")).await.unwrap()),
        ["r4", "r3", "r2", "old-queued"]
    );
    assert!(store.list_runs(&all("other")).await.unwrap().is_empty());
    assert!(
        store.logs("r1").await.unwrap().is_empty(),
        "its logs went with it"
    );
    assert_eq!(store.logs("r2").await.unwrap().len(), 1);

    // By count: only the newest 2 of the namespace are kept (the queued one always is).
    assert_eq!(store.purge_runs("t0", 2).await.unwrap(), 1);
    assert_eq!(
        ids(store.list_runs(&all("demo")).await.unwrap()),
        ["r4", "r3", "old-queued"]
    );
    assert!(store.logs("r2").await.unwrap().is_empty());
    assert_eq!(
        store.purge_runs("t0", 2).await.unwrap(),
        0,
        "nothing more to do"
    );
}

/// Run counts group a namespace's runs accepted since a time by function, status and cold
/// start; instance counts group a namespace's instances by status. Other namespaces and older
/// runs are not counted.
pub async fn runs_and_instances_are_counted_by_status(backend: &impl Backend) {
    let store = backend.open().await;
    for ns in ["demo", "other"] {
        store.create_namespace(ns, "t0").await.unwrap();
    }
    let run = |id: &str, ns: &str, function: &str, at: &str| NewRun {
        namespace: ns.into(),
        ..queued(id, function, at)
    };
    for (id, ns, function, at, end, cold) in [
        (
            "old",
            "demo",
            "f",
            "2026-01-01T00:00:00Z",
            "succeeded",
            true,
        ),
        ("a", "demo", "f", "2026-01-01T00:01:00Z", "succeeded", true),
        ("b", "demo", "f", "2026-01-01T00:02:00Z", "succeeded", false),
        ("c", "demo", "f", "2026-01-01T00:03:00Z", "failed", false),
        ("d", "demo", "g", "2026-01-01T00:04:00Z", "timeout", true),
        ("e", "other", "f", "2026-01-01T00:05:00Z", "failed", false),
    ] {
        store.insert_run(&run(id, ns, function, at)).await.unwrap();
        assert!(store.claim_run(id, at, "n1").await.unwrap());
        let end = InvocationEnd {
            cold_start: Some(cold),
            ..ended(end, at)
        };
        store.finish_invocation(id, &end, &[]).await.unwrap();
    }
    store
        .insert_run(&queued("q", "g", "2026-01-01T00:06:00Z"))
        .await
        .unwrap();
    let counts: Vec<(String, String, bool, u64)> = store
        .run_counts("demo", "2026-01-01T00:00:30Z")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.function, c.status, c.cold_start, c.count))
        .collect();
    let row = |f: &str, s: &str, cold: bool, n: u64| (f.to_string(), s.to_string(), cold, n);
    assert_eq!(
        counts,
        [
            row("f", "failed", false, 1),
            row("f", "succeeded", false, 1),
            row("f", "succeeded", true, 1),
            row("g", "queued", false, 1),
            row("g", "timeout", true, 1),
        ]
    );
    assert!(store
        .run_counts("nobody", "2026-01-01T00:00:00Z")
        .await
        .unwrap()
        .is_empty());

    store.put_flow("demo", "x", "source", "t0").await.unwrap();
    for id in ["i1", "i2", "i3"] {
        store
            .create_instance(&crate::NewInstance {
                id,
                namespace: "demo",
                flow: "x",
                source: "source",
                input: "{}",
                checkpoint: "cp",
                parent: None,
                depth: 0,
                now: "t0",
                owner: None,
                lease_ms: 0,
            })
            .await
            .unwrap();
    }
    store
        .save_checkpoint("i2", "waiting", "cp", None, "t1", None)
        .await
        .unwrap();
    store
        .finish_instance("i3", "failed", None, Some(("e", "m")), "t1", None)
        .await
        .unwrap();
    let by_status = |list: Vec<(String, u64)>| {
        list.into_iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by_status(store.instance_counts("demo").await.unwrap()),
        ["failed=1", "running=1", "waiting=1"]
    );
    assert!(store.instance_counts("other").await.unwrap().is_empty());
}

/// Runs, instances and events page by keyset: `before` a row gives the rows after it in the
/// list's order (ties of time broken by the order stored), pages are disjoint and complete;
/// a `before` of another namespace gives nothing (events: `None`).
pub async fn lists_page_by_keyset_within_their_namespace(backend: &impl Backend) {
    let store = backend.open().await;
    for ns in ["demo", "other"] {
        store.create_namespace(ns, "t0").await.unwrap();
    }
    // Runs: two accepted at the same time keep the order stored.
    for (id, at) in [
        ("r1", "t1"),
        ("r2", "t2"),
        ("r3", "t2"),
        ("r4", "t3"),
        ("r5", "t4"),
    ] {
        store.insert_run(&queued(id, "f", at)).await.unwrap();
    }
    store
        .insert_run(&NewRun {
            namespace: "other".into(),
            ..queued("x1", "f", "t5")
        })
        .await
        .unwrap();
    let page = |before: Option<&str>, limit: u32| RunFilter {
        namespace: "demo".into(),
        before: before.map(str::to_string),
        limit,
        ..Default::default()
    };
    let ids = |runs: Vec<InvocationRecord>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_runs(&page(None, 2)).await.unwrap()),
        ["r5", "r4"]
    );
    assert_eq!(
        ids(store.list_runs(&page(Some("r4"), 2)).await.unwrap()),
        ["r3", "r2"]
    );
    assert_eq!(
        ids(store.list_runs(&page(Some("r2"), 2)).await.unwrap()),
        ["r1"]
    );
    assert!(store
        .list_runs(&page(Some("x1"), 2))
        .await
        .unwrap()
        .is_empty());

    // Instances, by flow and status too.
    for ns in ["demo", "other"] {
        store.put_flow(ns, "a", "source", "t0").await.unwrap();
    }
    store.put_flow("demo", "b", "source", "t0").await.unwrap();
    for (id, ns, flow, at) in [
        ("i1", "demo", "a", "t1"),
        ("i2", "demo", "b", "t2"),
        ("i3", "demo", "a", "t2"),
        ("i4", "demo", "a", "t3"),
        ("o1", "other", "a", "t4"),
    ] {
        store
            .create_instance(&crate::NewInstance {
                id,
                namespace: ns,
                flow,
                source: "source",
                input: "{}",
                checkpoint: "cp",
                parent: None,
                depth: 0,
                now: at,
                owner: None,
                lease_ms: 0,
            })
            .await
            .unwrap();
    }
    store
        .finish_instance("i3", "failed", None, Some(("e", "m")), "t5", None)
        .await
        .unwrap();
    let filter =
        |flow: Option<&str>, status: Option<&str>, before: Option<&str>| crate::InstanceFilter {
            namespace: "demo".into(),
            flow: flow.map(str::to_string),
            status: status.map(str::to_string),
            before: before.map(str::to_string),
            limit: 2,
        };
    let instances =
        |list: Vec<FlowInstanceRecord>| list.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        instances(
            store
                .list_instances_by(&filter(None, None, None))
                .await
                .unwrap()
        ),
        ["i4", "i3"]
    );
    assert_eq!(
        instances(
            store
                .list_instances_by(&filter(None, None, Some("i3")))
                .await
                .unwrap()
        ),
        ["i2", "i1"]
    );
    assert_eq!(
        instances(
            store
                .list_instances_by(&filter(Some("a"), None, Some("i4")))
                .await
                .unwrap()
        ),
        ["i3", "i1"]
    );
    assert_eq!(
        instances(
            store
                .list_instances_by(&filter(None, Some("running"), None))
                .await
                .unwrap()
        ),
        ["i4", "i2"]
    );
    assert!(store
        .list_instances_by(&filter(None, None, Some("o1")))
        .await
        .unwrap()
        .is_empty());

    // Events, by seq.
    let mut seqs = Vec::new();
    for id in ["e1", "e2", "e3"] {
        match store
            .insert_event("demo", id, "/src", "t", "{}", 1)
            .await
            .unwrap()
        {
            crate::EventInsert::New(seq) => seqs.push(seq),
            other => panic!("{other:?}"),
        }
    }
    let crate::EventInsert::New(foreign) = store
        .insert_event("other", "e9", "/src", "t", "{}", 1)
        .await
        .unwrap()
    else {
        panic!("a new event")
    };
    let events = |list: Vec<StoredEvent>| list.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        events(
            store
                .list_events_before("demo", seqs[2], 10)
                .await
                .unwrap()
                .unwrap()
        ),
        ["e2", "e1"]
    );
    assert_eq!(
        events(
            store
                .list_events_before("demo", seqs[1], 1)
                .await
                .unwrap()
                .unwrap()
        ),
        ["e1"]
    );
    assert!(store
        .list_events_before("demo", foreign, 10)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .list_events_before("demo", seqs[2] + 1000, 10)
        .await
        .unwrap()
        .is_none());
}
