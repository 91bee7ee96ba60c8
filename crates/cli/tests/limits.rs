//! A function's resource limits through a real server, read back from the kernel: `--size`
//! sets the instance's memory, CPU and pids cgroup limits; a function over its memory fails
//! with `faasbox.function.oom`; one that forks without end stops at its pids limit; a busy one
//! is throttled to its CPU quota. The cgroup files are found from the container's process
//! (`support::cgroups`), so the same tests run on cgroup v1 hosts and, in the cgroup v2
//! virtual machine (`cgroup_v2_vm.rs`), on the unified hierarchy.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::cgroups::{self, Limits, ProcessCgroups};
use support::{
    deploy_mode, json as parse, server_with_test_function, tail, wait_container_pid, Server,
};

const MIB: u64 = 1 << 20;

/// The cgroups of the running instance of `demo/<name>` (waiting for it to start).
async fn instance_cgroups(server: &Server, name: &str) -> ProcessCgroups {
    let function = format!("demo/{name}");
    let pid = wait_container_pid(&server.data_dir, &function, Duration::from_secs(60)).await;
    ProcessCgroups::of(pid).unwrap_or_else(|| panic!("the instance of {function} is gone"))
}

fn hierarchy() -> &'static str {
    if cgroups::unified_only() {
        "cgroup v2 (unified)"
    } else {
        "cgroup v1 or hybrid"
    }
}

#[tokio::test]
async fn sizes_set_the_instance_cgroup_limits() {
    let server = server_with_test_function().await;
    // (size, disk, memory, CPU quota per 100 ms period, pids): the README's table. The
    // memory limit is the size's memory plus the instance's disk (default 64 MiB), a tmpfs
    // whose pages count there.
    let sizes = [
        ("small", None, (256 + 64) * MIB, 50_000, 256),
        ("large", Some("128MiB"), (1024 + 128) * MIB, 200_000, 1024),
    ];
    for (size, disk, memory, quota, pids) in sizes {
        let mut extra = json!({"size": size, "scale": {"min": 1}});
        if let Some(disk) = disk {
            extra["disk"] = json!(disk);
        }
        deploy_mode(&server, size, "headers", extra).await;
        let limits = instance_cgroups(&server, size).await.limits();
        eprintln!("{size} on a {} host: {limits:?}", hierarchy());
        assert_eq!(
            limits,
            Limits {
                memory: memory.to_string(),
                // No swap on top of the memory limit, where the host accounts swap at all.
                swap: limits.swap.is_some().then(|| "0".to_string()),
                cpu: format!("{quota} 100000"),
                pids: pids.to_string(),
            },
            "size {size}"
        );
    }
}

#[tokio::test]
async fn running_out_of_memory_is_a_clear_error_and_the_server_goes_on() {
    let server = server_with_test_function().await;
    deploy_mode(
        &server,
        "hog",
        "oom",
        json!({"size": "small", "scale": {"max": 1}}),
    )
    .await;
    let (status, id, body) = server.invoke("demo", "hog", "{}").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    let error = &parse(&body)["error"];
    if error["code"] != "faasbox.function.oom" {
        panic!(
            "{error}\nthe call's logs: {:?}\nthe server's log:\n{}",
            server.log_lines(&id).await,
            tail(&server.log(), 40)
        );
    }
    assert!(error["message"].as_str().unwrap().contains("--size"));
    assert_eq!(
        server.get_json(&format!("/api/v1/invocations/{id}")).await["status"],
        "failed"
    );
    deploy_mode(&server, "echo", "echo", json!({})).await;
    let (status, _, body) = server.invoke("demo", "echo", r#"{"after":"oom"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body), json!({"after": "oom"}));
    // The same function serves again on a fresh instance.
    deploy_mode(
        &server,
        "hog",
        "headers",
        json!({"size": "small", "scale": {"max": 1}}),
    )
    .await;
    let (status, _, _) = server.invoke("demo", "hog", "{}").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_function_cannot_fork_past_its_pids_limit() {
    let server = server_with_test_function().await;
    // small: pids.max 256, counting the agent's threads, httpd and the CGI shells too.
    deploy_mode(
        &server,
        "forker",
        "forks",
        json!({"size": "small", "scale": {"max": 1}}),
    )
    .await;
    for call in 1..=2 {
        let (status, _, body) = server.invoke("demo", "forker", "{}").await;
        assert_eq!(
            status,
            200,
            "call {call}: {}",
            String::from_utf8_lossy(&body)
        );
        let started = parse(&body)["started"].as_u64().expect("started");
        eprintln!("call {call} started {started} processes");
        // It tried 5000; the limit stopped it short of 256. The second call starting as many
        // shows the first call's processes were gone and their pids free again.
        assert!(
            (100..256).contains(&started),
            "call {call} started {started} processes"
        );
    }
    let refused = instance_cgroups(&server, "forker").await.pids_max_events();
    assert!(refused >= 2, "pids.events max is {refused}");
}

#[tokio::test]
async fn a_busy_function_is_held_to_its_cpu_quota() {
    let server = server_with_test_function().await;
    // small: 0.5 CPU. Two busy processes would take two CPUs without the quota.
    deploy_mode(
        &server,
        "spinner",
        "spin",
        json!({"size": "small", "scale": {"min": 1, "max": 1}, "envs": {"MODE": "spin", "SPIN_SECONDS": "3"}}),
    )
    .await;
    let cgroups = instance_cgroups(&server, "spinner").await;
    // The kernel throttles only a group that got more than its quota in a period: on a busy
    // machine a call may not. Each call must stay within the quota; one must be throttled.
    let mut shares = Vec::new();
    for _ in 0..5 {
        let before = cgroups.cpu_usage();
        let began = Instant::now();
        let (status, _, body) = server.invoke("demo", "spinner", "{}").await;
        let wall = began.elapsed();
        let after = cgroups.cpu_usage();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let used = after.used.saturating_sub(before.used);
        let throttled = after.throttled - before.throttled;
        eprintln!(
            "{} host: {used:?} of CPU in {wall:?}, throttled {throttled} times",
            hierarchy()
        );
        assert!(
            used >= Duration::from_millis(200),
            "it did not spin: {used:?}"
        );
        // 0.5 CPU over the call, with room for the kernel's accounting at the periods' edges
        // (it throttles at slice granularity, per CPU): without the quota, two busy processes
        // on an idle machine take up to twice the wall time.
        let allowed = wall.mul_f64(0.55) + Duration::from_millis(100);
        assert!(
            used <= allowed,
            "{used:?} of CPU in {wall:?} is more than the 0.5 CPU quota allows ({allowed:?})"
        );
        if throttled > 0 {
            return;
        }
        shares.push(used.as_secs_f64() / wall.as_secs_f64());
    }
    let most = shares.iter().copied().fold(0.0, f64::max);
    if most < 0.45 {
        // Below its quota every time: the machine's other work took the CPU, so the quota
        // never had anything to stop. That shows nothing either way.
        support::cannot_run(&format!(
            "the machine was too busy for a function to exceed 0.5 CPU (its CPU shares: \
             {shares:.2?}); the quota could not be shown"
        ));
        return;
    }
    panic!("the quota never throttled the function; its CPU shares were {shares:.2?}");
}
