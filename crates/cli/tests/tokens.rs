//! API tokens: the admin token made on first start (0600 file, printed once, stored hashed),
//! 401 without a valid token, namespace tokens that see nothing of other namespaces (404 as if
//! they did not exist, 403 for server-wide endpoints), the invoke role, and the seed's curl
//! command with a token header against a real htpasswd registry.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{json, Value};
use support::images::{self, TestImages};
use support::registry;
use support::{client_with_token, contains_bytes, json as parse, send as call, Server, FAASBOX};

const SEED_PASSWORD: &str = "8QwFLg%D$qg*";

fn test_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| images::shared(images::TEST_FUNCTION))
}

/// `faasbox token create …` through the CLI (admin token); returns the token.
fn create_token(server: &Server, args: &[&str]) -> String {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    let token = server.cli_ok(&all).trim().to_string();
    assert!(token.starts_with("fbx_"), "{token}");
    token
}

/// The CLI with an explicit environment (no FAASBOX_TOKEN unless given).
fn cli_env(server: &Server, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(FAASBOX)
        .args(args)
        .env("FAASBOX_URL", &server.url)
        .env_remove("FAASBOX_TOKEN")
        .env_remove("FAASBOX_DATA_DIR")
        .envs(env.iter().copied())
        .output()
        .expect("running the CLI")
}

/// A server with namespaces `a` and `b`, each with function `echo`, secret `s`, a registry,
/// and one call of `echo` whose id is returned (a's, b's).
async fn two_namespaces() -> (Server, String, String) {
    let server = Server::start().await;
    let r = server
        .import(&test_images().oci_tar, "test/function:latest", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let mut ids = Vec::new();
    for ns in ["a", "b"] {
        server.create_namespace(ns).await;
        server
            .deploy(
                ns,
                "echo",
                json!({"image": "test/function:latest", "envs": {"MODE": "echo"}}),
            )
            .await;
        server.cli_ok(&["secret", "set", &format!("{ns}/s"), "--value", "v"]);
        server.cli_ok(&[
            "registry",
            "add",
            ns,
            "r.example.com",
            "-u",
            "u",
            "--password",
            "p",
        ]);
        let (status, id, body) = server.invoke(ns, "echo", r#"{"x":1}"#).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        ids.push(id);
    }
    let b = ids.pop().expect("b's call");
    let a = ids.pop().expect("a's call");
    (server, a, b)
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_and_health_is_open() {
    let server = Server::start().await;
    let anonymous = client_with_token(None);
    let (status, _) = call(&anonymous, &server, Method::GET, "/api/v1/health", None).await;
    assert_eq!(status, 200);
    let token_file = server.data_dir.join("admin.token");
    for (client, code) in [
        (client_with_token(None), "faasbox.auth.missing"),
        (
            client_with_token(Some(&format!("fbx_{}", "0".repeat(64)))),
            "faasbox.auth.invalid",
        ),
        (client_with_token(Some("")), "faasbox.auth.missing"),
    ] {
        for (method, path) in [
            (Method::GET, "/api/v1/namespaces"),
            (Method::GET, "/api/v1/openapi.json"),
            (Method::POST, "/api/v1/namespaces"),
            (Method::GET, "/api/v1/no/such/route"),
        ] {
            let (status, body) =
                call(&client, &server, method, path, Some(json!({"name": "x"}))).await;
            assert_eq!(status, 401, "{path}: {body}");
            assert_eq!(body["error"]["code"], code, "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("Authorization: Bearer"), "{message}");
            assert!(
                message.contains(&token_file.display().to_string()),
                "{message}"
            );
        }
    }
    // Basic auth with the right token is not a bearer token.
    let r = anonymous
        .get(server.url("/api/v1/namespaces"))
        .basic_auth("admin", Some(&server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Nothing was created by the refused requests.
    let list = server.get_json("/api/v1/namespaces").await;
    assert_eq!(list, json!([]));

    // The CLI: a wrong token fails with the explanation; without a token it reads the admin
    // token file of FAASBOX_DATA_DIR.
    let out = cli_env(&server, &["ns", "ls"], &[("FAASBOX_TOKEN", "fbx_wrong")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Authorization: Bearer") && err.contains("401"),
        "{err}"
    );
    let out = cli_env(&server, &["ns", "create", "fromfile"], &[]);
    assert!(
        !out.status.success(),
        "no token, no file at the default place"
    );
    let data_dir = server.data_dir.display().to_string();
    let out = cli_env(
        &server,
        &["ns", "create", "fromfile"],
        &[("FAASBOX_DATA_DIR", &data_dir)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli_env(
        &server,
        &["--token", &server.token, "ns", "ls"],
        &[("FAASBOX_TOKEN", "fbx_wrong")],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fromfile"));
}

#[tokio::test]
async fn the_admin_token_is_made_once_kept_0600_and_stored_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data).await;
    let file = data.join("admin.token");
    let token = server.token.clone();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let log = server.log();
    assert_eq!(log.matches(&token).count(), 1, "printed once: {log}");
    assert!(log.contains(&file.display().to_string()), "{log}");
    server.create_namespace("demo").await;
    let namespace_token = create_token(&server, &["--namespace", "demo", "--name", "ci"]);
    let listed = server.cli_ok(&["token", "ls"]);
    assert!(listed.contains("ci") && listed.contains("demo"), "{listed}");
    assert!(!listed.contains(&token) && !listed.contains(&namespace_token));
    let listed = server.get_json("/api/v1/tokens").await.to_string();
    assert!(!listed.contains(&token[4..]) && !listed.contains(&namespace_token[4..]));
    server.stop();

    // A restart keeps the token: no new one is made or printed.
    let server = Server::start_in(&data).await;
    assert_eq!(server.token, token);
    let log = server.log();
    assert_eq!(
        log.matches("created the admin API token").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches(&token).count(), 1);
    let (status, _) = call(
        &client_with_token(Some(&namespace_token)),
        &server,
        Method::GET,
        "/api/v1/namespaces/demo/functions",
        None,
    )
    .await;
    assert_eq!(status, 200, "namespace tokens survive a restart");
    // The database holds neither token, in any form but its hash.
    let bytes = server.database_bytes();
    for t in [&token, &namespace_token] {
        assert!(!contains_bytes(&bytes, t.as_bytes()));
        assert!(!contains_bytes(&bytes, &t.as_bytes()[4..]));
        assert!(!contains_bytes(&bytes, &t.as_bytes()[4..36]));
    }
    // And that hash is SHA-256 of the whole token, hex, computed here independently of the
    // server's own hash function.
    let db = rusqlite::Connection::open_with_flags(
        data.join("faasbox.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stored: Vec<String> = db
        .prepare("SELECT hash FROM tokens")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    stored.sort();
    let sha256 = |t: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()));
    let mut expected = vec![sha256(&token), sha256(&namespace_token)];
    expected.sort();
    assert_eq!(
        stored, expected,
        "the tokens table holds SHA-256(token), hex"
    );
}

#[tokio::test]
async fn namespace_tokens_see_nothing_of_other_namespaces() {
    let (server, a_call, b_call) = two_namespaces().await;
    let token = create_token(&server, &["--namespace", "a"]);
    let a = client_with_token(Some(&token));

    // Reading b answers exactly what a namespace that does not exist answers, and tells the
    // token nothing it could not do (only the admin token creates namespaces).
    let hidden = "namespace 'b' does not exist or is not this token's (the token belongs to \
                  namespace 'a')";
    for path in [
        "/api/v1/namespaces/b",
        "/api/v1/namespaces/b/functions",
        "/api/v1/namespaces/b/functions/echo",
        "/api/v1/namespaces/b/secrets",
        "/api/v1/namespaces/b/registries",
        "/api/v1/namespaces/b/invocations",
        &format!("/api/v1/namespaces/b/invocations/{b_call}"),
        &format!("/api/v1/namespaces/b/invocations/{b_call}/logs"),
    ] {
        let (status, body) = call(&a, &server, Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["message"], hidden, "{path}");
        let (status, body) = call(&a, &server, Method::GET, &path.replace("/b", "/zz"), None).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["message"], hidden.replace("'b'", "'zz'"));
        // The admin token is told how to make one.
        let (status, body) = call(
            &server.http,
            &server,
            Method::GET,
            &path.replace("/b", "/zz"),
            None,
        )
        .await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            body["error"]["message"],
            "namespace 'zz' does not exist; create it with `faasbox ns create zz`"
        );
    }
    for path in [
        format!("/api/v1/invocations/{b_call}"),
        format!("/api/v1/invocations/{b_call}/logs"),
    ] {
        let (status, body) = call(&a, &server, Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            body["error"]["message"],
            format!("invocation '{b_call}' does not exist")
        );
    }
    // Percent escapes do not get around the check (the handler decodes, the check must too).
    let escaped = format!("%{:02X}{}", b_call.as_bytes()[0], &b_call[1..]);
    let (status, _) = call(
        &server.http,
        &server,
        Method::GET,
        &format!("/api/v1/invocations/{escaped}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "the admin reads the escaped id");
    let (status, _) = call(
        &a,
        &server,
        Method::GET,
        &format!("/api/v1/invocations/{escaped}"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Changing b is just as absent, and changes nothing.
    for (method, path, body) in [
        (
            Method::PUT,
            "/api/v1/namespaces/b/secrets/x",
            json!({"data": "eA=="}),
        ),
        (Method::DELETE, "/api/v1/namespaces/b/secrets/s", json!({})),
        (
            Method::POST,
            "/api/v1/namespaces/b/registries",
            json!({"url": "q.example.com", "username": "u", "password": "p"}),
        ),
        (
            Method::POST,
            "/api/functions/registries/namespaces/b",
            json!({"data": "u:p", "reg": "q.example.com"}),
        ),
        (
            Method::PUT,
            "/api/v1/namespaces/b/functions/new",
            json!({"image": "test/function:latest"}),
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/b/functions/echo",
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/b/functions/echo/invoke",
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/b/images/pull?ref=r.example.com/x:1",
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/b/images/import?name=b/victim",
            json!({}),
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/b/images?name=test/function:latest",
            json!({}),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/b/functions/echo",
            json!({"envs": {"MODE": "x"}}),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/b/functions/echo/rollback",
            json!({}),
        ),
    ] {
        let (status, answer) = call(&a, &server, method, path, Some(body)).await;
        assert_eq!(status, 404, "{path}: {answer}");
        assert_eq!(answer["error"]["message"], hidden, "{path}");
    }
    let b_secrets = server.get_json("/api/v1/namespaces/b/secrets").await;
    assert_eq!(b_secrets.as_array().unwrap().len(), 1, "{b_secrets}");
    let b_registries = server.get_json("/api/v1/namespaces/b/registries").await;
    assert_eq!(b_registries.as_array().unwrap().len(), 1);
    let b_functions = server.get_json("/api/v1/namespaces/b/functions").await;
    assert_eq!(b_functions.as_array().unwrap().len(), 1);
    let b_calls = server.get_json("/api/v1/namespaces/b/invocations").await;
    assert_eq!(
        b_calls.as_array().unwrap().len(),
        1,
        "no call was made in b"
    );

    // Its own namespace works, and the namespace list shows only it (API and CLI).
    let (status, list) = call(&a, &server, Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["a"]);
    let out = cli_env(&server, &["ns", "ls"], &[("FAASBOX_TOKEN", &token)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains('a') && !text.contains("\nb "), "{text}");
    for path in [
        "/api/v1/namespaces/a/functions/echo".to_string(),
        "/api/v1/namespaces/a/secrets".into(),
        format!("/api/v1/invocations/{a_call}/logs"),
        format!("/api/v1/namespaces/a/invocations/{a_call}"),
        "/api/v1/images".into(),
    ] {
        let (status, body) = call(&a, &server, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, output) = call(
        &a,
        &server,
        Method::POST,
        "/api/v1/namespaces/a/functions/echo/invoke",
        Some(json!({"mine": true})),
    )
    .await;
    assert_eq!((status, output), (200, json!({"mine": true})));

    // Server-wide endpoints are the admin's.
    for (method, path) in [
        (Method::POST, "/api/v1/namespaces"),
        (Method::DELETE, "/api/v1/namespaces/a"),
        (Method::POST, "/api/v1/registries"),
        (Method::GET, "/api/v1/registries"),
        (Method::POST, "/api/v1/tokens"),
        (Method::GET, "/api/v1/tokens"),
        (Method::POST, "/api/v1/admin/rotate-master-key"),
        (Method::DELETE, "/api/v1/images?name=test/function:latest"),
        (
            Method::POST,
            "/api/v1/images/import?name=test/function:latest",
        ),
        (Method::POST, "/api/v1/images/pull?ref=r.example.com/x:1"),
        (
            Method::POST,
            "/api/v1/images/push?name=x&target=r.example.com/x:1",
        ),
        (Method::POST, "/api/v1/images/prune"),
    ] {
        let (status, body) = call(&a, &server, method, path, Some(json!({"name": "c"}))).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "faasbox.auth.forbidden");
    }
    assert_eq!(
        server
            .get_json("/api/v1/namespaces")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        server
            .get_json("/api/v1/images")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn invoke_tokens_call_and_read_but_change_nothing() {
    let (server, _, _) = two_namespaces().await;
    let token = create_token(
        &server,
        &["-n", "a", "--role", "invoke", "--name", "caller"],
    );
    let invoker = client_with_token(Some(&token));
    let (status, id, body) = {
        let r = invoker
            .post(server.url("/api/v1/namespaces/a/functions/echo/invoke"))
            .body(r#"{"y":2}"#)
            .send()
            .await
            .unwrap();
        let id = r.headers()["faasbox-invocation-id"]
            .to_str()
            .unwrap()
            .to_string();
        (r.status().as_u16(), id, r.bytes().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(parse(&body), json!({"y": 2}));
    for path in [
        format!("/api/v1/invocations/{id}"),
        format!("/api/v1/invocations/{id}/logs"),
        "/api/v1/namespaces/a/invocations".into(),
        "/api/v1/namespaces/a/functions".into(),
    ] {
        let (status, _) = call(&invoker, &server, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}");
    }
    for (method, path, body) in [
        (
            Method::PUT,
            "/api/v1/namespaces/a/functions/echo",
            json!({"image": "test/function:latest", "envs": {"MODE": "env"}}),
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/a/functions/echo",
            json!({}),
        ),
        (
            Method::PUT,
            "/api/v1/namespaces/a/secrets/s",
            json!({"data": "eA=="}),
        ),
        (Method::DELETE, "/api/v1/namespaces/a/secrets/s", json!({})),
        (
            Method::POST,
            "/api/v1/namespaces/a/registries",
            json!({"url": "q.example.com", "username": "u", "password": "p"}),
        ),
        (
            Method::POST,
            "/api/functions/registries/namespaces/a",
            json!({"data": "u:p", "reg": "q.example.com"}),
        ),
        (Method::POST, "/api/v1/images/import?name=x/y:1", json!({})),
        (
            Method::POST,
            "/api/v1/images/pull?ref=q.example.com/x:1",
            json!({}),
        ),
    ] {
        let (status, answer) = call(&invoker, &server, method, path, Some(body)).await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("token"),
            "{answer}"
        );
    }
    let spec = server.get_json("/api/v1/namespaces/a/functions/echo").await;
    assert_eq!(spec["spec"]["envs"]["MODE"], "echo", "{spec}");
    assert_eq!(
        server
            .get_json("/api/v1/namespaces/a/registries")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A deleted token, and the tokens of a deleted namespace, stop working at once.
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["token", "ls", "-o", "json"])).unwrap();
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "caller")
        .and_then(|t| t["id"].as_str())
        .expect("the invoke token is listed")
        .to_string();
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "caller")
            .unwrap()["role"],
        "invoke"
    );
    server.cli_ok(&["token", "rm", &id]);
    let (status, _) = call(
        &invoker,
        &server,
        Method::GET,
        "/api/v1/namespaces/a/functions",
        None,
    )
    .await;
    assert_eq!(status, 401);
    let b_token = create_token(&server, &["--namespace", "b"]);
    server.cli_ok(&["ns", "rm", "b"]);
    server.create_namespace("b").await;
    let (status, _) = call(
        &client_with_token(Some(&b_token)),
        &server,
        Method::GET,
        "/api/v1/namespaces/b/functions",
        None,
    )
    .await;
    assert_eq!(
        status, 401,
        "a re-created namespace does not revive old tokens"
    );
}

#[tokio::test]
async fn token_requests_with_bad_input_are_refused_and_store_nothing() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let before = server.get_json("/api/v1/tokens").await;
    for (body, status) in [
        (json!({"namespace": "nope"}), 404),
        (json!({"namespace": "demo", "role": "root"}), 400),
        (json!({"role": "invoke"}), 400),
        (json!({"namespace": "demo", "name": "a/b"}), 400),
        (json!({"namespace": "demo", "name": ".."}), 400),
        (json!({"namespace": "demo", "name": "bell\u{7}"}), 400),
        (json!({"namespace": "demo", "extra": 1}), 400),
    ] {
        let (got, answer) = call(
            &server.http,
            &server,
            Method::POST,
            "/api/v1/tokens",
            Some(body.clone()),
        )
        .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    let r = server
        .http
        .post(server.url("/api/v1/tokens"))
        .header("content-type", "application/json")
        .body("{\"namespace\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = server
        .http
        .post(server.url("/api/v1/tokens"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let (status, _) = call(
        &server.http,
        &server,
        Method::DELETE,
        "/api/v1/tokens/nope",
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(server.get_json("/api/v1/tokens").await, before);
    let out = server.cli(&["token", "create", "--namespace", "demo", "--role", "root"]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn the_seeds_curl_command_with_a_token_stores_credentials_that_pulls_use() {
    let (registry, reference) = registry::with_image(
        "user",
        SEED_PASSWORD,
        &test_images().oci_tar,
        "demo/function:latest",
    )
    .await;
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server.create_namespace("other").await;
    let other_token = create_token(&server, &["--namespace", "other"]);
    let curl = |token: &str| {
        let command = support::seed_curl_command(
            &server.url,
            "demo",
            token,
            "user:8QwFLg%D$qg*",
            &format!("http://{}", registry.addr),
        );
        Command::new("sh")
            .args(["-c", &command])
            .output()
            .expect("running curl")
    };
    // Another namespace's token cannot store credentials in demo.
    let out = curl(&other_token);
    let answer = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        answer.contains("namespace 'demo' does not exist"),
        "{answer}"
    );
    assert_eq!(
        server.get_json("/api/v1/namespaces/demo/registries").await,
        json!([])
    );
    // Without credentials the pull is refused.
    let out = server.cli(&["image", "pull", &reference, "-n", "demo"]);
    assert!(!out.status.success());
    let out = curl(&server.token);
    let answer = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{answer}");
    assert_eq!(parse(answer.as_bytes())["username"], "user", "{answer}");
    assert!(!answer.contains(SEED_PASSWORD));
    let pulled = server.cli_ok(&["image", "pull", &reference, "-n", "demo", "-o", "json"]);
    let record: Value = serde_json::from_str(&pulled).expect("the pulled image");
    assert_eq!(record["name"], reference.as_str());
    assert!(!contains_bytes(
        &server.database_bytes(),
        SEED_PASSWORD.as_bytes()
    ));
}
