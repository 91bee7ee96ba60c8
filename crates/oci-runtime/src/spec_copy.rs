//! The spec copy a `create` hands libcontainer, `<root>/.bundle-<id>/`, and what a create cut
//! short leaves behind.
//!
//! A create holds an exclusive lock on its copy's directory from just after making it until
//! it has finished, however it ends: [`SpecCopy`] removes the directory when dropped, then lets
//! the lock go. The container's processes inherit the locked descriptor until they execute
//! the container's program (it is close-on-exec), so the lock is held while any process of the
//! create lives. A copy that nobody holds was left by a create that was killed (the driver's
//! timeout, an OOM kill, a reboot of the server's process). [`remove_leftovers`] then removes
//! it, and the container's directory when libcontainer had not yet written the container's
//! state there (it writes that before it starts any process, so no process can be left): such
//! a directory could not be loaded, listed or deleted, and would keep the driver's state tmpfs
//! from being released at a clean stop. A container with state is the driver's to delete, as
//! any other.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

/// The name prefix of a spec copy's directory in the root (no container id starts with `.`).
const PREFIX: &str = ".bundle-";

/// A copy younger than this is never swept by [`sweep`], locked or not: a create makes the
/// directory a moment before it locks it.
pub(crate) const SWEEP_AFTER: Duration = Duration::from_secs(10);

/// The spec copy of a create in progress; removed when dropped.
pub(crate) struct SpecCopy {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl SpecCopy {
    /// Makes `<root>/.bundle-<id>/`, locks it and writes `spec` there as `config.json`.
    pub(crate) fn write(root: &Path, id: &str, spec: &serde_json::Value) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = copy_dir(root, id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let handle = File::open(&dir).with_context(|| format!("cannot open {}", dir.display()))?;
        let lock = Flock::lock(handle, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| errno)
            .with_context(|| {
                format!(
                    "cannot lock {}: is another create of {id} running?",
                    dir.display()
                )
            })?;
        let copy = SpecCopy { dir, _lock: lock };
        let path = copy.dir.join("config.json");
        std::fs::write(&path, serde_json::to_vec(spec)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(copy)
    }

    /// The directory to give libcontainer as the bundle.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SpecCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            // Only disk space is at stake (a few KiB), not the container; a later `list` or
            // `delete` removes it.
            eprintln!("faasbox-oci: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// Where the spec's copy for container `id` is written: one level below the root, so that
/// concurrent creates share no directory that one of them could remove.
fn copy_dir(root: &Path, id: &str) -> PathBuf {
    root.join(format!("{PREFIX}{id}"))
}

/// Removes what a killed create of `id` left: its spec copy, and the container's directory if
/// it holds no state. Does nothing while the copy is locked (its create is still running).
pub(crate) fn remove_leftovers(root: &Path, id: &str) -> anyhow::Result<()> {
    let container = crate::container_id::container_dir(root, id)?;
    let dir = copy_dir(root, id);
    let handle = match File::open(&dir) {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot open {}", dir.display())))
        }
    };
    // Held until both are gone, so that a create of the same id cannot start in between.
    let Ok(_lock) = Flock::lock(handle, FlockArg::LockExclusiveNonblock) else {
        return Ok(());
    };
    if container.is_dir() && !container.join("state.json").exists() {
        std::fs::remove_dir_all(&container)
            .with_context(|| format!("cannot remove {}", container.display()))?;
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// Removes the leftovers ([`remove_leftovers`]) of every killed create in `root` whose copy is
/// older than `age`.
pub(crate) fn sweep(root: &Path, age: Duration) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read {}", root.display())))
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|elapsed| elapsed >= age));
        if old && crate::container_id::container_dir(root, id).is_ok() {
            remove_leftovers(root, id)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::SystemTime;

    /// A copy as a killed create leaves it: written, not locked, `age` old.
    fn abandoned_copy(root: &Path, id: &str, age: Duration) {
        let dir = copy_dir(root, id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        File::open(&dir)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    fn partial_container(root: &Path, id: &str, with_state: bool) {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        if with_state {
            std::fs::write(dir.join("state.json"), "{}").unwrap();
        }
    }

    #[test]
    fn a_killed_creates_copy_and_stateless_container_are_swept() {
        let root = tempfile::tempdir().unwrap();
        abandoned_copy(root.path(), "fn-1", Duration::from_secs(60));
        partial_container(root.path(), "fn-1", false);
        sweep(root.path(), SWEEP_AFTER).unwrap();
        assert!(!copy_dir(root.path(), "fn-1").exists());
        assert!(!root.path().join("fn-1").exists());
    }

    #[test]
    fn a_container_with_state_stays_for_the_driver_to_delete() {
        let root = tempfile::tempdir().unwrap();
        abandoned_copy(root.path(), "fn-1", Duration::from_secs(60));
        partial_container(root.path(), "fn-1", true);
        sweep(root.path(), SWEEP_AFTER).unwrap();
        assert!(!copy_dir(root.path(), "fn-1").exists());
        assert!(root.path().join("fn-1/state.json").exists());
    }

    #[test]
    fn a_running_creates_copy_stays_however_old() {
        let root = tempfile::tempdir().unwrap();
        let copy = SpecCopy::write(root.path(), "fn-1", &json!({"ociVersion": "1.0.2"})).unwrap();
        File::open(copy.dir())
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        partial_container(root.path(), "fn-1", false);
        sweep(root.path(), SWEEP_AFTER).unwrap();
        remove_leftovers(root.path(), "fn-1").unwrap();
        assert!(copy.dir().join("config.json").exists());
        assert!(root.path().join("fn-1").exists());
        // A second create of the same id is refused while the first holds the copy.
        let second = SpecCopy::write(root.path(), "fn-1", &json!({}));
        assert!(second.is_err_and(|e| format!("{e:#}").contains("another create")));
        drop(copy);
        assert!(!copy_dir(root.path(), "fn-1").exists());
    }

    #[test]
    fn a_young_copy_is_left_to_its_create_by_a_sweep() {
        let root = tempfile::tempdir().unwrap();
        abandoned_copy(root.path(), "fn-1", Duration::ZERO);
        sweep(root.path(), SWEEP_AFTER).unwrap();
        assert!(copy_dir(root.path(), "fn-1").exists());
        // Deleting that container removes it at once: its create has ended.
        remove_leftovers(root.path(), "fn-1").unwrap();
        assert!(!copy_dir(root.path(), "fn-1").exists());
    }

    #[test]
    fn other_entries_are_not_touched() {
        let root = tempfile::tempdir().unwrap();
        partial_container(root.path(), "fn-2", false);
        std::fs::create_dir_all(root.path().join(".bundle-..")).unwrap();
        sweep(root.path(), Duration::ZERO).unwrap();
        assert!(root.path().join("fn-2").exists());
        assert!(root.path().join(".bundle-..").exists());
    }
}
