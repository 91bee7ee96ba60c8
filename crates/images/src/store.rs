//! [`ImageStore`]: the store directory, its name tables, and what keeps an image's content.
//!
//! Concurrency: one mutex guards the tables, a set of *pins* — the blobs and layers that
//! running imports have stored or are about to store — and the *holds* on contents (see
//! [`ImageStore::hold`]). Garbage collection (`gc.rs`) runs under the mutex and spares pinned
//! and held items, so an import and a `remove` can run at the same time.
//!
//! This module is at the bottom: imports (`import.rs` on `ingest.rs`), pulls and
//! pushes (`registry/`) add their methods to `ImageStore` from their own modules, and it uses
//! none of them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::digest::{is_sha256_hex, sha256_hex};
use crate::downloads::{self, DownloadLocks};
use crate::error::{io_err, ImageError};
use crate::extract::ImportLimits;
use crate::index::{self, key, NameEntry, StoredContent, StoredImage, Table};
use crate::private;
use crate::reference::normalize_reference;
use crate::remove::remove_any;
use crate::{ImageContent, ImageRecord, LayerInfo, Scope};

const INDEX_FILE: &str = "images.json";

/// Says which image contents (manifest digests) the store's owner still uses although no
/// name may point at them any more (a function pinned to a digest). An error keeps every
/// content.
pub type InUse = Box<dyn Fn() -> Result<HashSet<String>, String> + Send + Sync>;

/// A content-addressed image store in one directory. `Send + Sync`; all methods block
/// (except `pull` and `push`).
pub struct ImageStore {
    root: PathBuf,
    /// What one import may unpack.
    pub(crate) limits: ImportLimits,
    state: Mutex<State>,
    /// One lock per blob being downloaded from a registry.
    pub(crate) downloads: DownloadLocks,
    in_use: Option<InUse>,
}

impl fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) table: Table,
    /// Pin key → number of running imports holding it.
    pub(crate) pins: HashMap<String, usize>,
    /// Manifest digest → the holds on it and its content (kept here so its blobs and layers
    /// stay even when the content is removed by force while held).
    pub(crate) holds: HashMap<String, Held>,
}

#[derive(Debug)]
pub(crate) struct Held {
    count: usize,
    pub(crate) content: StoredContent,
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

/// What a garbage collection deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freed {
    /// Image contents (manifest digests) no longer kept.
    pub contents: usize,
    /// Blob files deleted.
    pub blobs: usize,
    /// Extracted layer directories deleted.
    pub layers: usize,
    /// Bytes of the deleted files (their apparent size).
    pub bytes: u64,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    /// The names removed, with what they pointed at.
    pub removed: Vec<ImageRecord>,
    /// What the garbage collection after it deleted.
    pub freed: Freed,
}

/// Keeps an image content (and its blobs and layers) while it lives; see
/// [`ImageStore::hold`].
pub struct ImageHold {
    store: Arc<ImageStore>,
    digest: String,
}

impl ImageHold {
    /// The manifest digest of the content held.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

impl fmt::Debug for ImageHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageHold")
            .field("digest", &self.digest)
            .finish()
    }
}

impl Drop for ImageHold {
    fn drop(&mut self) {
        let mut state = self.store.lock();
        if let Some(held) = state.holds.get_mut(&self.digest) {
            held.count -= 1;
            if held.count == 0 {
                state.holds.remove(&self.digest);
            }
        }
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, removes whatever an interrupted import
    /// left in `tmp/` and registry downloads untouched for a week, and deletes contents no
    /// name refers to, and blobs and layers no content refers to. Recent partial downloads in
    /// `downloads/` are kept so a pull resumes.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        ImageStore::open_inner(root.into(), None, ImportLimits::default())
    }

    /// Like [`open`](Self::open), but contents that `in_use` names are kept without a name
    /// too (from this first collection on), and imports are bounded by `limits`.
    pub fn open_with(
        root: impl Into<PathBuf>,
        in_use: Option<InUse>,
        limits: ImportLimits,
    ) -> Result<ImageStore, ImageError> {
        ImageStore::open_inner(root.into(), in_use, limits)
    }

    fn open_inner(
        root: PathBuf,
        in_use: Option<InUse>,
        limits: ImportLimits,
    ) -> Result<ImageStore, ImageError> {
        let store = ImageStore {
            root,
            limits,
            state: Mutex::new(State::default()),
            downloads: DownloadLocks::default(),
            in_use,
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
        downloads::prune_downloads(&store.downloads_dir())?;
        let table = index::load(&store.index_path())?;
        store.lock().table = table;
        store.collect_garbage()?;
        Ok(store)
    }

    /// The image with this name (normalised) or manifest digest (`sha256:<hex>` or bare hex)
    /// in `scope`'s table only. When several names there share a digest, the first by name is
    /// returned. A string that is not a valid reference names no image: `Ok(None)`.
    pub fn get(
        &self,
        scope: &Scope,
        name_or_digest: &str,
    ) -> Result<Option<ImageRecord>, ImageError> {
        Ok(find(&self.lock(), scope, name_or_digest))
    }

    /// What a reference means to `namespace`: its own table first, then the server-wide one,
    /// but not its names kept for global services only (`None`: a global service's view, the
    /// whole server-wide table).
    pub fn resolve(
        &self,
        namespace: Option<&str>,
        name_or_digest: &str,
    ) -> Result<Option<ImageRecord>, ImageError> {
        Ok(resolve_in(&self.lock(), namespace, name_or_digest))
    }

    /// [`resolve`](Self::resolve) and [`hold`](Self::hold) at once, so the content found is
    /// still there when the caller comes to use it.
    pub fn resolve_held(
        self: &Arc<Self>,
        namespace: Option<&str>,
        name_or_digest: &str,
    ) -> Option<(ImageRecord, ImageHold)> {
        let mut state = self.lock();
        let record = resolve_in(&state, namespace, name_or_digest)?;
        let hold = self.hold_locked(&mut state, &record.digest)?;
        Some((record, hold))
    }

    /// Like [`get`](Self::get), but a missing image is [`ImageError::NotFound`].
    pub fn require(&self, scope: &Scope, name_or_digest: &str) -> Result<ImageRecord, ImageError> {
        self.get(scope, name_or_digest)?
            .ok_or_else(|| ImageError::NotFound(name_or_digest.to_string()))
    }

    /// The images of `scope`'s table, sorted by name.
    pub fn list(&self, scope: &Scope) -> Result<Vec<ImageRecord>, ImageError> {
        let state = self.lock();
        Ok(state
            .table
            .names_in(scope)
            .filter_map(|e| state.table.record(e))
            .collect())
    }

    /// The images of every table: server-wide first, then by namespace and name.
    pub fn list_all(&self) -> Vec<ImageRecord> {
        let state = self.lock();
        state
            .table
            .names
            .values()
            .filter_map(|e| state.table.record(e))
            .collect()
    }

    /// An image's content by manifest digest, whatever table names it (or none: a content
    /// kept because it is in use). For running what a function pinned; callers that take a
    /// digest from a user must look it up in the user's tables instead.
    pub fn content(&self, digest: &str) -> Option<ImageContent> {
        self.lock()
            .table
            .contents
            .get(digest)
            .map(StoredContent::public)
    }

    /// Keeps the content of `digest` — and its blobs and layers, even when it is removed by
    /// force — until the returned hold is dropped. `None` when there is no such content.
    pub fn hold(self: &Arc<Self>, digest: &str) -> Option<ImageHold> {
        let mut state = self.lock();
        self.hold_locked(&mut state, digest)
    }

    fn hold_locked(self: &Arc<Self>, state: &mut State, digest: &str) -> Option<ImageHold> {
        let content = state.table.contents.get(digest).cloned();
        match (state.holds.get_mut(digest), content) {
            (Some(held), _) => held.count += 1,
            (None, Some(content)) => {
                state
                    .holds
                    .insert(digest.to_string(), Held { count: 1, content });
            }
            (None, None) => return None,
        }
        Some(ImageHold {
            store: Arc::clone(self),
            digest: digest.to_string(),
        })
    }

    /// Removes the name (normalised) from `scope`'s table. Without `force` its content stays
    /// while it is in use (held, or named by the owner's `InUse`); with `force` the content
    /// goes too unless another name points at it (what holds it keeps only its files, for the
    /// instances that run it). Returns `None` when the name did not exist, else what was
    /// freed.
    pub fn remove(
        &self,
        scope: &Scope,
        name: &str,
        force: bool,
    ) -> Result<Option<Freed>, ImageError> {
        let name = normalize_reference(name)?;
        {
            let mut state = self.lock();
            let k = key(scope, &name);
            let Some(entry) = state.table.names.get(&k).cloned() else {
                return Ok(None);
            };
            let mut table = state.table.clone();
            table.names.remove(&k);
            if force && !table.is_named(&entry.digest) {
                table.contents.remove(&entry.digest);
            }
            self.save_index(&table)?;
            state.table = table;
        }
        tracing::info!(%name, %scope, force, "removed image");
        self.collect_garbage().map(Some)
    }

    /// Removes every name of namespace `namespace`'s table (the namespace is gone, or is new and
    /// must not find what an earlier namespace of its name left), then collects garbage.
    pub fn remove_namespace(&self, namespace: &str) -> Result<Freed, ImageError> {
        let scope = Scope::Namespace(namespace.to_string());
        let removed = {
            let mut state = self.lock();
            let doomed: Vec<_> = state
                .table
                .names_in(&scope)
                .map(|e| key(&scope, &e.name))
                .collect();
            if !doomed.is_empty() {
                let mut table = state.table.clone();
                for k in &doomed {
                    table.names.remove(k);
                }
                self.save_index(&table)?;
                state.table = table;
            }
            doomed.len()
        };
        if removed > 0 {
            tracing::info!(%scope, removed, "removed a namespace's images");
        }
        self.collect_garbage()
    }

    /// Removes every name of `scope`'s table that `keep` does not keep and no hold uses,
    /// then collects garbage.
    pub fn prune(
        &self,
        scope: &Scope,
        keep: impl Fn(&ImageRecord) -> bool,
    ) -> Result<Pruned, ImageError> {
        let removed = {
            let mut state = self.lock();
            let doomed: Vec<ImageRecord> = state
                .table
                .names_in(scope)
                .filter(|e| !state.holds.contains_key(&e.digest))
                .filter_map(|e| state.table.record(e))
                .filter(|r| !keep(r))
                .collect();
            if !doomed.is_empty() {
                let mut table = state.table.clone();
                for record in &doomed {
                    table.names.remove(&key(scope, &record.name));
                }
                self.save_index(&table)?;
                state.table = table;
            }
            doomed
        };
        for record in &removed {
            tracing::info!(name = %record.name, %scope, "pruned unused image");
        }
        let freed = self.collect_garbage()?;
        Ok(Pruned { removed, freed })
    }

    /// The extracted layer directories of `layers` (an image's, bottom first), for overlayfs
    /// `lowerdir` (which lists them top first: reverse this). A layer that occurs more than
    /// once is listed only at its topmost position, which gives the same merged view.
    pub fn layer_dirs(&self, layers: &[LayerInfo]) -> Vec<PathBuf> {
        let mut seen = HashSet::new();
        let mut dirs: Vec<PathBuf> = layers
            .iter()
            .rev()
            .filter(|l| seen.insert(l.diff_id.as_str()))
            .map(|l| self.layer_path(hex_of(&l.diff_id)))
            .collect();
        dirs.reverse();
        dirs
    }

    /// The text of a small regular file of an image, from the topmost of `layers` (an image's,
    /// bottom first) that has it: e.g. `etc/passwd`, to resolve the user its config names.
    /// `path` is relative to the image's root and has no `..`. `None` when no layer has it as a
    /// regular file of at most `max_bytes`; a layer where a directory on the way is a symbolic
    /// link does not count (it is not followed on the host).
    pub fn read_small_file(
        &self,
        layers: &[LayerInfo],
        path: &str,
        max_bytes: u64,
    ) -> Option<String> {
        let relative = Path::new(path);
        let plain = relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || relative.as_os_str().is_empty() {
            return None;
        }
        self.layer_dirs(layers).iter().rev().find_map(|layer| {
            let mut dir = layer.clone();
            let parents: Vec<_> = relative.parent()?.components().collect();
            for part in parents {
                dir.push(part);
                if !fs::symlink_metadata(&dir).ok()?.is_dir() {
                    return None;
                }
            }
            let file = layer.join(relative);
            let meta = fs::symlink_metadata(&file).ok()?;
            if !meta.is_file() || meta.len() > max_bytes {
                return None;
            }
            fs::read_to_string(&file).ok()
        })
    }

    /// Path of a stored blob (`sha256:<hex>`), e.g. a manifest or config.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.blob_file(sha256_hex(digest)?))
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // ---- crate-internal API used by import sessions, registries and gc ----

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where registry downloads live until their image is imported: `<hex>.partial` while
    /// incomplete, `<hex>` once verified.
    pub(crate) fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// The store's own record of an image in `scope`'s table (name or manifest digest), with
    /// its config digest.
    pub(crate) fn stored(
        &self,
        scope: &Scope,
        name_or_digest: &str,
    ) -> Result<StoredImage, ImageError> {
        let record = self.require(scope, name_or_digest)?;
        let state = self.lock();
        let content = state
            .table
            .contents
            .get(&record.digest)
            .ok_or_else(|| ImageError::NotFound(name_or_digest.to_string()))?;
        Ok(StoredImage {
            config_digest: content.config_digest.clone(),
            record,
        })
    }

    pub(crate) fn blob_file(&self, hex: &str) -> PathBuf {
        self.blobs_dir().join(hex)
    }

    pub(crate) fn layer_path(&self, hex: &str) -> PathBuf {
        self.layers_dir().join(hex)
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
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

    /// Whether a stored content has a layer with this blob digest and diff ID (a pairing
    /// verified when that image was imported).
    pub(crate) fn knows_layer(&self, digest: &str, diff_id: &str) -> bool {
        self.lock().table.contents.values().any(|content| {
            content
                .layers
                .iter()
                .any(|l| l.digest == digest && l.diff_id == diff_id)
        })
    }

    /// Records `content` under `name` in `scope`'s table, replacing (and garbage-collecting)
    /// any previous image of that name there.
    pub(crate) fn record(
        &self,
        scope: &Scope,
        name: &str,
        content: StoredContent,
        services_only: bool,
    ) -> Result<ImageRecord, ImageError> {
        let (record, replaced) = {
            let mut state = self.lock();
            let mut table = state.table.clone();
            let digest = content.digest.clone();
            table.contents.entry(digest.clone()).or_insert(content);
            let entry = NameEntry {
                namespace: scope.namespace().map(str::to_string),
                name: name.to_string(),
                digest: digest.clone(),
                created: now_rfc3339(),
                services_only: services_only && scope == &Scope::Global,
            };
            let replaced = table
                .names
                .insert(key(scope, name), entry.clone())
                .is_some_and(|old| old.digest != digest);
            let record = table
                .record(&entry)
                .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
            self.save_index(&table)?;
            state.table = table;
            (record, replaced)
        };
        if replaced {
            if let Err(e) = self.collect_garbage() {
                tracing::warn!(error = %e, "removing the replaced image's unused layers failed");
            }
        }
        Ok(record)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The digests the owner uses, or `None` when it cannot say (keep everything then).
    pub(crate) fn owner_uses(&self) -> Option<HashSet<String>> {
        match &self.in_use {
            None => Some(HashSet::new()),
            Some(in_use) => match in_use() {
                Ok(used) => Some(used),
                Err(e) => {
                    tracing::warn!("cannot tell which images are in use, keeping them all: {e}");
                    None
                }
            },
        }
    }

    pub(crate) fn save_index(&self, table: &Table) -> Result<(), ImageError> {
        let scratch = self
            .tmp_dir()
            .join(format!("images-{}.json", uuid::Uuid::new_v4().simple()));
        index::save(table, &self.index_path(), &scratch)
    }

    // ---- private ----

    fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
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
}

/// The image a name or digest means in `scope`'s table.
fn find(state: &State, scope: &Scope, name_or_digest: &str) -> Option<ImageRecord> {
    if let Some(digest) = as_digest(name_or_digest) {
        return state
            .table
            .names_in(scope)
            .find(|e| e.digest == digest)
            .and_then(|e| state.table.record(e));
    }
    let name = normalize_reference(name_or_digest).ok()?;
    state
        .table
        .names
        .get(&key(scope, &name))
        .and_then(|e| state.table.record(e))
}

/// The image a name or digest means to `namespace` (its table, then the server-wide one but
/// for names kept for global services only); to global services (`None`): the server-wide
/// table.
fn resolve_in(state: &State, namespace: Option<&str>, name_or_digest: &str) -> Option<ImageRecord> {
    let Some(ns) = namespace else {
        return find(state, &Scope::Global, name_or_digest);
    };
    find(state, &Scope::Namespace(ns.to_string()), name_or_digest).or_else(|| {
        let shared = |e: &&NameEntry| !e.services_only;
        let entry = match as_digest(name_or_digest) {
            Some(digest) => state
                .table
                .names_in(&Scope::Global)
                .filter(shared)
                .find(|e| e.digest == digest),
            None => {
                let name = normalize_reference(name_or_digest).ok()?;
                state
                    .table
                    .names
                    .get(&key(&Scope::Global, &name))
                    .filter(|e| !e.services_only)
            }
        };
        entry.and_then(|e| state.table.record(e))
    })
}

/// The hex part of a digest recorded by the store (validated on import).
pub(crate) fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// `sha256:<hex>` when the query is a manifest digest rather than a name.
fn as_digest(query: &str) -> Option<String> {
    if let Some(hex) = query.strip_prefix("sha256:") {
        return is_sha256_hex(hex).then(|| query.to_string());
    }
    is_sha256_hex(query).then(|| format!("sha256:{query}"))
}

pub(crate) fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `etc/passwd` is read from the topmost layer that has it as a regular file; a layer
    /// whose `etc` is a symbolic link is passed over, as are paths that leave the root.
    #[test]
    fn small_files_come_from_the_topmost_layer_that_has_them() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(tmp.path().join("images")).unwrap();
        let layer = |n: u8| {
            let hex = format!("{n:02x}").repeat(32);
            std::fs::create_dir_all(store.layer_path(&hex)).unwrap();
            LayerInfo {
                digest: format!("sha256:{hex}"),
                diff_id: format!("sha256:{hex}"),
                size: 0,
            }
        };
        let (bottom, middle, top) = (layer(1), layer(2), layer(3));
        let dir = |l: &LayerInfo| store.layer_path(hex_of(&l.diff_id));
        std::fs::create_dir_all(dir(&bottom).join("etc")).unwrap();
        std::fs::write(dir(&bottom).join("etc/passwd"), "bottom\n").unwrap();
        std::fs::create_dir_all(dir(&middle).join("etc")).unwrap();
        std::fs::write(dir(&middle).join("etc/passwd"), "middle\n").unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("passwd"), "host\n").unwrap();
        std::os::unix::fs::symlink(&outside, dir(&top).join("etc")).unwrap();

        let layers = [bottom.clone(), middle, top];
        let read = |path: &str, max: u64| store.read_small_file(&layers, path, max);
        assert_eq!(read("etc/passwd", 100).as_deref(), Some("middle\n"));
        assert_eq!(
            store
                .read_small_file(std::slice::from_ref(&bottom), "etc/passwd", 100)
                .as_deref(),
            Some("bottom\n")
        );
        assert_eq!(read("etc/passwd", 3), None);
        assert_eq!(read("etc/group", 100), None);
        assert_eq!(read("/etc/passwd", 100), None);
        assert_eq!(read("etc/../etc/passwd", 100), None);
    }
}
