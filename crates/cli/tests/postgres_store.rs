//! A real server on a real PostgreSQL store (`faasbox server --store postgres://…`): what it
//! is given (a namespace, a secret, a function, calls, an asynchronous run, a flow instance,
//! an event) is in the database, so a restarted server has all of it and calls work again.
//! A store the server cannot use stops the start with the fix, never showing a password.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::postgres::{psql, write_master_key, TestDatabase};
use support::{test_images, Server, FAASBOX};

const FLOW: &str =
    "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform:\n    done: true\n";

/// The database's URL with a password in it. The test cluster trusts every local connection,
/// so the password is never asked for: it is there to check that no log or message shows it.
fn with_password(url: &str) -> String {
    url.replacen("postgres://faasbox@", "postgres://faasbox:hunter2-pw@", 1)
}

async fn wait_run_ended(server: &Server, id: &str) -> Value {
    let path = format!("/api/v1/runs/{id}");
    support::wait_for(
        Duration::from_secs(60),
        "the asynchronous run to end",
        || server.get_json(&path),
        |run| !matches!(run["status"].as_str(), Some("queued" | "running")),
    )
    .await
}

#[tokio::test]
async fn a_server_on_postgres_keeps_everything_across_a_restart() {
    let database = TestDatabase::new();
    let url = with_password(&database.url);
    let dir = tempfile::tempdir().unwrap();
    let key = write_master_key(&dir.path().join("master.key"));
    let data_dir = dir.path().join("data");
    let mut server = Server::start_on_postgres(&data_dir, &url, &key).await;
    let log = server.log();
    assert!(
        log.contains("store: the PostgreSQL database postgres://faasbox:***@"),
        "the log names the store it opened:\n{log}"
    );
    assert!(
        !log.contains("hunter2-pw"),
        "the password was logged:\n{log}"
    );
    assert!(
        !data_dir.join("keys").join("master.key").exists(),
        "no master key was made in the data directory"
    );

    server.create_namespace("demo").await;
    let r = server
        .import(&test_images().oci_tar, "test/function:latest", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = server
        .http
        .put(server.url("/api/v1/namespaces/demo/secrets/token"))
        .body("s3cret-value")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    server
        .deploy(
            "demo",
            "reveal",
            json!({
                "image": "test/function:latest",
                "envs": {"MODE": "plain"},
                "secrets": ["token"],
                "input": {"token": "jq(.secrets.token)", "n": "jq(.input.n)"},
            }),
        )
        .await;
    let (status, _, body) = server.invoke("demo", "reveal", r#"{"n":1}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        support::json(&body),
        json!({"token": "s3cret-value", "n": 1})
    );

    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/functions/reveal/invoke?async=true"))
        .header("content-type", "application/json")
        .body(r#"{"n":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let run_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .expect("a run id")
        .to_string();
    let run = wait_run_ended(&server, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    server.deploy_flow("hello", FLOW).await;
    let (status, instance, output) = server.run_flow("hello", &json!({})).await;
    assert_eq!(status, 200, "{output}");
    assert_eq!(output, json!({"done": true}));

    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/events"))
        .header("content-type", "application/cloudevents+json")
        .body(
            json!({"specversion": "1.0", "id": "e-1", "source": "/test", "type": "thing.happened", "data": {"x": 1}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // It is all in PostgreSQL, not in a database file of the data directory.
    assert!(!data_dir.join("faasbox.db").exists());
    assert_eq!(
        psql(&database.url, "SELECT name FROM namespaces").trim(),
        "demo"
    );
    let before = snapshot(&server).await;

    assert!(server.stop(), "the server stopped cleanly");
    let server = Server::start_on_postgres(&data_dir, &url, &key).await;
    let after = snapshot(&server).await;
    assert_eq!(
        before, after,
        "the restarted server sees what the first made"
    );
    assert_eq!(
        server.get_json(&format!("/api/v1/runs/{run_id}")).await["status"],
        "succeeded"
    );
    assert_eq!(
        server
            .get_json(&format!("/api/v1/namespaces/demo/instances/{instance}"))
            .await["status"],
        "complete"
    );
    let (status, _, body) = server.invoke("demo", "reveal", r#"{"n":3}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        support::json(&body),
        json!({"token": "s3cret-value", "n": 3}),
        "the secret still decrypts"
    );
    assert!(!server.log().contains("hunter2-pw"));
}

/// What the API lists of namespace demo.
async fn snapshot(server: &Server) -> Vec<Value> {
    let mut lists = Vec::new();
    for path in [
        "/api/v1/namespaces",
        "/api/v1/namespaces/demo/secrets",
        "/api/v1/namespaces/demo/functions/reveal/revisions",
        "/api/v1/namespaces/demo/runs",
        "/api/v1/namespaces/demo/flows",
        "/api/v1/namespaces/demo/instances",
        "/api/v1/namespaces/demo/events",
        "/api/v1/tokens",
    ] {
        lists.push(json!({"path": path, "answer": server.get_json(path).await}));
    }
    lists
}

/// Runs `faasbox server` with `args` and `env` and waits for it to exit (it must, within 30 s);
/// its exit success and standard error.
fn server_that_must_not_start(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut child = Command::new(FAASBOX)
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(args)
        .env_remove("FAASBOX_MASTER_KEY_FILE")
        .env_remove("FAASBOX_MASTER_KEY")
        .env_remove("FAASBOX_STORE")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting faasbox server");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.success(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server with {args:?} did not exit: it started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_store_the_server_cannot_use_stops_it_with_the_fix() {
    // Not a store faasbox knows.
    let (ok, stderr) = server_that_must_not_start(&["--store", "mysql://root:topsecret@db/x"], &[]);
    assert!(!ok);
    assert!(
        stderr.contains("not a store faasbox knows")
            && stderr.contains("postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"),
        "{stderr}"
    );
    assert!(stderr.contains("mysql://root:***@db/x"), "{stderr}");
    assert!(!stderr.contains("topsecret"), "{stderr}");

    // The environment variable is the flag's twin.
    let (ok, stderr) =
        server_that_must_not_start(&[], &[("FAASBOX_STORE", "postgresql:///nohost")]);
    assert!(!ok);
    assert!(stderr.contains("names no host"), "{stderr}");

    // PostgreSQL, but no master key given from outside.
    let database = TestDatabase::new();
    let (ok, stderr) = server_that_must_not_start(&["--store", &database.url], &[]);
    assert!(!ok);
    assert!(
        stderr.contains("FAASBOX_MASTER_KEY_FILE=") && stderr.contains("same master key"),
        "{stderr}"
    );

    // Nobody listens where the URL points.
    let dir = tempfile::tempdir().unwrap();
    let key = write_master_key(&dir.path().join("master.key"));
    let nowhere = format!(
        "postgres://faasbox:topsecret@127.0.0.1:{}/faasbox",
        support::free_port()
    );
    let (ok, stderr) = server_that_must_not_start(
        &["--store", &nowhere],
        &[("FAASBOX_MASTER_KEY_FILE", key.to_str().unwrap())],
    );
    assert!(!ok);
    assert!(
        stderr.contains("is PostgreSQL running at that address"),
        "{stderr}"
    );
    assert!(!stderr.contains("topsecret"), "{stderr}");
}
