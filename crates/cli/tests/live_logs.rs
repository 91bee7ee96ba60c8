//! Live logs and instances through a real server and runc: following a function's logs over
//! Server-Sent Events while concurrent calls print (every line once, with its run id, and
//! before the call ends), the follower gone when the client goes (and no more reads of the
//! agent), secret values masked in the stream, the namespace rules, `faasbox logs --follow`,
//! and `fn instances` showing busy, idle and the calls served.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::images;
use support::metrics::Exposition;
use support::{client_with_token, wait_for, Server};

/// The cmd-contract function (busybox's sh runs the commands of each call's input).
const IMAGE: &str = "test/plain:latest";
const SECRET: &str = "s3cretVALUE-for-live-logs";

async fn server() -> (Server, tempfile::TempDir) {
    let (dir, tar) = images::rootfs_tar_with(&[]);
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server.create_namespace("other").await;
    let entrypoint = serde_json::to_string(&["/bin/sh"]).expect("json");
    let r = server
        .import(&tar, IMAGE, &[("entrypoint", entrypoint.as_str())])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    (server, dir)
}

/// A call's input: `sh -c SCRIPT`.
fn script(script: &str) -> String {
    json!({"commands": [{"command": format!("sh -c '{script}'")}]}).to_string()
}

/// One event of a followed stream, and when it arrived.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    data: Value,
    at: Instant,
}

/// A follower of a function's logs over SSE: the events arrive on a channel; dropping it
/// closes the connection.
struct Follow {
    events: tokio::sync::mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Follow {
    /// Follows `ns/function` with `http`'s token; the answer must be 200 and an event stream.
    async fn start(server: &Server, http: &reqwest::Client, ns: &str, function: &str) -> Follow {
        let response = http
            .get(server.url(&format!(
                "/api/v1/namespaces/{ns}/functions/{function}/logs"
            )))
            .query(&[("follow", "true")])
            .send()
            .await
            .expect("GET logs?follow=true");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut pending = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                pending.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = pending.find("\n\n") {
                    let block: String = pending.drain(..end + 2).collect();
                    let mut event = "message".to_string();
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event: ") {
                            event = name.to_string();
                        } else if let Some(text) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str(text).expect("JSON data"));
                        }
                    }
                    if let Some(data) = data {
                        let at = Instant::now();
                        if tx.send(Received { event, data, at }).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Follow { events, task }
    }

    /// Events until `done` says the ones so far are enough (within a minute).
    async fn until(&mut self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(&got) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => got.push(event),
                other => panic!("the stream ended or went quiet ({other:?}); so far: {got:#?}"),
            }
        }
        got
    }
}

/// The value of a metric without labels.
async fn metric(server: &Server, name: &str) -> f64 {
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    Exposition::parse(&text)
        .samples
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.value)
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn token(server: &Server, namespace: &str, role: &str) -> String {
    server
        .cli_ok(&["token", "create", "--namespace", namespace, "--role", role])
        .trim()
        .to_string()
}

#[tokio::test]
async fn followers_get_every_line_of_concurrent_calls_live_with_its_run_and_leave_cleanly() {
    let (server, _dir) = server().await;
    let spec = json!({"image": IMAGE, "contract": "cmd", "scale": {"max": 1, "concurrency": 3}});
    server.deploy("demo", "printer", spec).await;
    // A first call starts the instance (nobody follows: nothing is read from its agent).
    let (status, _, body) = server.invoke("demo", "printer", script("echo warm")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(metric(&server, "faasbox_live_log_reads_total").await, 0.0);

    // An invoke token of the namespace may follow (it reads).
    let reader = client_with_token(Some(&token(&server, "demo", "invoke")));
    let mut follow = Follow::start(&server, &reader, "demo", "printer").await;
    assert_eq!(metric(&server, "faasbox_log_followers").await, 1.0);

    // Three calls at once, each printing three lines a second apart.
    let calls = (0..3).map(|i| {
        let server = &server;
        async move {
            let input = script(&format!(
                "echo c{i}-first; sleep 1; echo c{i}-second; sleep 1; echo c{i}-third"
            ));
            let (status, id, body) = server.invoke("demo", "printer", input).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            (i, id, Instant::now())
        }
    });
    let ended = futures_util::future::join_all(calls).await;
    let got = follow
        .until(|got| {
            (0..3).all(|i| {
                got.iter()
                    .any(|e| e.data["line"] == format!("c{i}-third").as_str())
            })
        })
        .await;
    assert!(got.iter().all(|e| e.event == "line"), "{got:#?}");
    for (i, id, ended_at) in &ended {
        let mine: Vec<&Received> = got
            .iter()
            .filter(|e| e.data["run"] == id.as_str())
            .collect();
        // Each line of this call, once, tagged with its run, in order; no other call's.
        let texts: Vec<&str> = mine
            .iter()
            .map(|e| e.data["line"].as_str().unwrap_or_default())
            .collect();
        for (n, word) in ["first", "second", "third"].iter().enumerate() {
            let line = format!("c{i}-{word}");
            assert_eq!(
                texts.iter().filter(|t| **t == line).count(),
                1,
                "{line} once in run {id}: {texts:?}"
            );
            if n > 0 {
                let before = format!("c{i}-{}", ["first", "second"][n - 1]);
                let at = |t: &str| texts.iter().position(|x| *x == t);
                assert!(at(&before) < at(&line), "in order: {texts:?}");
            }
        }
        let others = texts
            .iter()
            .filter(|t| (0..3).any(|o| o != *i && t.starts_with(&format!("c{o}-"))));
        assert_eq!(
            others.count(),
            0,
            "another call's line in run {id}: {texts:?}"
        );
        // The same lines the run's record stored: none lost, none doubled.
        let stored = server.log_lines(id).await;
        assert_eq!(texts, stored, "live and stored lines of run {id}");
        // Live: the first line came while the call still ran (it ran two more seconds).
        let first = mine
            .iter()
            .find(|e| e.data["line"] == format!("c{i}-first").as_str())
            .expect("first line");
        assert!(
            first.at + Duration::from_millis(500) < *ended_at,
            "c{i}-first arrived {:?} before its call ended: not live",
            ended_at.saturating_duration_since(first.at)
        );
        assert!(mine
            .iter()
            .all(|e| e.data["ts_ms"].as_u64().is_some_and(|t| t > 0)));
        assert!(mine.iter().all(|e| e.data["stream"].is_string()));
    }
    let reads = metric(&server, "faasbox_live_log_reads_total").await;
    assert!(reads > 0.0, "the running calls' agents were read");

    // The client goes: the server's follower goes, and calls are no longer read.
    drop(follow);
    wait_for(
        Duration::from_secs(30),
        "the follower count back to 0",
        || async { metric(&server, "faasbox_log_followers").await },
        |n| *n == 0.0,
    )
    .await;
    let reads = metric(&server, "faasbox_live_log_reads_total").await;
    let (status, _, _) = server
        .invoke("demo", "printer", script("echo alone; sleep 1; echo still"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(&server, "faasbox_live_log_reads_total").await,
        reads,
        "a call nobody follows is not read"
    );
}

#[tokio::test]
async fn secrets_are_masked_in_the_stream_and_other_namespaces_cannot_follow() {
    let (server, _dir) = server().await;
    server.cli_ok(&["secret", "set", "demo/tok", "--value", SECRET]);
    let spec = json!({
        "image": IMAGE,
        "contract": "cmd",
        "secrets": ["tok"],
        "input": {"commands": [{"command": "sh -c 'echo leaked=jq(.secrets.tok); sleep 1; echo again=jq(.secrets.tok)'"}]},
    });
    server.deploy("demo", "leaky", spec).await;
    let mut follow = Follow::start(&server, &server.http, "demo", "leaky").await;
    let (status, id, body) = server.invoke("demo", "leaky", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let got = follow
        .until(|got| {
            got.iter().any(|e| {
                e.data["line"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("again="))
            })
        })
        .await;
    let lines: Vec<&str> = got
        .iter()
        .filter(|e| e.data["run"] == id.as_str())
        .filter_map(|e| e.data["line"].as_str())
        .collect();
    assert!(lines.iter().any(|l| l.starts_with("leaked=")), "{lines:?}");
    assert!(
        got.iter().all(|e| !e.data.to_string().contains(SECRET)),
        "a secret value reached a follower: {got:#?}"
    );

    // Another namespace's token does not see demo at all (as for every route of demo: 404,
    // as if it did not exist); a function that does not exist is 404 too.
    let outsider = client_with_token(Some(&token(&server, "other", "admin")));
    let path = server.url("/api/v1/namespaces/demo/functions/leaky/logs?follow=true");
    let r = outsider.get(&path).send().await.expect("GET");
    assert_eq!(r.status(), 404);
    let r = outsider
        .get(server.url("/api/v1/namespaces/demo/functions/leaky/instances"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    let nobody = client_with_token(None);
    assert_eq!(nobody.get(&path).send().await.expect("GET").status(), 401);
    let r = server
        .get("/api/v1/namespaces/demo/functions/nothere/logs?follow=true")
        .await;
    assert_eq!(r.status(), 404);
    // Following reads no stored lines: limit and after are refused with it.
    let r = server
        .get("/api/v1/namespaces/demo/functions/leaky/logs?follow=true&limit=5")
        .await;
    assert_eq!(r.status(), 400);

    // A server with followers stops at once: their streams end.
    let mut server = server;
    let stopping = Instant::now();
    assert!(server.stop(), "the server stopped cleanly");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "the stop waited {:?} (for the open stream?)",
        stopping.elapsed()
    );
    let end = tokio::time::timeout(Duration::from_secs(10), follow.events.recv()).await;
    assert!(matches!(end, Ok(None)), "the stream ended: {end:?}");
}

// Several threads: the test reads the CLI's output and runs the CLI blocking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_a_function_and_lists_its_instances() {
    let (server, _dir) = server().await;
    let spec = json!({"image": IMAGE, "contract": "cmd", "scale": {"max": 1, "concurrency": 1}});
    server.deploy("demo", "slow", spec).await;
    let (status, first, _) = server
        .invoke("demo", "slow", script("echo stored-line"))
        .await;
    assert_eq!(status, 200);

    // `faasbox logs demo/slow --follow`: the stored lines, then the new ones as they come.
    let mut child = server
        .cli_command(&["logs", "demo/slow", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("faasbox logs --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, printed) = std::sync::mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((line, Instant::now())).is_err() {
                return;
            }
        }
    });
    let wait_line = |what: &str| -> (String, Instant) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match printed.recv_timeout(left) {
                Ok((line, at)) if line.contains(what) => return (line, at),
                Ok(_) => {}
                Err(e) => panic!("the CLI never printed {what:?}: {e}"),
            }
        }
    };
    let (line, _) = wait_line("stored-line");
    assert!(line.contains(&first), "with its run id: {line}");
    // Following has started once the CLI printed the stored lines; wait for the server to
    // count it, then call.
    wait_for(
        Duration::from_secs(10),
        "the CLI following",
        || async { metric(&server, "faasbox_log_followers").await },
        |n| *n == 1.0,
    )
    .await;

    // While a call runs, the instance is busy; its first line is printed before it ends.
    let call = {
        let url = server.url("/api/v1/namespaces/demo/functions/slow/invoke");
        let http = server.http.clone();
        tokio::spawn(async move {
            let r = http
                .post(url)
                .body(script("echo live-one; sleep 2; echo live-two"))
                .send()
                .await
                .expect("invoke");
            let id = r.headers()["faasbox-invocation-id"]
                .to_str()
                .unwrap_or_default()
                .to_string();
            assert_eq!(r.status(), 200);
            (id, Instant::now())
        })
    };
    let busy = wait_for(
        Duration::from_secs(30),
        "the instance busy",
        || async { instances(&server) },
        |list| list.len() == 1 && list[0]["state"] == "busy",
    )
    .await;
    assert_eq!(busy[0]["calls"], 1, "{busy:?}");
    assert_eq!(busy[0]["revision"], 1, "{busy:?}");
    let (one, one_at) = wait_line("live-one");
    let (two, two_at) = wait_line("live-two");
    let (id, ended) = call.await.expect("call task");
    assert!(
        one.contains(&id) && two.contains(&id),
        "run id {id}: {one} / {two}"
    );
    // Live: the first line was printed as it was printed, two seconds before the second.
    assert!(one_at < ended, "live-one printed after its call ended");
    assert!(
        two_at.duration_since(one_at) > Duration::from_secs(1),
        "live-one and live-two printed together, not as they came"
    );
    let _ = child.kill();
    let _ = child.wait();

    // After the call: idle, two calls served; the table says so too.
    let after = instances(&server);
    assert_eq!(
        (after[0]["state"].as_str(), after[0]["calls"].as_u64()),
        (Some("idle"), Some(2)),
        "{after:?}"
    );
    assert!(after[0]["started"]
        .as_str()
        .is_some_and(|s| s.contains('T')));
    let table = server.cli_ok(&["fn", "instances", "demo/slow"]);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(table.starts_with("INSTANCE"), "{table}");
    assert!(
        row.contains("idle") && row.contains(after[0]["id"].as_str().unwrap_or("?")),
        "{table}"
    );
    wait_for(
        Duration::from_secs(30),
        "the CLI's follower gone",
        || async { metric(&server, "faasbox_log_followers").await },
        |n| *n == 0.0,
    )
    .await;
}

/// `faasbox fn instances demo/slow -o json`.
fn instances(server: &Server) -> Vec<Value> {
    let text = server.cli_ok(&["fn", "instances", "demo/slow", "-o", "json"]);
    serde_json::from_str(&text).expect("JSON list")
}
