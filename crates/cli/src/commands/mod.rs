//! One module per command group; each turns parsed arguments into API calls and prints.

use std::io::Read as _;

use anyhow::Context as _;

pub mod admin;
pub mod code;
pub mod events;
pub mod flows;
pub mod functions;
pub mod images;
pub mod invocations;
pub mod logs;
pub mod namespaces;
pub mod nodes;
pub mod registries;
pub mod routes;
pub mod runs;
pub mod secrets;
pub mod server;
pub mod services;
pub mod subscriptions;
pub mod tokens;

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &serde_json::Value) -> String {
    match digest.as_str() {
        Some(d) => d.chars().take("sha256:".len() + 12).collect(),
        None => "-".to_string(),
    }
}

/// `KEY=VALUE` pairs of `--env`.
pub(crate) fn env_pairs(
    env: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    let mut envs = std::collections::BTreeMap::new();
    for kv in env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--env '{kv}' is not KEY=VALUE"))?;
        envs.insert(k.to_string(), serde_json::json!(v));
    }
    Ok(envs)
}

/// Reads `--data`: inline JSON, `@FILE`, or `-` for standard input.
pub fn read_data(data: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match data {
        None => Ok(b"{}".to_vec()),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading standard input")?;
            Ok(buf)
        }
        Some(path) if path.starts_with('@') => {
            std::fs::read(&path[1..]).with_context(|| format!("reading {}", &path[1..]))
        }
        Some(text) => Ok(text.as_bytes().to_vec()),
    }
}
