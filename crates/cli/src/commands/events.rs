//! `faasbox event send|ls`: send a CloudEvent into a namespace (binary HTTP mode by default,
//! structured with --structured) and list the events a namespace received.

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::cli::{EventCommand, EventSendArgs, OutputFormat};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{print, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: EventCommand,
) -> anyhow::Result<()> {
    match command {
        EventCommand::Send(args) => {
            let path = format!("/api/v1/namespaces/{}/events", args.namespace);
            let request = if args.structured {
                structured(client.request(Method::POST, &path), &args)?
            } else {
                binary(client.request(Method::POST, &path), &args)?
            };
            let answer: Value = client.json(request).await?;
            print(format, &answer, || {
                Table::new(vec!["ID", "SOURCE", "TYPE", "DUPLICATE"]).row(vec![
                    text(&answer["id"]),
                    text(&answer["source"]),
                    text(&answer["type"]),
                    text(&answer["duplicate"]),
                ])
            });
        }
        EventCommand::Ls { namespace, limit } => {
            let list: Vec<Value> = client
                .get(&format!(
                    "/api/v1/namespaces/{namespace}/events?limit={limit}"
                ))
                .await?;
            print(format, &list, || {
                Table::new(vec!["RECEIVED", "TYPE", "SOURCE", "ID"]).rows(list.iter().map(|e| {
                    vec![
                        text(&e["received"]),
                        text(&e["event"]["type"]),
                        text(&e["event"]["source"]),
                        text(&e["event"]["id"]),
                    ]
                }))
            });
        }
    }
    Ok(())
}

/// The event's data as bytes: --data (checked to be JSON when the content type says so, so
/// the error names the flag), the --file's content, or nothing.
fn data_bytes(args: &EventSendArgs) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(data) = &args.data {
        if args.content_type.contains("json") {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(data) {
                anyhow::bail!(
                    "--data is not JSON ({e}); send other text with --content-type, e.g. text/plain"
                );
            }
        }
        return Ok(Some(data.as_bytes().to_vec()));
    }
    match &args.file {
        Some(path) => Ok(Some(
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )),
        None => Ok(None),
    }
}

fn required_type(args: &EventSendArgs) -> anyhow::Result<&str> {
    args.event_type
        .as_deref()
        .context("--type is required (the event type flows listen for)")
}

fn context_pairs(args: &EventSendArgs) -> anyhow::Result<Vec<(&str, &str)>> {
    args.context
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .with_context(|| format!("--context '{pair}' is not NAME=VALUE"))
        })
        .collect()
}

fn event_id(args: &EventSendArgs) -> String {
    args.id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Binary mode: attributes as `ce-*` headers, the data as the body.
fn binary(
    mut request: reqwest::RequestBuilder,
    args: &EventSendArgs,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let attributes = [
        ("specversion", "1.0".to_string()),
        ("id", event_id(args)),
        ("source", args.source.clone()),
        ("type", required_type(args)?.to_string()),
    ];
    for (name, value) in attributes {
        request = request.header(format!("ce-{name}"), percent_encode(&value));
    }
    for (name, value) in context_pairs(args)? {
        request = request.header(format!("ce-{name}"), percent_encode(value));
    }
    Ok(match data_bytes(args)? {
        Some(body) => request
            .header(reqwest::header::CONTENT_TYPE, &args.content_type)
            .body(body),
        None => request,
    })
}

/// Structured mode: one JSON document; a --file without --type is a whole event already.
fn structured(
    request: reqwest::RequestBuilder,
    args: &EventSendArgs,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let body = match (&args.file, &args.event_type) {
        (Some(path), None) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        _ => {
            let mut event = Map::new();
            event.insert("specversion".into(), json!("1.0"));
            event.insert("id".into(), json!(event_id(args)));
            event.insert("source".into(), json!(args.source));
            event.insert("type".into(), json!(required_type(args)?));
            event.insert("datacontenttype".into(), json!(args.content_type));
            for (name, value) in context_pairs(args)? {
                event.insert(name.to_string(), json!(value));
            }
            if let Some(data) = data_bytes(args)? {
                let data = if args.content_type.contains("json") {
                    serde_json::from_slice(&data).context("--data is not valid JSON")?
                } else {
                    Value::String(String::from_utf8(data).context("the data is not text")?)
                };
                event.insert("data".into(), data);
            }
            serde_json::to_vec(&Value::Object(event))?
        }
    };
    Ok(request
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/cloudevents+json",
        )
        .body(body))
}

/// Header values: printable ASCII as is, everything else (and `%`) percent-encoded, as the
/// CloudEvents HTTP binding asks.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if (0x21..0x7f).contains(&b) && b != b'%' || b == b' ' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
