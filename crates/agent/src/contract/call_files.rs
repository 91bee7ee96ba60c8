//! Placing a call's files (`faasbox_proto::CallFile`, a flow action's `files`) into the
//! directory the function finds them in, before it runs.
//!
//! Every name stays inside the directory: absolute names, `..` and (for the platform's names)
//! `.` are refused, and no symlink is followed where a file is written. A `file` is written with
//! mode 0644; a `tar`/`tar.gz` is unpacked into the directory of its name, keeping its files'
//! permission bits; only regular files and directories are unpacked. Everything created
//! belongs to the function's user. An error names the file (never its content, which may be a
//! secret).

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use faasbox_proto::{file_name_problem, CallFile, CallFileKind, ProcessUser};
use nix::unistd::{Gid, Uid};

/// The mode of a `file`.
const FILE_MODE: u32 = 0o644;
/// The mode of a directory made for a file.
const DIR_MODE: u32 = 0o755;

/// Places every file in `dir`; `Err` names the file that could not be placed and why.
pub fn place_all(dir: &Path, files: &[CallFile], user: Option<&ProcessUser>) -> Result<(), String> {
    for file in files {
        place(dir, file, user).map_err(|e| format!("file '{}': {e}", file.name))?;
    }
    Ok(())
}

fn place(dir: &Path, file: &CallFile, user: Option<&ProcessUser>) -> io::Result<()> {
    if let Some(problem) = file_name_problem(&file.name) {
        return Err(invalid(problem));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&file.data)
        .map_err(|e| invalid(&format!("its data is not base64: {e}")))?;
    match file.kind {
        CallFileKind::File => write_file(dir, &file.name, &bytes, FILE_MODE, user),
        CallFileKind::Tar => unpack(dir, &file.name, bytes.as_slice(), user),
        CallFileKind::TarGz => unpack(
            dir,
            &file.name,
            flate2::read::GzDecoder::new(bytes.as_slice()),
            user,
        ),
    }
}

/// Unpacks a tar archive into the directory `dir/name`.
fn unpack(
    dir: &Path,
    name: &str,
    archive: impl Read,
    user: Option<&ProcessUser>,
) -> io::Result<()> {
    let root = make_dirs(dir, &safe_relative(name)?, user)?;
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let entry_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let context = |e: io::Error| io::Error::new(e.kind(), format!("entry '{entry_name}': {e}"));
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            match safe_relative(&entry_name) {
                Ok(relative) => make_dirs(&root, &relative, user).map(drop),
                // The archive's own root ("./").
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
            .map_err(context)?;
        } else if kind.is_file() {
            let mode = entry.header().mode().map_err(context)? & 0o777;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(context)?;
            write_file(&root, &entry_name, &bytes, mode, user).map_err(context)?;
        } else if !matches!(
            kind,
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader | tar::EntryType::GNULongName
        ) {
            return Err(context(invalid(
                "only files and directories are unpacked (no links or devices)",
            )));
        }
    }
    Ok(())
}

/// Writes `bytes` as the file `name` (a relative path) under `dir`, creating the directories it
/// needs; the file gets `mode` and, like the directories, belongs to `user`.
pub fn write_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
    user: Option<&ProcessUser>,
) -> io::Result<()> {
    let relative = safe_relative(name)?;
    if let Some(parent) = relative.parent() {
        make_dirs(dir, parent, user)?;
    }
    let path = dir.join(&relative);
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)?;
    out.write_all(bytes)?;
    drop(out);
    chown(&path, user)?;
    // After the chown, which clears set-id bits.
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
}

/// Creates `dir/relative` one component at a time (each new one owned by `user`); an existing
/// component must be a real directory, not a symlink. The full path.
fn make_dirs(dir: &Path, relative: &Path, user: Option<&ProcessUser>) -> io::Result<PathBuf> {
    let mut current = dir.to_path_buf();
    for component in relative.components() {
        current.push(component);
        match fs::create_dir(&current) {
            Ok(()) => {
                chown(&current, user)?;
                fs::set_permissions(&current, fs::Permissions::from_mode(DIR_MODE))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !fs::symlink_metadata(&current)?.is_dir() {
                    return Err(invalid(&format!(
                        "{} exists and is not a directory",
                        current.display()
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(current)
}

/// Gives `path` to the function's user (nothing to do when it runs as root).
pub fn chown(path: &Path, user: Option<&ProcessUser>) -> io::Result<()> {
    if let Some(user) = user {
        nix::unistd::chown(
            path,
            Some(Uid::from_raw(user.uid)),
            Some(Gid::from_raw(user.gid)),
        )?;
    }
    Ok(())
}

/// `name` as a path that stays inside the directory it is joined to (`.` components are
/// skipped). An empty result is `NotFound`.
fn safe_relative(name: &str) -> io::Result<PathBuf> {
    if name.contains('\0') {
        return Err(invalid("the name must not contain NUL bytes"));
    }
    let mut relative = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("the name must not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid("the name must be relative to the call's directory"))
            }
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the name is empty"));
    }
    Ok(relative)
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn encode(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn file(name: &str, kind: CallFileKind, bytes: &[u8]) -> CallFile {
        CallFile {
            name: name.into(),
            kind,
            data: encode(bytes),
        }
    }

    /// A tar archive with the given entries (`None` content: a directory).
    fn tar_of(entries: &[(&str, Option<&[u8]>, u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(*mode);
            match content {
                Some(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, name, *bytes).unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(&mut header, name, &[][..]).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn writes_files_and_unpacks_archives() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_of(&[
            ("./", None, 0o755),
            ("bin/", None, 0o755),
            ("bin/run.sh", Some(b"#!/bin/sh\necho hi\n"), 0o755),
            ("./notes.txt", Some(b"notes"), 0o640),
        ]);
        place_all(
            dir.path(),
            &[
                file("plain.txt", CallFileKind::File, b"hello"),
                file("sub/dir/x.bin", CallFileKind::File, &[0, 1, 255]),
                file("bundle", CallFileKind::TarGz, &gzip(&archive)),
                file("raw", CallFileKind::Tar, &archive),
            ],
            None,
        )
        .unwrap();
        let path = |p: &str| dir.path().join(p);
        assert_eq!(fs::read(path("plain.txt")).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(path("plain.txt")).unwrap().mode() & 0o7777,
            0o644
        );
        assert_eq!(fs::read(path("sub/dir/x.bin")).unwrap(), [0, 1, 255]);
        for root in ["bundle", "raw"] {
            let script = path(&format!("{root}/bin/run.sh"));
            assert_eq!(fs::read(&script).unwrap(), b"#!/bin/sh\necho hi\n");
            assert_eq!(fs::metadata(&script).unwrap().mode() & 0o7777, 0o755);
            let notes = path(&format!("{root}/notes.txt"));
            assert_eq!(fs::metadata(&notes).unwrap().mode() & 0o7777, 0o640);
        }
    }

    #[test]
    fn files_belong_to_the_functions_user() {
        if !nix::unistd::geteuid().is_root() {
            faasbox_test_registry::cannot_run("chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let user = ProcessUser {
            uid: 4242,
            gid: 4343,
            additional_gids: vec![],
        };
        let archive = gzip(&tar_of(&[("d/f", Some(b"x"), 0o600)]));
        place_all(
            dir.path(),
            &[
                file("a/b.txt", CallFileKind::File, b"x"),
                file("t", CallFileKind::TarGz, &archive),
            ],
            Some(&user),
        )
        .unwrap();
        for p in ["a", "a/b.txt", "t", "t/d", "t/d/f"] {
            let meta = fs::metadata(dir.path().join(p)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "{p}");
        }
    }

    #[test]
    fn refuses_names_and_entries_outside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["../escape", "/etc/passwd", "a/../../b", "", "./a", "a\0b"] {
            let err =
                place_all(dir.path(), &[file(name, CallFileKind::File, b"x")], None).unwrap_err();
            assert!(err.starts_with(&format!("file '{name}': ")), "{err}");
        }
        // An archive entry climbing out (written by hand: the builder refuses `..`).
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..9].copy_from_slice(b"../escape");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut archive = header.as_bytes().to_vec();
        archive.extend_from_slice(&[b'x'; 512]);
        archive.extend_from_slice(&[0; 1024]);
        let err =
            place_all(dir.path(), &[file("t", CallFileKind::Tar, &archive)], None).unwrap_err();
        assert!(
            err.contains("entry '../escape'") && err.contains(".."),
            "{err}"
        );
        assert!(!dir.path().parent().unwrap().join("escape").exists());
        // Symlinks are neither unpacked nor followed.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, "link", "/etc/hostname")
            .unwrap();
        let archive = builder.into_inner().unwrap();
        let err =
            place_all(dir.path(), &[file("s", CallFileKind::Tar, &archive)], None).unwrap_err();
        assert!(err.contains("only files and directories"), "{err}");
        std::os::unix::fs::symlink("/etc", dir.path().join("planted")).unwrap();
        assert!(place_all(
            dir.path(),
            &[file("planted/x", CallFileKind::File, b"x")],
            None
        )
        .is_err());
        assert!(place_all(
            dir.path(),
            &[file("planted", CallFileKind::File, b"x")],
            None
        )
        .is_err());
    }

    #[test]
    fn bad_data_names_the_file_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let bad = CallFile {
            name: "secret.txt".into(),
            kind: CallFileKind::File,
            data: "not base64 s3cr3t!".into(),
        };
        let err = place_all(dir.path(), &[bad], None).unwrap_err();
        assert!(
            err.starts_with("file 'secret.txt': its data is not base64"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");
        let err = place_all(
            dir.path(),
            &[file("t", CallFileKind::TarGz, b"not gzip at all")],
            None,
        )
        .unwrap_err();
        assert!(err.starts_with("file 't': "), "{err}");
    }
}
