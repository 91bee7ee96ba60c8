//! Pushing a stored image: layer blobs and the config are uploaded unless
//! the registry has them already (HEAD), streamed from the store's files in
//! one request each, then the OCI manifest is put under the target tag.

use std::fs;
use std::sync::Arc;

use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::{Reference, RegistryOperation};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use super::auth::Connection;
use super::reference::RemoteRef;
use super::{CredentialSource, Progress, PullOptions};
use crate::compress::{sniff_file, Compression};
use crate::digest::sha256_of;
use crate::error::{io_err, ImageError};
use crate::formats::read_json_file;
use crate::index::StoredImage;
use crate::manifest::{parse_document, synthesize, Document, LayerRef, OCI_MANIFEST};
use crate::store::ImageStore;
use crate::Scope;

/// Bytes read from disk per upload chunk.
const UPLOAD_CHUNK: usize = 256 * 1024;

pub(crate) async fn push(
    store: &Arc<ImageStore>,
    scope: &Scope,
    local_name: &str,
    target: &str,
    creds: &dyn CredentialSource,
    options: &PullOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<String, ImageError> {
    let stored = store.stored(scope, local_name)?;
    let remote = RemoteRef::parse(target)?;
    if remote.digest.is_some() {
        return Err(ImageError::InvalidReference {
            reference: target.to_string(),
            reason: "a push goes to a tag, not a digest (the registry computes the digest)".into(),
        });
    }
    let manifest = oci_manifest(store, &stored)?;
    tracing::info!(
        image = %stored.record.name,
        target = %remote.name,
        registry = %remote.registry,
        "pushing image"
    );
    let conn = Connection::open(remote, creds, options, RegistryOperation::Push).await?;
    let image = conn.image();

    let layers = &stored.record.layers;
    progress(Progress::Resolved {
        layers: layers.len(),
        total_bytes: layers.iter().map(|l| l.size).sum(),
    });
    let mut sent: Vec<&str> = Vec::new();
    for layer in layers {
        if sent.contains(&layer.digest.as_str()) {
            continue;
        }
        sent.push(&layer.digest);
        let upload = Upload {
            digest: &layer.digest,
            size: layer.size,
            what: format!("layer {}", layer.digest),
            report: true,
        };
        upload.run(store, &conn, &image, progress).await?;
    }
    let config_path = store.blob_path(&stored.config_digest)?;
    let config_size = fs::metadata(&config_path)
        .map_err(io_err("inspect", &config_path))?
        .len();
    let config = Upload {
        digest: &stored.config_digest,
        size: config_size,
        what: "the image config".to_string(),
        report: false,
    };
    config.run(store, &conn, &image, progress).await?;

    let digest = sha256_of(&manifest);
    let content_type = OCI_MANIFEST
        .parse()
        .map_err(|_| ImageError::invalid("the manifest media type is not a valid header"))?;
    conn.client
        .push_manifest_raw(&image, manifest, content_type)
        .await
        .map_err(|e| conn.error(e))?;
    tracing::info!(target = %conn.remote.name, %digest, "image pushed");
    progress(Progress::Done);
    Ok(digest)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaTypeProbe {
    #[serde(default)]
    media_type: Option<String>,
}

/// The OCI manifest to push: the stored manifest when it is one (the
/// pushed image keeps its digest), else one written for the same config
/// and layers (a docker v2 schema 2 manifest from an earlier pull).
fn oci_manifest(store: &ImageStore, stored: &StoredImage) -> Result<Vec<u8>, ImageError> {
    let record = &stored.record;
    let path = store.blob_path(&record.digest)?;
    let bytes = read_json_file(&path, "the stored manifest")?;
    let probe: MediaTypeProbe = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::invalid(format!("the stored manifest is not valid: {e}")))?;
    let Document::Manifest(manifest) = parse_document(&bytes, Some(false), "the stored manifest")?
    else {
        return Err(ImageError::invalid("the stored manifest is an index"));
    };
    let is_oci = match probe.media_type.as_deref() {
        Some(media) => media == OCI_MANIFEST,
        None => manifest
            .config
            .media_type
            .as_deref()
            .is_some_and(|m| m.starts_with("application/vnd.oci.")),
    };
    if is_oci {
        return Ok(bytes);
    }
    let config_path = store.blob_path(&stored.config_digest)?;
    let config_size = fs::metadata(&config_path)
        .map_err(io_err("inspect", &config_path))?
        .len();
    let layers = record
        .layers
        .iter()
        .map(|l| {
            let blob = store.blob_path(&l.digest)?;
            Ok(LayerRef {
                digest: l.digest.clone(),
                size: l.size,
                gzip: sniff_file(&blob)? == Compression::Gzip,
            })
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    synthesize(&stored.config_digest, config_size, &layers)
}

/// One blob to upload.
struct Upload<'a> {
    digest: &'a str,
    size: u64,
    what: String,
    report: bool,
}

impl Upload<'_> {
    async fn run(
        &self,
        store: &ImageStore,
        conn: &Connection,
        image: &Reference,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(), ImageError> {
        let report = |p: Progress| {
            if self.report {
                progress(p);
            }
        };
        report(Progress::LayerStarted {
            digest: self.digest.to_string(),
            size: self.size,
        });
        let exists = conn
            .client
            .blob_exists(image, self.digest)
            .await
            .map_err(|e| conn.error(e))?;
        if exists {
            tracing::debug!(
                digest = self.digest,
                "the registry has the blob; not uploading"
            );
        } else {
            self.upload(store, conn, image, &report).await?;
        }
        report(Progress::Bytes {
            digest: self.digest.to_string(),
            done: self.size,
            size: self.size,
        });
        report(Progress::LayerDone {
            digest: self.digest.to_string(),
        });
        Ok(())
    }

    /// Streams the blob from the store; progress comes back through a
    /// watch channel because the body stream must be `'static`.
    async fn upload(
        &self,
        store: &ImageStore,
        conn: &Connection,
        image: &Reference,
        report: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(), ImageError> {
        let path = store.blob_path(self.digest)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(io_err("open", &path))?;
        let (sent_tx, mut sent_rx) = tokio::sync::watch::channel(0u64);
        let body = ReaderStream::with_capacity(file, UPLOAD_CHUNK).map(move |chunk| match chunk {
            Ok(bytes) => {
                sent_tx.send_modify(|sent| *sent += bytes.len() as u64);
                Ok(bytes)
            }
            Err(e) => Err(OciDistributionError::IoError(e)),
        });
        let upload = conn
            .client
            .push_blob_stream(image, body, self.digest, Some(self.size));
        tokio::pin!(upload);
        let result = loop {
            tokio::select! {
                result = &mut upload => break result,
                changed = sent_rx.changed() => {
                    if changed.is_err() {
                        break (&mut upload).await;
                    }
                    let done = *sent_rx.borrow_and_update();
                    report(Progress::Bytes {
                        digest: self.digest.to_string(),
                        done,
                        size: self.size,
                    });
                }
            }
        };
        result.map_err(|e| match e {
            OciDistributionError::RequestError(err) if !err.is_connect() => {
                conn.interrupted(&self.what, &err)
            }
            other => conn.error(other),
        })?;
        Ok(())
    }
}
