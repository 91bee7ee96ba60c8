//! Where cargo put the test executables to run in the machine. Under nextest, `cargo test
//! --no-run --workspace` lists every test target's executable (nothing is rebuilt after
//! `cargo nextest run --workspace`; a stale one is rebuilt). Under `cargo test`, which holds
//! the build directory's lock while tests run, the newest `<name>-<hash>` executable in the
//! `deps` directory is taken instead (`cargo test --workspace` has just built them all).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// One test target: its package, its kind (`lib` for unit tests, `test` for a file of
/// `tests/`) and its name.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub package: &'static str,
    pub kind: &'static str,
    pub name: &'static str,
}

/// The executable of each of `targets`, in order; `deps` is cargo's directory of them.
pub fn executables(workspace: &Path, deps: &Path, targets: &[Target]) -> Result<Vec<PathBuf>> {
    if std::env::var_os("NEXTEST").is_none() {
        return targets.iter().map(|t| newest_in(deps, t)).collect();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(workspace)
        .args(["test", "--no-run", "--workspace", "--message-format=json"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        bail!(
            "`cargo test --no-run --workspace` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let artifacts: Vec<Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .filter(|m: &Value| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .collect();
    targets
        .iter()
        .map(|target| {
            artifacts
                .iter()
                .find(|m| {
                    m["target"]["name"] == target.name
                        && m["target"]["kind"]
                            .as_array()
                            .is_some_and(|kinds| kinds.iter().any(|k| k == target.kind))
                        && package_name(&m["package_id"]) == Some(target.package)
                })
                .and_then(|m| m["executable"].as_str())
                .map(PathBuf::from)
                .with_context(|| format!("cargo built no test executable for {target:?}"))
        })
        .collect()
}

/// The package name in a cargo package id: `path+file:///…/crates/cli#faasbox@0.1.0` (a
/// directory whose name differs from the package's) or `…/faasbox-x#0.1.0` (one named like it).
fn package_name(id: &Value) -> Option<&str> {
    let id = id.as_str()?;
    let (location, fragment) = id.rsplit_once('#')?;
    match fragment.split_once('@') {
        Some((name, _)) => Some(name),
        None => location.rsplit('/').next(),
    }
}

/// The newest executable `<target name>-<hash>` in `deps`.
fn newest_in(deps: &Path, target: &Target) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let prefix = format!("{}-", target.name);
    std::fs::read_dir(deps)
        .with_context(|| format!("reading {}", deps.display()))?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix(&prefix)
                .is_some_and(|hash| hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .then(|| (meta.modified().ok(), e.path()))
        })
        .max()
        .map(|(_, path)| path)
        .with_context(|| {
            format!(
                "no test executable {prefix}<hash> in {} for {target:?}",
                deps.display()
            )
        })
}
