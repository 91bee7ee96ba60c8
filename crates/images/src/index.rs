//! `images.json`: the store's name tables and image contents. Loaded once by `open`,
//! rewritten whole on every change (temporary file, fsync, rename, fsync of the directory),
//! so a crash leaves either the old or the new file.
//!
//! Format version 2 keeps image contents by manifest digest and names per scope (the
//! server-wide table, or a namespace's). Version 1 (one table of names, each with its own
//! content) is read as version 2 with every name in the server-wide table, and written as
//! version 2 at the next change.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{io_err, ImageError};
use crate::{ImageContent, ImageRecord, LayerInfo, RunConfig, Scope};

const VERSION: u32 = 2;

/// An image's content as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct StoredContent {
    /// `sha256:<hex>` of the image manifest.
    pub(crate) digest: String,
    pub(crate) config: RunConfig,
    pub(crate) layers: Vec<LayerInfo>,
    pub(crate) size: u64,
    /// Digest of the image config blob (kept so unreferenced blobs can be found without
    /// reading manifests).
    pub(crate) config_digest: String,
}

impl StoredContent {
    pub(crate) fn public(&self) -> ImageContent {
        ImageContent {
            digest: self.digest.clone(),
            config: self.config.clone(),
            layers: self.layers.clone(),
            size: self.size,
        }
    }
}

/// A named image with its config digest (what a push needs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredImage {
    pub(crate) record: ImageRecord,
    pub(crate) config_digest: String,
}

/// One name in one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct NameEntry {
    /// `None`: the server-wide table.
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) digest: String,
    /// RFC 3339 time the name was recorded.
    pub(crate) created: String,
    /// A server-wide name pulled with global-private registry credentials: global services
    /// use it, namespaces do not see it (they pull with their own credentials).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) services_only: bool,
}

/// A name's key: its table and the name.
pub(crate) type NameKey = (Option<String>, String);

/// Every name and every content.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Table {
    pub(crate) contents: BTreeMap<String, StoredContent>,
    pub(crate) names: BTreeMap<NameKey, NameEntry>,
}

impl Table {
    /// The record of a name entry (its content must exist).
    pub(crate) fn record(&self, entry: &NameEntry) -> Option<ImageRecord> {
        let content = self.contents.get(&entry.digest)?;
        Some(ImageRecord {
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            digest: content.digest.clone(),
            config: content.config.clone(),
            layers: content.layers.clone(),
            size: content.size,
            created: entry.created.clone(),
            services_only: entry.services_only,
            notes: Vec::new(),
        })
    }

    /// The names of one table, sorted.
    pub(crate) fn names_in<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a NameEntry> {
        let ns = scope.namespace().map(str::to_string);
        self.names.values().filter(move |e| e.namespace == ns)
    }

    /// Whether any name (in any table) points at `digest`.
    pub(crate) fn is_named(&self, digest: &str) -> bool {
        self.names.values().any(|e| e.digest == digest)
    }
}

pub(crate) fn key(scope: &Scope, name: &str) -> NameKey {
    (scope.namespace().map(str::to_string), name.to_string())
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    contents: Vec<StoredContent>,
    names: Vec<NameEntry>,
}

#[derive(Deserialize)]
struct Version {
    version: u32,
}

/// Version 1: one server-wide table, each name with its content.
#[derive(Deserialize)]
struct IndexFileV1 {
    images: Vec<ImageV1>,
}

#[derive(Deserialize)]
struct ImageV1 {
    name: String,
    digest: String,
    config: RunConfig,
    layers: Vec<LayerInfo>,
    size: u64,
    created: String,
    config_digest: String,
}

/// Reads the tables at `path`; a missing file is an empty store.
pub(crate) fn load(path: &Path) -> Result<Table, ImageError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Table::default()),
        Err(e) => return Err(ImageError::io("read", path, e)),
    };
    let corrupt = |reason: String| ImageError::CorruptStore {
        path: path.to_path_buf(),
        reason,
    };
    let version: Version = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut table = Table::default();
    match version.version {
        1 => {
            let file: IndexFileV1 =
                serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
            for image in file.images {
                let entry = NameEntry {
                    namespace: None,
                    name: image.name,
                    digest: image.digest.clone(),
                    created: image.created,
                    services_only: false,
                };
                table.contents.insert(
                    image.digest.clone(),
                    StoredContent {
                        digest: image.digest,
                        config: image.config,
                        layers: image.layers,
                        size: image.size,
                        config_digest: image.config_digest,
                    },
                );
                table.names.insert((None, entry.name.clone()), entry);
            }
        }
        VERSION => {
            let file: IndexFile =
                serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
            for content in file.contents {
                table.contents.insert(content.digest.clone(), content);
            }
            for entry in file.names {
                if !table.contents.contains_key(&entry.digest) {
                    return Err(corrupt(format!(
                        "name '{}' points at {}, which has no content",
                        entry.name, entry.digest
                    )));
                }
                table
                    .names
                    .insert((entry.namespace.clone(), entry.name.clone()), entry);
            }
        }
        other => {
            return Err(corrupt(format!(
                "it has format version {other}, this faasbox reads versions 1 and {VERSION}"
            )))
        }
    }
    Ok(table)
}

/// Writes the tables to `path` atomically, using `scratch` (a file name on the same file
/// system) for the new version.
pub(crate) fn save(table: &Table, path: &Path, scratch: &Path) -> Result<(), ImageError> {
    let file = IndexFile {
        version: VERSION,
        contents: table.contents.values().cloned().collect(),
        names: table.names.values().cloned().collect(),
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| ImageError::CorruptStore {
        path: path.to_path_buf(),
        reason: format!("cannot encode it: {e}"),
    })?;
    let result = write_synced(scratch, &bytes)
        .and_then(|()| fs::rename(scratch, path).map_err(io_err("replace", path)));
    if result.is_err() {
        let _ = fs::remove_file(scratch);
    }
    result?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", dir))?;
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let mut file = crate::private::create_file(path).map_err(io_err("create", path))?;
    file.write_all(bytes).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("sync", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn content() -> StoredContent {
        StoredContent {
            digest: digest('1'),
            config: RunConfig {
                cmd: vec!["sh".into()],
                ..RunConfig::default()
            },
            layers: vec![LayerInfo {
                digest: digest('2'),
                diff_id: digest('3'),
                size: 9,
            }],
            size: 9,
            config_digest: digest('4'),
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.json");
        assert_eq!(load(&path).unwrap(), Table::default());

        let mut table = Table::default();
        table.contents.insert(digest('1'), content());
        for ns in [None, Some("a".to_string())] {
            let entry = NameEntry {
                namespace: ns.clone(),
                name: "a:latest".into(),
                digest: digest('1'),
                created: "2024-01-01T00:00:00Z".into(),
                services_only: ns.is_none(),
            };
            table.names.insert((ns, entry.name.clone()), entry);
        }
        save(&table, &path, &dir.path().join("scratch")).unwrap();
        assert_eq!(load(&path).unwrap(), table);
        assert!(!dir.path().join("scratch").exists());

        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(load(&path), Err(ImageError::CorruptStore { .. })));
        fs::write(&path, br#"{"version": 3}"#).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("format version 3"), "{err}");
    }

    #[test]
    fn version_1_names_become_server_wide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.json");
        let c = content();
        let v1 = serde_json::json!({
            "version": 1,
            "images": [{
                "name": "old/app:latest",
                "digest": c.digest,
                "config": c.config,
                "layers": c.layers,
                "size": c.size,
                "created": "2024-01-01T00:00:00Z",
                "config_digest": c.config_digest,
            }],
        });
        fs::write(&path, serde_json::to_vec(&v1).unwrap()).unwrap();
        let table = load(&path).unwrap();
        assert_eq!(table.contents.get(&c.digest), Some(&c));
        let entry = &table.names[&(None, "old/app:latest".to_string())];
        assert_eq!(entry.digest, c.digest);
        assert_eq!(
            table.record(entry).unwrap().scope(),
            Scope::Global,
            "a version 1 name is server-wide"
        );
    }
}
