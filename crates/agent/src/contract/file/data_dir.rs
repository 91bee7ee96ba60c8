//! The file contract's data directory (`/direktiv-data`): making it usable, emptying it between
//! calls, writing the input, reading what the function left, and telling when its filesystem is
//! full.
//!
//! The directory is usually the mount point of a size-bounded tmpfs, so it is emptied, never
//! removed. It is world-writable, so a function running as any user can write its files there.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use faasbox_proto::ProcessUser;
use nix::unistd::{Gid, Uid};

/// The input file.
pub const DATA_IN: &str = "data.in";
/// The output file.
pub const DATA_OUT: &str = "data.out";
/// The error file: `{"errorCode", "errorMessage"}`.
pub const ERROR_JSON: &str = "error.json";
/// Extra log lines of the call.
pub const LOG_LOG: &str = "log.log";
/// Extra error log lines of the call.
pub const ERROR_LOG: &str = "error.log";

/// Creates the directory if needed and makes it writable for everyone.
pub fn prepare(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    if !fs::metadata(dir)?.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777))
}

/// Removes everything inside the directory (symlinks are removed, never followed) and makes it
/// writable for everyone again.
pub fn empty(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let removed = if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777))
}

/// Writes `data.in` (owned by the function's user).
pub fn write_input(dir: &Path, input: &[u8], user: Option<&ProcessUser>) -> io::Result<()> {
    let path = dir.join(DATA_IN);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&path)?;
    file.write_all(input)?;
    file.sync_data().or_else(ignore_unsupported)?;
    drop(file);
    if let Some(user) = user {
        nix::unistd::chown(
            &path,
            Some(Uid::from_raw(user.uid)),
            Some(Gid::from_raw(user.gid)),
        )?;
    }
    Ok(())
}

fn ignore_unsupported(err: io::Error) -> io::Result<()> {
    if err.raw_os_error() == Some(nix::libc::EINVAL) {
        Ok(())
    } else {
        Err(err)
    }
}

/// What a file the function left holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Content {
    Absent,
    Bytes(Vec<u8>),
    /// Larger than the limit it was read with.
    TooLarge,
}

/// Reads a regular file of the directory (not following a symlink), up to `limit` bytes.
pub fn read_file(dir: &Path, name: &str, limit: usize) -> io::Result<Content> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(dir.join(name));
    let file: File = match file {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Content::Absent),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Ok(Content::TooLarge);
    }
    Ok(Content::Bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::disk::is_full;

    #[test]
    fn empty_removes_everything_but_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        prepare(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o777
        );
        write_input(&dir, b"{}", None).unwrap();
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("a/b/c"), "x").unwrap();
        let outside = root.path().join("keep");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        empty(&dir).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o777
        );
    }

    #[test]
    fn reads_files_with_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_file(dir.path(), "data.out", 10).unwrap(),
            Content::Absent
        );
        fs::write(dir.path().join("data.out"), "0123456789").unwrap();
        assert_eq!(
            read_file(dir.path(), "data.out", 10).unwrap(),
            Content::Bytes(b"0123456789".to_vec())
        );
        assert_eq!(
            read_file(dir.path(), "data.out", 9).unwrap(),
            Content::TooLarge
        );
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("error.json")).unwrap();
        assert!(read_file(dir.path(), "error.json", 10).is_err());
        assert!(!is_full(dir.path()));
    }
}
