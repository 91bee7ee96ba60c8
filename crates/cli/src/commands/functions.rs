//! `faasbox fn deploy|ls|get|rm`.

use std::collections::BTreeMap;

use anyhow::Context;

use reqwest::Method;
use serde_json::{json, Value};

use super::namespaces::text;
use crate::cli::{DeployArgs, FnCommand, OutputFormat};
use crate::client::{split_function, Client};
use crate::output::{print, Table};

pub async fn run(client: &Client, format: OutputFormat, command: FnCommand) -> anyhow::Result<()> {
    match command {
        FnCommand::Deploy(args) => deploy(client, format, *args).await,
        FnCommand::Ls { namespace, global } => {
            let path = match (namespace, global) {
                (Some(ns), false) => format!("/api/v1/namespaces/{ns}/functions"),
                _ => "/api/v1/functions".to_string(),
            };
            let list: Vec<Value> = client.get(&path).await?;
            print(format, &list, || {
                Table::new(vec![
                    "FUNCTION",
                    "IMAGE",
                    "CONTRACT",
                    "SIZE",
                    "INSTANCES",
                    "UPDATED",
                ])
                .rows(list.iter().map(row))
            });
            Ok(())
        }
        FnCommand::Get { function, global } => {
            let f: Value = client.get(&function_path(&function, global)?).await?;
            match format {
                OutputFormat::Json => print(format, &f, || Table::new(vec![])),
                OutputFormat::Text => println!("{}", serde_json::to_string_pretty(&f)?),
            }
            Ok(())
        }
        FnCommand::Rm { function, global } => {
            client
                .send(client.request(Method::DELETE, &function_path(&function, global)?))
                .await?;
            print(format, &json!({ "deleted": function }), || {
                Table::new(vec!["DELETED"]).row(vec![function.clone()])
            });
            Ok(())
        }
    }
}

/// The API path of `NAMESPACE/NAME`, or of global service `NAME`.
fn function_path(function: &str, global: bool) -> anyhow::Result<String> {
    if global {
        if function.contains('/') {
            anyhow::bail!("a global service is named without a namespace: --global NAME");
        }
        return Ok(format!("/api/v1/functions/{function}"));
    }
    let (ns, name) = split_function(function)?;
    Ok(format!("/api/v1/namespaces/{ns}/functions/{name}"))
}

fn row(f: &Value) -> Vec<String> {
    let instances = &f["instances"];
    let image = match f["image"]["status"].as_str() {
        Some("missing") => format!("{} (missing)", text(&f["spec"]["image"])),
        _ => text(&f["spec"]["image"]),
    };
    vec![
        match f["namespace"].as_str() {
            Some(ns) => format!("{ns}/{}", text(&f["name"])),
            None => format!("(global) {}", text(&f["name"])),
        },
        image,
        text(&f["spec"]["contract"]),
        text(&f["spec"]["size"]),
        format!(
            "{} ({} busy)",
            instances["instances"].as_u64().unwrap_or(0),
            instances["busy_calls"].as_u64().unwrap_or(0)
        ),
        text(&f["updated"]),
    ]
}

/// A zip archive goes as base64 with `binary: true`, as OpenWhisk's `/init` takes it.
fn with_binary(mut spec: Value, bytes: Vec<u8>) -> Value {
    use base64::Engine;
    spec["code"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    spec["binary"] = json!(true);
    spec
}

async fn deploy(client: &Client, format: OutputFormat, args: DeployArgs) -> anyhow::Result<()> {
    let path = function_path(&args.function, args.global)?;
    let mut envs = BTreeMap::new();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--env '{kv}' is not KEY=VALUE"))?;
        envs.insert(k.to_string(), v.to_string());
    }
    let mut spec = json!({
        "image": args.image,
        "contract": args.contract,
        "envs": envs,
        "size": args.size,
        "timeout": args.timeout,
        "runtime": args.runtime,
        "network": !args.no_network,
        "scale": {
            "min": args.min_scale,
            "max": args.max_scale,
            "concurrency": args.concurrency,
            "idle_timeout": args.idle_timeout,
        },
    });
    if let Some(cmd) = &args.cmd {
        spec["cmd"] = json!(cmd);
    }
    if let Some(path) = &args.code {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading --code {}", path.display()))?;
        let is_zip =
            bytes.starts_with(b"PK\x03\x04") || path.extension().is_some_and(|e| e == "zip");
        if is_zip {
            spec = with_binary(spec, bytes);
        } else {
            let text = String::from_utf8(bytes).map_err(|_| {
                anyhow::anyhow!(
                    "--code {} is neither text nor a zip archive; put a compiled action into a zip \
                     with the executable named `exec` at its root",
                    path.display()
                )
            })?;
            spec["code"] = json!(text);
        }
    }
    if let Some(main) = &args.main {
        spec["main"] = json!(main);
    }
    if let Some(disk) = &args.disk {
        spec["disk"] = json!(disk);
    }
    if !args.secrets.is_empty() {
        spec["secrets"] = json!(args.secrets);
    }
    if let Some(input) = &args.input {
        let text = match input.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the --input template from {path}"))?,
            None => input.clone(),
        };
        let template: Value = serde_json::from_str(&text)
            .with_context(|| "the --input template is not JSON".to_string())?;
        spec["input"] = template;
    }
    let deployed: Value = client
        .json(client.request(Method::PUT, &path).json(&spec))
        .await?;
    if let Some(error) = deployed["image"]["last_pull_error"].as_str() {
        eprintln!("warning: the function is saved but its image is missing: {error}");
    }
    print(format, &deployed, || {
        Table::new(vec![
            "FUNCTION",
            "IMAGE",
            "CONTRACT",
            "SIZE",
            "INSTANCES",
            "UPDATED",
        ])
        .row(row(&deployed))
    });
    Ok(())
}
