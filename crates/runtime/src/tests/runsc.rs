//! The driver with gVisor's runsc: start/ready/invoke through the fake agent over the host
//! Unix socket the sandbox creates, with and without outbound network.

use bytes::Bytes;
use faasbox_proto::InvokeStatus;

use super::containers::{fetch_from_host, loopback_server, sh};
use super::fixtures::{fixture, pasta_available, runsc_available, spec, with_fake_agent};
use crate::agent_client::AgentClient;
use crate::driver::{Driver, OciRuntime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_start_ready_invoke_and_stop() {
    let Some(fx) = fixture() else { return };
    if !runsc_available() {
        return;
    }
    let instance = fx
        .driver
        .start_with(spec(&fx, OciRuntime::Runsc, false), with_fake_agent())
        .await
        .expect("start under runsc");
    assert_eq!(instance.runtime, OciRuntime::Runsc);
    let client = AgentClient::new(instance.socket.clone());
    assert!(client.ready().await.unwrap().ready);
    let outcome = client
        .invoke(
            "a1",
            "2099-01-01T00:00:00Z",
            Bytes::from_static(b"not json"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(outcome.output.unwrap().get(), "\"not json\"");
    // Really inside gVisor: its kernel identifies itself in dmesg.
    let dmesg = sh(&client, "dmesg | head -n 3").await;
    assert!(
        dmesg["stdout"].as_str().unwrap().contains("gVisor"),
        "{dmesg}"
    );
    let memory = sh(&client, "grep MemTotal /proc/meminfo").await;
    assert!(
        memory["stdout"].as_str().unwrap().contains("262144 kB"),
        "the memory limit shapes the sandbox: {memory}"
    );
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_outbound_network_reaches_host_loopback() {
    let Some(fx) = fixture() else { return };
    if !runsc_available() || !pasta_available() {
        return;
    }
    let port = loopback_server("hello gVisor").await;
    let instance = fx
        .driver
        .start_with(spec(&fx, OciRuntime::Runsc, true), with_fake_agent())
        .await
        .expect("start under runsc with network");
    let client = AgentClient::new(instance.socket.clone());
    let result = sh(&client, &fetch_from_host(port)).await;
    assert_eq!(result["stdout"], "hello gVisor", "{result}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}
