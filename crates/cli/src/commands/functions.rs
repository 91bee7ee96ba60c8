//! `faasbox fn deploy|update|history|rollback|ls|get|instances|rm` (`fn create` and `fn build-logs`,
//! functions from code, are in [`super::code`]).

use anyhow::Context;

use reqwest::Method;
use serde_json::{json, Value};

use super::namespaces::text;
use super::{env_pairs, short_digest};
use crate::cli::{DeployArgs, FnCommand, OutputFormat, UpdateArgs};
use crate::client::{split_function, ApiFailure, Client};
use crate::output::{outln, print, print_json, Table};

pub async fn run(client: &Client, format: OutputFormat, command: FnCommand) -> anyhow::Result<()> {
    match command {
        FnCommand::Deploy(args) => deploy(client, format, *args).await,
        FnCommand::Create(args) => super::code::create(client, format, *args).await,
        FnCommand::BuildLogs { function, follow } => {
            super::code::build_logs(client, format, &function, follow).await
        }
        FnCommand::Update(args) => update(client, format, *args).await,
        FnCommand::History { function, global } => {
            let path = format!("{}/revisions", function_path(&function, global)?);
            let list: Vec<Value> = client.get(&path).await?;
            print(format, &list, || {
                Table::new(vec!["REVISION", "IMAGE", "DIGEST", "CREATED", "BY"]).rows(
                    list.iter().map(|r| {
                        let current = if r["current"] == true {
                            " (current)"
                        } else {
                            ""
                        };
                        vec![
                            format!("{}{current}", r["revision"]),
                            text(&r["spec"]["image"]),
                            short_digest(&r["digest"]),
                            text(&r["created"]),
                            text(&r["created_by"]),
                        ]
                    }),
                )
            });
            Ok(())
        }
        FnCommand::Rollback {
            function,
            global,
            to,
        } => {
            let path = format!("{}/rollback", function_path(&function, global)?);
            let body = match to {
                Some(n) => json!({ "revision": n }),
                None => json!({}),
            };
            let done: Value = client
                .json(client.request(Method::POST, &path).json(&body))
                .await?;
            print(format, &done, || {
                Table::new(vec!["FUNCTION", "FROM", "TO", "DIGEST", "CHANGED"]).row(vec![
                    function.clone(),
                    done["previous_revision"].to_string(),
                    done["revision"].to_string(),
                    short_digest(&done["digest"]),
                    changes_text(&done),
                ])
            });
            Ok(())
        }
        FnCommand::Ls { namespace, global } => {
            let path = match (namespace, global) {
                (Some(ns), false) => format!("/api/v1/namespaces/{ns}/functions"),
                _ => "/api/v1/functions".to_string(),
            };
            let list: Vec<Value> = client.get(&path).await?;
            print(format, &list, || {
                Table::new(HEADER.to_vec()).rows(list.iter().map(row))
            });
            Ok(())
        }
        FnCommand::Get { function, global } => {
            let path = function_path(&function, global)?;
            let answer = client.send_raw(client.request(Method::GET, &path)).await?;
            if answer.status() == reqwest::StatusCode::NOT_FOUND && !global {
                if let Some(code) = super::code::code_view(client, &function).await? {
                    // A function from code that is not built (yet, or its build failed):
                    // its build is all there is to show.
                    print_json(&json!({ "name": function, "code": code }));
                    return Ok(());
                }
            }
            if !answer.status().is_success() {
                return Err(crate::client::failure(answer).await.into());
            }
            let mut f: Value = answer.json().await.context("reading the server's answer")?;
            if f["contract"] == "code" && !global {
                // Handler, language, the built image's digest, build status and reason.
                if let Some(code) = super::code::code_view(client, &function).await? {
                    f["code"] = code;
                }
            }
            // The whole function is JSON either way: a table would hide most of it.
            print_json(&f);
            Ok(())
        }
        FnCommand::Instances { function } => {
            let path = format!("{}/instances", function_path(&function, false)?);
            let list: Vec<Value> = client.get(&path).await?;
            print(format, &list, || {
                Table::new(vec!["INSTANCE", "REVISION", "STARTED", "CALLS", "STATE"]).rows(
                    list.iter().map(|i| {
                        vec![
                            text(&i["id"]),
                            text(&i["revision"]),
                            text(&i["started"]),
                            text(&i["calls"]),
                            text(&i["state"]),
                        ]
                    }),
                )
            });
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

/// The columns of `fn ls` and of a deploy's answer.
const HEADER: [&str; 8] = [
    "FUNCTION",
    "REVISION",
    "IMAGE",
    "DIGEST",
    "CONTRACT",
    "SIZE",
    "INSTANCES",
    "UPDATED",
];

fn row(f: &Value) -> Vec<String> {
    let instances = &f["instances"];
    let image = match f["image"]["status"].as_str() {
        Some(status @ ("missing" | "removed")) => {
            format!("{} ({status})", text(&f["spec"]["image"]))
        }
        _ => text(&f["spec"]["image"]),
    };
    vec![
        match f["namespace"].as_str() {
            Some(ns) => format!("{ns}/{}", text(&f["name"])),
            None => format!("(global) {}", text(&f["name"])),
        },
        f["revision"].to_string(),
        image,
        short_digest(&f["digest"]),
        // The contract it runs under (a `--cmd` of direktiv-cmd makes an http spec `cmd`).
        text(&f["contract"]),
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
    let envs = env_pairs(&args.env)?;
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
        spec["input"] = input_template(input)?;
    }
    let mut request = client.request(Method::PUT, &path).json(&spec);
    if let Some(pull) = args.pull {
        request = request.query(&[("pull", pull.as_str())]);
    }
    let deployed: Value = client.json(request).await.map_err(speak_of_flags)?;
    show_change(format, &deployed);
    Ok(())
}

/// The flags of `fn deploy` and `fn update` and the spec fields they set.
const FLAGS: [(&str, &str); 17] = [
    ("scale.min", "--min-scale"),
    ("scale.max", "--max-scale"),
    ("scale.concurrency", "--concurrency"),
    ("scale.idle_timeout", "--idle-timeout"),
    ("timeout", "--timeout"),
    ("size", "--size"),
    ("disk", "--disk"),
    ("secrets", "--secret"),
    ("input", "--input"),
    ("envs", "--env"),
    ("image", "--image"),
    ("cmd", "--cmd"),
    ("contract", "--contract"),
    ("code", "--code"),
    ("main", "--main"),
    ("runtime", "--runtime"),
    ("network", "--no-network"),
];

/// A refused deploy or update names spec fields (`` `scale.max` must be …``): name the flags
/// that set them too, since the user wrote flags, not the JSON the CLI built from them.
fn speak_of_flags(error: anyhow::Error) -> anyhow::Error {
    let Some(failure) = error.downcast_ref::<ApiFailure>() else {
        return error;
    };
    let mut failure = ApiFailure {
        status: failure.status,
        code: failure.code.clone(),
        message: failure.message.clone(),
        body: failure.body.clone(),
    };
    for (field, flag) in FLAGS {
        failure.message = failure
            .message
            .replace(&format!("`{field}`"), &format!("{flag} (`{field}`)"));
    }
    failure.into()
}

/// Prints a deploy's or update's answer: warnings, the function, and what changed.
fn show_change(format: OutputFormat, deployed: &Value) {
    if let Some(error) = deployed["image"]["last_pull_error"].as_str() {
        eprintln!("warning: the function is saved but its image is missing: {error}");
    }
    for warning in deployed["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", text(warning));
    }
    print(format, deployed, || {
        Table::new(HEADER.to_vec()).row(row(deployed))
    });
    if format == OutputFormat::Text && deployed["changes"].is_array() {
        outln!(
            "changed from revision {}: {}",
            deployed["previous_revision"],
            changes_text(deployed)
        );
    }
}

/// The `changes` of an answer, for people.
fn changes_text(answer: &Value) -> String {
    let changes: Vec<String> = answer["changes"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    if changes.is_empty() {
        "nothing".to_string()
    } else {
        changes.join(", ")
    }
}

/// Reads `--input`: JSON, or `@FILE`.
fn input_template(input: &str) -> anyhow::Result<Value> {
    let text = match input.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the --input template from {path}"))?,
        None => input.to_string(),
    };
    serde_json::from_str(&text).with_context(|| "the --input template is not JSON".to_string())
}

/// `fn update`: the given settings as a JSON merge patch of the spec.
async fn update(client: &Client, format: OutputFormat, args: UpdateArgs) -> anyhow::Result<()> {
    let path = function_path(&args.function, args.global)?;
    let mut patch = json!({});
    let mut envs = env_pairs(&args.env)?;
    for key in &args.unset_env {
        if envs.insert(key.clone(), Value::Null).is_some() {
            anyhow::bail!("--env and --unset-env both name '{key}'");
        }
    }
    if !envs.is_empty() {
        patch["envs"] = json!(envs);
    }
    let settings = [
        ("image", args.image.map(Value::from)),
        ("timeout", args.timeout.map(Value::from)),
        ("size", args.size.map(Value::from)),
        ("cmd", args.cmd.map(Value::from)),
        ("runtime", args.runtime.map(Value::from)),
        ("network", args.network.map(Value::from)),
    ];
    for (field, value) in settings {
        if let Some(value) = value {
            patch[field] = value;
        }
    }
    let scale = [
        ("min", args.min_scale.map(Value::from)),
        ("max", args.max_scale.map(Value::from)),
        ("concurrency", args.concurrency.map(Value::from)),
        ("idle_timeout", args.idle_timeout.map(Value::from)),
    ];
    for (field, value) in scale {
        if let Some(value) = value {
            patch["scale"][field] = value;
        }
    }
    if !args.secrets.is_empty() {
        patch["secrets"] = json!(args.secrets);
    }
    if let Some(input) = &args.input {
        patch["input"] = input_template(input)?;
    }
    if patch.as_object().is_some_and(|o| o.is_empty()) && args.pull.is_none() {
        anyhow::bail!(
            "nothing to update: give the settings to change (see `faasbox fn update --help`)"
        );
    }
    let mut request = client.request(Method::PATCH, &path).json(&patch);
    if let Some(pull) = args.pull {
        request = request.query(&[("pull", pull.as_str())]);
    }
    let updated: Value = client.json(request).await.map_err(speak_of_flags)?;
    show_change(format, &updated);
    Ok(())
}
