//! `images.json`: the store's name table. Loaded once by `open`, rewritten
//! whole on every change (temporary file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new table.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{io_err, ImageError};
use crate::ImageRecord;

const VERSION: u32 = 1;

/// One named image as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct StoredImage {
    #[serde(flatten)]
    pub(crate) record: ImageRecord,
    /// Digest of the image config blob (kept so unreferenced blobs can be
    /// found without reading manifests).
    pub(crate) config_digest: String,
}

/// Images by name.
pub(crate) type Images = BTreeMap<String, StoredImage>;

#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    images: Vec<StoredImage>,
}

/// Reads the name table at `path`; a missing file is an empty table.
pub(crate) fn load(path: &Path) -> Result<Images, ImageError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Images::new()),
        Err(e) => return Err(ImageError::io("read", path, e)),
    };
    let corrupt = |reason: String| ImageError::CorruptStore {
        path: path.to_path_buf(),
        reason,
    };
    let file: IndexFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.version != VERSION {
        return Err(corrupt(format!(
            "it has format version {}, this faasbox reads version {VERSION}",
            file.version
        )));
    }
    Ok(file
        .images
        .into_iter()
        .map(|image| (image.record.name.clone(), image))
        .collect())
}

/// Writes the name table to `path` atomically, using `scratch` (a file name
/// on the same file system) for the new version.
pub(crate) fn save(images: &Images, path: &Path, scratch: &Path) -> Result<(), ImageError> {
    let file = IndexFile {
        version: VERSION,
        images: images.values().cloned().collect(),
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
    use crate::{LayerInfo, RunConfig};

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.json");
        assert!(load(&path).unwrap().is_empty());

        let record = ImageRecord {
            name: "a:latest".into(),
            digest: format!("sha256:{}", "1".repeat(64)),
            config: RunConfig {
                cmd: vec!["sh".into()],
                ..RunConfig::default()
            },
            layers: vec![LayerInfo {
                digest: format!("sha256:{}", "2".repeat(64)),
                diff_id: format!("sha256:{}", "3".repeat(64)),
                size: 9,
            }],
            size: 9,
            created: "2024-01-01T00:00:00Z".into(),
        };
        let mut images = Images::new();
        images.insert(
            record.name.clone(),
            StoredImage {
                record,
                config_digest: format!("sha256:{}", "4".repeat(64)),
            },
        );
        save(&images, &path, &dir.path().join("scratch")).unwrap();
        assert_eq!(load(&path).unwrap(), images);
        assert!(!dir.path().join("scratch").exists());

        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(load(&path), Err(ImageError::CorruptStore { .. })));
    }
}
