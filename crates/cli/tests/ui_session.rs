//! The web UI's sessions end to end, over HTTP without a browser (`docs/UI.md`, "Sessions" and
//! "The API from the UI"): signing in and out, the cookie's attributes, the CSRF header on
//! every method of `/ui/api/…`, what ends a session (sign-out, the token's deletion, idle
//! time), a namespace token's session, and the gateway's hardening (the sandbox policy, the
//! session cookie never reaching a function).

mod support;

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use support::{client_with_token, deploy_mode, server_with_test_function, Server};

/// A signed-in session as a browser holds it: the cookie's value and the CSRF token.
struct Session {
    id: String,
    csrf: String,
    /// The sign-in's `Set-Cookie` header, whole.
    set_cookie: String,
    /// The sign-in's answer.
    body: Value,
    /// The sign-in's answer as sent.
    text: String,
}

fn browser() -> reqwest::Client {
    client_with_token(None)
}

/// `POST /ui/session` with `token`: (status, headers, body text).
async fn sign_in_raw(
    server: &Server,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut request = browser()
        .post(server.url("/ui/session"))
        .header("content-type", "application/json")
        .header("origin", &server.url)
        .header("sec-fetch-site", "same-origin");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let r = request
        .body(json!({ "token": token }).to_string())
        .send()
        .await
        .expect("POST /ui/session");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap_or_default())
}

async fn sign_in(server: &Server, token: &str) -> Session {
    let (status, headers, text) = sign_in_raw(server, token, &[]).await;
    assert_eq!(status, 201, "{text}");
    let set_cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    let id = set_cookie
        .strip_prefix("faasbox_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("the cookie is faasbox_session")
        .to_string();
    let body: Value = serde_json::from_str(&text).expect("JSON");
    let csrf = body["csrf"].as_str().expect("a csrf token").to_string();
    Session {
        id,
        csrf,
        set_cookie,
        body,
        text,
    }
}

/// A request to `path` as the UI sends it: the cookie, and the CSRF header when `csrf` is given.
fn ui_request(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    session: &Session,
    csrf: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = browser()
        .request(method, server.url(path))
        .header("cookie", format!("faasbox_session={}", session.id));
    if let Some(csrf) = csrf {
        request = request.header("x-faasbox-csrf", csrf);
    }
    request
}

/// Sends `request`: (status, body as JSON, or Null).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let r = request.send().await.expect("the request is sent");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The names of `ns`'s secrets, as the admin token reads them.
async fn secret_names(server: &Server, ns: &str) -> Vec<String> {
    let list = server
        .get_json(&format!("/api/v1/namespaces/{ns}/secrets"))
        .await;
    let mut names: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn create_token(server: &Server, ns: &str, role: &str, name: &str) -> String {
    let token = server
        .cli_ok(&[
            "token",
            "create",
            "--namespace",
            ns,
            "--role",
            role,
            "--name",
            name,
        ])
        .trim()
        .to_string();
    assert!(token.starts_with("fbx_"), "{token}");
    token
}

#[tokio::test]
async fn signing_in_sets_a_strict_cookie_and_answers_the_session_never_the_token() {
    let server = Server::start().await;
    let session = sign_in(&server, &server.token).await;
    let cookie = &session.set_cookie;
    assert_eq!(session.id.len(), 64, "{cookie}");
    assert!(
        session.id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{cookie}"
    );
    for attribute in ["Path=/ui", "HttpOnly", "SameSite=Strict", "Max-Age=28800"] {
        assert!(
            cookie.split("; ").any(|a| a == attribute),
            "{attribute} in {cookie}"
        );
    }
    assert!(
        !cookie.contains("Secure"),
        "not Secure by default: {cookie}"
    );
    assert_eq!(session.body["principal"], json!({"kind": "admin"}));
    assert_eq!(session.body["token_name"], "admin");
    assert!(session.body["expires"]
        .as_str()
        .is_some_and(|e| e.ends_with('Z')));
    assert_eq!(session.csrf.len(), 64);
    assert_ne!(session.csrf, session.id);
    assert!(!session.text.contains(&server.token), "{}", session.text);
    assert!(
        !session.text.contains(&server.token[4..]),
        "{}",
        session.text
    );

    // GET /ui/session: the same session, not cached.
    let r = ui_request(&server, reqwest::Method::GET, "/ui/session", &session, None)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let shown: Value = r.json().await.unwrap();
    let mut without_csrf = session.body.clone();
    without_csrf
        .as_object_mut()
        .expect("an object")
        .remove("csrf");
    assert_eq!(
        shown, without_csrf,
        "the same JSON, without the csrf token (only the sign-in answers it)"
    );
    // Without the cookie: 401.
    let (status, body) = answer(browser().get(server.url("/ui/session"))).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "faasbox.auth.session");

    // A bad token: 401, the API's code; the answer does not repeat what was sent.
    let (status, _, text) = sign_in_raw(&server, "fbx_not-a-token-at-all", &[]).await;
    assert_eq!(status, 401, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "faasbox.auth.invalid");
    assert!(!text.contains("not-a-token-at-all"), "{text}");

    // Another site: 403, no session.
    for extra in [
        [("origin", "https://evil.example")],
        [("sec-fetch-site", "cross-site")],
    ] {
        let request = browser()
            .post(server.url("/ui/session"))
            .header("content-type", "application/json")
            .header(extra[0].0, extra[0].1)
            .body(json!({ "token": server.token }).to_string());
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 403, "{extra:?}");
        assert!(r.headers().get("set-cookie").is_none(), "{extra:?}");
    }
    // A form post (no JSON content type) is refused.
    let r = browser()
        .post(server.url("/ui/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.headers().get("set-cookie").is_none());
    // A cross-site page cannot read the session either.
    let (status, _) = answer(
        ui_request(&server, reqwest::Method::GET, "/ui/session", &session, None)
            .header("sec-fetch-site", "cross-site"),
    )
    .await;
    assert_eq!(status, 403);

    // The server's log holds neither the session id nor its CSRF token.
    let (status, _) = answer(ui_request(
        &server,
        reqwest::Method::GET,
        "/ui/api/v1/namespaces",
        &session,
        Some(&session.csrf),
    ))
    .await;
    assert_eq!(status, 200);
    let log = server.log();
    assert!(!log.is_empty());
    assert!(!log.contains(&session.id), "the session id is in the log");
    assert!(!log.contains(&session.csrf), "the csrf token is in the log");
}

#[tokio::test]
async fn the_ui_api_needs_the_csrf_header_on_every_method_and_a_cookie_alone_changes_nothing() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let session = sign_in(&server, &server.token).await;
    let csrf = Some(session.csrf.as_str());
    use reqwest::Method as M;

    // With the cookie and the CSRF header: the API, as the token would.
    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["name"], "demo", "{body}");
    let (status, body) = answer(
        ui_request(
            &server,
            M::PUT,
            "/ui/api/v1/namespaces/demo/secrets/kept",
            &session,
            csrf,
        )
        .header("content-type", "text/plain")
        .body("value-1"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(secret_names(&server, "demo").await, ["kept"]);
    // A query string survives the rewrite.
    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces/demo/runs?limit=1",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    // The metrics through /ui/metrics (admins).
    let r = ui_request(&server, M::GET, "/ui/metrics", &session, csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");

    // Without the CSRF header, or with a wrong one: 403 on every method, nothing changed.
    let wrong = "0".repeat(64);
    for header in [None, Some(wrong.as_str()), Some("")] {
        for (method, path) in [
            (M::GET, "/ui/api/v1/namespaces"),
            (M::GET, "/ui/api/v1/namespaces/demo/secrets"),
            (M::PUT, "/ui/api/v1/namespaces/demo/secrets/stolen"),
            (M::DELETE, "/ui/api/v1/namespaces/demo/secrets/kept"),
            (M::GET, "/ui/metrics"),
        ] {
            let (status, body) = answer(
                ui_request(&server, method.clone(), path, &session, header)
                    .header("content-type", "text/plain")
                    .body("value-2"),
            )
            .await;
            assert_eq!(status, 403, "{method} {path} csrf {header:?}: {body}");
            assert_eq!(body["error"]["code"], "faasbox.auth.csrf", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("X-Faasbox-Csrf") && message.contains("Bearer"),
                "{message}"
            );
        }
    }
    assert_eq!(
        secret_names(&server, "demo").await,
        ["kept"],
        "nothing changed"
    );
    // The CSRF token without the cookie is nothing either.
    let (status, body) = answer(
        browser()
            .get(server.url("/ui/api/v1/namespaces"))
            .header("x-faasbox-csrf", &session.csrf),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "faasbox.auth.session");
    // Another session's CSRF token does not fit this session.
    let other = sign_in(&server, &server.token).await;
    let (status, _) = answer(ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces",
        &session,
        Some(&other.csrf),
    ))
    .await;
    assert_eq!(status, 403);
    // The cookie counts only on /ui/api: /api wants a bearer token.
    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        "/api/v1/namespaces",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "faasbox.auth.missing");
    // A bearer token works on /ui/api too.
    let (status, _) =
        answer(client_with_token(Some(&server.token)).get(server.url("/ui/api/v1/namespaces")))
            .await;
    assert_eq!(status, 200);
    let (status, _) =
        answer(client_with_token(Some("fbx_wrong")).get(server.url("/ui/api/v1/namespaces"))).await;
    assert_eq!(status, 401);

    // Deleting through the UI with the header works.
    let (status, _) = answer(ui_request(
        &server,
        M::DELETE,
        "/ui/api/v1/namespaces/demo/secrets/kept",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 204);
    assert!(secret_names(&server, "demo").await.is_empty());
}

#[tokio::test]
async fn signing_out_and_deleting_the_token_end_sessions() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    use reqwest::Method as M;

    // Sign-out needs the CSRF header; then the cookie is cleared and the old one is 401.
    let session = sign_in(&server, &server.token).await;
    let (status, body) = answer(ui_request(
        &server,
        M::DELETE,
        "/ui/session",
        &session,
        None,
    ))
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "faasbox.auth.csrf");
    let r = ui_request(
        &server,
        M::DELETE,
        "/ui/session",
        &session,
        Some(&session.csrf),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cleared.starts_with("faasbox_session=;"), "{cleared}");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Path=/ui"),
        "{cleared}"
    );
    for (method, path) in [(M::GET, "/ui/session"), (M::GET, "/ui/api/v1/namespaces")] {
        let (status, body) = answer(ui_request(
            &server,
            method,
            path,
            &session,
            Some(&session.csrf),
        ))
        .await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "faasbox.auth.session");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/ui/signin"));
    }

    // A namespace token's session ends when the token is deleted.
    let token = create_token(&server, "demo", "admin", "laptop");
    let session = sign_in(&server, &token).await;
    assert_eq!(
        session.body["principal"],
        json!({"kind": "namespace", "namespace": "demo", "role": "admin"})
    );
    assert_eq!(session.body["token_name"], "laptop");
    let path = "/ui/api/v1/namespaces/demo/secrets";
    let (status, _) = answer(ui_request(
        &server,
        M::GET,
        path,
        &session,
        Some(&session.csrf),
    ))
    .await;
    assert_eq!(status, 200);
    let tokens = server.get_json("/api/v1/tokens").await;
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "laptop")
        .and_then(|t| t["id"].as_str())
        .expect("the token is listed")
        .to_string();
    let r = server.delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(r.status(), 204);
    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        path,
        &session,
        Some(&session.csrf),
    ))
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "faasbox.auth.session");
    let (status, _) = answer(ui_request(&server, M::GET, "/ui/session", &session, None)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_namespace_tokens_session_sees_its_namespace_only() {
    let server = server_with_test_function().await;
    server.create_namespace("other").await;
    deploy_mode(&server, "echo", "plain", json!({})).await;
    server
        .deploy(
            "other",
            "hidden",
            json!({"image": "test/function:latest", "envs": {"MODE": "plain"}}),
        )
        .await;
    let token = create_token(&server, "demo", "admin", "demo-admin");
    let session = sign_in(&server, &token).await;
    let csrf = Some(session.csrf.as_str());
    use reqwest::Method as M;

    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces/demo/functions",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("echo"), "{body}");
    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces/other/functions",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces/other/functions/hidden",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 404, "{body}");
    // Only its own namespace is listed.
    let (status, body) = answer(ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces",
        &session,
        csrf,
    ))
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["demo"]);
    // Admin paths: 403.
    for path in ["/ui/api/v1/tokens", "/ui/metrics"] {
        let (status, body) = answer(ui_request(&server, M::GET, path, &session, csrf)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "faasbox.auth.forbidden", "{body}");
    }
    let (status, _) = answer(
        ui_request(&server, M::POST, "/ui/api/v1/namespaces", &session, csrf)
            .json(&json!({"name": "mine"})),
    )
    .await;
    assert_eq!(status, 403);

    // Live logs (SSE) through /ui/api: the stream opens with the session.
    let r = ui_request(
        &server,
        M::GET,
        "/ui/api/v1/namespaces/demo/functions/echo/logs?follow=true",
        &session,
        csrf,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        r.headers()
    );
    drop(r);
}

#[tokio::test]
async fn gateway_answers_are_sandboxed_and_functions_never_get_the_session_cookie() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "echo", "plain", json!({})).await;
    server
        .create_route(
            "demo",
            "echo",
            json!({"path": "/echo", "target": {"function": "echo"}}),
        )
        .await;
    let session = sign_in(&server, &server.token).await;
    let r = browser()
        .post(server.url("/ns/demo/echo?x=1"))
        .header("content-type", "application/json")
        .header(
            "cookie",
            format!("theme=dark; faasbox_session={}; lang=en", session.id),
        )
        .body(r#"{"hello":"route"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let policies: Vec<&str> = r
        .headers()
        .get_all("content-security-policy")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        policies,
        ["sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"]
    );
    let run = r.headers()["faasbox-invocation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"hello": "route"}));
    let record = server.run_record("demo", &run).await;
    let headers = &record["http_context"]["headers"];
    assert_eq!(headers["cookie"], "theme=dark; lang=en", "{record}");
    assert!(!record.to_string().contains(&session.id), "{record}");

    // Refusals of the gateway are sandboxed too.
    let r = browser()
        .get(server.url("/ns/demo/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["content-security-policy"],
        "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
    );
    // The UI's own answers keep the UI's policy.
    let r = browser().get(server.url("/ui/")).send().await.unwrap();
    let policy = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
}

#[tokio::test]
async fn sessions_end_when_idle_longer_than_the_setting_and_the_settings_apply() {
    let server = Server::start_with(&[
        "--ui-idle-minutes",
        "1",
        "--ui-session-hours",
        "1",
        "--ui-secure-cookie",
    ])
    .await;
    let session = sign_in(&server, &server.token).await;
    let attributes: Vec<&str> = session.set_cookie.split("; ").collect();
    assert!(attributes.contains(&"Max-Age=3600"), "{attributes:?}");
    assert!(attributes.contains(&"Secure"), "{attributes:?}");
    let use_it = || {
        answer(ui_request(
            &server,
            reqwest::Method::GET,
            "/ui/api/v1/namespaces",
            &session,
            Some(&session.csrf),
        ))
    };
    // Used every 35 s: alive past the idle minute (each use restarts it).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(35)).await;
        let (status, body) = use_it().await;
        assert_eq!(status, 200, "{body}");
    }
    // Then unused for more than a minute: ended.
    tokio::time::sleep(Duration::from_secs(62)).await;
    let (status, body) = use_it().await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "faasbox.auth.session");
}

/// A web action answering, as a raw response with a policy of its own, the parameters the
/// route gave it (its `__ow_headers` are the headers it got).
const POLICY_ACTION: &str = r#"#!/bin/sh
input="$1"
[ -n "$input" ] || input=$(cat)
printf '{"statusCode":200,"headers":{"Content-Security-Policy":"default-src %s"},"body":%s}\n' "'none'" "$input"
"#;

#[tokio::test]
async fn a_web_actions_own_policy_stays_beside_the_sandbox_and_it_never_sees_the_session() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = support::images::rootfs_tar_with(&[]);
    let r = server
        .import(
            &tar,
            "test/plain:latest",
            &[("entrypoint", "[\"/bin/sh\"]")],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let spec = json!({"image": "test/plain:latest", "contract": "openwhisk",
                      "code": POLICY_ACTION, "timeout": "30s"});
    server.deploy("demo", "policy", spec).await;
    server
        .create_route(
            "demo",
            "page",
            json!({"path": "/page", "target": {"function": "policy"}, "raw_response": true}),
        )
        .await;
    let session = sign_in(&server, &server.token).await;
    let r = browser()
        .get(server.url("/ns/demo/page"))
        .header(
            "cookie",
            format!("faasbox_session={}; theme=dark", session.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut policies: Vec<String> = r
        .headers()
        .get_all("content-security-policy")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    policies.sort();
    assert_eq!(
        policies,
        [
            "default-src 'none'",
            "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
        ]
    );
    let params: Value = r.json().await.unwrap();
    assert_eq!(params["__ow_headers"]["cookie"], "theme=dark", "{params}");
    assert!(!params.to_string().contains(&session.id), "{params}");
}

/// Sessions are kept in the store: the server stopped and started again on its data
/// directory still knows a session, and one signed out is still gone.
#[tokio::test]
async fn a_session_outlives_a_restart_of_the_server() {
    let mut server = Server::start().await;
    let kept = sign_in(&server, &server.token).await;
    let ended = sign_in(&server, &server.token).await;
    let (status, _) = answer(ui_request(
        &server,
        reqwest::Method::DELETE,
        "/ui/session",
        &ended,
        Some(&ended.csrf),
    ))
    .await;
    assert_eq!(status, 204);
    assert!(server.stop(), "the server stopped cleanly");
    let data_dir = server.data_dir.clone();
    let restarted = Server::start_in(&data_dir).await;
    let (status, body) = answer(ui_request(
        &restarted,
        reqwest::Method::GET,
        "/ui/api/v1/namespaces",
        &kept,
        Some(&kept.csrf),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = answer(ui_request(
        &restarted,
        reqwest::Method::GET,
        "/ui/api/v1/namespaces",
        &ended,
        Some(&ended.csrf),
    ))
    .await;
    assert_eq!(status, 401, "{body}");
    drop(server);
}
