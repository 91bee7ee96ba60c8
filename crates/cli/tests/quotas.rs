//! Per-namespace quotas from the server's settings: a deploy that would pass
//! `quota-functions`, `quota-min-scale` or `quota-instances` is refused with the quota named;
//! at run time a namespace's functions share its `quota-instances` (an idle instance of one
//! makes room for another's call; with none free a call fails with the quota named), and other
//! namespaces and global services are not affected.

mod support;

use serde_json::{json, Value};
use support::{images, Server};

/// A CGI function that sleeps `$SLEEP` seconds, then answers `{"ok":true}`.
const SLEEPER: &str = "#!/bin/sh\ncat > /dev/null\nsleep \"${SLEEP:-0}\"\nprintf 'Content-Type: application/json\\r\\n\\r\\n{\"ok\":true}'\n";

async fn server(flags: &[&str]) -> (Server, tempfile::TempDir) {
    let server = Server::start_with(flags).await;
    for ns in ["demo", "other"] {
        server.create_namespace(ns).await;
    }
    let (dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", SLEEPER, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "quota/sleeper", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    (server, dir)
}

fn spec(sleep: u32, scale: Value) -> Value {
    json!({"image": "quota/sleeper", "envs": {"SLEEP": sleep.to_string()}, "scale": scale})
}

async fn put(server: &Server, path: &str, spec: &Value) -> (u16, Value) {
    let r = server.put_json(path, spec).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_quota(answer: &(u16, Value), status: u16, code: &str, named: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(named), "{message}");
}

/// Calls `demo/{name}` in a task of its own; the task gives the answer's status.
fn spawn_call(server: &Server, name: &str) -> tokio::task::JoinHandle<u16> {
    let http = server.http.clone();
    let url = server.url(&format!("/api/v1/namespaces/demo/functions/{name}/invoke"));
    tokio::spawn(async move {
        let r = http.post(url).body("{}").send().await.unwrap();
        r.status().as_u16()
    })
}

#[tokio::test]
async fn deploys_that_would_pass_a_quota_are_refused_with_the_quota_named() {
    let (server, _dir) = server(&[
        "--quota-functions",
        "2",
        "--quota-min-scale",
        "1",
        "--quota-instances",
        "2",
    ])
    .await;
    let f = |name: &str| format!("/api/v1/namespaces/demo/functions/{name}");
    assert_eq!(
        put(&server, &f("a"), &spec(0, json!({"max": 2}))).await.0,
        201
    );
    assert_eq!(
        put(&server, &f("b"), &spec(0, json!({"max": 1}))).await.0,
        201
    );
    let third = put(&server, &f("c"), &spec(0, json!({"max": 1}))).await;
    assert_quota(
        &third,
        403,
        "faasbox.quota.functions",
        "quota-functions = 2",
    );
    assert_eq!(server.get(&f("c")).await.status(), 404, "nothing deployed");
    // Updating one of them is no new function; another namespace has quotas of its own.
    assert_eq!(
        put(&server, &f("a"), &spec(0, json!({"max": 2}))).await.0,
        200
    );
    let other = "/api/v1/namespaces/other/functions/c";
    assert_eq!(
        put(&server, other, &spec(0, json!({"max": 1}))).await.0,
        201
    );
    // More instances than the namespace may run.
    let wide = put(&server, &f("a"), &spec(0, json!({"max": 3}))).await;
    assert_quota(&wide, 403, "faasbox.quota.instances", "quota-instances = 2");
    // Warm instances: one for the namespace.
    assert_eq!(
        put(&server, &f("a"), &spec(0, json!({"min": 1, "max": 2})))
            .await
            .0,
        200
    );
    let warm = put(&server, &f("b"), &spec(0, json!({"min": 1, "max": 1}))).await;
    assert_quota(&warm, 403, "faasbox.quota.min_scale", "quota-min-scale = 1");
    let shown = server.get_json(&f("b")).await;
    assert_eq!(
        shown["spec"]["scale"]["min"], 0,
        "the refused spec changed nothing"
    );
    // Global services count against no namespace.
    let global = put(&server, "/api/v1/functions/g", &spec(0, json!({"max": 5}))).await;
    assert_eq!(global.0, 201, "{}", global.1);
    // Quotas that cannot work together stop the start.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::FAASBOX)
        .args(["server", "--quota-instances", "0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{}", support::free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("quota-instances must be at least 1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_namespace_shares_its_instance_quota_and_others_are_not_affected() {
    let (server, _dir) = server(&["--quota-instances", "2", "--queue-timeout", "3s"]).await;
    let ns = |ns: &str, name: &str, spec: Value| {
        let server = &server;
        let path = format!("/api/v1/namespaces/{ns}/functions/{name}");
        async move { assert!(put(server, &path, &spec).await.0 < 300) }
    };
    ns("demo", "slow", spec(10, json!({"max": 2}))).await;
    ns("demo", "quick", spec(0, json!({"max": 2}))).await;
    ns("other", "quick", spec(0, json!({"max": 2}))).await;

    // Two calls of `slow` take the namespace's two instances for a while.
    let slow: Vec<_> = (0..2).map(|_| spawn_call(&server, "slow")).collect();
    server.wait_busy_calls("demo", "slow", 2).await;
    // Meanwhile `quick` in the same namespace finds no slot and fails with the quota named...
    let (status, _, body) = server.invoke("demo", "quick", "{}").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_quota(
        &(status, body),
        503,
        "faasbox.quota.instances",
        "quota-instances",
    );
    // ...while another namespace and a global service answer.
    let (status, _, _) = server.invoke("other", "quick", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(
        put(&server, "/api/v1/functions/g", &spec(0, json!({"max": 1})))
            .await
            .0,
        201
    );
    let (status, _, body) = server
        .call("/api/v1/namespaces/demo/global-functions/g/invoke", "{}")
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // A call of `quick` made while `slow` still runs waits; when `slow`'s calls end, one of
    // its idle instances is stopped to make room, and the call runs.
    let waiting = spawn_call(&server, "quick");
    for call in slow {
        assert_eq!(call.await.unwrap(), 200);
    }
    // The queue timeout (3s) may have passed while `slow` ran; then the call again.
    let status = match waiting.await.unwrap() {
        200 => 200,
        503 => server.invoke("demo", "quick", "{}").await.0,
        other => other,
    };
    assert_eq!(status, 200);
    let slow_stats = server
        .get_json("/api/v1/namespaces/demo/functions/slow")
        .await;
    let quick_stats = server
        .get_json("/api/v1/namespaces/demo/functions/quick")
        .await;
    let running = slow_stats["instances"]["instances"].as_u64().unwrap()
        + quick_stats["instances"]["instances"].as_u64().unwrap();
    assert!(running <= 2, "{slow_stats} {quick_stats}");
    assert_eq!(quick_stats["instances"]["instances"], 1);
    assert!(
        server.log().contains("its namespace needs the slot"),
        "an idle instance of slow made room"
    );
    let containers = support::container_functions(&server.data_dir);
    let demo = containers.iter().filter(|f| f.starts_with("demo/")).count();
    assert!(demo <= 2, "{containers:?}");
}
