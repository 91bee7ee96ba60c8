//! User namespaces: container root as an unprivileged host uid range ([`IdMap`]).
//!
//! runc makes each container's user namespace from the spec's `uidMappings`/`gidMappings`. The
//! files of the image layers, however, are owned by host root (they were extracted as root);
//! seen from the container's namespace they would belong to nobody. The layers are not
//! changed for that: each instance mounts *idmapped* views of them (`mount_setattr` with
//! `MOUNT_ATTR_IDMAP`, Linux 5.12; overlayfs accepts idmapped lower layers since 5.19), in
//! which host uid `n` appears as `host_base + n`, and composes its overlay from those. So one
//! image store serves runc with a user namespace and runsc without, and a store written by an
//! older faasbox needs no migration. What the function writes lands in the overlay's upper
//! directory owned by the mapped ids (`host_base + uid`).
//!
//! An idmapped mount needs a user namespace carrying the mapping: [`Userns::create`] makes one
//! at start (a child cloned into a new user namespace, whose maps this process writes, and
//! which is killed once its namespace is held by a file descriptor).
//!
//! A layer's view is mounted on a directory of the instance (`lower/<n>`) for the overlay
//! mount and unmounted right after it: the overlay keeps private references to its layers.
//! Kernels before 6.15 do not take detached mounts as overlay layers, hence the attaching.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::MntFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;

use crate::IdMap;
use faasbox_driver::DriverError;

/// A user namespace with the driver's id mapping, held open for making idmapped mounts.
#[derive(Debug)]
pub(crate) struct Userns {
    map: IdMap,
    fd: OwnedFd,
}

impl Userns {
    /// Makes a user namespace mapping container ids `0..size` to `host_base..`.
    pub(crate) fn create(map: IdMap) -> Result<Userns, String> {
        if map.size == 0 || map.host_base.checked_add(map.size).is_none() {
            return Err(format!(
                "the id range {}+{} is empty or beyond the largest id",
                map.host_base, map.size
            ));
        }
        let mut stack = vec![0u8; 64 * 1024];
        let child = Box::new(|| -> isize {
            // Runs in the cloned child (a copy of this process without other threads), where
            // only async-signal-safe calls are allowed: prctl and pause are system calls
            // without allocation or locks.
            // SAFETY: prctl with integer arguments only.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            loop {
                // SAFETY: pause takes no arguments.
                unsafe {
                    libc::pause();
                }
            }
        });
        // SAFETY: the child runs only the closure above on its own stack (a copy of the
        // address space, no CLONE_VM), so it touches nothing this process's threads use; it is
        // killed and reaped below.
        let pid = unsafe {
            nix::sched::clone(
                child,
                &mut stack,
                CloneFlags::CLONE_NEWUSER,
                Some(libc::SIGCHLD),
            )
        }
        .map_err(|e| format!("cannot create a user namespace: {e}"))?;
        let made = (|| {
            let line = format!("0 {} {}\n", map.host_base, map.size);
            for file in ["uid_map", "gid_map"] {
                std::fs::write(format!("/proc/{pid}/{file}"), &line)
                    .map_err(|e| format!("cannot write the user namespace's {file}: {e}"))?;
            }
            File::open(format!("/proc/{pid}/ns/user"))
                .map(OwnedFd::from)
                .map_err(|e| format!("cannot open the user namespace: {e}"))
        })();
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        Ok(Userns { map, fd: made? })
    }

    pub(crate) fn map(&self) -> IdMap {
        self.map
    }

    /// Checks that overlayfs can be composed of idmapped layers from `dir`'s file system:
    /// mounts a one-layer overlay in a scratch directory below `dir` and removes it again.
    pub(crate) fn probe(&self, dir: &Path) -> Result<(), String> {
        let scratch = dir.join(format!(".userns-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let result = self.probe_in(&scratch);
        for mount in [scratch.join("merged"), scratch.join("lower/0")] {
            let _ = nix::mount::umount2(&mount, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn probe_in(&self, scratch: &Path) -> Result<(), String> {
        let layer = scratch.join("layer");
        let (upper, work, merged) = (
            scratch.join("upper"),
            scratch.join("work"),
            scratch.join("merged"),
        );
        for sub in [&layer, &upper, &work, &merged] {
            std::fs::create_dir_all(sub)
                .map_err(|e| format!("cannot create {}: {e}", sub.display()))?;
        }
        std::fs::write(layer.join("file"), b"x")
            .map_err(|e| format!("cannot write in {}: {e}", layer.display()))?;
        let lower = self
            .attach_layers(&[layer], &scratch.join("lower"))
            .map_err(|e| e.to_string())?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower[0].display(),
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|e| format!("overlayfs refuses idmapped layers ({e}; it needs Linux 5.19)"))?;
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(merged.join("file")).map_err(|e| e.to_string())?,
        );
        if owner != self.map.host_base {
            return Err(format!(
                "an idmapped layer shows host root's file as uid {owner}, not {}",
                self.map.host_base
            ));
        }
        Ok(())
    }

    /// Mounts an idmapped view of each layer at `dir/<n>` (n counting from 0, bottom first) and
    /// returns those paths in the same order. On failure the views mounted so far stay mounted
    /// (the instance's teardown unmounts everything below its directory).
    pub(crate) fn attach_layers(
        &self,
        layers: &[PathBuf],
        dir: &Path,
    ) -> Result<Vec<PathBuf>, DriverError> {
        let mut views = Vec::with_capacity(layers.len());
        for (index, layer) in layers.iter().enumerate() {
            let target = dir.join(index.to_string());
            std::fs::create_dir_all(&target)
                .map_err(|e| DriverError::io(format!("cannot create {}", target.display()), e))?;
            let error = |step: &str, e: std::io::Error| DriverError::Mount {
                target: target.clone(),
                message: format!(
                    "cannot {step} an idmapped view of the image layer {}: {e}",
                    layer.display()
                ),
            };
            let tree = open_tree(layer).map_err(|e| error("clone", e))?;
            set_idmap(tree.as_fd(), self.fd.as_fd()).map_err(|e| error("idmap", e))?;
            move_mount(tree.as_fd(), &target).map_err(|e| error("mount", e))?;
            views.push(target);
        }
        Ok(views)
    }
}

/// Unmounts the layer views below `dir` (after the overlay took its own references) and
/// removes their directories. Best effort: a view left mounted is found by the teardown.
pub(crate) fn detach_layers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let _ = nix::mount::umount2(&path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&path);
    }
    let _ = std::fs::remove_dir(dir);
}

fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the path contains a NUL byte"))
}

/// `open_tree(path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)`: a detached copy of the mount at
/// `path` (not recursive: a layer directory holds no mounts).
fn open_tree(path: &Path) -> std::io::Result<OwnedFd> {
    let path = c_path(path)?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    // SAFETY: `path` is a NUL-terminated string that outlives the call; the kernel returns a
    // new file descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::other("file descriptor too large"))?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mount_setattr(tree, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP, userns})`.
fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> std::io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: both descriptors are open for the duration of the call; the empty path and the
    // attribute struct (with its exact size) outlive it. The kernel only reads them.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attaches the detached
/// mount at `target`.
fn move_mount(tree: BorrowedFd<'_>, target: &Path) -> std::io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: the descriptor is open and both strings are NUL-terminated and outlive the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
