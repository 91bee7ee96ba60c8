//! `faasbox flow deploy|run|ls|get|rm|instances|instance|logs|cancel`.

use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{FlowCommand, OutputFormat};
use crate::client::{failure, Client};
use crate::commands::namespaces::text;
use crate::output::{print, Table};

/// Runs a flow command; false when a waited-for instance failed.
pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: FlowCommand,
) -> anyhow::Result<bool> {
    match command {
        FlowCommand::Deploy { flow, file } => {
            let (ns, path) = split_flow(&flow)?;
            let source =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let info: Value = client
                .json(
                    client
                        .request(Method::PUT, &flow_path(ns, path))
                        .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                        .body(source),
                )
                .await?;
            for warning in info["warnings"].as_array().into_iter().flatten() {
                eprintln!(
                    "warning: line {}, column {}: {}",
                    warning["line"],
                    warning["column"],
                    text(&warning["message"])
                );
            }
            print(format, &info, || {
                Table::new(vec!["FLOW", "UPDATED"]).row(vec![flow.clone(), text(&info["updated"])])
            });
        }
        FlowCommand::Run { flow, data, wait } => {
            let (ns, path) = split_flow(&flow)?;
            let input: Value = serde_json::from_slice(&super::read_data(data.as_deref())?)
                .context("--data is not JSON")?;
            let url = format!(
                "{}/run{}",
                flow_path(ns, path),
                if wait { "?wait=true" } else { "" }
            );
            let response = client
                .request(Method::POST, &url)
                .json(&input)
                .send()
                .await
                .context("cannot reach the faasbox server")?;
            if response.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
                let id = response
                    .headers()
                    .get("faasbox-instance-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let failed = failure(response).await;
                eprintln!(
                    "error: instance {id} failed: {} ({})",
                    failed.message, failed.code
                );
                return Ok(false);
            }
            if !response.status().is_success() {
                return Err(failure(response).await.into());
            }
            let body: Value = response
                .json()
                .await
                .context("reading the server's answer")?;
            if wait {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print(format, &body, || {
                    Table::new(vec!["INSTANCE"]).row(vec![text(&body["id"])])
                });
            }
        }
        FlowCommand::Ls { namespace } => {
            let list: Vec<Value> = client
                .get(&format!("/api/v1/namespaces/{namespace}/flows"))
                .await?;
            print(format, &list, || {
                Table::new(vec!["PATH", "CREATED", "UPDATED"]).rows(
                    list.iter()
                        .map(|f| vec![text(&f["path"]), text(&f["created"]), text(&f["updated"])]),
                )
            });
        }
        FlowCommand::Get { flow } => {
            let (ns, path) = split_flow(&flow)?;
            let info: Value = client.get(&flow_path(ns, path)).await?;
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&info)?),
                OutputFormat::Text => print!("{}", info["source"].as_str().unwrap_or_default()),
            }
        }
        FlowCommand::Rm { flow } => {
            let (ns, path) = split_flow(&flow)?;
            client
                .send(client.request(Method::DELETE, &flow_path(ns, path)))
                .await?;
            print(format, &json!({ "deleted": flow }), || {
                Table::new(vec!["DELETED"]).row(vec![flow.clone()])
            });
        }
        FlowCommand::Instances { namespace, limit } => {
            let list: Vec<Value> = client
                .get(&format!(
                    "/api/v1/namespaces/{namespace}/instances?limit={limit}"
                ))
                .await?;
            print(format, &list, || {
                Table::new(vec!["ID", "FLOW", "STATUS", "CREATED", "ERROR"]).rows(list.iter().map(
                    |i| {
                        vec![
                            text(&i["id"]),
                            text(&i["flow"]),
                            text(&i["status"]),
                            text(&i["created"]),
                            i["error"]["code"].as_str().unwrap_or("").to_string(),
                        ]
                    },
                ))
            });
        }
        FlowCommand::Instance { id } => {
            let info: Value = client.get(&format!("/api/v1/instances/{id}")).await?;
            print(format, &info, || {
                Table::new(vec!["ID", "FLOW", "STATUS", "OUTPUT", "ERROR", "METADATA"]).row(vec![
                    text(&info["id"]),
                    text(&info["flow"]),
                    text(&info["status"]),
                    info.get("output").map(Value::to_string).unwrap_or_default(),
                    info.get("error")
                        .map(|e| format!("{}: {}", text(&e["code"]), text(&e["message"])))
                        .unwrap_or_default(),
                    info.get("metadata")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                ])
            });
            let calls = info["calls"].as_array().cloned().unwrap_or_default();
            if format == OutputFormat::Text && !calls.is_empty() {
                let table = Table::new(vec!["STATE", "FUNCTION", "CALL", "STATUS"]).rows(
                    calls.iter().map(|c| {
                        let call = match c["kind"].as_str() {
                            Some("instance") => format!("instance {}", text(&c["id"])),
                            _ => format!("invocation {}", text(&c["id"])),
                        };
                        vec![
                            text(&c["state"]),
                            text(&c["function"]),
                            call,
                            text(&c["status"]),
                        ]
                    }),
                );
                print!("\n{}", table.render());
            }
        }
        FlowCommand::Logs { id, follow } => {
            let mut after = 0i64;
            loop {
                let page: Value = client
                    .get(&format!("/api/v1/instances/{id}/logs?after={after}"))
                    .await?;
                for line in page["logs"].as_array().into_iter().flatten() {
                    after = line["seq"].as_i64().unwrap_or(after);
                    match format {
                        OutputFormat::Json => println!("{line}"),
                        OutputFormat::Text => match line["state"].as_str() {
                            // A function's own line: which state's call logged it.
                            Some(state) if line["invocation"].is_string() => println!(
                                "{} [{state}] {}",
                                ts(line["ts_ms"].as_i64().unwrap_or(0)),
                                text(&line["message"])
                            ),
                            _ => println!(
                                "{} {}",
                                ts(line["ts_ms"].as_i64().unwrap_or(0)),
                                text(&line["message"])
                            ),
                        },
                    }
                }
                let status = page["status"].as_str().unwrap_or("");
                if !follow || !matches!(status, "running" | "waiting") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        FlowCommand::Cancel { id } => {
            let info: Value = client
                .json(client.request(Method::POST, &format!("/api/v1/instances/{id}/cancel")))
                .await?;
            print(format, &info, || {
                Table::new(vec!["INSTANCE", "STATUS"])
                    .row(vec![text(&info["id"]), text(&info["status"])])
            });
        }
    }
    Ok(true)
}

fn ts(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn flow_path(ns: &str, path: &str) -> String {
    format!("/api/v1/namespaces/{ns}/flows/{path}")
}

/// Splits "namespace/path" (the path may hold more '/').
fn split_flow(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('/') {
        Some((ns, path)) if !ns.is_empty() && !path.is_empty() => Ok((ns, path)),
        _ => anyhow::bail!("'{text}' is not NAMESPACE/PATH (for example demo/hello)"),
    }
}
