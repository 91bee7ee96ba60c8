//! Secrets through the API and the CLI against a real server: round trips, values never
//! answered nor stored in clear, bad input refused with nothing stored, master-key rotation.

mod support;

use serde_json::{json, Value};
use support::{contains_bytes, Server};

const VALUE: &str = "s3cr3t-Value-4711";

async fn put_raw(server: &Server, path: &str, body: &[u8]) -> reqwest::Response {
    server
        .http
        .put(server.url(path))
        .body(body.to_vec())
        .send()
        .await
        .expect("PUT")
}

async fn names(server: &Server, ns: &str) -> Vec<String> {
    let list = server
        .get_json(&format!("/api/v1/namespaces/{ns}/secrets"))
        .await;
    list.as_array()
        .expect("list")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn api_round_trip_never_answers_or_stores_a_value() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let created = put_raw(
        &server,
        "/api/v1/namespaces/demo/secrets/token",
        VALUE.as_bytes(),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created = created.text().await.unwrap();
    assert!(!created.contains(VALUE), "{created}");
    let encoded = base64_of(b"json-Value-0815");
    let replaced = server
        .put_json(
            "/api/v1/namespaces/demo/secrets/token",
            &json!({ "data": encoded }),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    let other = put_raw(
        &server,
        "/api/v1/namespaces/demo/secrets/other",
        VALUE.as_bytes(),
    )
    .await;
    assert_eq!(other.status(), 201);

    let list = server.get_json("/api/v1/namespaces/demo/secrets").await;
    let text = list.to_string();
    assert!(!text.contains(VALUE) && !text.contains("json-Value") && !text.contains(&encoded));
    assert_eq!(names(&server, "demo").await, ["other", "token"]);
    for entry in list.as_array().unwrap() {
        assert!(
            entry["created"].is_string() && entry["updated"].is_string(),
            "{entry}"
        );
        assert!(entry.get("value").is_none() && entry.get("data").is_none());
    }
    let single = server.get("/api/v1/namespaces/demo/secrets/token").await;
    assert!(single.status().is_client_error());
    assert!(!single.text().await.unwrap().contains(VALUE));

    let db = server.database_bytes();
    assert!(!db.is_empty());
    for plain in [VALUE.as_bytes(), b"json-Value-0815", encoded.as_bytes()] {
        assert!(!contains_bytes(&db, plain), "plaintext in the database");
    }

    let deleted = server.delete("/api/v1/namespaces/demo/secrets/other").await;
    assert_eq!(deleted.status(), 204);
    let again = server.delete("/api/v1/namespaces/demo/secrets/other").await;
    assert_eq!(again.status(), 404);
    assert_eq!(names(&server, "demo").await, ["token"]);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "/api/v1/namespaces/nope/secrets/token",
            "text/plain",
            b"x".to_vec(),
            404,
        ),
        (
            "/api/v1/namespaces/demo/secrets/a%2Fb",
            "text/plain",
            b"x".to_vec(),
            400,
        ),
        // The client resolves a bare `..` segment away: no route.
        (
            "/api/v1/namespaces/demo/secrets/..",
            "text/plain",
            b"x".to_vec(),
            404,
        ),
        (
            "/api/v1/namespaces/demo/secrets/a..b",
            "text/plain",
            b"x".to_vec(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/..x",
            "text/plain",
            b"x".to_vec(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/a%07b",
            "text/plain",
            b"x".to_vec(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/a%0Ab",
            "text/plain",
            b"x".to_vec(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/ok",
            "application/json",
            b"{not json".to_vec(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/ok",
            "application/json",
            br#"{"data":"!!!"}"#.to_vec(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/ok",
            "application/json",
            br#"{"value":"eA=="}"#.to_vec(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/ok",
            "text/plain",
            Vec::new(),
            400,
        ),
        (
            "/api/v1/namespaces/demo/secrets/ok",
            "text/plain",
            vec![b'x'; 256 * 1024 + 1],
            413,
        ),
        (
            "/api/v1/namespaces/demo/secrets/ok",
            "text/plain",
            vec![b'x'; 2 * 1024 * 1024],
            413,
        ),
    ];
    for (path, content_type, body, status) in cases {
        let r = server
            .http
            .put(server.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "PUT {path}");
        let body: Value = r.json().await.expect("JSON error body");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    assert!(names(&server, "demo").await.is_empty());
    // The largest value is accepted.
    let largest = put_raw(
        &server,
        "/api/v1/namespaces/demo/secrets/big",
        &vec![b'y'; 256 * 1024],
    )
    .await;
    assert_eq!(largest.status(), 201);
    let unknown = server.get("/api/v1/namespaces/nope/secrets").await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn cli_set_ls_rm_and_rotate() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let out = server.cli_with_stdin(
        &["secret", "set", "demo/token"],
        Some(format!("{VALUE}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(VALUE));
    server.cli_ok(&["secret", "set", "demo/inline", "--value", "inline-value-1"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"file-value-2\n").unwrap();
    let path = file.path().to_str().unwrap();
    server.cli_ok(&["secret", "set", "demo/fromfile", "--from-file", path]);

    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["secret", "ls", "demo", "-o", "json"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fromfile", "inline", "token"]);
    let text = server.cli_ok(&["secret", "ls", "demo"]);
    assert!(text.starts_with("NAME") && text.contains("token"), "{text}");
    assert!(!text.contains(VALUE) && !text.contains("inline-value"));

    let bad = server.cli(&["secret", "set", "demo/a..b/c", "--value", "x"]);
    assert!(!bad.status.success());
    let bad = server.cli(&["secret", "set", "nope/token", "--value", "x"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope"));

    let removed: Value =
        serde_json::from_str(&server.cli_ok(&["secret", "rm", "demo/inline", "-o", "json"]))
            .unwrap();
    assert_eq!(removed["deleted"], "demo/inline");
    assert!(!server
        .cli(&["secret", "rm", "demo/inline"])
        .status
        .success());

    let key_file = server.data_dir.join("keys/master.key");
    let before = std::fs::read(&key_file).expect("key file");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let rotated: Value =
        serde_json::from_str(&server.cli_ok(&["admin", "rotate-master-key", "-o", "json"]))
            .unwrap();
    assert_eq!(rotated["rewrapped"], 1, "{rotated}");
    assert!(rotated["key_id"].is_string());
    let after = std::fs::read(&key_file).expect("key file");
    assert_ne!(before, after);
    assert!(!contains_bytes(&server.database_bytes(), &after));
    // Secrets stay writable and listable with the new key.
    server.cli_ok(&["secret", "set", "demo/later", "--value", "later-value-3"]);
    assert_eq!(
        server
            .cli_ok(&["secret", "ls", "demo", "-o", "json"])
            .matches("\"name\"")
            .count(),
        3
    );
}

#[tokio::test]
async fn restart_with_the_key_given_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, base64
    {
        let server = Server::start_in_with_env(&data, &[("FAASBOX_MASTER_KEY", key)]).await;
        server.create_namespace("demo").await;
        let r = put_raw(
            &server,
            "/api/v1/namespaces/demo/secrets/token",
            VALUE.as_bytes(),
        )
        .await;
        assert_eq!(r.status(), 201);
        assert!(!data.join("keys/master.key").exists());
        // A key given in the environment cannot be rotated through the API.
        let r = server
            .http
            .post(server.url("/api/v1/admin/rotate-master-key"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
    }
    // Without the key, the server refuses to start rather than create a new one.
    let out = std::process::Command::new(support::FAASBOX)
        .args(["server", "--listen", "127.0.0.1:1", "--data-dir"])
        .arg(&data)
        .env_remove("FAASBOX_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("master key"), "{stderr}");
    assert!(!stderr.contains(key));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
