//! Containers created ahead of demand ("stem cells", `spare_containers`), with the real agent
//! (`cargo build -p faasbox-agent`) and runc: a start of a function leaves one created for
//! its spec, the next start of the same spec takes it and answers calls with the function's
//! own limits and agent configuration (another function of the same image and settings
//! included); a spec that differs takes none; a stem cell whose
//! init was killed is not handed out; an unclaimed one goes after the idle period; a
//! restarted driver's cleanup and `stop_all` leave nothing behind.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::InvokeStatus;
use faasbox_test_registry::agent_binary;

use super::fixtures::{fixture_configured, reopen, spec, Fixture};
use crate::RuncDriver;
use faasbox_driver::{AgentClient, Driver, InstanceSpec, RuntimeClass};

/// A fixture with the real agent and one stem cell per spec (four in all), unclaimed ones
/// torn down after `idle`.
pub(super) fn stem_fixture(idle: Duration) -> Option<Fixture> {
    let Some(agent) = agent_binary() else {
        faasbox_test_registry::cannot_run(
            "the agent binary is not built (run `cargo build -p faasbox-agent` or set \
             FAASBOX_AGENT_BINARY)",
        );
        return None;
    };
    fixture_configured(agent, |config| {
        config.spare_containers = 1;
        config.spare_containers_total = 4;
        config.spare_container_idle = idle;
    })
}

/// The busybox httpd echo function with small limits of its own.
pub(super) fn echo_spec(fx: &Fixture) -> InstanceSpec {
    let mut spec = spec(fx, RuntimeClass::Standard, false);
    spec.env = vec![];
    spec.agent.command = ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]
        .map(str::to_string)
        .to_vec();
    spec.limits.memory_bytes = 64 << 20;
    spec.limits.pids = 42;
    spec
}

/// Waits (up to 30 s: emulated, as in the cgroup v2 VM, a `runc create` takes seconds) until
/// `driver` has `n` stem cells ready.
async fn wait_for_stem_count(driver: &RuncDriver, n: usize) {
    for _ in 0..1200 {
        if driver.spare_containers() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(driver.spare_containers(), n, "stem cells ready");
}

/// `driver`'s traces (containers, directories, mounts, cgroups) of instances other than `id`.
async fn traces_besides(driver: &RuncDriver, id: &str) -> Vec<String> {
    driver
        .all_traces()
        .await
        .into_iter()
        .filter(|t| {
            ["runc container ", "directory ", "mount ", "cgroup "]
                .iter()
                .any(|kind| t.starts_with(kind))
                && !t.contains(id)
        })
        .collect()
}

/// Waits until `driver` has `n` stem cells ready; their container ids (those in `created`
/// state).
pub(super) async fn wait_for_stems(driver: &RuncDriver, n: usize) -> Vec<String> {
    wait_for_stem_count(driver, n).await;
    let mut created = Vec::new();
    for trace in driver.all_traces().await {
        let Some(id) = trace.strip_prefix("runc container ") else {
            continue;
        };
        if driver
            .traces(id)
            .await
            .iter()
            .any(|t| t == "runc container (created)")
        {
            created.push(id.to_string());
        }
    }
    created
}

pub(super) async fn echo(fx: &Fixture, endpoint: faasbox_proto::AgentEndpoint, id: &str) {
    let client = AgentClient::at(endpoint);
    let call = client.invoke(
        "stem-1",
        "2099-01-01T00:00:00Z",
        Bytes::from_static(br#"{"hello":"stem"}"#),
    );
    let Ok(outcome) = tokio::time::timeout(Duration::from_secs(30), call).await else {
        panic!(
            "no answer to invoke within 30s; agent log:\n{}",
            std::fs::read_to_string(fx.driver.instance_path(id, "agent.log")).unwrap_or_default()
        );
    };
    let outcome = outcome.expect("invoke");
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    let output: serde_json::Value =
        serde_json::from_str(outcome.output.expect("output").get()).unwrap();
    assert_eq!(output, serde_json::json!({"hello": "stem"}));
}

/// The trimmed value of a cgroup file of instance `id`: `v2` on the unified hierarchy, `v1`
/// on a controller's own.
pub(super) fn cgroup_value(fx: &Fixture, id: &str, controller: &str, v2: &str, v1: &str) -> String {
    let (dir, unified) = fx
        .driver
        .cgroup_dir(controller, id)
        .unwrap_or_else(|| panic!("no cgroup hierarchy has {controller}"));
    let file: PathBuf = dir.join(if unified { v2 } else { v1 });
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stem_cell_serves_the_next_start_of_its_spec() {
    let Some(fx) = stem_fixture(Duration::from_secs(60)) else {
        return;
    };
    let first = fx.driver.start(echo_spec(&fx)).await.expect("first start");
    let stems = wait_for_stems(&fx.driver, 1).await;
    assert_eq!(stems.len(), 1, "{stems:?}");
    assert_ne!(stems[0], first.id);
    // Nothing of the function or the agent ran in it yet.
    assert!(
        !fx.driver.instance_path(&stems[0], "agent.json").exists(),
        "a stem cell gets the agent's configuration when claimed"
    );

    // Another function of the same image and settings, at another revision: instance.json
    // and the agent's configuration are the claim's.
    let mut second_spec = echo_spec(&fx);
    second_spec.function = "other/echo".into();
    second_spec.agent.function = "other/echo".into();
    second_spec.agent.function_version = 7;
    let second = fx.driver.start(second_spec).await.expect("second start");
    assert_eq!(second.id, stems[0], "the stem cell is taken");
    let written: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fx.driver.instance_path(&second.id, "agent.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(written["function_version"], 7, "{written}");
    assert_eq!(written["function"], "other/echo", "{written}");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            fx.state_dir
                .join("instances")
                .join(&second.id)
                .join("instance.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["function"], "other/echo", "{meta}");
    assert!(meta.get("stem").is_none(), "{meta}");
    let bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            fx.state_dir
                .join("instances")
                .join(&second.id)
                .join("bundle/config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        bundle["annotations"]["io.faasbox.function"], "other/echo",
        "{}",
        bundle["annotations"]
    );
    echo(&fx, second.endpoint.clone(), &second.id).await;
    // Released through its exec fifo, runc sees it as started.
    assert!(
        fx.driver
            .traces(&second.id)
            .await
            .iter()
            .any(|t| t == "runc container (running)"),
        "{:?}",
        fx.driver.traces(&second.id).await
    );

    // Limits are the function's: memory plus the 64 MiB disk, and its pids.
    assert_eq!(
        cgroup_value(
            &fx,
            &second.id,
            "memory",
            "memory.max",
            "memory.limit_in_bytes"
        ),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        cgroup_value(&fx, &second.id, "pids", "pids.max", "pids.max"),
        "42"
    );

    // The claim refilled it.
    let refilled = wait_for_stems(&fx.driver, 1).await;
    assert_ne!(refilled, stems);
    fx.driver.stop(&first.id).await.unwrap();
    fx.driver.stop(&second.id).await.unwrap();
    fx.driver.stop_all().await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
    assert_eq!(fx.driver.spare_containers(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_differs_takes_no_stem_cell() {
    let Some(fx) = stem_fixture(Duration::from_secs(60)) else {
        return;
    };
    let first = fx.driver.start(echo_spec(&fx)).await.expect("first start");
    let stems = wait_for_stems(&fx.driver, 1).await;
    for change in [
        (|s: &mut InstanceSpec| s.limits.pids = 43) as fn(&mut InstanceSpec),
        |s| s.limits.memory_bytes = 96 << 20,
        |s| s.env = vec!["EXTRA=1".into()],
        |s| s.disk_bytes = 32 << 20,
    ] {
        let mut other = echo_spec(&fx);
        change(&mut other);
        let started = fx.driver.start(other).await.expect("start of another spec");
        assert!(
            !stems.contains(&started.id),
            "{} took a stem cell",
            started.id
        );
        fx.driver.stop(&started.id).await.unwrap();
    }
    assert!(
        fx.driver
            .traces(&stems[0])
            .await
            .iter()
            .any(|t| t == "runc container (created)"),
        "the stem cell of the first spec is still there"
    );
    fx.driver.stop(&first.id).await.unwrap();
    fx.driver.stop_all().await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_stem_cell_is_not_handed_out() {
    let Some(fx) = stem_fixture(Duration::from_secs(60)) else {
        return;
    };
    let first = fx.driver.start(echo_spec(&fx)).await.expect("first start");
    let stems = wait_for_stems(&fx.driver, 1).await;
    let pid: i32 = std::fs::read_to_string(fx.driver.instance_path(&stems[0], "init.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for _ in 0..200 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = fx.driver.start(echo_spec(&fx)).await.expect("second start");
    assert_ne!(second.id, stems[0], "a dead stem cell was handed out");
    echo(&fx, second.endpoint.clone(), &second.id).await;
    // The dead one is torn down in the background.
    let mut left = Vec::new();
    for _ in 0..200 {
        left = fx.driver.traces(&stems[0]).await;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(left, Vec::<String>::new());
    fx.driver.stop(&first.id).await.unwrap();
    fx.driver.stop(&second.id).await.unwrap();
    fx.driver.stop_all().await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_stem_cell_goes_after_the_idle_period() {
    let Some(fx) = stem_fixture(Duration::from_millis(500)) else {
        return;
    };
    let first = fx.driver.start(echo_spec(&fx)).await.expect("first start");
    // Only counted: listing its id takes runtime calls, which on an emulated machine can
    // outlast the short idle period, so the stem cell may be gone before it is listed.
    wait_for_stem_count(&fx.driver, 1).await;
    let mut left = Vec::new();
    for _ in 0..1200 {
        left = traces_besides(&fx.driver, &first.id).await;
        if left.is_empty() && fx.driver.spare_containers() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        left,
        Vec::<String>::new(),
        "only the started instance is left"
    );
    assert_eq!(fx.driver.spare_containers(), 0);
    // Its instance is untouched.
    echo(&fx, first.endpoint.clone(), &first.id).await;
    fx.driver.stop(&first.id).await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

/// A server that dies with stem cells made: the next one's cleanup removes them (container
/// in `created` state, directory, mounts, cgroup) with its instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_driver_removes_leftover_stem_cells() {
    let Some(fx) = stem_fixture(Duration::from_secs(60)) else {
        return;
    };
    let first = fx.driver.start(echo_spec(&fx)).await.expect("first start");
    let stems = wait_for_stems(&fx.driver, 1).await;
    assert_eq!(stems.len(), 1);
    // The "crashed" server's driver stays as it is; a new one on the same state directory
    // cleans up.
    let restarted = reopen(&fx, Duration::from_secs(30));
    let report = restarted.cleanup_leftovers().await.expect("cleanup");
    assert_eq!(
        report.count(crate::leftovers::CONTAINERS),
        2,
        "the instance and the stem cell: {report}"
    );
    assert_eq!(restarted.all_traces().await, Vec::<String>::new());
    assert!(fx.driver.traces(&first.id).await.is_empty());
}
