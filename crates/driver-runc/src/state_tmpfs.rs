//! The driver's state directory on a tmpfs of its own. Every start writes a dozen small files
//! there (instance.json, the OCI spec, the agent's configuration, hosts, resolv.conf, pid
//! files, the runtime's own state) and every stop removes them. On a disk file system each of
//! those is an inode allocated and freed: on ext4 without a journal, allocating one scans past
//! every recently freed inode, which made writing them half of the server's CPU time in a
//! burst of starts, growing with the number of instances stopped before. Nothing in the
//! directory needs to outlive the host: a reboot ends every instance anyway.
//!
//! The mount is made when the driver is created and the directory holds no state (a first
//! start, or the empty directories a clean stop leaves), and undone at a clean stop once every
//! instance is gone, so the data directory can be removed or moved. A server killed leaves it
//! mounted, its instances inside: the next start on the same directory finds both, and its
//! cleanup removes them. A directory holding state of a run that did not stop cleanly and is
//! not on this tmpfs (made by a version before this one) stays where it is for that run; its
//! cleanup empties it and the next start mounts.

use std::path::Path;

/// The source name of the mount, which tells it apart from any other tmpfs in the mount table.
const SOURCE: &str = "faasbox-state";

/// Mount options: the directory's usual mode; at most a tenth of the memory (the files are
/// the driver's own, a few dozen KiB per instance; no container can write to them).
const OPTIONS: &str = "mode=0755,size=10%";

/// Where the state directory lives after [`prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateFs {
    /// On the tmpfs of this module (mounted now, or by an earlier run).
    Tmpfs,
    /// On a tmpfs the host provides (`/run` or `/tmp` is one on many hosts).
    HostTmpfs,
    /// On its file system: it held state of an earlier run (see the module's doc).
    LeftOnDisk,
    /// On its file system: the tmpfs could not be mounted (why; the driver works there too,
    /// its starts and stops only cost more).
    MountFailed(nix::errno::Errno),
}

/// Mounts the tmpfs on `dir` (the canonical state directory) unless it is on one already.
pub(crate) fn prepare(dir: &Path) -> StateFs {
    if is_own_mount(dir) {
        return StateFs::Tmpfs;
    }
    if on_tmpfs(dir) {
        return StateFs::HostTmpfs;
    }
    if holds_state(dir) {
        return StateFs::LeftOnDisk;
    }
    match nix::mount::mount(
        Some(SOURCE),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some(OPTIONS),
    ) {
        Ok(()) => StateFs::Tmpfs,
        Err(errno) => StateFs::MountFailed(errno),
    }
}

/// Unmounts the tmpfs from `dir` when it is this module's and nothing is left in it but empty
/// directories. Best effort: what stays mounted, the next start on `dir` uses.
pub(crate) fn release(dir: &Path) {
    if !is_own_mount(dir) || holds_state(dir) {
        return;
    }
    // Detached rather than unmounted: a network helper killed a moment ago may not have
    // exited yet and still hold its log open in there (the mount is busy until it has).
    if let Err(errno) = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
        tracing::debug!(dir = %dir.display(), %errno, "the state tmpfs stays mounted");
    }
}

/// True when `dir` is the mount point of a tmpfs named [`SOURCE`].
fn is_own_mount(dir: &Path) -> bool {
    super::overlay::mount_table().is_ok_and(|table| {
        table.iter().any(|entry| {
            entry.fstype == "tmpfs" && entry.source == SOURCE && entry.mount_point == dir
        })
    })
}

fn on_tmpfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

/// True when `dir` holds anything but empty directories (one level down: the instances
/// directory and the runtimes' roots).
fn holds_state(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        !is_dir || std::fs::read_dir(entry.path()).map_or(true, |mut inner| inner.next().is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_directories_are_no_state_and_anything_else_is() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!holds_state(tmp.path()));
        std::fs::create_dir_all(tmp.path().join("instances")).unwrap();
        std::fs::create_dir_all(tmp.path().join("runc")).unwrap();
        assert!(!holds_state(tmp.path()));
        std::fs::create_dir_all(tmp.path().join("instances/fbx1-abc")).unwrap();
        assert!(holds_state(tmp.path()));
        std::fs::remove_dir(tmp.path().join("instances/fbx1-abc")).unwrap();
        std::fs::write(tmp.path().join("stray"), "x").unwrap();
        assert!(holds_state(tmp.path()));
    }

    /// A tmpfs that cannot be mounted is no error: the state stays on disk, and why is told.
    #[test]
    fn a_failed_mount_leaves_the_state_on_disk_with_the_reason() {
        let missing = Path::new("/nonexistent/faasbox-state-test");
        assert_eq!(
            prepare(missing),
            StateFs::MountFailed(nix::errno::Errno::ENOENT)
        );
        release(missing);
    }
}
