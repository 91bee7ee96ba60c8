//! Global services and deploy-time pulls against a real htpasswd `docker-registry`: a deploy
//! whose image is missing pulls it (or is saved with the pull error), the next call pulls with
//! the credentials stored then (no redeploy), concurrent calls pull once; global services pull
//! through global-private registries that namespace functions never get, and run for any
//! namespace, which owns the call and its logs.

mod support;

use std::sync::OnceLock;

use serde_json::{json, Value};
use support::images::{self, TestImages};
use support::registry;
use support::{client_with_token, json as parse, Server};

const USER: &str = "puller";
const PASS: &str = "g1obal-Pass%$*:x";
const WRONG: &str = "not-the-Pass-93a";

fn test_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| images::shared(images::TEST_FUNCTION))
}

async fn put(server: &Server, path: &str, spec: Value) -> (u16, Value) {
    let r = server.put_json(path, &spec).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(server: &Server, path: &str, body: &str) -> (u16, String, Value) {
    let (status, id, bytes) = server.call(path, body.to_string()).await;
    (
        status,
        id,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn add_registry(server: &Server, scope: &[&str], addr: &str, password: &str) {
    let mut args = vec!["registry", "add"];
    args.extend_from_slice(scope);
    args.extend_from_slice(&[addr, "-u", USER, "--password", password]);
    server.cli_ok(&args);
}

#[tokio::test]
async fn a_missing_image_is_pulled_at_deploy_or_at_the_next_call_once() {
    let (registry, reference) =
        registry::with_image(USER, PASS, &test_images().oci_tar, "team/echo:1").await;
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let spec = json!({"image": reference, "envs": {"MODE": "echo"}});

    // No credentials: the function is saved, and says why its image is missing.
    let (status, deployed) = put(
        &server,
        "/api/v1/namespaces/demo/functions/echo",
        spec.clone(),
    )
    .await;
    assert_eq!(status, 201, "{deployed}");
    assert_eq!(deployed["image"]["status"], "missing", "{deployed}");
    let error = deployed["image"]["last_pull_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("faasbox registry add demo"), "{error}");
    let shown = server
        .get_json("/api/v1/namespaces/demo/functions/echo")
        .await;
    assert_eq!(shown["image"], deployed["image"]);
    let (status, _, answer) = post(
        &server,
        "/api/v1/namespaces/demo/functions/echo/invoke",
        "{}",
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "faasbox.image.missing");

    // Wrong credentials: a clear error that names the fix and holds no password.
    add_registry(&server, &["demo"], &registry.addr, WRONG);
    let (status, id, answer) = post(
        &server,
        "/api/v1/namespaces/demo/functions/echo/invoke",
        "{}",
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("faasbox registry add"), "{message}");
    assert!(
        !message.contains(WRONG) && !message.contains(PASS),
        "{message}"
    );
    let record = server.get_json(&format!("/api/v1/invocations/{id}")).await;
    assert_eq!(record["status"], "failed", "{record}");

    // The reason is kept across a restart of the server.
    let mut server = server;
    server.kill();
    let before_restart = server;
    let server = Server::start_in(&before_restart.data_dir).await;
    let shown = server
        .get_json("/api/v1/namespaces/demo/functions/echo")
        .await;
    assert_eq!(shown["image"]["status"], "missing", "{shown}");
    let kept = shown["image"]["last_pull_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        kept.contains("faasbox registry add") && !kept.contains(WRONG),
        "{shown}"
    );

    // The right credentials, added after deploy: concurrent calls work without a redeploy and
    // the image is pulled once.
    add_registry(&server, &["demo"], &registry.addr, PASS);
    let mut calls = Vec::new();
    for i in 0..4 {
        let http = server.http.clone();
        let url = server.url("/api/v1/namespaces/demo/functions/echo/invoke");
        calls.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .body(format!("{{\"call\":{i}}}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        }));
    }
    for (i, call) in calls.into_iter().enumerate() {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(parse(&body), json!({"call": i}));
    }
    assert_eq!(
        server
            .log()
            .matches(&format!("pulled image {reference}"))
            .count(),
        1,
        "one pull for concurrent calls"
    );
    let shown = server
        .get_json("/api/v1/namespaces/demo/functions/echo")
        .await;
    assert_eq!(shown["image"], json!({"status": "present"}));

    // With credentials in place, a deploy pulls the image itself.
    let fresh = Server::start().await;
    fresh.create_namespace("demo").await;
    add_registry(&fresh, &["--global"], &registry.addr, PASS);
    let out = fresh.cli_ok(&[
        "fn",
        "deploy",
        "demo/echo",
        "--image",
        &reference,
        "--env",
        "MODE=echo",
        "-o",
        "json",
    ]);
    let deployed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        deployed["image"],
        json!({"status": "present"}),
        "{deployed}"
    );
    // The deploy pulled into the namespace's own images.
    let images = fresh
        .get_json("/api/v1/namespaces/demo/images")
        .await
        .to_string();
    assert!(images.contains(&reference), "{images}");
    assert_eq!(fresh.get_json("/api/v1/images").await, json!([]));
    // A local name that is not in the store is still refused at deploy (nothing is fetched
    // from a default registry).
    let (status, answer) = put(
        &fresh,
        "/api/v1/namespaces/demo/functions/local",
        json!({"image": "team/nothing:1"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        fresh
            .get("/api/v1/namespaces/demo/functions/local")
            .await
            .status()
            == 404
    );
}

#[tokio::test]
async fn global_services_pull_through_global_private_registries_and_serve_every_namespace() {
    let (registry, reference) =
        registry::with_image(USER, PASS, &test_images().oci_tar, "private/echo:1").await;
    let server = Server::start().await;
    for ns in ["a", "b"] {
        server.create_namespace(ns).await;
    }
    add_registry(&server, &["--global-private"], &registry.addr, PASS);

    // A namespace function never gets global-private credentials.
    let (status, deployed) = put(
        &server,
        "/api/v1/namespaces/a/functions/priv",
        json!({"image": reference, "envs": {"MODE": "echo"}}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(deployed["image"]["status"], "missing", "{deployed}");

    // A global service does; it is deployed, listed and shown like a function.
    let out = server.cli_ok(&[
        "fn",
        "deploy",
        "--global",
        "shared",
        "--image",
        &reference,
        "--env",
        "MODE=echo",
        "-o",
        "json",
    ]);
    let deployed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(deployed["global"], true, "{deployed}");
    assert_eq!(
        deployed["image"],
        json!({"status": "present"}),
        "{deployed}"
    );
    let listed = server.cli_ok(&["fn", "ls", "--global"]);
    assert!(listed.contains("(global) shared"), "{listed}");
    // The image it pulled with global-private credentials is server-wide, for global services
    // only: a namespace's function still does not get it (it pulls with its own credentials).
    let images = server.get_json("/api/v1/images").await;
    assert_eq!(images[0]["name"], reference.as_str(), "{images}");
    assert_eq!(images[0]["services_only"], true, "{images}");
    let (status, answer) = put(
        &server,
        "/api/v1/namespaces/a/functions/priv2?pull=never",
        json!({"image": reference}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, _, answer) =
        post(&server, "/api/v1/namespaces/a/functions/priv/invoke", "{}").await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "faasbox.image.missing");
    let shown = server.cli_ok(&["fn", "get", "--global", "shared"]);
    assert!(shown.contains(&reference), "{shown}");
    assert_eq!(
        server
            .get_json("/api/v1/namespaces/a/functions")
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "global services are not a namespace's functions"
    );

    // Called from a (CLI) and b (API): each namespace owns its call and logs.
    let out = server.cli_ok(&[
        "invoke",
        "--global",
        "shared",
        "-n",
        "a",
        "--data",
        r#"{"from":"a"}"#,
    ]);
    assert!(
        out.contains(r#""from":"a""#) || out.contains(r#""from": "a""#),
        "{out}"
    );
    let (status, b_call, output) = post(
        &server,
        "/api/v1/namespaces/b/global-functions/shared/invoke",
        r#"{"from":"b"}"#,
    )
    .await;
    assert_eq!((status, output), (200, json!({"from": "b"})));
    let record = server
        .get_json(&format!("/api/v1/namespaces/b/invocations/{b_call}"))
        .await;
    assert_eq!(record["namespace"], "b");
    assert_eq!(record["function"], "global:shared");
    assert_eq!(
        server
            .get(&format!("/api/v1/namespaces/a/invocations/{b_call}"))
            .await
            .status(),
        404
    );
    let logs = server
        .get_json(&format!("/api/v1/namespaces/b/invocations/{b_call}/logs"))
        .await;
    assert!(logs["logs"].is_array(), "{logs}");

    // Tokens: a namespace token may list and call global services but not change them, and
    // only on behalf of its own namespace.
    server.create_namespace("c").await;
    let token = server.cli_ok(&["token", "create", "--namespace", "a", "--role", "invoke"]);
    let a = client_with_token(Some(token.trim()));
    let r = a.get(server.url("/api/v1/functions")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = a
        .put(server.url("/api/v1/functions/shared"))
        .json(&json!({"image": reference}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for (ns, status) in [("a", 200), ("b", 404)] {
        let r = a
            .post(server.url(&format!(
                "/api/v1/namespaces/{ns}/global-functions/shared/invoke"
            )))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{ns}");
    }

    // A restart puts the global service back into service.
    let mut server = server;
    server.stop();
    let server = Server::start_in(&server.data_dir.clone()).await;
    let (status, _, output) = post(
        &server,
        "/api/v1/namespaces/c/global-functions/shared/invoke",
        r#"{"after":"restart"}"#,
    )
    .await;
    assert_eq!((status, output), (200, json!({"after": "restart"})));

    // Unknown namespaces and services are clear 404s; removed services stop answering.
    let (status, _, answer) = post(
        &server,
        "/api/v1/namespaces/nope/global-functions/shared/invoke",
        "{}",
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("namespace 'nope'"));
    server.cli_ok(&["fn", "rm", "--global", "shared"]);
    let (status, _, answer) = post(
        &server,
        "/api/v1/namespaces/a/global-functions/shared/invoke",
        "{}",
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("global service shared does not exist"),
        "{message}"
    );
    assert!(
        message.contains("faasbox fn deploy --global shared"),
        "{message}"
    );
}

#[tokio::test]
async fn global_service_bad_input_is_refused_and_stores_nothing() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let r = server
        .import(&test_images().oci_tar, "test/function:latest", &[])
        .await;
    assert_eq!(r.status(), 201);
    let good = json!({"image": "test/function:latest"}).to_string();
    for (path, body, status) in [
        ("/api/v1/functions/..x", good.clone(), 400),
        ("/api/v1/functions/bell%07", good.clone(), 400),
        ("/api/v1/functions/new%0Aline", good.clone(), 400),
        ("/api/v1/functions/a%2Fb", good.clone(), 400),
        ("/api/v1/functions/ok", "{\"image\": ".to_string(), 400),
        (
            "/api/v1/functions/ok",
            json!({"image": "test/function:latest", "bogus": 1}).to_string(),
            400,
        ),
        (
            "/api/v1/functions/ok",
            json!({"image": "nowhere/x:1"}).to_string(),
            400,
        ),
        ("/api/v1/functions/ok", " ".repeat(2 * 1024 * 1024 + 1), 413),
    ] {
        let r = server
            .http
            .put(server.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let got = r.status().as_u16();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{path}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{path}: {answer}");
    }
    assert_eq!(server.get_json("/api/v1/functions").await, json!([]));
    // Calling a global service from a namespace name that cannot exist is a clear 400.
    let (status, _, _) = post(
        &server,
        "/api/v1/namespaces/Bad%07/global-functions/x/invoke",
        "{}",
    )
    .await;
    assert_eq!(status, 400);
}
