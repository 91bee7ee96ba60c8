//! Storing an [`ImportPlan`] — what file imports (`import.rs`) and registry pulls
//! (`registry/pull.rs`) share: layer blobs are verified and put into `blobs/`, layers are
//! extracted (once per diff ID) into `layers/`, the config and manifest are stored, and the
//! name is recorded last.
//!
//! A [`Session`] owns the import's scratch directory `tmp/<uuid>/` and the
//! garbage-collection pins of everything it stores; dropping it removes the
//! one and releases the other. [`run`] runs one session.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::compress::{decompress, sniff_file, Compression};
use crate::config::{self, appended_config, rootfs_config};
use crate::copy::{copy_to_file, CopyError, COPY_BUF_SIZE};
use crate::digest::{sha256_hex, sha256_of, HashingReader, HashingWriter};
use crate::error::{io_err, ImageError};
use crate::extract::extract_layer;
use crate::formats::{ConfigSource, ImportPlan, LayerSource};
use crate::index::StoredContent;
use crate::manifest::{synthesize, LayerRef};
use crate::remove::remove_any;
use crate::store::{hex_of, pin_key, ImageStore, PinKind};
use crate::{ImageRecord, LayerInfo, Scope};

/// Runs one import in a fresh [`Session`] of `store`; a failed import's leftovers (blobs and
/// layers it stored before failing, which nothing refers to) are garbage-collected.
pub(crate) fn run(
    store: &ImageStore,
    work: impl FnOnce(&mut Session<'_>) -> Result<ImageRecord, ImageError>,
) -> Result<ImageRecord, ImageError> {
    let result = {
        let mut session = Session::new(store)?;
        work(&mut session)
    };
    // The session is gone: its scratch space is removed and its pins released.
    if result.is_err() {
        if let Err(e) = store.collect_garbage() {
            tracing::warn!(error = %e, "cleaning up after a failed import failed");
        }
    }
    result
}

/// One running import.
pub(crate) struct Session<'a> {
    store: &'a ImageStore,
    scratch: PathBuf,
    pins: Vec<String>,
    counter: usize,
    /// Record the name for global services only (see `NameEntry::services_only`).
    pub(crate) services_only: bool,
    /// Device nodes under `/dev` skipped in the layers this import extracted.
    skipped_devices: u64,
}

impl<'a> Session<'a> {
    pub(crate) fn new(store: &'a ImageStore) -> Result<Session<'a>, ImageError> {
        let scratch = store
            .tmp_dir()
            .join(uuid::Uuid::new_v4().simple().to_string());
        fs::create_dir(&scratch).map_err(io_err("create directory", &scratch))?;
        Ok(Session {
            store,
            scratch,
            pins: Vec::new(),
            counter: 0,
            services_only: false,
            skipped_devices: 0,
        })
    }

    /// A fresh, not yet existing path in the scratch directory.
    pub(crate) fn scratch_path(&mut self, prefix: &str) -> PathBuf {
        self.counter += 1;
        self.scratch.join(format!("{prefix}-{}", self.counter))
    }

    fn pin(&mut self, kind: PinKind, hex: &str) {
        let key = pin_key(kind, hex);
        self.store.pin(&key);
        self.pins.push(key);
    }

    /// The content stored under manifest digest `digest` (named, or kept by a hold), with its
    /// config blob, layer blobs and layers pinned for this session — looked up and pinned under
    /// one lock, so a garbage collection cannot take them between the two. `None` when the
    /// store has no such content.
    pub(crate) fn pin_content(&mut self, digest: &str) -> Option<StoredContent> {
        let mut state = self.store.lock();
        let content = match state.table.contents.get(digest) {
            Some(content) => content.clone(),
            None => state.holds.get(digest)?.content.clone(),
        };
        let mut keys = vec![pin_key(PinKind::Blob, hex_of(&content.config_digest))];
        for layer in &content.layers {
            keys.push(pin_key(PinKind::Blob, hex_of(&layer.digest)));
            keys.push(pin_key(PinKind::Layer, hex_of(&layer.diff_id)));
        }
        for key in keys {
            *state.pins.entry(key.clone()).or_insert(0) += 1;
            self.pins.push(key);
        }
        Some(content)
    }

    /// Stores everything the plan names and records the image as `name` in `scope`'s table.
    pub(crate) fn import(
        &mut self,
        plan: ImportPlan,
        scope: &Scope,
        name: &str,
    ) -> Result<ImageRecord, ImageError> {
        let mut layers = Vec::with_capacity(plan.layers.len());
        let mut refs = Vec::with_capacity(plan.layers.len());
        for source in &plan.layers {
            let (digest, size) = self.store_layer_blob(source)?;
            let blob = self.store.blob_file(sha256_hex(&digest)?);
            let gzip = sniff_file(&blob)? == Compression::Gzip;
            let diff_id = self.ensure_layer(&blob, &digest, source)?;
            tracing::debug!(%digest, %diff_id, size, "layer stored");
            refs.push(LayerRef {
                digest: digest.clone(),
                size,
                gzip,
            });
            layers.push(LayerInfo {
                digest,
                diff_id,
                size,
            });
        }

        let (config_bytes, run) = match plan.config {
            ConfigSource::Document { bytes, parsed } => (bytes, parsed.run),
            ConfigSource::Rootfs(opts) => {
                let diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
                let bytes = rootfs_config(&opts, diff_ids)?;
                let run = config::parse(&bytes, "the generated image config")?.run;
                (bytes, run)
            }
            ConfigSource::Appended { base, changes } => {
                let diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
                let bytes = appended_config(&base, &changes, diff_ids)?;
                let run = config::parse(&bytes, "the appended image's config")?.run;
                (bytes, run)
            }
        };
        let config_digest = self.store_json(&config_bytes)?;

        let (manifest_bytes, digest) = match plan.manifest {
            Some(original) => original,
            None => {
                let bytes = synthesize(&config_digest, config_bytes.len() as u64, &refs)?;
                let digest = sha256_of(&bytes);
                (bytes, digest)
            }
        };
        self.store_json(&manifest_bytes)?;

        let content = StoredContent {
            digest,
            config: run,
            size: layers.iter().map(|l| l.size).sum(),
            layers,
            config_digest,
        };
        let mut record = self
            .store
            .record(scope, name, content, self.services_only)?;
        tracing::info!(name = %record.name, digest = %record.digest, %scope, "image imported");
        if self.skipped_devices > 0 {
            record
                .notes
                .push(skipped_devices_note(self.skipped_devices));
        }
        Ok(record)
    }

    /// Puts a layer blob into `blobs/` after checking its digest and size;
    /// returns its digest and size.
    fn store_layer_blob(&mut self, source: &LayerSource) -> Result<(String, u64), ImageError> {
        if let Some(found) = self.own_blob(source)? {
            return Ok(found);
        }
        let (digest, size, staged) = if source.scratch {
            // Our own copy: hash it in place and hard-link it into the store.
            let (digest, size) = hash_file(&source.path)?;
            (digest, size, None)
        } else {
            // Someone else's file: copy it while hashing, so what is checked
            // is what is stored.
            let staged = self.scratch_path("blob");
            let (digest, size) = copy_hashing(&source.path, &staged)?;
            (digest, size, Some(staged))
        };
        if let Some(expected) = &source.digest {
            if *expected != digest {
                return Err(ImageError::DigestMismatch {
                    what: source.what.clone(),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        if let Some(expected) = source.size {
            if expected != size {
                return Err(ImageError::invalid(format!(
                    "{} is {size} bytes but the manifest says {expected}",
                    source.what
                )));
            }
        }
        let hex = sha256_hex(&digest)?.to_string();
        self.pin(PinKind::Blob, &hex);
        let dest = self.store.blob_file(&hex);
        if exists(&dest)? {
            return Ok((digest, size));
        }
        match staged {
            Some(staged) => place(&staged, &dest)?,
            None => match fs::hard_link(&source.path, &dest) {
                Ok(()) => {
                    crate::private::seal(&dest).map_err(io_err("restrict the mode of", &dest))?
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    tracing::debug!(error = %e, "hard link into the store failed; copying");
                    let staged = self.scratch_path("blob");
                    let (copied, _) = copy_hashing(&source.path, &staged)?;
                    if copied != digest {
                        return Err(ImageError::invalid(format!(
                            "{} changed while it was being imported",
                            source.what
                        )));
                    }
                    place(&staged, &dest)?;
                }
            },
        }
        Ok((digest, size))
    }

    /// A layer blob that is already the store's own (a base image's layer in an appended
    /// image), verified when it was stored: pinned and taken as it is, not hashed again.
    fn own_blob(&mut self, source: &LayerSource) -> Result<Option<(String, u64)>, ImageError> {
        let Some(digest) = &source.digest else {
            return Ok(None);
        };
        let hex = sha256_hex(digest)?.to_string();
        let blob = self.store.blob_file(&hex);
        if source.path != blob {
            return Ok(None);
        }
        self.pin(PinKind::Blob, &hex);
        let size = fs::symlink_metadata(&blob)
            .map_err(io_err("inspect", &blob))?
            .len();
        if source.size.is_some_and(|expected| expected != size) {
            return Err(ImageError::CorruptStore {
                path: blob,
                reason: format!("it is {size} bytes, its image says {:?}", source.size),
            });
        }
        Ok(Some((digest.clone(), size)))
    }

    /// Makes sure the layer in `blob` (whose digest is `digest`) is
    /// extracted into `layers/`; returns its diff ID. A layer whose diff ID
    /// is known and already extracted is not extracted again — but the blob
    /// must still be shown to have that diff ID, or an image could claim
    /// any layer in the store by naming its diff ID.
    fn ensure_layer(
        &mut self,
        blob: &Path,
        digest: &str,
        source: &LayerSource,
    ) -> Result<String, ImageError> {
        if let Some(expected) = &source.diff_id {
            let hex = sha256_hex(expected)?.to_string();
            self.pin(PinKind::Layer, &hex);
            if exists(&self.store.layer_path(&hex))? {
                if digest == expected || self.store.knows_layer(digest, expected) {
                    return Ok(expected.clone());
                }
                let actual = uncompressed_digest(blob, &source.what)?;
                if actual == *expected {
                    return Ok(actual);
                }
                return Err(ImageError::DigestMismatch {
                    what: format!("the uncompressed {}", source.what),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let staged = self.scratch_path("layer");
        let extracted = extract_layer(blob, &staged, &source.what, &self.store.limits)?;
        self.skipped_devices += extracted.skipped_devices;
        if let Some(expected) = &source.diff_id {
            if *expected != extracted.diff_id {
                return Err(ImageError::DigestMismatch {
                    what: format!("the uncompressed {}", source.what),
                    expected: expected.clone(),
                    actual: extracted.diff_id,
                });
            }
        }
        let hex = sha256_hex(&extracted.diff_id)?.to_string();
        self.pin(PinKind::Layer, &hex);
        let dest = self.store.layer_path(&hex);
        if !exists(&dest)? {
            if let Err(e) = fs::rename(&staged, &dest) {
                // Another import may have placed the same layer meanwhile.
                if !exists(&dest)? {
                    return Err(ImageError::io("move layer into", &dest, e));
                }
            }
        }
        Ok(extracted.diff_id)
    }

    /// Stores a small document (config, manifest) as a blob; returns its digest.
    fn store_json(&mut self, bytes: &[u8]) -> Result<String, ImageError> {
        let digest = sha256_of(bytes);
        let hex = sha256_hex(&digest)?.to_string();
        self.pin(PinKind::Blob, &hex);
        let dest = self.store.blob_file(&hex);
        if !exists(&dest)? {
            let staged = self.scratch_path("json");
            crate::private::write(&staged, bytes).map_err(io_err("write", &staged))?;
            place(&staged, &dest)?;
        }
        Ok(digest)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Err(e) = remove_any(&self.scratch) {
            tracing::warn!(error = %e, "removing an import's scratch directory failed");
        }
        self.store.unpin(&self.pins);
    }
}

/// The import's note for `count` device nodes skipped under `/dev`.
pub(crate) fn skipped_devices_note(count: u64) -> String {
    let nodes = if count == 1 { "node" } else { "nodes" };
    format!(
        "skipped {count} device {nodes} under /dev (the runtime provides /dev; device nodes \
         elsewhere are refused)"
    )
}

fn exists(path: &Path) -> Result<bool, ImageError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ImageError::io("inspect", path, e)),
    }
}

/// Renames a staged file into the store; losing a race to an identical
/// file is fine.
fn place(staged: &Path, dest: &Path) -> Result<(), ImageError> {
    crate::private::seal(staged).map_err(io_err("restrict the mode of", staged))?;
    fs::rename(staged, dest).map_err(io_err("move blob into", dest))
}

fn hash_file(path: &Path) -> Result<(String, u64), ImageError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut reader = HashingReader::new(file);
    let mut buf = vec![0u8; COPY_BUF_SIZE];
    copy_to_file(&mut reader, &mut io::sink(), path, &mut buf).map_err(|e| match e {
        CopyError::Read(e) => ImageError::io("read", path, e),
        CopyError::Write(e) => e,
    })?;
    Ok(reader.finish())
}

fn copy_hashing(src: &Path, dest: &Path) -> Result<(String, u64), ImageError> {
    let mut input = File::open(src).map_err(io_err("open", src))?;
    let out = crate::private::create_file(dest).map_err(io_err("create", dest))?;
    let mut writer = HashingWriter::new(out);
    let mut buf = vec![0u8; COPY_BUF_SIZE];
    copy_to_file(&mut input, &mut writer, dest, &mut buf).map_err(|e| match e {
        CopyError::Read(e) => ImageError::io("read", src, e),
        CopyError::Write(e) => e,
    })?;
    let (_, digest, size) = writer.finish();
    Ok((digest, size))
}

/// `sha256:<hex>` of a layer blob's uncompressed content.
fn uncompressed_digest(blob: &Path, what: &str) -> Result<String, ImageError> {
    let file = File::open(blob).map_err(io_err("open", blob))?;
    let owned = blob.to_path_buf();
    let stream = decompress(file, what, move |e| ImageError::io("read", owned, e))?;
    let mut reader = HashingReader::new(stream);
    let mut buf = vec![0u8; COPY_BUF_SIZE];
    copy_to_file(&mut reader, &mut io::sink(), blob, &mut buf).map_err(|e| match e {
        CopyError::Read(e) => ImageError::invalid(format!("{what} cannot be decompressed: {e}")),
        CopyError::Write(e) => e,
    })?;
    Ok(reader.finish().0)
}
