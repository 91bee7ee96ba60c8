//! Garbage collection: contents that no name points at, nothing holds and the owner does not
//! use are forgotten; then blobs and layers that no kept or held content refers to and no
//! running import has pinned are deleted. Doomed files are first renamed into `tmp/` under
//! the store's mutex and deleted after it is released.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use crate::error::{io_err, ImageError};
use crate::store::{hex_of, pin_key, Freed, ImageStore, PinKind, State};

impl ImageStore {
    /// Collects garbage now; returns what it deleted.
    pub fn collect_garbage(&self) -> Result<Freed, ImageError> {
        let trash = self
            .tmp_dir()
            .join(format!("gc-{}", uuid::Uuid::new_v4().simple()));
        let mut freed = Freed::default();
        // The owner is asked before the store's mutex is taken: its answer may need threads
        // (a PostgreSQL store's query runs on the server's async runtime) that would wait on
        // this mutex meanwhile, and then nothing answered until the owner's own timeout. What
        // becomes used after the answer is still named or held, and so kept.
        let used = self.owner_uses();
        {
            let mut state = self.lock();
            freed.contents = self.forget_unused_contents(&mut state, used)?;
            let (blobs, layers) = referenced(&state);
            let mut moved = 0usize;
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
                    let from = entry.path();
                    freed.bytes += apparent_size(&from);
                    match kind {
                        PinKind::Blob => freed.blobs += 1,
                        PinKind::Layer => freed.layers += 1,
                    }
                    let to = trash.join(format!("{moved}"));
                    fs::rename(&from, &to).map_err(io_err("move", &from))?;
                    tracing::debug!(item = %name, ?kind, "garbage-collecting unreferenced item");
                }
            }
        }
        if trash.exists() {
            fs::remove_dir_all(&trash).map_err(io_err("remove", &trash))?;
        }
        Ok(freed)
    }

    /// Drops contents no name points at, nothing holds and the owner does not use (`used`;
    /// `None`: the owner could not say, so all are kept); returns how many.
    fn forget_unused_contents(
        &self,
        state: &mut State,
        used: Option<HashSet<String>>,
    ) -> Result<usize, ImageError> {
        let Some(used) = used else {
            return Ok(0);
        };
        let named: HashSet<&str> = state
            .table
            .names
            .values()
            .map(|e| e.digest.as_str())
            .collect();
        let doomed: Vec<String> = state
            .table
            .contents
            .keys()
            .filter(|d| {
                !named.contains(d.as_str()) && !state.holds.contains_key(*d) && !used.contains(*d)
            })
            .cloned()
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut table = state.table.clone();
        for digest in &doomed {
            tracing::info!(%digest, "forgetting an image content nothing uses");
            table.contents.remove(digest);
        }
        self.save_index(&table)?;
        state.table = table;
        Ok(doomed.len())
    }
}

/// The blob and layer hex names that kept and held contents refer to.
fn referenced(state: &State) -> (HashSet<String>, HashSet<String>) {
    let mut blobs = HashSet::new();
    let mut layers = HashSet::new();
    let held = state.holds.values().map(|h| &h.content);
    for content in state.table.contents.values().chain(held) {
        blobs.insert(hex_of(&content.digest).to_string());
        blobs.insert(hex_of(&content.config_digest).to_string());
        for layer in &content.layers {
            blobs.insert(hex_of(&layer.digest).to_string());
            layers.insert(hex_of(&layer.diff_id).to_string());
        }
    }
    (blobs, layers)
}

/// The apparent size of a file or directory tree (symlinks counted, never followed).
fn apparent_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| apparent_size(&entry.path()))
                .sum()
        })
        .unwrap_or(0)
}
