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
        })
        .await
        .unwrap();
    store
        .save_checkpoint("i1", "running", "cp1", Some((1, "first")), "t1")
        .await
        .unwrap();
    store
        .save_checkpoint("i1", "running", "cp1", Some((1, "first")), "t1")
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
        .finish_instance("i1", "complete", Some("{}"), None, "t2")
        .await
        .unwrap());
    assert!(
        !store
            .finish_instance("i1", "failed", None, Some(("x", "y")), "t3")
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
