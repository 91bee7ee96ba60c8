//! `faasbox fn deploy|ls|get|rm`.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::namespaces::text;
use crate::cli::{DeployArgs, FnCommand, OutputFormat};
use crate::client::{split_function, Client};
use crate::output::{print, Table};

pub async fn run(client: &Client, format: OutputFormat, command: FnCommand) -> anyhow::Result<()> {
    match command {
        FnCommand::Deploy(args) => deploy(client, format, *args).await,
        FnCommand::Ls { namespace } => {
            let list: Vec<Value> = client
                .get(&format!("/api/v1/namespaces/{namespace}/functions"))
                .await?;
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
        FnCommand::Get { function } => {
            let (ns, name) = split_function(&function)?;
            let f: Value = client
                .get(&format!("/api/v1/namespaces/{ns}/functions/{name}"))
                .await?;
            match format {
                OutputFormat::Json => print(format, &f, || Table::new(vec![])),
                OutputFormat::Text => println!("{}", serde_json::to_string_pretty(&f)?),
            }
            Ok(())
        }
        FnCommand::Rm { function } => {
            let (ns, name) = split_function(&function)?;
            client
                .send(client.request(
                    Method::DELETE,
                    &format!("/api/v1/namespaces/{ns}/functions/{name}"),
                ))
                .await?;
            print(format, &json!({ "deleted": function }), || {
                Table::new(vec!["DELETED"]).row(vec![function.clone()])
            });
            Ok(())
        }
    }
}

fn row(f: &Value) -> Vec<String> {
    let instances = &f["instances"];
    vec![
        format!("{}/{}", text(&f["namespace"]), text(&f["name"])),
        text(&f["spec"]["image"]),
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

async fn deploy(client: &Client, format: OutputFormat, args: DeployArgs) -> anyhow::Result<()> {
    let (ns, name) = split_function(&args.function)?;
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
    let deployed: Value = client
        .json(
            client
                .request(
                    Method::PUT,
                    &format!("/api/v1/namespaces/{ns}/functions/{name}"),
                )
                .json(&spec),
        )
        .await?;
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
