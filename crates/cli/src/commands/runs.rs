//! `faasbox runs ls|get|logs|cancel`: the records of a namespace's calls (runs), their log
//! lines (followed by polling `…/logs?after=N` until the run is done) and their cancel.
//!
//! A run is found by its id alone (`GET /api/v1/runs/{id}`); the commands that need the
//! namespaced routes (logs, cancel) take the namespace from that record.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::namespaces::text;
use crate::cli::{OutputFormat, RunsCommand, RunsLsArgs};
use crate::client::{failure, Client};
use crate::output::{outln, print, print_json, print_log_page, Table};

/// How often `runs logs --follow` (and a blocking call that became a run) asks again.
pub const POLL: Duration = Duration::from_millis(500);

/// The statuses a run ends with.
pub const ENDED: [&str; 5] = ["succeeded", "failed", "crashed", "timeout", "cancelled"];

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: RunsCommand,
) -> anyhow::Result<()> {
    match command {
        RunsCommand::Ls(args) => list(client, format, args).await,
        RunsCommand::Get { run } => {
            let record = get(client, &run).await?;
            match format {
                OutputFormat::Json => print_json(&record),
                OutputFormat::Text => outln!("{}", describe(&record)),
            }
            Ok(())
        }
        RunsCommand::Logs { run, follow } => logs(client, format, &run, follow).await,
        RunsCommand::Cancel { run } => cancel(client, format, &run).await,
    }
}

/// The run record of `id`, wherever its namespace.
pub async fn get(client: &Client, id: &str) -> anyhow::Result<Value> {
    if id.is_empty() || id.contains('/') {
        anyhow::bail!(
            "'{id}' is not a run id: give the id `faasbox invoke` printed (32 hex digits); \
             `faasbox runs ls NAMESPACE` lists them"
        );
    }
    client.get(&format!("/api/v1/runs/{id}")).await
}

/// The API path of run `record` (its namespace's), with `suffix` appended.
fn run_path(record: &Value, suffix: &str) -> String {
    format!(
        "/api/v1/namespaces/{}/runs/{}{suffix}",
        text(&record["namespace"]),
        text(&record["id"])
    )
}

async fn list(client: &Client, format: OutputFormat, args: RunsLsArgs) -> anyhow::Result<()> {
    let (namespace, function) = match args.target.split_once('/') {
        Some((ns, f)) if !ns.is_empty() && !f.is_empty() && !f.contains('/') => (ns, Some(f)),
        None if !args.target.is_empty() => (args.target.as_str(), None),
        _ => anyhow::bail!(
            "'{}' is neither NAMESPACE nor NAMESPACE/FUNCTION (for example demo or demo/echo)",
            args.target
        ),
    };
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(f) = function {
        query.push(("function", f.to_string()));
    }
    if let Some(status) = args.status {
        query.push(("status", status));
    }
    if let Some(since) = args.since {
        query.push(("since", since));
    }
    let request = client
        .request(Method::GET, &format!("/api/v1/namespaces/{namespace}/runs"))
        .query(&query);
    let list: Vec<Value> = client.json(request).await?;
    print(format, &list, || {
        Table::new(vec![
            "RUN", "FUNCTION", "STATUS", "MODE", "ACCEPTED", "DURATION",
        ])
        .rows(list.iter().map(|r| {
            vec![
                text(&r["id"]),
                text(&r["function"]),
                text(&r["status"]),
                text(&r["mode"]),
                text(&r["accepted"]),
                duration_text(r),
            ]
        }))
    });
    Ok(())
}

/// Parses an RFC 3339 time of a record.
fn time_of(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

/// How long the run ran (started to ended), `-` when it has not ended or never started.
fn duration_text(record: &Value) -> String {
    match (time_of(&record["started"]), time_of(&record["ended"])) {
        (Some(started), Some(ended)) => human_ms((ended - started).whole_milliseconds()),
        _ => "-".to_string(),
    }
}

/// Milliseconds as people read them: 850ms, 2.35s, 3m05s.
fn human_ms(ms: i128) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// JSON on the lines after a label, indented; `-` for null.
fn json_block(value: &Value) -> String {
    if value.is_null() {
        return "-".to_string();
    }
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    if pretty.contains('\n') {
        format!("\n  {}", pretty.replace('\n', "\n  "))
    } else {
        pretty
    }
}

/// Every field of a run, for people.
pub fn describe(r: &Value) -> String {
    let or_dash = |v: &Value| if v.is_null() { "-".into() } else { text(v) };
    let revision = match &r["revision"] {
        Value::Null => String::new(),
        n => format!(" (revision {n})"),
    };
    let mut lines = vec![
        format!("run:          {}", text(&r["id"])),
        format!(
            "function:     {}/{}{revision}",
            text(&r["namespace"]),
            text(&r["function"])
        ),
        format!("status:       {}", text(&r["status"])),
        format!("mode:         {}", text(&r["mode"])),
        format!("accepted:     {}", or_dash(&r["accepted"])),
        format!("started:      {}", or_dash(&r["started"])),
        format!("ended:        {}", or_dash(&r["ended"])),
        format!("duration:     {}", duration_text(r)),
        format!("attempts:     {}", or_dash(&r["attempts"])),
        format!(
            "cold start:   {}",
            match &r["cold_start"] {
                Value::Bool(true) => "yes",
                Value::Bool(false) => "no",
                _ => "-",
            }
        ),
    ];
    let phases = &r["phases"];
    if phases.is_object() {
        let phase = |key: &str| match phases[key].as_i64() {
            Some(ms) => human_ms(ms.into()),
            None => "-".into(),
        };
        lines.push(format!(
            "phases:       wait {}, init {}, run {}",
            phase("wait_ms"),
            phase("init_ms"),
            phase("run_ms")
        ));
    } else {
        lines.push("phases:       -".into());
    }
    let list = |v: &Value| match v.as_array() {
        Some(a) if !a.is_empty() => a.iter().map(text).collect::<Vec<_>>().join(", "),
        _ => "-".into(),
    };
    lines.push(format!("secrets:      {}", list(&r["secrets"])));
    lines.push(format!("services:     {}", list(&r["services"])));
    let callback = match (&r["callback_url"], r["callback_status"].as_str()) {
        (Value::Null, _) => "-".to_string(),
        (url, Some(how)) => format!("{} ({how})", text(url)),
        (url, None) => text(url),
    };
    lines.push(format!("callback:     {callback}"));
    lines.push(format!("input:        {}", json_block(&r["input"])));
    lines.push(format!("output:       {}", json_block(&r["output"])));
    let error = &r["error"];
    if error.is_object() {
        lines.push(format!("error type:   {}", or_dash(&error["type"])));
        lines.push(format!("error code:   {}", or_dash(&error["code"])));
        lines.push(format!("error:        {}", or_dash(&error["message"])));
        if let Some(trace) = error["stacktrace"].as_array().filter(|t| !t.is_empty()) {
            lines.push("stacktrace:".into());
            lines.extend(trace.iter().map(|l| format!("  {}", text(l))));
        }
    } else if r["error_message"].is_string() || r["error_code"].is_string() {
        lines.push(format!("error code:   {}", or_dash(&r["error_code"])));
        lines.push(format!("error:        {}", or_dash(&r["error_message"])));
    } else {
        lines.push("error:        -".into());
    }
    lines.push(format!("event:        {}", json_block(&r["event"])));
    lines.push(format!("http context: {}", json_block(&r["http_context"])));
    lines.push(format!(
        "logs:         faasbox runs logs {}",
        text(&r["id"])
    ));
    lines.join("\n")
}

/// A run's lines; with `follow`, new ones every [`POLL`] until the server says it is done.
async fn logs(client: &Client, format: OutputFormat, id: &str, follow: bool) -> anyhow::Result<()> {
    let record = get(client, id).await?;
    let path = run_path(&record, "/logs");
    let mut after: i64 = 0;
    loop {
        let request = client
            .request(Method::GET, &path)
            .query(&[("after", after.to_string())]);
        let page: Value = client.json(request).await?;
        print_log_page(format, follow, &page, |line| {
            super::logs::line_text(line, None)
        });
        if !follow || page["done"] == true {
            return Ok(());
        }
        after = page["next"].as_i64().unwrap_or(after);
        tokio::time::sleep(POLL).await;
    }
}

async fn cancel(client: &Client, format: OutputFormat, id: &str) -> anyhow::Result<()> {
    let record = get(client, id).await?;
    let request = client.request(Method::POST, &run_path(&record, "/cancel"));
    let response = client.send_raw(request).await?;
    if response.status() == StatusCode::CONFLICT {
        let failure = failure(response).await;
        if failure.code == "faasbox.run.ended" {
            // Ended meanwhile, or long ago: say how.
            let now = get(client, id).await.unwrap_or(record);
            anyhow::bail!(
                "run {id} has ended already ({}); there is nothing to cancel",
                text(&now["status"])
            );
        }
        return Err(failure.into());
    }
    if !response.status().is_success() {
        return Err(failure(response).await.into());
    }
    let cancelled: Value = response
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("reading the server's answer: {e}"))?;
    print(format, &cancelled, || {
        Table::new(vec!["RUN", "FUNCTION", "STATUS"]).row(vec![
            text(&cancelled["id"]),
            format!(
                "{}/{}",
                text(&cancelled["namespace"]),
                text(&cancelled["function"])
            ),
            text(&cancelled["status"]),
        ])
    });
    Ok(())
}

/// Polls run `id` every [`POLL`] until it has ended; its record.
pub async fn wait_ended(client: &Client, id: &str) -> anyhow::Result<Value> {
    loop {
        let record = get(client, id).await?;
        if record["status"]
            .as_str()
            .is_some_and(|s| ENDED.contains(&s))
        {
            return Ok(record);
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_ms(850), "850ms");
        assert_eq!(human_ms(2350), "2.35s");
        assert_eq!(human_ms(185_000), "3m05s");
        assert_eq!(human_ms(-5), "0ms");
    }

    #[test]
    fn a_run_shows_every_field() {
        let record = json!({
            "id": "ab12", "namespace": "demo", "function": "echo", "revision": 3,
            "mode": "async", "status": "failed",
            "accepted": "2026-01-01T00:00:00Z", "started": "2026-01-01T00:00:01Z",
            "ended": "2026-01-01T00:00:03.5Z",
            "input": {"a": 1}, "output": null,
            "error": {"type": "FunctionError", "code": "myapp.input", "message": "no id",
                      "stacktrace": []},
            "cold_start": true, "phases": {"wait_ms": 3, "init_ms": 120, "run_ms": 2400},
            "attempts": 2, "secrets": ["token"], "services": []
        });
        let shown = describe(&record);
        for expected in [
            "function:     demo/echo (revision 3)",
            "duration:     2.50s",
            "attempts:     2",
            "cold start:   yes",
            "phases:       wait 3ms, init 120ms, run 2.40s",
            "secrets:      token",
            "error type:   FunctionError",
            "error code:   myapp.input",
            "error:        no id",
            "\"a\": 1",
            "output:       -",
        ] {
            assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
        }
        assert_eq!(duration_text(&json!({"started": null, "ended": null})), "-");
    }
}
