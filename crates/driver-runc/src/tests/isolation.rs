//! How runc instances are boxed in, seen from inside a real container and from the host: the
//! bounded disk (and that filling it is not an OOM kill), the read-only control mount, the
//! seccomp filter, the user namespace, and the OOM killer's order (real agent).

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::InvokeStatus;

use super::containers::sh;
use super::containers::start_fake;
use super::fixtures::{fixture, fixture_configured, spec};
use crate::IdMap;
use faasbox_driver::{AgentClient, Driver, RuntimeClass};

const MIB: u64 = 1 << 20;

/// `TMPFS_MAGIC` of statfs(2).
const TMPFS_MAGIC: i64 = 0x0102_1994;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_is_bounded_and_filling_it_is_not_an_oom() {
    let Some(fx) = fixture() else { return };
    // More disk than memory: its pages are charged to the memory cgroup, whose limit is the
    // sum, so a full disk is ENOSPC and not an out-of-memory kill.
    let mut spec = spec(&fx, RuntimeClass::Standard, false);
    spec.limits.memory_bytes = 32 * MIB;
    spec.disk_bytes = 48 * MIB;
    let (instance, client) = start_fake(&fx, spec).await;
    let fill = sh(
        &client,
        "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; echo rc=$?; ls -l /tmp/fill",
    )
    .await;
    let out = fill["stdout"].as_str().unwrap();
    assert!(out.contains("No space left on device"), "{fill}");
    assert!(!out.contains("rc=0"), "{fill}");

    // On the host: the writes are in the instance's tmpfs, not on the host's disk.
    let upper = fx.driver.instance_path(&instance.id, "upper");
    let size = std::fs::metadata(upper.join("tmp/fill")).unwrap().len();
    assert!(size <= 48 * MIB && size > 40 * MIB, "{size}");
    let stats = nix::sys::statfs::statfs(&upper).unwrap();
    assert_eq!(stats.filesystem_type().0 as i64, TMPFS_MAGIC);
    assert!(
        !fx.driver.oom_killed(&instance.id).await,
        "filling the disk must not be an OOM kill"
    );
    // The agent lives on, and the disk is usable again once the file is gone.
    let again = sh(
        &client,
        "rm /tmp/fill && echo ok > /tmp/small && cat /tmp/small",
    )
    .await;
    assert_eq!(again["stdout"], "ok\n", "{again}");
    // A flood of empty files is bounded too (one inode per 4 KiB of disk).
    let files = sh(
        &client,
        "mkdir /tmp/many && cd /tmp/many && i=0; while [ $i -lt 20000 ]; do touch f$i 2>/dev/null || break; \
         i=$((i+1)); done; echo made=$i",
    )
    .await;
    let made: u64 = files["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .trim_start_matches("made=")
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {files}"));
    assert!(made < 48 * MIB / 4096, "{files}");
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_mount_is_read_only() {
    let Some(fx) = fixture() else { return };
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, false)).await;
    let probe = sh(
        &client,
        "cat /.faasbox/agent.json > /dev/null && echo readable; \
         touch /.faasbox/new 2>&1; mkdir /.faasbox/dir 2>&1; rm /.faasbox/agent.json 2>&1; \
         sh -c 'echo x >> /.faasbox/agent.json' 2>&1 || echo append refused; echo done",
    )
    .await;
    let out = probe["stdout"].as_str().unwrap();
    assert!(out.starts_with("readable\n"), "{probe}");
    assert_eq!(out.matches("Read-only file system").count(), 3, "{probe}");
    assert!(out.contains("append refused"), "{probe}");
    let ctl = fx.driver.instance_path(&instance.id, "ctl");
    assert!(!ctl.join("new").exists());
    assert!(!ctl.join("dir").exists());
    let config = std::fs::read_to_string(ctl.join("agent.json")).unwrap();
    assert!(config.trim_end().ends_with('}'), "agent.json unchanged");
    // Container root cannot reopen the agent's log (it belongs to host root)...
    let log = sh(&client, "sh -c 'echo x > /proc/1/fd/1' 2>&1; echo done").await;
    assert!(
        log["stdout"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{log}"
    );
    fx.driver.stop(&instance.id).await.unwrap();
}

/// ...and where it could (container root as host root), the log is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_output_is_bounded() {
    let agent = std::env::current_exe().expect("the test binary's path");
    let Some(fx) = fixture_configured(agent, |config| config.id_map = None) else {
        return;
    };
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, false)).await;
    let log = sh(
        &client,
        "dd if=/dev/zero of=/proc/1/fd/1 bs=1M count=20 2>&1; echo done",
    )
    .await;
    assert!(
        log["stdout"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{log}"
    );
    let agent_log = fx.driver.instance_path(&instance.id, "agent.log");
    assert!(std::fs::metadata(&agent_log).unwrap().len() <= 1 << 20);
    // The agent lives on.
    assert_eq!(sh(&client, "echo ok").await["stdout"], "ok\n");
    fx.driver.stop(&instance.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_filters_the_container() {
    let Some(fx) = fixture() else { return };
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, false)).await;
    let status = sh(&client, "grep -E '^Seccomp(_filters)?:' /proc/self/status").await;
    let out = status["stdout"].as_str().unwrap();
    assert!(out.contains("Seccomp:\t2"), "{status}");
    // A new user namespace needs no capability, so only the filter refuses it (the runtime
    // default's reason: it would give back what the container dropped).
    let unshare = sh(&client, "unshare -U true 2>&1; echo rc=$?").await;
    let out = unshare["stdout"].as_str().unwrap();
    assert!(out.contains("Operation not permitted"), "{unshare}");
    assert!(!out.contains("rc=0"), "{unshare}");
    // A mount fails too (the capability is missing as well).
    let mount = sh(&client, "mount -t tmpfs none /mnt 2>&1; echo rc=$?").await;
    assert!(
        !mount["stdout"].as_str().unwrap().contains("rc=0"),
        "{mount}"
    );
    // What functions need still works: processes, pipes, files, sockets.
    let ok = sh(
        &client,
        "echo a | tr a b; sleep 0.1 & wait; echo x > /tmp/f && cat /tmp/f >/dev/null; \
         wget -q -O /dev/null http://127.0.0.1:1/ 2>/dev/null; echo end",
    )
    .await;
    assert!(ok["stdout"].as_str().unwrap().starts_with("b\n"), "{ok}");
    assert!(ok["stdout"].as_str().unwrap().ends_with("end\n"), "{ok}");
    fx.driver.stop(&instance.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_root_is_an_unprivileged_host_uid() {
    let Some(fx) = fixture() else { return };
    let Some(map) = fx.driver.id_map() else {
        panic!(
            "this kernel (6.x) supports user namespaces and idmapped layers: {:?}",
            fx.driver.user_namespace_problem()
        );
    };
    assert_eq!(map, IdMap::DEFAULT);
    let (instance, client) = start_fake(&fx, spec(&fx, RuntimeClass::Standard, false)).await;
    let view = sh(
        &client,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c '%u:%g' /bin/busybox /etc/passwd; \
         touch /made-by-root && echo made; mkdir -p /tmp/d && chown 1000:1000 /tmp/d && echo chowned",
    )
    .await;
    let out = view["stdout"].as_str().unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let mapping = format!("0 {} {}", map.host_base, map.size);
    let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(squeeze(lines[0]), mapping, "{view}");
    assert_eq!(squeeze(lines[1]), mapping, "{view}");
    assert_eq!(lines[2], "0", "root inside: {view}");
    // The image's files, owned by host root in the store, belong to root inside.
    assert_eq!(lines[3], "0:0", "{view}");
    assert_eq!(lines[4], "0:0", "{view}");
    assert!(
        out.contains("made\n") && out.contains("chowned\n"),
        "{view}"
    );

    // On the host: the container process and its files have the mapped ids.
    let pid = fx
        .driver
        .container_pid(&instance.id, RuntimeClass::Standard)
        .await
        .expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(map.host_base.to_string().as_str()),
        "{uid_line}"
    );
    let upper = fx.driver.instance_path(&instance.id, "upper");
    let made = std::fs::metadata(upper.join("made-by-root")).unwrap();
    assert_eq!((made.uid(), made.gid()), (map.host_base, map.host_base));
    let chowned = std::fs::metadata(upper.join("tmp/d")).unwrap();
    assert_eq!(chowned.uid(), map.host_base + 1000);
    // The image layer itself was not touched.
    assert_eq!(
        std::fs::metadata(fx.layer.join("bin/busybox"))
            .unwrap()
            .uid(),
        0
    );
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.traces(&instance.id).await, Vec::<String>::new());
}

/// The real agent (it sets the function's OOM score): an out-of-memory kill takes the
/// function's process and leaves the agent, which reports the call and stays ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oom_killer_takes_the_function_not_the_agent() {
    let Some(fx) = super::agent_e2e::real_agent_fixture() else {
        return;
    };
    let mut spec = spec(&fx, RuntimeClass::Standard, false);
    spec.env = vec!["PATH=/bin".into()];
    spec.agent.contract = faasbox_proto::Contract::Cmd;
    spec.agent.command = Vec::new();
    spec.limits.memory_bytes = 32 * MIB;
    spec.disk_bytes = 8 * MIB;
    let instance = fx.driver.start(spec).await.expect("start");
    let client = AgentClient::at(instance.endpoint.clone());
    let agent_pid = fx
        .driver
        .container_pid(&instance.id, RuntimeClass::Standard)
        .await
        .expect("running");
    let agent_adj: i32 = std::fs::read_to_string(format!("/proc/{agent_pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(agent_adj < 1000, "the agent must rank below its function");
    let input = serde_json::json!({"commands": [
        {"command": "cat /proc/self/oom_score_adj"},
        // A 100 MB string in a 40 MiB cgroup (32 MiB of memory + 8 MiB of disk).
        {"command": "sh -c 'x=$(head -c 100000000 /dev/zero | tr \"\\0\" x); echo ${#x}'"},
        {"command": "echo still here"},
    ]});
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        client.invoke(
            "oom-1",
            "2099-01-01T00:00:00Z",
            Bytes::from(input.to_string()),
        ),
    )
    .await
    .expect("the agent answers")
    .expect("invoke");
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    let output: serde_json::Value = serde_json::from_str(outcome.output.unwrap().get()).unwrap();
    assert_eq!(output[0]["Output"], 1000, "{output}");
    assert_ne!(output[1]["Error"], "", "the hog was killed: {output}");
    assert_eq!(output[2]["Output"], "still here\n", "{output}");
    assert!(fx.driver.oom_killed(&instance.id).await);
    assert!(client.ready().await.unwrap().ready);
    assert_eq!(
        fx.driver
            .container_pid(&instance.id, RuntimeClass::Standard)
            .await,
        Some(agent_pid),
        "the agent is the same process"
    );
    fx.driver.stop(&instance.id).await.unwrap();
}

/// A data directory container root may not pass through: the driver runs without user
/// namespaces and says why, with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untraversable_state_directory_turns_user_namespaces_off_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let Some(fx) = fixture() else { return };
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = super::fixtures::driver_config(closed.path().join("run"), &fx.agent);
    let driver = crate::RuncDriver::new(config, fx.images.clone()).unwrap();
    assert_eq!(driver.id_map(), None);
    let problem = driver.user_namespace_problem().unwrap();
    assert!(problem.contains("chmod 0711"), "{problem}");
    assert!(
        problem.contains(&closed.path().display().to_string()),
        "{problem}"
    );
    // Its state directory's tmpfs goes (it started nothing to clean up).
    crate::state_tmpfs::release(driver.state_dir());
}
