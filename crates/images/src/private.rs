//! The store's own files are private: its directories are 0700 and the files it writes
//! (blobs, the name table, downloads) 0600, so no other local user reads what was imported
//! or pulled (private registry images included). Extracted layers keep the modes their image
//! gives them (they are the functions' root filesystems), inside the 0700 `layers/`.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of the store's directories.
pub(crate) const DIR_MODE: u32 = 0o700;
/// The mode of the files the store writes.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates (or truncates) a file readable by its owner only.
pub(crate) fn create_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // An existing file keeps its mode through `open`.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Writes `bytes` to a file readable by its owner only.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    create_file(path)?.write_all(bytes)
}

/// Creates `dir` and its missing parents, and makes `dir` itself 0700.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

/// Makes a file that entered the store (renamed or linked in) 0600.
pub(crate) fn seal(path: &Path) -> io::Result<()> {
    fs::set_permissions(path, Permissions::from_mode(FILE_MODE))
}

/// Makes every regular file under `dir` 0600 and every directory 0700 (a store written by
/// an older version, at open). Symlinks are left alone and never followed.
pub(crate) fn restrict_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::set_permissions(entry.path(), Permissions::from_mode(DIR_MODE))?;
            restrict_tree(&entry.path())?;
        } else if kind.is_file() {
            seal(&entry.path())?;
        }
    }
    Ok(())
}
