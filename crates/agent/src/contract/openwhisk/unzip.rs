//! Unpacking an OpenWhisk zip action into the action directory.
//!
//! Entries whose names would land outside the directory (absolute, or with `..`) fail the whole
//! archive rather than being rewritten. Symbolic links are written as plain files holding the
//! link's target (as Python's `zipfile`, which OpenWhisk's proxy uses, does), and files are never
//! opened through an existing symbolic link, so nothing is written outside the directory. Unix
//! modes in the archive are kept; `exec` at the root is always made executable (OpenWhisk's proxy
//! wrote it over its executable stub, which kept the stub's mode).

use std::fs::{self, OpenOptions};
use std::io::{self, Cursor, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zip::ZipArchive;

/// The most an archive may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// The mode of a file whose entry has none.
const DEFAULT_MODE: u32 = 0o644;

/// Unpacks `archive` into `dest` (which must exist); `Err` says why it could not.
pub fn unpack(archive: &[u8], dest: &Path) -> Result<(), String> {
    let mut zip = ZipArchive::new(Cursor::new(archive)).map_err(|e| e.to_string())?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| e.to_string())?;
        total = total.saturating_add(entry.size());
    }
    if total > MAX_UNPACKED_BYTES {
        return Err(format!(
            "the archive unpacks to {total} bytes, more than the {MAX_UNPACKED_BYTES} allowed"
        ));
    }
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = entry
            .name()
            .map_or_else(|_| format!("entry {i}"), |name| name.into_owned());
        let relative = entry
            .enclosed_name()
            .ok_or_else(|| format!("{name}: the entry's path leaves the action directory"))?;
        let path = dest.join(&relative);
        if entry.is_dir() {
            fs::create_dir_all(&path).map_err(|e| format!("{name}: {e}"))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{name}: {e}"))?;
        }
        let mode = entry
            .unix_mode()
            .map(|mode| mode & 0o7777)
            .filter(|mode| *mode != 0 && !entry.is_symlink())
            .unwrap_or(DEFAULT_MODE);
        write_entry(&path, &mut entry, mode).map_err(|e| format!("{name}: {e}"))?;
    }
    let exec = dest.join("exec");
    if let Ok(meta) = fs::symlink_metadata(&exec) {
        if meta.is_file() {
            let mode = meta.permissions().mode() & 0o7777 | 0o755;
            fs::set_permissions(&exec, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("exec: {e}"))?;
        }
    }
    Ok(())
}

fn write_entry(path: &Path, entry: &mut impl Read, mode: u32) -> io::Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|meta| !meta.is_file()) {
        fs::remove_file(path)?;
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    io::copy(entry, &mut out)?;
    drop(out);
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn archive(entries: &[(&str, &[u8], Option<u32>)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content, mode) in entries {
            let mut options = SimpleFileOptions::default();
            if let Some(mode) = mode {
                options = options.unix_permissions(*mode);
            }
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn unpacks_with_modes_and_an_executable_exec() {
        let dest = tempfile::tempdir().unwrap();
        let bytes = archive(&[
            ("exec", b"#!/bin/sh\necho '{}'\n", Some(0o644)),
            ("lib/data.txt", b"hello", Some(0o600)),
            ("plain", b"x", None),
        ]);
        unpack(&bytes, dest.path()).unwrap();
        let mode = |p: &str| {
            fs::metadata(dest.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("exec"), 0o755);
        assert_eq!(mode("lib/data.txt"), 0o600);
        assert_eq!(mode("plain"), 0o644);
        assert_eq!(
            fs::read(dest.path().join("lib/data.txt")).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn refuses_escaping_entries_and_garbage() {
        let dest = tempfile::tempdir().unwrap();
        let root = dest.path().join("action");
        fs::create_dir(&root).unwrap();
        let bytes = archive(&[("../evil", b"x", None)]);
        let err = unpack(&bytes, &root).unwrap_err();
        assert!(err.contains("leaves the action directory"), "{err}");
        assert!(!dest.path().join("evil").exists());
        assert!(unpack(b"not a zip", &root).is_err());
    }

    #[test]
    fn does_not_write_through_symlinks() {
        let dest = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dest.path().join("exec")).unwrap();
        let bytes = archive(&[("exec", b"new", None)]);
        unpack(&bytes, dest.path()).unwrap();
        assert_eq!(fs::read(outside.path()).unwrap(), b"");
        assert_eq!(fs::read(dest.path().join("exec")).unwrap(), b"new");
    }
}
