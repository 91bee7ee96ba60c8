//! Writing a direktiv-cmd call's `files` into its directory before the commands run.
//!
//! A name is a relative path inside the call's directory (subdirectories are created); absolute
//! names and `..` are refused. The content is written as text with the file's mode, and the file
//! (with any directory created for it) belongs to the function's user.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use faasbox_proto::ProcessUser;
use nix::unistd::{Gid, Uid};

use super::input::FileSpec;

/// Writes every file; `Err` names the file that could not be written and why.
pub fn write_all(dir: &Path, files: &[FileSpec], user: Option<&ProcessUser>) -> Result<(), String> {
    for file in files {
        write_one(dir, file, user).map_err(|e| format!("{}: {e}", file.name))?;
    }
    Ok(())
}

fn write_one(dir: &Path, file: &FileSpec, user: Option<&ProcessUser>) -> io::Result<()> {
    let relative = safe_relative(&file.name)?;
    let path = dir.join(&relative);
    // Directories the name needs, each owned by the user.
    let mut current = dir.to_path_buf();
    if let Some(parent) = relative.parent() {
        for component in parent.components() {
            current.push(component);
            match fs::create_dir(&current) {
                Ok(()) => chown(&current, user)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)?;
    out.write_all(file.content.as_bytes())?;
    drop(out);
    chown(&path, user)?;
    // After the chown, which clears set-id bits.
    fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))
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

/// `name` as a path that stays inside the directory it is joined to.
fn safe_relative(name: &str) -> io::Result<PathBuf> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
    let path = Path::new(name);
    let mut relative = PathBuf::new();
    for component in path.components() {
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
        return Err(invalid("the name is empty"));
    }
    Ok(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, content: &str, mode: u32) -> FileSpec {
        FileSpec {
            name: name.into(),
            content: content.into(),
            mode,
        }
    }

    #[test]
    fn writes_files_with_modes_and_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        write_all(
            dir.path(),
            &[
                spec("script.sh", "#!/bin/sh\necho hi\n", 0o755),
                spec("./sub/dir/cert.pem", "x", 0o600),
            ],
            None,
        )
        .unwrap();
        let script = dir.path().join("script.sh");
        assert_eq!(fs::read_to_string(&script).unwrap(), "#!/bin/sh\necho hi\n");
        assert_eq!(
            fs::metadata(&script).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        let cert = dir.path().join("sub/dir/cert.pem");
        assert_eq!(
            fs::metadata(&cert).unwrap().permissions().mode() & 0o7777,
            0o600
        );
    }

    #[test]
    fn refuses_names_outside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["../escape", "/etc/passwd", "a/../../b", "", "."] {
            let err = write_all(dir.path(), &[spec(name, "x", 0o644)], None).unwrap_err();
            assert!(err.starts_with(&format!("{name}: ")), "{err}");
        }
        // A symlink planted where a file goes is not followed.
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
        assert!(write_all(dir.path(), &[spec("link", "x", 0o644)], None).is_err());
    }
}
