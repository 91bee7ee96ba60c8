//! The standard class run by crun (`oci_runtime` crun) whatever `FAASBOX_TEST_OCI_RUNTIME`
//! says: start, call and stop with the container's confinement (seccomp, no new privileges,
//! the user namespace), the agent's log out of the container's reach from its first process,
//! cgroup limits, a stem cell claimed through crun's exec fifo, leftovers of a
//! crun server removed by a runc one (a server restarted with the other `--oci-runtime`), and
//! a missing crun explained. The whole suite runs with crun under
//! `FAASBOX_TEST_OCI_RUNTIME=crun`.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::containers::{sh, start_fake};
use super::fixtures::{fixture_configured, reopen, running, spec, Fixture, TestImages};
use super::stem::{echo, echo_spec, wait_for_stems};
use crate::{leftovers, DriverConfig, RuncDriver};
use faasbox_driver::{Driver, DriverError, Limits, OciRuntime, RuntimeClass};

/// A crun fixture configured by `configure`, `None` (skipped, or failed under `CI`) without
/// crun.
fn crun_fixture_with(
    agent: std::path::PathBuf,
    configure: impl FnOnce(&mut DriverConfig),
) -> Option<Fixture> {
    if !crate::command_available("crun") {
        faasbox_test_registry::cannot_run("crun is missing (install the package crun)");
        return None;
    }
    fixture_configured(agent, |config| {
        config.oci_runtime = OciRuntime::Crun;
        configure(config);
    })
}

fn crun_fixture() -> Option<Fixture> {
    crun_fixture_with(std::env::current_exe().ok()?, |_| {})
}

/// The agent's log belongs to host root, not to the container user crun handed it to.
fn assert_log_is_roots(fx: &Fixture, id: &str) {
    let log = fx.driver.instance_path(id, "agent.log");
    let meta = std::fs::metadata(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", log.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_starts_calls_and_stops_a_confined_container() {
    let Some(fx) = crun_fixture() else { return };
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, false)).await;
    // crun's state, not runc's.
    let crun_state = fx.state_dir.join("crun").join(&instance.id).join("status");
    assert!(crun_state.exists(), "{}", crun_state.display());
    assert!(!fx.state_dir.join("runc").join(&instance.id).exists());
    assert!(fx
        .driver
        .traces(&instance.id)
        .await
        .contains(&"runc container (running)".to_string()));

    let status = sh(
        &client,
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; cat /proc/self/uid_map; hostname",
    )
    .await;
    let out = status["stdout"].as_str().unwrap();
    assert!(out.contains("Seccomp:\t2"), "{status}");
    assert!(out.contains("NoNewPrivs:\t1"), "{status}");
    if let Some(map) = fx.driver.id_map() {
        let mapped: Vec<&str> = out
            .lines()
            .find(|l| l.trim_start().starts_with('0'))
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            mapped,
            ["0", &map.host_base.to_string(), &map.size.to_string()],
            "{status}"
        );
    }
    let short = instance.id.rsplit('-').next().unwrap();
    assert!(out.trim_end().ends_with(short), "{status}");
    let unshare = sh(&client, "unshare -U true 2>&1; echo rc=$?").await;
    assert!(
        !unshare["stdout"].as_str().unwrap().contains("rc=0"),
        "{unshare}"
    );
    // Container root cannot reopen the agent's log.
    assert_log_is_roots(&fx, &instance.id);
    let log = sh(&client, "sh -c 'echo x > /proc/1/fd/1' 2>&1; echo done").await;
    assert!(
        log["stdout"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{log}"
    );

    assert!(!fx.driver.oom_killed(&instance.id).await);
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
    assert!(client.ready().await.unwrap_err().is_connect());
}

/// The log is taken back before anything of the container runs: the container's first
/// process (here the entrypoint itself, at once) cannot reopen it through `/proc/1/fd/1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crun_containers_first_process_cannot_reopen_the_log() {
    let Some(fx) = crun_fixture() else { return };
    let instance = fx
        .driver
        .start_with(
            spec(&fx, RuntimeClass::Standard, false),
            running(&[
                "/bin/sh",
                "-c",
                "if echo REOPENED >> /proc/1/fd/1; then echo verdict=reopened; \
                 else echo verdict=denied; fi; sleep 1000",
            ]),
        )
        .await
        .expect("start");
    let log = fx.driver.instance_path(&instance.id, "agent.log");
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("verdict=") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(text.contains("verdict=denied"), "{text}");
    assert!(!text.contains("REOPENED"), "{text}");
    assert_log_is_roots(&fx, &instance.id);
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_applies_the_limits() {
    let Some(fx) = crun_fixture() else { return };
    let mut spec = spec(&fx, RuntimeClass::Standard, false);
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
    let read = |controller: &str, v2: &str, v1: &str| {
        let (dir, unified) = fx
            .driver
            .cgroup_dir(controller, &instance.id)
            .unwrap_or_else(|| panic!("no cgroup hierarchy has {controller}"));
        let file = dir.join(if unified { v2 } else { v1 });
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_string()
    };
    // The memory plus the fixture's 64 MiB disk.
    assert_eq!(
        read("memory", "memory.max", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(read("pids", "pids.max", "pids.max"), "42");
    let cpu = read("cpu", "cpu.max", "cpu.cfs_quota_us");
    assert!(cpu == "25000 100000" || cpu == "25000", "{cpu}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crun_stem_cell_is_claimed_through_its_exec_fifo() {
    let Some(agent) = faasbox_test_registry::agent_binary() else {
        faasbox_test_registry::cannot_run(
            "the agent binary is not built (run `cargo build -p faasbox-agent`)",
        );
        return;
    };
    let Some(fx) = crun_fixture_with(agent, |config| {
        config.spare_containers = 1;
        config.spare_containers_total = 4;
        config.spare_container_idle = Duration::from_secs(60);
    }) else {
        return;
    };
    let first = fx.driver.start(echo_spec(&fx)).await.expect("first start");
    let stems = wait_for_stems(&fx.driver, 1).await;
    assert_eq!(stems.len(), 1, "{stems:?}");
    // crun's init waits reading this; the claim writes to it (as `crun start` would) rather
    // than executing crun, and removes it.
    let fifo = fx.state_dir.join("crun").join(&stems[0]).join("exec.fifo");
    assert!(fifo.exists(), "{} is there", fifo.display());
    let second = fx.driver.start(echo_spec(&fx)).await.expect("second start");
    assert_eq!(second.id, stems[0], "the stem cell is taken");
    assert!(!fifo.exists(), "{} is removed", fifo.display());
    echo(&fx, second.endpoint.clone(), &second.id).await;
    // Taken back after `crun create`, and not handed out again by `crun start`.
    assert_log_is_roots(&fx, &second.id);
    assert!(fx
        .driver
        .traces(&second.id)
        .await
        .contains(&"runc container (running)".to_string()));
    fx.driver.stop(&first.id).await.unwrap();
    fx.driver.stop(&second.id).await.unwrap();
    fx.driver.stop_all().await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runc_server_removes_what_a_crun_server_left() {
    let Some(mut fx) = crun_fixture() else { return };
    let instance = fx.start_sleeping(RuntimeClass::Standard, false).await;
    // The server "crashes" and comes back with runc.
    fx.oci_runtime = OciRuntime::Runc;
    let restarted = reopen(&fx, Duration::from_secs(30));
    let crashed = std::mem::replace(&mut fx.driver, restarted);
    assert!(!crashed.traces(&instance.id).await.is_empty());
    let report = fx.driver.cleanup_leftovers().await.expect("cleanup");
    assert_eq!(report.count(leftovers::CONTAINERS), 1, "{report:?}");
    assert_eq!(report.count(leftovers::MOUNTS), 1, "{report:?}");
    // What the crun driver sees: nothing left, its container included.
    assert_eq!(crashed.all_traces().await, Vec::<String>::new());
    assert!(fx.driver.cleanup_leftovers().await.unwrap().is_empty());
}

#[test]
fn a_missing_crun_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = DriverConfig::new(tmp.path().join("run"), "/bin/true");
    config.oci_runtime = OciRuntime::Crun;
    config.crun_path = "/nonexistent/crun".into();
    let Err(err) = RuncDriver::new(config, std::sync::Arc::new(TestImages::default())) else {
        panic!("a driver without crun");
    };
    assert!(
        matches!(err, DriverError::ToolMissing { tool: "crun", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("apt-get install crun"), "{err}");
}
