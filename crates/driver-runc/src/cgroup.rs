//! The instances' cgroups: where they are, whether one recorded an OOM kill, and removing
//! what the runtime left behind.
//!
//! The OCI spec gets the absolute `cgroupsPath` `/faasbox/<prefix>/<id>`; the runtime
//! creates that directory in every hierarchy it uses (each v1 controller mount, and the
//! unified hierarchy in hybrid or v2 mode). This module finds the hierarchies from
//! `/proc/self/mountinfo`, so it works on v1, hybrid and v2 hosts alike.
//!
//! OOM detection reads the `oom_kill` counter: `memory.oom_control` on v1 (kernel ≥ 4.13),
//! `memory.events` on v2. It counts the processes the kernel's OOM killer killed in this very
//! cgroup, whether the cgroup's own limit or a host-wide shortage triggered it. `memory.failcnt`
//! is not used: it counts every time usage touched the limit, which page-cache reclaim makes
//! routine without anything being killed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::layout::Layout;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    pub mount_point: PathBuf,
    /// `cgroup2` (unified) rather than a v1 hierarchy.
    pub unified: bool,
    /// v1 controllers bound to this hierarchy (`memory`, `cpu`, …; `name=…` for named ones).
    pub controllers: Vec<String>,
}

/// Every cgroup hierarchy mounted in this mount namespace (one entry per mount point), as
/// found the first time any was: a host does not remount its cgroup hierarchies while a server
/// runs, and reading the mount table (which grows with the instances' own mounts) at every
/// start and stop cost a tenth of the server's CPU in a burst of starts. Not kept while none
/// is found.
pub(crate) fn hierarchies() -> &'static [Hierarchy] {
    static FOUND: std::sync::OnceLock<Vec<Hierarchy>> = std::sync::OnceLock::new();
    if let Some(found) = FOUND.get() {
        return found;
    }
    let found = read_hierarchies();
    if found.is_empty() {
        return &[];
    }
    FOUND.get_or_init(|| found)
}

fn read_hierarchies() -> Vec<Hierarchy> {
    let mut found: Vec<Hierarchy> = Vec::new();
    for entry in super::overlay::mount_table().unwrap_or_default() {
        let unified = match entry.fstype.as_str() {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if unified {
            Vec::new()
        } else {
            entry
                .super_options
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                .map(str::to_string)
                .collect()
        };
        if found.iter().any(|h| h.mount_point == entry.mount_point) {
            continue;
        }
        found.push(Hierarchy {
            mount_point: entry.mount_point,
            unified,
            controllers,
        });
    }
    found
}

fn relative(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// The directory of this driver's cgroups in one hierarchy.
fn parent_in(hierarchy: &Hierarchy, layout: &Layout) -> PathBuf {
    hierarchy
        .mount_point
        .join(relative(&layout.cgroup_parent()))
}

/// The instance's cgroup directories that exist.
pub(crate) fn instance_dirs(layout: &Layout, id: &str) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .map(|h| h.mount_point.join(relative(&layout.cgroups_path(id))))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// The instance's memory cgroup (v1 memory hierarchy, else the unified one).
pub(crate) fn memory_dir(layout: &Layout, id: &str) -> Option<PathBuf> {
    let all = hierarchies();
    let pick = all
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "memory"))
        .or_else(|| all.iter().find(|h| h.unified))?;
    let dir = pick.mount_point.join(relative(&layout.cgroups_path(id)));
    dir.is_dir().then_some(dir)
}

/// True when the cgroup's `oom_kill` counter is above zero.
pub(crate) fn oom_killed(memory_dir: &Path) -> bool {
    ["memory.oom_control", "memory.events"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(memory_dir.join(file)).ok())
        .any(|text| counter(&text, "oom_kill").is_some_and(|n| n > 0))
}

fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

/// True when the host accounts swap (v1 `memory.memsw.*`): only then may a spec set
/// `memory.swap`, which runc refuses otherwise.
pub(crate) fn swap_accounting() -> bool {
    let all = hierarchies();
    if let Some(memory) = all
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "memory"))
    {
        return memory
            .mount_point
            .join("memory.memsw.limit_in_bytes")
            .exists();
    }
    // v2: runc translates the OCI memory+swap value into memory.swap.max when it exists.
    all.iter().any(|h| h.unified)
}

/// Removes the instance's cgroup directories, killing any process still in them.
/// Returns whether any existed.
pub(crate) async fn remove_instance(layout: &Layout, id: &str) -> Result<bool, String> {
    let dirs = instance_dirs(layout, id);
    if dirs.is_empty() {
        return Ok(false);
    }
    let mut failures = Vec::new();
    for dir in &dirs {
        if let Err(e) = remove_dir(dir).await {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(true)
    } else {
        Err(failures.join("; "))
    }
}

async fn remove_dir(dir: &Path) -> Result<(), String> {
    let mut last_error = String::new();
    for attempt in 0..50 {
        // cgroup v2 (kernel >= 5.14): one write kills every process in the whole subtree.
        let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        match remove_tree(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(10 * (attempt + 1).min(10))).await;
    }
    Err(format!(
        "cannot remove cgroup {}: {last_error}{}",
        dir.display(),
        what_holds(dir)
    ))
}

/// Says what keeps a cgroup from being removed: its member processes (pid, name and state)
/// and child cgroups, and its `cgroup.events` (v2), for the error that a removal failed.
fn what_holds(dir: &Path) -> String {
    const SHOWN: usize = 8;
    let mut parts = Vec::new();
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    let members: Vec<String> = read("cgroup.procs")
        .lines()
        .chain(read("cgroup.threads").lines())
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .collect::<BTreeSet<i32>>()
        .into_iter()
        .take(SHOWN)
        .map(|pid| format!("{pid} {}", process_summary(pid)))
        .collect();
    if !members.is_empty() {
        parts.push(format!("members: {}", members.join(", ")));
    }
    let children: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .take(SHOWN)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !children.is_empty() {
        parts.push(format!("child cgroups: {}", children.join(", ")));
    }
    let pinning = mounts_of(dir);
    if !pinning.is_empty() {
        parts.push(format!("mounted at: {}", pinning.join(", ")));
    }
    let events = read("cgroup.events");
    if !events.is_empty() {
        parts.push(format!("events: {}", events.trim().replace('\n', ", ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// Where this mount namespace has the cgroup `dir` (or a part of it) mounted: such a mount
/// keeps the cgroup from being removed.
fn mounts_of(dir: &Path) -> Vec<String> {
    let Some(within) = hierarchies()
        .iter()
        .find_map(|h| dir.strip_prefix(&h.mount_point).ok().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let within = Path::new("/").join(within);
    super::overlay::mount_table()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| {
            matches!(entry.fstype.as_str(), "cgroup" | "cgroup2") && entry.root.starts_with(&within)
        })
        .map(|entry| entry.mount_point.display().to_string())
        .collect()
}

/// `(name) state` of a process from `/proc/<pid>/stat`, or `(gone)`.
fn process_summary(pid: i32) -> String {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return "(gone)".to_string();
    };
    // The name is in parentheses and may itself hold spaces and parentheses.
    match (stat.find('('), stat.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            let state = stat[close + 1..].split_whitespace().next().unwrap_or("?");
            format!("{} {state}", &stat[open..=close])
        }
        _ => "(unreadable)".to_string(),
    }
}

/// The most cgroups under one instance's that are removed: a container given its cgroup (crun
/// delegates it on cgroup v2) can make child cgroups, and a hostile one could make many.
const MAX_CHILD_CGROUPS: usize = 10_000;

/// Removes `dir` and the child cgroups under it, children before their parent (a cgroup with
/// children or members cannot be removed), killing the processes in each. An explicit stack,
/// so a deep tree cannot exhaust ours; each call looks at no more than [`MAX_CHILD_CGROUPS`]
/// and removes the leaves among them, so a larger tree goes over several calls.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    let mut seen = 1;
    // (cgroup, whether its children were pushed already)
    let mut stack = vec![(dir.to_path_buf(), false)];
    let mut result = Ok(());
    while let Some((cgroup, expanded)) = stack.pop() {
        if !expanded && seen < MAX_CHILD_CGROUPS {
            stack.push((cgroup.clone(), true));
            if let Ok(entries) = std::fs::read_dir(&cgroup) {
                for entry in entries.flatten() {
                    if seen < MAX_CHILD_CGROUPS && entry.file_type().is_ok_and(|t| t.is_dir()) {
                        seen += 1;
                        stack.push((entry.path(), false));
                    }
                }
            }
            continue;
        }
        kill_members(&cgroup);
        match std::fs::remove_dir(&cgroup) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && cgroup != dir => {}
            Err(e) => result = Err(e),
        }
    }
    result
}

/// SIGKILLs every process in the cgroup.
fn kill_members(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if pid > 1 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Ids with a cgroup directory of this driver in any hierarchy.
pub(crate) fn list_instances(layout: &Layout) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for hierarchy in hierarchies() {
        let Ok(entries) = std::fs::read_dir(parent_in(hierarchy, layout)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                if let Some(name) = entry.file_name().to_str() {
                    ids.insert(name.to_string());
                }
            }
        }
    }
    ids
}

/// Removes this driver's parent cgroup directories (when empty). The shared top directory
/// (`faasbox`) stays: removing it could race with another server creating its first cgroup.
pub(crate) fn remove_parents(layout: &Layout) {
    for hierarchy in hierarchies() {
        let _ = std::fs::remove_dir(parent_in(hierarchy, layout));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_name() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(v1, "oom_kill"), Some(2));
        assert_eq!(counter(v1, "under_oom"), Some(0));
        assert_eq!(counter("low 0\nhigh 0\n", "oom_kill"), None);
    }

    /// A cgroup with child cgroups (a container may make them in a cgroup delegated to it),
    /// a process in the deepest, is removed whole and the process killed.
    #[tokio::test]
    async fn an_instance_cgroup_with_child_cgroups_is_removed() {
        if !nix::unistd::geteuid().is_root() {
            faasbox_test_registry::cannot_run("making cgroups needs root");
            return;
        }
        let Some(hierarchy) = hierarchies()
            .iter()
            .find(|h| h.unified || h.controllers.iter().any(|c| c == "pids"))
        else {
            faasbox_test_registry::cannot_run("no unified or pids cgroup hierarchy is mounted");
            return;
        };
        let top = hierarchy
            .mount_point
            .join(format!("faasbox-cgroup-test-{}", std::process::id()));
        let deepest = top.join("a").join("b").join("c");
        std::fs::create_dir_all(&deepest).expect("make the cgroups");
        std::fs::create_dir_all(top.join("a").join("sibling")).expect("make a sibling");
        let mut sleeper = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("start sleep");
        std::fs::write(deepest.join("cgroup.procs"), sleeper.id().to_string())
            .expect("move the process into the deepest cgroup");

        // What a failed removal would say: the member by pid and name, the child cgroups.
        let held = what_holds(&deepest);
        assert!(
            held.contains(&format!("{} (sleep) ", sleeper.id())),
            "{held}"
        );
        let held = what_holds(&top.join("a"));
        assert!(
            held.contains("child cgroups: ") && held.contains("sibling"),
            "{held}"
        );
        // A mount of a part of the cgroup elsewhere (as a container's mount that leaked into
        // this namespace would be) is named too.
        let elsewhere = tempfile::tempdir().expect("a mount point");
        nix::mount::mount(
            Some(&top.join("a").join("sibling")),
            elsewhere.path(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind a part of the cgroup");
        let held = what_holds(&top.join("a"));
        nix::mount::umount(elsewhere.path()).expect("unmount");
        assert!(
            held.contains(&format!("mounted at: {}", elsewhere.path().display())),
            "{held}"
        );

        remove_dir(&top).await.expect("removed whole");

        assert!(!top.exists(), "{} is left", top.display());
        let status = sleeper.wait().expect("sleep ends");
        assert!(!status.success(), "sleep was killed: {status}");
        // Removing what is gone already is fine.
        remove_dir(&top).await.expect("nothing to remove");
    }

    #[test]
    fn hierarchies_are_found_on_this_host() {
        let all = hierarchies();
        if std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            assert!(all
                .iter()
                .any(|h| h.controllers.iter().any(|c| c == "memory")));
        }
    }
}
