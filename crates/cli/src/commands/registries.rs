//! `faasbox registry add|ls|rm`: namespace, global and global-private registry credentials.

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::cli::{GlobalScope, OutputFormat, RegistryCommand};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::commands::secrets::read_stdin_value;
use crate::output::{print, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: RegistryCommand,
) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Add(args) => {
            let (path, url, scope) = target(&args.target, &args.scope)?;
            let password = match (&args.password, args.password_stdin) {
                (Some(p), false) => Zeroizing::new(p.clone()),
                (None, true) => {
                    let bytes = read_stdin_value()?;
                    Zeroizing::new(
                        std::str::from_utf8(&bytes)
                            .context("the password on standard input is not UTF-8 text")?
                            .to_string(),
                    )
                }
                _ => anyhow::bail!("give the password with --password-stdin or --password"),
            };
            let mut body = json!({ "url": url, "username": args.username });
            if let Some(scope) = scope {
                body["scope"] = json!(scope);
            }
            body["password"] = json!(password.as_str());
            let request = client.request(Method::POST, &path).json(&body);
            if let Some(p) = body.get_mut("password") {
                *p = Value::Null;
            }
            let added: Value = client.json(request).await?;
            print(format, &added, || table(std::slice::from_ref(&added)));
        }
        RegistryCommand::Ls { namespace, scope } => {
            let path = match (namespace, scope_name(&scope)) {
                (Some(ns), None) => format!("/api/v1/namespaces/{ns}/registries"),
                (None, Some(scope)) => format!("/api/v1/registries?scope={scope}"),
                _ => anyhow::bail!("give a NAMESPACE, or --global / --global-private"),
            };
            let list: Vec<Value> = client.get(&path).await?;
            print(format, &list, || table(&list));
        }
        RegistryCommand::Rm { target: t, scope } => {
            let (path, url, scope) = target(&t, &scope)?;
            let mut query = vec![("url", url.clone())];
            if let Some(scope) = scope {
                query.push(("scope", scope.to_string()));
            }
            client
                .send(client.request(Method::DELETE, &path).query(&query))
                .await?;
            print(format, &json!({ "deleted": url }), || {
                Table::new(vec!["DELETED"]).row(vec![url.clone()])
            });
        }
    }
    Ok(())
}

fn scope_name(scope: &GlobalScope) -> Option<&'static str> {
    match (scope.global, scope.global_private) {
        (_, true) => Some("global-private"),
        (true, false) => Some("global"),
        (false, false) => None,
    }
}

/// The collection path, the URL and the global scope of `[NAMESPACE] URL`.
fn target(
    args: &[String],
    scope: &GlobalScope,
) -> anyhow::Result<(String, String, Option<&'static str>)> {
    match (args, scope_name(scope)) {
        ([ns, url], None) => Ok((
            format!("/api/v1/namespaces/{ns}/registries"),
            url.clone(),
            None,
        )),
        ([url], Some(scope)) => Ok(("/api/v1/registries".into(), url.clone(), Some(scope))),
        ([_], None) => anyhow::bail!("give NAMESPACE URL, or URL with --global / --global-private"),
        _ => anyhow::bail!("with --global or --global-private give only the URL"),
    }
}

fn table(list: &[Value]) -> Table {
    Table::new(vec!["SCOPE", "URL", "USERNAME", "CREATED"]).rows(list.iter().map(|r| {
        let scope = match r["namespace"].as_str() {
            Some(ns) => ns.to_string(),
            None => text(&r["scope"]),
        };
        vec![
            scope,
            text(&r["url"]),
            text(&r["username"]),
            text(&r["created"]),
        ]
    }))
}
