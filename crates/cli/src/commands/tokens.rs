//! `faasbox token create|ls|rm`: API tokens (the admin token is needed for all three).

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{OutputFormat, TokenCommand};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{outln, print, print_json, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: TokenCommand,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            namespace,
            role,
            name,
        } => {
            let body = json!({ "namespace": namespace, "role": role, "name": name });
            let created: Value = client
                .json(client.request(Method::POST, "/api/v1/tokens").json(&body))
                .await?;
            match format {
                OutputFormat::Json => print_json(&created),
                OutputFormat::Text => {
                    // The token alone on stdout, so `$(faasbox token create …)` captures it.
                    outln!("{}", text(&created["token"]));
                    eprintln!(
                        "token {} ({} of {}): shown only this once; clients send it as \
                         `Authorization: Bearer <token>` or in FAASBOX_TOKEN",
                        text(&created["id"]),
                        text(&created["role"]),
                        created["namespace"]
                            .as_str()
                            .map(|ns| format!("namespace {ns}"))
                            .unwrap_or_else(|| "the whole server".into()),
                    );
                }
            }
        }
        TokenCommand::Ls => {
            let list: Vec<Value> = client.get("/api/v1/tokens").await?;
            print(format, &list, || {
                Table::new(vec!["ID", "NAME", "NAMESPACE", "ROLE", "CREATED"]).rows(
                    list.iter().map(|t| {
                        vec![
                            text(&t["id"]),
                            text(&t["name"]),
                            match &t["namespace"] {
                                Value::Null => "(server-wide)".into(),
                                ns => text(ns),
                            },
                            text(&t["role"]),
                            text(&t["created"]),
                        ]
                    }),
                )
            });
        }
        TokenCommand::Rm { id } => {
            client
                .send(client.request(Method::DELETE, &format!("/api/v1/tokens/{id}")))
                .await?;
            print(format, &json!({ "deleted": id }), || {
                Table::new(vec!["DELETED"]).row(vec![id.clone()])
            });
        }
    }
    Ok(())
}
