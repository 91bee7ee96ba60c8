//! Tests of the fake driver through the real agent client: what each programmed reply answers,
//! cancels, readiness failures and what the record shows.

use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::InvokeStatus;

use super::{spec, FakeBehaviour, FakeDriver, FakeReply};
use crate::{AgentClient, Driver, DriverError};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn echoes_and_records_start_call_and_stop() {
    let driver = FakeDriver::new(FakeBehaviour::echo()).unwrap();
    let instance = driver.start(spec("ns/echo")).await.unwrap();
    let client = AgentClient::at(instance.endpoint.clone());
    let outcome = client
        .invoke(
            "a1",
            "2030-01-01T00:00:00Z",
            Bytes::from_static(br#"{"x":1}"#),
        )
        .await
        .unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(outcome.output.unwrap().get(), r#"{"x":1}"#);
    let record = driver.record();
    assert_eq!(record.started, vec![instance.id.clone()]);
    assert_eq!(record.invokes.len(), 1);
    assert_eq!(record.invokes[0].action_id, "a1");
    assert_eq!(record.invokes[0].deadline, "2030-01-01T00:00:00Z");
    assert_eq!(record.answered, 1);

    driver.stop(&instance.id).await.unwrap();
    driver.stop(&instance.id).await.unwrap();
    assert_eq!(driver.record().stopped, vec![instance.id.clone()]);
    assert!(driver.record().running().is_empty());
    assert!(
        client.ready().await.is_err(),
        "a stopped instance answers nothing"
    );
}

#[tokio::test]
async fn a_held_call_answers_once_released_or_cancelled() {
    let driver = FakeDriver::new(FakeBehaviour::replying(FakeReply::Hold)).unwrap();
    let instance = driver.start(spec("ns/hold")).await.unwrap();
    let client = AgentClient::at(instance.endpoint.clone());
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.invoke("held", "", Bytes::from_static(b"1")).await }
    });
    let cancelled = tokio::spawn({
        let client = client.clone();
        async move { client.invoke("gone", "", Bytes::from_static(b"2")).await }
    });
    driver
        .wait_until(WAIT, "two calls in flight", |r| r.in_flight == 2)
        .await;
    client.cancel("gone").await.unwrap();
    let outcome = cancelled.await.unwrap().unwrap();
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert_eq!(outcome.message.as_deref(), Some("cancelled"));
    assert!(!held.is_finished(), "the other call is still held");

    driver.release(1);
    let outcome = held.await.unwrap().unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok);
    let record = driver.record();
    assert_eq!(record.cancels.len(), 1);
    assert_eq!(record.cancels[0].action_id, "gone");
    assert_eq!(record.in_flight, 0);
}

#[tokio::test]
async fn fail_crash_and_not_ready() {
    let behaviour = FakeBehaviour::replying(FakeReply::Fail {
        code: "my.code".into(),
        message: "nope".into(),
    });
    let driver = FakeDriver::new(behaviour.clone()).unwrap();
    let instance = driver.start(spec("ns/f")).await.unwrap();
    let client = AgentClient::at(instance.endpoint.clone());
    let outcome = client.invoke("a", "", Bytes::new()).await.unwrap();
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some("my.code"));

    behaviour.set_reply(FakeReply::Crash);
    assert!(client.invoke("b", "", Bytes::new()).await.is_err());
    behaviour.set_reply(FakeReply::Echo);
    assert!(
        client.invoke("c", "", Bytes::new()).await.is_err(),
        "a crashed agent stays dead"
    );

    behaviour.set_fail_ready(Some("port 8080 never opened"));
    match driver.start(spec("ns/f")).await {
        Err(DriverError::NotReady { reason, .. }) => {
            assert!(reason.contains("port 8080 never opened"), "{reason}")
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    behaviour.set_fail_ready(None);
    behaviour.set_fail_start(Some("no room"));
    assert!(driver.start(spec("ns/f")).await.is_err());
    let record = driver.record();
    assert_eq!(record.start_attempts, 3);
    assert_eq!(record.started, vec![instance.id.clone()]);
    driver.stop_all().await.unwrap();
    assert!(driver.record().running().is_empty());
}

#[tokio::test]
async fn a_held_call_ends_at_its_deadline() {
    let driver = FakeDriver::new(FakeBehaviour::replying(FakeReply::Hold)).unwrap();
    let instance = driver.start(spec("ns/hold")).await.unwrap();
    let client = AgentClient::at(instance.endpoint.clone());
    let outcome = client
        .invoke("late", "2001-01-01T00:00:00Z", Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert_eq!(outcome.status, InvokeStatus::Timeout);
    assert_eq!(driver.record().in_flight, 0);
}

/// A stand-in on TCP: the client presents the instance's secret and gets answers; a client with
/// another secret gets 401, and no error message shows either secret.
#[tokio::test]
async fn over_tcp_the_client_presents_the_secret() {
    let driver = FakeDriver::over_tcp(FakeBehaviour::echo()).unwrap();
    let instance = driver.start(spec("ns/echo")).await.unwrap();
    let faasbox_proto::AgentEndpoint::Tcp { addr, secret } = instance.endpoint.clone() else {
        panic!("a TCP driver gave {:?}", instance.endpoint);
    };
    assert!(instance.socket_path().is_none());
    assert!(addr.ip().is_loopback());
    assert!(!format!("{instance:?}").contains(secret.expose()));

    let client = AgentClient::at(instance.endpoint.clone());
    assert!(client.ready().await.unwrap().ready);
    let outcome = client
        .invoke("t1", "2030-01-01T00:00:00Z", Bytes::from_static(b"[7]"))
        .await
        .unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(outcome.output.unwrap().get(), "[7]");

    let wrong = faasbox_proto::AgentSecret::new("not-the-secret-of-this-instance");
    let intruder = AgentClient::at(faasbox_proto::AgentEndpoint::Tcp {
        addr,
        secret: wrong.clone(),
    });
    let err = intruder.ready().await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains(wrong.expose()), "{message}");
    assert!(!message.contains(secret.expose()), "{message}");
    let err = intruder
        .invoke("t2", "2030-01-01T00:00:00Z", Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    // Only the call with the secret reached the stand-in.
    assert_eq!(driver.record().invokes.len(), 1, "{:?}", driver.record());

    driver.stop(&instance.id).await.unwrap();
    let err = client.ready().await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("tcp:{addr}")), "{message}");
    assert!(!message.contains(secret.expose()), "{message}");
}
