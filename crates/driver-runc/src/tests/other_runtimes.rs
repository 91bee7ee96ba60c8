//! The standard class run by crun and by libcontainer (`faasbox-oci`), whatever
//! `FAASBOX_TEST_OCI_RUNTIME` says: start, call and stop with the container's confinement
//! (seccomp, no new privileges, the user namespace, loopback up in a container without
//! network), the agent's log out of the container's reach from its first process, cgroup
//! limits, a stem cell claimed through what the runtime's init waits on (crun's exec fifo,
//! libcontainer's notify socket), leftovers of such a server removed by a runc one (a server
//! restarted with another `--oci-runtime`), what a killed `faasbox-oci create` leaves removed
//! by a clean stop, and a missing runtime explained. The whole
//! suite runs with either under `FAASBOX_TEST_OCI_RUNTIME=crun` or `=libcontainer`.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::containers::{limits_apply, sh, start_fake};
use super::fixtures::{
    fixture_configured, reopen, running, spec, state_tmpfs_mounted, Fixture, TestImages,
};
use super::stem::{echo, echo_spec, wait_for_stems};
use crate::{leftovers, DriverConfig, RuncDriver};
use faasbox_driver::{Driver, DriverError, OciRuntime, RuntimeClass};

/// A fixture whose standard class `oci` runs, configured by `configure`; `None` (skipped, or
/// failed under `CI`) when `oci` is not there.
fn fixture_of_with(
    oci: OciRuntime,
    agent: std::path::PathBuf,
    configure: impl FnOnce(&mut DriverConfig),
) -> Option<Fixture> {
    let missing = match oci {
        OciRuntime::Crun => (!crate::command_available("crun"))
            .then_some("crun is missing (install the package crun)"),
        OciRuntime::Libcontainer => faasbox_test_registry::oci_binary()
            .is_none()
            .then_some("faasbox-oci is not built (run `cargo build -p faasbox-oci-runtime`)"),
        OciRuntime::Runc => None,
    };
    if let Some(why) = missing {
        faasbox_test_registry::cannot_run(why);
        return None;
    }
    fixture_configured(agent, |config| {
        config.oci_runtime = oci;
        configure(config);
    })
}

fn fixture_of(oci: OciRuntime) -> Option<Fixture> {
    fixture_of_with(oci, std::env::current_exe().ok()?, |_| {})
}

/// The agent's log belongs to host root (crun hands it to the container's user; the driver
/// takes it back).
fn assert_log_is_roots(fx: &Fixture, id: &str) {
    let log = fx.driver.instance_path(id, "agent.log");
    let meta = std::fs::metadata(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", log.display());
}

/// The file in the runtime's state directory that shows the container is that runtime's.
fn state_file(oci: OciRuntime) -> &'static str {
    match oci {
        OciRuntime::Crun => "status",
        _ => "state.json",
    }
}

async fn starts_calls_and_stops_a_confined_container(oci: OciRuntime) {
    let Some(fx) = fixture_of(oci) else { return };
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, false)).await;
    // This runtime's state, not runc's.
    let state = fx
        .state_dir
        .join(oci.as_str())
        .join(&instance.id)
        .join(state_file(oci));
    assert!(state.exists(), "{}", state.display());
    assert!(!fx.state_dir.join("runc").join(&instance.id).exists());
    assert!(fx
        .driver
        .traces(&instance.id)
        .await
        .contains(&"runc container (running)".to_string()));

    let status = sh(
        &client,
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; cat /proc/self/uid_map; \
         echo lo=$(cat /sys/class/net/lo/flags); hostname",
    )
    .await;
    let out = status["stdout"].as_str().unwrap();
    assert!(out.contains("Seccomp:\t2"), "{status}");
    assert!(out.contains("NoNewPrivs:\t1"), "{status}");
    // Up and loopback (0x9), as runc leaves it: the function can reach itself.
    assert!(out.contains("lo=0x9"), "{status}");
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

/// The container's first process (here the entrypoint itself, at once) cannot reopen the log
/// through `/proc/1/fd/1`: with crun it is taken back before anything of the container runs.
async fn the_first_process_cannot_reopen_the_log(oci: OciRuntime) {
    let Some(fx) = fixture_of(oci) else { return };
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

/// A stem cell's init waits on crun's exec fifo (the claim writes to it, as `crun start`
/// would, and removes it) or on libcontainer's notify socket (the claim runs `faasbox-oci
/// start`, which writes to it).
async fn a_stem_cell_is_claimed(oci: OciRuntime, waits_on: &str) {
    let Some(agent) = faasbox_test_registry::agent_binary() else {
        faasbox_test_registry::cannot_run(
            "the agent binary is not built (run `cargo build -p faasbox-agent`)",
        );
        return;
    };
    let Some(fx) = fixture_of_with(oci, agent, |config| {
        config.spare_containers = 1;
        config.spare_containers_total = 4;
        config.spare_container_idle = Duration::from_secs(60);
    }) else {
        return;
    };
    let first = fx.driver.start(echo_spec(&fx)).await.expect("first start");
    let stems = wait_for_stems(&fx.driver, 1).await;
    assert_eq!(stems.len(), 1, "{stems:?}");
    let handle = fx
        .state_dir
        .join(oci.as_str())
        .join(&stems[0])
        .join(waits_on);
    assert!(handle.exists(), "{} is there", handle.display());
    let second = fx.driver.start(echo_spec(&fx)).await.expect("second start");
    assert_eq!(second.id, stems[0], "the stem cell is taken");
    echo(&fx, second.endpoint.clone(), &second.id).await;
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

async fn a_runc_server_removes_what_it_left(oci: OciRuntime) {
    let Some(mut fx) = fixture_of(oci) else {
        return;
    };
    let instance = fx.start_sleeping(RuntimeClass::Standard, false).await;
    // The server "crashes" and comes back with runc.
    fx.oci_runtime = OciRuntime::Runc;
    let restarted = reopen(&fx, Duration::from_secs(30));
    let crashed = std::mem::replace(&mut fx.driver, restarted);
    assert!(!crashed.traces(&instance.id).await.is_empty());
    let report = fx.driver.cleanup_leftovers().await.expect("cleanup");
    assert_eq!(report.count(leftovers::CONTAINERS), 1, "{report:?}");
    assert_eq!(report.count(leftovers::MOUNTS), 1, "{report:?}");
    // What the crashed driver sees: nothing left, its container included.
    assert_eq!(crashed.all_traces().await, Vec::<String>::new());
    assert!(fx.driver.cleanup_leftovers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_starts_calls_and_stops_a_confined_container() {
    starts_calls_and_stops_a_confined_container(OciRuntime::Crun).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libcontainer_starts_calls_and_stops_a_confined_container() {
    starts_calls_and_stops_a_confined_container(OciRuntime::Libcontainer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crun_containers_first_process_cannot_reopen_the_log() {
    the_first_process_cannot_reopen_the_log(OciRuntime::Crun).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libcontainer_containers_first_process_cannot_reopen_the_log() {
    the_first_process_cannot_reopen_the_log(OciRuntime::Libcontainer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crun_applies_the_limits() {
    if let Some(fx) = fixture_of(OciRuntime::Crun) {
        limits_apply(&fx).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libcontainer_applies_the_limits() {
    if let Some(fx) = fixture_of(OciRuntime::Libcontainer) {
        limits_apply(&fx).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crun_stem_cell_is_claimed_through_its_exec_fifo() {
    a_stem_cell_is_claimed(OciRuntime::Crun, "exec.fifo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libcontainer_stem_cell_is_claimed_through_its_notify_socket() {
    a_stem_cell_is_claimed(OciRuntime::Libcontainer, "notify.sock").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runc_server_removes_what_a_crun_server_left() {
    a_runc_server_removes_what_it_left(OciRuntime::Crun).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runc_server_removes_what_a_libcontainer_server_left() {
    a_runc_server_removes_what_it_left(OciRuntime::Libcontainer).await;
}

/// What a `faasbox-oci create` killed half-way leaves in libcontainer's root (its spec copy,
/// no longer locked, and the container's directory before libcontainer wrote its state) is
/// removed by a clean stop, which then releases the state tmpfs: one killed long ago (found by
/// listing) and one just now (its instance's directory is still there, so it is deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_removes_what_killed_libcontainer_creates_left() {
    let Some(fx) = fixture_of(OciRuntime::Libcontainer) else {
        return;
    };
    let instance = fx.start_sleeping(RuntimeClass::Standard, false).await;
    let root = fx.state_dir.join("libcontainer");
    assert!(root.join(&instance.id).join("state.json").is_file());
    let long_ago = format!("{}-00000000dead", fx.driver.prefix());
    let just_now = format!("{}-00000000beef", fx.driver.prefix());
    for id in [&long_ago, &just_now] {
        let copy = root.join(format!(".bundle-{id}"));
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::write(copy.join("config.json"), "{}").unwrap();
        std::fs::create_dir_all(root.join(id)).unwrap();
    }
    std::fs::File::open(root.join(format!(".bundle-{long_ago}")))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    std::fs::create_dir_all(fx.state_dir.join("instances").join(&just_now)).unwrap();

    fx.driver.stop_all().await.unwrap();
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", root.display());
    assert!(!state_tmpfs_mounted(&fx.state_dir));
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

#[test]
fn a_missing_faasbox_oci_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    // By default it is looked for next to the agent.
    let config = DriverConfig::new(tmp.path().join("run"), "/nonexistent/bin/faasbox-agent");
    assert_eq!(
        config.libcontainer_path,
        std::path::Path::new("/nonexistent/bin/faasbox-oci")
    );
    let mut config = config;
    config.oci_runtime = OciRuntime::Libcontainer;
    let Err(err) = RuncDriver::new(config, std::sync::Arc::new(TestImages::default())) else {
        panic!("a driver without faasbox-oci");
    };
    assert!(
        matches!(
            err,
            DriverError::ToolMissing {
                tool: "faasbox-oci",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--faasbox-oci"), "{err}");
}
