//! Removing whatever an entry of one of the store's directories is (file, symlink or
//! directory tree), shared by the store, imports, downloads and pulls.

use std::fs;
use std::io;
use std::path::Path;

use crate::error::{io_err, ImageError};

/// Removes a file, symlink or directory tree (never following symlinks).
pub(crate) fn remove_any(path: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(io_err("remove", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io("inspect", path, e)),
    }
}
