//! Writing a direktiv-cmd call's `files` into its directory before the commands run.
//!
//! A name is a relative path inside the call's directory (subdirectories are created); absolute
//! names and `..` are refused. The content is written as text with the file's mode, and the file
//! (with any directory created for it) belongs to the function's user.

use std::path::Path;

use faasbox_proto::ProcessUser;

use super::input::FileSpec;
use crate::contract::call_files;

pub use crate::contract::call_files::chown;

/// Writes every file; `Err` names the file that could not be written and why.
pub fn write_all(dir: &Path, files: &[FileSpec], user: Option<&ProcessUser>) -> Result<(), String> {
    for file in files {
        call_files::write_file(dir, &file.name, file.content.as_bytes(), file.mode, user)
            .map_err(|e| format!("{}: {e}", file.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

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
