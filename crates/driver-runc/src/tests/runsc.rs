//! The driver with gVisor's runsc: start/ready/invoke through the fake agent over the host
//! Unix socket the sandbox creates, with and without outbound network.

use bytes::Bytes;
use faasbox_proto::InvokeStatus;

use super::containers::{fetch, fetch_from_host, http_server, loopback_server, sh, OutsideAddress};
use super::fixtures::{fixture, pasta_fixture, runsc_available, spec, with_fake_agent};
use faasbox_driver::{AgentClient, Driver, RuntimeClass};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_start_ready_invoke_and_stop() {
    let Some(fx) = fixture() else { return };
    if !runsc_available() {
        return;
    }
    let instance = fx
        .driver
        .start_with(spec(&fx, RuntimeClass::Sandboxed, false), with_fake_agent())
        .await
        .expect("start under runsc");
    assert_eq!(instance.runtime, RuntimeClass::Sandboxed);
    let client = AgentClient::at(instance.endpoint.clone());
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
    // The sandbox writes through to the instance's bounded disk, /tmp included (gVisor would
    // otherwise mount a tmpfs of its own there).
    let fill = sh(
        &client,
        "dd if=/dev/zero of=/tmp/fill bs=1M count=100 2>&1; df -k /tmp | tail -n 1",
    )
    .await;
    let out = fill["stdout"].as_str().unwrap();
    assert!(out.contains("No space left on device"), "{fill}");
    let available: u64 = out
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    assert_eq!(available, 0, "statfs sees the full disk: {fill}");
    sh(&client, "rm /tmp/fill").await;
    // The control mount is read-only here too.
    let ctl = sh(&client, "touch /.faasbox/new 2>&1; echo done").await;
    assert!(
        ctl["stdout"]
            .as_str()
            .unwrap()
            .contains("Read-only file system"),
        "{ctl}"
    );
    let memory = sh(&client, "grep MemTotal /proc/meminfo").await;
    assert!(
        memory["stdout"].as_str().unwrap().contains("327680 kB"),
        "the memory limit (plus the disk) shapes the sandbox: {memory}"
    );
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_network_through_pasta_reaches_outside_addresses_but_not_host_loopback() {
    // slirp4netns (the default) under gVisor: `slirp.rs`.
    if !runsc_available() {
        return;
    }
    let Some(fx) = pasta_fixture(false) else {
        return;
    };
    let on_loopback = loopback_server("the host's loopback").await;
    let outside = OutsideAddress::add();
    let on_outside = http_server(outside.ip, "hello gVisor, from outside").await;
    let instance = fx
        .driver
        .start_with(spec(&fx, RuntimeClass::Sandboxed, true), with_fake_agent())
        .await
        .expect("start under runsc with network");
    let client = AgentClient::at(instance.endpoint.clone());
    let result = sh(&client, &fetch(outside.ip, on_outside)).await;
    assert_eq!(result["stdout"], "hello gVisor, from outside", "{result}");
    let refused = sh(&client, &fetch_from_host(on_loopback)).await;
    assert_eq!(refused["stdout"], "", "{refused}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_host_loopback_is_reachable_through_pasta_when_allowed() {
    if !runsc_available() {
        return;
    }
    let Some(fx) = pasta_fixture(true) else {
        return;
    };
    let port = loopback_server("hello gVisor").await;
    let instance = fx
        .driver
        .start_with(spec(&fx, RuntimeClass::Sandboxed, true), with_fake_agent())
        .await
        .expect("start under runsc with network");
    let client = AgentClient::at(instance.endpoint.clone());
    let result = sh(&client, &fetch_from_host(port)).await;
    assert_eq!(result["stdout"], "hello gVisor", "{result}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}
