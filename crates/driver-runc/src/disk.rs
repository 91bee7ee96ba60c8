//! The instance's bounded writable space: one tmpfs per instance, of the spec's `disk` size,
//! holding everything the container can write that outlives a process — the overlay's upper
//! and work directories (so `/tmp` and every file the function writes or changes in its root
//! filesystem), the spec's scratch directories (the file contract's `/direktiv-data`) and the
//! agent's socket directory. A function that fills it gets `ENOSPC`, never the host's disk.
//!
//! Why a tmpfs: mounting one costs microseconds (a file system image or a quota would cost a
//! `mkfs` or need a particular host file system), and it is freed with the instance. Its pages
//! are charged to the memory cgroup of the process that writes them, i.e. the instance's; the
//! spec module therefore sets the memory cgroup's limit to `memory + disk`, so filling the disk
//! ends in `ENOSPC` (the agent reports `faasbox.function.disk_full`) and not in an OOM kill.
//! The number of files is bounded too (one per 4 KiB, at least [`MIN_INODES`]), since every
//! inode costs kernel memory.
//!
//! The container's stdout and stderr (the agent's log, which a function can also write through
//! `/proc/1/fd/1`) go to a file on a second, small tmpfs ([`LOG_BYTES`]): on the host's disk it
//! would be unbounded, and on the instance's disk it would slowly fill the function's space
//! with what the agent echoes (the OpenWhisk contract's activation logs). A full log only
//! loses later lines; the platform reads it for the reason of a failed start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::mount::MsFlags;

use super::layout::InstanceDir;
use faasbox_driver::DriverError;

/// The smallest disk accepted (smaller specs get this much).
pub(crate) const MIN_DISK_BYTES: u64 = 64 * 1024;
/// Files and directories the disk may hold, at least.
const MIN_INODES: u64 = 1024;
/// One file or directory per this many bytes of disk.
const BYTES_PER_INODE: u64 = 4096;

/// The size of the tmpfs holding the agent's log.
pub(crate) const LOG_BYTES: u64 = 1024 * 1024;

/// Who owns what the container writes: container root as seen on the host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Mounts the instance's tmpfs of `size` bytes and makes its directories: `upper/` (the root
/// filesystem's top, owned by `owner`, mode 0755), `work/`, `sock/` (owned by `owner`, 0700),
/// `calls/` (the calls' temp dirs, owned by `owner`, 0755) and `scratch/<n>` for `scratch`
/// directories (owned by `owner`, 0755).
pub(crate) fn prepare(
    dir: &InstanceDir,
    size: u64,
    owner: Owner,
    scratch: usize,
) -> Result<(), DriverError> {
    let target = dir.disk();
    std::fs::create_dir_all(&target)
        .map_err(|e| DriverError::io(format!("cannot create {}", target.display()), e))?;
    let size = size.max(MIN_DISK_BYTES);
    let inodes = (size / BYTES_PER_INODE).max(MIN_INODES);
    let options = format!("size={size},nr_inodes={inodes},mode=0755");
    nix::mount::mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|errno| DriverError::Mount {
        target: target.clone(),
        message: format!("cannot mount the instance's disk (tmpfs {options}): {errno}"),
    })?;
    make_dir(&dir.upper(), 0o755, Some(owner))?;
    make_dir(&dir.work(), 0o700, None)?;
    make_dir(&dir.socket_dir(), 0o700, Some(owner))?;
    make_dir(&dir.calls_dir(), 0o755, Some(owner))?;
    for index in 0..scratch {
        make_dir(&dir.scratch(index), 0o755, Some(owner))?;
    }
    Ok(())
}

/// Mounts the small tmpfs the agent's log goes to.
pub(crate) fn prepare_log(dir: &InstanceDir) -> Result<(), DriverError> {
    let target = dir.log_dir();
    std::fs::create_dir_all(&target)
        .map_err(|e| DriverError::io(format!("cannot create {}", target.display()), e))?;
    let options = format!("size={LOG_BYTES},nr_inodes=16,mode=0700");
    nix::mount::mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(options.as_str()),
    )
    .map_err(|errno| DriverError::Mount {
        target,
        message: format!("cannot mount the instance's log (tmpfs {options}): {errno}"),
    })
}

fn make_dir(path: &Path, mode: u32, owner: Option<Owner>) -> Result<(), DriverError> {
    let failed =
        |e: std::io::Error| DriverError::io(format!("cannot create {}", path.display()), e);
    std::fs::create_dir_all(path).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(failed)?;
    if let Some(owner) = owner {
        std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid)).map_err(failed)?;
    }
    Ok(())
}
