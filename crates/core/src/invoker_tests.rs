//! Fast tests of the invoker against the fake driver and a SQLite store in a temporary
//! directory (no root, no containers): a call's answer and record, a timeout and a cancel
//! reaching the agent, a refused call recording nothing, and a redeploy retiring the old
//! revision's instances.

use bytes::Bytes;
use faasbox_driver::fake::{FakeBehaviour, FakeDriver, FakeReply};
use faasbox_store::InvocationStore;
use tokio_util::sync::CancellationToken;

use super::{invoke, CallOptions, CallRequest, Invocation};
use crate::deployments::Deployment;
use crate::failure::{codes, FailureKind};
use crate::image_pin::PullPolicy;
use crate::test_support::{harness, harness_on, Harness, WAIT};

/// A harness whose agents are reached over TCP, with their secrets.
async fn harness_tcp(reply: FakeReply, spec: serde_json::Value) -> Harness {
    harness_on(
        FakeDriver::over_tcp(FakeBehaviour::replying(reply)).unwrap(),
        spec,
    )
    .await
}

fn spec() -> serde_json::Value {
    serde_json::json!({"image": "hello", "timeout": "1s", "network": false})
}

async fn call(h: &Harness, name: &str, input: &'static [u8], options: CallOptions) -> Invocation {
    let request = CallRequest::function("ns", name, Bytes::from_static(input));
    invoke(h.state.clone(), request.with(options)).await
}

async fn stored_status(h: &Harness, id: &str) -> String {
    h.state.runs.records.settle().await;
    InvocationStore::invocation(&*h.state.store, id)
        .await
        .unwrap()
        .unwrap()
        .status
}

#[tokio::test]
async fn a_call_answers_and_is_recorded() {
    answers_and_records(harness(FakeReply::Echo, spec()).await).await;
}

#[tokio::test]
async fn over_tcp_a_call_answers_and_is_recorded() {
    answers_and_records(harness_tcp(FakeReply::Echo, spec()).await).await;
}

async fn answers_and_records(h: Harness) {
    let invocation = call(&h, "fn", br#"{"x":1}"#, CallOptions::default()).await;
    let output = invocation.result.unwrap();
    assert_eq!(&output[..], br#"{"x":1}"#);
    let id = invocation.id.expect("the call was recorded");
    assert_eq!(stored_status(&h, &id).await, "succeeded");
    let record = h.driver.record();
    assert_eq!(record.invokes.len(), 1);
    assert_eq!(
        record.invokes[0].action_id, id,
        "the agent got the call's id"
    );
    assert!(!record.invokes[0].deadline.is_empty(), "and its deadline");
}

#[tokio::test]
async fn a_routes_http_request_reaches_the_agent_in_the_call_envelope() {
    let h = harness(FakeReply::Echo, spec()).await;
    let forward = faasbox_proto::HttpForward {
        method: "POST".into(),
        path: "/hooks/github".into(),
        query: "a=1".into(),
        headers: vec![("x-github-event".into(), "push".into())],
    };
    let options = CallOptions {
        http_forward: Some(forward.clone()),
        ..CallOptions::default()
    };
    let invocation = call(&h, "fn", br#"{"ref":"main"}"#, options).await;
    // The stand-in echoes the body it got: the envelope.
    let received = invocation.result.unwrap();
    let envelope: faasbox_proto::CallEnvelope = serde_json::from_slice(&received).unwrap();
    assert_eq!(envelope.http, Some(forward));
    assert_eq!(envelope.input.get(), r#"{"ref":"main"}"#);
}

#[tokio::test]
async fn only_http_functions_get_the_routes_request() {
    let spec = serde_json::json!({"image": "hello", "timeout": "1s", "network": false,
                                  "contract": "cmd"});
    let h = harness(FakeReply::Echo, spec).await;
    let options = CallOptions {
        http_forward: Some(faasbox_proto::HttpForward::default()),
        ..CallOptions::default()
    };
    let invocation = call(&h, "fn", br#"{"commands":[]}"#, options).await;
    // The stand-in echoes the body it got: the input alone, no envelope.
    assert_eq!(&invocation.result.unwrap()[..], br#"{"commands":[]}"#);
}

#[tokio::test]
async fn the_deadline_reaches_the_agent_and_its_timeout_is_a_504() {
    // The stand-in holds the call until the deadline it was sent, then answers `timeout`, as
    // the agent does; an http function's instance is replaced then.
    let h = harness(FakeReply::Hold, spec()).await;
    let invocation = call(&h, "fn", b"{}", CallOptions::default()).await;
    let error = invocation.result.unwrap_err();
    assert_eq!(error.kind, FailureKind::FunctionTimeout);
    assert_eq!(error.code, codes::FUNCTION_TIMEOUT);
    assert!(error.message.contains("replaced"), "{}", error.message);
    let id = invocation.id.expect("the call was recorded");
    assert_eq!(stored_status(&h, &id).await, "timeout");
    let record = h
        .driver
        .wait_until(WAIT, "the timed-out instance replaced", |r| {
            r.stopped.len() == 1
        })
        .await;
    assert!(
        record.cancels.is_empty(),
        "the agent stopped the call itself"
    );
}

#[tokio::test]
async fn an_agent_that_never_answers_is_cancelled_at_the_backstop() {
    // The stand-in never answers: the invoker's backstop fires and cancels the call.
    let h = harness(FakeReply::Hang, spec()).await;
    let invocation = call(&h, "fn", b"{}", CallOptions::default()).await;
    let error = invocation.result.unwrap_err();
    assert_eq!(error.kind, FailureKind::FunctionTimeout);
    assert_eq!(error.code, codes::FUNCTION_TIMEOUT);
    let id = invocation.id.expect("the call was recorded");
    assert_eq!(stored_status(&h, &id).await, "timeout");
    let record = h
        .driver
        .wait_until(WAIT, "the timed-out instance replaced", |r| {
            r.stopped.len() == 1
        })
        .await;
    assert_eq!(record.cancels.len(), 1);
    assert_eq!(record.cancels[0].action_id, id);
}

#[tokio::test]
async fn a_cancel_reaches_the_agent() {
    cancel_reaches_the_agent(harness(FakeReply::Hold, spec()).await).await;
}

#[tokio::test]
async fn over_tcp_a_cancel_reaches_the_agent() {
    cancel_reaches_the_agent(harness_tcp(FakeReply::Hold, spec()).await).await;
}

async fn cancel_reaches_the_agent(h: Harness) {
    let token = CancellationToken::new();
    let options = CallOptions {
        cancel: token.clone(),
        ..CallOptions::default()
    };
    let running = tokio::spawn({
        let state = h.state.clone();
        async move {
            let request = CallRequest::function("ns", "fn", Bytes::from_static(b"{}"));
            invoke(state, request.with(options)).await
        }
    });
    h.driver
        .wait_until(WAIT, "the call reached the agent", |r| r.in_flight == 1)
        .await;
    token.cancel();
    let invocation = tokio::time::timeout(WAIT, running)
        .await
        .expect("the cancelled call ended")
        .unwrap();
    let error = invocation.result.unwrap_err();
    assert_eq!(error.kind, FailureKind::Cancelled);
    assert_eq!(error.code, codes::FUNCTION_CANCELLED);
    let id = invocation.id.expect("the call was recorded");
    let record = h
        .driver
        .wait_until(WAIT, "the cancelled call's instance replaced", |r| {
            r.stopped.len() == 1
        })
        .await;
    assert_eq!(record.cancels.len(), 1);
    assert_eq!(record.cancels[0].action_id, id);
    assert_eq!(record.in_flight, 0, "the held call ended with its cancel");
}

/// A blocking call's record is written behind it by the record writer; a cancel by id finds
/// the call at once all the same (the writer writes the calls running now first).
#[tokio::test]
async fn a_call_is_cancelled_by_id_as_soon_as_it_runs() {
    let h = harness(FakeReply::Hold, spec()).await;
    let running = tokio::spawn({
        let state = h.state.clone();
        async move {
            let request = CallRequest::function("ns", "fn", Bytes::from_static(b"{}"));
            invoke(state, request).await
        }
    });
    let record = h
        .driver
        .wait_until(WAIT, "the call reached the agent", |r| r.in_flight == 1)
        .await;
    let id = record.invokes[0].action_id.clone();
    let cancelled = crate::runs::cancel::cancel(&h.state, Some("ns"), &id)
        .await
        .expect("the running call is found by its id");
    assert_eq!(cancelled.id, id);
    let invocation = tokio::time::timeout(WAIT, running)
        .await
        .expect("the cancelled call ended")
        .unwrap();
    assert_eq!(
        invocation.result.unwrap_err().code,
        codes::FUNCTION_CANCELLED
    );
    assert_eq!(stored_status(&h, &id).await, "cancelled");
}

#[tokio::test]
async fn a_refused_call_records_nothing_and_starts_nothing() {
    let h = harness(FakeReply::Echo, spec()).await;
    let not_json = call(&h, "fn", b"not json", CallOptions::default()).await;
    assert_eq!(not_json.result.unwrap_err().kind, FailureKind::Invalid);
    assert!(not_json.id.is_none());
    let missing = call(&h, "nope", b"{}", CallOptions::default()).await;
    assert_eq!(missing.result.unwrap_err().kind, FailureKind::NotFound);
    assert!(missing.id.is_none());
    let stored = InvocationStore::list_invocations(&*h.state.store, "ns", None, 10)
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    assert_eq!(h.driver.record().start_attempts, 0);
}

#[tokio::test]
async fn a_redeploy_retires_the_old_instances_and_calls_go_to_new_ones() {
    let h = harness(FakeReply::Echo, spec()).await;
    let first = call(&h, "fn", b"{}", CallOptions::default()).await;
    assert!(first.result.is_ok());
    let old = h.driver.record().started;
    assert_eq!(old.len(), 1);

    let deployed = h.state.deployments.deployed("ns", "fn").unwrap();
    let mut changed = (*deployed.spec).clone();
    changed.envs.insert("REVISION".into(), "2".into());
    h.state.deployments.activate(
        "ns",
        "fn",
        Deployment {
            spec: changed,
            digest: deployed.digest.clone(),
            revision: Some(2),
            pull: PullPolicy::Never,
        },
    );
    h.driver
        .wait_until(WAIT, "the old revision's idle instance stopped", |r| {
            r.stopped == old
        })
        .await;

    let second = call(&h, "fn", b"{}", CallOptions::default()).await;
    assert!(second.result.is_ok());
    let record = h.driver.record();
    assert_eq!(
        record.started.len(),
        2,
        "a new instance for the new revision"
    );
    assert_eq!(record.invokes[1].instance, record.started[1]);
}

/// A code function gets its call as the envelope: the spec's secrets merged into
/// `context.secrets` (an object secret by its keys), the input as `payload`; its input and
/// output are checked against its schemas (`InputError` before the agent is called,
/// `FunctionError` after).
#[tokio::test]
async fn a_code_function_gets_the_envelope_and_its_schemas_are_checked() {
    let spec = serde_json::json!({
        "image": "hello", "timeout": "5s", "network": false,
        "contract": "code", "language": "python3", "handler": "hello.handle",
        "secrets": ["db", "token"],
        "schema": {
            "in": {"type": "object", "required": ["name"]},
            "out": {"type": "object", "required": ["payload"]}
        }
    });
    let h = harness(FakeReply::Echo, spec).await;
    h.state
        .vault
        .put_secret("ns", "db", br#"{"user":"u","password":"pw-123456"}"#)
        .await
        .unwrap();
    h.state
        .vault
        .put_secret("ns", "token", b"tok-abcdef")
        .await
        .unwrap();
    // The stand-in echoes what it got: the envelope.
    let invocation = call(&h, "fn", br#"{"name":"x"}"#, CallOptions::default()).await;
    let output: serde_json::Value = serde_json::from_slice(&invocation.result.unwrap()).unwrap();
    assert_eq!(
        output,
        serde_json::json!({
            "context": {
                "secrets": {"user": "u", "password": "pw-123456", "token": "tok-abcdef"},
                "serviceBindings": {}
            },
            "payload": {"name": "x"}
        })
    );
    // A value of an object secret is masked in what the call leaves behind on its own.
    h.driver.behaviour().set_reply(FakeReply::Fail {
        code: "FunctionError".into(),
        message: "ValueError: bad password pw-123456".into(),
    });
    let error = call(&h, "fn", br#"{"name":"x"}"#, CallOptions::default())
        .await
        .result
        .unwrap_err();
    assert!(!error.message.contains("pw-123456"), "{}", error.message);
    h.driver.behaviour().set_reply(FakeReply::Echo);
    // An input that does not match schema.in never reaches the agent.
    let invokes = h.driver.record().invokes.len();
    let invocation = call(&h, "fn", br#"{"nome":"x"}"#, CallOptions::default()).await;
    let error = invocation.result.unwrap_err();
    assert_eq!(error.code, faasbox_proto::CODE_INPUT_ERROR);
    assert_eq!(error.kind, FailureKind::Invalid);
    assert_eq!(h.driver.record().invokes.len(), invokes);
    let id = invocation.id.expect("the refused call is recorded");
    assert_eq!(stored_status(&h, &id).await, "failed");
}

#[tokio::test]
async fn a_code_function_s_output_is_checked_against_schema_out() {
    let spec = serde_json::json!({
        "image": "hello", "timeout": "5s", "network": false,
        "contract": "code", "language": "shell", "handler": "run.sh",
        "schema": {"out": {"type": "string"}}
    });
    let h = harness(FakeReply::Echo, spec).await;
    let invocation = call(&h, "fn", br#"{"name":"x"}"#, CallOptions::default()).await;
    let error = invocation.result.unwrap_err();
    assert_eq!(error.code, faasbox_proto::CODE_FUNCTION_ERROR);
    assert_eq!(error.kind, FailureKind::FunctionFailed);
    assert!(error.message.contains("schema.out"), "{}", error.message);
}
