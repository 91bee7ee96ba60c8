//! The runc driver with real containers: start/ready/invoke through the fake agent, outbound
//! network (and the host's loopback out of reach), cgroup limits, OOM detection, failed starts,
//! and cleanup after a crash. The boxing-in (disk, seccomp, user namespace, OOM order) is in
//! `isolation.rs`.

use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::InvokeStatus;

pub(crate) use faasbox_test_registry::OutsideAddress;

use super::fake_agent;
use super::fixtures::{
    fixture, network_available, pasta_available, pasta_fixture, reopen, running, spec,
    state_tmpfs_mounted, with_fake_agent, Fixture,
};
use crate::leftovers;
use faasbox_driver::{
    AgentClient, Driver, DriverError, Instance, InstanceSpec, Limits, RuntimeClass,
};

const DEADLINE: &str = "2099-01-01T00:00:00Z";

/// A one-response-per-connection HTTP server on the host's loopback. Returns its port.
pub(crate) async fn loopback_server(body: &'static str) -> u16 {
    http_server(std::net::Ipv4Addr::LOCALHOST, body).await
}

/// A one-response-per-connection HTTP server on `ip` (IPv4 or IPv6). Returns its port.
pub(crate) async fn http_server(ip: impl Into<std::net::IpAddr>, body: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((ip.into(), 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

/// Starts `spec` with the fake agent and waits for it; returns the instance and its client.
pub(crate) async fn start_fake(fx: &Fixture, spec: InstanceSpec) -> (Instance, AgentClient) {
    let instance = fx
        .driver
        .start_with(spec, with_fake_agent())
        .await
        .expect("start");
    let client = AgentClient::at(instance.endpoint.clone());
    (instance, client)
}

/// Runs a shell command in the instance through the fake agent; returns its JSON result.
pub(crate) async fn sh(client: &AgentClient, command: &str) -> serde_json::Value {
    let input = serde_json::json!({ "sh": command }).to_string();
    let outcome = client
        .invoke("sh-call", DEADLINE, Bytes::from(input))
        .await
        .expect("invoke");
    assert_eq!(outcome.status, InvokeStatus::Ok);
    serde_json::from_str(outcome.output.expect("output").get()).expect("json output")
}

/// The shell command that fetches `http://<default gateway>:<port>/` (the host's loopback
/// when the driver allows it), giving up after 5 s.
/// (Not `wget -T`: Debian 12's static busybox segfaults with it on a refused connection.)
pub(crate) fn fetch_from_host(port: u16) -> String {
    format!(
        "gw=$(ip -4 route | awk '/^default/ {{print $3}}' | head -n 1); \
         timeout 5 wget -q -O - http://$gw:{port}/"
    )
}

/// The shell command that fetches `http://<ip>:<port>/`, giving up after 5 s.
pub(crate) fn fetch(ip: std::net::Ipv4Addr, port: u16) -> String {
    format!("timeout 5 wget -q -O - http://{ip}:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_ready_invoke_and_stop() {
    let Some(fx) = fixture() else { return };
    let instance = fx
        .driver
        .start_with(spec(&fx, RuntimeClass::Standard, false), with_fake_agent())
        .await
        .expect("start");
    assert!(instance.id.starts_with(fx.driver.prefix()));
    assert_eq!(instance.runtime, RuntimeClass::Standard);
    let client = AgentClient::at(instance.endpoint.clone());
    assert!(client.ready().await.unwrap().ready);

    let outcome = client
        .invoke(
            "action-1",
            DEADLINE,
            Bytes::from_static(br#"{"a": [1, 2]}"#),
        )
        .await
        .unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(outcome.output.unwrap().get(), r#"{"a": [1, 2]}"#);
    assert!(outcome.logs[0].line.contains("aid=action-1"));
    assert!(outcome.logs[0].line.contains(DEADLINE));
    client.cancel("action 1/ü").await.unwrap();

    // The container's view: hostname, hosts file, the agent mounted twice, no network.
    let view = sh(
        &client,
        "hostname; cat /etc/hosts | tail -n1; test -x /usr/share/direktiv/direktiv-cmd && echo cmd; \
         cat /proc/self/status | grep CapBnd; ip -o link | wc -l",
    )
    .await;
    let stdout = view["stdout"].as_str().unwrap();
    let short = instance.id.rsplit('-').next().unwrap();
    assert!(stdout.starts_with(short), "{stdout}");
    assert!(stdout.contains("cmd\n"), "{stdout}");
    // CHOWN..SETPCAP, KILL, NET_BIND_SERVICE, SYS_CHROOT: no CAP_SYS_ADMIN (bit 21).
    let bounding = stdout
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .unwrap();
    assert_eq!(bounding & (1 << 21), 0, "{stdout}");
    assert_ne!(bounding & (1 << 6), 0, "CAP_SETGID missing: {stdout}");
    assert!(stdout.trim_end().ends_with('1'), "only loopback: {stdout}");

    assert!(!fx.driver.oom_killed(&instance.id).await);
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
    // Idempotent.
    fx.driver.stop(&instance.id).await.unwrap();
    assert!(client.ready().await.unwrap_err().is_connect());
    assert!(matches!(
        fx.driver.stop("../../etc").await,
        Err(DriverError::InvalidId(_))
    ));
}

/// What a container mounts stays in its own mount namespace: in the driver's, the only mounts
/// of an instance are its root filesystem and disk under the state directory and its network
/// namespace's file, and none shows a part of the instance's cgroup. (crun bound /sys for a
/// container with network as a peer of the host's, so the cgroup mount on top of it appeared
/// in the host's namespace and kept the cgroup from being removed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containers_mounts_stay_in_its_own_namespace() {
    let Some(fx) = fixture() else { return };
    let network = network_available();
    let instance = fx.start_sleeping(RuntimeClass::Standard, network).await;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut own = 0;
    for line in mountinfo.lines().filter(|l| l.contains(&instance.id)) {
        let fields: Vec<&str> = line.split(' ').collect();
        let (root, mount_point) = (fields[3], fields[4]);
        assert!(
            !root.contains(&instance.id),
            "a part of the instance is mounted in the driver's namespace: {line}"
        );
        assert!(
            std::path::Path::new(mount_point).starts_with(&fx.state_dir)
                || mount_point.starts_with("/run/netns/"),
            "an instance's mount outside its state: {line}"
        );
        own += 1;
    }
    assert!(own >= 1, "the root filesystem is mounted: {mountinfo}");
    fx.driver.stop(&instance.id).await.expect("stop");
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

/// pasta (chosen explicitly; slirp4netns, the default, is tested in `slirp.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasta_reaches_outside_addresses_but_not_host_loopback() {
    let Some(fx) = pasta_fixture(false) else {
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
    // Ports below 1024 are for everyone in the namespace (as in Docker), container root of the
    // user namespace included.
    let low = sh(
        &client,
        "httpd -p 127.0.0.1:80 -h / 2>&1 && echo bound; killall httpd",
    )
    .await;
    assert!(low["stdout"].as_str().unwrap().contains("bound"), "{low}");
    assert_eq!(refused["stdout"], "", "{refused}");
    // Nor through the address of the loopback itself (that is the namespace's own).
    let own = sh(&client, &fetch(std::net::Ipv4Addr::LOCALHOST, on_loopback)).await;
    assert_eq!(own["stdout"], "", "{own}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_loopback_is_reachable_through_pasta_when_allowed() {
    let Some(fx) = pasta_fixture(true) else {
        return;
    };
    let port = loopback_server("hello from the host").await;
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, true)).await;
    let result = sh(&client, &fetch_from_host(port)).await;
    assert_eq!(result["stdout"], "hello from the host", "{result}");
    let resolv = sh(&client, "cat /etc/resolv.conf").await;
    assert!(resolv["stdout"]
        .as_str()
        .unwrap()
        .starts_with("nameserver 169.254.0.53"));
    let traces = fx.driver.traces(&instance.id).await;
    assert!(traces.iter().any(|t| t.starts_with("netns")), "{traces:?}");
    assert!(traces.iter().any(|t| t.starts_with("pasta")), "{traces:?}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_applied_to_cgroups() {
    let Some(fx) = fixture() else { return };
    limits_apply(&fx).await;
}

/// A container started with limits of memory, CPU and processes gets them in its cgroups
/// (swap off), runs without an OOM kill recorded, and stops leaving no trace; on whichever OCI
/// runtime `fx` runs (the other runtimes' tests call it too).
pub(super) async fn limits_apply(fx: &Fixture) {
    let mut spec = spec(fx, RuntimeClass::Standard, false);
    spec.limits = Limits {
        memory_bytes: 64 << 20,
        cpu_millis: 250,
        pids: 42,
    };
    let instance = fx
        .driver
        .start_with(spec, running(&["/bin/sleep", "1000"]))
        .await
        .expect("start");
    let dir = |controller: &str| {
        fx.driver
            .cgroup_dir(controller, &instance.id)
            .unwrap_or_else(|| panic!("no cgroup hierarchy has {controller}"))
    };
    let read = |controller: &str, file: &str| {
        let (dir, _) = dir(controller);
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
            .trim()
            .to_string()
    };
    // The memory plus the disk (64 MiB in the fixture), whose tmpfs pages count here.
    let limit = (128u64 << 20).to_string();
    let (memory_dir, unified) = dir("memory");
    if unified {
        // cgroup v2: one directory; swap on top of memory is its own limit.
        assert_eq!(read("memory", "memory.max"), limit);
        assert_eq!(read("cpu", "cpu.max"), "25000 100000");
        if memory_dir.join("memory.swap.max").exists() {
            assert_eq!(read("memory", "memory.swap.max"), "0");
        }
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), limit);
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "25000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        // v1 limits memory+swap together: equal to memory means no swap.
        if memory_dir.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(read("memory", "memory.memsw.limit_in_bytes"), limit);
        }
    }
    assert_eq!(read("pids", "pids.max"), "42");
    assert!(!fx.driver.oom_killed(&instance.id).await);
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kill_is_detected() {
    let Some(fx) = fixture() else { return };
    let mut spec = spec(&fx, RuntimeClass::Standard, false);
    spec.limits.memory_bytes = 16 << 20;
    // The cgroup's limit is memory + disk: 20 MiB.
    spec.disk_bytes = 4 << 20;
    // dd's 64 MiB buffer is filled from /dev/zero: the OOM killer kills dd; sh lives on.
    let instance = fx
        .driver
        .start_with(
            spec,
            running(&[
                "/bin/sh",
                "-c",
                "dd if=/dev/zero of=/dev/null bs=64M count=4; sleep 1000",
            ]),
        )
        .await
        .expect("start");
    let mut killed = false;
    for _ in 0..100 {
        if fx.driver.oom_killed(&instance.id).await {
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(killed, "no OOM kill recorded");
    fx.driver.stop(&instance.id).await.unwrap();
    assert!(!fx.driver.oom_killed(&instance.id).await);
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_starts_leave_nothing_behind() {
    let Some(fx) = fixture() else { return };

    // The agent exits at once.
    let mut options = with_fake_agent();
    options.args = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo agent dies >&2; exit 3".into(),
    ]);
    let err = fx
        .driver
        .start_with(spec(&fx, RuntimeClass::Standard, false), options)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DriverError::NotReady { .. }), "{text}");
    assert!(text.contains("exited"), "{text}");
    assert!(text.contains("agent dies"), "{text}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());

    // The agent reports that the function failed to start.
    let mut failing = spec(&fx, RuntimeClass::Standard, true);
    failing
        .env
        .push(fake_agent::fail_ready_env("port 8080 never opened"));
    let err = fx
        .driver
        .start_with(failing, with_fake_agent())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("test/echo"), "{text}");
    assert!(text.contains("port 8080 never opened"), "{text}");
    assert!(text.contains("fake function: cannot start"), "{text}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());

    // The agent never answers: the start timeout.
    let quick = reopen(&fx, Duration::from_millis(1500));
    let mut options = with_fake_agent();
    options.args = Some(vec!["/bin/sleep".into(), "1000".into()]);
    let err = quick
        .start_with(spec(&fx, RuntimeClass::Standard, true), options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("within 1.5s"), "{err}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());

    // pasta, when chosen, fails: the namespace it was meant for goes again (slirp4netns that
    // fails: `slirp.rs`).
    let mut config = super::fixtures::driver_config(&fx.state_dir, &fx.agent);
    config.network_helper = faasbox_driver::NetworkHelper::Pasta;
    config.pasta_path = "/bin/false".into();
    let broken_pasta = crate::RuncDriver::new(config, fx.images.clone()).unwrap();
    let err = broken_pasta
        .start_with(spec(&fx, RuntimeClass::Standard, true), with_fake_agent())
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Network(_)), "{err}");
    assert!(err.to_string().contains("pasta failed to start"), "{err}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
    // pasta chosen but not installed: the error names its package and the default helper.
    let mut config = super::fixtures::driver_config(&fx.state_dir, &fx.agent);
    config.network_helper = faasbox_driver::NetworkHelper::Pasta;
    config.pasta_path = "no-such-pasta".into();
    let missing = crate::RuncDriver::new(config, fx.images.clone()).unwrap();
    let err = missing
        .start_with(spec(&fx, RuntimeClass::Standard, true), with_fake_agent())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("apt-get install passt"), "{text}");
    assert!(text.contains("slirp4netns"), "{text}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());

    // A missing image layer.
    let mut broken = spec(&fx, RuntimeClass::Standard, false);
    broken.image = fx.images.add(
        "broken",
        vec![fx.layer.clone(), fx.layer.join("no-such-layer")],
    );
    let err = fx
        .driver
        .start_with(broken, with_fake_agent())
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Mount { .. }), "{err}");
    assert!(err.to_string().contains("no-such-layer"), "{err}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());

    // A command that does not exist in the image: runc itself fails.
    let err = fx
        .driver
        .start_with(
            spec(&fx, RuntimeClass::Standard, false),
            running(&["/no/such/binary"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Runtime { .. }), "{err}");
    // runc says "no such file", crun "No such file", libcontainer "not found".
    let message = err.to_string().to_lowercase();
    assert!(
        message.contains("no such file")
            || message.contains("/no/such/binary\" not found")
            || message.contains("not found in path executable=\"/no/such/binary\""),
        "{err}"
    );
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_start_is_torn_down() {
    let Some(fx) = fixture() else { return };
    let start = fx
        .driver
        .start_with(spec(&fx, RuntimeClass::Standard, false), {
            let mut o = with_fake_agent();
            o.args = Some(vec!["/bin/sleep".into(), "1000".into()]);
            o
        });
    // Dropped while waiting for readiness.
    assert!(tokio::time::timeout(Duration::from_millis(800), start)
        .await
        .is_err());
    for _ in 0..100 {
        if fx.driver.all_traces().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_crashed_server_are_removed() {
    let Some(mut fx) = fixture() else { return };
    let network = network_available();
    let first = fx.start_sleeping(RuntimeClass::Standard, network).await;
    let second = fx.start_sleeping(RuntimeClass::Standard, false).await;
    let sandboxed = super::fixtures::runsc_available();
    if sandboxed {
        fx.driver
            .start_with(
                spec(&fx, RuntimeClass::Sandboxed, network),
                running(&["/bin/sleep", "1000"]),
            )
            .await
            .expect("start under runsc");
    }
    let (containers, with_network) = (2 + usize::from(sandboxed), 1 + usize::from(sandboxed));
    // The server "crashes": the driver goes away without stopping anything.
    let restarted = reopen(&fx, Duration::from_secs(30));
    drop(std::mem::replace(&mut fx.driver, restarted));
    let driver = &fx.driver;
    assert!(!driver.traces(&first.id).await.is_empty());

    let report = driver.cleanup_leftovers().await.expect("cleanup");
    assert_eq!(
        report.count(leftovers::CONTAINERS),
        containers,
        "{report:?}"
    );
    assert_eq!(report.count(leftovers::MOUNTS), containers, "{report:?}");
    assert_eq!(report.count(leftovers::CGROUPS), containers, "{report:?}");
    let networked = if network { with_network } else { 0 };
    assert_eq!(report.count(leftovers::NETNS), networked, "{report:?}");
    assert_eq!(report.count(leftovers::PROCESSES), networked, "{report:?}");
    assert_eq!(driver.all_traces().await, Vec::<String>::new());
    assert!(driver.cleanup_leftovers().await.unwrap().is_empty());
    let _ = second;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_stops_everything() {
    let Some(fx) = fixture() else { return };
    for _ in 0..3 {
        fx.start_sleeping(RuntimeClass::Standard, false).await;
    }
    fx.driver.stop_all().await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

/// The state directory is a tmpfs while the driver runs: an instance's files are written
/// there, not to the disk. A clean stop unmounts it, leaving the empty directories on disk; a
/// driver finding state of an earlier run on disk leaves it there for that run, and the next
/// driver, after that one's cleanup, mounts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_directory_is_a_tmpfs_while_the_driver_runs() {
    let Some(fx) = fixture() else { return };
    assert!(state_tmpfs_mounted(&fx.state_dir));
    let instance = fx.start_sleeping(RuntimeClass::Standard, false).await;
    let config = fx
        .state_dir
        .join("instances")
        .join(&instance.id)
        .join("bundle/config.json");
    let fs = nix::sys::statfs::statfs(&config).expect("statfs of the spec");
    assert_eq!(fs.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);

    fx.driver.stop_all().await.unwrap();
    assert!(!state_tmpfs_mounted(&fx.state_dir));
    assert!(fx.state_dir.join("instances").is_dir());
    assert_eq!(
        std::fs::read_dir(fx.state_dir.join("instances"))
            .unwrap()
            .count(),
        0
    );

    // State of an earlier run on the disk (a directory of an instance that did not stop).
    let left = fx
        .state_dir
        .join("instances")
        .join(format!("{}-000000000000", fx.driver.prefix()));
    std::fs::create_dir_all(&left).unwrap();
    let driver = reopen(&fx, Duration::from_secs(30));
    assert!(!state_tmpfs_mounted(&fx.state_dir));
    driver.cleanup_leftovers().await.unwrap();
    assert!(!left.exists());
    drop(driver);
    let driver = reopen(&fx, Duration::from_secs(30));
    assert!(state_tmpfs_mounted(&fx.state_dir));
    driver.stop_all().await.unwrap();
    assert!(!state_tmpfs_mounted(&fx.state_dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_agent_binary_is_explained() {
    let Some(fx) = super::fixtures::fixture_with_agent("/nonexistent/faasbox-agent".into()) else {
        return;
    };
    let err = fx
        .driver
        .start(spec(&fx, RuntimeClass::Standard, false))
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::AgentMissing(_)));
    assert!(err.to_string().contains("cargo build -p faasbox-agent"));
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

/// An image the layer source does not have, and a runtime class the driver is configured
/// without, fail the start with what to do, and leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_or_class_the_driver_cannot_provide_is_explained() {
    let Some(fx) = fixture() else { return };
    let mut unknown = spec(&fx, RuntimeClass::Standard, false);
    unknown.image.digest = format!("sha256:{}", "e".repeat(64));
    let err = fx
        .driver
        .start_with(unknown, with_fake_agent())
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Image { .. }), "{err}");
    assert!(
        err.to_string().contains("not one of the test images"),
        "{err}"
    );
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());

    let mut config = super::fixtures::driver_config(&fx.state_dir, &fx.agent);
    config.runsc_path = None;
    let without_gvisor = crate::RuncDriver::new(config, fx.images.clone()).unwrap();
    let err = without_gvisor
        .start_with(spec(&fx, RuntimeClass::Sandboxed, false), with_fake_agent())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::UnsupportedClass { class, .. } if class == "runsc"),
        "{err}"
    );
    assert!(err.to_string().contains("set the runsc path"), "{err}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

/// Container root of a user namespace runs the agent as "others": a binary only host root may
/// run is refused with the fix, before anything is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_only_root_may_run_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("faasbox-agent");
    std::fs::write(&agent, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o700)).unwrap();
    let Some(fx) = super::fixtures::fixture_with_agent(agent) else {
        return;
    };
    if fx.driver.id_map().is_none() {
        faasbox_test_registry::cannot_run("no user namespace here");
        return;
    }
    let err = fx
        .driver
        .start(spec(&fx, RuntimeClass::Standard, false))
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::AgentNotExecutable(_)), "{err}");
    assert!(err.to_string().contains("chmod 0755"), "{err}");
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

/// Prints how long starts take here (not an assertion: machines differ): the median of
/// `FAASBOX_LATENCY_N` starts (default 3) per variant, runc with and without its user
/// namespace included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_latency_report() {
    let Some(fx) = fixture() else { return };
    let Some(plain) =
        super::fixtures::fixture_configured(fx.agent.clone(), |config| config.id_map = None)
    else {
        return;
    };
    let n: usize = std::env::var("FAASBOX_LATENCY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut variants = vec![
        ("runc", &fx, RuntimeClass::Standard, false),
        (
            "runc without user namespace",
            &plain,
            RuntimeClass::Standard,
            false,
        ),
    ];
    let with_pasta = if crate::command_available("pasta") {
        pasta_fixture(false)
    } else {
        None
    };
    if network_available() {
        variants.push(("runc slirp4netns", &fx, RuntimeClass::Standard, true));
    }
    if let Some(with_pasta) = &with_pasta {
        variants.push(("runc pasta", with_pasta, RuntimeClass::Standard, true));
    }
    if super::fixtures::runsc_available() {
        variants.push(("runsc", &fx, RuntimeClass::Sandboxed, false));
    }
    for (label, fixture, runtime, network) in variants {
        let (mut starts, mut stops) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let begin = std::time::Instant::now();
            let instance = fixture
                .driver
                .start_with(spec(fixture, runtime, network), with_fake_agent())
                .await
                .expect("start");
            starts.push(begin.elapsed());
            let begin = std::time::Instant::now();
            fixture.driver.stop(&instance.id).await.unwrap();
            stops.push(begin.elapsed());
        }
        starts.sort();
        stops.sort();
        eprintln!(
            "{label} network={network}: median start {:?}, stop {:?} ({n} runs)",
            starts[n / 2],
            stops[n / 2]
        );
    }
}

/// With spare networks, an instance with network takes a namespace (and its slirp4netns, the
/// default helper) made ahead under its id, runs in it, and `stop_all` removes instances and
/// spares alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_networks_are_taken_and_stopped_with_everything() {
    if network_available() {
        spare_networks_are_taken(faasbox_driver::NetworkHelper::Slirp4netns).await;
    }
}

/// [`spare_networks_are_taken_and_stopped_with_everything`] with pasta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_networks_with_pasta_are_taken_and_stopped_with_everything() {
    if pasta_available() {
        spare_networks_are_taken(faasbox_driver::NetworkHelper::Pasta).await;
    }
}

async fn spare_networks_are_taken(helper: faasbox_driver::NetworkHelper) {
    use std::os::unix::fs::MetadataExt;
    let Some(fx) = fixture() else { return };
    let mut config = super::fixtures::driver_config(&fx.state_dir, &fx.agent);
    config.network_helper = helper;
    config.spare_networks = 2;
    let driver = crate::RuncDriver::new(config, fx.images.clone()).unwrap();
    let sleeping = || running(&["/bin/sleep", "1000"]);
    let netns = |traces: &[String]| -> Vec<String> {
        traces
            .iter()
            .filter_map(|t| t.strip_prefix("netns ").map(str::to_string))
            .collect()
    };
    let first = driver
        .start_with(spec(&fx, RuntimeClass::Standard, true), sleeping())
        .await
        .expect("start");
    // The first start with network fills the pool in the background.
    let mut before = Vec::new();
    for _ in 0..200 {
        before = netns(&driver.all_traces().await);
        if before.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(before.len(), 3, "{before:?}");
    let second = driver
        .start_with(spec(&fx, RuntimeClass::Standard, true), sleeping())
        .await
        .expect("start");
    assert!(
        before.contains(&second.id),
        "{} not in {before:?}",
        second.id
    );
    assert_ne!(first.id, second.id);
    let traces = driver.traces(&second.id).await;
    let helper_trace = format!("{helper} process");
    assert!(
        traces.iter().any(|t| t.starts_with(&helper_trace)),
        "{traces:?}"
    );
    let pid = driver
        .container_pid(&second.id, RuntimeClass::Standard)
        .await
        .expect("running");
    let inode = |path: String| std::fs::metadata(path).unwrap().ino();
    assert_eq!(
        inode(format!("/proc/{pid}/ns/net")),
        inode(format!("/run/netns/{}", second.id))
    );
    driver.stop_all().await.unwrap();
    assert_eq!(driver.all_traces().await, Vec::<String>::new());
}
