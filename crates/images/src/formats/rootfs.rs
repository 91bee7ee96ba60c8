//! Plain root filesystem tarballs (plain or gzip): one layer, whose blob is
//! the tarball itself; the run configuration comes from [`RootfsOptions`],
//! like `docker import --change`.

use std::path::Path;

use super::{ConfigSource, ImportPlan, LayerSource};
use crate::config::validate_rootfs_options;
use crate::error::ImageError;
use crate::RootfsOptions;

/// Plans the import of the root filesystem tarball at `archive`.
pub(crate) fn plan(archive: &Path, opts: &RootfsOptions) -> Result<ImportPlan, ImageError> {
    validate_rootfs_options(opts)?;
    Ok(ImportPlan {
        manifest: None,
        config: ConfigSource::Rootfs(opts.clone()),
        layers: vec![LayerSource {
            path: archive.to_path_buf(),
            scratch: false,
            digest: None,
            size: None,
            diff_id: None,
            what: format!("root filesystem tarball '{}'", archive.display()),
        }],
    })
}
