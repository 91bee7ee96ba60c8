//! The per-call temporary directory (`<temp_root>/<aid>`, handed to the function as
//! `Direktiv-TempDir`), removed when the call ends.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A call's temp dir; removed by [`CallDir::remove`], or in the background when dropped.
#[derive(Debug)]
pub struct CallDir {
    path: PathBuf,
    removed: bool,
}

impl CallDir {
    /// Creates `<root>/<aid>` with mode 0777, so a function running as any user can write there.
    /// `aid` must already be a safe file name.
    pub fn create(root: &Path, aid: &str) -> io::Result<CallDir> {
        let path = root.join(aid);
        fs::create_dir_all(&path)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o777)))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(CallDir {
            path,
            removed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory and everything in it.
    pub async fn remove(mut self) {
        self.removed = true;
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
        let dir = CallDir::create(&root.path().join("calls"), "aid-1").unwrap();
        let path = dir.path().to_owned();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o777
        );
        fs::write(path.join("f"), b"x").unwrap();
        dir.remove().await;
        assert!(!path.exists());
    }
}
