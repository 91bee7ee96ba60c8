//! "No swap" on a cgroup v2 host: the one memory limit libcontainer leaves unset.
//!
//! A spec's `memory.swap` is memory plus swap (cgroup v1's meaning); the driver sets it equal
//! to `memory.limit`, i.e. no swap beyond the limit. On cgroup v2 swap is a limit of its own,
//! `memory.swap.max`, which libcgroups (0.7) sets to `swap - limit` — but skips the write when
//! that difference is 0, taking 0 for "not set", so the container's `memory.swap.max` stays
//! `max` and it may swap without bound on a host with swap. runc writes the 0. So after
//! libcontainer has made the container, and before its process runs (`create` has not
//! returned), this module writes it. The driver's limits test checks it on every runtime, in
//! the cgroup v2 virtual machine too, where it found this.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// Where a cgroup v2 host mounts its single hierarchy.
const UNIFIED_ROOT: &str = "/sys/fs/cgroup";

/// The `memory.swap.max` file to write 0 to, under `unified_root`: when the spec limits
/// memory and asks for no swap beyond it (swap equal to the limit) and names its cgroup.
fn no_swap_file(spec: &Value, unified_root: &Path) -> Option<PathBuf> {
    let linux = spec.get("linux")?;
    let memory = linux.get("resources")?.get("memory")?;
    let limit = memory.get("limit")?.as_i64()?;
    let swap = memory.get("swap")?.as_i64()?;
    if limit <= 0 || swap != limit {
        return None;
    }
    let cgroup = linux.get("cgroupsPath")?.as_str()?;
    let relative = cgroup.trim_start_matches('/');
    // A path that would leave the hierarchy is not ours to write (libcontainer refused it).
    if relative.is_empty()
        || Path::new(relative)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some(unified_root.join(relative).join("memory.swap.max"))
}

/// Whether this host's cgroups are cgroup v2 only (libcontainer then uses its v2 manager).
fn unified_host() -> bool {
    nix::sys::statfs::statfs(UNIFIED_ROOT)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Writes "no swap" to the container's cgroup where libcontainer left it out (see the
/// module). A host without swap accounting has no `memory.swap.max`: nothing to limit there.
pub(crate) fn apply(spec: &Value) -> anyhow::Result<()> {
    if !unified_host() {
        return Ok(());
    }
    let Some(file) = no_swap_file(spec, Path::new(UNIFIED_ROOT)) else {
        return Ok(());
    };
    if !file.exists() {
        return Ok(());
    }
    std::fs::write(&file, "0").with_context(|| format!("cannot write 0 to {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(limit: i64, swap: Option<i64>, cgroup: &str) -> Value {
        let mut memory = json!({"limit": limit});
        if let Some(swap) = swap {
            memory["swap"] = json!(swap);
        }
        json!({"linux": {"cgroupsPath": cgroup, "resources": {"memory": memory}}})
    }

    #[test]
    fn no_swap_beyond_the_limit_names_the_container_s_swap_file() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            no_swap_file(
                &spec(64 << 20, Some(64 << 20), "/faasbox/fbx1/fbx1-a"),
                root
            ),
            Some(PathBuf::from(
                "/sys/fs/cgroup/faasbox/fbx1/fbx1-a/memory.swap.max"
            ))
        );
    }

    #[test]
    fn other_swap_settings_are_libcontainer_s_and_bad_paths_are_left_alone() {
        let root = Path::new("/sys/fs/cgroup");
        // Swap beyond the limit (libcgroups writes the difference), none asked, no limit.
        assert_eq!(no_swap_file(&spec(64, Some(128), "/a/b"), root), None);
        assert_eq!(no_swap_file(&spec(64, None, "/a/b"), root), None);
        assert_eq!(no_swap_file(&spec(-1, Some(-1), "/a/b"), root), None);
        // A cgroup path that is empty or climbs out of the hierarchy.
        assert_eq!(no_swap_file(&spec(64, Some(64), "/"), root), None);
        assert_eq!(
            no_swap_file(&spec(64, Some(64), "/a/../../etc"), root),
            None
        );
        assert_eq!(no_swap_file(&json!({"linux": {}}), root), None);
    }
}
