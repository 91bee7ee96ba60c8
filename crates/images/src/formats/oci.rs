//! OCI image layouts (a directory, or the files of a tar): `oci-layout`,
//! `index.json`, and blobs under `blobs/sha256/<hex>`. The manifest is found
//! through `index.json` (following nested indexes, choosing by reference name
//! or the host platform), and every blob is checked against its digest.

use oci_spec::image::Arch;
use serde::Deserialize;

use super::{read_json_file, ConfigSource, FileSource, ImportPlan, LayerSource};
use crate::config;
use crate::digest::{sha256_hex, sha256_of};
use crate::error::ImageError;
use crate::manifest::{parse_document, Descriptor, Document, Index, Manifest, REF_NAME_ANNOTATION};

/// Most levels of nested indexes followed.
const MAX_INDEX_DEPTH: usize = 4;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// Plans the import of the OCI image layout `src` under the reference
/// `name` (used to choose among several images in one layout).
pub(crate) fn plan(src: &dyn FileSource, name: &str) -> Result<ImportPlan, ImageError> {
    let marker_path = src.file("oci-layout")?.ok_or_else(|| {
        ImageError::invalid("not an OCI image layout: there is no 'oci-layout' file")
    })?;
    let marker: LayoutMarker = serde_json::from_slice(&read_json_file(&marker_path, "oci-layout")?)
        .map_err(|e| ImageError::invalid(format!("the 'oci-layout' file is not valid: {e}")))?;
    if !marker.image_layout_version.starts_with("1.") {
        return Err(ImageError::Unsupported(format!(
            "OCI image layout version {} (faasbox reads version 1.x)",
            marker.image_layout_version
        )));
    }

    let index_path = src.file("index.json")?.ok_or_else(|| {
        ImageError::invalid("not an OCI image layout: there is no 'index.json' file")
    })?;
    let index: Index = serde_json::from_slice(&read_json_file(&index_path, "index.json")?)
        .map_err(|e| ImageError::invalid(format!("index.json is not valid: {e}")))?;

    let mut descriptor = select(&index.manifests, name, "index.json")?.clone();
    for _ in 0..MAX_INDEX_DEPTH {
        let what = format!("manifest {}", descriptor.digest);
        let bytes = read_blob_json(src, &descriptor, &what)?;
        match parse_document(&bytes, descriptor.points_at_index(), &what)? {
            Document::Index(nested) => {
                descriptor = select(
                    &nested.manifests,
                    name,
                    &format!("image index {}", descriptor.digest),
                )?
                .clone();
            }
            Document::Manifest(manifest) => {
                return plan_manifest(src, manifest, bytes, descriptor.digest);
            }
        }
    }
    Err(ImageError::invalid(format!(
        "image indexes are nested more than {MAX_INDEX_DEPTH} levels deep"
    )))
}

fn plan_manifest(
    src: &dyn FileSource,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    manifest_digest: String,
) -> Result<ImportPlan, ImageError> {
    let config_bytes = read_blob_json(src, &manifest.config, "image config")?;
    let parsed = config::parse(&config_bytes, "the image config")?;
    if parsed.diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::invalid(format!(
            "the image config lists {} layers but the manifest lists {}",
            parsed.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (layer, diff_id) in manifest.layers.iter().zip(&parsed.diff_ids) {
        check_layer_media_type(layer)?;
        let name = blob_name(&layer.digest)?;
        let path = src.file(&name)?.ok_or_else(|| {
            ImageError::invalid(format!(
                "layer {} is listed by the manifest but missing from the layout ({name}); \
                 foreign (non-distributable) layers cannot be imported",
                layer.digest
            ))
        })?;
        layers.push(LayerSource {
            path,
            scratch: src.is_scratch(),
            digest: Some(layer.digest.clone()),
            size: layer.size,
            diff_id: Some(diff_id.clone()),
            what: format!("layer {}", layer.digest),
        });
    }
    Ok(ImportPlan {
        manifest: Some((manifest_bytes, manifest_digest)),
        config: ConfigSource::Document {
            bytes: config_bytes,
            parsed,
        },
        layers,
    })
}

/// Refuses layer media types faasbox cannot unpack. The actual compression
/// is recognised from the blob's first bytes.
pub(crate) fn check_layer_media_type(layer: &Descriptor) -> Result<(), ImageError> {
    let Some(media) = layer.media_type.as_deref() else {
        return Ok(());
    };
    if media.contains("zstd") {
        return Err(ImageError::Unsupported(format!(
            "layer {} is zstd-compressed ({media}); faasbox reads uncompressed and gzip layers \
             only — convert the image with `skopeo copy --dest-compress-format gzip`",
            layer.digest
        )));
    }
    if !media.contains("tar") {
        return Err(ImageError::Unsupported(format!(
            "layer {} has media type '{media}', which is not a tar layer",
            layer.digest
        )));
    }
    Ok(())
}

/// `blobs/sha256/<hex>` for a digest.
fn blob_name(digest: &str) -> Result<String, ImageError> {
    Ok(format!("blobs/sha256/{}", sha256_hex(digest)?))
}

/// Reads a JSON blob and checks it against its descriptor's digest and size.
fn read_blob_json(
    src: &dyn FileSource,
    descriptor: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, ImageError> {
    let name = blob_name(&descriptor.digest)?;
    let path = src.file(&name)?.ok_or_else(|| {
        ImageError::invalid(format!(
            "the {what} blob is missing from the layout ({name})"
        ))
    })?;
    let bytes = read_json_file(&path, what)?;
    let actual = sha256_of(&bytes);
    if actual != descriptor.digest {
        return Err(ImageError::DigestMismatch {
            what: format!("{what} ({name})"),
            expected: descriptor.digest.clone(),
            actual,
        });
    }
    if let Some(size) = descriptor.size {
        if size != bytes.len() as u64 {
            return Err(ImageError::invalid(format!(
                "the {what} blob is {} bytes but its descriptor says {size}",
                bytes.len()
            )));
        }
    }
    Ok(bytes)
}

/// Whether a descriptor is a build attestation rather than an image.
fn is_attestation(d: &Descriptor) -> bool {
    d.annotation("vnd.docker.reference.type") == Some("attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// Whether an index entry's reference name matches the import name.
fn names_match(d: &Descriptor, name: &str) -> bool {
    let tag = tag_of(name);
    [REF_NAME_ANNOTATION, "io.containerd.image.name"]
        .iter()
        .filter_map(|key| d.annotation(key))
        .any(|r| r == name || Some(r) == tag || r.ends_with(&format!("/{name}")))
}

/// The tag of a normalised reference, if it has one.
fn tag_of(name: &str) -> Option<&str> {
    let without_digest = name.split('@').next().unwrap_or(name);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

fn for_host(d: &Descriptor, arch: &str) -> bool {
    d.platform
        .as_ref()
        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
}

/// Chooses the image to import among an index's entries: the only one,
/// else the one named like the import, else the first for linux on this
/// machine's architecture.
fn select<'a>(
    descriptors: &'a [Descriptor],
    name: &str,
    what: &str,
) -> Result<&'a Descriptor, ImageError> {
    let candidates: Vec<&Descriptor> = descriptors.iter().filter(|d| !is_attestation(d)).collect();
    match candidates.as_slice() {
        [] => return Err(ImageError::invalid(format!("{what} lists no images"))),
        [only] => return Ok(only),
        _ => {}
    }
    let named: Vec<&Descriptor> = candidates
        .iter()
        .copied()
        .filter(|d| names_match(d, name))
        .collect();
    if let [only] = named.as_slice() {
        return Ok(only);
    }
    let pool = if named.is_empty() {
        &candidates
    } else {
        &named
    };
    let arch = Arch::default().to_string();
    if let Some(d) = pool.iter().find(|d| for_host(d, &arch)) {
        return Ok(d);
    }
    let names: Vec<&str> = candidates
        .iter()
        .filter_map(|d| d.annotation(REF_NAME_ANNOTATION))
        .collect();
    Err(ImageError::invalid(format!(
        "{what} lists {} images (names: {}) and none is named '{name}' or built for linux/{arch}; \
         export just the image you want",
        candidates.len(),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(json: &str) -> Descriptor {
        serde_json::from_str(json).unwrap()
    }

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn selects_host_platform_and_skips_attestations() {
        let arm = desc(&format!(
            r#"{{"digest":"{D}","platform":{{"architecture":"arm64","os":"linux"}}}}"#
        ));
        let amd = desc(&format!(
            r#"{{"digest":"{D}","size":2,"platform":{{"architecture":"amd64","os":"linux"}}}}"#
        ));
        let att = desc(&format!(
            r#"{{"digest":"{D}","platform":{{"architecture":"unknown","os":"unknown"}}}}"#
        ));
        let list = [arm.clone(), amd.clone(), att.clone()];
        let host = Arch::default().to_string();
        let chosen = select(&list, "x:latest", "index").unwrap();
        assert_eq!(chosen.platform.as_ref().unwrap().architecture, host);
        // One image plus its attestation: the image.
        let pair = [arm.clone(), att];
        assert_eq!(
            select(&pair, "x:latest", "index")
                .unwrap()
                .platform
                .as_ref()
                .unwrap()
                .architecture,
            "arm64"
        );
        assert!(select(&[], "x:latest", "index").is_err());
    }

    #[test]
    fn selects_by_reference_name() {
        let a = desc(&format!(
            r#"{{"digest":"{D}","annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}"#
        ));
        let b = desc(&format!(
            r#"{{"digest":"{D}","size":7,"annotations":{{"org.opencontainers.image.ref.name":"v2"}}}}"#
        ));
        let list = [a, b];
        assert_eq!(select(&list, "demo/x:v2", "index").unwrap().size, Some(7));
        let err = select(&list, "demo/x:v3", "index").unwrap_err().to_string();
        assert!(err.contains("v1, v2"), "{err}");
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(tag_of("demo/x:v2"), Some("v2"));
        assert_eq!(tag_of("localhost:5000/x:v2"), Some("v2"));
        assert_eq!(tag_of("localhost:5000/x@sha256:ab"), None);
    }

    #[test]
    fn refuses_zstd_layers() {
        let l = desc(&format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{D}"}}"#
        ));
        let err = check_layer_media_type(&l).unwrap_err();
        assert!(matches!(err, ImageError::Unsupported(_)));
        assert!(err.to_string().contains("zstd"));
    }
}
