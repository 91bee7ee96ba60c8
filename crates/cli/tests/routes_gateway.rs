//! HTTP routes served by the gateway, end to end with a real server, runc and the test
//! function: webhooks signed GitHub's and Slack's way, each authentication kind, host routing,
//! CORS, async calls, rate and body limits, disabled routes, 405 and flow routes
//! (`docs/ROUTES.md`).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::routes::{github_signature, slack_signature, unix_now};
use support::{deploy_mode, server_with_test_function, wait_for, Server};

const GH_SECRET: &str = "gh-webhook-secret";
const SLACK_SECRET: &str = "slack-signing-secret";

async fn echo_server() -> Server {
    let server = server_with_test_function().await;
    deploy_mode(&server, "echo", "plain", json!({})).await;
    server
}

/// Sends `request` and answers (status, headers, body as JSON or the text as a JSON string).
async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = request.send().await.expect("the request is sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("the body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

fn run_id(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("faasbox-invocation-id")
        .and_then(|v| v.to_str().ok())
        .expect("the answer names its run")
        .to_string()
}

#[tokio::test]
async fn a_signed_github_webhook_reaches_the_function_and_unsigned_ones_never_do() {
    let server = echo_server().await;
    server.cli_ok(&["secret", "set", "demo/gh", "--value", GH_SECRET]);
    server.cli_ok(&["secret", "set", "demo/slack", "--value", SLACK_SECRET]);
    server
        .create_route(
            "demo",
            "github",
            json!({"path": "/hooks/github", "methods": ["POST"], "target": {"function": "echo"},
                   "auth": {"kind": "hmac-sha256", "secret": "gh"}}),
        )
        .await;
    server
        .create_route(
            "demo",
            "slack",
            json!({"path": "/hooks/slack", "methods": ["POST"], "target": {"function": "echo"},
                   "auth": {"kind": "slack", "secret": "slack", "max_age_seconds": 300}}),
        )
        .await;
    let public = server.public_client();
    let url = server.url("/ns/demo/hooks/github?delivery=1");
    let payload = br#"{"action":"opened","number":7}"#;

    // Signed: the function gets the parsed JSON, the run keeps the headers.
    let (status, headers, body) = send(
        public
            .post(&url)
            .header("content-type", "application/json")
            .header("x-github-event", "pull_request")
            .header(
                "x-hub-signature-256",
                github_signature(GH_SECRET.as_bytes(), payload),
            )
            .body(payload.to_vec()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"action": "opened", "number": 7}));
    let record = server.run_record("demo", &run_id(&headers)).await;
    let http = &record["http_context"];
    assert_eq!(http["route"], "github", "{record}");
    assert_eq!(http["method"], "POST");
    assert_eq!(http["path"], "/hooks/github");
    assert_eq!(http["rawQuery"], "delivery=1");
    assert_eq!(http["query"]["delivery"], "1");
    assert_eq!(http["headers"]["x-github-event"], "pull_request");
    assert!(http["headers"].get("host").is_none(), "{http}");
    assert!(http["remoteAddr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    let runs = server.run_count("demo").await;

    // A wrong signature, a body changed after signing, no signature: 401, no run.
    let forged = github_signature(b"guessed", payload);
    let changed = github_signature(GH_SECRET.as_bytes(), b"{}");
    for signature in [Some(forged.as_str()), Some(changed.as_str()), None] {
        let mut request = public
            .post(&url)
            .header("content-type", "application/json")
            .body(payload.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let (status, _, body) = send(request).await;
        assert_eq!(status, 401, "{signature:?}: {body}");
        assert_eq!(body["error"]["code"], "faasbox.route.unauthorized");
        assert!(
            !body.to_string().contains(GH_SECRET),
            "the secret never shows: {body}"
        );
    }
    assert_eq!(server.run_count("demo").await, runs, "no run for a refusal");

    // Another method: 405 naming the one it takes; another path: 404.
    let (status, headers, _) = send(public.get(&url)).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    let (status, _, body) = send(public.post(server.url("/ns/demo/hooks/gitlab"))).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "faasbox.route.not_found");

    // Slack: a fresh signed form is taken (as an object of strings), once.
    let slack_url = server.url("/ns/demo/hooks/slack");
    let form = b"command=%2Fdeploy&text=prod+now";
    let slack = |ts: u64, signature: String| {
        public
            .post(&slack_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .body(form.to_vec())
    };
    let now = unix_now();
    let signature = slack_signature(SLACK_SECRET.as_bytes(), now, form);
    let (status, _, body) = send(slack(now, signature.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"command": "/deploy", "text": "prod now"}));
    let runs = server.run_count("demo").await;
    let (status, _, body) = send(slack(now, signature)).await;
    assert_eq!(status, 401, "a replay: {body}");
    let stale = now - 600;
    let (status, _, body) = send(slack(
        stale,
        slack_signature(SLACK_SECRET.as_bytes(), stale, form),
    ))
    .await;
    assert_eq!(status, 401, "a stale request: {body}");
    assert_eq!(server.run_count("demo").await, runs, "no run for a refusal");

    // Counted per route and status.
    let metrics = server.get("/metrics").await.text().await.expect("metrics");
    let counted = |route: &str, status: &str| {
        metrics.lines().any(|l| {
            l.starts_with("faasbox_route_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(
        counted("github", "200") && counted("github", "401"),
        "{metrics}"
    );
    assert!(counted("slack", "401"), "{metrics}");
    assert!(
        metrics.contains("faasbox_route_request_seconds"),
        "{metrics}"
    );
}

#[tokio::test]
async fn each_auth_kind_takes_its_credential_and_refuses_others() {
    let server = echo_server().await;
    server.create_namespace("other").await;
    let invoke_token = server
        .cli_ok(&["token", "create", "--namespace", "demo", "--role", "invoke"])
        .trim()
        .to_string();
    let other_token = server
        .cli_ok(&["token", "create", "--namespace", "other", "--role", "admin"])
        .trim()
        .to_string();
    server
        .create_route(
            "demo",
            "tok",
            json!({"path": "/tok", "target": {"function": "echo"}, "auth": {"kind": "token"}}),
        )
        .await;
    server
        .create_route(
            "demo",
            "basic",
            json!({"path": "/basic", "target": {"function": "echo"},
                   "auth": {"kind": "basic", "users": {"alice": "correct-horse"}}}),
        )
        .await;
    server
        .create_route(
            "demo",
            "key",
            json!({"path": "/key", "target": {"function": "echo"},
                   "auth": {"kind": "api-key", "header": "X-API-Key", "query": "key",
                            "keys": {"ci": "0123456789abcdef0123"}}}),
        )
        .await;
    let public = server.public_client();
    let post = |path: &str| {
        public
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(r#"{"hello":"route"}"#)
    };

    // token: the namespace's token or the admin's; none or another namespace's: 401.
    for token in [invoke_token.as_str(), server.token.as_str()] {
        let (status, _, body) = send(post("/ns/demo/tok").bearer_auth(token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"hello": "route"}));
    }
    let (status, headers, _) = send(post("/ns/demo/tok")).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, body) = send(post("/ns/demo/tok").bearer_auth(&other_token)).await;
    assert_eq!(status, 401, "another namespace's token: {body}");

    // basic: the right password; a wrong one or an unknown user is 401 with a challenge.
    let (status, headers, body) =
        send(post("/ns/demo/basic").basic_auth("alice", Some("correct-horse"))).await;
    assert_eq!(status, 200, "{body}");
    let record = server.run_record("demo", &run_id(&headers)).await;
    assert!(
        record["http_context"]["headers"]
            .get("authorization")
            .is_none(),
        "the credential is not passed on: {record}"
    );
    for (user, password) in [("alice", "wrong-horse"), ("bob", "correct-horse")] {
        let (status, headers, _) =
            send(post("/ns/demo/basic").basic_auth(user, Some(password))).await;
        assert_eq!(status, 401, "{user}:{password}");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
    }

    // api-key: in the header or the query parameter; the key never reaches the function.
    let (status, _, body) =
        send(post("/ns/demo/key").header("x-api-key", "0123456789abcdef0123")).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = send(post("/ns/demo/key?a=1&key=0123456789abcdef0123")).await;
    assert_eq!(status, 200, "{body}");
    let record = server.run_record("demo", &run_id(&headers)).await;
    let http = &record["http_context"];
    assert_eq!(http["rawQuery"], "a=1", "{http}");
    assert_eq!(http["query"], json!({"a": "1"}));
    for wrong in [
        post("/ns/demo/key").header("x-api-key", "0123456789abcdef012X"),
        post("/ns/demo/key?key=short"),
        post("/ns/demo/key"),
    ] {
        let (status, _, body) = send(wrong).await;
        assert_eq!(status, 401, "{body}");
    }
}

#[tokio::test]
async fn host_routes_cors_async_limits_and_disabled_routes() {
    let server = echo_server().await;
    server
        .create_route(
            "demo",
            "shop",
            json!({"path": "/shop/{item}", "methods": ["GET", "POST"],
                   "hosts": ["shop.example.test"], "target": {"function": "echo"},
                   "cors": {"origins": ["https://app.example"], "headers": ["X-Custom"],
                            "max_age_seconds": 600}}),
        )
        .await;
    let public = server.public_client();

    // On its host at its path, and under /ns/demo; the API stays the API on that host.
    let (status, headers, body) = send(
        public
            .get(server.url("/shop/42"))
            .header("host", "Shop.Example.Test:8080"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let record = server.run_record("demo", &run_id(&headers)).await;
    assert_eq!(record["http_context"]["params"], json!({"item": "42"}));
    assert_eq!(record["http_context"]["host"], "shop.example.test");
    let (status, _, body) = send(
        public
            .get(server.url("/api/v1/health"))
            .header("host", "shop.example.test"),
    )
    .await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");
    let (status, _, _) = send(public.get(server.url("/shop/42"))).await;
    assert_eq!(
        status, 401,
        "without the route's host it is the API (which needs a token)"
    );

    // CORS: the preflight is answered here (the function is not called).
    let runs = server.run_count("demo").await;
    let preflight = |origin: &str, method: &str| {
        public
            .request(reqwest::Method::OPTIONS, server.url("/ns/demo/shop/1"))
            .header("origin", origin)
            .header("access-control-request-method", method)
    };
    let (status, headers, _) = send(preflight("https://app.example", "POST")).await;
    assert_eq!(status, 204);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET, POST");
    assert_eq!(headers["access-control-allow-headers"], "X-Custom");
    assert_eq!(headers["access-control-max-age"], "600");
    let (status, _, _) = send(preflight("https://evil.example", "POST")).await;
    assert_eq!(status, 403);
    let (status, _, _) = send(preflight("https://app.example", "DELETE")).await;
    assert_eq!(status, 403);
    assert_eq!(
        server.run_count("demo").await,
        runs,
        "preflights call nothing"
    );
    let (status, headers, _) = send(
        public
            .get(server.url("/ns/demo/shop/1"))
            .header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["vary"], "Origin");

    // Async: 202 with the run, which runs with the HTTP context.
    for (name, value) in [
        ("x-faasbox-blocking", "false"),
        ("x-dispatch-blocking", "false"),
        ("prefer", "respond-async"),
    ] {
        let (status, headers, body) = send(
            public
                .post(server.url("/ns/demo/shop/7"))
                .header("content-type", "application/json")
                .header(name, value)
                .body(r#"{"later":true}"#),
        )
        .await;
        assert_eq!(status, 202, "{name}: {body}");
        let id = body["id"].as_str().expect("an id").to_string();
        assert_eq!(run_id(&headers), id);
        let record = wait_for(
            Duration::from_secs(60),
            "the async run ends",
            || server.run_record("demo", &id),
            |r| r["status"] == "succeeded",
        )
        .await;
        assert_eq!(record["output"], json!({"later": true}), "{record}");
        assert_eq!(record["http_context"]["params"]["item"], "7");
    }

    // Rate limit: a burst of 2 at 1 per second, then 429 with Retry-After.
    server
        .create_route(
            "demo",
            "limited",
            json!({"path": "/limited", "target": {"function": "echo"},
                   "limits": {"rate_per_second": 1, "burst": 2}}),
        )
        .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let (status, headers, _) = send(public.get(server.url("/ns/demo/limited"))).await;
        statuses.push(status);
        if status == 429 {
            retry_after = headers.get("retry-after").cloned();
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let retry: u64 = retry_after
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");

    // Body limit: 413; disabled: 404.
    server
        .create_route(
            "demo",
            "small",
            json!({"path": "/small", "target": {"function": "echo"},
                   "limits": {"max_body_bytes": 16}}),
        )
        .await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(100));
    let (status, _, body) = send(
        public
            .post(server.url("/ns/demo/small"))
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (status, _, _) = send(
        public
            .post(server.url("/ns/demo/small"))
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_eq!(status, 200);
    server
        .patch_route("demo", "small", json!({"enabled": false}))
        .await;
    let (status, _, body) = send(public.post(server.url("/ns/demo/small"))).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "faasbox.route.not_found");
}

#[tokio::test]
async fn a_flow_route_runs_the_flow_with_the_body_and_the_request() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server
        .deploy_flow(
            "hooks/push",
            "states:\n- id: a\n  type: noop\n  transform:\n    got: 'jq(.body)'\n    event: 'jq(.http.headers[\"x-github-event\"])'\n    method: 'jq(.http.method)'\n",
        )
        .await;
    server
        .create_route(
            "demo",
            "push",
            json!({"path": "/push", "methods": ["POST"], "target": {"flow": "/hooks/push"}}),
        )
        .await;
    let public = server.public_client();
    let (status, headers, body) = send(
        public
            .post(server.url("/ns/demo/push"))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .body(r#"{"ref":"main"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"got": {"ref": "main"}, "event": "push", "method": "POST"})
    );
    assert!(headers.contains_key("faasbox-instance-id"));
    let (status, _, body) = send(
        public
            .post(server.url("/ns/demo/push"))
            .header("x-faasbox-blocking", "false"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("the instance id").to_string();
    let instance = server
        .get_json(&format!("/api/v1/namespaces/demo/instances/{id}"))
        .await;
    assert_eq!(instance["input"]["body"], json!({}), "{instance}");
}
