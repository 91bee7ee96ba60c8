//! Registry credentials against a real server: the seed's curl command on the Direktiv
//! endpoint, the native API with its scopes, the CLI, and bad input; passwords are never
//! answered nor stored in clear.

mod support;

use serde_json::{json, Value};
use support::{contains_bytes, Server};

const SEED_PASSWORD: &str = "8QwFLg%D$qg*";

async fn listed(server: &Server, path: &str) -> Vec<Value> {
    server
        .get_json(path)
        .await
        .as_array()
        .expect("list")
        .clone()
}

#[tokio::test]
async fn the_seeds_curl_command_stores_the_registry() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    // The seed's command, as written (URL and NAMESPACE filled in, the token header added).
    let command = support::seed_curl_command(
        &server.url,
        "demo",
        &server.token,
        "admin:8QwFLg%D$qg*",
        "https://registry.example.com:5000",
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("running curl");
    let answer = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "curl failed: {answer}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!answer.contains(SEED_PASSWORD), "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
    assert_eq!(answer["username"], "admin", "{answer}");
    let list = listed(&server, "/api/v1/namespaces/demo/registries").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["url"], "https://registry.example.com:5000");
    assert_eq!(list[0]["host"], "registry.example.com:5000");
    assert_eq!(list[0]["username"], "admin");
    assert!(list[0]["created"].is_string());
    assert!(!Value::Array(list).to_string().contains("8QwFLg"));
    assert!(!contains_bytes(
        &server.database_bytes(),
        SEED_PASSWORD.as_bytes()
    ));
    assert!(!contains_bytes(&server.database_bytes(), b"8QwFLg"));
}

#[tokio::test]
async fn scopes_forms_and_bad_input() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    // Direktiv's form splits at the first colon: the password keeps its own colons.
    // (sent like `curl -d`, with a form Content-Type)
    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/registries"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(json!({"data": "robot:pa:ss%$*-word", "reg": "ghcr.io"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = server
        .post_json(
            "/api/v1/registries",
            &json!({"url": "https://quay.io", "username": "g", "password": "global-pw-1", "scope": "global"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = server
        .post_json(
            "/api/v1/registries",
            &json!({"url": "registry.local:5000", "username": "p", "password": "private-pw-2", "scope": "global-private"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let ns = listed(&server, "/api/v1/namespaces/demo/registries").await;
    assert_eq!(ns.len(), 1);
    assert_eq!(
        (ns[0]["username"].as_str(), ns[0]["scope"].as_str()),
        (Some("robot"), Some("namespace"))
    );
    let global = listed(&server, "/api/v1/registries").await;
    let scopes: Vec<&str> = global
        .iter()
        .map(|r| r["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["global", "global-private"]);
    let private = listed(&server, "/api/v1/registries?scope=global-private").await;
    assert_eq!(private.len(), 1);
    let everything = format!("{ns:?}{global:?}");
    for pw in ["pa:ss%$*-word", "global-pw-1", "private-pw-2"] {
        assert!(!everything.contains(pw));
        assert!(
            !contains_bytes(&server.database_bytes(), pw.as_bytes()),
            "{pw}"
        );
    }

    let bad: Vec<(&str, &str)> = vec![
        ("/api/v1/namespaces/demo/registries", "{not json"),
        (
            "/api/v1/namespaces/demo/registries",
            r#"{"data":"nocolon","reg":"r.io"}"#,
        ),
        (
            "/api/v1/namespaces/demo/registries",
            r#"{"data":"u:p","reg":""}"#,
        ),
        (
            "/api/v1/namespaces/demo/registries",
            r#"{"data":"u:p","reg":"https://u:p@r.io"}"#,
        ),
        (
            "/api/v1/namespaces/demo/registries",
            r#"{"data":"u:p","reg":"r.io","extra":1}"#,
        ),
        (
            "/api/v1/namespaces/demo/registries",
            r#"{"url":"r.io","username":"u"}"#,
        ),
        (
            "/api/v1/namespaces/demo/registries",
            r#"{"url":"r.io","username":"a\u0007b","password":"p"}"#,
        ),
        (
            "/api/v1/namespaces/demo/registries",
            r#"{"data":"u:p","reg":"bad host/x"}"#,
        ),
        (
            "/api/v1/namespaces/nope/registries",
            r#"{"data":"u:p","reg":"r.io"}"#,
        ),
        (
            "/api/v1/namespaces/a..b/registries",
            r#"{"data":"u:p","reg":"r.io"}"#,
        ),
        (
            "/api/v1/registries",
            r#"{"data":"u:p","reg":"r.io","scope":"everyone"}"#,
        ),
        (
            "/api/functions/registries/namespaces/nope",
            r#"{"data":"u:p","reg":"r.io"}"#,
        ),
    ];
    for (path, body) in bad {
        let r = server
            .http
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error(),
            "{path} {body}: {}",
            r.status()
        );
        let answer: Value = r.json().await.expect("JSON error");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    let huge = "x".repeat(65 * 1024);
    let r = server
        .post_json(
            "/api/v1/namespaces/demo/registries",
            &json!({"url": "big.io", "username": "u", "password": huge}),
        )
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(
        listed(&server, "/api/v1/namespaces/demo/registries")
            .await
            .len(),
        1
    );
    assert_eq!(listed(&server, "/api/v1/registries").await.len(), 2);

    let deleted = server
        .delete("/api/v1/namespaces/demo/registries?url=https://ghcr.io/")
        .await;
    assert_eq!(deleted.status(), 204);
    let again = server
        .delete("/api/v1/namespaces/demo/registries?url=ghcr.io")
        .await;
    assert_eq!(again.status(), 404);
    let deleted = server
        .delete("/api/v1/registries?url=registry.local:5000&scope=global-private")
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(listed(&server, "/api/v1/registries").await.len(), 1);
}

#[tokio::test]
async fn cli_add_ls_rm() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let out = server.cli_with_stdin(
        &[
            "registry",
            "add",
            "demo",
            "https://ghcr.io",
            "--username",
            "robot",
            "--password-stdin",
        ],
        Some(b"cli-pass:word$1\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.cli_ok(&[
        "registry",
        "add",
        "--global",
        "quay.io",
        "-u",
        "g",
        "--password",
        "glob-pass-2",
    ]);
    server.cli_ok(&[
        "registry",
        "add",
        "--global-private",
        "r.local:5000",
        "-u",
        "p",
        "--password",
        "priv-pass-3",
    ]);
    let ns: Value =
        serde_json::from_str(&server.cli_ok(&["registry", "ls", "demo", "-o", "json"])).unwrap();
    assert_eq!(ns[0]["username"], "robot");
    let global: Value =
        serde_json::from_str(&server.cli_ok(&["registry", "ls", "--global", "-o", "json"]))
            .unwrap();
    assert_eq!(global.as_array().unwrap().len(), 1);
    let text = server.cli_ok(&["registry", "ls", "demo"]);
    assert!(text.starts_with("SCOPE") && text.contains("ghcr.io") && text.contains("robot"));
    let all = format!("{ns}{global}{text}");
    for pw in ["cli-pass", "glob-pass", "priv-pass"] {
        assert!(!all.contains(pw));
        assert!(!contains_bytes(&server.database_bytes(), pw.as_bytes()));
    }
    assert!(!server
        .cli(&["registry", "add", "demo", "x.io", "-u", "u"])
        .status
        .success());
    assert!(!server
        .cli(&["registry", "add", "x.io", "-u", "u", "--password", "p"])
        .status
        .success());
    server.cli_ok(&["registry", "rm", "demo", "ghcr.io"]);
    server.cli_ok(&["registry", "rm", "--global-private", "r.local:5000"]);
    assert!(!server
        .cli(&["registry", "rm", "demo", "ghcr.io"])
        .status
        .success());
    let ns: Value =
        serde_json::from_str(&server.cli_ok(&["registry", "ls", "demo", "-o", "json"])).unwrap();
    assert_eq!(ns, json!([]));
}
