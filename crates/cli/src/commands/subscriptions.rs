//! `faasbox subscription create|get|ls|rm`: event subscriptions, a namespace's function run
//! asynchronously for each matching CloudEvent the namespace accepts.

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::cli::{OutputFormat, SubscriptionCommand, SubscriptionCreateArgs};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{print, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: SubscriptionCommand,
) -> anyhow::Result<()> {
    match command {
        SubscriptionCommand::Create(args) => {
            let (ns, name) = split(&args.subscription)?;
            let body = body(&args)?;
            let view: Value = client
                .json(client.request(Method::PUT, &path(ns, name)).json(&body))
                .await?;
            print(format, &view, || table(std::slice::from_ref(&view)));
        }
        SubscriptionCommand::Get { subscription } => {
            let (ns, name) = split(&subscription)?;
            let view: Value = client.get(&path(ns, name)).await?;
            print(format, &view, || table(std::slice::from_ref(&view)));
        }
        SubscriptionCommand::Ls { namespace } => {
            let list: Vec<Value> = client
                .get(&format!("/api/v1/namespaces/{namespace}/subscriptions"))
                .await?;
            print(format, &list, || table(&list));
        }
        SubscriptionCommand::Rm { subscription } => {
            let (ns, name) = split(&subscription)?;
            client
                .send(client.request(Method::DELETE, &path(ns, name)))
                .await?;
            print(format, &json!({ "deleted": subscription }), || {
                Table::new(vec!["DELETED"]).row(vec![subscription.clone()])
            });
        }
    }
    Ok(())
}

fn table(list: &[Value]) -> Table {
    Table::new(vec!["NAME", "FUNCTION", "TYPE", "SOURCE", "CONTEXT"]).rows(list.iter().map(|s| {
        let context = s["context"]
            .as_object()
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        vec![
            text(&s["name"]),
            text(&s["function"]),
            text(&s["type"]),
            text(&s["source"]),
            if context.is_empty() {
                "-".to_string()
            } else {
                context
            },
        ]
    }))
}

fn path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/subscriptions/{name}")
}

/// Splits `NS/NAME`.
fn split(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => anyhow::bail!("'{text}' is not NAMESPACE/SUBSCRIPTION (for example demo/on-order)"),
    }
}

/// The PUT body from the flags.
fn body(args: &SubscriptionCreateArgs) -> anyhow::Result<Value> {
    let mut context = Map::new();
    for pair in &args.context {
        let (name, pattern) = pair
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .with_context(|| {
                format!("--context '{pair}' is not NAME=PATTERN (e.g. region=eu-*)")
            })?;
        context.insert(name.to_string(), Value::String(pattern.to_string()));
    }
    let mut body = json!({ "function": args.function, "type": args.event_type });
    if let Some(source) = &args.source {
        body["source"] = json!(source);
    }
    if !context.is_empty() {
        body["context"] = Value::Object(context);
    }
    Ok(body)
}
