//! [`ImageStore`]: the store directory, its name table, and garbage
//! collection of blobs and layers no name refers to.
//!
//! Concurrency: one mutex guards the name table and a set of *pins* — the
//! blobs and layers that running imports have stored or are about to store.
//! Garbage collection runs under the mutex and spares pinned items, so an
//! import and a `remove` can run at the same time. Doomed items are first
//! renamed into `tmp/` under the mutex and deleted after it is released.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::archive::{self, ArchiveDir, ArchiveKind};
use crate::digest::{is_sha256_hex, sha256_hex};
use crate::error::{io_err, ImageError};
use crate::extract::ImportLimits;
use crate::formats::{docker, oci, rootfs, LayoutDir};
use crate::import::Session;
use crate::index::{self, Images, StoredImage};
use crate::private;
use crate::reference::normalize_reference;
use crate::registry::{self, DownloadLocks};
use crate::{ImageRecord, RootfsOptions};

const INDEX_FILE: &str = "images.json";

/// A content-addressed image store in one directory. `Send + Sync`; all
/// methods block.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    /// What one import may unpack.
    pub(crate) limits: ImportLimits,
    state: Mutex<State>,
    /// One lock per blob being downloaded from a registry.
    pub(crate) downloads: DownloadLocks,
}

#[derive(Debug, Default)]
struct State {
    images: Images,
    /// Pin key → number of running imports holding it.
    pins: HashMap<String, usize>,
}

/// What a pin protects from garbage collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinKind {
    Blob,
    Layer,
}

pub(crate) fn pin_key(kind: PinKind, hex: &str) -> String {
    match kind {
        PinKind::Blob => format!("blob:{hex}"),
        PinKind::Layer => format!("layer:{hex}"),
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, removes whatever an
    /// interrupted import left in `tmp/` and registry downloads untouched
    /// for a week, and deletes blobs and layers no image refers to.
    /// Recent partial downloads in `downloads/` are kept so a pull resumes.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        Self::open_with(root, ImportLimits::default())
    }

    /// [`ImageStore::open`] with bounds on what an import may unpack.
    pub fn open_with(
        root: impl Into<PathBuf>,
        limits: ImportLimits,
    ) -> Result<ImageStore, ImageError> {
        let root = root.into();
        let store = ImageStore {
            root,
            limits,
            state: Mutex::new(State::default()),
            downloads: DownloadLocks::default(),
        };
        for dir in [
            store.root.clone(),
            store.root.join("blobs"),
            store.blobs_dir(),
            store.layers_dir(),
            store.tmp_dir(),
            store.downloads_dir(),
        ] {
            private::create_dir(&dir).map_err(io_err("create directory", &dir))?;
        }
        for dir in [store.blobs_dir(), store.downloads_dir()] {
            private::restrict_tree(&dir).map_err(io_err("restrict the modes under", &dir))?;
        }
        if store.index_path().exists() {
            private::seal(&store.index_path())
                .map_err(io_err("restrict the mode of", &store.index_path()))?;
        }
        store.clear_tmp()?;
        registry::prune_downloads(&store.downloads_dir())?;
        let images = index::load(&store.index_path())?;
        store.lock().images = images;
        store.collect_garbage()?;
        Ok(store)
    }

    /// Imports an archive file: a `docker save` tar, an OCI image layout tar,
    /// or else a root filesystem tarball (configured by `rootfs`), each
    /// optionally gzip-compressed. The image is recorded as `name`
    /// (normalised), replacing any image of that name.
    pub fn import_archive(
        &self,
        archive: &Path,
        name: &str,
        rootfs: &RootfsOptions,
    ) -> Result<ImageRecord, ImageError> {
        let name = normalize_reference(name)?;
        let kind = archive::detect(archive)?;
        tracing::info!(archive = %archive.display(), %name, ?kind, "importing image archive");
        self.run_import(|session| {
            let plan = match kind {
                ArchiveKind::Docker => {
                    let dir = ArchiveDir::extract(
                        archive,
                        &session.scratch_path("archive"),
                        &self.limits,
                    )?;
                    docker::plan(&dir)?
                }
                ArchiveKind::OciLayout => {
                    let dir = ArchiveDir::extract(
                        archive,
                        &session.scratch_path("archive"),
                        &self.limits,
                    )?;
                    oci::plan(&dir, &name)?
                }
                ArchiveKind::Rootfs => rootfs::plan(archive, rootfs)?,
            };
            session.import(plan, &name)
        })
    }

    /// Imports an OCI image layout directory as `name` (normalised).
    pub fn import_oci_dir(&self, dir: &Path, name: &str) -> Result<ImageRecord, ImageError> {
        let name = normalize_reference(name)?;
        let layout = LayoutDir::new(dir)?;
        tracing::info!(dir = %dir.display(), %name, "importing OCI layout directory");
        self.run_import(|session| {
            let plan = oci::plan(&layout, &name)?;
            session.import(plan, &name)
        })
    }

    /// Imports an OCI image layout directory that the store itself wrote
    /// into its `tmp/` (a pulled image): its blobs are hard-linked into the
    /// store rather than copied. `name` is already normalised.
    pub(crate) fn import_own_layout(
        &self,
        dir: &Path,
        name: &str,
    ) -> Result<ImageRecord, ImageError> {
        let layout = LayoutDir::own(dir)?;
        self.run_import(|session| {
            let plan = oci::plan(&layout, name)?;
            session.import(plan, name)
        })
    }

    fn run_import(
        &self,
        work: impl FnOnce(&mut Session<'_>) -> Result<ImageRecord, ImageError>,
    ) -> Result<ImageRecord, ImageError> {
        let result = {
            let mut session = Session::new(self)?;
            work(&mut session)
        };
        // The session is gone: its scratch space is removed and its pins
        // released. A failed import may have stored blobs and layers before
        // failing; nothing refers to them.
        if result.is_err() {
            if let Err(e) = self.collect_garbage() {
                tracing::warn!(error = %e, "cleaning up after a failed import failed");
            }
        }
        result
    }

    /// The image with this name (normalised) or manifest digest
    /// (`sha256:<hex>` or bare hex). When several names share a digest, the
    /// first by name is returned. A string that is not a valid reference
    /// names no image: `Ok(None)`.
    pub fn get(&self, name_or_digest: &str) -> Result<Option<ImageRecord>, ImageError> {
        if let Some(digest) = as_digest(name_or_digest) {
            let state = self.lock();
            return Ok(state
                .images
                .values()
                .find(|i| i.record.digest == digest)
                .map(|i| i.record.clone()));
        }
        let Ok(name) = normalize_reference(name_or_digest) else {
            return Ok(None);
        };
        Ok(self.lock().images.get(&name).map(|i| i.record.clone()))
    }

    /// Like [`get`](Self::get), but a missing image is
    /// [`ImageError::NotFound`].
    pub fn require(&self, name_or_digest: &str) -> Result<ImageRecord, ImageError> {
        self.get(name_or_digest)?
            .ok_or_else(|| ImageError::NotFound(name_or_digest.to_string()))
    }

    /// All images, sorted by name.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self
            .lock()
            .images
            .values()
            .map(|i| i.record.clone())
            .collect())
    }

    /// Removes the name (normalised); blobs and layers that no other name
    /// refers to are deleted. Returns whether the name existed.
    pub fn remove(&self, name: &str) -> Result<bool, ImageError> {
        let name = normalize_reference(name)?;
        {
            let mut state = self.lock();
            if !state.images.contains_key(&name) {
                return Ok(false);
            }
            let mut images = state.images.clone();
            images.remove(&name);
            self.save_index(&images)?;
            state.images = images;
        }
        tracing::info!(%name, "removed image");
        self.collect_garbage()?;
        Ok(true)
    }

    /// The extracted layer directories of `image`, bottom layer first, for
    /// overlayfs `lowerdir` (which lists them top first: reverse this).
    /// A layer that occurs more than once is listed only at its topmost
    /// position, which gives the same merged view.
    pub fn layer_dirs(&self, image: &ImageRecord) -> Vec<PathBuf> {
        let mut seen = HashSet::new();
        let mut dirs: Vec<PathBuf> = image
            .layers
            .iter()
            .rev()
            .filter(|l| seen.insert(l.diff_id.as_str()))
            .map(|l| self.layer_path(hex_of(&l.diff_id)))
            .collect();
        dirs.reverse();
        dirs
    }

    /// Path of a stored blob (`sha256:<hex>`), e.g. a manifest or config.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.blob_file(sha256_hex(digest)?))
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // ---- crate-internal API used by import sessions and registries ----

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where registry downloads live until their image is imported:
    /// `<hex>.partial` while incomplete, `<hex>` once verified.
    pub(crate) fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// The store's own record of an image (name or manifest digest), with
    /// its config digest.
    pub(crate) fn stored(&self, name_or_digest: &str) -> Result<StoredImage, ImageError> {
        let record = self.require(name_or_digest)?;
        self.lock()
            .images
            .get(&record.name)
            .cloned()
            .ok_or_else(|| ImageError::NotFound(name_or_digest.to_string()))
    }

    pub(crate) fn blob_file(&self, hex: &str) -> PathBuf {
        self.blobs_dir().join(hex)
    }

    pub(crate) fn layer_path(&self, hex: &str) -> PathBuf {
        self.layers_dir().join(hex)
    }

    /// Protects a blob or layer from garbage collection until unpinned.
    pub(crate) fn pin(&self, key: &str) {
        *self.lock().pins.entry(key.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn unpin(&self, keys: &[String]) {
        let mut state = self.lock();
        for key in keys {
            if let Some(count) = state.pins.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    state.pins.remove(key);
                }
            }
        }
    }

    /// Whether a recorded image has a layer with this blob digest and diff
    /// ID (a pairing verified when that image was imported).
    pub(crate) fn knows_layer(&self, digest: &str, diff_id: &str) -> bool {
        self.lock().images.values().any(|image| {
            image
                .record
                .layers
                .iter()
                .any(|l| l.digest == digest && l.diff_id == diff_id)
        })
    }

    /// Records an image under its name, replacing (and garbage-collecting)
    /// any previous image of that name.
    pub(crate) fn record(&self, image: StoredImage) -> Result<(), ImageError> {
        let replaced = {
            let mut state = self.lock();
            let mut images = state.images.clone();
            let replaced = images.insert(image.record.name.clone(), image);
            self.save_index(&images)?;
            state.images = images;
            replaced
        };
        if replaced.is_some() {
            if let Err(e) = self.collect_garbage() {
                tracing::warn!(error = %e, "removing the replaced image's unused layers failed");
            }
        }
        Ok(())
    }

    // ---- private ----

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    fn save_index(&self, images: &Images) -> Result<(), ImageError> {
        let scratch = self
            .tmp_dir()
            .join(format!("images-{}.json", uuid::Uuid::new_v4().simple()));
        index::save(images, &self.index_path(), &scratch)
    }

    fn clear_tmp(&self) -> Result<(), ImageError> {
        let tmp = self.tmp_dir();
        for entry in fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
            let path = entry.map_err(io_err("list", &tmp))?.path();
            tracing::info!(path = %path.display(), "removing leftover of an interrupted import");
            remove_any(&path)?;
        }
        Ok(())
    }

    /// Deletes blobs and layers that no image refers to and no running
    /// import has pinned.
    pub(crate) fn collect_garbage(&self) -> Result<(), ImageError> {
        let trash = self
            .tmp_dir()
            .join(format!("gc-{}", uuid::Uuid::new_v4().simple()));
        let mut moved = 0usize;
        {
            let state = self.lock();
            let mut blobs = HashSet::new();
            let mut layers = HashSet::new();
            for image in state.images.values() {
                blobs.insert(hex_of(&image.record.digest));
                blobs.insert(hex_of(&image.config_digest));
                for layer in &image.record.layers {
                    blobs.insert(hex_of(&layer.digest));
                    layers.insert(hex_of(&layer.diff_id));
                }
            }
            for (dir, kind, keep) in [
                (self.blobs_dir(), PinKind::Blob, &blobs),
                (self.layers_dir(), PinKind::Layer, &layers),
            ] {
                for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
                    let entry = entry.map_err(io_err("list", &dir))?;
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if keep.contains(name.as_ref())
                        || state.pins.contains_key(&pin_key(kind, &name))
                    {
                        continue;
                    }
                    if moved == 0 {
                        fs::create_dir(&trash).map_err(io_err("create directory", &trash))?;
                    }
                    moved += 1;
                    let to = trash.join(format!("{moved}"));
                    let from = entry.path();
                    fs::rename(&from, &to).map_err(io_err("move", &from))?;
                    tracing::debug!(item = %name, ?kind, "garbage-collecting unreferenced item");
                }
            }
        }
        if moved > 0 {
            fs::remove_dir_all(&trash).map_err(io_err("remove", &trash))?;
        }
        Ok(())
    }
}

/// The hex part of a digest recorded by the store (validated on import).
fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// `sha256:<hex>` when the query is a manifest digest rather than a name.
fn as_digest(query: &str) -> Option<String> {
    if let Some(hex) = query.strip_prefix("sha256:") {
        return is_sha256_hex(hex).then(|| query.to_string());
    }
    is_sha256_hex(query).then(|| format!("sha256:{query}"))
}

/// Removes a file, symlink or directory tree (never following symlinks).
pub(crate) fn remove_any(path: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(io_err("remove", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io("inspect", path, e)),
    }
}
