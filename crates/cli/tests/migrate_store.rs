//! `faasbox admin migrate-store`: a real server's data directory (SQLite) moved into a real
//! PostgreSQL, then a server on PostgreSQL answering the same through the API: every table
//! carried, the secret still decryptable (a function reads it), runs in the same order, the old
//! tokens working. Refused while a server runs on the directory, and into a database that
//! holds faasbox data already, changing nothing either time.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::postgres::{psql, row_counts, TestDatabase};
use support::{send, test_images, Server, FAASBOX};

const FLOW: &str =
    "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform:\n    done: true\n";
/// A flow on a schedule that does not come round during the test (midnight, January 1st).
const YEARLY: &str = "direktiv_api: workflow/v1\nstart:\n  type: scheduled\n  cron: \"0 0 0 1 1 *\"\nstates:\n- id: a\n  type: noop\n";

fn migrate(data_dir: &Path, url: &str) -> Output {
    Command::new(FAASBOX)
        .args(["admin", "migrate-store", "--from"])
        .arg(format!("sqlite:{}", data_dir.display()))
        .args(["--to", url])
        .env_remove("FAASBOX_MASTER_KEY_FILE")
        .env_remove("FAASBOX_MASTER_KEY")
        .output()
        .expect("running faasbox admin migrate-store")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Rows per table of the SQLite database in `data_dir`.
fn sqlite_counts(data_dir: &Path) -> BTreeMap<String, u64> {
    let db = rusqlite::Connection::open(data_dir.join("faasbox.db")).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n: i64 = db
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n as u64)
        })
        .collect()
}

/// What the API lists: everything the migration must carry.
async fn snapshot(server: &Server) -> Vec<Value> {
    let mut lists = Vec::new();
    for path in [
        "/api/v1/namespaces",
        "/api/v1/namespaces/demo/secrets",
        "/api/v1/namespaces/demo/registries",
        "/api/v1/namespaces/demo/functions/reveal/revisions",
        "/api/v1/namespaces/demo/runs",
        "/api/v1/namespaces/demo/flows",
        "/api/v1/namespaces/demo/instances",
        "/api/v1/namespaces/demo/events",
        "/api/v1/namespaces/demo/routes",
        "/api/v1/tokens",
    ] {
        lists.push(json!({"path": path, "answer": server.get_json(path).await}));
    }
    lists
}

/// Makes one of each kind of state on a SQLite server; the namespace token made.
async fn make_state(server: &Server) -> String {
    server.create_namespace("demo").await;
    let r = server
        .import(&test_images().oci_tar, "test/function:latest", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = server
        .http
        .put(server.url("/api/v1/namespaces/demo/secrets/token"))
        .body("moved-s3cret")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let spec = |extra: &str| {
        json!({
            "image": "test/function:latest",
            "envs": {"MODE": "plain", "EXTRA": extra},
            "secrets": ["token"],
            "input": {"token": "jq(.secrets.token)", "n": "jq(.input.n)"},
        })
    };
    server.deploy("demo", "reveal", spec("1")).await;
    server.deploy("demo", "reveal", spec("2")).await;
    server.cli_ok(&[
        "registry",
        "add",
        "demo",
        "https://registry.example.com",
        "-u",
        "robot",
        "--password",
        "registry-pw",
    ]);
    server.deploy_flow("hello", FLOW).await;
    let (status, _, output) = server.run_flow("hello", &json!({})).await;
    assert_eq!(status, 200, "{output}");
    server.deploy_flow("yearly", YEARLY).await;
    for n in 1..=3 {
        let (status, _, body) = server
            .invoke("demo", "reveal", json!({ "n": n }).to_string())
            .await;
        assert_eq!(status, 200, "{}", text(&body));
    }
    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/functions/reveal/invoke?async=true"))
        .header("content-type", "application/json")
        .body(r#"{"n":4}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let run = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .expect("a run id")
        .to_string();
    let path = format!("/api/v1/runs/{run}");
    support::wait_for(
        Duration::from_secs(60),
        "the asynchronous run to end",
        || server.get_json(&path),
        |r| r["status"] == "succeeded",
    )
    .await;
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
    let (status, route) = send(
        &server.http,
        server,
        Method::PUT,
        "/api/v1/namespaces/demo/routes/hook",
        Some(json!({"path": "/hook", "target": {"function": "reveal"}})),
    )
    .await;
    assert_eq!(status, 201, "{route}");
    let token = server
        .cli_ok(&["token", "create", "--namespace", "demo", "--name", "ci"])
        .trim()
        .to_string();
    assert!(token.starts_with("fbx_"), "{token}");
    token
}

#[tokio::test]
async fn a_data_directory_moves_to_postgres_with_nothing_lost() {
    let database = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut server = Server::start_in(&data_dir).await;
    let namespace_token = make_state(&server).await;

    // Not while the server runs: nothing is touched, not even the target's schema.
    let refused = migrate(&data_dir, &database.url);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("stop the faasbox server"),
        "{}",
        text(&refused.stderr)
    );
    assert!(row_counts(&database.url).is_empty());

    let before = snapshot(&server).await;
    let admin_token = server.token.clone();
    assert!(server.stop());
    // Not carried over: the servers (each registers itself at its start) and UI sessions
    // (everyone signs in again).
    let not_moved = ["nodes", "ui_sessions"];
    let in_sqlite: BTreeMap<String, u64> = sqlite_counts(&data_dir)
        .into_iter()
        .filter(|(t, _)| !not_moved.contains(&t.as_str()))
        .collect();

    let moved = migrate(&data_dir, &database.url);
    let (stdout, stderr) = (text(&moved.stdout), text(&moved.stderr));
    assert!(moved.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("copied namespaces: 1 rows"), "{stderr}");
    assert!(
        stdout.contains("1 secrets and 1 registry credentials decrypt"),
        "{stdout}"
    );
    for says in [
        "FAASBOX_MASTER_KEY_FILE",
        "admin.token",
        "--store postgres://",
        "image contents stay",
    ] {
        assert!(stdout.contains(says), "{says}: {stdout}");
    }

    // Every table, every row.
    let in_pg: BTreeMap<String, u64> = row_counts(&database.url)
        .into_iter()
        .filter(|(t, _)| t != "counters" && t != "schema_version")
        .filter(|(t, _)| !not_moved.contains(&t.as_str()))
        .collect();
    assert_eq!(in_pg, in_sqlite);
    for table in [
        "functions",
        "function_revisions",
        "invocations",
        "flow_instances",
        "events",
        "schedules",
        "tokens",
        "routes",
        "registries",
        "secrets",
    ] {
        assert!(in_pg[table] > 0, "{table} is empty: the test made none");
    }
    assert_eq!(
        psql(
            &database.url,
            "SELECT value FROM counters WHERE name = 'events'"
        )
        .trim(),
        psql(&database.url, "SELECT MAX(seq) FROM events").trim(),
        "new events are numbered after the copied ones"
    );

    // A server on PostgreSQL with the data directory's master key (and its images).
    let key = data_dir.join("keys").join("master.key");
    let server = Server::start_on_postgres(&data_dir, &database.url, &key).await;
    assert_eq!(server.token, admin_token, "no new admin token was made");
    let after = snapshot(&server).await;
    assert_eq!(before, after, "the API answers as before the move");
    let (status, _, body) = server.invoke("demo", "reveal", r#"{"n":5}"#).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(
        support::json(&body),
        json!({"token": "moved-s3cret", "n": 5}),
        "the moved secret decrypts"
    );
    let (status, _) = send(
        &support::client_with_token(Some(&namespace_token)),
        &server,
        Method::GET,
        "/api/v1/namespaces/demo/runs",
        None,
    )
    .await;
    assert_eq!(status, 200, "the namespace token still works");
    // A new event is numbered after the moved one.
    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/events"))
        .header("content-type", "application/cloudevents+json")
        .body(
            json!({"specversion": "1.0", "id": "e-2", "source": "/test", "type": "thing.happened"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // Into a database that holds faasbox data: refused, nothing changed.
    let counts = row_counts(&database.url);
    let again = migrate(&data_dir, &database.url);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already holds faasbox data"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(row_counts(&database.url), counts);
}
