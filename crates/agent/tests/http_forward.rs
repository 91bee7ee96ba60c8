//! The agent binary forwarding the HTTP request behind a call (a call through a route: a
//! `CallEnvelope` with `http`) to a Direktiv HTTP function: the caller's headers and
//! `Faasbox-Http-Method/Path/Query` on its `POST /`, never a header that would forge the
//! platform's own (`Direktiv-*`, `Faasbox-*`, `content-type`).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use bytes::Bytes;
use faasbox_proto::{InvokeOutcome, InvokeStatus, HEADER_CALL_FILES};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use support::{free_port, Options, TestAgent, DEADLINE};

/// A CGI that answers what it was sent: the request's forwarded headers, as JSON.
const REPORTER: &str = r#"#!/bin/busybox sh
printf 'Content-Type: application/json\r\n\r\n'
printf '{"method":"%s","path":"%s","query":"%s","event":"%s","signature":"%s","aid":"%s","content_type":"%s","forged":"%s","input":%s}' \
  "$HTTP_FAASBOX_HTTP_METHOD" "$HTTP_FAASBOX_HTTP_PATH" "$HTTP_FAASBOX_HTTP_QUERY" \
  "$HTTP_X_GITHUB_EVENT" "$HTTP_X_HUB_SIGNATURE_256" "$HTTP_DIREKTIV_ACTIONID" \
  "$CONTENT_TYPE" "$HTTP_FAASBOX_SECRET" "$(/bin/busybox cat)"
"#;

/// An agent whose function is busybox httpd serving [`REPORTER`].
async fn reporter_agent() -> (TestAgent, tempfile::TempDir) {
    let www = tempfile::tempdir().unwrap();
    fs::set_permissions(www.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cgi_dir = www.path().join("cgi-bin");
    fs::create_dir_all(&cgi_dir).unwrap();
    let cgi = cgi_dir.join("index.cgi");
    fs::write(&cgi, REPORTER).unwrap();
    fs::set_permissions(&cgi, fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let agent = TestAgent::start_with(Options {
        command: Some(vec![
            "/bin/busybox".into(),
            "httpd".into(),
            "-f".into(),
            "-p".into(),
            format!("127.0.0.1:{port}"),
            "-h".into(),
            www.path().display().to_string(),
        ]),
        config: json!({"function_port": port}),
        ..Options::default()
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    (agent, www)
}

async fn invoke_envelope(agent: &TestAgent, aid: &str, envelope: Value) -> Value {
    let request = Request::post("http://agent/v1/invoke")
        .header("faasbox-action-id", aid)
        .header("faasbox-deadline", DEADLINE)
        .header(HEADER_CALL_FILES, "1")
        .body(Full::new(Bytes::from(envelope.to_string())))
        .unwrap();
    let (status, body) = agent.request(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let outcome: InvokeOutcome = serde_json::from_slice(&body).unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    serde_json::from_str(outcome.output.unwrap().get()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_function_sees_the_callers_request_but_never_forged_platform_headers() {
    let (agent, _www) = reporter_agent().await;
    let seen = invoke_envelope(
        &agent,
        "routed-1",
        json!({
            "input": {"ref": "refs/heads/main"},
            "http": {
                "method": "POST",
                "path": "/hooks/github",
                "query": "source=test&x=%20",
                "headers": [
                    ["x-github-event", "push"],
                    ["x-hub-signature-256", "sha256=abc"],
                    ["direktiv-actionid", "forged-aid"],
                    ["Faasbox-Http-Method", "GET"],
                    ["faasbox-secret", "forged"],
                    ["content-type", "text/forged"],
                    ["connection", "close"],
                    ["bad header name", "dropped"],
                ],
            },
        }),
    )
    .await;
    assert_eq!(
        seen,
        json!({
            "method": "POST",
            "path": "/hooks/github",
            "query": "source=test&x=%20",
            "event": "push",
            "signature": "sha256=abc",
            "aid": "routed-1",
            "content_type": "application/json",
            "forged": "",
            "input": {"ref": "refs/heads/main"},
        })
    );

    // Without a request behind it (an envelope with files only, or a plain call) nothing is
    // forwarded.
    let seen = invoke_envelope(&agent, "plain-1", json!({"files": [], "input": 7})).await;
    assert_eq!(
        (
            &seen["method"],
            &seen["path"],
            &seen["event"],
            &seen["input"]
        ),
        (&json!(""), &json!(""), &json!(""), &json!(7))
    );
}
