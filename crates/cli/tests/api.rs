//! The REST API's resource handling and its answers to bad input, against a real server.

mod support;

use serde_json::{json, Value};
use support::Server;

#[tokio::test]
async fn health_and_openapi_document_every_route() {
    let server = Server::start().await;
    let health = server.get_json("/api/v1/health").await;
    assert_eq!(health["status"], "ok");
    let doc = server.get_json("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths["/api/v1/namespaces/{ns}/functions/{fn}"]["patch"].is_object(),
        "openapi lacks PATCH of a function"
    );
    for route in [
        "/api/v1/namespaces",
        "/api/v1/namespaces/{ns}",
        "/api/v1/images/import",
        "/api/v1/images/pull",
        "/api/v1/images/push",
        "/api/v1/images",
        "/api/v1/images/prune",
        "/api/v1/namespaces/{ns}/images",
        "/api/v1/namespaces/{ns}/images/import",
        "/api/v1/namespaces/{ns}/images/pull",
        "/api/v1/namespaces/{ns}/images/push",
        "/api/v1/namespaces/{ns}/images/prune",
        "/api/v1/namespaces/{ns}/functions",
        "/api/v1/namespaces/{ns}/functions/{fn}",
        "/api/v1/namespaces/{ns}/functions/{fn}/revisions",
        "/api/v1/namespaces/{ns}/functions/{fn}/rollback",
        "/api/v1/namespaces/{ns}/functions/{fn}/logs",
        "/api/v1/functions/{fn}/revisions",
        "/api/v1/functions/{fn}/rollback",
        "/api/v1/namespaces/{ns}/functions/{fn}/invoke",
        "/api/v1/namespaces/{ns}/invocations/{id}",
        "/api/v1/namespaces/{ns}/invocations/{id}/logs",
        "/api/v1/health",
        "/api/v1/namespaces/{ns}/secrets",
        "/api/v1/namespaces/{ns}/secrets/{name}",
        "/api/v1/admin/rotate-master-key",
        "/api/v1/namespaces/{ns}/registries",
        "/api/v1/registries",
        "/api/functions/registries/namespaces/{ns}",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/functions",
        "/api/v1/functions/{fn}",
        "/api/v1/namespaces/{ns}/global-functions/{fn}/invoke",
        "/api/v1/namespaces/{ns}/events",
        "/metrics",
    ] {
        assert!(paths.contains_key(route), "openapi lacks {route}");
    }
}

#[tokio::test]
async fn namespaces_crud_and_bad_names() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let dup = server
        .post_json("/api/v1/namespaces", &json!({"name": "demo"}))
        .await;
    assert_eq!(dup.status(), 409);
    for bad in ["a/b", "..", "UPPER", "with space", "ctl\u{7}", ""] {
        let r = server
            .post_json("/api/v1/namespaces", &json!({ "name": bad }))
            .await;
        assert_eq!(r.status(), 400, "name {bad:?}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid"),
            "{body}"
        );
    }
    let malformed = server
        .http
        .post(server.url("/api/v1/namespaces"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let list = server.get_json("/api/v1/namespaces").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo"]);
    let deleted = server
        .http
        .delete(server.url("/api/v1/namespaces/demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = server.get("/api/v1/namespaces/demo").await;
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("faasbox ns create demo"));
}

#[tokio::test]
async fn function_specs_are_validated_and_nothing_is_stored_on_error() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    // Unknown namespace.
    let r = server
        .put_json(
            "/api/v1/namespaces/nope/functions/f",
            &json!({"image": "x"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    // Unknown image, typo'd field, bad scale: each a 400 naming the problem.
    let cases = [
        (json!({"image": "missing:latest"}), "not in the local store"),
        (json!({"image": "x", "imgae": "y"}), "imgae"),
        (
            json!({"image": "x", "scale": {"min": 3, "max": 1}}),
            "scale.min",
        ),
        (json!({"image": "x", "timeout": "soon"}), "duration"),
        (json!({"image": "x", "size": "huge"}), "huge"),
    ];
    for (spec, needle) in cases {
        let r = server
            .put_json("/api/v1/namespaces/demo/functions/f", &spec)
            .await;
        assert_eq!(r.status(), 400, "{spec}");
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{spec}: {message}");
    }
    let bad_name = server
        .put_json(
            "/api/v1/namespaces/demo/functions/..",
            &json!({"image": "x"}),
        )
        .await;
    assert!(bad_name.status().is_client_error());
    let list = server.get_json("/api/v1/namespaces/demo/functions").await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing stored: {list}");
}

#[tokio::test]
async fn invoking_what_does_not_exist_is_a_clear_404() {
    let server = Server::start().await;
    let (status, _, body) = server.invoke("nope", "f", "{}").await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("faasbox ns create nope"));
    server.create_namespace("demo").await;
    let (status, _, body) = server.invoke("demo", "f", "{}").await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("faasbox fn deploy demo/f"));
}

#[tokio::test]
async fn cli_speaks_json_and_explains_an_absent_server() {
    let server = Server::start().await;
    let out = server.cli_ok(&["ns", "create", "demo", "--output", "json"]);
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["name"], "demo");
    let table = server.cli_ok(&["ns", "ls"]);
    assert!(table.starts_with("NAMESPACE"), "{table}");
    assert!(table.contains("demo"));
    let out = std::process::Command::new(support::FAASBOX)
        .args(["ns", "ls"])
        .env("FAASBOX_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("faasbox server"), "{stderr}");
}
