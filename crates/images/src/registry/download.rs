//! Downloading one blob from a registry into `<root>/downloads/`, resuming
//! a partial download with an HTTP `Range` request, and handing the
//! verified blob to a pull's staging layout as a hard link.
//!
//! `oci-client` does the requests (its `pull_blob_stream_partial` sends the
//! `Range` header and says whether the registry honoured it); the bytes are
//! written and hashed here, because resuming means hashing the bytes already
//! on disk first and because a broken connection must leave them in place.
//! Files: `<hex>.partial` (unverified, growing) and `<hex>` (verified,
//! waiting for its image to be imported). One download per blob at a time:
//! the store's [`DownloadLocks`](crate::downloads::DownloadLocks).

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, SizedStream};
use oci_client::errors::DigestError;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::Connection;
use super::Progress;
use crate::copy::COPY_BUF_SIZE;
use crate::digest::sha256_hex;
use crate::error::{io_err, ImageError};
use crate::remove::remove_any;
use crate::store::ImageStore;

/// Bytes between two [`Progress::Bytes`] reports.
const PROGRESS_STEP: u64 = 256 * 1024;

/// A blob to download.
pub(crate) struct Blob<'a> {
    pub(crate) digest: &'a str,
    pub(crate) size: u64,
    /// How to name it in messages ("layer sha256:…").
    pub(crate) what: String,
    /// Whether to report [`Progress`] for it (layers, not the config).
    pub(crate) report: bool,
}

/// Puts the blob at `dest` (a path in a staging layout): linked from
/// `blobs/` when the store has it, from `downloads/` when an earlier pull
/// finished it, else downloaded (resuming a partial download).
pub(crate) async fn fetch(
    store: &ImageStore,
    conn: &Connection,
    blob: &Blob<'_>,
    dest: &Path,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), ImageError> {
    let hex = sha256_hex(blob.digest)?.to_string();
    let report = |p: Progress| {
        if blob.report {
            progress(p);
        }
    };
    report(Progress::LayerStarted {
        digest: blob.digest.to_string(),
        size: blob.size,
    });
    let stored = store.blob_file(&hex);
    let complete = store.downloads_dir().join(&hex);
    let mut present = link_if_present(&stored, dest).await?;
    if !present {
        let _guard = store.downloads.lock(&hex).await;
        // Another pull may have stored or downloaded it while we waited.
        present = link_if_present(&stored, dest).await? || link_if_present(&complete, dest).await?;
        if !present {
            download(store, conn, blob, &hex, &report).await?;
            if !link_if_present(&complete, dest).await? {
                return Err(ImageError::io(
                    "find the downloaded blob",
                    &complete,
                    io::ErrorKind::NotFound.into(),
                ));
            }
        }
    }
    if present {
        tracing::debug!(digest = blob.digest, "blob already here; not downloading");
    }
    report(Progress::Bytes {
        digest: blob.digest.to_string(),
        done: blob.size,
        size: blob.size,
    });
    report(Progress::LayerDone {
        digest: blob.digest.to_string(),
    });
    Ok(())
}

/// Removes the verified downloads of blobs whose image is now imported.
pub(crate) async fn forget(store: &ImageStore, digests: &[String]) {
    for digest in digests {
        let Ok(hex) = sha256_hex(digest) else {
            continue;
        };
        let _guard = store.downloads.lock(hex).await;
        let path = store.downloads_dir().join(hex);
        if let Err(e) = fs::remove_file(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "removing a finished download failed");
            }
        }
    }
}

/// Why one download attempt failed.
enum Failure {
    /// The bytes are complete but have the wrong digest; `resumed` says
    /// whether some of them came from an earlier attempt.
    Corrupt {
        resumed: bool,
        actual: String,
    },
    Error(ImageError),
}

impl From<ImageError> for Failure {
    fn from(e: ImageError) -> Self {
        Failure::Error(e)
    }
}

/// Downloads the blob into `downloads/<hex>` (verified). A corrupt result
/// that was resumed from an earlier partial download is retried once from
/// the start: the partial file may have been damaged (e.g. by a crash).
async fn download(
    store: &ImageStore,
    conn: &Connection,
    blob: &Blob<'_>,
    hex: &str,
    report: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), ImageError> {
    let dir = store.downloads_dir();
    let partial = dir.join(format!("{hex}.partial"));
    let complete = dir.join(hex);
    let mut retried = false;
    loop {
        match attempt(conn, blob, &partial, report).await {
            Ok(()) => break,
            Err(Failure::Corrupt { resumed, actual }) => {
                remove_any(&partial)?;
                if resumed && !retried {
                    tracing::warn!(
                        digest = blob.digest,
                        "resumed download is corrupt; starting over"
                    );
                    retried = true;
                    continue;
                }
                return Err(ImageError::RemoteDigestMismatch {
                    registry: conn.registry().to_string(),
                    what: blob.what.clone(),
                    expected: blob.digest.to_string(),
                    actual,
                });
            }
            Err(Failure::Error(e)) => return Err(e),
        }
    }
    fs::rename(&partial, &complete).map_err(io_err("move download to", &complete))
}

/// One request: continues `partial` where it ends (or starts it) and
/// verifies the result. A broken connection leaves the bytes received.
async fn attempt(
    conn: &Connection,
    blob: &Blob<'_>,
    partial: &Path,
    report: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), Failure> {
    let size = blob.size;
    let mut offset = file_len(partial)?;
    if offset > size {
        remove_any(partial)?;
        offset = 0;
    }
    let resumed = offset > 0;
    let mut hasher = if resumed {
        hash_prefix(partial, offset).await?
    } else {
        Sha256::new()
    };
    if offset < size {
        let (stream, append) = request(conn, blob, offset).await?;
        if !append && offset > 0 {
            tracing::debug!(
                digest = blob.digest,
                "the registry ignored the Range request; downloading the whole blob"
            );
            offset = 0;
            hasher = Sha256::new();
        }
        if resumed && append {
            tracing::info!(digest = blob.digest, offset, size, "resuming download");
        }
        receive(
            conn,
            blob,
            partial,
            stream,
            append,
            offset,
            &mut hasher,
            report,
        )
        .await?;
    } else if size == 0 {
        crate::private::create_file(partial).map_err(io_err("create", partial))?;
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != blob.digest {
        return Err(Failure::Corrupt { resumed, actual });
    }
    Ok(())
}

/// Asks for the blob from `offset`; returns the body and whether it starts
/// at `offset` (206) rather than at 0 (200).
async fn request(
    conn: &Connection,
    blob: &Blob<'_>,
    offset: u64,
) -> Result<(SizedStream, bool), ImageError> {
    let image = conn.image();
    let response = if offset > 0 {
        conn.client
            .pull_blob_stream_partial(&image, blob.digest, offset, None)
            .await
    } else {
        conn.client
            .pull_blob_stream(&image, blob.digest)
            .await
            .map(BlobResponse::Full)
    };
    match response.map_err(|e| conn.error(e))? {
        BlobResponse::Full(stream) => Ok((stream, false)),
        BlobResponse::Partial(stream) => Ok((stream, true)),
    }
}

/// Writes the body into `partial` (appending, or from scratch) while
/// hashing it.
#[allow(clippy::too_many_arguments)]
async fn receive(
    conn: &Connection,
    blob: &Blob<'_>,
    partial: &Path,
    mut stream: SizedStream,
    append: bool,
    offset: u64,
    hasher: &mut Sha256,
    report: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), Failure> {
    let size = blob.size;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .mode(crate::private::FILE_MODE)
        .open(partial)
        .await
        .map_err(io_err("create", partial))?;
    let mut done = offset;
    let mut reported = offset;
    let bytes = |done| Progress::Bytes {
        digest: blob.digest.to_string(),
        done,
        size,
    };
    report(bytes(done));
    let mut broken = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // oci-client checks the digest of a whole (200) body itself and
            // reports a mismatch as the stream's last item; ours says the same.
            Err(e) if is_digest_error(&e) => break,
            Err(e) => {
                broken = Some(e);
                break;
            }
        };
        if done + chunk.len() as u64 > size {
            drop(file);
            remove_any(partial)?;
            return Err(conn
                .failed(format!(
                    "it sent more than the {size} bytes the manifest gives for {}",
                    blob.what
                ))
                .into());
        }
        file.write_all(&chunk)
            .await
            .map_err(io_err("write", partial))?;
        hasher.update(&chunk);
        done += chunk.len() as u64;
        if done - reported >= PROGRESS_STEP {
            report(bytes(done));
            reported = done;
        }
    }
    file.flush().await.map_err(io_err("write", partial))?;
    if let Some(e) = broken {
        return Err(conn.interrupted(&blob.what, &e).into());
    }
    if done < size {
        let closed = io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the connection closed after {done} of {size} bytes"),
        );
        return Err(conn.interrupted(&blob.what, &closed).into());
    }
    file.sync_data().await.map_err(io_err("sync", partial))?;
    report(bytes(done));
    Ok(())
}

fn is_digest_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<DigestError>())
}

fn file_len(path: &Path) -> Result<u64, ImageError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(ImageError::io("inspect", path, e)),
    }
}

/// The hash state after the first `len` bytes of `path`.
async fn hash_prefix(path: &Path, len: u64) -> Result<Sha256, ImageError> {
    let path = path.to_path_buf();
    let work = move || {
        let file = fs::File::open(&path).map_err(io_err("open", &path))?;
        let mut reader = file.take(len);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; COPY_BUF_SIZE];
        loop {
            let n = reader.read(&mut buf).map_err(io_err("read", &path))?;
            if n == 0 {
                return Ok(hasher);
            }
            hasher.update(&buf[..n]);
        }
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ImageError::io("hash", Path::new("download"), io::Error::other(e)))?
}

/// Hard-links `src` to `dest` (copying when linking is impossible);
/// `false` when `src` does not exist.
async fn link_if_present(src: &Path, dest: &Path) -> Result<bool, ImageError> {
    match fs::hard_link(src, dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => {
            tracing::debug!(error = %e, "hard link failed; copying");
            match tokio::fs::copy(src, dest).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(ImageError::io("copy", src, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"abcdef").unwrap();
        let h = hash_prefix(&path, 3).await.unwrap();
        assert_eq!(
            format!("sha256:{}", hex::encode(h.finalize())),
            crate::digest::sha256_of(b"abc")
        );
    }
}
