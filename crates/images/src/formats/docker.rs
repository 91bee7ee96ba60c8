//! `docker save` archives: `manifest.json` names the config and the layer
//! files (old `<id>/layer.tar` names or docker 25+ `blobs/sha256/<hex>`).
//! Layers may be plain or gzip tars; their blob digests are computed on
//! import and an OCI manifest is synthesised for them.

use serde::Deserialize;

use super::{read_json_file, ConfigSource, FileSource, ImportPlan, LayerSource};
use crate::config;
use crate::digest::{is_sha256_hex, sha256_of};
use crate::error::ImageError;

#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Plans the import of the extracted docker archive `src`.
pub(crate) fn plan(src: &dyn FileSource) -> Result<ImportPlan, ImageError> {
    let manifest_path = src
        .file("manifest.json")?
        .ok_or_else(|| ImageError::invalid("the docker archive has no manifest.json"))?;
    let bytes = read_json_file(&manifest_path, "manifest.json")?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::invalid(format!(
            "manifest.json of the docker archive is not valid: {e}"
        ))
    })?;
    let count = entries.len();
    let entry = entries.into_iter().next().ok_or_else(|| {
        ImageError::invalid("manifest.json of the docker archive lists no images")
    })?;
    if count > 1 {
        tracing::info!(
            images = count,
            "docker archive holds several images; importing the first"
        );
    }

    let config_path = src.file(&entry.config)?.ok_or_else(|| {
        ImageError::invalid(format!(
            "manifest.json names the image config '{}', which is not in the archive",
            entry.config
        ))
    })?;
    let config_bytes = read_json_file(&config_path, "the image config")?;
    if let Some(expected) = digest_from_name(&entry.config) {
        let actual = sha256_of(&config_bytes);
        if actual != expected {
            return Err(ImageError::DigestMismatch {
                what: format!("image config '{}'", entry.config),
                expected,
                actual,
            });
        }
    }
    let parsed = config::parse(&config_bytes, "the image config")?;
    if parsed.diff_ids.len() != entry.layers.len() {
        return Err(ImageError::invalid(format!(
            "the image config lists {} layers but manifest.json lists {}",
            parsed.diff_ids.len(),
            entry.layers.len()
        )));
    }

    let mut layers = Vec::with_capacity(entry.layers.len());
    for (name, diff_id) in entry.layers.iter().zip(&parsed.diff_ids) {
        let path = src.file(name)?.ok_or_else(|| {
            ImageError::invalid(format!(
                "manifest.json names the layer '{name}', which is not in the archive"
            ))
        })?;
        layers.push(LayerSource {
            path,
            scratch: src.is_scratch(),
            digest: digest_from_name(name),
            size: None,
            diff_id: Some(diff_id.clone()),
            what: format!("layer '{name}'"),
        });
    }
    Ok(ImportPlan {
        manifest: None,
        config: ConfigSource::Document {
            bytes: config_bytes,
            parsed,
        },
        layers,
    })
}

/// The digest a file name announces: `blobs/sha256/<hex>` or `<hex>.json`.
fn digest_from_name(name: &str) -> Option<String> {
    let base = name.trim_start_matches("./");
    let hex = base
        .strip_prefix("blobs/sha256/")
        .or_else(|| base.strip_suffix(".json"))?;
    is_sha256_hex(hex).then(|| format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::digest_from_name;

    #[test]
    fn reads_digests_from_names() {
        let hex = "a".repeat(64);
        assert_eq!(
            digest_from_name(&format!("blobs/sha256/{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_from_name(&format!("{hex}.json")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_from_name("abc/layer.tar"), None);
        assert_eq!(digest_from_name("config.json"), None);
    }
}
