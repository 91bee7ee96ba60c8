//! The workspace's packages, their direct dependencies and their targets, read from
//! `cargo metadata --no-deps --format-version 1` (the cargo that runs the tests, from `CARGO`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workspace root: two levels above this crate's manifest (`crates/architecture`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// How a package depends on another: what its own code, its tests, or its build script uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DependencyKind {
    /// `[dependencies]`: part of what the package ships.
    Normal,
    /// `[dev-dependencies]`: tests, examples and benchmarks only.
    Dev,
    /// `[build-dependencies]`: the build script only.
    Build,
}

/// One direct dependency of a workspace package, as its manifest declares it.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// The depended-on package's name (not a `package = …` rename).
    pub name: String,
    /// Which table of the manifest declares it.
    pub kind: DependencyKind,
}

/// One compilation target of a package (its library, a binary, a test, …).
#[derive(Clone, Debug)]
pub struct Target {
    /// The target's name (the crate name of a library, the binary's name).
    pub name: String,
    /// Cargo's kinds for it: `lib`, `bin`, `test`, `bench`, `proc-macro`, …
    pub kinds: Vec<String>,
    /// The target's root source file (`src/lib.rs`, `src/main.rs`, …).
    pub src_path: PathBuf,
}

impl Target {
    /// Whether this target is the package's library or one of its binaries: the code it ships,
    /// as opposed to its tests, benchmarks and examples.
    pub fn ships(&self) -> bool {
        self.kinds
            .iter()
            .any(|k| k == "bin" || k == "proc-macro" || k.ends_with("lib"))
    }
}

/// A workspace member.
#[derive(Clone, Debug)]
pub struct Package {
    /// The package's name (`faasbox-server`, `faasbox`, …).
    pub name: String,
    /// Its direct dependencies, every kind.
    pub dependencies: Vec<Dependency>,
    /// Its targets.
    pub targets: Vec<Target>,
}

/// Reads the workspace's members with `cargo metadata --no-deps` (no dependency resolution, no
/// network). The cargo binary is `CARGO` from the environment (set by cargo and nextest for
/// the tests they run), else the one that built this crate.
pub fn packages() -> Result<Vec<Package>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let manifest = root().join("Cargo.toml");
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("cannot run {} metadata: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata --manifest-path {}` failed ({}): {}",
            manifest.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON document: {e}"))?;
    parse_packages(&metadata)
}

/// The packages of a `cargo metadata` document (format version 1).
pub fn parse_packages(metadata: &Value) -> Result<Vec<Package>, String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no `packages` array")?;
    packages.iter().map(parse_package).collect()
}

fn parse_package(package: &Value) -> Result<Package, String> {
    let name = string(package, "name")?;
    let dependencies = package["dependencies"]
        .as_array()
        .ok_or_else(|| format!("package {name} has no `dependencies` array"))?
        .iter()
        .map(|dep| {
            let kind = match dep["kind"].as_str() {
                None => DependencyKind::Normal,
                Some("dev") => DependencyKind::Dev,
                Some("build") => DependencyKind::Build,
                Some(other) => {
                    return Err(format!(
                        "package {name}: dependency kind {other:?} is new to this test: add it to DependencyKind"
                    ))
                }
            };
            Ok(Dependency {
                name: string(dep, "name")?,
                kind,
            })
        })
        .collect::<Result<_, String>>()?;
    let targets = package["targets"]
        .as_array()
        .ok_or_else(|| format!("package {name} has no `targets` array"))?
        .iter()
        .map(|target| {
            Ok(Target {
                name: string(target, "name")?,
                kinds: target["kind"]
                    .as_array()
                    .map(|kinds| {
                        kinds
                            .iter()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                src_path: PathBuf::from(string(target, "src_path")?),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Package {
        name,
        dependencies,
        targets,
    })
}

fn string(value: &Value, key: &str) -> Result<String, String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("cargo metadata: an entry has no string `{key}`: {value}"))
}
