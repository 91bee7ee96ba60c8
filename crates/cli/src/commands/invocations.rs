//! `faasbox invoke`, `faasbox logs` and `faasbox invocation get|ls`.

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use super::namespaces::text;
use crate::cli::{InvocationCommand, InvokeArgs, LogsArgs, OutputFormat};
use crate::client::{failure, split_function, Client};
use crate::output::{print, Table};

/// Calls the function; prints the output (or the error) and returns whether it succeeded.
pub async fn invoke(
    client: &Client,
    format: OutputFormat,
    args: InvokeArgs,
) -> anyhow::Result<bool> {
    let path = match (&args.namespace, args.global) {
        (Some(ns), true) => format!(
            "/api/v1/namespaces/{ns}/global-functions/{}/invoke",
            args.function
        ),
        _ => {
            let (ns, name) = split_function(&args.function)?;
            format!("/api/v1/namespaces/{ns}/functions/{name}/invoke")
        }
    };
    let body = super::read_data(args.data.as_deref())?;
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        anyhow::bail!("the input is not JSON: {e}");
    }
    let request = client
        .request(Method::POST, &path)
        .header("content-type", "application/json")
        .body(body);
    let response = request.send().await.map_err(|e| {
        anyhow::anyhow!("cannot reach the faasbox server: {e}\nStart one with `faasbox server`, or point FAASBOX_URL at it.")
    })?;
    let id = response
        .headers()
        .get("faasbox-invocation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if response.status().is_success() {
        let output = response.bytes().await.context("reading the output")?;
        match format {
            OutputFormat::Json => {
                let output: Value = serde_json::from_slice(&output).unwrap_or(Value::Null);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "invocation": id, "output": output }))?
                );
            }
            OutputFormat::Text => {
                println!("{}", String::from_utf8_lossy(&output));
                if let Some(id) = &id {
                    eprintln!("invocation: {id}");
                }
            }
        }
        return Ok(true);
    }
    let failure = failure(response).await;
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "invocation": id, "error": failure.body["error"] })
            )?
        ),
        OutputFormat::Text => {
            eprintln!("error: {failure}");
            if let Some(id) = &id {
                eprintln!("invocation: {id} (see `faasbox logs {id}`)");
            }
        }
    }
    Ok(false)
}

pub async fn logs(client: &Client, format: OutputFormat, args: LogsArgs) -> anyhow::Result<()> {
    let logs: Value = client
        .get(&format!("/api/v1/invocations/{}/logs", args.invocation))
        .await?;
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&logs)?),
        OutputFormat::Text => {
            for line in logs["logs"].as_array().into_iter().flatten() {
                println!(
                    "{} {:<8} {}",
                    format_ms(line["ts_ms"].as_u64().unwrap_or(0)),
                    text(&line["stream"]),
                    text(&line["line"])
                );
            }
        }
    }
    Ok(())
}

fn format_ms(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms % 1000
    )
}

pub async fn invocation(
    client: &Client,
    format: OutputFormat,
    command: InvocationCommand,
) -> anyhow::Result<()> {
    match command {
        InvocationCommand::Get { invocation } => {
            let record: Value = client
                .get(&format!("/api/v1/invocations/{invocation}"))
                .await?;
            print(format, &record, || {
                Table::new(vec![
                    "INVOCATION",
                    "FUNCTION",
                    "STATUS",
                    "STARTED",
                    "ENDED",
                    "ERROR",
                ])
                .row(row(&record))
            });
        }
        InvocationCommand::Ls {
            namespace,
            function,
            limit,
        } => {
            let mut request = client
                .request(
                    Method::GET,
                    &format!("/api/v1/namespaces/{namespace}/invocations"),
                )
                .query(&[("limit", limit.to_string())]);
            if let Some(f) = &function {
                request = request.query(&[("function", f)]);
            }
            let list: Vec<Value> = client.json(request).await?;
            print(format, &list, || {
                Table::new(vec![
                    "INVOCATION",
                    "FUNCTION",
                    "STATUS",
                    "STARTED",
                    "ENDED",
                    "ERROR",
                ])
                .rows(list.iter().map(row))
            });
        }
    }
    Ok(())
}

fn row(r: &Value) -> Vec<String> {
    let error = match (&r["error_code"], &r["error_message"]) {
        (Value::String(c), Value::String(m)) => format!("{c}: {m}"),
        (_, Value::String(m)) => m.clone(),
        _ => "-".into(),
    };
    vec![
        text(&r["id"]),
        format!("{}/{}", text(&r["namespace"]), text(&r["function"])),
        text(&r["status"]),
        text(&r["started"]),
        text(&r["ended"]),
        error,
    ]
}
