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
pub mod registries;
pub mod secrets;
pub mod server;
pub mod tokens;

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
