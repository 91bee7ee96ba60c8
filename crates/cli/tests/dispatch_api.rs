//! Dispatch's API (`/v1`, header `X-Dispatch-Org`) on a real server with real runc containers:
//! a base image, a function from code (a `shell` handler on a busybox base image, so no
//! language image is needed), a blocking run answered as Dispatch's Run, a failing run as 502
//! naming its run, a non-blocking run (202, then READY from `GET /v1/runs/{name}`), Dispatch's
//! error shape, and the token rules (another namespace's token does not reach the org, an
//! invoke token runs but does not create). Then any function of the namespace (the test
//! function's image) through Dispatch: runs listed by function and time, and an event
//! subscription made through `/v1/event/subscriptions` run by `POST /v1/event`.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{
    client_with_token, code_source as source, deploy_mode, images, server_with_test_function,
    wait_for, Server,
};

const ORG: &str = "x-dispatch-org";

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    org: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(org) = org {
        request = request.header(ORG, org);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

#[tokio::test]
async fn dispatch_clients_create_base_images_and_functions_and_run_them() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server.create_namespace("other").await;
    let (_dir, tar) = images::rootfs_tar_with(&[]);
    let r = server
        .import_as(&server.http, Some("demo"), &tar, "test/busybox:1", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let http = &server.http;
    let url = |path: &str| server.url(path);
    use reqwest::Method as M;

    // Without the org header: Dispatch's error shape with the fix.
    let (status, body) = send(http, M::GET, url("/v1/function"), None, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("X-Dispatch-Org"),
        "{body}"
    );

    // A base image.
    let base = json!({"name": "sh-base", "dockerUrl": "test/busybox:1", "language": "shell"});
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/baseimage"),
        Some("demo"),
        Some(&base),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "READY", "{body}");
    assert_eq!(body["language"], "shell");
    assert_eq!(body["dockerUrl"], "test/busybox:1");
    assert!(
        body["createdTime"].as_i64().unwrap_or_default() > 0,
        "{body}"
    );
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/baseimage"),
        Some("demo"),
        Some(&base),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = send(http, M::GET, url("/v1/baseimage"), Some("demo"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");

    // An image from the base image (no dependencies to install: an empty layer), built in
    // the background; one on a base image that does not exist is refused, nothing stored.
    let image = json!({"name": "sh-deps", "baseImageName": "sh-base",
                       "systemDependencies": {"packages": []}});
    let (status, body) = send(http, M::POST, url("/v1/image"), Some("demo"), Some(&image)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "Image");
    assert_eq!(body["baseImageName"], "sh-base");
    let built = wait_for(
        Duration::from_secs(120),
        "image sh-deps to be built",
        || async {
            send(http, M::GET, url("/v1/image/sh-deps"), Some("demo"), None)
                .await
                .1
        },
        |i| i["status"] == "READY" || i["status"] == "ERROR",
    )
    .await;
    assert_eq!(built["status"], "READY", "{built}");
    assert_eq!(built["language"], "shell");
    let orphan = json!({"name": "orphan", "baseImageName": "no-such-base"});
    let (status, body) = send(http, M::POST, url("/v1/image"), Some("demo"), Some(&orphan)).await;
    assert!(status == 404 || status == 400, "{status} {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no-such-base"),
        "{body}"
    );
    let (status, _) = send(http, M::GET, url("/v1/image/orphan"), Some("demo"), None).await;
    assert_eq!(status, 404);

    // A function from code: created INITIALIZED (201), built in the background to READY, on
    // the image with dependencies.
    let script = "read -r input\necho \"a log line\"\necho \"to stderr\" >&2\nprintf '{\"got\":%s}\\n' \"$input\"\n";
    let function = json!({"name": "hello", "image": "sh-deps", "handler": "run.sh",
                          "source": source(&[("run.sh", script)]), "timeout": 20000});
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/function"),
        Some("demo"),
        Some(&function),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "Function");
    assert_eq!(body["timeout"], 20000, "{body}");
    let id = body["id"].clone();
    let built = wait_for(
        Duration::from_secs(120),
        "function hello to be built",
        || async {
            send(http, M::GET, url("/v1/function/hello"), Some("demo"), None)
                .await
                .1
        },
        |f| f["status"] == "READY" || f["status"] == "ERROR",
    )
    .await;
    assert_eq!(built["status"], "READY", "{built}");
    assert_eq!(built["id"], id, "the id stays");
    assert_eq!(built["reason"], json!([]));

    // A blocking run: Dispatch's Run with the output and the call's logs by stream.
    let run = json!({"blocking": true, "input": {"name": "x"}});
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/runs?functionName=hello"),
        Some("demo"),
        Some(&run),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!({"got": {"name": "x"}}), "{body}");
    assert_eq!(body["functionName"], "hello");
    assert_eq!(body["status"], "READY");
    assert!(
        body["logs"]["stdout"].to_string().contains("a log line"),
        "{body}"
    );
    assert!(
        body["logs"]["stderr"].to_string().contains("to stderr"),
        "{body}"
    );
    // The run's name is the faasbox invocation id.
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let record = server
        .get_json(&format!("/api/v1/namespaces/demo/invocations/{name}"))
        .await;
    assert_eq!(record["status"], "succeeded", "{record}");

    // A function error: 502, the error body names the run and its FunctionError.
    let failing = json!({"name": "fails", "image": "sh-base", "handler": "fail.sh",
                         "source": source(&[("fail.sh", "echo 'no good' >&2\nexit 3\n")])});
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/function"),
        Some("demo"),
        Some(&failing),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    wait_for(
        Duration::from_secs(120),
        "function fails to be built",
        || async {
            send(http, M::GET, url("/v1/function/fails"), Some("demo"), None)
                .await
                .1
        },
        |f| f["status"] == "READY",
    )
    .await;
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/runs?functionName=fails"),
        Some("demo"),
        Some(&run),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], 502);
    assert_eq!(body["run"]["error"]["type"], "FunctionError", "{body}");
    assert_eq!(body["run"]["status"], "ERROR");

    // A non-blocking run: 202 with the Run at once, READY with its output later.
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/runs?functionName=hello"),
        Some("demo"),
        Some(&json!({"blocking": false, "input": {"name": "later"}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "INITIALIZED", "{body}");
    assert_eq!(body["blocking"], false, "{body}");
    let name = body["name"].as_str().expect("the run's name").to_owned();
    let done = wait_for(
        Duration::from_secs(60),
        "the non-blocking run to end",
        || async {
            send(
                http,
                M::GET,
                url(&format!("/v1/runs/{name}")),
                Some("demo"),
                None,
            )
            .await
            .1
        },
        |r| r["status"] == "READY" || r["status"] == "ERROR",
    )
    .await;
    assert_eq!(done["status"], "READY", "{done}");
    assert_eq!(done["output"], json!({"got": {"name": "later"}}), "{done}");
    assert_eq!(done["input"], json!({"name": "later"}), "{done}");
    assert_eq!(done["blocking"], false, "{done}");
    assert!(
        done["logs"]["stdout"].to_string().contains("a log line"),
        "{done}"
    );
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/runs?functionName=nope"),
        Some("demo"),
        Some(&run),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Tokens: another namespace's token does not reach demo; an invoke token runs, but does
    // not create.
    let token = |namespace: &str, role: &str| {
        server
            .cli_ok(&["token", "create", "--namespace", namespace, "--role", role])
            .trim()
            .to_owned()
    };
    let outsider = client_with_token(Some(&token("other", "admin")));
    let (status, body) = send(
        &outsider,
        M::GET,
        url("/v1/function/hello"),
        Some("demo"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = send(
        &outsider,
        M::POST,
        url("/v1/runs?functionName=hello"),
        Some("demo"),
        Some(&run),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let invoker = client_with_token(Some(&token("demo", "invoke")));
    let (status, body) = send(
        &invoker,
        M::POST,
        url("/v1/runs?functionName=hello"),
        Some("demo"),
        Some(&run),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &invoker,
        M::POST,
        url("/v1/function"),
        Some("demo"),
        Some(&function),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Delete answers the function as it was; it is gone after.
    let (status, body) = send(
        http,
        M::DELETE,
        url("/v1/function/hello"),
        Some("demo"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "hello");
    let (status, _) = send(http, M::GET, url("/v1/function/hello"), Some("demo"), None).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        http,
        M::POST,
        url("/v1/runs?functionName=hello"),
        Some("demo"),
        Some(&run),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn dispatch_runs_any_function_lists_its_runs_and_runs_subscriptions_on_emitted_events() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "echo", "plain", json!({})).await;
    deploy_mode(&server, "other", "plain", json!({})).await;
    let http = &server.http;
    let url = |path: &str| server.url(path);
    use reqwest::Method as M;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    for n in 0..3 {
        let (status, body) = send(
            http,
            M::POST,
            url("/v1/runs?functionName=echo"),
            Some("demo"),
            Some(&json!({"blocking": n != 1, "input": {"n": n}})),
        )
        .await;
        assert!(status == 200 || status == 202, "{status} {body}");
    }
    let (status, _) = send(
        http,
        M::POST,
        url("/v1/runs?functionName=other"),
        Some("demo"),
        Some(&json!({"blocking": true, "input": {}})),
    )
    .await;
    assert_eq!(status, 200);

    // Listed by function, newest first, every one READY in the end.
    let runs = wait_for(
        Duration::from_secs(60),
        "echo's three runs READY",
        || async {
            send(
                http,
                M::GET,
                url("/v1/runs?functionName=echo"),
                Some("demo"),
                None,
            )
            .await
            .1
        },
        |list| {
            list.as_array()
                .is_some_and(|l| l.len() == 3 && l.iter().all(|r| r["status"] == "READY"))
        },
    )
    .await;
    let inputs: Vec<Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["input"]["n"].clone())
        .collect();
    assert_eq!(inputs, [json!(2), json!(1), json!(0)], "{runs}");
    assert!(runs
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["functionName"] == "echo"));
    let (_, all) = send(http, M::GET, url("/v1/runs"), Some("demo"), None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(4), "{all}");
    let (_, later) = send(
        http,
        M::GET,
        url(&format!(
            "/v1/runs?functionName=echo&since={}",
            before + 3600
        )),
        Some("demo"),
        None,
    )
    .await;
    assert_eq!(later, json!([]), "none started an hour from now");
    let (status, body) = send(http, M::GET, url("/v1/runs/nope"), Some("demo"), None).await;
    assert_eq!(status, 404, "{body}");

    // A subscription through Dispatch's event manager, an emitted event runs its function.
    let subscription = json!({"name": "on-tick", "eventType": "tick", "function": "other"});
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/event/subscriptions"),
        Some("demo"),
        Some(&subscription),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["eventType"], "tick");
    assert_eq!(body["status"], "READY");
    let missing = json!({"name": "lost", "eventType": "tick", "function": "nope"});
    let (status, body) = send(
        http,
        M::POST,
        url("/v1/event/subscriptions"),
        Some("demo"),
        Some(&missing),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (_, listed) = send(
        http,
        M::GET,
        url("/v1/event/subscriptions"),
        Some("demo"),
        None,
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // Another type runs nothing; the subscribed one runs `other` with the data.
    let emission = |event_type: &str, id: &str| {
        json!({"event": {"eventType": event_type, "eventID": id, "source": "/clock",
            "cloudEventsVersion": "0.1", "contentType": "application/json", "data": {"at": id}}})
    };
    for (event_type, id) in [("tock", "1"), ("tick", "2")] {
        let (status, body) = send(
            http,
            M::POST,
            url("/v1/event"),
            Some("demo"),
            Some(&emission(event_type, id)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let runs = wait_for(
        Duration::from_secs(60),
        "the event's run of other READY",
        || async {
            send(
                http,
                M::GET,
                url("/v1/runs?functionName=other"),
                Some("demo"),
                None,
            )
            .await
            .1
        },
        |list| {
            list.as_array()
                .is_some_and(|l| l.len() >= 2 && l.iter().all(|r| r["status"] == "READY"))
        },
    )
    .await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let evented = &runs[0];
    assert_eq!(evented["input"], json!({"at": "2"}), "{evented}");
    assert_eq!(evented["output"], json!({"at": "2"}), "{evented}");
    assert_eq!(evented["event"]["type"], "tick", "{evented}");
    assert_eq!(evented["event"]["id"], "2", "{evented}");
    assert_eq!(evented["blocking"], false, "{evented}");

    // An invoke token may emit events (a call, as POST …/events is) and read subscriptions,
    // but not create them.
    let invoker = client_with_token(Some(
        server
            .cli_ok(&["token", "create", "--namespace", "demo", "--role", "invoke"])
            .trim(),
    ));
    let (status, body) = send(
        &invoker,
        M::POST,
        url("/v1/event"),
        Some("demo"),
        Some(&emission("tock", "3")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(
        &invoker,
        M::GET,
        url("/v1/event/subscriptions"),
        Some("demo"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let again = json!({"name": "by-invoker", "eventType": "tick", "function": "other"});
    let (status, body) = send(
        &invoker,
        M::POST,
        url("/v1/event/subscriptions"),
        Some("demo"),
        Some(&again),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    let (status, body) = send(
        http,
        M::DELETE,
        url("/v1/event/subscriptions/on-tick"),
        Some("demo"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "on-tick");
    let (status, _) = send(
        http,
        M::GET,
        url("/v1/event/subscriptions/on-tick"),
        Some("demo"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}
