//! Appending a layer to an image the store holds ([`ImageStore::append_layer`]): a function's
//! code, or the file system changes of a dependency install, on top of a base image.
//!
//! The new image is a plan like any import's (`ingest.rs` stores it, with the same crash
//! safety, verification, limits and extraction rules): the base content's layers (the store's
//! own blobs, pinned, not copied or hashed again), then the new layer, a config that is the
//! base's with the changes applied, and a synthesised OCI manifest.
//!
//! The new layer's blob is the given tar gzip-compressed at the default level with a fixed
//! header (modification time 0, no file name, OS "unknown"), and the config gets no time
//! stamp, so the same base, layer bytes and changes give the same manifest digest (with the
//! same `flate2` build: another compressor version may compress differently).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::{Compression as Level, GzBuilder};

use crate::compress::{sniff_file, unsupported, Compression};
use crate::config::{validate_rootfs_options, ConfigChanges};
use crate::copy::{copy_to_file, CopyError, COPY_BUF_SIZE};
use crate::digest::{sha256_hex, HashingReader};
use crate::error::{io_err, ImageError};
use crate::formats::{ConfigSource, ImportPlan, LayerSource};
use crate::ingest;
use crate::reference::normalize_reference;
use crate::store::ImageStore;
use crate::{ImageRecord, RootfsOptions, Scope};

impl ImageStore {
    /// A new image named `name` (normalised) in `scope`: the content `base` (a manifest
    /// digest this store holds, `sha256:<hex>`) with one more layer on top, read from `layer`
    /// (an uncompressed tar in OCI layer form, whiteouts included), config changed by
    /// `changes`. Same inputs give the same manifest digest (no time stamps). Extraction
    /// rules and limits as for imports. An unknown base is [`ImageError::NotFound`].
    pub fn append_layer(
        &self,
        scope: &Scope,
        base: &str,
        layer: &Path,
        name: &str,
        changes: &ConfigChanges,
    ) -> Result<ImageRecord, ImageError> {
        let name = normalize_reference(name)?;
        validate_rootfs_options(&RootfsOptions {
            env: changes.env.clone(),
            workdir: changes.workdir.clone(),
            ..RootfsOptions::default()
        })?;
        sha256_hex(base).map_err(|_| {
            ImageError::InvalidOptions(format!(
                "base image '{base}' must be a manifest digest (sha256:<64 hex digits>)"
            ))
        })?;
        let compression = sniff_file(layer)?;
        if compression != Compression::None {
            return Err(match compression {
                Compression::Gzip => ImageError::InvalidOptions(format!(
                    "the layer '{}' to append is gzip-compressed; give the uncompressed tar",
                    layer.display()
                )),
                other => unsupported(other, "the layer to append"),
            });
        }
        tracing::info!(%base, layer = %layer.display(), %name, %scope, "appending a layer");
        ingest::run(self, |session| {
            let content = session
                .pin_content(base)
                .ok_or_else(|| ImageError::NotFound(base.to_string()))?;
            let config_path = self.blob_file(sha256_hex(&content.config_digest)?);
            let base_config = crate::formats::read_json_file(&config_path, "the base's config")?;

            let blob = session.scratch_path("appended");
            let diff_id = gzip_fixed(layer, &blob)?;
            let mut layers: Vec<LayerSource> = content
                .layers
                .iter()
                .map(|l| {
                    Ok(LayerSource {
                        path: self.blob_file(sha256_hex(&l.digest)?),
                        scratch: true,
                        digest: Some(l.digest.clone()),
                        size: Some(l.size),
                        diff_id: Some(l.diff_id.clone()),
                        what: format!("base layer {}", l.digest),
                    })
                })
                .collect::<Result<_, ImageError>>()?;
            layers.push(LayerSource {
                path: blob,
                scratch: true,
                digest: None,
                size: None,
                diff_id: Some(diff_id),
                what: format!("appended layer '{}'", layer.display()),
            });
            let plan = ImportPlan {
                manifest: None,
                config: ConfigSource::Appended {
                    base: base_config,
                    changes: changes.clone(),
                },
                layers,
            };
            session.import(plan, scope, &name)
        })
    }
}

/// Compresses `src` into `dest` with a fixed gzip header; returns `sha256:<hex>` of `src`
/// (the layer's diff ID).
fn gzip_fixed(src: &Path, dest: &Path) -> Result<String, ImageError> {
    let input = File::open(src).map_err(io_err("open", src))?;
    let mut reader = HashingReader::new(input);
    let out = crate::private::create_file(dest).map_err(io_err("create", dest))?;
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(BufWriter::new(out), Level::default());
    let mut buf = vec![0u8; COPY_BUF_SIZE];
    copy_to_file(&mut reader, &mut gz, dest, &mut buf).map_err(|e| match e {
        CopyError::Read(e) => ImageError::io("read", src, e),
        CopyError::Write(e) => e,
    })?;
    let finish = |gz: flate2::write::GzEncoder<BufWriter<File>>| -> io::Result<()> {
        let mut w = gz.finish()?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    finish(gz).map_err(io_err("write", dest))?;
    Ok(reader.finish().0)
}

#[cfg(test)]
mod tests;
