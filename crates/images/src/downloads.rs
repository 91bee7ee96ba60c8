//! The store's `downloads/` directory, where registry pulls keep blobs between attempts
//! (`<hex>.partial` while incomplete, `<hex>` once verified): one lock per blob so two pulls
//! never write the same file, and the pruning of stale files that `ImageStore::open` does.
//! The downloading itself is the registry's (`registry/download.rs`).

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::digest::is_sha256_hex;
use crate::error::{io_err, ImageError};
use crate::remove::remove_any;

/// How long an unfinished download may sit untouched in `downloads/`
/// before `open` removes it.
pub const STALE_DOWNLOAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// One async lock per blob digest, so that two pulls never write the same
/// download file at once. Entries live only while someone holds or waits
/// for them.
#[derive(Debug, Default)]
pub(crate) struct DownloadLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl DownloadLocks {
    pub(crate) async fn lock(&self, hex: &str) -> DownloadGuard<'_> {
        let mutex = {
            let mut map = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(hex.to_string()).or_default())
        };
        let guard = Arc::clone(&mutex).lock_owned().await;
        DownloadGuard {
            locks: self,
            hex: hex.to_string(),
            mutex,
            guard: Some(guard),
        }
    }
}

/// Holds one blob's download lock.
pub(crate) struct DownloadGuard<'a> {
    locks: &'a DownloadLocks,
    hex: String,
    mutex: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for DownloadGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self
            .locks
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map's reference and ours: nobody else waits for this blob.
        if Arc::strong_count(&self.mutex) == 2 {
            map.remove(&self.hex);
        }
    }
}

/// Removes downloads untouched for [`STALE_DOWNLOAD`] and anything in the
/// directory that is not a download. Called by `ImageStore::open`.
pub(crate) fn prune_downloads(dir: &Path) -> Result<(), ImageError> {
    let now = SystemTime::now();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let hex = name.strip_suffix(".partial").unwrap_or(&name);
        let meta = entry.metadata().map_err(io_err("inspect", &path))?;
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let ours = meta.is_file() && is_sha256_hex(hex);
        if !ours || age > STALE_DOWNLOAD {
            tracing::info!(path = %path.display(), "removing a stale download");
            remove_any(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_recent_downloads_only() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "a".repeat(64);
        let partial = dir.path().join(format!("{hex}.partial"));
        let complete = dir.path().join(&hex);
        let junk = dir.path().join("junk");
        let old = dir.path().join(format!("{}.partial", "b".repeat(64)));
        for p in [&partial, &complete, &junk, &old] {
            fs::write(p, b"x").unwrap();
        }
        let long_ago = SystemTime::now() - STALE_DOWNLOAD - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        prune_downloads(dir.path()).unwrap();
        assert!(partial.exists() && complete.exists());
        assert!(!junk.exists() && !old.exists());
    }

    #[tokio::test]
    async fn download_locks_are_exclusive_and_forgotten() {
        let locks = DownloadLocks::default();
        let first = locks.lock("a").await;
        let waiting = async {
            let _second = locks.lock("a").await;
        };
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiting)
                .await
                .is_err(),
            "a second holder waits"
        );
        drop(first);
        waiting.await;
        let map = locks.locks.lock().unwrap();
        assert!(map.is_empty(), "no holders, no entries");
    }
}
