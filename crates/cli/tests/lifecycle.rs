//! What a server leaves on the machine: nothing, after a clean stop and after a SIGKILL
//! followed by a restart. Resources are found from the running containers themselves
//! (runc state → pid → cgroups, network namespace, mounts), so the test does not depend on
//! how the driver names them.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use support::cgroups::ProcessCgroups;
use support::images;
use support::{runc_containers, Server};

/// What one running container holds on the host.
#[derive(Debug)]
struct Footprint {
    container_ids: Vec<String>,
    cgroup_dirs: Vec<PathBuf>,
    netns_files: Vec<PathBuf>,
    mountpoints: Vec<String>,
    helper_pids: Vec<u32>,
}

/// How many of the server's containers run (its stem cells, `--spare-containers`, are
/// `created` and not counted).
fn running(data_dir: &Path) -> usize {
    runc_containers(data_dir)
        .iter()
        .filter(|c| c["status"] == "running")
        .count()
}

fn containers(data_dir: &Path) -> Vec<(String, u32)> {
    runc_containers(data_dir)
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["pid"].as_u64().unwrap_or(0) as u32,
            )
        })
        .collect()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn footprint(data_dir: &Path) -> Footprint {
    let running = containers(data_dir);
    let mut cgroup_dirs = Vec::new();
    let mut netns_files = Vec::new();
    let mut helper_pids = Vec::new();
    for (_, pid) in &running {
        // The container's limit cgroups (v1 controllers, or the one unified directory).
        if let Some(cgroups) = ProcessCgroups::of(*pid) {
            cgroup_dirs.extend(cgroups.limit_dirs());
        }
        let netns_inode = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .map(|m| m.ino())
            .ok();
        for entry in std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::metadata(entry.path()).map(|m| m.ino()).ok() == netns_inode {
                netns_files.push(entry.path());
            }
        }
        for proc in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(other) = proc.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{other}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // The network helper: slirp4netns (the default) or pasta.
            let program = cmdline.split(' ').next().unwrap_or_default();
            let is_helper = ["slirp4netns", "pasta"]
                .iter()
                .any(|name| program == *name || program.ends_with(&format!("/{name}")));
            if is_helper
                && netns_files
                    .iter()
                    .any(|n| cmdline.contains(n.to_string_lossy().as_ref()))
            {
                helper_pids.push(other);
            }
        }
    }
    helper_pids.sort_unstable();
    helper_pids.dedup();
    Footprint {
        container_ids: running.into_iter().map(|(id, _)| id).collect(),
        cgroup_dirs,
        netns_files,
        mountpoints: mounts_under(data_dir),
        helper_pids,
    }
}

/// Whether the network helper of one of `netns_files` still runs as `pid`: the process runs (a
/// zombie waiting for its parent to reap it holds nothing) and is that helper still, not
/// another process that got the pid once the helper was gone.
fn helper_runs(pid: u32, netns_files: &[PathBuf]) -> bool {
    let runs = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit(") ").next().map(|rest| !rest.starts_with('Z')))
        .unwrap_or(false);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    runs && netns_files
        .iter()
        .any(|n| cmdline.contains(n.to_string_lossy().as_ref()))
}

fn assert_gone(before: &Footprint, data_dir: &Path) {
    assert!(
        containers(data_dir).is_empty(),
        "containers remain: {:?}",
        containers(data_dir)
    );
    for dir in &before.cgroup_dirs {
        assert!(!dir.exists(), "cgroup {} remains", dir.display());
    }
    for netns in &before.netns_files {
        assert!(
            !netns.exists(),
            "network namespace {} remains",
            netns.display()
        );
    }
    assert!(
        mounts_under(data_dir).is_empty(),
        "mounts remain: {:?}",
        mounts_under(data_dir)
    );
    for pid in &before.helper_pids {
        assert!(
            !helper_runs(*pid, &before.netns_files),
            "network helper {pid} still runs"
        );
    }
}

async fn server_running_two_instances(server: &Server) {
    let images = images::build(images::TEST_FUNCTION);
    server.create_namespace("demo").await;
    let r = server
        .import(
            &images.rootfs_tar,
            "test/function:latest",
            &[
                (
                    "entrypoint",
                    &serde_json::to_string(&images::HTTPD).unwrap(),
                ),
                ("cmd", &serde_json::to_string(&[images::WWW]).unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status(), 201);
    server.deploy("demo", "warm", json!({"image": "test/function:latest", "envs": {"MODE": "headers"}, "scale": {"min": 1}})).await;
    server
        .deploy(
            "demo",
            "echo",
            json!({"image": "test/function:latest", "envs": {"MODE": "echo"}}),
        )
        .await;
    let (status, _, _) = server.invoke("demo", "echo", "{}").await;
    assert_eq!(status, 200);
    // The warm instance of `warm` (min 1) comes up in the background.
    for _ in 0..100 {
        if running(&server.data_dir) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_stopped_server_leaves_nothing_behind() {
    let mut server = Server::start().await;
    server_running_two_instances(&server).await;
    let before = footprint(&server.data_dir);
    // Two instances, and the stem cells made after their starts.
    assert_eq!(running(&server.data_dir), 2, "{before:?}");
    assert!(before.container_ids.len() >= 2, "{before:?}");
    assert!(
        !before.cgroup_dirs.is_empty()
            && !before.netns_files.is_empty()
            && !before.mountpoints.is_empty(),
        "{before:?}"
    );
    // Two instances' helpers, and a stem cell's when one was made ahead already.
    assert!(before.helper_pids.len() >= 2, "{before:?}");
    assert!(server.stop(), "server exits 0 on SIGTERM");
    assert_gone(&before, &server.data_dir);
}

#[tokio::test]
async fn a_killed_server_cleans_up_when_it_starts_again() {
    let mut server = Server::start().await;
    server_running_two_instances(&server).await;
    let before = footprint(&server.data_dir);
    assert_eq!(running(&server.data_dir), 2, "{before:?}");
    server.kill();
    // Everything is still there after SIGKILL (stem cells included)…
    assert!(containers(&server.data_dir).len() >= before.container_ids.len());
    let data_dir = server.data_dir.clone();
    // …and gone once a server starts on the same data directory (which then serves again).
    let mut restarted = Server::start_in(&data_dir).await;
    for id in &before.container_ids {
        assert!(
            !containers(&data_dir).iter().any(|(c, _)| c == id),
            "old container {id} remains"
        );
    }
    for dir in &before.cgroup_dirs {
        assert!(!dir.exists(), "cgroup {} remains", dir.display());
    }
    for netns in &before.netns_files {
        assert!(
            !netns.exists(),
            "network namespace {} remains",
            netns.display()
        );
    }
    for pid in &before.helper_pids {
        assert!(
            !helper_runs(*pid, &before.netns_files),
            "network helper {pid} still runs"
        );
    }
    let (status, _, _) = restarted.invoke("demo", "echo", "{}").await;
    assert_eq!(status, 200);
    let after = footprint(&data_dir);
    assert!(restarted.stop());
    assert_gone(&after, &data_dir);
}
