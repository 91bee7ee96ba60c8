//! `faasbox invoke` (blocking, or `--async` as a queued run) and `faasbox invocation get|ls`
//! (the older, hidden name of `faasbox runs get|ls`).

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use super::namespaces::text;
use crate::cli::{InvocationCommand, InvokeArgs, OutputFormat};
use crate::client::{failure, split_function, Client};
use crate::output::{print, print_json, write_out, Table};

/// Calls the function; prints the output (or the error) and returns whether it succeeded.
pub async fn invoke(
    client: &Client,
    format: OutputFormat,
    args: InvokeArgs,
) -> anyhow::Result<bool> {
    let path = match (&args.namespace, args.global) {
        (Some(ns), true) => format!(
            "/api/v1/namespaces/{ns}/global-functions/{}/invoke",
            args.function
        ),
        _ => {
            let (ns, name) = split_function(&args.function)?;
            format!("/api/v1/namespaces/{ns}/functions/{name}/invoke")
        }
    };
    let body = super::read_data(args.data.as_deref())?;
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        anyhow::bail!("--data is not JSON: {e}");
    }
    let mut request = client
        .request(Method::POST, &path)
        .header("content-type", "application/json")
        .body(body);
    if args.run_async {
        request = request
            .query(&[("async", "true")])
            .header("prefer", "respond-async");
        if let Some(url) = &args.callback {
            request = request.header("x-callback-url", url);
        }
    }
    let response = client.send_raw(request).await?;
    let id = response
        .headers()
        .get("faasbox-invocation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if response.status() == reqwest::StatusCode::ACCEPTED {
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let Some(id) = id.or_else(|| answer["id"].as_str().map(str::to_string)) else {
            anyhow::bail!("the server accepted the call but named no run id: {answer}");
        };
        if args.run_async {
            accepted(format, &id, &answer);
            return Ok(true);
        }
        // A blocking call that outlasted the server's --blocking-timeout: it goes on as a
        // run; wait for it here, as the user asked to.
        if format == OutputFormat::Text {
            eprintln!(
                "run {id} is still running after the server's blocking bound; waiting for it \
                 (Ctrl-C stops waiting, not the run; `faasbox runs get {id}` shows it later)"
            );
        }
        let record = super::runs::wait_ended(client, &id).await?;
        return Ok(ended(format, &id, &record));
    }
    if response.status().is_success() {
        let output = response.bytes().await.context("reading the output")?;
        match format {
            OutputFormat::Json => {
                let output: Value = serde_json::from_slice(&output).unwrap_or(Value::Null);
                print_json(&called("invocation", id.as_deref(), "output", output));
            }
            OutputFormat::Text => {
                let mut line = output.to_vec();
                line.push(b'\n');
                write_out(&line);
                if let Some(id) = &id {
                    eprintln!("invocation: {id}");
                }
            }
        }
        return Ok(true);
    }
    let failure = failure(response).await;
    match format {
        OutputFormat::Json => print_json(&called(
            "invocation",
            id.as_deref(),
            "error",
            failure.body["error"].clone(),
        )),
        OutputFormat::Text => {
            eprintln!("error: {failure}");
            // A request refused before it became a call has no id (and no logs).
            if let Some(id) = &id {
                eprintln!("invocation: {id} (see `faasbox logs {id}`)");
            }
        }
    }
    Ok(false)
}

/// Prints an accepted asynchronous call: its id on standard output (for `ID=$(…)`), how to
/// follow it on standard error; with `-o json` the server's answer `{"id", "status"}`.
fn accepted(format: OutputFormat, id: &str, answer: &Value) {
    match format {
        OutputFormat::Json => {
            let mut answer = answer.clone();
            if !answer.is_object() {
                answer = json!({});
            }
            answer["id"] = json!(id);
            if answer["status"].is_null() {
                answer["status"] = json!("queued");
            }
            print_json(&answer);
        }
        OutputFormat::Text => {
            write_out(format!("{id}\n").as_bytes());
            eprintln!(
                "run {id} is {}: `faasbox runs logs {id} -f` follows it, \
                 `faasbox runs get {id}` shows its result",
                answer["status"].as_str().unwrap_or("queued")
            );
        }
    }
}

/// Prints an ended run's output (or its error) as a blocking call would have; whether it
/// succeeded.
fn ended(format: OutputFormat, id: &str, record: &Value) -> bool {
    let succeeded = record["status"] == "succeeded";
    match format {
        OutputFormat::Json if succeeded => print_json(&called(
            "invocation",
            Some(id),
            "output",
            record["output"].clone(),
        )),
        OutputFormat::Json => print_json(&called(
            "invocation",
            Some(id),
            "error",
            record["error"].clone(),
        )),
        OutputFormat::Text if succeeded => {
            let output = serde_json::to_string(&record["output"]).unwrap_or_default();
            write_out(format!("{output}\n").as_bytes());
            eprintln!("invocation: {id}");
        }
        OutputFormat::Text => {
            let error = &record["error"];
            let message = error["message"]
                .as_str()
                .or(record["error_message"].as_str())
                .unwrap_or("no message");
            let code = error["code"]
                .as_str()
                .or(record["error_code"].as_str())
                .unwrap_or("-");
            eprintln!(
                "error: the run ended {}: {message} ({code})",
                text(&record["status"])
            );
            eprintln!("invocation: {id} (see `faasbox runs logs {id}`)");
        }
    }
    succeeded
}

/// The `-o json` answer of a command that ran something: `{"<kind>": id, "<what>": value}`,
/// the id left out when the request was refused before anything ran.
pub fn called(kind: &str, id: Option<&str>, what: &str, value: Value) -> Value {
    let mut answer = serde_json::Map::new();
    if let Some(id) = id {
        answer.insert(kind.to_string(), json!(id));
    }
    answer.insert(what.to_string(), value);
    Value::Object(answer)
}

pub async fn invocation(
    client: &Client,
    format: OutputFormat,
    command: InvocationCommand,
) -> anyhow::Result<()> {
    match command {
        InvocationCommand::Get { invocation } => {
            let record: Value = client
                .get(&format!("/api/v1/invocations/{invocation}"))
                .await?;
            print(format, &record, || {
                Table::new(vec![
                    "INVOCATION",
                    "FUNCTION",
                    "STATUS",
                    "STARTED",
                    "ENDED",
                    "ERROR",
                ])
                .row(row(&record))
            });
        }
        InvocationCommand::Ls {
            namespace,
            function,
            limit,
        } => {
            let mut request = client
                .request(
                    Method::GET,
                    &format!("/api/v1/namespaces/{namespace}/invocations"),
                )
                .query(&[("limit", limit.to_string())]);
            if let Some(f) = &function {
                request = request.query(&[("function", f)]);
            }
            let list: Vec<Value> = client.json(request).await?;
            print(format, &list, || {
                Table::new(vec![
                    "INVOCATION",
                    "FUNCTION",
                    "STATUS",
                    "STARTED",
                    "ENDED",
                    "ERROR",
                ])
                .rows(list.iter().map(row))
            });
        }
    }
    Ok(())
}

fn row(r: &Value) -> Vec<String> {
    let error = match (&r["error_code"], &r["error_message"]) {
        (Value::String(c), Value::String(m)) => format!("{c}: {m}"),
        (_, Value::String(m)) => m.clone(),
        _ => "-".into(),
    };
    vec![
        text(&r["id"]),
        format!("{}/{}", text(&r["namespace"]), text(&r["function"])),
        text(&r["status"]),
        text(&r["started"]),
        text(&r["ended"]),
        error,
    ]
}
