//! What a function gets through an HTTP route and what the caller gets back, end to end with a
//! real server and runc (`docs/ROUTES.md`, "The HTTP context" and step 7): OpenWhisk web
//! actions (busybox sh) answering HTML with 201 and `Location`, a base64 image, and seeing
//! form, text and JSON bodies, the query and the path as `__ow_*` parameters; a Direktiv HTTP
//! function seeing the caller's headers and `Faasbox-Http-*`, blocking and async, never a
//! forged platform header; a function built from code getting `context.httpContext`.

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{images, wait_for, Server};

/// A web action answering an HTML page that says it made an order: 201 with `Location`.
const PAGE_ACTION: &str = r#"#!/bin/sh
printf '%s\n' '{"statusCode":201,"headers":{"Location":"/ns/demo/orders/7","Content-Type":"text/html; charset=utf-8"},"body":"<!doctype html><h1>Order 7 made</h1>"}'
"#;

/// A web action answering its parameters (what the route gave it) as JSON.
const PARAMS_ACTION: &str = r#"#!/bin/sh
input="$1"
[ -n "$input" ] || input=$(cat)
printf '{"params":%s}\n' "$input"
"#;

/// Bytes like a PNG's: its signature, a NUL, bytes that are not UTF-8, line ends.
const IMAGE: [u8; 16] = [
    0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 0x0d, 0xff, 0xfe, 0x80, b'\n',
];

/// A web action answering [`IMAGE`] base64-encoded; `@BASE64@` is filled in.
const IMAGE_ACTION: &str = r#"#!/bin/sh
printf '%s\n' '{"headers":{"Content-Type":"image/png","Cache-Control":"max-age=60"},"body":"@BASE64@","isBase64Encoded":true}'
"#;

/// A Direktiv HTTP function (busybox httpd CGI) answering what reached it: the forwarded
/// request's headers and the input.
const REPORTER_CGI: &str = r#"#!/bin/sh
input=$(cat)
printf 'Content-Type: application/json\r\n\r\n'
printf '{"method":"%s","path":"%s","query":"%s","event":"%s","signature":"%s","accept":"%s","action_id":"%s","content_type":"%s","forged":"%s","input":%s}' \
  "$HTTP_FAASBOX_HTTP_METHOD" "$HTTP_FAASBOX_HTTP_PATH" "$HTTP_FAASBOX_HTTP_QUERY" \
  "$HTTP_X_GITHUB_EVENT" "$HTTP_X_HUB_SIGNATURE_256" "$HTTP_ACCEPT" "$HTTP_DIREKTIV_ACTIONID" \
  "$CONTENT_TYPE" "$HTTP_FAASBOX_FORGED" "$input"
"#;

/// Sends `request`: (status, headers, body bytes).
async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = request.send().await.expect("the request is sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("the body").to_vec();
    (status, headers, bytes)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no header {name} in {headers:?}"))
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// A server with namespace `demo` and the image `test/plain:latest` (busybox, entrypoint sh)
/// that OpenWhisk actions given as code run in.
async fn openwhisk_server() -> (Server, tempfile::TempDir) {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (dir, tar) = images::rootfs_tar_with(&[]);
    let r = server
        .import(
            &tar,
            "test/plain:latest",
            &[("entrypoint", "[\"/bin/sh\"]")],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    (server, dir)
}

async fn deploy_action(server: &Server, name: &str, code: &str) {
    let spec = json!({"image": "test/plain:latest", "contract": "openwhisk", "code": code,
                      "timeout": "30s"});
    server.deploy("demo", name, spec).await;
}

#[tokio::test]
async fn web_actions_answer_html_and_images_as_they_say() {
    let (server, _dir) = openwhisk_server().await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(IMAGE);
    deploy_action(&server, "page", PAGE_ACTION).await;
    deploy_action(
        &server,
        "image",
        &IMAGE_ACTION.replace("@BASE64@", &encoded),
    )
    .await;
    for (name, path, function) in [("page", "/orders", "page"), ("logo", "/logo.png", "image")] {
        server
            .create_route(
                "demo",
                name,
                json!({"path": path, "target": {"function": function}, "raw_response": true}),
            )
            .await;
    }
    let public = server.public_client();

    let (status, headers, body) = send(
        public
            .post(server.url("/ns/demo/orders"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("item=book&count=1"),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "location"), "/ns/demo/orders/7");
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(body, b"<!doctype html><h1>Order 7 made</h1>");
    assert!(headers.contains_key("faasbox-invocation-id"), "{headers:?}");

    let (status, headers, body) = send(public.get(server.url("/ns/demo/logo.png"))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert_eq!(header(&headers, "cache-control"), "max-age=60");
    assert_eq!(body, IMAGE, "the image's bytes exactly");

    // The same image action on a route without raw responses: its output as JSON.
    server
        .create_route(
            "demo",
            "logo-json",
            json!({"path": "/logo.json", "target": {"function": "image"}}),
        )
        .await;
    let (status, headers, body) = send(public.get(server.url("/ns/demo/logo.json"))).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(json_of(&body)["body"], encoded.as_str());

    // An output that is not a raw response is a 502 that tells the public nothing inside.
    server
        .create_route(
            "demo",
            "bad",
            json!({"path": "/bad", "target": {"function": "image"}, "raw_response": true}),
        )
        .await;
    deploy_action(&server, "image", "#!/bin/sh\necho '{\"result\": 1}'\n").await;
    let (status, _, body) = send(public.get(server.url("/ns/demo/bad"))).await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    let error = json_of(&body);
    assert!(error["error"]["run"].is_string(), "{error}");
    assert!(!error.to_string().contains("result"), "{error}");
}

#[tokio::test]
async fn web_actions_see_form_text_and_json_bodies_the_query_and_the_path() {
    let (server, _dir) = openwhisk_server().await;
    deploy_action(&server, "params", PARAMS_ACTION).await;
    server
        .create_route(
            "demo",
            "orders",
            json!({"path": "/orders/{id}", "target": {"function": "params"}}),
        )
        .await;
    let public = server.public_client();
    let url = server.url("/ns/demo/orders/42?page=2&q=a%20b");

    // A form: its fields (a repeated one an array) on top of the query's.
    let (status, headers, body) = send(
        public
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-custom", "yes")
            .body("name=J%C3%BCrgen+M&tag=a&tag=b&page=from-form"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let params = &json_of(&body)["params"];
    assert_eq!(params["name"], "Jürgen M", "{params}");
    assert_eq!(params["tag"], json!(["a", "b"]), "{params}");
    assert_eq!(params["page"], "from-form", "the body wins over the query");
    assert_eq!(params["q"], "a b");
    assert_eq!(params["__ow_method"], "post");
    assert_eq!(params["__ow_path"], "/orders/42");
    assert_eq!(params["__ow_query"], "page=2&q=a%20b");
    assert_eq!(params["__ow_headers"]["x-custom"], "yes");
    assert_eq!(
        params["__ow_headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(params.get("__ow_body").is_none(), "{params}");
    // The run keeps the context, with the path's parameters.
    let id = header(&headers, "faasbox-invocation-id").to_string();
    let record = server.run_record("demo", &id).await;
    assert_eq!(
        record["http_context"]["params"],
        json!({"id": "42"}),
        "{record}"
    );
    assert_eq!(record["http_context"]["method"], "POST");

    // Text: `__ow_body`, base64.
    let (status, _, body) = send(
        public
            .put(server.url("/ns/demo/orders/7"))
            .header("content-type", "text/plain; charset=utf-8")
            .body("hello, text ✓"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let params = &json_of(&body)["params"];
    assert_eq!(params["__ow_method"], "put");
    assert_eq!(params["__ow_path"], "/orders/7");
    assert_eq!(params["__ow_query"], "");
    let text = base64::engine::general_purpose::STANDARD
        .decode(params["__ow_body"].as_str().expect("__ow_body"))
        .expect("base64");
    assert_eq!(text, "hello, text ✓".as_bytes());

    // JSON: an object's fields are parameters; anything else is `__ow_body` as its text.
    let (status, _, body) = send(
        public
            .patch(&url)
            .header("content-type", "application/json")
            .body(r#"{"count": 3, "nested": {"a": [1]}}"#),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let params = &json_of(&body)["params"];
    assert_eq!(
        (&params["count"], &params["nested"]),
        (&json!(3), &json!({"a": [1]}))
    );
    let (status, _, body) = send(
        public
            .post(&url)
            .header("content-type", "application/json")
            .body("[1, 2]"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["params"]["__ow_body"], "[1, 2]");

    // JSON that does not parse never reaches the function: 400 with the reason.
    let before = server.run_count("demo").await;
    let (status, _, body) = send(
        public
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"broken\": "),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("JSON"));
    assert_eq!(server.run_count("demo").await, before);
}

#[tokio::test]
async fn a_direktiv_http_function_sees_the_callers_request() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", REPORTER_CGI, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "test/reporter:latest", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server
        .deploy("demo", "reporter", json!({"image": "test/reporter:latest"}))
        .await;
    server
        .create_route(
            "demo",
            "hooks",
            json!({"path": "/hooks/{source}", "methods": ["POST"],
                   "target": {"function": "reporter"}}),
        )
        .await;
    let public = server.public_client();
    let request = || {
        public
            .post(server.url("/ns/demo/hooks/github?delivery=1&x=%20"))
            .header("content-type", "application/json")
            .header("accept", "application/vnd.github+json")
            .header("x-github-event", "push")
            .header("x-hub-signature-256", "sha256=abc")
            .header("direktiv-actionid", "forged")
            .header("faasbox-http-method", "GET")
            .header("faasbox-forged", "yes")
            .body(r#"{"ref": "refs/heads/main"}"#)
    };
    let expected = |action_id: &str| {
        json!({
            "method": "POST",
            "path": "/hooks/github",
            "query": "delivery=1&x=%20",
            "event": "push",
            "signature": "sha256=abc",
            "accept": "application/vnd.github+json",
            "action_id": action_id,
            "content_type": "application/json",
            "forged": "",
            "input": {"ref": "refs/heads/main"},
        })
    };

    let (status, headers, body) = send(request()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let id = header(&headers, "faasbox-invocation-id").to_string();
    assert_eq!(json_of(&body), expected(&id));

    // Async: the stored run forwards the same request when it runs.
    let (status, _, body) = send(request().header("x-faasbox-blocking", "false")).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let id = json_of(&body)["id"].as_str().expect("an id").to_string();
    let record = wait_for(
        Duration::from_secs(60),
        "the async run ends",
        || server.run_record("demo", &id),
        |r| r["status"] != "queued" && r["status"] != "running",
    )
    .await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["output"], expected(&id), "{record}");
}

/// A shell function built from code: its payload and its context, as JSON.
const CONTEXT_SCRIPT: &str = r#"#!/bin/sh
payload=$(cat)
printf '{"payload":%s,"context":%s}\n' "$payload" "$FAASBOX_CONTEXT"
"#;

#[tokio::test]
async fn a_function_built_from_code_gets_the_http_context() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    // The shell language needs only `/bin/sh`: busybox is enough (no Debian root filesystem).
    let (_dir, tar) = images::rootfs_tar_with(&[]);
    let tar = tar.to_str().expect("utf-8 path");
    server.cli_ok(&["image", "import", tar, "--name", "busybox-sh", "-n", "demo"]);
    server.cli_ok(&[
        "base-image",
        "create",
        "sh-base",
        "busybox-sh",
        "--language",
        "shell",
        "-n",
        "demo",
    ]);
    let src = tempfile::tempdir().expect("tempdir");
    let script = src.path().join("run.sh");
    std::fs::write(&script, CONTEXT_SCRIPT).expect("write");
    let made = server.cli_ok(&[
        "fn",
        "create",
        "demo/ctx",
        script.to_str().expect("utf-8 path"),
        "--image",
        "sh-base",
        "--handler",
        "run.sh",
    ]);
    assert!(made.contains("READY"), "{made}");
    server
        .create_route(
            "demo",
            "ctx",
            json!({"path": "/items/{item}", "target": {"function": "ctx"}}),
        )
        .await;
    let (status, headers, body) = send(
        server
            .public_client()
            .post(server.url("/ns/demo/items/42?color=red"))
            .header("content-type", "application/json")
            .header("x-request-id", "abc-1")
            .body(r#"{"want": 2}"#),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let got = json_of(&body);
    assert_eq!(got["payload"], json!({"want": 2}), "{got}");
    let http = &got["context"]["httpContext"];
    assert_eq!(http["route"], "ctx", "{got}");
    assert_eq!(http["method"], "POST");
    assert_eq!(http["path"], "/items/42");
    assert_eq!(http["params"], json!({"item": "42"}));
    assert_eq!(http["rawQuery"], "color=red");
    assert_eq!(http["query"], json!({"color": "red"}));
    assert_eq!(http["headers"]["x-request-id"], "abc-1");
    assert!(http["remoteAddr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    // The run's record keeps the same context.
    let id = header(&headers, "faasbox-invocation-id").to_string();
    let record = server.run_record("demo", &id).await;
    assert_eq!(&record["http_context"], http, "{record}");
}
