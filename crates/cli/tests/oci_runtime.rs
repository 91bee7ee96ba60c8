//! A server started with `--oci-runtime crun` runs functions of the runtime class runc with
//! crun (package crun), and one started with `--oci-runtime libcontainer` with faasbox-oci
//! (built with faasbox, found next to it): a cold start, a warm call and a cold start that
//! takes a container created ahead (a stem cell released the runtime's way), with the
//! runtime's state in `<data-dir>/run/<runtime>` and none in runc's root; and the server
//! explains a missing runtime.

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

fn faasbox_oci_built() -> bool {
    let found = faasbox_oci().is_file();
    if !found {
        faasbox_test_registry::cannot_run(
            "faasbox-oci is not built (run `cargo build -p faasbox-oci-runtime`)",
        );
    }
    found
}

/// Where the server looks for faasbox-oci by default: next to itself.
fn faasbox_oci() -> std::path::PathBuf {
    std::path::Path::new(FAASBOX).with_file_name("faasbox-oci")
}

/// Cold, warm and from a stem cell on `--oci-runtime <runtime>`, whose containers are in
/// `<data-dir>/run/<runtime>`.
async fn answers_calls_cold_warm_and_from_a_stem_cell(runtime: &str) {
    let server = server_with_test_function_and(&["--oci-runtime", runtime]).await;
    deploy_mode(&server, "first", "echo", json!({})).await;
    let (status, _, body) = server.invoke("demo", "first", r#"{"n":1}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"n": 1}));
    let (status, _, body) = server.invoke("demo", "first", r#"{"n":2}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"n": 2}));
    assert!(
        !containers(&server.data_dir, runtime).is_empty(),
        "{runtime} holds the containers"
    );
    assert_eq!(containers(&server.data_dir, "runc"), Vec::<String>::new());

    // A cold start of another function with the same settings takes the stem cell the first
    // start left (created with `create`, released the runtime's way).
    for _ in 0..400 {
        if containers(&server.data_dir, runtime).len() >= 2 {
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

#[tokio::test]
async fn a_server_with_crun_answers_calls_cold_warm_and_from_a_stem_cell() {
    if crun_installed() {
        answers_calls_cold_warm_and_from_a_stem_cell("crun").await;
    }
}

#[tokio::test]
async fn a_server_with_libcontainer_answers_calls_cold_warm_and_from_a_stem_cell() {
    if faasbox_oci_built() {
        answers_calls_cold_warm_and_from_a_stem_cell("libcontainer").await;
    }
}

/// `faasbox server` with `args` and a data directory of its own, expected to refuse to
/// start: its standard error.
fn refused_start(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(FAASBOX)
        .arg("server")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_missing_faasbox_oci_stops_the_start_and_says_where_it_was_looked_for() {
    let stderr = refused_start(&[
        "--oci-runtime",
        "libcontainer",
        "--faasbox-oci",
        "/nonexistent/faasbox-oci",
    ]);
    assert!(
        stderr.contains("/nonexistent/faasbox-oci") && stderr.contains("--faasbox-oci"),
        "{stderr}"
    );
}

#[test]
fn a_missing_crun_stops_the_start_and_names_the_package() {
    let stderr = refused_start(&["--oci-runtime", "crun", "--crun", "/nonexistent/crun"]);
    assert!(stderr.contains("apt-get install crun"), "{stderr}");
}
