//! Image config JSON: reading the run configuration and layer diff IDs out
//! of a docker/OCI image config, writing one for a root filesystem, and changing a base
//! image's for an appended layer ([`ConfigChanges`]).
//!
//! Reading is deliberately lenient (only the fields faasbox needs, `null`
//! allowed everywhere): configs written by different docker versions and
//! builders differ in everything else.

use oci_spec::image::{Arch, ConfigBuilder, ImageConfigurationBuilder, Os, RootFsBuilder};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::digest::sha256_hex;
use crate::error::ImageError;
use crate::{RootfsOptions, RunConfig};

/// What faasbox takes from an image config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedConfig {
    pub(crate) run: RunConfig,
    /// `sha256:<hex>` of each uncompressed layer, bottom first.
    pub(crate) diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<ContainerConfig>,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
    #[serde(rename = "User", default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

/// Parses an image config; `what` names it in errors.
pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<ParsedConfig, ImageError> {
    let file: ConfigFile = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::invalid(format!("{what} is not a valid image config: {e}")))?;
    let c = file.config;
    let run = match c {
        Some(c) => RunConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            workdir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
        },
        None => RunConfig::default(),
    };
    let diff_ids = file.rootfs.and_then(|r| r.diff_ids).unwrap_or_default();
    for id in &diff_ids {
        sha256_hex(id)
            .map_err(|e| ImageError::invalid(format!("{what} lists a bad layer diff ID: {e}")))?;
    }
    Ok(ParsedConfig { run, diff_ids })
}

/// Checks root filesystem options before anything is imported.
pub(crate) fn validate_rootfs_options(opts: &RootfsOptions) -> Result<(), ImageError> {
    for entry in &opts.env {
        match entry.split_once('=') {
            Some((key, _)) if !key.is_empty() => {}
            _ => {
                return Err(ImageError::InvalidOptions(format!(
                    "environment entry '{entry}' must look like KEY=VALUE"
                )))
            }
        }
    }
    for (what, value) in [("working directory", &opts.workdir), ("user", &opts.user)] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().any(char::is_control))
        {
            return Err(ImageError::InvalidOptions(format!(
                "the {what} contains control characters"
            )));
        }
    }
    if let Some(dir) = opts.workdir.as_deref() {
        if !dir.is_empty() && !dir.starts_with('/') {
            return Err(ImageError::InvalidOptions(format!(
                "working directory '{dir}' must be an absolute path"
            )));
        }
    }
    Ok(())
}

/// The OCI image config of a root filesystem tarball: the host platform, the
/// given run options and the one layer. No creation time, so that importing
/// the same tarball with the same options gives the same digest.
pub(crate) fn rootfs_config(
    opts: &RootfsOptions,
    diff_ids: Vec<String>,
) -> Result<Vec<u8>, ImageError> {
    let oci =
        |e: oci_spec::OciSpecError| ImageError::invalid(format!("cannot build image config: {e}"));
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let mut config = ConfigBuilder::default();
    if let Some(v) = non_empty(&opts.entrypoint) {
        config = config.entrypoint(v);
    }
    if let Some(v) = non_empty(&opts.cmd) {
        config = config.cmd(v);
    }
    if let Some(v) = non_empty(&opts.env) {
        config = config.env(v);
    }
    if let Some(v) = opts.workdir.clone().filter(|v| !v.is_empty()) {
        config = config.working_dir(v);
    }
    if let Some(v) = opts.user.clone().filter(|v| !v.is_empty()) {
        config = config.user(v);
    }
    let image = ImageConfigurationBuilder::default()
        .architecture(Arch::default())
        .os(Os::Linux)
        .config(config.build().map_err(oci)?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .map_err(oci)?,
        )
        .build()
        .map_err(oci)?;
    serde_json::to_vec(&image)
        .map_err(|e| ImageError::invalid(format!("cannot encode image config: {e}")))
}

/// What the history entry of an appended layer says created it.
pub(crate) const CREATED_BY: &str = "faasbox append-layer";

/// Changes to the image config of an appended image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    /// `KEY=VALUE` entries; each replaces the base's entry of the same `KEY`, or is added
    /// after the base's entries.
    pub env: Vec<String>,
    /// The new working directory (absolute); `None` keeps the base's.
    pub workdir: Option<String>,
}

/// The config of an appended image: the base's config document (`base`) with `changes`
/// applied, `rootfs.diff_ids` set to `diff_ids` (the base's and the new layer's) and one
/// history entry more. Everything else of the base's is kept as it is.
pub(crate) fn appended_config(
    base: &[u8],
    changes: &ConfigChanges,
    diff_ids: Vec<String>,
) -> Result<Vec<u8>, ImageError> {
    let bad = |what: &str| ImageError::invalid(format!("the base image's config {what}"));
    let mut doc: Value =
        serde_json::from_slice(base).map_err(|e| bad(&format!("is not JSON: {e}")))?;
    let root = doc
        .as_object_mut()
        .ok_or_else(|| bad("is not a JSON object"))?;

    let config = object_field(root, "config").ok_or_else(|| bad("has a non-object 'config'"))?;
    if !changes.env.is_empty() {
        let mut env: Vec<String> = match config.get("Env") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| bad("has an 'Env' that is not a list of strings"))?,
        };
        for change in &changes.env {
            let key = change.split_once('=').map_or(change.as_str(), |(k, _)| k);
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
            {
                Some(existing) => existing.clone_from(change),
                None => env.push(change.clone()),
            }
        }
        config.insert("Env".into(), Value::from(env));
    }
    if let Some(dir) = &changes.workdir {
        config.insert("WorkingDir".into(), Value::from(dir.clone()));
    }

    let rootfs = object_field(root, "rootfs").ok_or_else(|| bad("has a non-object 'rootfs'"))?;
    rootfs.insert("type".into(), Value::from("layers"));
    rootfs.insert("diff_ids".into(), Value::from(diff_ids));

    let mut history = match root.get("history") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(entries)) => entries.clone(),
        Some(_) => return Err(bad("has a 'history' that is not a list")),
    };
    let mut entry = Map::new();
    entry.insert("created_by".into(), Value::from(CREATED_BY));
    history.push(Value::Object(entry));
    root.insert("history".into(), Value::Array(history));

    serde_json::to_vec(&doc)
        .map_err(|e| ImageError::invalid(format!("cannot encode image config: {e}")))
}

/// The object at `root[key]`, created when absent or null; `None` when it is something else.
fn object_field<'a>(
    root: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = root.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn reads_docker_style_config() {
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Entrypoint":null,
            "Cmd":["sh"],"Env":["PATH=/bin"],"WorkingDir":"","User":"1000",
            "ExposedPorts":{{"8080/tcp":{{}}}}}},"rootfs":{{"type":"layers","diff_ids":["{DIFF}"]}},
            "history":[{{"created_by":"x","empty_layer":true}}]}}"#
        );
        let parsed = parse(json.as_bytes(), "config").unwrap();
        assert_eq!(
            parsed.run,
            RunConfig {
                entrypoint: vec![],
                cmd: vec!["sh".into()],
                env: vec!["PATH=/bin".into()],
                workdir: String::new(),
                user: "1000".into(),
            }
        );
        assert_eq!(parsed.diff_ids, [DIFF]);
    }

    #[test]
    fn refuses_bad_configs() {
        assert!(parse(b"\"text\"", "config").is_err());
        assert!(parse(b"{", "config").is_err());
        assert!(parse(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#, "config").is_err());
        assert_eq!(parse(b"{}", "config").unwrap().run, RunConfig::default());
    }

    #[test]
    fn writes_rootfs_config_that_reads_back() {
        let opts = RootfsOptions {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["echo hi".into()],
            env: vec!["A=1".into()],
            workdir: Some("/srv".into()),
            user: None,
        };
        let bytes = rootfs_config(&opts, vec![DIFF.into()]).unwrap();
        assert_eq!(bytes, rootfs_config(&opts, vec![DIFF.into()]).unwrap());
        let parsed = parse(&bytes, "config").unwrap();
        assert_eq!(parsed.run.entrypoint, opts.entrypoint);
        assert_eq!(parsed.run.cmd, opts.cmd);
        assert_eq!(parsed.run.env, opts.env);
        assert_eq!(parsed.run.workdir, "/srv");
        assert_eq!(parsed.run.user, "");
        assert_eq!(parsed.diff_ids, [DIFF]);
    }

    #[test]
    fn validates_rootfs_options() {
        let mut opts = RootfsOptions::default();
        assert!(validate_rootfs_options(&opts).is_ok());
        opts.env = vec!["NOEQUALS".into()];
        assert!(validate_rootfs_options(&opts).is_err());
        opts.env = vec!["=x".into()];
        assert!(validate_rootfs_options(&opts).is_err());
        opts.env = vec![];
        opts.workdir = Some("relative".into());
        assert!(validate_rootfs_options(&opts).is_err());
    }
}
