//! A server started with `--oci-runtime crun` runs functions of the runtime class runc with
//! crun (package crun): a cold start, a warm call and a cold start that takes a container
//! created ahead (a stem cell released with `crun start`), with crun's state in
//! `<data-dir>/run/crun` and none in runc's root; and the server explains a missing crun.

mod support;

use serde_json::json;
use support::{deploy_mode, json as parse, server_with_test_function_and, FAASBOX};

/// Container ids in a runtime's root below the server's data directory.
fn containers(data_dir: &std::path::Path, runtime: &str) -> Vec<String> {
    std::fs::read_dir(data_dir.join("run").join(runtime))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn crun_installed() -> bool {
    let found = ["/usr/bin/crun", "/usr/sbin/crun", "/usr/local/bin/crun"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !found {
        faasbox_test_registry::cannot_run("crun is missing (install the package crun)");
    }
    found
}

#[tokio::test]
async fn a_server_with_crun_answers_calls_cold_warm_and_from_a_stem_cell() {
    if !crun_installed() {
        return;
    }
    let server = server_with_test_function_and(&["--oci-runtime", "crun"]).await;
    deploy_mode(&server, "first", "echo", json!({})).await;
    let (status, _, body) = server.invoke("demo", "first", r#"{"n":1}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"n": 1}));
    let (status, _, body) = server.invoke("demo", "first", r#"{"n":2}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"n": 2}));
    assert!(
        !containers(&server.data_dir, "crun").is_empty(),
        "crun holds the containers"
    );
    assert_eq!(containers(&server.data_dir, "runc"), Vec::<String>::new());

    // A cold start of another function with the same settings takes the stem cell the first
    // start left (created with `crun create`, released with `crun start`).
    for _ in 0..400 {
        if containers(&server.data_dir, "crun").len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    deploy_mode(&server, "second", "echo", json!({})).await;
    let (status, _, body) = server.invoke("demo", "second", r#"{"n":3}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"n": 3}));
    assert_eq!(containers(&server.data_dir, "runc"), Vec::<String>::new());
}

#[test]
fn a_missing_crun_stops_the_start_and_names_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(FAASBOX)
        .args([
            "server",
            "--oci-runtime",
            "crun",
            "--crun",
            "/nonexistent/crun",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("apt-get install crun"), "{stderr}");
}
