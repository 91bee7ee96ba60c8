//! Runs (issue 15) through the real server, runc and the CLI: asynchronous calls accepted,
//! stored and executed exactly once (also across a SIGKILL of the server), callbacks, cancel,
//! blocking calls that outlast the server's bound, the run record's fields, retention.
//!
//! Every function here is one CGI script ([`SCRIPT`]) that tells the test's gate
//! ([`support::gate`]) about its calls: that record is the function's own, so "exactly once"
//! is counted where the function ran, not in the server's bookkeeping.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::gate::Gate;
use support::images;
use support::{wait_for, Server, ALLOW_HOST_LOOPBACK};

/// How long a test waits for what it expects.
const WITHIN: Duration = Duration::from_secs(90);

/// The functions of this file, by `MODE`:
/// - `record`: tells the gate `enter?tag=<input's letters and digits>` (held there until the
///   test lets it pass), then answers its input;
/// - `lines`: log lines from stderr and the log endpoint, interleaved, then `{"tag"}`;
/// - `fail`: answers the Direktiv error `myapp.refused` naming its input.
///
/// A call's cancel (`DELETE`) is told to the gate as `seen?host=deleted&tag=<action id>`.
///
/// The gate is at `$GW:$TARGET_PORT` (the host's loopback as functions reach it): given, not
/// looked up, so the cancel's handler is one `wget` and reports well within the server's grace
/// for a cancel, even on a loaded machine.
const SCRIPT: &str = r#"#!/bin/sh
gw="$GW"
aid="$HTTP_DIREKTIV_ACTIONID"
if [ "$REQUEST_METHOD" = DELETE ]; then
  wget -q -O /dev/null "http://$gw:$TARGET_PORT/seen?host=deleted&tag=$aid"
  printf 'Content-Type: text/plain\r\n\r\n'
  exit 0
fi
input_file="$HTTP_DIREKTIV_TEMPDIR/input.json"
cat > "$input_file"
tag=$(tr -cd 'a-zA-Z0-9' < "$input_file" | head -c 100)
case "$MODE" in
record)
  wget -q -O /dev/null "http://$gw:$TARGET_PORT/enter?host=$aid&tag=$tag"
  printf 'Content-Type: application/json\r\n\r\n'
  cat "$input_file"
  ;;
lines)
  echo "line 1 of $tag" >&2
  sleep 0.3
  wget -q -O /dev/null --post-data "line 2 of $tag" "http://127.0.0.1:8889/log?aid=$HTTP_DIREKTIV_ACTIONID"
  sleep 0.3
  echo "line 3 of $tag" >&2
  sleep "${PAUSE:-0}"
  echo "line 4 of $tag" >&2
  printf 'Content-Type: application/json\r\n\r\n{"tag":"%s"}' "$tag"
  ;;
fail)
  printf 'Direktiv-ErrorCode: myapp.refused\r\nDirektiv-ErrorMessage: no customer %s\r\nContent-Type: application/json\r\n\r\n{}' "$tag"
  ;;
esac
"#;

/// A server (with `args`) whose namespace `demo` has the image `runs/fn` of [`SCRIPT`].
async fn server_and(args: &[&str]) -> (Server, tempfile::TempDir) {
    let (dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", SCRIPT, 0o755)]);
    let mut flags = vec![ALLOW_HOST_LOOPBACK];
    flags.extend_from_slice(args);
    let server = Server::start_with(&flags).await;
    server.create_namespace("demo").await;
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "runs/fn", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    (server, dir)
}

/// Deploys `demo/<name>` in `mode`, its gate at `gate`, with `extra` spec fields.
async fn deploy(server: &Server, name: &str, mode: &str, gate: &Gate, extra: Value) {
    let mut spec = json!({
        "image": "runs/fn",
        "envs": {"MODE": mode, "TARGET_PORT": gate.port.to_string(), "GW": gateway()},
        "timeout": "120s",
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    server.deploy("demo", name, spec).await;
}

/// The address functions reach the host's loopback (the gate) through.
fn gateway() -> String {
    support::flows::host_gateway()
}

/// Submits an asynchronous run of `demo/<name>` (with `callback`); checks the 202 answer and
/// returns the run id.
async fn submit(
    http: &reqwest::Client,
    server: &Server,
    name: &str,
    input: &Value,
    callback: Option<&str>,
) -> String {
    let mut request = http
        .post(server.url(&format!(
            "/api/v1/namespaces/demo/functions/{name}/invoke?async=true"
        )))
        .header("content-type", "application/json")
        .body(input.to_string());
    if let Some(url) = callback {
        request = request.header("x-callback-url", url);
    }
    let r = request.send().await.expect("async invoke");
    let status = r.status().as_u16();
    let header = r
        .headers()
        .get("faasbox-invocation-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 202, "async invoke of {name} {input}: {text}");
    let body: Value = serde_json::from_str(&text).expect("a JSON answer");
    assert_eq!(body["id"], header.as_str(), "{body}");
    assert_eq!(body["status"], "queued", "{body}");
    assert_eq!(header.len(), 32, "a run id of 32 hex digits: {header}");
    header
}

async fn run(server: &Server, id: &str) -> Value {
    server.get_json(&format!("/api/v1/runs/{id}")).await
}

fn ended(record: &Value) -> bool {
    matches!(
        record["status"].as_str(),
        Some("succeeded" | "failed" | "crashed" | "timeout" | "cancelled")
    )
}

/// Polls run `id` until it has ended; its record.
async fn wait_ended(server: &Server, id: &str) -> Value {
    wait_for(
        WITHIN,
        &format!("run {id} to end"),
        || run(server, id),
        ended,
    )
    .await
}

/// The runs of `demo/<function>` (at most 1000, newest first).
async fn runs_of(server: &Server, function: &str) -> Vec<Value> {
    let list = server
        .get_json(&format!(
            "/api/v1/namespaces/demo/runs?function={function}&limit=1000"
        ))
        .await;
    list.as_array().cloned().expect("a list of runs")
}

/// How many times the gate saw each tag (`enter` arrivals only, not cancels).
fn entered(gate: &Gate) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for arrival in gate.arrivals() {
        if arrival.host != "deleted" {
            *counts.entry(arrival.tag).or_insert(0) += 1;
        }
    }
    counts
}

/// The lines of run `id`'s logs, in their order.
async fn log_lines(server: &Server, id: &str) -> Vec<String> {
    let page = server
        .get_json(&format!("/api/v1/namespaces/demo/runs/{id}/logs"))
        .await;
    page["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l["line"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn two_hundred_async_runs_are_accepted_and_each_runs_exactly_once() {
    let gate = Gate::start().await;
    gate.open();
    let (server, _dir) = server_and(&[]).await;
    deploy(
        &server,
        "rec",
        "record",
        &gate,
        json!({"scale": {"min": 1, "max": 4, "concurrency": 5}}),
    )
    .await;
    // Warm: the instance is up before the runs come.
    let (status, _, body) = server.invoke("demo", "rec", r#""warmup""#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let http = server.http.clone();
    let server = Arc::new(server);
    let next = Arc::new(Mutex::new(0usize));
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (http, server, next) = (http.clone(), server.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    if *n == 200 {
                        break;
                    }
                    *n += 1;
                    *n - 1
                };
                let id = submit(&http, &server, "rec", &json!(format!("m{i}")), None).await;
                mine.push((format!("m{i}"), id));
            }
            mine
        }));
    }
    let mut accepted = BTreeMap::new();
    for client in clients {
        for (marker, id) in client.await.expect("client task") {
            accepted.insert(marker, id);
        }
    }
    assert_eq!(accepted.len(), 200);
    let ids: std::collections::BTreeSet<&String> = accepted.values().collect();
    assert_eq!(ids.len(), 200, "every run has an id of its own");

    let list = wait_for(
        WITHIN,
        "200 runs of demo/rec to end",
        || runs_of(&server, "rec"),
        |list| list.iter().filter(|r| r["mode"] == "async").all(ended) && list.len() >= 201,
    )
    .await;
    let async_runs: Vec<&Value> = list.iter().filter(|r| r["mode"] == "async").collect();
    assert_eq!(async_runs.len(), 200, "none lost, none added");
    for r in &async_runs {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    // Each marker's run answered that marker, and the function saw each exactly once.
    for (marker, id) in accepted.iter().step_by(20) {
        let record = run(&server, id).await;
        assert_eq!(record["output"], json!(marker), "{record}");
        assert_eq!(record["input"], json!(marker), "{record}");
        assert_eq!(record["attempts"], 1, "{record}");
    }
    let counts = entered(&gate);
    for marker in accepted.keys() {
        assert_eq!(
            counts.get(marker),
            Some(&1),
            "{marker} ran {:?} times",
            counts.get(marker)
        );
    }
    assert_eq!(
        counts.values().sum::<usize>(),
        201,
        "200 runs and the warm-up call: {counts:?}"
    );
    // The CLI lists them too.
    let shown: Value = serde_json::from_str(&server.cli_ok(&[
        "runs",
        "ls",
        "demo/rec",
        "--status",
        "succeeded",
        "--limit",
        "1000",
        "-o",
        "json",
    ]))
    .expect("JSON");
    assert_eq!(shown.as_array().map(Vec::len), Some(201), "{shown}");
}

#[tokio::test]
async fn a_sigkill_loses_no_accepted_run_and_the_running_ones_are_retried_once() {
    let gate = Gate::start().await;
    let (mut server, _dir) = server_and(&[]).await;
    // Two calls at once at most: two runs held at the gate, the others waiting.
    deploy(
        &server,
        "slow",
        "record",
        &gate,
        json!({"scale": {"max": 1, "concurrency": 2}}),
    )
    .await;
    let mut accepted = Vec::new();
    for i in 0..6 {
        let marker = format!("k{i}");
        let id = submit(&server.http, &server, "slow", &json!(marker), None).await;
        accepted.push((marker, id));
    }
    let held = gate.wait_held(2, WITHIN).await;
    let running: Vec<String> = held.iter().map(|a| a.tag.clone()).collect();
    let mut before = BTreeMap::new();
    for (marker, id) in &accepted {
        before.insert(marker.clone(), run(&server, id).await);
    }
    for marker in &running {
        assert_eq!(before[marker]["status"], "running", "{}", before[marker]);
    }
    server.kill();
    gate.open();
    let data_dir = server.data_dir.clone();
    let restarted = Server::start_in_with(&data_dir, &[ALLOW_HOST_LOOPBACK]).await;

    for (marker, id) in &accepted {
        let record = wait_ended(&restarted, id).await;
        assert_eq!(record["status"], "succeeded", "{marker}: {record}");
        assert_eq!(record["output"], json!(marker), "{record}");
        let attempts = record["attempts"].as_u64().expect("attempts");
        if running.contains(marker) {
            assert_eq!(attempts, 2, "{marker} was running at the kill: {record}");
            let lines = log_lines(&restarted, id).await;
            assert!(
                lines.iter().any(|l| {
                    let l = l.to_ascii_lowercase();
                    l.contains("attempt") || l.contains("retr")
                }),
                "{marker}'s logs say it was run again: {lines:?}"
            );
        } else if before[marker]["status"] == "queued" {
            assert_eq!(
                attempts, 1,
                "{marker} was still queued at the kill: {record}"
            );
        }
    }
    // The function's own record: the runs in it at the kill reached it twice (the attempt
    // the kill cut off, held at the gate, and the retry), every other run once.
    let counts = entered(&gate);
    for (marker, _) in &accepted {
        let expected = if running.contains(marker) { 2 } else { 1 };
        assert_eq!(counts.get(marker), Some(&expected), "{marker}: {counts:?}");
    }
    assert_eq!(
        runs_of(&restarted, "slow").await.len(),
        6,
        "no run added or lost"
    );
    drop(server);
}

/// The POSTs a callback receiver got: (headers, JSON body).
type Received = Arc<Mutex<Vec<(BTreeMap<String, String>, Value)>>>;

/// A loopback HTTP server that keeps every POST it gets; its URL.
async fn callback_receiver() -> (String, Received) {
    use axum::routing::post;
    let got: Received = Arc::default();
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/done",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_string(),
                                v.to_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    kept.lock().unwrap().push((headers, body));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let url = format!("http://{}/done", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

#[tokio::test]
async fn a_callback_receives_every_result() {
    let gate = Gate::start().await;
    gate.open();
    let (receiver, got) = callback_receiver().await;
    let (server, _dir) = server_and(&[]).await;
    deploy(
        &server,
        "rec",
        "record",
        &gate,
        json!({"scale": {"max": 2, "concurrency": 4}}),
    )
    .await;
    deploy(&server, "fails", "fail", &gate, json!({})).await;
    let mut expected = BTreeMap::new();
    for i in 0..8 {
        let marker = format!("c{i}");
        let id = submit(
            &server.http,
            &server,
            "rec",
            &json!(marker),
            Some(&receiver),
        )
        .await;
        expected.insert(id, (marker, "succeeded"));
    }
    // Through the CLI too: it prints the run id alone on standard output.
    let out = server.cli_ok(&[
        "invoke",
        "demo/rec",
        "--data",
        r#""cli1""#,
        "--async",
        "--callback",
        &receiver,
    ]);
    let cli_id = out.trim().to_string();
    assert_eq!(cli_id.len(), 32, "{out}");
    expected.insert(cli_id, ("cli1".to_string(), "succeeded"));
    let failed = submit(
        &server.http,
        &server,
        "fails",
        &json!("f1"),
        Some(&receiver),
    )
    .await;
    expected.insert(failed.clone(), ("f1".to_string(), "failed"));

    support::wait_until(WITHIN, "a callback for every run", || {
        got.lock().unwrap().len() >= expected.len()
    })
    .await;
    // Retries must not deliver twice what was received once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), expected.len(), "one callback per run: {got:?}");
    for (headers, body) in &got {
        let id = body["id"].as_str().expect("the run id in the callback");
        let (marker, status) = expected
            .get(id)
            .unwrap_or_else(|| panic!("unknown run {body}"));
        assert_eq!(
            headers.get("faasbox-invocation-id").map(String::as_str),
            Some(id)
        );
        assert_eq!(body["status"], *status, "{body}");
        assert_eq!(body["namespace"], "demo", "{body}");
        assert!(body["duration_ms"].is_u64(), "{body}");
        let function_status = headers
            .get("x-function-status")
            .cloned()
            .unwrap_or_default();
        if *status == "succeeded" {
            assert_eq!(body["function"], "rec", "{body}");
            assert_eq!(body["output"], json!(marker), "{body}");
            assert!(body["error"].is_null(), "{body}");
            assert_eq!(function_status, "200", "{headers:?}");
        } else {
            assert_eq!(body["function"], "fails", "{body}");
            assert_eq!(body["error"]["code"], "myapp.refused", "{body}");
            assert!(
                function_status.starts_with('4') || function_status.starts_with('5'),
                "{headers:?}"
            );
        }
    }
    let record = run(&server, &failed).await;
    assert_eq!(record["callback_url"], receiver.as_str(), "{record}");
}

#[tokio::test]
async fn queued_and_running_runs_are_cancelled() {
    let gate = Gate::start().await;
    let (server, _dir) = server_and(&[]).await;
    deploy(
        &server,
        "one",
        "record",
        &gate,
        json!({"scale": {"max": 1, "concurrency": 1}}),
    )
    .await;
    let first = submit(&server.http, &server, "one", &json!("first"), None).await;
    gate.wait_held(1, WITHIN).await;
    // More runs than the server executes at once for one function: some stay queued.
    let mut waiting = Vec::new();
    for i in 0..25 {
        waiting.push(submit(&server.http, &server, "one", &json!(format!("w{i}")), None).await);
    }
    let queued = wait_for(
        WITHIN,
        "a queued run of demo/one",
        || async {
            let list = server
                .get_json("/api/v1/namespaces/demo/runs?function=one&status=queued&limit=100")
                .await;
            list.as_array().cloned().unwrap_or_default()
        },
        |list| !list.is_empty(),
    )
    .await;
    let queued_id = queued[0]["id"].as_str().expect("id").to_string();
    let queued_marker = queued[0]["input"].as_str().expect("its input").to_string();

    // A queued run: cancelled at once, never started.
    let out = server.cli_ok(&["runs", "cancel", &queued_id, "-o", "json"]);
    let cancelled: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let record = run(&server, &queued_id).await;
    assert_eq!(record["status"], "cancelled", "{record}");
    assert!(record["started"].is_null(), "{record}");

    // The running one: the function gets its cancel (DELETE with the run's id as its action id).
    let out = server.cli_ok(&["runs", "cancel", &first]);
    assert!(out.contains(&first), "{out}");
    let record = wait_ended(&server, &first).await;
    assert_eq!(record["status"], "cancelled", "{record}");
    support::wait_until(WITHIN, "the function's DELETE", || {
        gate.arrivals()
            .iter()
            .any(|a| a.host == "deleted" && a.tag == first)
    })
    .await;

    // The others run; the cancelled queued run never reaches the function.
    gate.open();
    for id in &waiting {
        let record = wait_ended(&server, id).await;
        let expected = if *id == queued_id {
            "cancelled"
        } else {
            "succeeded"
        };
        assert_eq!(record["status"], expected, "{record}");
    }
    let counts = entered(&gate);
    assert_eq!(counts.get(&queued_marker), None, "{counts:?}");
    assert_eq!(counts.get("first"), Some(&1), "{counts:?}");

    // An ended run cannot be cancelled: the CLI says so and fails.
    let out = server.cli(&["runs", "cancel", &waiting[24]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("ended already"), "{stderr}");
    let (status, body) = support::send(
        &server.http,
        &server,
        reqwest::Method::POST,
        &format!("/api/v1/namespaces/demo/runs/{}/cancel", waiting[24]),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "faasbox.run.ended", "{body}");
}

#[tokio::test]
async fn a_blocking_call_longer_than_the_bound_answers_202_and_goes_on() {
    let gate = Gate::start().await;
    let (server, _dir) = server_and(&["--blocking-timeout", "2s"]).await;
    deploy(&server, "held", "record", &gate, json!({})).await;
    let started = Instant::now();
    let (status, id, body) = server.invoke("demo", "held", r#""long""#).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let answer = support::json(&body);
    assert_eq!(answer["id"], id.as_str(), "{answer}");
    assert_eq!(answer["status"], "running", "{answer}");
    assert_eq!(run(&server, &id).await["status"], "running");
    gate.wait_held(1, WITHIN).await;
    gate.release(1);
    let record = wait_ended(&server, &id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["output"], "long", "{record}");
    assert_eq!(record["mode"], "sync", "{record}");

    // The CLI waits for such a call and prints its output as a blocking call would.
    let child = server
        .cli_command(&["invoke", "demo/held", "--data", r#""cli""#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("faasbox invoke");
    gate.wait_held(1, WITHIN).await;
    // Past the bound before the function may answer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    gate.release(1);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the CLI's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#""cli""#,
        "{stderr}"
    );
    assert!(stderr.contains("still running"), "{stderr}");
}

#[tokio::test]
async fn a_run_records_input_output_logs_errors_cold_start_and_phases() {
    let gate = Gate::start().await;
    let (server, _dir) = server_and(&[]).await;
    deploy(
        &server,
        "lines",
        "lines",
        &gate,
        json!({"envs": {
        "MODE": "lines", "TARGET_PORT": gate.port.to_string(), "GW": gateway(), "PAUSE": "2"}}),
    )
    .await;
    deploy(&server, "fails", "fail", &gate, json!({})).await;

    // First call: a cold start; its record holds input, output and the lines in order.
    let (status, first, body) = server.invoke("demo", "lines", r#"{"who":"one"}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let record = run(&server, &first).await;
    assert_eq!(record["input"], json!({"who": "one"}), "{record}");
    assert_eq!(record["output"], json!({"tag": "whoone"}), "{record}");
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["mode"], "sync", "{record}");
    assert_eq!(record["function"], "lines", "{record}");
    assert!(record["revision"].is_u64(), "{record}");
    assert!(record["error"].is_null(), "{record}");
    assert_eq!(record["cold_start"], true, "{record}");
    for phase in ["wait_ms", "init_ms", "run_ms"] {
        assert!(record["phases"][phase].is_u64(), "{phase}: {record}");
    }
    assert!(
        record["phases"]["run_ms"].as_u64().unwrap_or(0) >= 2000,
        "the function ran 2.6 s: {record}"
    );
    for time in ["accepted", "started", "ended"] {
        assert!(record[time].is_string(), "{time}: {record}");
    }
    let lines = log_lines(&server, &first).await;
    let ours: Vec<&String> = lines.iter().filter(|l| l.contains("of whoone")).collect();
    assert_eq!(
        ours,
        (1..=4)
            .map(|n| format!("line {n} of whoone"))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>(),
        "{lines:?}"
    );
    // Second call: warm.
    let (status, second, _) = server.invoke("demo", "lines", r#"{"who":"two"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(run(&server, &second).await["cold_start"], false);

    // `runs get` shows every field; `runs logs --follow` follows a run until it ends.
    let shown = server.cli_ok(&["runs", "get", &first]);
    for expected in [
        "status:       succeeded",
        "cold start:   yes",
        "\"who\": \"one\"",
        "\"tag\": \"whoone\"",
        "phases:       wait",
    ] {
        assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
    }
    let id = submit(
        &server.http,
        &server,
        "lines",
        &json!({"who": "three"}),
        None,
    )
    .await;
    let followed = tokio::task::spawn_blocking({
        let command = server.cli_command(&["runs", "logs", &id, "--follow"]);
        move || {
            let mut command = command;
            command.output()
        }
    })
    .await
    .expect("join")
    .expect("faasbox runs logs");
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let text = String::from_utf8_lossy(&followed.stdout);
    let positions: Vec<Option<usize>> = (1..=4)
        .map(|n| text.find(&format!("line {n} of whothree")))
        .collect();
    assert!(positions.iter().all(Option::is_some), "{text}");
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order: {text}"
    );
    assert!(
        ended(&run(&server, &id).await),
        "--follow returned before the run ended"
    );
    let listed = server.cli_ok(&["runs", "ls", "demo/lines", "--since", "10m"]);
    assert!(listed.starts_with("RUN"), "{listed}");
    for id in [&first, &second, &id] {
        assert!(listed.contains(id.as_str()), "{id} in:\n{listed}");
    }
    assert!(
        listed.contains("async") && listed.contains("sync"),
        "{listed}"
    );
    let none = server.cli_ok(&[
        "runs",
        "ls",
        "demo",
        "--since",
        "2000-01-01T00:00:00Z",
        "--status",
        "timeout",
    ]);
    assert_eq!(none.lines().count(), 1, "only the header: {none}");

    // A failing function: a FunctionError with its code and message.
    let (status, failed, _) = server.invoke("demo", "fails", r#""zed""#).await;
    assert!(status >= 400, "{status}");
    let record = run(&server, &failed).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["error"]["type"], "FunctionError", "{record}");
    assert_eq!(record["error"]["code"], "myapp.refused", "{record}");
    assert_eq!(record["error"]["message"], "no customer zed", "{record}");
    assert_eq!(record["error_code"], "myapp.refused", "{record}");

    // Input that is not JSON is refused as an InputError, before anything runs.
    let (status, refused, body) = server.invoke("demo", "fails", "{not json").await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    if !refused.is_empty() {
        let record = run(&server, &refused).await;
        assert_eq!(record["error"]["type"], "InputError", "{record}");
    }
    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/functions/fails/invoke?async=true"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("async invoke");
    assert_eq!(
        r.status(),
        400,
        "an async run of bad input is refused at once"
    );
}

#[tokio::test]
async fn retention_keeps_the_newest_runs() {
    let gate = Gate::start().await;
    gate.open();
    let (server, _dir) = server_and(&["--runs-keep", "3"]).await;
    deploy(&server, "rec", "record", &gate, json!({})).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let (status, id, _) = server
            .invoke("demo", "rec", json!(format!("r{i}")).to_string())
            .await;
        assert_eq!(status, 200);
        ids.push(id);
        // Runs accepted in one instant have no order among them.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept = wait_for(
        Duration::from_secs(150),
        "retention to remove all but the newest 3 runs",
        || runs_of(&server, "rec"),
        |list| list.len() <= 3,
    )
    .await;
    let kept: Vec<&str> = kept.iter().filter_map(|r| r["id"].as_str()).collect();
    let newest: Vec<&str> = ids[3..].iter().rev().map(String::as_str).collect();
    assert_eq!(kept, newest);
    for old in &ids[..3] {
        let r = server.get(&format!("/api/v1/runs/{old}")).await;
        assert_eq!(r.status(), 404, "{old} is gone");
        let r = server
            .get(&format!("/api/v1/namespaces/demo/runs/{old}/logs"))
            .await;
        assert_eq!(r.status(), 404, "{old}'s logs are gone with it");
    }
}

#[test]
fn the_runs_commands_refuse_what_they_cannot_send_and_say_what_they_take() {
    let faasbox = |args: &[&str]| {
        std::process::Command::new(support::FAASBOX)
            .args(args)
            .env("FAASBOX_URL", "http://127.0.0.1:9")
            .output()
            .expect("faasbox")
    };
    let cases: [(&[&str], &str); 5] = [
        (
            &["invoke", "demo/echo", "--callback", "https://x.example/"],
            "--async",
        ),
        (
            &[
                "invoke",
                "demo/echo",
                "--async",
                "--callback",
                "ftp://x.example/",
            ],
            "is not an http(s) URL",
        ),
        (&["runs", "ls", "demo", "--since", "yesterday"], "RFC 3339"),
        (&["runs", "ls", "demo", "--status", "done"], "succeeded"),
        (&["runs", "ls", "a/b/c"], "NAMESPACE/FUNCTION"),
    ];
    for (args, says) in cases {
        let out = faasbox(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // The help teaches by example; the old command name still parses, hidden.
    let help = String::from_utf8_lossy(&faasbox(&["runs", "ls", "--help"]).stdout).to_string();
    assert!(
        help.contains("faasbox runs ls demo/echo --since 10m"),
        "{help}"
    );
    let top = String::from_utf8_lossy(&faasbox(&["--help"]).stdout).to_string();
    assert!(
        top.contains("runs") && !top.contains("invocation "),
        "{top}"
    );
    let out = faasbox(&["invocations", "get", "x"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
