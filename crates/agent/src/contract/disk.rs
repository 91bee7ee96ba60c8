//! The instance's bounded disk as the agent sees it: whether it is full, and what a call that
//! ended with it full becomes.
//!
//! The platform gives every instance one size-bounded writable space (the root filesystem's
//! changes, `/tmp` and the per-call temp dirs, the file contract's data directory); its size
//! is `disk_limit_bytes` of the config. A function that fills it sees `ENOSPC` and usually fails
//! in its own way (a 500, an exit status, a traceback). Whatever it answered, a call that ends
//! with the disk full fails with the catchable [`CODE_DISK_FULL`], which says what happened and
//! how to fix it; the check runs before the call's temp dir is removed, so a temp dir that
//! filled the disk counts. A cancelled call stays cancelled.

use std::io;
use std::path::Path;

use faasbox_proto::CODE_DISK_FULL;

use super::temp_dir::CallRoot;
use super::{CallResult, CANCELLED};

/// The disk of this instance, probed where the calls' temp dirs are.
#[derive(Debug, Clone)]
pub struct Disk {
    probe: CallRoot,
    limit_bytes: u64,
}

impl Disk {
    /// The disk `probe` (or its nearest existing ancestor) is on, of `limit_bytes` (0: unknown).
    pub fn new(probe: &CallRoot, limit_bytes: u64) -> Disk {
        Disk {
            probe: probe.clone(),
            limit_bytes,
        }
    }

    /// Whether the disk is full: asked of the open root (`fstatvfs`) once it is open, without
    /// walking its path.
    pub fn is_full(&self) -> bool {
        match self.probe.opened() {
            Some(root) => nix::sys::statvfs::fstatvfs(&*root).is_ok_and(|stats| no_room(&stats)),
            None => is_full(self.probe.path()),
        }
    }

    /// `result`, unless the disk is full now: then the disk-full error.
    pub fn verdict(&self, result: CallResult) -> CallResult {
        let cancelled = result.message.as_deref() == Some(CANCELLED);
        if !cancelled && self.is_full() {
            self.full_error()
        } else {
            result
        }
    }

    /// The error of a call that filled the disk.
    pub fn full_error(&self) -> CallResult {
        CallResult::error(
            CODE_DISK_FULL,
            format!(
                "the function filled its disk ({}: everything it writes, /tmp and its temp \
                 dirs included); write less, or deploy it with a larger disk (--disk, `disk` \
                 in the spec)",
                bound(self.limit_bytes)
            ),
        )
    }
}

/// "its limit is 64 MiB", or what is known without a limit.
pub fn bound(limit_bytes: u64) -> String {
    if limit_bytes > 0 {
        format!("its limit is {}", human_bytes(limit_bytes))
    } else {
        "its filesystem is full".to_owned()
    }
}

/// Whether the filesystem of `path` (or of its nearest existing ancestor) has no block (or,
/// where it counts them, no inode) left.
pub fn is_full(path: &Path) -> bool {
    let mut probe = Some(path);
    while let Some(dir) = probe {
        match nix::sys::statvfs::statvfs(dir) {
            Ok(stats) => return no_room(&stats),
            Err(nix::errno::Errno::ENOENT) => probe = dir.parent(),
            Err(_) => return false,
        }
    }
    false
}

/// No block left, or (where the filesystem counts them) no inode.
fn no_room(stats: &nix::sys::statvfs::Statvfs) -> bool {
    stats.blocks_available() == 0 || (stats.files() > 0 && stats.files_available() == 0)
}

/// Whether an error means the disk is full.
pub fn is_no_space(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(nix::libc::ENOSPC) | Some(nix::libc::EDQUOT)
    )
}

/// "1 MiB", "512 KiB", "1000 bytes".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u32, &str); 3] = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in UNITS {
        // A whole number of units: at least one, and no bits below the unit.
        if n >> shift > 0 && n.trailing_zeros() >= shift {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_proto::InvokeStatus;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(512 * 1024), "512 KiB");
        assert_eq!(human_bytes(3 << 30), "3 GiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }

    #[test]
    fn a_disk_with_room_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::new(&CallRoot::new(dir.path().join("not/made/yet")), 1 << 20);
        assert!(!disk.is_full());
        let result = disk.verdict(CallResult::crash("boom"));
        assert_eq!(result.message.as_deref(), Some("boom"));
        let error = disk.full_error();
        assert_eq!(error.status, InvokeStatus::Error);
        assert_eq!(error.code.as_deref(), Some(CODE_DISK_FULL));
        assert!(error.message.unwrap().contains("its limit is 1 MiB"));
    }

    #[test]
    fn a_full_disk_wins_over_the_result_but_not_over_a_cancel() {
        if !nix::unistd::geteuid().is_root() {
            faasbox_test_registry::cannot_run("mounting a tmpfs needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("tmpfs");
        std::fs::create_dir(&mount).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &mount,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=64k"),
        )
        .unwrap();
        let calls = CallRoot::new(mount.join("calls"));
        let disk = Disk::new(&calls, 64 << 10);
        let filled = std::fs::write(mount.join("fill"), vec![1u8; 128 << 10]);
        assert!(is_no_space(&filled.unwrap_err()));
        assert!(
            disk.is_full(),
            "not seen through the path of a root not made yet"
        );
        calls.open().unwrap();
        assert!(calls.opened().is_some());
        assert!(disk.is_full(), "not seen through the open root");
        let result = disk.verdict(CallResult::crash("the function answered 500"));
        assert_eq!(result.code.as_deref(), Some(CODE_DISK_FULL));
        let cancelled = disk.verdict(CallResult::crash(CANCELLED));
        assert_eq!(cancelled.message.as_deref(), Some(CANCELLED));
        std::fs::remove_file(mount.join("fill")).unwrap();
        assert!(!disk.is_full());
        nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
}
