//! `faasbox secret set|ls|rm`. The value is sent once and never printed.

use std::io::Read;

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::cli::{OutputFormat, SecretCommand, SecretSetArgs};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{print, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: SecretCommand,
) -> anyhow::Result<()> {
    match command {
        SecretCommand::Set(args) => {
            let (ns, name) = split_secret(&args.secret)?;
            let value = read_value(&args)?;
            let info: Value = client
                .json(
                    client
                        .request(Method::PUT, &secret_path(ns, name))
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .body(value.to_vec()),
                )
                .await?;
            print(format, &info, || {
                Table::new(vec!["SECRET", "UPDATED"])
                    .row(vec![format!("{ns}/{name}"), text(&info["updated"])])
            });
        }
        SecretCommand::Ls { namespace } => {
            let list: Vec<Value> = client
                .get(&format!("/api/v1/namespaces/{namespace}/secrets"))
                .await?;
            print(format, &list, || {
                Table::new(vec!["NAME", "CREATED", "UPDATED"]).rows(
                    list.iter()
                        .map(|s| vec![text(&s["name"]), text(&s["created"]), text(&s["updated"])]),
                )
            });
        }
        SecretCommand::Rm { secret } => {
            let (ns, name) = split_secret(&secret)?;
            client
                .send(client.request(Method::DELETE, &secret_path(ns, name)))
                .await?;
            print(format, &json!({ "deleted": secret }), || {
                Table::new(vec!["DELETED"]).row(vec![secret.clone()])
            });
        }
    }
    Ok(())
}

/// The API path of a secret, its name percent-encoded so the server judges it as given.
fn secret_path(ns: &str, name: &str) -> String {
    let name: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/api/v1/namespaces/{ns}/secrets/{name}")
}

/// Splits "namespace/name" (the name may not hold another '/').
fn split_secret(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => anyhow::bail!("'{text}' is not NAMESPACE/SECRET (for example demo/token)"),
    }
}

/// The value from --value, --from-file or standard input (one trailing newline dropped).
fn read_value(args: &SecretSetArgs) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(value) = &args.value {
        return Ok(Zeroizing::new(value.as_bytes().to_vec()));
    }
    if let Some(path) = &args.from_file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the secret's value from {}", path.display()))?;
        return Ok(Zeroizing::new(bytes));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("Type the secret's value, then press Enter and Ctrl-D:");
    }
    read_stdin_value()
}

/// Standard input, with one trailing newline (`\n` or `\r\n`) removed.
pub fn read_stdin_value() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("reading standard input")?;
    let trailing = if buf.ends_with(b"\r\n") {
        2
    } else {
        usize::from(buf.ends_with(b"\n"))
    };
    let keep = buf.len() - trailing;
    buf.truncate(keep);
    Ok(buf)
}
