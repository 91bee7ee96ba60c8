//! Cases of flows, instances, their logs and calls, and variables.

use super::Backend;
use crate::*;

/// Instances keep their checkpoint, finished states (once per step), logs (none for a missing
/// instance), a first end only, and variables; deleting the flow deletes its workflow
/// variables, deleting the namespace its instances.
pub async fn flow_instances_keep_checkpoints_finished_states_logs_and_variables(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store.put_flow("demo", "a/b", "source", "t0").await.unwrap();
    store
        .create_instance(&crate::NewInstance {
            id: "i1",
            namespace: "demo",
            flow: "a/b",
            source: "source",
            input: "{}",
            checkpoint: "cp0",
            parent: None,
            depth: 0,
            now: "t0",
            owner: None,
            lease_ms: 0,
        })
        .await
        .unwrap();
    store
        .save_checkpoint("i1", "running", "cp1", Some((1, "first")), "t1", None)
        .await
        .unwrap();
    store
        .save_checkpoint("i1", "running", "cp1", Some((1, "first")), "t1", None)
        .await
        .unwrap();
    assert_eq!(
        store.finished_states("i1").await.unwrap(),
        vec![(1, "first".to_string())]
    );
    assert_eq!(
        store.instances_with_status("running").await.unwrap().len(),
        1
    );
    assert_eq!(store.unfinished_instances("demo").await.unwrap(), ["i1"]);
    assert!(store
        .unfinished_instances("other")
        .await
        .unwrap()
        .is_empty());
    store.append_instance_log("i1", 5, "hello").await.unwrap();
    store
        .append_instance_log("gone", 5, "nobody's")
        .await
        .unwrap();
    assert!(
        store.instance_logs("gone", 0).await.unwrap().is_empty(),
        "no lines for an instance that does not exist"
    );
    assert_eq!(
        store.instance_logs("i1", 0).await.unwrap()[0].message,
        "hello"
    );
    assert!(store
        .finish_instance("i1", "complete", Some("{}"), None, "t2", None)
        .await
        .unwrap());
    assert!(
        !store
            .finish_instance("i1", "failed", None, Some(("x", "y")), "t3", None)
            .await
            .unwrap(),
        "an ended instance keeps its end"
    );
    assert!(store.unfinished_instances("demo").await.unwrap().is_empty());
    let record = store.instance("i1").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.checkpoint.as_str()),
        ("complete", "cp1")
    );
    store
        .set_variable("demo", "workflow", "a/b", "k", Some("1"), "t1")
        .await
        .unwrap();
    assert_eq!(
        store
            .variable("demo", "workflow", "a/b", "k")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    store.delete_flow("demo", "a/b").await.unwrap();
    assert_eq!(
        store
            .variable("demo", "workflow", "a/b", "k")
            .await
            .unwrap(),
        None
    );
    store.delete_namespace("demo").await.unwrap();
    assert!(store.instance("i1").await.unwrap().is_none());
}

/// An instance's subflow depth is stored as given and read back, also after a reopen.
pub async fn an_instance_keeps_its_subflow_depth_across_a_reopen(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    for (id, depth) in [("top", 0), ("deep", 5)] {
        store
            .create_instance(&crate::NewInstance {
                id,
                namespace: "demo",
                flow: "f",
                source: "source",
                input: "{}",
                checkpoint: "cp0",
                parent: None,
                depth,
                now: "t0",
                owner: None,
                lease_ms: 0,
            })
            .await
            .unwrap();
    }
    drop(store);
    let store = backend.open().await;
    for (id, depth) in [("top", 0), ("deep", 5)] {
        let record = store.instance(id).await.unwrap().unwrap();
        assert_eq!(record.depth, depth, "{id}");
    }
}

/// An instance keeps its calls with their current status and its lines with their state and
/// invocation; nothing is kept for a missing instance, and everything goes with the namespace.
pub async fn an_instance_keeps_its_calls_and_its_functions_lines_by_state(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store.create_namespace("other", "t0").await.unwrap();
    for (id, ns) in [("i1", "demo"), ("child", "demo"), ("o1", "other")] {
        store
            .create_instance(&crate::NewInstance {
                id,
                namespace: ns,
                flow: "f",
                source: "source",
                input: "{}",
                checkpoint: "cp0",
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
        .start_invocation("inv1", "demo", "flow:f:get", "t1")
        .await
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
        .await
        .unwrap();
    store
        .record_instance_call("i1", &call("child", "instance"))
        .await
        .unwrap();
    store
        .record_instance_call("gone", &call("inv1", "invocation"))
        .await
        .unwrap();
    let line = |message| NewInstanceLog {
        ts_ms: 7,
        message,
        state: Some("getter"),
        invocation: Some("inv1"),
    };
    store
        .append_instance_log("i1", 6, "running state 'getter'")
        .await
        .unwrap();
    store
        .append_instance_logs("i1", &[line("hello1"), line("hello2")])
        .await
        .unwrap();
    store
        .append_instance_logs("gone", &[line("nobody's")])
        .await
        .unwrap();
    let logs = store.instance_logs("i1", 0).await.unwrap();
    assert_eq!(logs.len(), 3);
    assert_eq!(
        (logs[0].state.as_deref(), logs[0].invocation.as_deref()),
        (None, None)
    );
    assert_eq!(logs[1].message, "hello1");
    assert_eq!(logs[2].state.as_deref(), Some("getter"));
    assert_eq!(logs[2].invocation.as_deref(), Some("inv1"));
    assert!(store.instance_logs("gone", 0).await.unwrap().is_empty());
    let calls = store.instance_calls("i1").await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "inv1");
    assert_eq!(calls[0].status.as_deref(), Some("running"));
    assert_eq!(calls[1].kind, "instance");
    assert_eq!(calls[1].status.as_deref(), Some("running"));
    assert!(store.instance_calls("gone").await.unwrap().is_empty());
    store.delete_namespace("demo").await.unwrap();
    assert!(store.instance_calls("i1").await.unwrap().is_empty());
    assert!(store.instance_logs("i1", 0).await.unwrap().is_empty());
}

/// An instance's steps: each started once, the open one ended with its output or error (a
/// second end changes nothing), listed in order, gone with the namespace.
pub async fn an_instance_keeps_its_steps_in_order(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store.put_flow("demo", "f", "source", "t0").await.unwrap();
    store
        .create_instance(&crate::NewInstance {
            id: "i1",
            namespace: "demo",
            flow: "f",
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
    let start = |step: u64, state: &'static str, input: Option<&'static str>| StepStart {
        instance: "i1",
        step,
        state,
        started: "t1",
        input,
        truncated: input.is_none(),
    };
    store
        .start_step(&start(1, "a", Some(r#"{"n":1}"#)))
        .await
        .unwrap();
    store
        .start_step(&start(1, "again", Some("{}")))
        .await
        .unwrap();
    let done = StepEnd {
        finished: "t2",
        output: Some(r#"{"n":2}"#),
        ..Default::default()
    };
    store.end_step("i1", &done).await.unwrap();
    store.start_step(&start(2, "b", None)).await.unwrap();
    let failed = StepEnd {
        finished: "t3",
        error: Some(("boom", "it broke")),
        ..Default::default()
    };
    store.end_step("i1", &failed).await.unwrap();
    store.end_step("i1", &done).await.unwrap();
    let steps = store.instance_steps("i1").await.unwrap();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(
        (
            steps[0].step,
            steps[0].state.as_str(),
            steps[0].finished.as_deref()
        ),
        (1, "a", Some("t2"))
    );
    assert_eq!(
        (steps[0].input.as_deref(), steps[0].output.as_deref()),
        (Some(r#"{"n":1}"#), Some(r#"{"n":2}"#))
    );
    assert!(!steps[0].truncated);
    assert_eq!(
        (
            steps[1].state.as_str(),
            steps[1].finished.as_deref(),
            steps[1].error_code.as_deref(),
            steps[1].error_message.as_deref(),
            steps[1].output.as_deref(),
            steps[1].truncated
        ),
        ("b", Some("t3"), Some("boom"), Some("it broke"), None, true)
    );
    assert!(store.instance_steps("nope").await.unwrap().is_empty());
    store.delete_namespace("demo").await.unwrap();
    assert!(store.instance_steps("i1").await.unwrap().is_empty());
}

/// A flow needs its namespace, keeps `created` on redeploy (returning what it stored), is
/// listed by path, and its delete says whether there was one.
pub async fn flows_need_their_namespace_keep_created_and_list_by_path(backend: &impl Backend) {
    let store = backend.open().await;
    assert!(
        matches!(
            store.put_flow("nowhere", "f", "source", "t0").await,
            Err(StoreError::NoNamespace(ns)) if ns == "nowhere"
        ),
        "a flow needs its namespace"
    );
    store.create_namespace("demo", "t0").await.unwrap();
    store.create_namespace("other", "t0").await.unwrap();
    store.put_flow("demo", "b", "one", "t1").await.unwrap();
    store.put_flow("demo", "a", "source", "t1").await.unwrap();
    store.put_flow("other", "c", "source", "t1").await.unwrap();
    let redeployed = store.put_flow("demo", "b", "two", "t2").await.unwrap();
    assert_eq!(
        redeployed,
        FlowRecord {
            namespace: "demo".into(),
            path: "b".into(),
            source: "two".into(),
            created: "t1".into(),
            updated: "t2".into(),
        }
    );
    assert_eq!(
        store.flow("demo", "b").await.unwrap().as_ref(),
        Some(&redeployed)
    );
    assert_eq!(store.flow("demo", "c").await.unwrap(), None);
    let paths = |flows: Vec<FlowRecord>| flows.into_iter().map(|f| f.path).collect::<Vec<_>>();
    assert_eq!(paths(store.list_flows("demo").await.unwrap()), ["a", "b"]);
    assert!(!store.delete_flow("demo", "c").await.unwrap());
    assert!(store.delete_flow("demo", "a").await.unwrap());
    assert_eq!(paths(store.list_flows("demo").await.unwrap()), ["b"]);
    assert_eq!(paths(store.list_flows("other").await.unwrap()), ["c"]);
}

/// Instances list newest first (the later stored first among equal times) up to the limit,
/// by status oldest first; metadata replaces what was there; variables of the three scopes
/// are apart, replaced and deleted one by one; ending a step when none is open changes
/// nothing.
pub async fn instances_list_newest_first_keep_metadata_and_variables_by_scope(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store.create_namespace("other", "t0").await.unwrap();
    for (id, ns, now) in [
        ("x1", "demo", "t1"),
        ("x2", "demo", "t2"),
        ("x3", "demo", "t2"),
        ("o1", "other", "t3"),
    ] {
        store
            .create_instance(&crate::NewInstance {
                id,
                namespace: ns,
                flow: "f",
                source: "source",
                input: "{}",
                checkpoint: "cp0",
                parent: None,
                depth: 0,
                now,
                owner: None,
                lease_ms: 0,
            })
            .await
            .unwrap();
    }
    let ids =
        |records: Vec<FlowInstanceRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_instances("demo", 10).await.unwrap()),
        ["x3", "x2", "x1"]
    );
    assert_eq!(
        ids(store.list_instances("demo", 2).await.unwrap()),
        ["x3", "x2"]
    );
    store
        .save_checkpoint("x2", "waiting", "cp1", None, "t4", None)
        .await
        .unwrap();
    let running = ids(store.instances_with_status("running").await.unwrap());
    assert_eq!(running, ["x1", "x3", "o1"], "oldest first, every namespace");
    assert_eq!(
        ids(store.instances_with_status("waiting").await.unwrap()),
        ["x2"]
    );
    assert_eq!(
        store.unfinished_instances("demo").await.unwrap(),
        ["x1", "x2", "x3"]
    );

    store
        .set_instance_metadata("x1", r#"{"a":1}"#, "t5", None)
        .await
        .unwrap();
    store
        .set_instance_metadata("x1", r#"{"b":2}"#, "t6", None)
        .await
        .unwrap();
    store
        .set_instance_metadata("nope", "{}", "t6", None)
        .await
        .unwrap();
    let x1 = store.instance("x1").await.unwrap().unwrap();
    assert_eq!(
        (
            x1.metadata.as_deref(),
            x1.updated.as_str(),
            x1.status.as_str()
        ),
        (Some(r#"{"b":2}"#), "t6", "running")
    );
    assert_eq!(store.instance("x3").await.unwrap().unwrap().metadata, None);

    for (scope, owner, value) in [
        ("namespace", "", "1"),
        ("workflow", "f", "2"),
        ("instance", "x1", "3"),
    ] {
        store
            .set_variable("demo", scope, owner, "k", Some(value), "t1")
            .await
            .unwrap();
    }
    store
        .set_variable("demo", "workflow", "f", "k", Some("22"), "t2")
        .await
        .unwrap();
    let get = |scope: &'static str, owner: &'static str| {
        let store = store.clone();
        async move { store.variable("demo", scope, owner, "k").await.unwrap() }
    };
    assert_eq!(get("namespace", "").await.as_deref(), Some("1"));
    assert_eq!(get("workflow", "f").await.as_deref(), Some("22"));
    assert_eq!(get("instance", "x1").await.as_deref(), Some("3"));
    assert_eq!(get("instance", "x2").await, None);
    assert_eq!(
        store.variable("other", "namespace", "", "k").await.unwrap(),
        None
    );
    store
        .set_variable("demo", "namespace", "", "k", None, "t3")
        .await
        .unwrap();
    store
        .set_variable("demo", "namespace", "", "unset", None, "t3")
        .await
        .unwrap();
    assert_eq!(get("namespace", "").await, None);
    assert_eq!(get("workflow", "f").await.as_deref(), Some("22"));
    assert_eq!(get("instance", "x1").await.as_deref(), Some("3"));

    store
        .end_step(
            "x1",
            &StepEnd {
                finished: "t7",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(store.instance_steps("x1").await.unwrap().is_empty());
}

fn leased_instance<'a>(id: &'a str, owner: Option<&'a str>, lease_ms: i64) -> NewInstance<'a> {
    NewInstance {
        id,
        namespace: "demo",
        flow: "f",
        source: "source",
        input: "{}",
        checkpoint: "cp0",
        parent: None,
        depth: 0,
        now: "t0",
        owner,
        lease_ms,
    }
}

fn is_lease_lost(e: &StoreError, id: &str, owner: &str) -> bool {
    matches!(e, StoreError::LeaseLost { id: i, owner: o } if i == id && o == owner)
}

/// An instance's creator owns it at epoch 0 and renews its lease; one whose lease expired is
/// taken over once (epoch 1), after which the old owner's checkpoint, metadata and end are
/// refused with `LeaseLost` and the new owner's are kept. Unowned instances are expired from
/// the start; `Mine` claims only one's own.
pub async fn instances_are_leased_taken_over_once_and_fence_the_old_owner(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .create_instance(&leased_instance("held", Some("a"), 60_000))
        .await
        .unwrap();
    store
        .create_instance(&leased_instance("short", Some("a"), 1))
        .await
        .unwrap();
    store
        .create_instance(&leased_instance("nobody", None, 0))
        .await
        .unwrap();
    store
        .save_checkpoint(
            "held",
            "running",
            "cp1",
            Some((1, "s")),
            "t1",
            Some(("a", 0)),
        )
        .await
        .unwrap();
    // Past the 1 ms leases (a blocking pause: the suite has no runtime of its own).
    std::thread::sleep(std::time::Duration::from_millis(20));
    let expired: Vec<String> = store
        .expired_instances(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        expired,
        ["short", "nobody"],
        "oldest first, the held one left out"
    );
    assert_eq!(
        store.expired_instances(1).await.unwrap()[0],
        ExpiredInstance {
            id: "short".into(),
            parent: None,
            owner: Some("a".into())
        }
    );
    assert_eq!(
        store
            .claim_instance("held", "b", 60_000, Claim::TakeOver)
            .await
            .unwrap(),
        None,
        "a held lease is not taken over"
    );
    assert_eq!(
        store
            .claim_instance("short", "b", 60_000, Claim::TakeOver)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .claim_instance("short", "c", 60_000, Claim::TakeOver)
            .await
            .unwrap(),
        None,
        "taken over once"
    );
    let refused = store
        .save_checkpoint(
            "short",
            "running",
            "old",
            Some((1, "s")),
            "t2",
            Some(("a", 0)),
        )
        .await
        .unwrap_err();
    assert!(is_lease_lost(&refused, "short", "b"), "{refused:?}");
    let refused = store
        .set_instance_metadata("short", "{}", "t2", Some(("a", 0)))
        .await
        .unwrap_err();
    assert!(is_lease_lost(&refused, "short", "b"), "{refused:?}");
    let refused = store
        .finish_instance("short", "complete", Some("1"), None, "t2", Some(("a", 0)))
        .await
        .unwrap_err();
    assert!(is_lease_lost(&refused, "short", "b"), "{refused:?}");
    let record = store.instance("short").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.checkpoint.as_str()),
        ("running", "cp0")
    );
    assert!(store.finished_states("short").await.unwrap().is_empty());
    store
        .save_checkpoint(
            "short",
            "running",
            "new",
            Some((1, "s")),
            "t3",
            Some(("b", 1)),
        )
        .await
        .unwrap();
    assert!(store
        .finish_instance("short", "complete", Some("2"), None, "t4", Some(("b", 1)))
        .await
        .unwrap());
    assert!(
        !store
            .finish_instance("short", "failed", None, None, "t5", Some(("a", 0)))
            .await
            .unwrap(),
        "an ended instance keeps its end; no lease to lose"
    );
    let record = store.instance("short").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.output.as_deref()),
        ("complete", Some("2"))
    );
    // Fenced writes to an instance that does not exist change nothing and are no error.
    store
        .save_checkpoint("gone", "running", "x", None, "t5", Some(("a", 0)))
        .await
        .unwrap();
    // Renewing extends only the owner's running instances; Mine claims only one's own.
    assert_eq!(store.renew_leases("a", 60_000).await.unwrap(), 1);
    assert_eq!(store.renew_leases("b", 60_000).await.unwrap(), 0);
    assert_eq!(store.instances_owned_by("a").await.unwrap(), ["held"]);
    assert_eq!(
        store
            .claim_instance("held", "b", 60_000, Claim::Mine)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_instance("held", "a", 60_000, Claim::Mine)
            .await
            .unwrap(),
        Some(1)
    );
    let refused = store
        .save_checkpoint("held", "running", "cp2", None, "t6", Some(("a", 0)))
        .await
        .unwrap_err();
    assert!(
        is_lease_lost(&refused, "held", "a"),
        "an older epoch of the same node is fenced too: {refused:?}"
    );
    assert_eq!(
        store
            .claim_instance("nobody", "c", 60_000, Claim::TakeOver)
            .await
            .unwrap(),
        Some(1)
    );
    assert!(store.expired_instances(10).await.unwrap().is_empty());
}

/// A waiting instance has no lease (nobody drives it) and is not expired; of two resumes one
/// claims it, and a running instance cannot be resumed. Unfenced writes (a cancel) win
/// whoever holds the instance.
pub async fn a_wait_is_resumed_once_and_unfenced_writes_always_land(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .create_instance(&leased_instance("w", Some("a"), 1))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_instance("w", "b", 60_000, Claim::Resume)
            .await
            .unwrap(),
        None,
        "a running instance is not resumed"
    );
    store
        .save_checkpoint("w", "waiting", "cpw", Some((1, "s")), "t1", Some(("a", 0)))
        .await
        .unwrap();
    // Past the 1 ms leases (a blocking pause: the suite has no runtime of its own).
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(
        store.expired_instances(10).await.unwrap().is_empty(),
        "a waiting instance is not taken over"
    );
    assert_eq!(store.renew_leases("a", 60_000).await.unwrap(), 0);
    assert_eq!(
        store
            .claim_instance("w", "b", 60_000, Claim::Resume)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .claim_instance("w", "a", 60_000, Claim::Resume)
            .await
            .unwrap(),
        None,
        "resumed once"
    );
    assert_eq!(
        store.instance("w").await.unwrap().unwrap().status,
        "running"
    );
    assert_eq!(store.instances_owned_by("b").await.unwrap(), ["w"]);
    store
        .set_instance_metadata("w", "{\"by\":\"cancel\"}", "t2", None)
        .await
        .unwrap();
    assert!(store
        .finish_instance("w", "cancelled", None, Some(("c", "m")), "t3", None)
        .await
        .unwrap());
    let record = store.instance("w").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.metadata.as_deref()),
        ("cancelled", Some("{\"by\":\"cancel\"}"))
    );
    assert!(store.instances_owned_by("b").await.unwrap().is_empty());
    // The driver's next write after a cancel through another server is refused: it stops.
    let refused = store
        .save_checkpoint("w", "running", "cp2", Some((2, "t")), "t4", Some(("b", 1)))
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.instance("w").await.unwrap().unwrap().status,
        "cancelled"
    );
}

/// `record_progress` writes an instance's log lines, steps, checkpoint, call and end in the
/// order given, as the single methods do; a fenced write of another owner is refused with
/// everything written with it, and the end is recorded once.
pub async fn progress_is_written_in_order_and_fenced(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .create_instance(&leased_instance("p", Some("a"), 60_000))
        .await
        .unwrap();
    let log = |ts_ms: i64, message: &str| ProgressWrite::Log {
        ts_ms,
        message: message.to_string(),
        state: None,
        invocation: None,
    };
    let start = |step: u64, state: &str| ProgressWrite::StartStep {
        step,
        state: state.to_string(),
        started: "t1".to_string(),
        input: Some("{}".to_string()),
        truncated: false,
    };
    let end = ProgressWrite::EndStep {
        finished: "t2".to_string(),
        output: Some("{\"x\":1}".to_string()),
        error: None,
        truncated: false,
    };
    let checkpoint = ProgressWrite::Checkpoint {
        status: "running".to_string(),
        checkpoint: "cp1".to_string(),
        finished: Some((1, "s1".to_string())),
        now: "t2".to_string(),
    };
    let call = ProgressWrite::Call(InstanceCallRecord {
        id: "inv1".to_string(),
        kind: "invocation".to_string(),
        state: "s1".to_string(),
        function: "echo".to_string(),
        started: "t1".to_string(),
        status: None,
    });
    let writes = vec![
        start(1, "s1"),
        log(1, "running state 's1'"),
        call,
        log(2, "called"),
        checkpoint,
        end,
        start(2, "s2"),
    ];
    assert!(!store
        .record_progress("p", writes, Some(("a", 0)))
        .await
        .unwrap());
    let steps = store.instance_steps("p").await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (steps[0].finished.as_deref(), steps[0].output.as_deref()),
        (Some("t2"), Some("{\"x\":1}"))
    );
    assert_eq!(
        (steps[1].state.as_str(), steps[1].finished.as_deref()),
        ("s2", None)
    );
    let lines: Vec<String> = store
        .instance_logs("p", 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(lines, ["running state 's1'", "called"]);
    assert_eq!(store.instance_calls("p").await.unwrap()[0].id, "inv1");
    let record = store.instance("p").await.unwrap().unwrap();
    assert_eq!(record.checkpoint, "cp1");
    assert_eq!(
        store.finished_states("p").await.unwrap(),
        vec![(1, "s1".to_string())]
    );

    let finish = || ProgressWrite::Finish {
        status: "complete".to_string(),
        output: Some("{}".to_string()),
        error: None,
        now: "t3".to_string(),
    };
    // Refused as a whole: the line before the refused end is not kept either.
    let refused = store
        .record_progress(
            "p",
            vec![
                log(3, "written by a server that lost the instance"),
                finish(),
            ],
            Some(("b", 0)),
        )
        .await
        .unwrap_err();
    assert!(is_lease_lost(&refused, "p", "a"), "{refused:?}");
    assert_eq!(
        store.instance("p").await.unwrap().unwrap().status,
        "running"
    );
    assert_eq!(store.instance_logs("p", 0).await.unwrap().len(), 2);
    let writes = vec![log(3, "instance completed"), finish()];
    assert!(store
        .record_progress("p", writes, Some(("a", 0)))
        .await
        .unwrap());
    let record = store.instance("p").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.output.as_deref()),
        ("complete", Some("{}"))
    );
    assert!(
        !store
            .record_progress("p", vec![finish()], Some(("a", 0)))
            .await
            .unwrap(),
        "an ended instance keeps its first end"
    );
}
