//! Installing an action's code in the action directory (`/init`'s work), and checking that there
//! is something to run.
//!
//! As OpenWhisk's `ActionRunner.init`: with `code` (not null), text code is written to
//! `<dir>/exec` (made executable, mode 0755), and `binary: true` code is the base64 of a zip
//! unpacked into `<dir>` ([`super::unzip`]); epilogue and build do nothing. Whether or not that
//! worked, the init succeeds when [`verify`] finds an executable `<dir>/exec` (so an image that
//! ships its own `exec` initialises with no code, or even with a broken zip). A zip that cannot
//! be unpacked prints `err <reason>` on stdout, as the proxy did.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use faasbox_proto::LogStream;
use serde_json::{Map, Value};

use super::message::truthy;
use super::unzip;

/// The executable every action runs, relative to the action directory.
pub const EXEC: &str = "exec";

/// What installing printed, and whether it installed anything.
#[derive(Debug, Default)]
pub struct Installed {
    /// Code was given and installed (OpenWhisk's `prep()`).
    pub prepared: bool,
    pub lines: Vec<(LogStream, String)>,
}

/// Installs the code of an init `value`; `Err` is a failure that fails the init whatever
/// [`verify`] says (OpenWhisk's proxy raised an exception there).
pub fn install(dir: &Path, value: &Map<String, Value>) -> Result<Installed, String> {
    let code = match value.get("code") {
        None | Some(Value::Null) => return Ok(Installed::default()),
        Some(code) => code,
    };
    let binary = value.get("binary").is_some_and(truthy);
    if binary {
        return Ok(install_zip(dir, code));
    }
    let Value::String(text) = code else {
        return Err("the action's code is not a string".into());
    };
    write_exec(dir, text.as_bytes()).map_err(|e| {
        format!(
            "cannot write the action's code to {}: {e}",
            dir.join(EXEC).display()
        )
    })?;
    Ok(Installed {
        prepared: true,
        lines: Vec::new(),
    })
}

fn install_zip(dir: &Path, code: &Value) -> Installed {
    let unpacked = match code {
        Value::String(text) => decode_base64(text).and_then(|bytes| {
            fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            unzip::unpack(&bytes, dir)
        }),
        _ => Err("the action's code is not a base64 string".into()),
    };
    match unpacked {
        Ok(()) => Installed {
            prepared: true,
            lines: Vec::new(),
        },
        Err(err) => Installed {
            prepared: false,
            lines: vec![(LogStream::Stdout, format!("err {err}"))],
        },
    }
}

/// Base64 as Python's `b64decode` reads it: characters outside the alphabet are skipped, padding
/// is optional.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let cleaned: Vec<u8> = text
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .collect();
    let cleaned = match cleaned.iter().position(|&b| b == b'=') {
        Some(pad) => &cleaned[..pad],
        None => &cleaned[..],
    };
    let engine = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine
        .decode(cleaned)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// Writes the text code to `<dir>/exec`, executable.
fn write_exec(dir: &Path, code: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let path = dir.join(EXEC);
    if fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        fs::remove_file(&path)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)?;
    file.write_all(code)?;
    drop(file);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
}

/// Whether `<dir>/exec` exists, is a file and is executable (OpenWhisk's `verify()`).
pub fn verify(dir: &Path) -> bool {
    let path = dir.join(EXEC);
    fs::metadata(&path).is_ok_and(|meta| meta.is_file())
        && nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// The init's `env`: every key with its value as an environment value.
pub fn init_env(value: &Map<String, Value>) -> Vec<(String, String)> {
    match value.get("env") {
        Some(Value::Object(env)) => env
            .iter()
            .map(|(name, value)| (name.clone(), super::message::env_text(value)))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn text_code_becomes_an_executable() {
        let dir = tempfile::tempdir().unwrap();
        let action = dir.path().join("action");
        assert!(!verify(&action));
        let installed =
            install(&action, &object(json!({"code": "#!/bin/sh\necho '{}'\n"}))).unwrap();
        assert!(installed.prepared);
        assert!(verify(&action));
        assert_eq!(
            fs::read_to_string(action.join(EXEC)).unwrap(),
            "#!/bin/sh\necho '{}'\n"
        );
    }

    #[test]
    fn no_code_installs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for value in [json!({}), json!({"code": null, "main": "main"})] {
            let installed = install(dir.path(), &object(value)).unwrap();
            assert!(!installed.prepared);
        }
        assert!(install(dir.path(), &object(json!({"code": 5}))).is_err());
    }

    #[test]
    fn bad_zips_print_err() {
        let dir = tempfile::tempdir().unwrap();
        let installed = install(
            dir.path(),
            &object(json!({"code": "bm90IGEgemlw", "binary": true})),
        )
        .unwrap();
        assert!(!installed.prepared);
        assert_eq!(installed.lines.len(), 1);
        assert!(
            installed.lines[0].1.starts_with("err "),
            "{:?}",
            installed.lines
        );
    }

    #[test]
    fn base64_as_python_reads_it() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVs\nbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVs bG8=\n").unwrap(), b"hello");
    }

    #[test]
    fn init_env_values() {
        let env = init_env(&object(json!({"env": {"A": "x", "N": 3, "Z": null}})));
        assert_eq!(
            env,
            [
                ("A".to_string(), "x".to_string()),
                ("N".to_string(), "3".to_string()),
                ("Z".to_string(), String::new())
            ]
        );
    }
}
