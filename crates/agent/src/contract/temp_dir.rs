//! The per-call temporary directory (`<temp_root>/<aid>`, handed to the function as
//! `Direktiv-TempDir`), holding the call's files, removed when the call ends.
//!
//! The root is held open ([`CallRoot`]) once it exists, and a call's empty directory is made,
//! opened to all and removed relative to it (`mkdirat`, `fchmodat`, `unlinkat`): walking
//! `<temp_root>` through the instance's overlay three times per call was a tenth of the
//! agent's work under load.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::sys::stat::{fchmodat, mkdirat, FchmodatFlags, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use faasbox_proto::{CallFile, ProcessUser, CODE_CALL_FILES};

use super::{call_files, CallResult};

/// Where the calls' temp dirs are made (`temp_root`); clones share the open directory.
#[derive(Debug, Clone)]
pub struct CallRoot(Arc<RootInner>);

#[derive(Debug)]
struct RootInner {
    path: PathBuf,
    /// The root, open once it was made; forgotten when it stops working (the function removed
    /// it), to be made and opened again.
    open: Mutex<Option<Arc<OwnedFd>>>,
}

impl CallRoot {
    pub fn new(path: impl Into<PathBuf>) -> CallRoot {
        CallRoot(Arc::new(RootInner {
            path: path.into(),
            open: Mutex::new(None),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Arc<OwnedFd>>> {
        self.0
            .open
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The root open, made and opened first if it is not yet.
    pub(super) fn open(&self) -> io::Result<Arc<OwnedFd>> {
        if let Some(fd) = self.held().as_ref() {
            return Ok(Arc::clone(fd));
        }
        fs::create_dir_all(self.path())?;
        let fd = Arc::new(OwnedFd::from(fs::File::open(self.path())?));
        *self.held() = Some(Arc::clone(&fd));
        Ok(fd)
    }

    /// The root as it is open now, if it is.
    pub(super) fn opened(&self) -> Option<Arc<OwnedFd>> {
        self.held().clone()
    }

    fn forget(&self) {
        *self.held() = None;
    }
}

/// A call's temp dir; removed by [`CallDir::remove`], or in the background when dropped.
#[derive(Debug)]
pub struct CallDir {
    path: PathBuf,
    /// The root it was made in, open, and its name there: removed relative to it.
    made_in: Option<(Arc<OwnedFd>, String)>,
    removed: bool,
}

impl CallDir {
    /// Creates `<root>/<aid>` with the call's `files` in it (owned by `user`), and then makes it
    /// world-writable (0777), so a function running as any user can write there. `aid` must
    /// already be a safe file name. A file that cannot be placed is the catchable
    /// `CODE_CALL_FILES`, a directory that cannot be made a crash.
    pub async fn prepare(
        root: &CallRoot,
        aid: &str,
        files: &[CallFile],
        user: Option<&ProcessUser>,
    ) -> Result<CallDir, CallResult> {
        let crash =
            |e: io::Error| CallResult::crash(format!("cannot create the call's temp dir {e}"));
        if files.is_empty() {
            // Nothing to place first: made open to all at once (the common call; a mkdir and
            // chmods on the instance's overlay are a good share of the agent's work per call).
            return Self::create_open(root, aid).map_err(crash);
        }
        let dir = Self::create_private(root.path(), aid).map_err(crash)?;
        // A failed call answers only once its directory is gone, as one that ran does.
        if let Err(failed) = place_files(dir.path(), files, user).await {
            dir.remove().await;
            return Err(failed);
        }
        if let Err(e) = dir.open_to_all() {
            dir.remove().await;
            return Err(crash(e));
        }
        Ok(dir)
    }

    /// `<root>/<aid>`, world-writable: one `mkdirat` in the open root (and an `fchmodat` unless
    /// the agent's umask leaves 0777 as it is); on any failure (no root yet, a leftover
    /// directory, the root removed) by the paths, as with files.
    fn create_open(root: &CallRoot, aid: &str) -> io::Result<CallDir> {
        let path = root.path().join(aid);
        if let Ok(fd) = root.open() {
            let all = Mode::from_bits_truncate(0o777);
            let made = mkdirat(&*fd, aid, all).and_then(|()| {
                if umask_is_zero() {
                    Ok(())
                } else {
                    fchmodat(&*fd, aid, all, FchmodatFlags::FollowSymlink)
                }
            });
            match made {
                Ok(()) => {
                    return Ok(CallDir {
                        path,
                        made_in: Some((fd, aid.to_owned())),
                        removed: false,
                    })
                }
                // The root is gone (or no longer a directory): made again below.
                Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => root.forget(),
                Err(_) => {}
            }
        }
        let dir = Self::create_private(root.path(), aid)?;
        dir.open_to_all()?;
        Ok(dir)
    }

    /// `<root>/<aid>`, accessible to root only for now.
    fn create_private(root: &Path, aid: &str) -> io::Result<CallDir> {
        let path = root.join(aid);
        fs::create_dir_all(&path)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o700)))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(CallDir {
            path,
            made_in: None,
            removed: false,
        })
    }

    fn open_to_all(&self) -> io::Result<()> {
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o777))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory and everything in it: an empty one (the common call) with one
    /// `unlinkat` (or `rmdir`) here, one with something in it off the async threads.
    pub async fn remove(mut self) {
        self.removed = true;
        let gone = match &self.made_in {
            Some((root, name)) => {
                unlinkat(&**root, name.as_str(), UnlinkatFlags::RemoveDir).is_ok()
            }
            None => fs::remove_dir(&self.path).is_ok(),
        };
        if gone {
            return;
        }
        let path = self.path.clone();
        if let Err(err) = tokio::fs::remove_dir_all(&path).await {
            report(&path, &err);
        }
    }
}

impl Drop for CallDir {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let path = std::mem::take(&mut self.path);
        let remove = move || {
            if let Err(err) = fs::remove_dir_all(&path) {
                report(&path, &err);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// Places the call's `files` in `dir` off the async threads (an archive may be large); a
/// failure is the catchable `CODE_CALL_FILES`.
pub async fn place_files(
    dir: &Path,
    files: &[CallFile],
    user: Option<&ProcessUser>,
) -> Result<(), CallResult> {
    if files.is_empty() {
        return Ok(());
    }
    let (dir, files, user) = (dir.to_owned(), files.to_vec(), user.cloned());
    tokio::task::spawn_blocking(move || call_files::place_all(&dir, &files, user.as_ref()))
        .await
        .unwrap_or_else(|e| Err(format!("placing the files failed: {e}")))
        .map_err(|e| {
            CallResult::error(
                CODE_CALL_FILES,
                format!("the call's files cannot be placed: {e}"),
            )
        })
}

/// Whether the agent's umask is 0 (read once from `/proc/self/status`; not known is not 0).
fn umask_is_zero() -> bool {
    static ZERO: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ZERO.get_or_init(|| {
        fs::read_to_string("/proc/self/status").is_ok_and(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|mask| u32::from_str_radix(mask.trim(), 8).ok())
                == Some(0)
        })
    })
}

fn report(path: &Path, err: &io::Error) {
    if err.kind() != io::ErrorKind::NotFound {
        eprintln!(
            "faasbox-agent: cannot remove the call directory {}: {err}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_world_writable_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = CallDir::prepare(
            &CallRoot::new(root.path().join("calls")),
            "aid-1",
            &[],
            None,
        )
        .await
        .unwrap();
        let path = dir.path().to_owned();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o777
        );
        fs::write(path.join("f"), b"x").unwrap();
        dir.remove().await;
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn made_in_the_open_root_and_again_after_the_root_was_removed() {
        let base = tempfile::tempdir().unwrap();
        let calls = base.path().join("calls");
        let root = CallRoot::new(&calls);
        let first = CallDir::prepare(&root, "aid-1", &[], None).await.unwrap();
        assert!(
            first.made_in.is_some(),
            "not made relative to the open root"
        );
        assert!(calls.join("aid-1").is_dir());
        first.remove().await;
        assert!(!calls.join("aid-1").exists());

        // The function removed the root: the next call makes it again, by its path.
        fs::remove_dir(&calls).unwrap();
        let second = CallDir::prepare(&root, "aid-2", &[], None).await.unwrap();
        assert_eq!(second.path(), calls.join("aid-2"));
        assert_eq!(
            fs::metadata(second.path()).unwrap().permissions().mode() & 0o777,
            0o777
        );
        second.remove().await;
        assert!(!calls.join("aid-2").exists());

        // And the one after that is made in the root opened again.
        let third = CallDir::prepare(&root, "aid-3", &[], None).await.unwrap();
        assert!(third.made_in.is_some());
        assert!(calls.join("aid-3").is_dir());
        // Something left in it: removed off the async threads, by its path.
        fs::write(third.path().join("left"), b"x").unwrap();
        third.remove().await;
        assert!(!calls.join("aid-3").exists());
    }

    #[tokio::test]
    async fn prepared_with_files_or_a_catchable_error() {
        use base64::Engine as _;
        let root = tempfile::tempdir().unwrap();
        let file = |name: &str| CallFile {
            name: name.into(),
            kind: faasbox_proto::CallFileKind::File,
            data: base64::engine::general_purpose::STANDARD.encode("content"),
        };
        let call_root = CallRoot::new(root.path());
        let dir = CallDir::prepare(&call_root, "aid-2", &[file("in.txt")], None)
            .await
            .unwrap();
        assert_eq!(fs::read(dir.path().join("in.txt")).unwrap(), b"content");
        assert_eq!(
            fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
            0o777
        );
        dir.remove().await;
        let Err(failed) = CallDir::prepare(&call_root, "aid-3", &[file("../x")], None).await else {
            panic!("a name with .. was placed");
        };
        assert_eq!(failed.code.as_deref(), Some(CODE_CALL_FILES));
        assert!(
            failed.message.as_deref().unwrap().contains("file '../x'"),
            "{failed:?}"
        );
    }
}
