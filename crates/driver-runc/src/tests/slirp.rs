//! Instances whose network helper is slirp4netns (the default, `--network-helper
//! slirp4netns`): outbound addresses reachable over IPv4 and (where the host has an IPv6
//! default route) IPv6, the host's loopback (`127.0.0.1` and `::1`) only when allowed, the
//! helper sandboxed, gone with its instance, found and killed after a crash, and a helper that
//! fails leaves nothing.

use std::net::Ipv6Addr;

use super::containers::{
    fetch, fetch_from_host, http_server, loopback_server, sh, start_fake, OutsideAddress,
};
use super::fixtures::{fixture_configured, reopen_with, spec, with_fake_agent, Fixture};
use crate::leftovers;
use crate::slirp::{GATEWAY6, GUEST_ADDRESS6};
use faasbox_driver::{Driver, DriverError, NetworkHelper, RuntimeClass};
use faasbox_test_registry::OutsideAddress6;

/// A fixture whose driver connects namespaces with slirp4netns (chosen explicitly, though it is
/// the default); `None` (after [`faasbox_test_registry::cannot_run`]) where containers or
/// slirp4netns are not available.
fn slirp_fixture(host_loopback: bool) -> Option<Fixture> {
    if !crate::command_available("slirp4netns") {
        faasbox_test_registry::cannot_run(
            "slirp4netns is not installed (install the package slirp4netns)",
        );
        return None;
    }
    fixture_configured(std::env::current_exe().ok()?, |config| {
        config.network_helper = NetworkHelper::Slirp4netns;
        config.allow_host_loopback = host_loopback;
    })
}

/// The shell command that fetches `http://[<ip>]:<port>/`, giving up after 5 s.
fn fetch6(ip: Ipv6Addr, port: u16) -> String {
    format!("timeout 5 wget -q -O - http://[{ip}]:{port}/")
}

/// The `Seccomp:` mode and `CapEff:` mask of process `pid`.
fn confinement(pid: &str) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    (field("Seccomp:"), field("CapEff:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_addresses_are_reachable_and_the_host_loopback_is_not() {
    let Some(fx) = slirp_fixture(false) else {
        return;
    };
    let on_loopback = loopback_server("the host's loopback").await;
    let outside = OutsideAddress::add();
    let on_outside = http_server(outside.ip, "hello from outside").await;
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, true)).await;

    let result = sh(&client, &fetch(outside.ip, on_outside)).await;
    assert_eq!(result["stdout"], "hello from outside", "{result}");
    let refused = sh(&client, &fetch_from_host(on_loopback)).await;
    assert_ne!(refused["status"], 0, "{refused}");
    assert_eq!(refused["stdout"], "", "{refused}");
    let resolv = sh(&client, "cat /etc/resolv.conf; ip -4 -o addr show eth0").await;
    let text = resolv["stdout"].as_str().unwrap();
    assert!(text.starts_with("nameserver 10.0.2.3\n"), "{text}");
    assert!(text.contains("10.0.2.100/24"), "{text}");

    // IPv6: the host's ::1 is out of reach through slirp's gateway and DNS addresses, for a
    // server on ::1 and for one on every address; outside addresses are reachable.
    let view = sh(&client, "ip -6 -o addr show scope global; ip -6 route").await;
    let view = view["stdout"].as_str().unwrap().to_string();
    let ipv6 = crate::slirp::host_has_ipv6();
    eprintln!("host IPv6 default route: {ipv6}; the instance's IPv6:\n{view}");
    if ipv6 {
        assert!(view.contains(&format!("{GUEST_ADDRESS6}/64")), "{view}");
        assert!(view.contains(&format!("default via {GATEWAY6}")), "{view}");
        let outside6 = OutsideAddress6::add();
        let on_outside6 = http_server(outside6.ip, "hello over IPv6").await;
        let mut result = sh(&client, &fetch6(outside6.ip, on_outside6)).await;
        if result["stdout"] != "hello over IPv6" {
            // Seen in about 1 run of 15 on a loaded machine (not reproduced with slirp4netns
            // started by hand): the first IPv6 connection hangs, the next one right after
            // works. Said here so that it stays visible; see the README (network helpers).
            eprintln!(
                "NOTE: the first IPv6 connection through slirp4netns failed ({result}); once more"
            );
            result = sh(&client, &fetch6(outside6.ip, on_outside6)).await;
        }
        assert_eq!(result["stdout"], "hello over IPv6", "{result}");
        let on_loopback6 = http_server(Ipv6Addr::LOCALHOST, "the host's ::1").await;
        let on_any6 = http_server(Ipv6Addr::UNSPECIFIED, "the host's every address").await;
        for port in [on_loopback6, on_any6] {
            for via in [GATEWAY6, "fd00::3".parse().unwrap()] {
                let refused = sh(&client, &fetch6(via, port)).await;
                assert_ne!(refused["status"], 0, "[{via}]:{port}: {refused}");
                assert_eq!(refused["stdout"], "", "[{via}]:{port}: {refused}");
            }
        }
        // The namespace's own ::1 is its own.
        let own = sh(&client, &fetch6(Ipv6Addr::LOCALHOST, on_loopback6)).await;
        assert_eq!(own["stdout"], "", "{own}");
    } else {
        // No IPv6 on the host: none in the instance either (as with pasta).
        assert!(!view.contains("inet6"), "{view}");
        assert!(!view.contains("default"), "{view}");
    }

    // The helper runs under seccomp, without capabilities beyond binding ports, and is the
    // instance's: the driver lists it with the namespace while the instance lives.
    let traces = fx.driver.traces(&instance.id).await;
    assert!(traces.iter().any(|t| t.starts_with("netns")), "{traces:?}");
    let helper = traces
        .iter()
        .find_map(|t| t.strip_prefix("slirp4netns process "))
        .unwrap_or_else(|| panic!("no slirp4netns among {traces:?}"))
        .to_string();
    let (seccomp, caps) = confinement(&helper);
    assert_eq!(
        seccomp, "2",
        "slirp4netns {helper} is not under a seccomp filter"
    );
    let caps = u64::from_str_radix(&caps, 16).expect("CapEff");
    assert_eq!(
        caps & (1 << 21),
        0,
        "slirp4netns keeps CAP_SYS_ADMIN: {caps:x}"
    );

    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
    assert!(
        !std::path::Path::new(&format!("/proc/{helper}")).exists()
            || !std::fs::read_to_string(format!("/proc/{helper}/cmdline"))
                .unwrap_or_default()
                .contains("slirp4netns"),
        "slirp4netns {helper} outlived its instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_loopback_is_reachable_when_allowed() {
    let Some(fx) = slirp_fixture(true) else {
        return;
    };
    let port = loopback_server("hello from the host").await;
    let port6 = http_server(Ipv6Addr::LOCALHOST, "hello from the host's ::1").await;
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, true)).await;
    let result = sh(&client, &fetch_from_host(port)).await;
    assert_eq!(result["stdout"], "hello from the host", "{result}");
    if crate::slirp::host_has_ipv6() {
        let result = sh(&client, &fetch6(GATEWAY6, port6)).await;
        assert_eq!(result["stdout"], "hello from the host's ::1", "{result}");
    }
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_servers_helpers_are_found_and_killed() {
    let Some(mut fx) = slirp_fixture(false) else {
        return;
    };
    let instance = fx.start_sleeping(RuntimeClass::Standard, true).await;
    assert!(fx
        .driver
        .traces(&instance.id)
        .await
        .iter()
        .any(|t| t.starts_with("slirp4netns process")));
    // The server "crashes"; the next one starts with the other helper (pasta) and still
    // recognises the slirp4netns it left.
    let restarted = reopen_with(
        &fx,
        std::time::Duration::from_secs(30),
        NetworkHelper::Pasta,
    );
    drop(std::mem::replace(&mut fx.driver, restarted));
    let report = fx.driver.cleanup_leftovers().await.expect("cleanup");
    assert_eq!(report.count(leftovers::NETNS), 1, "{report:?}");
    assert_eq!(report.count(leftovers::PROCESSES), 1, "{report:?}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_that_fails_leaves_nothing_behind_and_says_why() {
    let Some(fx) = slirp_fixture(false) else {
        return;
    };
    let mut config = super::fixtures::driver_config(&fx.state_dir, &fx.agent);
    config.network_helper = NetworkHelper::Slirp4netns;
    config.slirp4netns_path = "/bin/false".into();
    let broken = crate::RuncDriver::new(config, fx.images.clone()).unwrap();
    let err = broken
        .start_with(spec(&fx, RuntimeClass::Standard, true), with_fake_agent())
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Network(_)), "{err}");
    assert!(
        err.to_string()
            .contains("slirp4netns exited before configuring the network"),
        "{err}"
    );
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());

    // A helper that is not installed is named with the package that has it.
    let mut config = super::fixtures::driver_config(&fx.state_dir, &fx.agent);
    config.network_helper = NetworkHelper::Slirp4netns;
    config.slirp4netns_path = "no-such-slirp4netns".into();
    let missing = crate::RuncDriver::new(config, fx.images.clone()).unwrap();
    let err = missing
        .start_with(spec(&fx, RuntimeClass::Standard, true), with_fake_agent())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("apt-get install slirp4netns"),
        "{err}"
    );
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gvisor_instances_use_the_namespace_slirp4netns_configured() {
    let Some(fx) = slirp_fixture(false) else {
        return;
    };
    if !super::fixtures::runsc_available() {
        return;
    }
    let on_loopback = loopback_server("the host's loopback").await;
    let outside = OutsideAddress::add();
    let on_outside = http_server(outside.ip, "hello gVisor, from outside").await;
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Sandboxed, true)).await;
    let result = sh(&client, &fetch(outside.ip, on_outside)).await;
    assert_eq!(result["stdout"], "hello gVisor, from outside", "{result}");
    let refused = sh(&client, &fetch_from_host(on_loopback)).await;
    assert_eq!(refused["stdout"], "", "{refused}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}
