//! `faasbox service create|ls|get|rm`: a namespace's service instances. Secret parameters are
//! sent once and never printed (the server lists their keys only).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::cli::{OutputFormat, ServiceCommand};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{print, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: ServiceCommand,
) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Create {
            service,
            params,
            secret_params,
        } => {
            let (ns, name) = split_service(&service)?;
            let params = pairs("--param", &params)?;
            let secret_params = pairs("--secret-param", &secret_params)?;
            let body = Zeroizing::new(
                serde_json::to_vec(&json!({"params": params, "secret_params": secret_params}))
                    .map_err(|e| anyhow::anyhow!("cannot encode the service: {e}"))?,
            );
            let view: Value = client
                .json(
                    client
                        .request(
                            Method::PUT,
                            &format!("/api/v1/namespaces/{ns}/services/{name}"),
                        )
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.to_vec()),
                )
                .await?;
            print(format, &view, || table(std::slice::from_ref(&view)));
        }
        ServiceCommand::Ls { namespace } => {
            let list: Vec<Value> = client
                .get(&format!("/api/v1/namespaces/{namespace}/services"))
                .await?;
            print(format, &list, || table(&list));
        }
        ServiceCommand::Get { service } => {
            let (ns, name) = split_service(&service)?;
            let view: Value = client
                .get(&format!("/api/v1/namespaces/{ns}/services/{name}"))
                .await?;
            print(format, &view, || table(std::slice::from_ref(&view)));
        }
        ServiceCommand::Rm { service } => {
            let (ns, name) = split_service(&service)?;
            client
                .send(client.request(
                    Method::DELETE,
                    &format!("/api/v1/namespaces/{ns}/services/{name}"),
                ))
                .await?;
            print(format, &json!({ "deleted": service }), || {
                Table::new(vec!["DELETED"]).row(vec![service.clone()])
            });
        }
    }
    Ok(())
}

/// NAME, PARAMS (k=v, …), SECRET PARAMS (keys only), MODIFIED.
fn table(list: &[Value]) -> Table {
    Table::new(vec!["NAME", "PARAMS", "SECRET PARAMS", "MODIFIED"]).rows(list.iter().map(|s| {
        let params = s["params"]
            .as_object()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let secret = s["secret_params"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        vec![text(&s["name"]), params, secret, text(&s["modified"])]
    }))
}

/// `KEY=VALUE` pairs of a repeatable flag.
fn pairs(flag: &str, given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    for kv in given {
        let Some((k, v)) = kv.split_once('=') else {
            anyhow::bail!("{flag} takes KEY=VALUE; one was given without '='");
        };
        if found.insert(k.to_string(), v.to_string()).is_some() {
            anyhow::bail!("{flag} '{k}' is given twice; give each key once");
        }
    }
    Ok(found)
}

/// Splits "namespace/name".
fn split_service(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => anyhow::bail!("'{text}' is not NAMESPACE/SERVICE (for example demo/db)"),
    }
}
