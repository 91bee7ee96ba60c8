//! `faasbox flow deploy|run|ls|get|rm|instances|instance|logs|cancel`.

/// The header the server names a started instance in.
const INSTANCE_ID_HEADER: &str = "faasbox-instance-id";

use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{FlowCommand, OutputFormat};
use crate::client::{failure, Client};
use crate::commands::invocations::called;
use crate::commands::namespaces::text;
use crate::output::{outln, print, print_json, print_log_page, write_out, Table};

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
            return run_flow(client, format, ns, path, input, wait).await;
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
                OutputFormat::Json => print_json(&info),
                OutputFormat::Text => {
                    write_out(info["source"].as_str().unwrap_or_default().as_bytes())
                }
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
                write_out(format!("\n{}", table.render()).as_bytes());
            }
        }
        FlowCommand::Logs { id, follow } => {
            let mut after = 0i64;
            loop {
                let page: Value = client
                    .get(&format!("/api/v1/instances/{id}/logs?after={after}"))
                    .await?;
                let lines = print_log_page(format, follow, &page, |line| {
                    let at = ts(line["ts_ms"].as_i64().unwrap_or(0));
                    match line["state"].as_str() {
                        // A function's own line: which state's call logged it.
                        Some(state) if line["invocation"].is_string() => {
                            format!("{at} [{state}] {}", text(&line["message"]))
                        }
                        _ => format!("{at} {}", text(&line["message"])),
                    }
                });
                if let Some(last) = lines.last() {
                    after = last["seq"].as_i64().unwrap_or(after);
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

/// `flow run`: starts an instance. Text: the bare id on stdout (`ID=$(faasbox flow run …)`),
/// or with `--wait` the output (the id on stderr). JSON: `{"instance": ID, "status": …}`, or
/// with `--wait` `{"instance": ID, "output": …}` / `{"instance": ID, "error": …}`. False when
/// a waited-for instance failed.
async fn run_flow(
    client: &Client,
    format: OutputFormat,
    ns: &str,
    path: &str,
    input: Value,
    wait: bool,
) -> anyhow::Result<bool> {
    let url = format!(
        "{}/run{}",
        flow_path(ns, path),
        if wait { "?wait=true" } else { "" }
    );
    let response = client
        .send_raw(client.request(Method::POST, &url).json(&input))
        .await?;
    let id = response
        .headers()
        .get(INSTANCE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let status = response.status();
    if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        let failed = failure(response).await;
        match format {
            OutputFormat::Json => print_json(&called(
                "instance",
                id.as_deref(),
                "error",
                failed.body["error"].clone(),
            )),
            OutputFormat::Text => match &id {
                Some(id) => eprintln!(
                    "error: instance {id} failed: {} ({})",
                    failed.message, failed.code
                ),
                None => eprintln!("error: {} ({})", failed.message, failed.code),
            },
        }
        return Ok(false);
    }
    if !status.is_success() {
        return Err(failure(response).await.into());
    }
    let body: Value = response
        .json()
        .await
        .context("reading the server's answer")?;
    // 202: started (or, with --wait, waiting for an event); 200: ended with this output.
    let ended = wait && status == reqwest::StatusCode::OK;
    match (format, ended) {
        (OutputFormat::Json, true) => {
            print_json(&called("instance", id.as_deref(), "output", body))
        }
        (OutputFormat::Json, false) => print_json(&body_with_instance(body)),
        (OutputFormat::Text, true) => {
            print_json(&body);
            if let Some(id) = &id {
                eprintln!("instance: {id}");
            }
        }
        (OutputFormat::Text, false) => {
            outln!("{}", text(&body["id"]));
            if body["status"] == "waiting" {
                eprintln!(
                    "instance {} is waiting for an event; follow it with `faasbox flow logs {} --follow`",
                    text(&body["id"]),
                    text(&body["id"])
                );
            }
        }
    }
    Ok(true)
}

/// The API's `{"id", "status"}` of a started instance, with `instance` for `id` as the other
/// JSON answers name it.
fn body_with_instance(body: Value) -> Value {
    json!({ "instance": body["id"], "status": body["status"] })
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
