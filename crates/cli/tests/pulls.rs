//! `faasbox image pull|push` against a real `docker-registry` with htpasswd auth on loopback:
//! credentials picked from the namespace's registries, then the global ones; wrong and missing
//! credentials fail clearly and store nothing; a registry added after a failed pull is used by
//! the next one without a restart; a pulled image deploys and answers calls.

mod support;

use std::process::Output;
use std::sync::OnceLock;

use serde_json::{json, Value};
use support::images::{self, TestImages};
use support::registry::{self, Registry};
use support::{json as parse, Server};

const USER: &str = "user";
const PASS: &str = "pull-Pass%$*:1";
const WRONG: &str = "wrong-Pass-7c1e";

fn test_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| images::shared(images::TEST_FUNCTION))
}

/// A registry holding the test function as `demo/function:latest`, pushed by `faasbox image
/// push` from a server that has it imported (with the namespace's credentials).
async fn registry_with_image() -> (Registry, String) {
    registry::with_image(USER, PASS, &test_images().oci_tar, "demo/function:latest").await
}

fn add_registry(server: &Server, scope: &[&str], addr: &str, password: &str) {
    let mut args = vec!["registry", "add"];
    args.extend_from_slice(scope);
    args.extend_from_slice(&[addr, "-u", USER, "--password", password]);
    server.cli_ok(&args);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The image names of namespace `ns`'s table (`None`: the server-wide one).
async fn image_names(server: &Server, ns: Option<&str>) -> Vec<String> {
    let path = match ns {
        Some(ns) => format!("/api/v1/namespaces/{ns}/images"),
        None => "/api/v1/images".to_string(),
    };
    server
        .get_json(&path)
        .await
        .as_array()
        .expect("image list")
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

/// Asserts a failed pull: non-zero exit, the code and a clear message, no secret, no panic.
fn assert_refused(out: &Output, code: &str) {
    let err = stderr(out);
    let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(!out.status.success(), "the pull should fail: {all}");
    assert!(err.contains(code), "{err}");
    assert!(err.contains("registry"), "{err}");
    assert!(!all.contains(PASS) && !all.contains(WRONG), "{all}");
    assert!(!all.contains("panicked"), "{all}");
}

#[tokio::test]
async fn pushed_image_pulls_with_namespace_credentials_deploys_and_answers() {
    let (registry, reference) = registry_with_image().await;
    let server = Server::start().await;
    server.create_namespace("demo").await;
    add_registry(&server, &["demo"], &registry.addr, PASS);
    let out = server.cli_ok(&["image", "pull", &reference, "-n", "demo", "-o", "json"]);
    let record: Value = serde_json::from_str(&out).expect("the pulled image as JSON");
    assert_eq!(record["name"], reference.as_str(), "{record}");
    assert!(record["digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(record["namespace"], "demo", "{record}");
    assert!(image_names(&server, Some("demo"))
        .await
        .contains(&reference));
    assert!(
        image_names(&server, None).await.is_empty(),
        "not server-wide"
    );
    // Text output names the image; pulling again is fine.
    let text = server.cli_ok(&["image", "pull", &reference, "--namespace", "demo"]);
    assert!(text.contains("NAME") && text.contains(&reference), "{text}");
    server
        .deploy(
            "demo",
            "echo",
            json!({"image": reference, "envs": {"MODE": "echo"}}),
        )
        .await;
    let input = json!({"pulled": true});
    let (status, _, body) = server.invoke("demo", "echo", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), input);
}

#[tokio::test]
async fn the_api_streams_progress_events_and_checks_arguments() {
    let (registry, reference) = registry_with_image().await;
    let server = Server::start().await;
    add_registry(&server, &["--global"], &registry.addr, PASS);
    let http = server.http.clone();
    let r = http
        .post(server.url("/api/v1/images/pull"))
        .query(&[("ref", reference.as_str())])
        .send()
        .await
        .expect("pull");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let text = r.text().await.expect("the event stream");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert_eq!(events[0]["event"], "resolved", "{text}");
    let layers = events[0]["layers"].as_u64().expect("layers");
    let done = events.iter().filter(|e| e["event"] == "layer_done").count();
    assert_eq!(done as u64, layers, "{text}");
    let last = events.last().expect("events");
    assert_eq!(last["event"], "done", "{text}");
    assert_eq!(last["image"]["name"], reference.as_str());
    // Argument errors come before the stream, as JSON errors.
    let r = http
        .post(server.url("/api/v1/images/pull"))
        .send()
        .await
        .expect("pull");
    assert_eq!(r.status(), 400);
    let r = http
        .post(server.url("/api/v1/namespaces/nope/images/pull"))
        .query(&[("ref", reference.as_str())])
        .send()
        .await
        .expect("pull");
    assert_eq!(r.status(), 404);
    // The server-wide route no longer takes a namespace: its own route is the way.
    let r = http
        .post(server.url("/api/v1/images/pull"))
        .query(&[("ref", reference.as_str()), ("namespace", "demo")])
        .send()
        .await
        .expect("pull");
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.expect("an error");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/api/v1/namespaces/demo/images/pull"),
        "{message}"
    );
    let r = http
        .post(server.url("/api/v1/images/push"))
        .query(&[("name", "x"), ("target", "Bad Ref!")])
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 400);
    // A push of an image that is not local ends with an error event.
    let r = http
        .post(server.url("/api/v1/images/push"))
        .query(&[("name", "not/here:latest"), ("target", reference.as_str())])
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("the event stream");
    let last: Value = serde_json::from_str(text.lines().last().expect("an event")).expect("json");
    assert_eq!(last["event"], "error", "{text}");
    assert!(last["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("not/here")));
}

#[tokio::test]
async fn missing_then_wrong_credentials_fail_and_a_registry_added_later_works() {
    let (registry, reference) = registry_with_image().await;
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let out = server.cli(&["image", "pull", &reference, "-n", "demo"]);
    assert_refused(&out, "faasbox.registry.unauthorized");
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(image_names(&server, Some("demo")).await.is_empty());

    add_registry(&server, &["demo"], &registry.addr, WRONG);
    let out = server.cli(&["image", "pull", &reference, "-n", "demo"]);
    assert_refused(&out, "faasbox.registry.unauthorized");
    assert!(stderr(&out).contains(USER), "{}", stderr(&out));
    assert!(image_names(&server, Some("demo")).await.is_empty());
    assert!(!server.log().contains(WRONG));

    // The right credentials, added now, are used by the next pull: no restart.
    server.cli_ok(&["registry", "rm", "demo", &registry.addr]);
    add_registry(&server, &["demo"], &registry.addr, PASS);
    server.cli_ok(&["image", "pull", &reference, "-n", "demo"]);
    assert_eq!(
        image_names(&server, Some("demo")).await,
        vec![reference.clone()]
    );
    assert!(!server.log().contains(PASS));
}

#[tokio::test]
async fn global_credentials_work_for_every_namespace() {
    let (registry, reference) = registry_with_image().await;
    let server = Server::start().await;
    server.create_namespace("a").await;
    server.create_namespace("b").await;
    // Namespace credentials are not used without --namespace, nor by another namespace.
    add_registry(&server, &["a"], &registry.addr, PASS);
    assert_refused(
        &server.cli(&["image", "pull", &reference]),
        "faasbox.registry.unauthorized",
    );
    assert_refused(
        &server.cli(&["image", "pull", &reference, "-n", "b"]),
        "faasbox.registry.unauthorized",
    );
    add_registry(&server, &["--global"], &registry.addr, PASS);
    server.cli_ok(&["image", "pull", &reference, "-n", "b"]);
    server.cli_ok(&["image", "pull", &reference]);
    let missing = registry.reference("demo/absent:latest");
    assert_refused(
        &server.cli(&["image", "pull", &missing, "-n", "b"]),
        "faasbox.registry.not_found",
    );
    // Each pull went into its own table.
    assert_eq!(
        image_names(&server, Some("b")).await,
        vec![reference.clone()]
    );
    assert_eq!(image_names(&server, None).await, vec![reference]);
    assert!(image_names(&server, Some("a")).await.is_empty());
}
