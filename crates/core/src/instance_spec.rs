//! Turns a deployed function and its pinned image content into the spec of one container
//! instance.

use std::collections::BTreeMap;
use std::time::Duration;

use faasbox_driver::{ImageRef, InstanceSpec, ScratchMount};
use faasbox_images::ImageContent;
use faasbox_proto::{AgentConfig, Contract, FileContractConfig, OpenWhiskInit, ProcessUser};

use crate::failure::Failure;
use crate::model::FunctionSpec;

/// Where the file contract's per-call data lives (Direktiv isolates' path).
const FILE_DATA_DIR: &str = "/direktiv-data";

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The largest `/etc/passwd` or `/etc/group` of an image read to resolve its user.
pub const MAX_ACCOUNT_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a small file of the image (a path relative to its root, e.g. `etc/passwd`); `None`
/// when the image has none.
pub type ImageFiles<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Builds the instance spec of function `key` from its image content, whose files
/// `image_files` reads (for the user's `/etc/passwd` entry). `version` is the revision in
/// service (OpenWhisk actions see it as `0.0.N`). The instance must become ready within
/// `ready_timeout` (the server's) or the function's timeout, whichever is shorter.
pub fn build(
    key: &str,
    spec: &FunctionSpec,
    version: u64,
    image: &ImageContent,
    image_files: ImageFiles<'_>,
    ready_timeout: Duration,
) -> Result<InstanceSpec, Failure> {
    let contract = spec.effective_contract();
    if let Some(problem) = command_problem(spec, image) {
        return Err(Failure::invalid(format!("{key}: {problem}")));
    }
    let command = match contract {
        Contract::Cmd | Contract::Openwhisk | Contract::Code => Vec::new(),
        Contract::Http | Contract::File => command_for(spec, image).unwrap_or_default(),
    };
    let openwhisk = spec.code.as_ref().map(|code| OpenWhiskInit {
        code: code.clone(),
        binary: spec.binary,
        main: spec.main.clone().unwrap_or_else(|| "main".to_string()),
        env: Default::default(),
        name: key.to_string(),
    });
    // The file contract's data directory is a directory of the instance's bounded disk.
    let (file, scratch) = if contract == Contract::File {
        let config = FileContractConfig {
            data_dir: FILE_DATA_DIR.to_string(),
            disk_limit_bytes: spec.disk_bytes(),
        };
        let mount = ScratchMount {
            path: FILE_DATA_DIR.to_string(),
        };
        (Some(config), vec![mount])
    } else {
        (None, Vec::new())
    };
    let user = resolve_user(&image.config.user, image_files).map_err(Failure::invalid)?;
    let workdir = if image.config.workdir.is_empty() {
        "/".to_string()
    } else {
        image.config.workdir.clone()
    };
    Ok(InstanceSpec {
        function: key.to_string(),
        image: ImageRef {
            name: spec.image.clone(),
            digest: image.digest.clone(),
        },
        env: merge_env(&image.config.env, &spec.envs),
        agent: AgentConfig {
            contract,
            command,
            workdir,
            user,
            // A call waits for a new instance no longer than the function's own timeout.
            ready_timeout_ms: ready_timeout.min(spec.timeout.0).as_millis() as u64,
            function_port: 8080,
            log_port: 8889,
            temp_root: "/tmp/faasbox-calls".into(),
            function: key.to_string(),
            function_version: version,
            openwhisk,
            file,
            // The driver sets it for runsc.
            blocking_tcp: false,
            disk_limit_bytes: spec.disk_bytes(),
            tcp_listen: None,
            tcp_secret: None,
            code: spec.code_config(),
        },
        limits: spec.size.limits(),
        runtime: spec.runtime,
        network: spec.network,
        disk_bytes: spec.disk_bytes(),
        scratch,
    })
}

/// Why `spec` cannot run `image`, if it cannot: the http and file contracts run the image's
/// own process, so without the spec's `cmd` the image needs an entrypoint or cmd (cmd and
/// openwhisk run their commands per call and need neither). Checked at deploy, so a root
/// filesystem imported without `--entrypoint` is refused then rather than at the first call.
pub fn command_problem(spec: &FunctionSpec, image: &ImageContent) -> Option<String> {
    let contract = spec.effective_contract();
    let needs_process = matches!(contract, Contract::Http | Contract::File);
    (needs_process && command_for(spec, image).is_none()).then(|| {
        format!(
            "image '{}' has no entrypoint or cmd, and the {} contract runs the image's own \
             process: deploy with --cmd 'PROGRAM ARGS…' (what to run), or import the image again \
             with --entrypoint",
            spec.image,
            contract.as_str()
        )
    })
}

/// The function's `cmd` replaces the image's entrypoint and cmd (as Kubernetes' `command` does).
fn command_for(spec: &FunctionSpec, image: &ImageContent) -> Option<Vec<String>> {
    let command: Vec<String> = if spec.cmd.is_empty() {
        image
            .config
            .entrypoint
            .iter()
            .chain(image.config.cmd.iter())
            .cloned()
            .collect()
    } else {
        spec.cmd.clone()
    };
    (!command.is_empty()).then_some(command)
}

/// Image env, then the function's envs on top (same name wins), with a default PATH.
pub fn merge_env(image_env: &[String], envs: &BTreeMap<String, String>) -> Vec<String> {
    let mut merged: Vec<String> = image_env
        .iter()
        .filter(|kv| {
            let name = kv.split('=').next().unwrap_or_default();
            !envs.contains_key(name)
        })
        .cloned()
        .collect();
    merged.extend(envs.iter().map(|(k, v)| format!("{k}={v}")));
    if !merged.iter().any(|kv| kv.starts_with("PATH=")) {
        merged.insert(0, DEFAULT_PATH.to_string());
    }
    merged
}

/// Resolves an image's `User` ("", "uid", "uid:gid", "name", "name:group") against the
/// image's own /etc/passwd and /etc/group (read through `image_files`).
pub fn resolve_user(
    user: &str,
    image_files: ImageFiles<'_>,
) -> Result<Option<ProcessUser>, String> {
    let user = user.trim();
    if user.is_empty() {
        return Ok(None);
    }
    let (name, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, primary_gid) = match name.parse::<u32>() {
        Ok(uid) => (
            uid,
            lookup(image_files, "etc/passwd", |f| f.get(2) == Some(&name))
                .and_then(|f| f.get(3)?.parse().ok())
                .unwrap_or(uid),
        ),
        Err(_) => {
            let fields = lookup(image_files, "etc/passwd", |f| f.first() == Some(&name))
                .ok_or_else(|| format!("the image's user '{name}' is not in its /etc/passwd"))?;
            let uid = fields.get(2).and_then(|v| v.parse().ok());
            let gid = fields.get(3).and_then(|v| v.parse().ok());
            match (uid, gid) {
                (Some(uid), Some(gid)) => (uid, gid),
                _ => {
                    return Err(format!(
                        "the image's /etc/passwd entry for '{name}' is malformed"
                    ))
                }
            }
        }
    };
    let gid = match group {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup(image_files, "etc/group", |f| f.first() == Some(&g))
                .and_then(|f| f.get(2)?.parse().ok())
                .ok_or_else(|| format!("the image's group '{g}' is not in its /etc/group"))?,
        },
    };
    Ok(Some(ProcessUser {
        uid,
        gid,
        additional_gids: Vec::new(),
    }))
}

/// The first line of the image's `file` whose `:`-fields match.
fn lookup(
    image_files: ImageFiles<'_>,
    file: &str,
    matches: impl Fn(&Vec<&str>) -> bool,
) -> Option<Vec<String>> {
    let text = image_files(file)?;
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| matches(fields))
        .map(|fields| fields.into_iter().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_envs_override_image_env() {
        let envs = BTreeMap::from([("A".to_string(), "fn".to_string())]);
        let merged = merge_env(&["A=img".into(), "PATH=/bin".into(), "B=2".into()], &envs);
        assert_eq!(merged, ["PATH=/bin", "B=2", "A=fn"]);
        let merged = merge_env(&[], &BTreeMap::new());
        assert!(merged[0].starts_with("PATH="));
    }

    #[test]
    fn users_resolve_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let files = |file: &str| std::fs::read_to_string(dir.path().join(file)).ok();
        assert_eq!(resolve_user("", &files).unwrap(), None);
        let web = resolve_user("web", &files).unwrap().unwrap();
        assert_eq!((web.uid, web.gid), (33, 44));
        let mixed = resolve_user("web:staff", &files).unwrap().unwrap();
        assert_eq!((mixed.uid, mixed.gid), (33, 50));
        let numeric = resolve_user("1000:1000", &files).unwrap().unwrap();
        assert_eq!((numeric.uid, numeric.gid), (1000, 1000));
        assert!(resolve_user("nobody", &files).is_err());
    }
}
