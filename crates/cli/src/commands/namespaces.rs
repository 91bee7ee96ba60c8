//! `faasbox ns create|ls|rm`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{NsCommand, OutputFormat};
use crate::client::Client;
use crate::output::{print, Table};

pub async fn run(client: &Client, format: OutputFormat, command: NsCommand) -> anyhow::Result<()> {
    match command {
        NsCommand::Create { name } => {
            let created: Value = client
                .json(
                    client
                        .request(Method::POST, "/api/v1/namespaces")
                        .json(&json!({ "name": name })),
                )
                .await?;
            print(format, &created, || {
                Table::new(vec!["NAMESPACE", "CREATED"])
                    .row(vec![name.clone(), text(&created["created"])])
            });
        }
        NsCommand::Ls => {
            let list: Vec<Value> = client.get("/api/v1/namespaces").await?;
            print(format, &list, || {
                Table::new(vec!["NAMESPACE", "CREATED"]).rows(
                    list.iter()
                        .map(|n| vec![text(&n["name"]), text(&n["created"])]),
                )
            });
        }
        NsCommand::Rm { name } => {
            client
                .send(client.request(Method::DELETE, &format!("/api/v1/namespaces/{name}")))
                .await?;
            print(format, &json!({ "deleted": name }), || {
                Table::new(vec!["DELETED"]).row(vec![name.clone()])
            });
        }
    }
    Ok(())
}

/// A JSON value as table text (strings without quotes, null as "-").
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
