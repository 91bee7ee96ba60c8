//! `faasbox image pull|push` against a real `docker-registry` with htpasswd auth on loopback:
//! credentials picked from the namespace's registries, then the global ones; wrong and missing
//! credentials fail clearly and store nothing; a registry added after a failed pull is used by
//! the next one without a restart; a pulled image deploys and answers calls.

mod support;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::images::{self, TestImages};
use support::{json as parse, Server};

const USER: &str = "user";
const PASS: &str = "pull-Pass%$*:1";
const WRONG: &str = "wrong-Pass-7c1e";

fn test_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| images::build(images::TEST_FUNCTION))
}

/// A running `docker-registry` with basic auth for [`USER`]; killed on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASS])
            .output()
            .expect("htpasswd (apt-get install apache2-utils)");
        assert!(out.status.success(), "htpasswd failed");
        let htpasswd = dir.path().join("htpasswd");
        fs::write(&htpasswd, &out.stdout).expect("writing htpasswd");
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("storage dir");
        let config = dir.path().join("config.yml");
        let log_path = dir.path().join("registry.log");
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr = format!("127.0.0.1:{port}");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                     rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    \
                     realm: faasbox-test\n    path: {}\n",
                    storage.display(),
                    htpasswd.display()
                ),
            )
            .expect("writing the registry config");
            let log = fs::File::create(&log_path).expect("registry log");
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("/usr/bin/docker-registry (apt-get install docker-registry)");
            if wait_ready(&mut child, &addr) {
                return Registry {
                    child,
                    addr,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    fn reference(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the registry answers `GET /v2/` within 15 s.
fn wait_ready(child: &mut Child, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut conn) = TcpStream::connect(addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = String::new();
            if conn.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok()
                && conn.read_to_string(&mut answer).is_ok()
            {
                return answer
                    .to_ascii_lowercase()
                    .contains("docker-distribution-api-version");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A registry holding the test function as `demo/function:latest`, pushed by `faasbox image
/// push` from a server that has it imported (with the namespace's credentials).
async fn registry_with_image() -> (Registry, String) {
    let registry = Registry::start();
    let reference = registry.reference("demo/function:latest");
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let r = server
        .import(&test_images().oci_tar, "local/function:latest", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    add_registry(&server, &["demo"], &registry.addr, PASS);
    let out = server.cli_ok(&[
        "image",
        "push",
        "local/function:latest",
        &reference,
        "-n",
        "demo",
    ]);
    assert!(out.contains("sha256:"), "{out}");
    assert!(!out.contains(PASS), "{out}");
    (registry, reference)
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

async fn image_names(server: &Server) -> Vec<String> {
    server
        .get_json("/api/v1/images")
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
    assert!(image_names(&server).await.contains(&reference));
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
        .post(server.url("/api/v1/images/pull"))
        .query(&[("ref", reference.as_str()), ("namespace", "nope")])
        .send()
        .await
        .expect("pull");
    assert_eq!(r.status(), 404);
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
    assert!(image_names(&server).await.is_empty());

    add_registry(&server, &["demo"], &registry.addr, WRONG);
    let out = server.cli(&["image", "pull", &reference, "-n", "demo"]);
    assert_refused(&out, "faasbox.registry.unauthorized");
    assert!(stderr(&out).contains(USER), "{}", stderr(&out));
    assert!(image_names(&server).await.is_empty());
    assert!(!server.log().contains(WRONG));

    // The right credentials, added now, are used by the next pull: no restart.
    server.cli_ok(&["registry", "rm", "demo", &registry.addr]);
    add_registry(&server, &["demo"], &registry.addr, PASS);
    server.cli_ok(&["image", "pull", &reference, "-n", "demo"]);
    assert_eq!(image_names(&server).await, vec![reference.clone()]);
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
    assert_eq!(image_names(&server).await, vec![reference]);
}
