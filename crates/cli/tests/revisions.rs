//! Deploys pin image digests, keep numbered revisions, update only what is given, roll back,
//! and keep images in use — against a real server, runc and a real `docker-registry`: a tag
//! that moves (re-imported, or pushed to the registry) changes nothing that runs, warm or new,
//! until a redeploy; three deploys make three revisions and a rollback brings the second back
//! while a call in flight finishes; `fn update` changes only the given fields; `image rm` of an
//! image in use is refused (forced: those functions fail clearly); `image prune` frees the
//! layers of unused images and keeps shared ones.

mod support;

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use support::marked::{self, call};
use support::registry::Registry;
use support::{client_with_token, Server};

const PASS: &str = "rev-Pass%$*:1";

/// `n` calls of `demo/name` at once; the `code` each answered with.
async fn codes_at_once(server: &Server, name: &str, n: usize) -> Vec<String> {
    let inputs: Vec<Value> = (0..n).map(|i| json!({ "call": i })).collect();
    let calls = inputs.iter().map(|input| call(server, "demo", name, input));
    join_all(calls)
        .await
        .into_iter()
        .map(|(status, code, answer)| {
            assert_eq!(status, 200, "{answer}");
            code
        })
        .collect()
}

async fn function(server: &Server, name: &str) -> Value {
    server
        .get_json(&format!("/api/v1/namespaces/demo/functions/{name}"))
        .await
}

/// `fn deploy demo/NAME` of `image` with calls that take a second and one call per instance,
/// so calls at once need new instances.
fn slow_deploy(name: &str, image: &str) -> Vec<String> {
    let function = format!("demo/{name}");
    [
        "fn",
        "deploy",
        &function,
        "--image",
        image,
        "--env",
        "SLEEP=1",
        "--concurrency",
        "1",
        "--max-scale",
        "4",
    ]
    .map(str::to_string)
    .to_vec()
}

fn args(all: &[String]) -> Vec<&str> {
    all.iter().map(String::as_str).collect()
}

fn json_out(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&server.cli_ok(&all)).expect("JSON output")
}

#[tokio::test]
async fn a_moved_tag_changes_nothing_that_runs_until_a_redeploy() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (v1, v2) = (marked::image("v1"), marked::image("v2"));
    marked::import_ok(&server, Some("demo"), &v1, "demo/app:1").await;
    let deploy = slow_deploy("f", "demo/app:1");
    server.cli_ok(&args(&deploy));
    let pinned = function(&server, "f").await["digest"].clone();
    assert_eq!(
        codes_at_once(&server, "f", 1).await,
        ["v1"],
        "one warm instance"
    );

    // The tag moves: warm and new instances alike still run the pinned digest.
    let moved = marked::import_ok(&server, Some("demo"), &v2, "demo/app:1").await;
    assert_ne!(moved["digest"], pinned);
    assert_eq!(codes_at_once(&server, "f", 4).await, ["v1"; 4]);
    let shown = function(&server, "f").await;
    assert!(
        shown["instances"]["instances"].as_u64().unwrap() >= 2,
        "{shown}"
    );
    assert_eq!(shown["digest"], pinned);
    assert_eq!(shown["image"]["status"], "present");

    // A redeploy resolves the tag again: every call, warm or new, runs the new code.
    let out = server.cli_ok(&args(&deploy));
    assert!(out.contains("changed from revision 1: digest"), "{out}");
    assert_eq!(function(&server, "f").await["digest"], moved["digest"]);
    assert_eq!(codes_at_once(&server, "f", 4).await, ["v2"; 4]);

    // The same with a registry: a tag pushed again is picked up by the next deploy only.
    let registry = Registry::start_htpasswd(&[("user", PASS)]);
    let reference = registry.reference("team/app:1");
    server.cli_ok(&[
        "registry",
        "add",
        "demo",
        &registry.addr,
        "-u",
        "user",
        "--password",
        PASS,
    ]);
    marked::import_ok(&server, Some("demo"), &v1, "local/app").await;
    server.cli_ok(&["image", "push", "local/app", &reference, "-n", "demo"]);
    let deploy = slow_deploy("g", &reference);
    server.cli_ok(&args(&deploy));
    assert_eq!(codes_at_once(&server, "g", 2).await, ["v1"; 2]);
    marked::import_ok(&server, Some("demo"), &v2, "local/app").await;
    server.cli_ok(&["image", "push", "local/app", &reference, "-n", "demo"]);
    assert_eq!(codes_at_once(&server, "g", 4).await, ["v1"; 4]);
    server.cli_ok(&args(&deploy));
    assert_eq!(codes_at_once(&server, "g", 4).await, ["v2"; 4]);
    // --pull never takes the local copy as it is.
    let deployed = json_out(
        &server,
        &[
            "fn", "deploy", "demo/h", "--image", &reference, "--pull", "never",
        ],
    );
    assert_eq!(deployed["digest"], function(&server, "g").await["digest"]);
    // With the registry gone, an always-pull fails: the local copy is pinned, with a warning.
    drop(registry);
    let out = server.cli(&args(&slow_deploy("g", &reference)));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("pinned instead"),
        "{err}"
    );
    assert_eq!(codes_at_once(&server, "g", 1).await, ["v2"]);
}

#[tokio::test]
async fn three_deploys_three_revisions_and_a_rollback_while_a_call_is_in_flight() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    marked::import_ok(&server, Some("demo"), &marked::image("r"), "demo/r").await;
    let base = ["fn", "deploy", "demo/f", "--image", "demo/r"];
    let mut first = base.to_vec();
    first.extend(["--env", "VERSION=1", "--timeout", "30s"]);
    server.cli_ok(&first);
    let mut second = base.to_vec();
    second.extend(["--env", "VERSION=2", "--timeout", "45s", "--size", "medium"]);
    server.cli_ok(&second);
    // The third by a namespace token of its own name; a slow one.
    let token = server.cli_ok(&["token", "create", "-n", "demo", "--name", "deployer"]);
    let deployer = client_with_token(Some(token.trim()));
    let r = deployer
        .put(server.url("/api/v1/namespaces/demo/functions/f"))
        .json(&json!({"image": "demo/r", "envs": {"VERSION": "3", "SLEEP": "3"}, "timeout": "1m"}))
        .send()
        .await
        .unwrap();
    let third: Value = r.json().await.unwrap();
    assert_eq!(third["revision"], 3, "{third}");
    assert_eq!(third["previous_revision"], 2);
    assert_eq!(
        third["changes"],
        json!(["envs.SLEEP", "envs.VERSION", "size", "timeout"])
    );

    let history = json_out(&server, &["fn", "history", "demo/f"]);
    let revisions: Vec<(u64, bool, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["current"].as_bool().unwrap(),
                r["created_by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        revisions,
        [
            (1, false, "admin".to_string()),
            (2, false, "admin".to_string()),
            (3, true, "deployer".to_string())
        ]
    );
    let text = server.cli_ok(&["fn", "history", "demo/f"]);
    assert!(
        text.contains("3 (current)") && text.contains("deployer"),
        "{text}"
    );

    // A slow call on revision 3; the rollback to revision 2 comes while it runs.
    let slow = {
        let (http, url) = (
            server.http.clone(),
            server.url("/api/v1/namespaces/demo/functions/f/invoke"),
        );
        tokio::spawn(async move {
            let r = http.post(url).body("{\"slow\":true}").send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while function(&server, "f").await["instances"]["busy_calls"] != 1 {
        assert!(Instant::now() < deadline, "the slow call never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = server.cli_ok(&["fn", "rollback", "demo/f", "--to", "2"]);
    assert!(
        out.contains("FROM") && out.contains("3") && out.contains("2"),
        "{out}"
    );
    let (status, answer) = slow.await.unwrap();
    assert_eq!(status, 200, "the call in flight finishes: {answer}");
    assert_eq!(answer["version"], "3");
    let (status, _, answer) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!(
        (status, answer["version"].as_str()),
        (200, Some("2")),
        "{answer}"
    );
    let shown = function(&server, "f").await;
    assert_eq!(shown["revision"], 2);
    assert_eq!(shown["spec"]["timeout"], "45s");
    assert_eq!(shown["spec"]["size"], "medium");
    assert_eq!(shown["spec"]["envs"], json!({"VERSION": "2"}));

    // Default: the revision before the current one; then there is none before.
    server.cli_ok(&["fn", "rollback", "demo/f"]);
    let (_, _, answer) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!(answer["version"], "1");
    let out = server.cli(&["fn", "rollback", "demo/f"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--to"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["fn", "rollback", "demo/f", "--to", "9"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("1, 2, 3"), "{err}");
    // A new deploy numbers on from the highest.
    server.cli_ok(&second);
    assert_eq!(json_out(&server, &["fn", "get", "demo/f"])["revision"], 4);
    assert_eq!(
        json_out(&server, &["fn", "history", "demo/f"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // An invoke token may read the history but not roll back.
    let token = server.cli_ok(&["token", "create", "-n", "demo", "--role", "invoke"]);
    let invoker = client_with_token(Some(token.trim()));
    let r = invoker
        .get(server.url("/api/v1/namespaces/demo/functions/f/revisions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = invoker
        .post(server.url("/api/v1/namespaces/demo/functions/f/rollback"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Global services have revisions and roll back the same way.
    marked::import_ok(&server, None, &marked::image("svc"), "svc/r").await;
    for version in ["1", "2"] {
        let r = server
            .put_json(
                "/api/v1/functions/svc",
                &json!({"image": "svc/r", "envs": {"VERSION": version}}),
            )
            .await;
        assert!(r.status().is_success());
    }
    let r = server
        .post_json("/api/v1/functions/svc/rollback", &json!({"revision": 1}))
        .await;
    assert_eq!(r.status(), 200);
    let (status, _, body) = server
        .call("/api/v1/namespaces/demo/global-functions/svc/invoke", "{}")
        .await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, answer["version"].as_str()),
        (200, Some("1")),
        "{answer}"
    );
    let history = server.get_json("/api/v1/functions/svc/revisions").await;
    assert_eq!(history.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn fn_update_changes_only_the_given_fields() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (old, new) = (marked::image("old"), marked::image("new"));
    marked::import_ok(&server, Some("demo"), &old, "demo/app").await;
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/f",
        "--image",
        "demo/app",
        "--env",
        "VERSION=1",
        "--env",
        "KEEP=yes",
        "--max-scale",
        "3",
        "--timeout",
        "30s",
    ]);
    let before = function(&server, "f").await;
    // The tag moves; an update that does not touch the image keeps the pinned digest.
    marked::import_ok(&server, Some("demo"), &new, "demo/app").await;
    let out = server.cli_ok(&[
        "fn",
        "update",
        "demo/f",
        "--env",
        "VERSION=2",
        "--timeout",
        "1m",
    ]);
    assert!(
        out.contains("changed from revision 1: envs.VERSION, timeout"),
        "{out}"
    );
    let after = function(&server, "f").await;
    assert_eq!(after["revision"], 2);
    assert_eq!(
        after["spec"]["envs"],
        json!({"VERSION": "2", "KEEP": "yes"})
    );
    assert_eq!(after["spec"]["timeout"], "1m");
    let mut unchanged = before["spec"].clone();
    unchanged["envs"]["VERSION"] = json!("2");
    unchanged["timeout"] = json!("1m");
    assert_eq!(after["spec"], unchanged, "nothing else changed");
    assert_eq!(after["digest"], before["digest"]);
    let (_, code, answer) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!(
        (code.as_str(), answer["version"].as_str()),
        ("old", Some("2"))
    );

    server.cli_ok(&[
        "fn",
        "update",
        "demo/f",
        "--unset-env",
        "KEEP",
        "--max-scale",
        "2",
    ]);
    let after = function(&server, "f").await;
    assert_eq!(after["spec"]["envs"], json!({"VERSION": "2"}));
    assert_eq!(after["spec"]["scale"]["max"], 2);
    assert_eq!(after["spec"]["scale"]["concurrency"], 1);

    // Bad updates change nothing.
    let out = server.cli(&["fn", "update", "demo/f", "--size", "huge"]);
    assert!(!out.status.success());
    let out = server.cli(&["fn", "update", "demo/f", "--max-scale", "0"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scale.max"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!server.cli(&["fn", "update", "demo/f"]).status.success());
    for body in ["[1]", "not json", "{\"imgae\": \"x\"}"] {
        let r = server
            .http
            .patch(server.url("/api/v1/namespaces/demo/functions/f"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let r = server
        .http
        .patch(server.url("/api/v1/namespaces/demo/functions/nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(function(&server, "f").await["revision"], 3);
    assert_eq!(
        json_out(&server, &["fn", "history", "demo/f"])
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // --pull resolves the image again: the moved tag's code.
    server.cli_ok(&["fn", "update", "demo/f", "--pull", "missing"]);
    let (_, code, _) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!(code, "new");
    // A merge patch's null removes a field (back to its default).
    let r = server
        .http
        .patch(server.url("/api/v1/namespaces/demo/functions/f"))
        .json(&json!({"envs": null, "timeout": null}))
        .send()
        .await
        .unwrap();
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["spec"]["envs"], json!({}), "{patched}");
    assert_eq!(patched["spec"]["timeout"], "30s");
}

#[tokio::test]
async fn images_in_use_are_not_removed_and_prune_frees_only_unused_layers() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (shared, other) = (marked::image("x"), marked::image("y"));
    // Three images of one layer (their configs differ), one of another.
    for (name, env) in [
        ("demo/keep", "A=3"),
        ("demo/used", "A=1"),
        ("demo/unused", "A=2"),
    ] {
        let (status, answer) =
            marked::import(&server, &server.http, Some("demo"), &shared, name, &[env]).await;
        assert_eq!(status, 201, "{answer}");
    }
    let other_record = marked::import_ok(&server, Some("demo"), &other, "demo/other").await;
    server.cli_ok(&["fn", "deploy", "demo/g", "--image", "demo/keep"]);
    server.cli_ok(&["fn", "deploy", "demo/f", "--image", "demo/used"]);
    let used = server.get_json("/api/v1/namespaces/demo/images").await;
    let layer = |record: &Value| {
        let diff_id = record["layers"][0]["diff_id"].as_str().unwrap().to_string();
        server
            .data_dir
            .join("images/layers")
            .join(diff_id.trim_start_matches("sha256:"))
    };
    let shared_layer = layer(&used[0]);
    let other_layer = layer(&other_record);
    assert!(shared_layer.is_dir() && other_layer.is_dir());

    let out = server.cli(&["image", "rm", "demo/used", "-n", "demo"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("function demo/f (revision 1, current)") && err.contains("409"),
        "{err}"
    );

    // Prune: the unused images go, the layer they shared with used ones stays.
    let pruned = json_out(&server, &["image", "prune", "-n", "demo"]);
    assert_eq!(
        pruned["removed"],
        json!(["demo/other:latest", "demo/unused:latest"]),
        "{pruned}"
    );
    assert_eq!(pruned["freed_layers"], 1);
    assert!(pruned["freed_bytes"].as_u64().unwrap() > 0);
    assert!(shared_layer.is_dir() && !other_layer.exists());
    let text = server.cli_ok(&["image", "prune", "-n", "demo"]);
    assert!(text.contains("freed 0 B"), "{text}");
    let (status, code, _) = call(&server, "demo", "g", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "x"));

    // Forced: removed, and the functions that ran it are named and fail at their next start.
    let out = server.cli(&[
        "image",
        "rm",
        "demo/used",
        "-n",
        "demo",
        "--force",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let removed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        removed["will_fail"],
        json!(["function demo/f"]),
        "{removed}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("function demo/f"));
    assert_eq!(function(&server, "f").await["image"]["status"], "removed");
    let (status, _, answer) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("removed"),
        "{answer}"
    );
    let r = server
        .post_json("/api/v1/namespaces/demo/functions/f/rollback", &json!({}))
        .await;
    assert_eq!(r.status(), 409, "no revision before to go back to");
    assert!(shared_layer.is_dir(), "g's layer stays");
    let (status, code, _) = call(&server, "demo", "g", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "x"));

    // A server-wide image a namespace's function uses: the admin's rm is refused the same way.
    marked::import_ok(&server, None, &other, "base/tool").await;
    server.cli_ok(&["fn", "deploy", "demo/h", "--image", "base/tool"]);
    let out = server.cli(&["image", "rm", "base/tool"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("function demo/h"));
    let pruned = json_out(&server, &["image", "prune"]);
    assert_eq!(pruned["removed"], json!([]), "{pruned}");
    server.cli_ok(&["fn", "rm", "demo/h"]);
    server.cli_ok(&["image", "rm", "base/tool"]);
    assert_eq!(server.get_json("/api/v1/images").await, json!([]));
}
