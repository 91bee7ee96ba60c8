//! `faasbox image import|ls|rm|prune|pull|push`: uploads archives and transfers images from
//! and to registries (with progress bars), lists, removes and prunes image tables — a
//! namespace's (`-n NS`) or the server-wide one.

use std::path::Path;

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

use super::namespaces::text;
use super::short_digest;
use crate::cli::{ImageCommand, ImportArgs, OutputFormat};
use crate::client::Client;
use crate::output::{human_size, print, Table};

/// The API path of an image route: the namespace's, or the server-wide one.
fn images_path(namespace: Option<&str>, rest: &str) -> String {
    match namespace {
        Some(ns) => format!("/api/v1/namespaces/{ns}/images{rest}"),
        None => format!("/api/v1/images{rest}"),
    }
}

/// Where an image's name lives, for tables.
fn table_of(image: &Value) -> String {
    match image["namespace"].as_str() {
        Some(ns) => ns.to_string(),
        None => "(global)".to_string(),
    }
}

/// The notes of an import's answer (device nodes skipped under /dev), on standard error.
fn print_notes(image: &Value) {
    for note in image["notes"].as_array().into_iter().flatten() {
        eprintln!("note: {}", text(note));
    }
}

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: ImageCommand,
) -> anyhow::Result<()> {
    match command {
        ImageCommand::Import(args) => import(client, format, args).await,
        ImageCommand::Build(args) => super::code::build(client, format, *args).await,
        ImageCommand::Builds(c) => super::code::builds(client, format, c).await,
        ImageCommand::Pull {
            reference,
            namespace,
        } => {
            let path = images_path(namespace.as_deref(), "/pull");
            let done = transfer(client, format, &path, &[("ref", reference)], "pulling").await?;
            let image = &done["image"];
            print_notes(image);
            print(format, image, || {
                Table::new(vec!["NAMESPACE", "NAME", "DIGEST", "SIZE"]).row(vec![
                    table_of(image),
                    text(&image["name"]),
                    text(&image["digest"]),
                    human_size(image["size"].as_u64().unwrap_or(0)),
                ])
            });
            Ok(())
        }
        ImageCommand::Push {
            name,
            target,
            namespace,
        } => {
            let path = images_path(namespace.as_deref(), "/push");
            let query = vec![("name", name.clone()), ("target", target.clone())];
            let done = transfer(client, format, &path, &query, "pushing").await?;
            let pushed = json!({ "name": name, "target": target, "digest": done["digest"] });
            print(format, &pushed, || {
                Table::new(vec!["PUSHED", "TO", "DIGEST"]).row(vec![
                    name.clone(),
                    target.clone(),
                    text(&pushed["digest"]),
                ])
            });
            Ok(())
        }
        ImageCommand::Ls { namespace, global } => {
            let list = match (namespace, global) {
                (Some(ns), _) => client.get(&images_path(Some(&ns), "")).await?,
                (None, true) => client.get(&images_path(None, "")).await?,
                (None, false) => every_table(client).await?,
            };
            print(format, &list, || {
                Table::new(vec!["NAMESPACE", "NAME", "DIGEST", "SIZE", "LAYERS"]).rows(
                    list.iter().map(|i| {
                        vec![
                            table_of(i),
                            text(&i["name"]),
                            short_digest(&i["digest"]),
                            human_size(i["size"].as_u64().unwrap_or(0)),
                            i["layers"].as_array().map_or(0, Vec::len).to_string(),
                        ]
                    }),
                )
            });
            Ok(())
        }
        ImageCommand::Rm {
            name,
            namespace,
            force,
        } => {
            let mut query = vec![("name", name.clone())];
            if force {
                query.push(("force", "true".to_string()));
            }
            let removed: Value = client
                .json(
                    client
                        .request(Method::DELETE, &images_path(namespace.as_deref(), ""))
                        .query(&query),
                )
                .await?;
            let will_fail: Vec<String> = removed["will_fail"]
                .as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default();
            if !will_fail.is_empty() {
                eprintln!(
                    "warning: removed although in use; these fail at their next start until \
                     deployed again: {}",
                    will_fail.join(", ")
                );
            }
            print(format, &removed, || {
                Table::new(vec!["REMOVED", "FREED"]).row(vec![
                    text(&removed["removed"]),
                    human_size(removed["freed_bytes"].as_u64().unwrap_or(0)),
                ])
            });
            Ok(())
        }
        ImageCommand::Prune { namespace } => {
            let pruned: Value = client
                .json(client.request(Method::POST, &images_path(namespace.as_deref(), "/prune")))
                .await?;
            print(format, &pruned, || {
                let removed = pruned["removed"].as_array().cloned().unwrap_or_default();
                Table::new(vec!["REMOVED"])
                    .rows(removed.iter().map(|n| vec![text(n)]))
                    .row(vec![format!(
                        "freed {} ({} layers)",
                        human_size(pruned["freed_bytes"].as_u64().unwrap_or(0)),
                        pruned["freed_layers"].as_u64().unwrap_or(0)
                    )])
            });
            Ok(())
        }
    }
}

/// The images of every table the token sees: the server-wide ones, then each namespace's.
async fn every_table(client: &Client) -> anyhow::Result<Vec<Value>> {
    let mut all: Vec<Value> = client.get(&images_path(None, "")).await?;
    let namespaces: Vec<Value> = client.get("/api/v1/namespaces").await?;
    for ns in namespaces.iter().filter_map(|n| n["name"].as_str()) {
        let images: Vec<Value> = client.get(&images_path(Some(ns), "")).await?;
        all.extend(images);
    }
    Ok(all)
}

/// Sends a pull or push and follows its newline-delimited JSON events with a progress bar of
/// bytes and layers; returns the final `done` event, or fails with the `error` event's message.
async fn transfer(
    client: &Client,
    format: OutputFormat,
    path: &str,
    query: &[(&str, String)],
    verb: &str,
) -> anyhow::Result<Value> {
    let response = client
        .send(client.request(Method::POST, path).query(query))
        .await?;
    let bar = (format == OutputFormat::Text).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{verb} {{bar:30}} {{bytes}}/{{total_bytes}} {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut layers = 0u64;
    let mut layers_done = 0u64;
    let mut done_bytes: std::collections::HashMap<String, u64> = Default::default();
    let mut stream = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut last: Option<Value> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("the server's answer broke off")?;
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            match event["event"].as_str() {
                Some("resolved") => {
                    layers = event["layers"].as_u64().unwrap_or(0);
                    if let Some(bar) = &bar {
                        bar.set_length(event["total_bytes"].as_u64().unwrap_or(0));
                        bar.set_message(format!("layers {layers_done}/{layers}"));
                    }
                }
                Some("bytes") => {
                    let digest = text(&event["digest"]);
                    let now = event["done"].as_u64().unwrap_or(0);
                    let before = done_bytes.insert(digest, now).unwrap_or(0);
                    if let Some(bar) = &bar {
                        bar.inc(now.saturating_sub(before));
                    }
                }
                Some("layer_done") => {
                    layers_done += 1;
                    if let Some(bar) = &bar {
                        bar.set_message(format!("layers {layers_done}/{layers}"));
                    }
                }
                Some("done") | Some("error") => last = Some(event),
                _ => {}
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match last {
        Some(event) if event["event"] == "done" => Ok(event),
        Some(event) => anyhow::bail!(
            "{} ({})",
            event["error"]["message"]
                .as_str()
                .unwrap_or("the transfer failed"),
            event["error"]["code"].as_str().unwrap_or("error")
        ),
        None => anyhow::bail!("the server's answer ended before the transfer finished"),
    }
}

/// `flag`'s command line or JSON array, as a JSON array for the API.
fn command_list(flag: &str, text: &str) -> anyhow::Result<String> {
    let list: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).with_context(|| {
            format!("{flag} '{text}' is not a JSON array of strings like [\"/bin/sh\", \"-c\"]")
        })?
    } else {
        shlex::split(text)
            .ok_or_else(|| anyhow::anyhow!("{flag} '{text}' cannot be split: unbalanced quotes"))?
    };
    if list.is_empty() {
        anyhow::bail!("{flag} is empty; give the program to run");
    }
    Ok(serde_json::to_string(&list)?)
}

async fn import(client: &Client, format: OutputFormat, args: ImportArgs) -> anyhow::Result<()> {
    let (file, _scratch) = archive_for(&args.file)?;
    let size = std::fs::metadata(&file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let mut query: Vec<(&str, String)> = vec![("name", args.name.clone())];
    if let Some(e) = &args.entrypoint {
        query.push(("entrypoint", command_list("--entrypoint", e)?));
    }
    if let Some(c) = &args.cmd {
        query.push(("cmd", command_list("--cmd", c)?));
    }
    if let Some(bad) = args
        .env
        .iter()
        .find(|kv| !kv.contains('=') || kv.starts_with('='))
    {
        anyhow::bail!("--env '{bad}' is not KEY=VALUE");
    }
    if !args.env.is_empty() {
        query.push(("env", serde_json::to_string(&args.env)?));
    }
    if let Some(w) = &args.workdir {
        query.push(("workdir", w.clone()));
    }
    if let Some(u) = &args.user {
        query.push(("user", u.clone()));
    }
    let bar = if format == OutputFormat::Text && size > 4 * 1024 * 1024 {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "uploading {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let reader = tokio::fs::File::open(&file)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let progress = bar.clone();
    let stream = tokio_util::io::ReaderStream::new(reader).map(move |chunk| {
        if let (Ok(bytes), Some(bar)) = (&chunk, &progress) {
            bar.inc(bytes.len() as u64);
        }
        chunk
    });
    let request = client
        .request(
            Method::POST,
            &images_path(args.namespace.as_deref(), "/import"),
        )
        .query(&query)
        .header("content-type", "application/octet-stream")
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(stream));
    if let Some(bar) = &bar {
        bar.set_message("importing");
    }
    let result = client.json::<Value>(request).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let image = result.with_context(|| format!("importing {}", args.file.display()))?;
    print_notes(&image);
    print(format, &image, || {
        Table::new(vec!["NAMESPACE", "NAME", "DIGEST", "SIZE"]).row(vec![
            table_of(&image),
            text(&image["name"]),
            text(&image["digest"]),
            human_size(image["size"].as_u64().unwrap_or(0)),
        ])
    });
    Ok(())
}

/// The file to upload: the archive itself, or a tar made from an OCI layout directory.
fn archive_for(path: &Path) -> anyhow::Result<(std::path::PathBuf, Option<tempfile::TempDir>)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_dir() {
        return Ok((path.to_path_buf(), None));
    }
    if !path.join("oci-layout").is_file() {
        anyhow::bail!(
            "{} is a directory but not an OCI image layout (it has no oci-layout file)",
            path.display()
        );
    }
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let tar_path = scratch.path().join("layout.tar");
    let file = std::fs::File::create(&tar_path)?;
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", path)
        .with_context(|| format!("packing {}", path.display()))?;
    builder.finish()?;
    Ok((tar_path, Some(scratch)))
}
