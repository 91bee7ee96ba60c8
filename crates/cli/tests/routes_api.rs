//! Managing HTTP routes (issue 16) on a real server: the API (`/api/v1/namespaces/{ns}/routes`)
//! creates, replaces, patches, disables, lists and deletes them; every invalid route is 400
//! naming the field and stores nothing; credentials never appear in an answer, the server's
//! log or the database; a host of one namespace is 409 for another; the token rules hold;
//! Dispatch's `/v1/api` and the CLI (`faasbox route …`) round-trip.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{client_with_token, contains_bytes, send, Server};

const PASSWORD: &str = "Pa55-w0rd-9f3c1e";
const KEY: &str = "key-7d41c0ffee51a2b9";
const ORG: &str = "x-dispatch-org";

const ROUTES: &str = "/api/v1/namespaces/demo/routes";

/// Asserts no credential (nor a hash of one) is in `text`.
fn no_credential(what: &str, text: &str) {
    for secret in [PASSWORD, KEY, "$argon2", &sha256_hex(KEY)] {
        assert!(!text.contains(secret), "{what} holds a credential: {text}");
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn put(server: &Server, name: &str, body: Value) -> (u16, Value) {
    send(
        &server.http,
        server,
        Method::PUT,
        &format!("{ROUTES}/{name}"),
        Some(body),
    )
    .await
}

async fn patch(server: &Server, name: &str, body: Value) -> (u16, Value) {
    send(
        &server.http,
        server,
        Method::PATCH,
        &format!("{ROUTES}/{name}"),
        Some(body),
    )
    .await
}

async fn server() -> Server {
    let server = Server::start_with(&["--blocking-timeout", "60s"]).await;
    server.create_namespace("demo").await;
    server.create_namespace("other").await;
    let r = server
        .http
        .put(server.url("/api/v1/namespaces/demo/secrets/github-hook"))
        .body("hook-secret-value")
        .send()
        .await
        .expect("PUT secret");
    assert_eq!(r.status(), 201);
    server
}

#[tokio::test]
async fn routes_are_created_patched_listed_and_deleted_without_showing_credentials() {
    let server = server().await;
    let (status, view) = put(
        &server,
        "hook",
        json!({"path": "/hooks/{id}", "methods": ["post"], "target": {"function": "echo"},
               "auth": {"kind": "basic", "users": {"alice": PASSWORD}},
               "hosts": ["Hooks.Example.com"], "limits": {"rate_per_second": 2, "timeout_seconds": 60}}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    no_credential("the created view", &view.to_string());
    assert_eq!(view["auth"], json!({"kind": "basic", "users": ["alice"]}));
    assert_eq!(view["methods"], json!(["POST"]));
    assert_eq!(
        view["urls"],
        json!(["/ns/demo/hooks/{id}", "http://hooks.example.com/hooks/{id}"])
    );
    assert_eq!(view["enabled"], true);
    let created = view["created"].clone();

    // Replaced: 200, created kept.
    let (status, view) = put(
        &server,
        "hook",
        json!({"path": "/hooks/{id}", "methods": ["POST"], "target": {"function": "echo"},
               "auth": {"kind": "basic", "users": {"alice": PASSWORD, "bob": PASSWORD}}}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["created"], created);
    assert_eq!(view["auth"]["users"], json!(["alice", "bob"]));
    assert_eq!(view["hosts"], json!([]));

    // Disabled with a patch; the auth stays.
    let (status, view) = patch(&server, "hook", json!({"enabled": false})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["enabled"], false);
    assert_eq!(view["auth"]["users"], json!(["alice", "bob"]));
    // An auth given replaces it, credentials in clear.
    let (status, view) = patch(
        &server,
        "hook",
        json!({"auth": {"kind": "api-key", "query": "api_key", "keys": {"ci": KEY}}, "enabled": true}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["auth"],
        json!({"kind": "api-key", "keys": ["ci"], "header": "X-API-Key", "query": "api_key"})
    );
    no_credential("the patched view", &view.to_string());

    let (status, view) = put(
        &server,
        "github",
        json!({"path": "/hooks/github", "methods": ["POST"], "target": {"flow": "/ci/push"},
               "auth": {"kind": "hmac-sha256", "secret": "github-hook"}}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["target"], json!({"flow": "ci/push"}));
    assert_eq!(
        view["auth"],
        json!({"kind": "hmac-sha256", "secret": "github-hook",
               "header": "X-Hub-Signature-256", "prefix": "sha256="})
    );

    let listed = server.get_json(ROUTES).await;
    let names: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["github", "hook"]);
    no_credential("the listing", &listed.to_string());
    let one = server.get_json(&format!("{ROUTES}/hook")).await;
    no_credential("GET", &one.to_string());

    // The same pattern (parameter names aside) with a method in common is a conflict.
    let (status, e) = put(
        &server,
        "hook2",
        json!({"path": "/hooks/{other}", "target": {"function": "echo"}}),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("demo/hook")),
        "{e}"
    );
    let (status, e) = put(
        &server,
        "hook2",
        json!({"path": "/hooks/{other}", "methods": ["GET"], "target": {"function": "echo"}}),
    )
    .await;
    assert_eq!(status, 201, "{e}");

    assert_eq!(
        server.delete(&format!("{ROUTES}/hook2")).await.status(),
        204
    );
    assert_eq!(server.get(&format!("{ROUTES}/hook2")).await.status(), 404);
    let again = server.delete(&format!("{ROUTES}/hook2")).await;
    assert_eq!(again.status(), 404);
    let text = again.text().await.unwrap_or_default();
    assert!(text.contains("faasbox route create"), "{text}");

    // Nothing in the log nor the database holds a credential in clear.
    no_credential("the server's log", &server.log());
    let db = server.database_bytes();
    assert!(!contains_bytes(&db, PASSWORD.as_bytes()));
    assert!(!contains_bytes(&db, KEY.as_bytes()));
}

#[tokio::test]
async fn every_invalid_route_is_400_naming_the_field_and_stores_nothing() {
    let server = server().await;
    let target = json!({"function": "echo"});
    let cases = [
        (json!({"path": "hooks", "target": target}), "`path`"),
        (json!({"path": "/a//b", "target": target}), "`path`"),
        (json!({"path": "/a/*/b", "target": target}), "`path`"),
        (
            json!({"path": "/a/{Id}", "target": target}),
            "path parameter",
        ),
        (
            json!({"path": "/x", "methods": ["FETCH"], "target": target}),
            "`methods`",
        ),
        (
            json!({"path": "/x", "hosts": ["example.com:80"], "target": target}),
            "`hosts`",
        ),
        (
            json!({"path": "/api/x", "hosts": ["example.com"], "target": target}),
            "cannot take a path under /api",
        ),
        (
            json!({"path": "/x", "target": {"function": "Bad Name"}}),
            "`target.function`",
        ),
        (
            json!({"path": "/x", "target": {"flow": "a//b"}}),
            "`target.flow`",
        ),
        (
            json!({"path": "/x", "target": target, "auth": {"kind": "basic", "users": {"alice": "short"}}}),
            "`auth.users.alice`",
        ),
        (
            json!({"path": "/x", "target": target, "auth": {"kind": "api-key", "keys": {"ci": "too-short"}}}),
            "`auth.keys.ci`",
        ),
        (
            json!({"path": "/x", "target": target, "auth": {"kind": "basic", "users": {}}}),
            "`auth.users`",
        ),
        (
            json!({"path": "/x", "target": target, "auth": {"kind": "hmac-sha256", "secret": "missing"}}),
            "`auth.secret`",
        ),
        (
            json!({"path": "/x", "target": target, "auth": {"kind": "slack", "secret": "github-hook", "max_age_seconds": 0}}),
            "`auth.max_age_seconds`",
        ),
        (
            json!({"path": "/x", "target": target, "auth": {"kind": "magic"}}),
            "`auth.kind`",
        ),
        (
            json!({"path": "/x", "target": target, "cors": {"origins": ["example.com"]}}),
            "`cors.origins`",
        ),
        (
            json!({"path": "/x", "target": target, "limits": {"max_body_bytes": 64u64 * 1024 * 1024 + 1}}),
            "`limits.max_body_bytes`",
        ),
        (
            json!({"path": "/x", "target": target, "limits": {"rate_per_second": 0}}),
            "`limits.rate_per_second`",
        ),
        (
            json!({"path": "/x", "target": target, "limits": {"rate_per_second": 1, "burst": 10001}}),
            "`limits.burst`",
        ),
        (
            json!({"path": "/x", "target": target, "limits": {"timeout_seconds": 61}}),
            "`limits.timeout_seconds`",
        ),
        (
            json!({"path": "/x", "target": target, "color": "red"}),
            "unknown field `color`",
        ),
        (json!({"target": target}), "missing field `path`"),
    ];
    for (body, field) in cases {
        let (status, e) = put(&server, "bad", body.clone()).await;
        assert_eq!(status, 400, "{body}: {e}");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{body}: {message}");
        assert!(!message.contains("short"), "{body}: {message}");
    }
    let (status, e) = put(&server, "Bad_Name", json!({"path": "/x", "target": target})).await;
    assert_eq!(status, 400, "{e}");
    // A patch is checked the same way, and the route stays as it was. (The route is sent as
    // `curl -d` sends it: the form Content-Type, read as JSON like every JSON route's body.)
    let r = server
        .http
        .put(server.url(&format!("{ROUTES}/ok")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(json!({"path": "/ok", "target": target}).to_string())
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 201);
    let (status, e) = patch(&server, "ok", json!({"path": "/a//b"})).await;
    assert_eq!(status, 400, "{e}");
    let (status, e) = patch(&server, "ok", json!({"enabled": "no"})).await;
    assert_eq!(status, 400, "{e}");
    let (status, e) = patch(&server, "missing", json!({"enabled": false})).await;
    assert_eq!(status, 404, "{e}");
    let listed = server.get_json(ROUTES).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["path"], "/ok");
}

#[tokio::test]
async fn hosts_belong_to_one_namespace_and_tokens_keep_to_theirs() {
    let server = server().await;
    let body = json!({"path": "/", "hosts": ["shop.example.com"], "target": {"function": "site"}});
    let (status, view) = put(&server, "site", body.clone()).await;
    assert_eq!(status, 201, "{view}");
    let (status, e) = send(
        &server.http,
        &server,
        Method::PUT,
        "/api/v1/namespaces/other/routes/site",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("shop.example.com"), "{message}");
    assert!(
        !message.contains("demo"),
        "another namespace's name leaked: {message}"
    );
    // A disabled route still holds its host.
    let (status, _) = patch(&server, "site", json!({"enabled": false})).await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &server.http,
        &server,
        Method::PUT,
        "/api/v1/namespaces/other/routes/site",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 409);

    let token = |args: &[&str]| {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(args);
        server.cli_ok(&all).trim().to_string()
    };
    let other_admin = client_with_token(Some(&token(&["-n", "other", "--role", "admin"])));
    let demo_invoke = client_with_token(Some(&token(&["-n", "demo", "--role", "invoke"])));
    let demo_admin = client_with_token(Some(&token(&["-n", "demo", "--role", "admin"])));
    // Another namespace's token: as if the namespace did not exist.
    for (method, path) in [
        (Method::GET, ROUTES.to_string()),
        (Method::GET, format!("{ROUTES}/site")),
        (Method::PUT, format!("{ROUTES}/x")),
        (Method::DELETE, format!("{ROUTES}/site")),
    ] {
        let (status, e) = send(&other_admin, &server, method, &path, Some(body.clone())).await;
        assert_eq!(status, 404, "{path}: {e}");
    }
    // An invoke token reads, changes nothing.
    let (status, listed) = send(&demo_invoke, &server, Method::GET, ROUTES, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["name"], "site");
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let (status, e) = send(
            &demo_invoke,
            &server,
            method,
            &format!("{ROUTES}/site"),
            Some(json!({"enabled": true})),
        )
        .await;
        assert_eq!(status, 403, "{e}");
    }
    // A namespace admin manages them.
    let (status, view) = send(
        &demo_admin,
        &server,
        Method::PATCH,
        &format!("{ROUTES}/site"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(server.delete(&format!("{ROUTES}/site")).await.status(), 204);
    // Once demo has no route on the host, another namespace may take it.
    let (status, _) = send(
        &server.http,
        &server,
        Method::PUT,
        "/api/v1/namespaces/other/routes/site",
        Some(body),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn dispatch_apis_round_trip_over_routes() {
    let server = server().await;
    let dispatch = |method: Method, path: &str, body: Option<Value>| {
        let mut request = server
            .http
            .request(method, server.url(path))
            .header(ORG, "demo");
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let r = request.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, api) = dispatch(
        Method::POST,
        "/v1/api",
        Some(
            json!({"name": "hello", "function": "echo", "uris": ["/hello"],
                    "methods": ["GET", "POST"], "protocols": ["http", "https"],
                    "authentication": "public", "cors": true, "enabled": true,
                    "tags": [{"key": "team", "value": "a"}]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{api}");
    for (field, value) in [
        ("name", json!("hello")),
        ("kind", json!("API")),
        ("function", json!("echo")),
        ("uris", json!(["/hello"])),
        ("methods", json!(["GET", "POST"])),
        ("hosts", json!([])),
        ("protocols", json!(["http"])),
        ("authentication", json!("public")),
        ("cors", json!(true)),
        ("enabled", json!(true)),
        ("status", json!("READY")),
    ] {
        assert_eq!(api[field], value, "{field}: {api}");
    }
    assert!(api["createdTime"].as_i64().is_some_and(|t| t > 0), "{api}");
    // It is a faasbox route.
    let route = server.get_json(&format!("{ROUTES}/hello")).await;
    assert_eq!(route["cors"]["origins"], json!(["*"]), "{route}");
    assert_eq!(route["auth"]["kind"], "none");

    let (status, e) = dispatch(
        Method::POST,
        "/v1/api",
        Some(json!({"name": "hello", "function": "echo", "uris": ["/x"]})),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["code"], 409, "{e}");
    let (status, e) = dispatch(
        Method::POST,
        "/v1/api",
        Some(json!({"name": "two", "function": "echo", "uris": ["/a", "/b"]})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("one")),
        "{e}"
    );
    let (status, e) = dispatch(
        Method::POST,
        "/v1/api",
        Some(json!({"name": "b", "function": "echo", "uris": ["/b"], "authentication": "basic"})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("faasbox route create")),
        "{e}"
    );
    let (status, e) = dispatch(
        Method::POST,
        "/v1/api",
        Some(json!({"name": "c", "function": "echo", "uris": ["x"]})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("`path`")),
        "{e}"
    );

    // A route with basic auth made with faasbox's API: Dispatch shows its kind, and an
    // update that keeps the kind keeps its users.
    let (status, _) = put(
        &server,
        "private",
        json!({"path": "/private", "target": {"function": "echo"},
               "auth": {"kind": "basic", "users": {"alice": PASSWORD}}}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, api) = dispatch(Method::GET, "/v1/api/private", None).await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["authentication"], "basic");
    let mut updated = api.clone();
    updated["methods"] = json!(["GET"]);
    updated["enabled"] = json!(false);
    let (status, api) = dispatch(Method::PUT, "/v1/api/private", Some(updated)).await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["methods"], json!(["GET"]));
    assert_eq!(api["enabled"], false);
    let route = server.get_json(&format!("{ROUTES}/private")).await;
    assert_eq!(route["auth"], json!({"kind": "basic", "users": ["alice"]}));

    let (status, list) = dispatch(Method::GET, "/v1/api", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["hello", "private"]);
    no_credential("Dispatch's list", &list.to_string());

    let (status, gone) = dispatch(Method::DELETE, "/v1/api/hello", None).await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone["name"], "hello");
    let (status, e) = dispatch(Method::GET, "/v1/api/hello", None).await;
    assert_eq!(status, 404);
    assert_eq!(e["code"], 404, "{e}");
    // Without the org header: Dispatch's 400... for a namespace token; the admin token is
    // told to name the org.
    let r = server
        .http
        .get(server.url("/v1/api"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_cli_creates_lists_disables_and_removes_routes() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alice.pw");
    std::fs::write(&file, format!("{PASSWORD}\n")).expect("password file");
    let made = server.cli_ok(&[
        "route",
        "create",
        "demo/contact",
        "--path",
        "/contact",
        "--method",
        "POST",
        "--function",
        "contact",
        "--user",
        &format!("alice=@{}", file.display()),
        "--rate",
        "5",
        "--burst",
        "10",
        "--timeout",
        "30s",
        "-o",
        "json",
    ]);
    no_credential("route create", &made);
    let made: Value = serde_json::from_str(&made).expect("JSON");
    assert_eq!(
        made["auth"],
        json!({"kind": "basic", "users": ["alice"]}),
        "{made}"
    );
    assert_eq!(
        made["limits"],
        json!({"rate_per_second": 5.0, "burst": 10, "timeout_seconds": 30}),
        "{made}"
    );
    // Stored as an Argon2id hash (the file's newline is dropped: see the CLI's unit tests).
    let store = server.open_store();
    let stored = store
        .route("demo", "contact")
        .expect("the store")
        .expect("the route");
    let spec: Value = serde_json::from_str(&stored.spec).expect("JSON spec");
    let hash = spec["auth"]["users"]["alice"].as_str().expect("a hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let listed = server.cli_ok(&["route", "ls", "demo"]);
    assert!(
        listed.contains("contact")
            && listed.contains("/ns/demo/contact")
            && listed.contains("basic"),
        "{listed}"
    );
    no_credential("route ls", &listed);
    let disabled = server.cli_ok(&["route", "disable", "demo/contact", "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&disabled).expect("JSON")["enabled"],
        false
    );
    let got = server.cli_ok(&["route", "get", "demo/contact", "-o", "json"]);
    let got: Value = serde_json::from_str(&got).expect("JSON");
    assert_eq!(got["enabled"], false);
    assert_eq!(got["limits"]["burst"], 10);
    let updated = server.cli_ok(&[
        "route",
        "update",
        "demo/contact",
        "--rate",
        "1",
        "-o",
        "json",
    ]);
    let updated: Value = serde_json::from_str(&updated).expect("JSON");
    assert_eq!(
        updated["limits"],
        json!({"rate_per_second": 1.0, "burst": 10, "timeout_seconds": 30})
    );
    assert_eq!(updated["auth"]["users"], json!(["alice"]));
    server.cli_ok(&["route", "enable", "demo/contact"]);
    server.cli_ok(&["route", "rm", "demo/contact"]);
    let out = server.cli(&["route", "get", "demo/contact"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    // A flag error says the fix before anything is sent.
    let out = server.cli(&[
        "route",
        "create",
        "demo/x",
        "--path",
        "/x",
        "--function",
        "f",
        "--auth",
        "hmac-sha256",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--secret NAME"), "{stderr}");
    no_credential("the server's log", &server.log());
}

#[tokio::test]
async fn a_namespace_holds_at_most_1000_routes() {
    let server = server().await;
    for i in 0..1000 {
        let (status, e) = put(
            &server,
            &format!("r{i}"),
            json!({"path": format!("/r/{i}"), "target": {"function": "echo"}}),
        )
        .await;
        assert_eq!(status, 201, "route {i}: {e}");
    }
    let (status, e) = put(
        &server,
        "one-more",
        json!({"path": "/one-more", "target": {"function": "echo"}}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("(1000)"), "{message}");
    // Replacing one of them is no new route; another namespace has its own count.
    let (status, e) = put(
        &server,
        "r7",
        json!({"path": "/seven", "target": {"function": "echo"}}),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    let (status, e) = send(
        &server.http,
        &server,
        Method::PUT,
        "/api/v1/namespaces/other/routes/one-more",
        Some(json!({"path": "/one-more", "target": {"function": "echo"}})),
    )
    .await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(
        server.get(&format!("{ROUTES}/one-more")).await.status(),
        404
    );
}
