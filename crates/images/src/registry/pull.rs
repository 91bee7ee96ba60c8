//! Pulling an image: resolve the manifest (choosing this machine's platform
//! from an index), check that faasbox can use it before downloading
//! anything big, download the config and layers (three at a time) into a
//! staging OCI layout in `tmp/pull-<uuid>/`, and import that layout with
//! the store's one import path.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use oci_spec::image::Arch;
use serde::Deserialize;

use super::auth::Connection;
use super::download::{self, Blob};
use super::reference::RemoteRef;
use super::{CredentialSource, Progress, PullOptions};
use crate::config;
use crate::digest::{sha256_hex, sha256_of};
use crate::error::{io_err, ImageError};
use crate::formats::oci::{self, check_layer_media_type};
use crate::formats::{read_json_file, LayoutDir, MAX_JSON_SIZE};
use crate::ingest;
use crate::manifest::{
    parse_document, Descriptor, Document, Index, Manifest, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
    OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use crate::remove::remove_any;
use crate::store::ImageStore;
use crate::{ImageRecord, Scope};

/// Manifest media types asked for (schema 1 is not among them).
const ACCEPT: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Layers downloaded at the same time.
const PARALLEL_DOWNLOADS: usize = 3;

pub(crate) async fn pull(
    store: &Arc<ImageStore>,
    scope: &Scope,
    reference: &str,
    creds: &dyn CredentialSource,
    options: &PullOptions,
    record_as: Option<&str>,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<ImageRecord, ImageError> {
    let record_as = record_as.map(crate::normalize_reference).transpose()?;
    let remote = RemoteRef::parse(reference)?;
    tracing::info!(reference = %remote.name, registry = %remote.registry, "pulling image");
    let conn = Connection::open(remote, creds, options, RegistryOperation::Pull).await?;
    let resolved = resolve(&conn).await?;
    let manifest = &resolved.manifest;
    let layer_sizes = check_manifest(manifest)?;
    let total = layer_sizes
        .iter()
        .fold(0u64, |sum, size| sum.saturating_add(*size));
    if total > store.limits.max_download_bytes {
        return Err(ImageError::DownloadTooLarge {
            reference: reference.to_string(),
            bytes: total,
            limit: store.limits.max_download_bytes,
        });
    }

    let staging = Staging::create(store)?;
    let config_size = descriptor_size(&manifest.config, "the image config")?;
    if config_size > MAX_JSON_SIZE {
        return Err(ImageError::invalid(format!(
            "the image config is {config_size} bytes, more than faasbox reads"
        )));
    }
    let config_path = staging.blob(&manifest.config.digest)?;
    let config_blob = Blob {
        digest: &manifest.config.digest,
        size: config_size,
        what: "the image config".to_string(),
        report: false,
    };
    download::fetch(store, &conn, &config_blob, &config_path, progress).await?;
    let parsed = config::parse(
        &read_json_file(&config_path, "the image config")?,
        "the image config",
    )?;
    if parsed.diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::invalid(format!(
            "the image config lists {} layers but the manifest lists {}",
            parsed.diff_ids.len(),
            manifest.layers.len()
        )));
    }

    progress(Progress::Resolved {
        layers: manifest.layers.len(),
        total_bytes: total,
    });
    let mut layers: Vec<(Blob<'_>, PathBuf)> = Vec::new();
    for (layer, size) in manifest.layers.iter().zip(&layer_sizes) {
        if layers.iter().any(|(b, _)| b.digest == layer.digest) {
            continue;
        }
        let blob = Blob {
            digest: &layer.digest,
            size: *size,
            what: format!("layer {}", layer.digest),
            report: true,
        };
        layers.push((blob, staging.blob(&layer.digest)?));
    }
    let downloads: Vec<_> = layers
        .iter()
        .map(|(blob, dest)| download::fetch(store, &conn, blob, dest, progress))
        .collect();
    futures_util::stream::iter(downloads)
        .buffer_unordered(PARALLEL_DOWNLOADS)
        .try_collect::<Vec<()>>()
        .await?;

    staging.finish(&resolved)?;
    let name = record_as.unwrap_or_else(|| conn.remote.name.clone());
    let importer = Arc::clone(store);
    let scope = scope.clone();
    let services_only = options.services_only;
    let record = tokio::task::spawn_blocking(move || {
        let result = import_staged(&importer, &scope, &staging.dir, &name, services_only);
        drop(staging);
        result
    })
    .await
    .unwrap_or_else(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => Err(ImageError::io(
            "import the pulled image into",
            store.root(),
            std::io::Error::other(e),
        )),
    })?;

    let mut digests: Vec<String> = vec![manifest.config.digest.clone()];
    digests.extend(layers.iter().map(|(b, _)| b.digest.to_string()));
    download::forget(store, &digests).await;
    tracing::info!(name = %record.name, digest = %record.digest, "image pulled");
    progress(Progress::Done);
    Ok(record)
}

/// Imports the OCI layout a pull staged in the store's `tmp/`: its blobs are hard-linked into
/// the store rather than copied. `name` is already normalised.
fn import_staged(
    store: &ImageStore,
    scope: &Scope,
    dir: &Path,
    name: &str,
    services_only: bool,
) -> Result<ImageRecord, ImageError> {
    let layout = LayoutDir::own(dir)?;
    ingest::run(store, |session| {
        session.services_only = services_only;
        let plan = oci::plan(&layout, name)?;
        session.import(plan, scope, name)
    })
}

/// The image manifest a reference leads to.
struct Resolved {
    bytes: Vec<u8>,
    digest: String,
    media_type: Option<String>,
    manifest: Manifest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Versioned {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
}

/// Fetches the manifest; an index leads to the entry for this platform.
async fn resolve(conn: &Connection) -> Result<Resolved, ImageError> {
    let top = fetch_manifest(conn, &conn.image(), conn.remote.digest.as_deref()).await?;
    let (bytes, digest, media_type, document) = top;
    let index = match document {
        Document::Manifest(manifest) => {
            return Ok(Resolved {
                bytes,
                digest,
                media_type,
                manifest,
            })
        }
        Document::Index(index) => index,
    };
    let entry = select_platform(&index, &conn.remote.name)?;
    tracing::debug!(index = %digest, manifest = %entry.digest, "chose this platform's image");
    let image = conn.remote.with_digest(&entry.digest);
    let (bytes, digest, media_type, document) =
        fetch_manifest(conn, &image, Some(&entry.digest)).await?;
    match document {
        Document::Manifest(manifest) => Ok(Resolved {
            bytes,
            digest,
            media_type,
            manifest,
        }),
        Document::Index(_) => Err(ImageError::Unsupported(format!(
            "image '{}' is an image index inside an image index; faasbox follows one level",
            conn.remote.name
        ))),
    }
}

type Fetched = (Vec<u8>, String, Option<String>, Document);

/// One manifest or index, verified against `expected` when given.
async fn fetch_manifest(
    conn: &Connection,
    image: &oci_client::Reference,
    expected: Option<&str>,
) -> Result<Fetched, ImageError> {
    let (bytes, _) = conn
        .client
        .pull_manifest_raw(image, &conn.auth, &ACCEPT)
        .await
        .map_err(|e| conn.error(e))?;
    let what = format!("the manifest of '{}'", conn.remote.name);
    if bytes.len() as u64 > MAX_JSON_SIZE {
        return Err(conn.failed(format!("{what} is larger than faasbox reads")));
    }
    let digest = sha256_of(&bytes);
    if let Some(expected) = expected {
        if digest != expected {
            return Err(ImageError::RemoteDigestMismatch {
                registry: conn.registry().to_string(),
                what,
                expected: expected.to_string(),
                actual: digest,
            });
        }
    }
    let versioned: Versioned = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::invalid(format!("{what} is not valid JSON: {e}")))?;
    let media_type = versioned.media_type;
    if versioned.schema_version == Some(1)
        || media_type
            .as_deref()
            .is_some_and(|m| m.starts_with("application/vnd.docker.distribution.manifest.v1"))
    {
        return Err(ImageError::Unsupported(format!(
            "{what} is a docker schema 1 manifest, which is deprecated; push the image again \
             with a current docker or skopeo"
        )));
    }
    if let Some(m) = media_type.as_deref() {
        if !ACCEPT.contains(&m) {
            return Err(ImageError::Unsupported(format!(
                "{what} has media type '{m}', which is not an image manifest or index"
            )));
        }
    }
    let document = parse_document(&bytes, None, &what)?;
    Ok((bytes.to_vec(), digest, media_type, document))
}

/// The index entry for linux on this machine's architecture.
fn select_platform<'a>(index: &'a Index, reference: &str) -> Result<&'a Descriptor, ImageError> {
    let arch = Arch::default().to_string();
    let images: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.platform.as_ref().is_none_or(|p| p.os != "unknown")
                && d.annotation("vnd.docker.reference.type") != Some("attestation-manifest")
        })
        .collect();
    let found = images.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    });
    if let Some(found) = found {
        return Ok(found);
    }
    if let [only] = images.as_slice() {
        if only.platform.is_none() {
            return Ok(only);
        }
    }
    let available: Vec<String> = images
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    Err(ImageError::PlatformNotFound {
        reference: reference.to_string(),
        wanted: arch,
        available: if available.is_empty() {
            "no platforms listed".to_string()
        } else {
            available.join(", ")
        },
    })
}

/// Refuses what faasbox cannot run before anything is downloaded; returns
/// the layer sizes.
fn check_manifest(manifest: &Manifest) -> Result<Vec<u64>, ImageError> {
    if let Some(media) = manifest.config.media_type.as_deref() {
        if media != OCI_CONFIG && media != DOCKER_CONFIG {
            return Err(ImageError::Unsupported(format!(
                "this is not a container image: its config has media type '{media}' \
                 (an OCI artifact such as a Helm chart or a signature)"
            )));
        }
    }
    sha256_hex(&manifest.config.digest)?;
    manifest
        .layers
        .iter()
        .map(|layer| {
            sha256_hex(&layer.digest)?;
            let media = layer.media_type.as_deref().unwrap_or_default();
            if media.contains("foreign") || media.contains("nondistributable") {
                return Err(ImageError::Unsupported(format!(
                    "layer {} is a foreign (non-distributable) layer ({media}), which registries \
                     do not serve; such images (Windows base images) cannot run here",
                    layer.digest
                )));
            }
            check_layer_media_type(layer)?;
            descriptor_size(layer, &format!("layer {}", layer.digest))
        })
        .collect()
}

fn descriptor_size(d: &Descriptor, what: &str) -> Result<u64, ImageError> {
    d.size
        .ok_or_else(|| ImageError::invalid(format!("the manifest gives no size for {what}")))
}

/// The OCI image layout a pull assembles in `tmp/pull-<uuid>/`; removed
/// when dropped (and by `open` after a crash).
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn create(store: &ImageStore) -> Result<Staging, ImageError> {
        let dir = store
            .tmp_dir()
            .join(format!("pull-{}", uuid::Uuid::new_v4().simple()));
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
        let staging = Staging { dir };
        let marker = staging.dir.join("oci-layout");
        fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(io_err("write", &marker))?;
        Ok(staging)
    }

    fn blob(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.dir.join("blobs/sha256").join(sha256_hex(digest)?))
    }

    /// Writes the manifest and an `index.json` naming it.
    fn finish(&self, resolved: &Resolved) -> Result<(), ImageError> {
        let path = self.blob(&resolved.digest)?;
        fs::write(&path, &resolved.bytes).map_err(io_err("write", &path))?;
        let mut entry = serde_json::json!({
            "digest": resolved.digest,
            "size": resolved.bytes.len(),
        });
        if let Some(media) = &resolved.media_type {
            entry["mediaType"] = serde_json::Value::String(media.clone());
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
        let path = self.dir.join("index.json");
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| ImageError::invalid(format!("cannot write index.json: {e}")))?;
        fs::write(&path, bytes).map_err(io_err("write", &path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = remove_any(&self.dir) {
            tracing::warn!(error = %e, "removing a pull's staging directory failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn index(json: &str) -> Index {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn picks_this_platform_and_says_what_there_is() {
        let arch = Arch::default().to_string();
        let i = index(&format!(
            r#"{{"manifests":[
                {{"digest":"{D}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}},
                {{"digest":"{D}","size":2,"platform":{{"os":"linux","architecture":"{arch}"}}}},
                {{"digest":"{D}","size":3,"platform":{{"os":"unknown","architecture":"unknown"}}}}
            ]}}"#
        ));
        assert_eq!(select_platform(&i, "x").unwrap().size, Some(2));

        let i = index(&format!(
            r#"{{"manifests":[
                {{"digest":"{D}","platform":{{"os":"linux","architecture":"s390x"}}}},
                {{"digest":"{D}","platform":{{"os":"windows","architecture":"{arch}"}}}},
                {{"digest":"{D}","platform":{{"os":"unknown","architecture":"unknown"}}}}
            ]}}"#
        ));
        let err = select_platform(&i, "demo:1").unwrap_err().to_string();
        assert!(err.contains(&format!("no linux/{arch} image")), "{err}");
        assert!(err.contains("linux/s390x, windows/"), "{err}");
        assert!(!err.contains("unknown"), "{err}");
    }

    #[test]
    fn refuses_artifacts_zstd_and_foreign_layers() {
        let manifest = |config: &str, layer: &str| -> Manifest {
            serde_json::from_str(&format!(
                r#"{{"config":{{"mediaType":"{config}","digest":"{D}","size":2}},
                    "layers":[{{"mediaType":"{layer}","digest":"{D}","size":5}}]}}"#
            ))
            .unwrap()
        };
        let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
        assert_eq!(check_manifest(&manifest(OCI_CONFIG, gzip)).unwrap(), [5]);
        assert_eq!(
            check_manifest(&manifest(
                DOCKER_CONFIG,
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            ))
            .unwrap(),
            [5]
        );
        for (config, layer, says) in [
            (
                "application/vnd.cncf.helm.config.v1+json",
                gzip,
                "not a container image",
            ),
            (
                OCI_CONFIG,
                "application/vnd.oci.image.layer.v1.tar+zstd",
                "zstd",
            ),
            (
                OCI_CONFIG,
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "foreign",
            ),
        ] {
            let err = check_manifest(&manifest(config, layer)).unwrap_err();
            assert!(matches!(err, ImageError::Unsupported(_)), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
