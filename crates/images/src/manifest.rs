//! Image manifests and indexes: lenient reading of OCI and docker v2
//! manifests/indexes (only the fields faasbox uses), and writing the OCI
//! manifest faasbox synthesises for images that arrive without one.

use std::collections::HashMap;
use std::str::FromStr;

use oci_spec::image::{DescriptorBuilder, Digest, ImageManifestBuilder, MediaType};
use serde::Deserialize;

use crate::error::ImageError;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Annotation naming an image inside an OCI layout's `index.json`.
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub(crate) media_type: Option<String>,
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    pub(crate) annotations: Option<HashMap<String, String>>,
}

impl Descriptor {
    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// Whether the descriptor points at an index rather than a manifest,
    /// judging by its media type (unknown when it has none).
    pub(crate) fn points_at_index(&self) -> Option<bool> {
        match self.media_type.as_deref()? {
            OCI_INDEX | DOCKER_MANIFEST_LIST => Some(true),
            OCI_MANIFEST | DOCKER_MANIFEST => Some(false),
            _ => None,
        }
    }
}

/// A platform in an index.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
}

/// An image manifest (OCI or docker v2 schema 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub(crate) config: Descriptor,
    #[serde(default)]
    pub(crate) layers: Vec<Descriptor>,
}

/// An image index (OCI) or manifest list (docker).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Index {
    #[serde(default)]
    pub(crate) manifests: Vec<Descriptor>,
}

/// A parsed manifest-or-index document.
#[derive(Debug, Clone)]
pub(crate) enum Document {
    Manifest(Manifest),
    Index(Index),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

/// Parses a manifest or an index; which one is decided by the descriptor's
/// media type, else the document's own `mediaType`, else its shape.
pub(crate) fn parse_document(
    bytes: &[u8],
    descriptor_says_index: Option<bool>,
    what: &str,
) -> Result<Document, ImageError> {
    let bad = |e: serde_json::Error| ImageError::invalid(format!("{what} is not valid: {e}"));
    let is_index = match descriptor_says_index {
        Some(v) => v,
        None => {
            let probe: Probe = serde_json::from_slice(bytes).map_err(bad)?;
            match probe.media_type.as_deref() {
                Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
                Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
                _ => probe.manifests.is_some(),
            }
        }
    };
    if is_index {
        Ok(Document::Index(serde_json::from_slice(bytes).map_err(bad)?))
    } else {
        Ok(Document::Manifest(
            serde_json::from_slice(bytes).map_err(bad)?,
        ))
    }
}

/// A layer as the synthesised manifest lists it.
#[derive(Debug, Clone)]
pub(crate) struct LayerRef {
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) gzip: bool,
}

/// The OCI manifest for a config and its layers (deterministic bytes).
pub(crate) fn synthesize(
    config_digest: &str,
    config_size: u64,
    layers: &[LayerRef],
) -> Result<Vec<u8>, ImageError> {
    let fail = |e: String| ImageError::invalid(format!("cannot build image manifest: {e}"));
    let descriptor = |media: &str, digest: &str, size: u64| {
        let digest = Digest::from_str(digest).map_err(|e| fail(e.to_string()))?;
        DescriptorBuilder::default()
            .media_type(MediaType::from(media))
            .digest(digest)
            .size(size)
            .build()
            .map_err(|e| fail(e.to_string()))
    };
    let layers = layers
        .iter()
        .map(|l| {
            let media = if l.gzip {
                OCI_LAYER_TAR_GZIP
            } else {
                OCI_LAYER_TAR
            };
            descriptor(media, &l.digest, l.size)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(OCI_CONFIG, config_digest, config_size)?)
        .layers(layers)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    serde_json::to_vec(&manifest).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn synthesised_manifest_reads_back() {
        let layers = [
            LayerRef {
                digest: D2.into(),
                size: 10,
                gzip: true,
            },
            LayerRef {
                digest: D1.into(),
                size: 20,
                gzip: false,
            },
        ];
        let bytes = synthesize(D1, 5, &layers).unwrap();
        assert_eq!(bytes, synthesize(D1, 5, &layers).unwrap());
        let Document::Manifest(m) = parse_document(&bytes, None, "manifest").unwrap() else {
            panic!("not a manifest");
        };
        assert_eq!(m.config.digest, D1);
        assert_eq!(m.config.media_type.as_deref(), Some(OCI_CONFIG));
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0].media_type.as_deref(), Some(OCI_LAYER_TAR_GZIP));
        assert_eq!(m.layers[1].size, Some(20));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], OCI_MANIFEST);
    }

    #[test]
    fn tells_indexes_from_manifests() {
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D1}","size":1}}]}}"#);
        assert!(matches!(
            parse_document(index.as_bytes(), None, "x").unwrap(),
            Document::Index(_)
        ));
        assert!(parse_document(b"{}", Some(false), "x").is_err());
        assert!(parse_document(b"not json", None, "x").is_err());
    }
}
