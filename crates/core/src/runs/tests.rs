//! Fast tests of runs against the fake driver and a SQLite store (no root, no containers):
//! submit and its refusals, the executor and its per-function bound, cancel, the second
//! attempt after a crash, the callback, retention, and what a blocking call's record keeps.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faasbox_driver::fake::FakeReply;
use faasbox_store::{InvocationRecord, InvocationStore, RunFilter};
use serde_json::{json, Value};

use super::{cancel, executor, recovery, retention, submit, Submission};
use crate::failure::FailureKind;
use crate::invoker::{invoke, CallOptions, CallRequest};
use crate::test_support::{harness, Harness, WAIT};

fn spec() -> Value {
    json!({"image": "hello", "timeout": "20s", "network": false,
           "scale": {"max": 1, "concurrency": 50}})
}

fn submission(input: &'static str) -> Submission {
    Submission {
        namespace: "ns".into(),
        function: "fn".into(),
        input: Bytes::from_static(input.as_bytes()),
        ..Submission::default()
    }
}

async fn record(h: &Harness, id: &str) -> InvocationRecord {
    h.state.runs.records.settle().await;
    InvocationStore::invocation(&*h.state.store, id)
        .await
        .unwrap()
        .expect("the run is stored")
}

/// Waits until run `id` has ended; its record.
async fn ended(h: &Harness, id: &str) -> InvocationRecord {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = record(h, id).await;
        if !matches!(r.status.as_str(), "queued" | "running") {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} did not end: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn statuses(h: &Harness) -> Vec<String> {
    let filter = RunFilter {
        namespace: "ns".into(),
        limit: 1000,
        ..Default::default()
    };
    h.state.runs.records.settle().await;
    InvocationStore::list_runs(&*h.state.store, &filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect()
}

/// A harness whose server settings `change` alters (before anything shares the state).
async fn harness_with(
    reply: FakeReply,
    change: impl FnOnce(&mut crate::config::ServerConfig),
) -> Harness {
    let mut h = harness(reply, spec()).await;
    let state = Arc::get_mut(&mut h.state).expect("nothing shares the state yet");
    change(&mut state.config);
    h
}

#[tokio::test]
async fn an_async_run_is_stored_queued_then_run_by_the_executor_once() {
    let h = harness(FakeReply::Echo, spec()).await;
    let submitted = submit(&h.state, submission(r#"{"x":1}"#)).await.unwrap();
    assert_eq!(
        (submitted.status.as_str(), submitted.existed),
        ("queued", false)
    );
    let queued = record(&h, &submitted.id).await;
    assert_eq!(
        (queued.status.as_str(), queued.mode.as_str()),
        ("queued", "async")
    );
    assert_eq!(queued.input.as_deref(), Some(r#"{"x":1}"#));
    assert_eq!(queued.started, None);
    assert!(
        h.driver.record().invokes.is_empty(),
        "nothing ran before the executor"
    );

    let executor = executor::start(h.state.clone());
    let run = ended(&h, &submitted.id).await;
    assert_eq!(run.status, "succeeded", "{run:#?}");
    assert_eq!(run.output.as_deref(), Some(r#"{"x":1}"#));
    assert_eq!((run.attempts, run.revision), (1, Some(1)));
    assert_eq!(
        run.cold_start,
        Some(true),
        "the first run started the instance"
    );
    assert!(run.phases.is_some() && run.started.is_some(), "{run:#?}");

    // The same id again: nothing new is stored or run.
    let again = Submission {
        id: Some(submitted.id.clone()),
        ..submission("{}")
    };
    let again = submit(&h.state, again).await.unwrap();
    assert_eq!((again.status.as_str(), again.existed), ("succeeded", true));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.driver.record().invokes.len(), 1, "run exactly once");
    executor.abort();
}

#[tokio::test]
async fn submit_refuses_what_a_call_would_refuse_and_stores_nothing() {
    let h = harness(FakeReply::Echo, spec()).await;
    let not_json = submit(&h.state, submission("{nope")).await.unwrap_err();
    assert_eq!(not_json.kind, FailureKind::Invalid, "{not_json}");
    let missing = Submission {
        function: "ghost".into(),
        ..submission("{}")
    };
    let missing = submit(&h.state, missing).await.unwrap_err();
    assert_eq!(missing.kind, FailureKind::NotFound, "{missing}");
    let ftp = Submission {
        callback_url: Some("ftp://example.com/x".into()),
        ..submission("{}")
    };
    let ftp = submit(&h.state, ftp).await.unwrap_err();
    assert!(ftp.message.contains("http"), "{ftp}");
    let bad_id = Submission {
        id: Some("a/b".into()),
        ..submission("{}")
    };
    assert_eq!(
        submit(&h.state, bad_id).await.unwrap_err().kind,
        FailureKind::Invalid
    );
    assert!(statuses(&h).await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn the_executor_runs_at_most_the_per_function_bound_at_once() {
    let h = harness_with(FakeReply::Hold, |c| c.runs_per_function = 3).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(submit(&h.state, submission("{}")).await.unwrap().id);
    }
    let executor = executor::start(h.state.clone());
    h.driver
        .wait_until(WAIT, "3 calls", |r| r.invokes.len() == 3)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.driver.record().invokes.len(), 3, "no more than the bound");
    let mut now = statuses(&h).await;
    now.sort();
    assert_eq!(now, ["queued", "queued", "running", "running", "running"]);
    h.driver.release(5);
    for id in &ids {
        assert_eq!(ended(&h, id).await.status, "succeeded");
    }
    assert_eq!(h.driver.record().invokes.len(), 5, "each ran once");
    executor.abort();
}

#[tokio::test]
async fn cancel_ends_a_queued_run_at_once_and_a_running_one_through_its_cancel() {
    let h = harness(FakeReply::Hold, spec()).await;
    let queued = submit(&h.state, submission("{}")).await.unwrap().id;
    let cancelled = cancel::cancel(&h.state, Some("ns"), &queued).await.unwrap();
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(cancelled.started, None);

    let running = submit(&h.state, submission("{}")).await.unwrap().id;
    let executor = executor::start(h.state.clone());
    h.driver
        .wait_until(WAIT, "the call", |r| r.invokes.len() == 1)
        .await;
    cancel::cancel(&h.state, Some("ns"), &running)
        .await
        .unwrap();
    let run = ended(&h, &running).await;
    assert_eq!(run.status, "cancelled", "{run:#?}");
    assert_eq!(run.error_type.as_deref(), Some("FunctionError"));
    assert!(
        h.driver
            .record()
            .cancels
            .iter()
            .any(|c| c.action_id == running),
        "the function got its cancel"
    );
    assert_eq!(
        h.driver.record().invokes.len(),
        1,
        "the queued one never ran"
    );

    let again = cancel::cancel(&h.state, None, &running).await.unwrap_err();
    assert_eq!(again.code, cancel::RUN_ENDED);
    let elsewhere = cancel::cancel(&h.state, Some("other"), &running)
        .await
        .unwrap_err();
    assert_eq!(elsewhere.kind, FailureKind::NotFound);
    executor.abort();
}

#[tokio::test]
async fn an_async_run_interrupted_by_a_crash_runs_a_second_time_and_says_so() {
    let h = harness(FakeReply::Echo, spec()).await;
    let id = submit(&h.state, submission(r#"{"n":2}"#)).await.unwrap().id;
    // As if a server claimed it and died running it.
    assert!(InvocationStore::claim_run(
        &*h.state.store,
        &id,
        "2026-01-01T00:00:00Z",
        h.state.node.as_str()
    )
    .await
    .unwrap());
    let recovered = recovery::recover(&*h.state.store, h.state.node.as_str())
        .await
        .unwrap();
    assert_eq!(recovered.requeued.requeued, vec![id.clone()]);
    let executor = executor::start(h.state.clone());
    let run = ended(&h, &id).await;
    assert_eq!((run.status.as_str(), run.attempts), ("succeeded", 2));
    assert_eq!(run.output.as_deref(), Some(r#"{"n":2}"#));
    let logs = InvocationStore::logs(&*h.state.store, &id).await.unwrap();
    assert!(
        logs.iter().any(|l| l.line.contains("attempt 2")),
        "{logs:#?}"
    );
    executor.abort();
}

/// A one-request HTTP server on loopback: the request's head and body.
async fn receive_one(listener: tokio::net::TcpListener) -> (String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the request ended early");
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(split) = text.find("\r\n\r\n") {
            let head = text[..split].to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buffer.len() >= split + 4 + length {
                let body = serde_json::from_slice(&buffer[split + 4..split + 4 + length]).unwrap();
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                return (head, body);
            }
        }
    }
}

#[tokio::test]
async fn a_finished_run_is_posted_to_its_callback() {
    let h = harness(FakeReply::Echo, spec()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let receiver = tokio::spawn(receive_one(listener));
    let with_callback = Submission {
        callback_url: Some(url),
        ..submission(r#"{"k":"v"}"#)
    };
    let id = submit(&h.state, with_callback).await.unwrap().id;
    let executor = executor::start(h.state.clone());
    let (head, body) = tokio::time::timeout(WAIT, receiver).await.unwrap().unwrap();
    assert!(head.starts_with("post /done"), "{head}");
    assert!(
        head.contains(&format!("faasbox-invocation-id: {id}")),
        "{head}"
    );
    assert!(head.contains("x-function-status: 200"), "{head}");
    assert_eq!(body["id"], json!(id));
    assert_eq!(body["status"], json!("succeeded"));
    assert_eq!(body["output"], json!({"k": "v"}));
    assert_eq!(body["function"], json!("fn"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while record(&h, &id).await.callback_status.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no callback status");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = record(&h, &id).await.callback_status.unwrap();
    assert!(status.starts_with("delivered"), "{status}");
    executor.abort();
}

#[tokio::test]
async fn retention_keeps_the_newest_runs_of_each_namespace() {
    let h = harness_with(FakeReply::Echo, |c| c.runs_keep = 2).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let input = Bytes::from(format!(r#"{{"n":{n}}}"#));
        let call = invoke(h.state.clone(), CallRequest::function("ns", "fn", input)).await;
        ids.push(call.id.unwrap());
        // Distinct acceptance times (they are kept to the millisecond).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Sync calls' records are written in batches: all four are stored before the purge.
    h.state.runs.records.settle().await;
    assert_eq!(retention::purge_once(&h.state).await.unwrap(), 2);
    let kept: Vec<String> = InvocationStore::list_runs(
        &*h.state.store,
        &RunFilter {
            namespace: "ns".into(),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.id)
    .collect();
    assert_eq!(kept, [ids[3].clone(), ids[2].clone()]);
}

#[tokio::test]
async fn a_blocking_call_s_record_keeps_input_output_error_class_and_phases() {
    let h = harness(FakeReply::Echo, spec()).await;
    let options = CallOptions {
        event: Some(json!({"type": "t", "source": "s"})),
        ..CallOptions::default()
    };
    let request = CallRequest::function("ns", "fn", Bytes::from_static(br#"{"a":1}"#));
    let first = invoke(h.state.clone(), request.with(options)).await;
    let first = record(&h, &first.id.unwrap()).await;
    assert_eq!(
        (first.mode.as_str(), first.status.as_str(), first.attempts),
        ("sync", "succeeded", 1)
    );
    assert_eq!(first.input.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(first.output.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(first.cold_start, Some(true));
    let event: Value = serde_json::from_str(first.event.as_deref().unwrap()).unwrap();
    assert_eq!(event["type"], json!("t"));
    let second = invoke(
        h.state.clone(),
        CallRequest::function("ns", "fn", Bytes::from_static(b"{}")),
    )
    .await;
    let second = record(&h, &second.id.unwrap()).await;
    assert_eq!(second.cold_start, Some(false), "the instance was warm");
    assert_eq!(second.phases.map(|p| p.init_ms), Some(0));

    h.driver.behaviour().set_reply(FakeReply::Fail {
        code: "app.bad".into(),
        message: "no".into(),
    });
    let failed = invoke(
        h.state.clone(),
        CallRequest::function("ns", "fn", Bytes::from_static(b"{}")),
    )
    .await;
    let failed = record(&h, &failed.id.unwrap()).await;
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.error_type.as_deref(), Some("FunctionError"));
    assert_eq!(failed.output, None);
}

#[tokio::test]
async fn a_run_crashed_on_its_second_attempt_still_gets_its_callback() {
    let h = harness(FakeReply::Echo, spec()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let receiver = tokio::spawn(receive_one(listener));
    let with_callback = Submission {
        callback_url: Some(url),
        ..submission("{}")
    };
    let id = submit(&h.state, with_callback).await.unwrap().id;
    let store = &*h.state.store;
    // Claimed, interrupted, queued again, claimed again and interrupted again.
    assert!(
        InvocationStore::claim_run(store, &id, "t1", h.state.node.as_str())
            .await
            .unwrap()
    );
    recovery::recover(store, h.state.node.as_str())
        .await
        .unwrap();
    assert!(
        InvocationStore::claim_run(store, &id, "t2", h.state.node.as_str())
            .await
            .unwrap()
    );
    let recovered = recovery::recover(store, h.state.node.as_str())
        .await
        .unwrap();
    assert_eq!(recovered.requeued.crashed, vec![id.clone()]);
    recovery::send_callbacks(&h.state, recovered.requeued.crashed);
    let (head, body) = tokio::time::timeout(WAIT, receiver).await.unwrap().unwrap();
    assert!(head.contains("x-function-status: 500"), "{head}");
    assert_eq!(body["status"], json!("crashed"));
    assert_eq!(body["error"]["type"], json!("SystemError"));
    assert_eq!(record(&h, &id).await.status, "crashed");
}

#[tokio::test]
async fn an_async_run_cut_short_by_a_server_stop_stays_running_and_runs_again() {
    let h = harness(FakeReply::Hold, spec()).await;
    let id = submit(&h.state, submission("{}")).await.unwrap().id;
    let executor = executor::start(h.state.clone());
    h.driver
        .wait_until(WAIT, "the call", |r| r.invokes.len() == 1)
        .await;
    executor.abort();
    h.state.runs.shut_down();
    // The stop ends the call (here: it is let go); its end is not recorded.
    h.driver.release(1);
    h.driver
        .wait_until(WAIT, "the answer", |r| r.answered == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(record(&h, &id).await.status, "running");
    let recovered = recovery::recover(&*h.state.store, h.state.node.as_str())
        .await
        .unwrap();
    assert_eq!(recovered.requeued.requeued, vec![id.clone()]);
}
