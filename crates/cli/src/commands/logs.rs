//! `faasbox logs ID|NS/FN [--follow]`: one call's log lines, or a function's recent lines across
//! its calls.
//!
//! Following a function reads the server's live stream (`…/logs?follow=true`, Server-Sent
//! Events): each line as a call prints it, with its run id. The stream is opened first, then
//! the newest stored lines are printed; lines of a run already printed from the store are not
//! printed again from the stream. Following one call waits for its end (its lines are stored
//! then; `faasbox runs logs ID -f` prints a run's as they come).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::namespaces::text;
use crate::cli::{LogsArgs, OutputFormat};
use crate::client::{split_function, Client};
use crate::output::{outln, print_log_page};

/// How often `--follow` of one call asks whether it ended.
const POLL: Duration = Duration::from_secs(1);

pub async fn run(client: &Client, format: OutputFormat, args: LogsArgs) -> anyhow::Result<()> {
    if args.target.contains('/') {
        let (ns, name) = split_function(&args.target)?;
        function_logs(client, format, ns, name, args.limit, args.follow).await
    } else {
        call_logs(client, format, &args.target, args.follow).await
    }
}

/// One call's lines; with `follow`, once the call has ended (its lines are stored then).
async fn call_logs(
    client: &Client,
    format: OutputFormat,
    id: &str,
    follow: bool,
) -> anyhow::Result<()> {
    if follow {
        let mut told = false;
        loop {
            let call: Value = client.get(&format!("/api/v1/invocations/{id}")).await?;
            // A queued run (an asynchronous call not started yet) has not ended either.
            let status = call["status"].as_str().unwrap_or_default();
            if status != "running" && status != "queued" {
                break;
            }
            if !told && format == OutputFormat::Text {
                eprintln!(
                    "call {id} is {status}; its lines are printed when it ends \
                     (`faasbox runs logs {id} -f` prints them as they come)"
                );
                told = true;
            }
            tokio::time::sleep(POLL / 2).await;
        }
    }
    let logs: Value = client
        .get(&format!("/api/v1/invocations/{id}/logs"))
        .await?;
    print_log_page(format, false, &logs, |line| line_text(line, None));
    Ok(())
}

/// A function's recent lines; with `follow`, then its lines as its calls print them, until
/// interrupted. Followed lines in JSON are one object per line (a stream has no end to close
/// a document with): `{seq, invocation, ts_ms, stream, line}` for stored lines, the same
/// without `seq` for live ones.
async fn function_logs(
    client: &Client,
    format: OutputFormat,
    ns: &str,
    name: &str,
    limit: u32,
    follow: bool,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/functions/{name}/logs");
    // Following from before the stored lines are read: no line falls between the two.
    let stream = if follow {
        let request = client
            .request(Method::GET, &path)
            .query(&[("follow", "true")]);
        Some(client.send(request).await?)
    } else {
        None
    };
    let page: Value = client
        .json(
            client
                .request(Method::GET, &path)
                .query(&[("limit", limit.to_string())]),
        )
        .await?;
    let lines = print_log_page(format, follow, &page, |line| {
        line_text(line, Some(&line["invocation"]))
    });
    let Some(stream) = stream else {
        return Ok(());
    };
    if format == OutputFormat::Text {
        eprintln!(
            "following the logs of {ns}/{name}: lines appear as calls print them (Ctrl-C stops)"
        );
    }
    // Runs stored already were printed whole from the store.
    let printed: HashSet<String> = lines
        .iter()
        .filter_map(|l| l["invocation"].as_str().map(str::to_string))
        .collect();
    tokio::select! {
        followed = print_stream(format, stream, &printed) => followed,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Prints the lines of a live stream (Server-Sent Events) until it ends.
async fn print_stream(
    format: OutputFormat,
    response: reqwest::Response,
    printed: &HashSet<String>,
) -> anyhow::Result<()> {
    let mut body = response.bytes_stream();
    let mut events = SseReader::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading the server's log stream")?;
        for (event, data) in events.push(&chunk) {
            match event.as_str() {
                "line" => {
                    let Ok(line) = serde_json::from_str::<Value>(&data) else {
                        continue;
                    };
                    if line["run"]
                        .as_str()
                        .is_some_and(|run| printed.contains(run))
                    {
                        continue;
                    }
                    match format {
                        // The stored lines' form, without the `seq` a line gets when stored.
                        OutputFormat::Json => outln!(
                            "{}",
                            serde_json::json!({
                                "invocation": line["run"],
                                "ts_ms": line["ts_ms"],
                                "stream": line["stream"],
                                "line": line["line"],
                            })
                        ),
                        OutputFormat::Text => outln!("{}", line_text(&line, Some(&line["run"]))),
                    }
                }
                "lagged" => {
                    let missed: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    eprintln!(
                        "{} lines were missed: this terminal reads slower than the function \
                         prints (`faasbox logs NS/FN` shows the stored ones)",
                        text(&missed["missed"])
                    );
                }
                _ => {}
            }
        }
    }
    anyhow::bail!("the server ended the log stream (it stopped?); run the command again to go on")
}

/// Splits a Server-Sent Events byte stream into events: (event name, data).
#[derive(Default)]
struct SseReader {
    pending: Vec<u8>,
}

impl SseReader {
    /// Takes the next bytes; gives the events they complete.
    fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = event_end(&self.pending) {
            let block: Vec<u8> = self.pending.drain(..end.1).take(end.0).collect();
            let block = String::from_utf8_lossy(&block);
            let (mut name, mut data) = ("message".to_string(), Vec::new());
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => name = value.to_string(),
                    "data" => data.push(value.to_string()),
                    // A comment (empty field name) or a field this client does not use.
                    _ => {}
                }
            }
            if !data.is_empty() {
                events.push((name, data.join("\n")));
            }
        }
        events
    }
}

/// Where the first complete event of `bytes` ends: (its length, the length with the blank
/// line that ends it).
fn event_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let lf = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// `12:00:01.250 stdout   [INVOCATION] the line`.
pub(crate) fn line_text(line: &Value, invocation: Option<&Value>) -> String {
    let time = format_ms(line["ts_ms"].as_u64().unwrap_or(0));
    let stream = text(&line["stream"]);
    match invocation {
        Some(id) => format!("{time} {stream:<8} {} {}", text(id), text(&line["line"])),
        None => format!("{time} {stream:<8} {}", text(&line["line"])),
    }
}

/// The time of day (UTC) of a Unix time in milliseconds.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_split_whatever_the_chunks() {
        let stream = b": following\n\nevent: line\ndata: {\"run\":\"a\"}\n\n: keep-alive\n\nevent: lagged\r\ndata: {\"missed\":3}\r\n\r\n";
        for size in [1, 3, 7, stream.len()] {
            let mut reader = SseReader::default();
            let events: Vec<_> = stream.chunks(size).flat_map(|c| reader.push(c)).collect();
            assert_eq!(
                events,
                vec![
                    ("line".to_string(), r#"{"run":"a"}"#.to_string()),
                    ("lagged".to_string(), r#"{"missed":3}"#.to_string()),
                ],
                "chunks of {size}"
            );
        }
    }
}
