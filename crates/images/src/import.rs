//! Importing images from files: [`ImageStore::import_archive`] (a `docker save` archive, an
//! OCI layout tar or a root filesystem tarball) and [`ImageStore::import_oci_dir`] (an OCI
//! layout directory). The input is read into a plan (`formats/`), which `ingest.rs` stores.

use std::path::Path;

use crate::archive::{self, ArchiveDir, ArchiveKind};
use crate::error::ImageError;
use crate::formats::{docker, oci, rootfs, LayoutDir};
use crate::ingest;
use crate::reference::normalize_reference;
use crate::store::ImageStore;
use crate::{ImageRecord, RootfsOptions, Scope};

impl ImageStore {
    /// Imports an archive file: a `docker save` tar, an OCI image layout tar, or else a root
    /// filesystem tarball (configured by `rootfs`), each optionally gzip-compressed. The
    /// image is recorded as `name` (normalised) in `scope`'s table, replacing any image of
    /// that name there.
    pub fn import_archive(
        &self,
        scope: &Scope,
        archive: &Path,
        name: &str,
        rootfs: &RootfsOptions,
    ) -> Result<ImageRecord, ImageError> {
        let name = normalize_reference(name)?;
        let kind = archive::detect(archive)?;
        tracing::info!(archive = %archive.display(), %name, %scope, ?kind, "importing image archive");
        ingest::run(self, |session| {
            let plan = match kind {
                ArchiveKind::Docker => {
                    let dir = ArchiveDir::extract(
                        archive,
                        &session.scratch_path("archive"),
                        &self.limits,
                    )?;
                    docker::plan(&dir)?
                }
                ArchiveKind::OciLayout => {
                    let dir = ArchiveDir::extract(
                        archive,
                        &session.scratch_path("archive"),
                        &self.limits,
                    )?;
                    oci::plan(&dir, &name)?
                }
                ArchiveKind::Rootfs => rootfs::plan(archive, rootfs)?,
            };
            session.import(plan, scope, &name)
        })
    }

    /// Imports an OCI image layout directory as `name` (normalised) in `scope`'s table.
    pub fn import_oci_dir(
        &self,
        scope: &Scope,
        dir: &Path,
        name: &str,
    ) -> Result<ImageRecord, ImageError> {
        let name = normalize_reference(name)?;
        let layout = LayoutDir::new(dir)?;
        tracing::info!(dir = %dir.display(), %name, %scope, "importing OCI layout directory");
        ingest::run(self, |session| {
            let plan = oci::plan(&layout, &name)?;
            session.import(plan, scope, &name)
        })
    }
}
