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
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths["/api/v1/namespaces/{ns}/functions/{fn}"]["patch"].is_object(),
        "openapi lacks PATCH of a function"
    );
    assert!(paths.len() >= 45, "{} paths", paths.len());

    // Every documented route is served: asked with made-up names, it is answered by its
    // handler (a 404 of the resource at most), never by the router's fallback or a 405.
    server.create_namespace("demo").await;
    let mut asked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{ns}", "demo")
            .replace("{fn}", "nosuch")
            .replace("{id}", "nosuch")
            .replace("{name}", "nosuch")
            .replace("{path}", "nosuch/run");
        for method in item.as_object().expect("a path item").keys() {
            if method == "post" && path.ends_with("/rotate-master-key") {
                continue; // it would rotate the key: served, as the tokens tests show
            }
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = server
                .http
                .request(method.clone(), server.url(&concrete))
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path}: {body}");
            assert!(
                !body.contains("no such API route"),
                "{method} {path} is documented but not served: {body}"
            );
            asked += 1;
        }
    }
    assert!(asked >= 65, "{asked} routes asked");
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
