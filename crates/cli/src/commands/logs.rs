//! `faasbox logs ID|NS/FN [--follow]`: one call's log lines, or a function's recent lines across
//! its calls.
//!
//! Following polls rather than streams: the server stores a call's lines when the call ends
//! (the agent hands them over with its answer), so lines arrive in batches at the ends of
//! calls, and a poll each second of an indexed, bounded query costs the server less than a
//! connection and a task held open per follower, works through any proxy, and uses the same
//! route as a plain `logs`.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::namespaces::text;
use crate::cli::{LogsArgs, OutputFormat};
use crate::client::{split_function, Client};
use crate::output::print_log_page;

/// How often `--follow` asks for new lines.
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

/// A function's recent lines; with `follow`, then its new lines as they are stored, until
/// interrupted. Followed lines in JSON are one object per line (a stream has no end to close
/// a document with).
async fn function_logs(
    client: &Client,
    format: OutputFormat,
    ns: &str,
    name: &str,
    limit: u32,
    follow: bool,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/functions/{name}/logs");
    let mut query = vec![("limit", limit.to_string())];
    let mut first = true;
    loop {
        let page: Value = client
            .json(client.request(Method::GET, &path).query(&query))
            .await?;
        let lines = print_log_page(format, follow, &page, |line| {
            line_text(line, Some(&line["invocation"]))
        });
        if !follow {
            return Ok(());
        }
        if first && lines.is_empty() && format == OutputFormat::Text {
            eprintln!("no lines of {ns}/{name} yet; waiting for its calls (Ctrl-C stops)");
        }
        first = false;
        // A full page means more are waiting: ask again at once.
        if lines.len() < limit as usize {
            tokio::time::sleep(POLL).await;
        }
        let next = page["next"].as_i64().unwrap_or(0);
        query = vec![("limit", limit.to_string()), ("after", next.to_string())];
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
