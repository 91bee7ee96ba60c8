//! The cmd (direktiv-cmd), file (isolates) and openwhisk contracts end to end: deployed
//! through the API, run in real runc containers.

mod support;

use serde_json::{json, Value};
use support::images::{self, ISOLATE, OPENWHISK_ACTION};
use support::{json as parse, Server};

/// An image to import: its name, its archive, and the import's query parameters.
type ImageImport<'a> = (&'a str, &'a std::path::Path, Vec<(&'a str, String)>);

async fn server_with(images: &[ImageImport<'_>]) -> Server {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    for (name, tar, query) in images {
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = server.import(tar, name, &query).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }
    server
}

fn entrypoint(cmd: &[&str]) -> Vec<(&'static str, String)> {
    vec![("entrypoint", serde_json::to_string(cmd).unwrap())]
}

// --- cmd: Direktiv generic containers ------------------------------------------------------

async fn cmd_server() -> (Server, tempfile::TempDir) {
    let (dir, tar) = images::rootfs_tar_with(&[]);
    let server = server_with(&[("test/plain:latest", &tar, entrypoint(&["/bin/sh"]))]).await;
    server
        .deploy(
            "demo",
            "sh",
            json!({"image": "test/plain:latest", "cmd": "/usr/share/direktiv/direktiv-cmd"}),
        )
        .await;
    (server, dir)
}

#[tokio::test]
async fn cmd_runs_the_seed_examples_as_written() {
    let (server, _dir) = cmd_server().await;
    // The seed's first example: echo -n "hello" with an environment variable, read by a shell
    // (`\$`: Direktiv's parser expands `$MYENV` itself, from the container's environment).
    let input = json!({"data": {"commands": [
        {"command": "echo -n \"hello\"", "envs": [{"name": "MYENV", "value": "MYVALUE"}], "stop": true},
        {"command": "sh -c 'echo -n \\$MYENV'", "env": [{"name": "MYENV", "value": "MYVALUE"}]},
    ]}});
    let (status, _, body) = server.invoke("demo", "sh", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = parse(&body);
    assert_eq!(out[0], json!({"Error": "", "Output": "hello"}));
    assert_eq!(out[1]["Output"], "MYVALUE");
    // The seed's second example: a file with permission 0755 run as ./script.
    let input = json!({
        "files": [{"name": "hello.sh", "content": "#!/bin/sh\n\necho -n \"HELLO WORLD\"\n", "permission": 755}],
        "data": {"commands": [{"command": "./hello.sh"}]}
    });
    let (status, _, body) = server.invoke("demo", "sh", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)[0]["Output"], "HELLO WORLD");
    // Top-level shape, JSON output embedded, suppressed output, a failure that goes on.
    let input = json!({"commands": [
        {"command": "echo '{\"a\":[1,2]}'"},
        {"command": "sh -c 'echo hidden-\\$((40+2))'", "suppress_output": true},
        {"command": "false"},
        {"command": "echo after"},
    ]});
    let (status, id, body) = server.invoke("demo", "sh", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = parse(&body);
    assert_eq!(out[0]["Output"], json!({"a": [1, 2]}));
    // Suppressed output is in the result, not in the log (Direktiv v0.9 and later).
    assert_eq!(out[1]["Output"], "hidden-42\n");
    assert_ne!(
        out[2]["Error"], "",
        "a failing command records its error: {out}"
    );
    assert_eq!(out[3]["Output"].as_str().unwrap().trim(), "after");
    let logs = server.log_lines(&id).await.join("\n");
    assert!(
        !logs.contains("hidden-42"),
        "suppressed output is not logged: {logs}"
    );
    // suppress_command hides the command text in the logs; stop: true fails the call.
    let input = json!({"commands": [
        {"command": "echo token-in-command", "suppress_command": true},
        {"command": "false", "stop": true},
        {"command": "echo never"},
    ]});
    let (status, id, body) = server.invoke("demo", "sh", input.to_string()).await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)["error"]["code"], "io.direktiv.error.execution");
    let logs = server.log_lines(&id).await.join("\n");
    assert!(!logs.contains("echo token-in-command"), "{logs}");
    assert!(!logs.contains("never"), "{logs}");
}

#[tokio::test]
async fn cmd_calls_run_concurrently_with_their_own_logs_and_dirs() {
    let (server, _dir) = cmd_server().await;
    server
        .deploy("demo", "wide", json!({"image": "test/plain:latest", "contract": "cmd", "scale": {"max": 2, "concurrency": 4}}))
        .await;
    let calls = (0..8).map(|i| {
        let server = &server;
        async move {
            let input = json!({"commands": [{"command": format!("sh -c 'echo marker-{i}; pwd; touch mine; ls'")}]});
            (i, server.invoke("demo", "wide", input.to_string()).await)
        }
    });
    for (i, (status, id, body)) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let output = parse(&body)[0]["Output"].as_str().unwrap().to_string();
        assert!(output.contains(&format!("marker-{i}")));
        // Each call has a directory of its own: only its own file is there.
        assert_eq!(
            output.lines().filter(|l| *l == "mine").count(),
            1,
            "{output}"
        );
        let logs = server.log_lines(&id).await.join("\n");
        assert!(logs.contains(&format!("marker-{i}")), "{logs}");
        for other in (0..8).filter(|o| *o != i) {
            assert!(
                !logs.contains(&format!("marker-{other}")),
                "call {i} has {other}'s line: {logs}"
            );
        }
    }
}

// --- file: Direktiv isolates ---------------------------------------------------------------

async fn isolate_server() -> (Server, tempfile::TempDir) {
    let (dir, tar) = images::rootfs_tar_with(&[("bin/isolate.sh", ISOLATE, 0o755)]);
    let server = server_with(&[(
        "test/isolate:latest",
        &tar,
        entrypoint(&["/bin/isolate.sh"]),
    )])
    .await;
    (server, dir)
}

async fn deploy_isolate(server: &Server, name: &str, mode: &str, extra: Value) {
    let mut spec =
        json!({"image": "test/isolate:latest", "contract": "file", "envs": {"MODE": mode}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    server.deploy("demo", name, spec).await;
}

#[tokio::test]
async fn file_contract_round_trip_errors_and_logs() {
    let (server, _dir) = isolate_server().await;
    for mode in ["echo", "error", "crash", "text"] {
        deploy_isolate(&server, mode, mode, json!({})).await;
    }
    let input = json!({"customer": "❄ 42"});
    let (status, id, body) = server.invoke("demo", "echo", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), input);
    let logs = server.log_lines(&id).await.join("\n");
    for expected in [
        "stdout {\"customer\"",
        "stderr {\"customer\"",
        "log-file line",
        "error-file line",
    ] {
        assert!(logs.contains(expected), "{expected} missing from {logs}");
    }
    let (status, _, body) = server.invoke("demo", "error", "{}").await;
    assert_eq!(status, 502);
    let error = &parse(&body)["error"];
    assert_eq!(error["code"], "isolate.bad");
    assert_eq!(error["message"], "bad input");
    let (status, _, body) = server.invoke("demo", "crash", "{}").await;
    assert_eq!(status, 502);
    assert_eq!(parse(&body)["error"]["catchable"], false);
    let (status, _, body) = server.invoke("demo", "text", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body), json!("cGxhaW4gdGV4dA=="));
}

#[tokio::test]
async fn file_contract_timeout_disk_bound_and_clean_calls() {
    let (server, _dir) = isolate_server().await;
    deploy_isolate(&server, "slow", "sleep", json!({"timeout": "2s"})).await;
    let (status, _, body) = server.invoke("demo", "slow", "{}").await;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)["error"]["code"], "faasbox.function.timeout");
    deploy_isolate(&server, "fill", "fill", json!({"disk": "1MiB"})).await;
    let (status, _, body) = server.invoke("demo", "fill", "{}").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    let error = &parse(&body)["error"];
    assert_eq!(error["code"], "faasbox.function.disk_full", "{error}");
    // Each call starts from a clean /direktiv-data on the same warm instance.
    deploy_isolate(&server, "leak", "leak", json!({"scale": {"max": 1}})).await;
    for _ in 0..3 {
        let (status, _, body) = server.invoke("demo", "leak", "{}").await;
        assert_eq!(status, 200);
        assert_eq!(parse(&body), json!({"leaked": false}));
    }
    let f = server
        .get_json("/api/v1/namespaces/demo/functions/leak")
        .await;
    assert_eq!(
        f["instances"]["instances"], 1,
        "one warm instance served every call: {f}"
    );
}

#[tokio::test]
async fn file_contract_concurrent_calls_keep_their_logs() {
    let (server, _dir) = isolate_server().await;
    deploy_isolate(&server, "echo", "echo", json!({"scale": {"max": 8}})).await;
    let calls = (0..8).map(|i| {
        let server = &server;
        async move {
            (
                i,
                server
                    .invoke("demo", "echo", json!({"call": i}).to_string())
                    .await,
            )
        }
    });
    for (i, (status, id, body)) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200);
        assert_eq!(parse(&body), json!({"call": i}));
        let logs = server.log_lines(&id).await.join("\n");
        assert!(logs.contains(&format!("stdout {{\"call\":{i}}}")), "{logs}");
        for other in (0..8).filter(|o| *o != i) {
            assert!(!logs.contains(&format!("{{\"call\":{other}}}")), "{logs}");
        }
    }
}

// --- openwhisk: docker actions -------------------------------------------------------------

/// A server with the two OpenWhisk images, and their directories (removed when dropped).
async fn openwhisk_server() -> (Server, [tempfile::TempDir; 2]) {
    let (dir, tar) = images::rootfs_tar_with(&[("action/exec", OPENWHISK_ACTION, 0o755)]);
    let (plain_dir, plain) = images::rootfs_tar_with(&[]);
    let server = server_with(&[
        ("test/blackbox:latest", &tar, entrypoint(&["/bin/sh"])),
        ("test/plain:latest", &plain, entrypoint(&["/bin/sh"])),
    ])
    .await;
    (server, [dir, plain_dir])
}

#[tokio::test]
async fn openwhisk_actions_text_zip_and_blackbox() {
    let (server, _dir) = openwhisk_server().await;
    server
        .deploy("demo", "text", json!({"image": "test/plain:latest", "contract": "openwhisk", "code": OPENWHISK_ACTION}))
        .await;
    server
        .deploy(
            "demo",
            "blackbox",
            json!({"image": "test/blackbox:latest", "contract": "openwhisk"}),
        )
        .await;
    let zip = {
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut cursor);
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        writer.start_file("exec", options).unwrap();
        use std::io::Write;
        writer
            .write_all(b"#!/bin/sh\necho \"{\\\"zipped\\\": true, \\\"pwd\\\": \\\"$(pwd)\\\", \\\"ns\\\": \\\"$__OW_NAMESPACE\\\", \\\"action\\\": \\\"$__OW_ACTION_NAME\\\", \\\"activation\\\": \\\"$__OW_ACTIVATION_ID\\\"}\"\n")
            .unwrap();
        writer.finish().unwrap();
        cursor.into_inner()
    };
    use base64::Engine;
    let code = base64::engine::general_purpose::STANDARD.encode(&zip);
    server
        .deploy("demo", "zipped", json!({"image": "test/plain:latest", "contract": "openwhisk", "code": code, "binary": true}))
        .await;
    for name in ["text", "blackbox"] {
        for input in [
            json!({"string": "hello"}),
            json!({"string": "❄ ☃ ❄"}),
            json!({"numbers": [1, -2.5, 3e10], "nested": {"list": [{"a": null}, true]}}),
        ] {
            let (status, id, body) = server.invoke("demo", name, input.to_string()).await;
            assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
            assert_eq!(parse(&body), input, "{name}");
            let logs = server.log_lines(&id).await.join("\n");
            assert!(logs.contains("log line for"), "{name}: {logs}");
            assert!(logs.contains("stderr line"), "{name}: {logs}");
        }
    }
    let (status, id, body) = server.invoke("demo", "zipped", "{}").await;
    assert_eq!(
        status,
        200,
        "{}\n{:?}",
        String::from_utf8_lossy(&body),
        server.log_lines(&id).await
    );
    let out = parse(&body);
    assert_eq!(out["zipped"], true);
    assert_eq!(out["pwd"], "/action");
    assert_eq!(out["ns"], "demo");
    assert_eq!(out["activation"], id.as_str());
    // A 1 MiB argument comes back exactly.
    let big = json!({"big": "y".repeat(1024 * 1024)});
    let (status, _, body) = server.invoke("demo", "text", big.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body), big);
}

#[tokio::test]
async fn openwhisk_result_that_is_not_json_is_the_exact_error() {
    let (server, _dir) = openwhisk_server().await;
    server
        .deploy("demo", "bad", json!({"image": "test/plain:latest", "contract": "openwhisk", "code": "#!/bin/sh\necho not json\n"}))
        .await;
    let (status, _, body) = server.invoke("demo", "bad", "{}").await;
    assert_eq!(status, 502);
    let message = parse(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("The action did not return a dictionary or array."),
        "{message}"
    );
    // No code and no /action/exec: conformance_openwhisk.rs.
}

#[tokio::test]
async fn openwhisk_concurrent_calls_keep_their_logs() {
    let (server, _dir) = openwhisk_server().await;
    server
        .deploy("demo", "echo", json!({"image": "test/plain:latest", "contract": "openwhisk", "code": OPENWHISK_ACTION, "scale": {"max": 8}}))
        .await;
    let calls = (0..8).map(|i| {
        let server = &server;
        async move {
            (
                i,
                server
                    .invoke("demo", "echo", json!({"call": i}).to_string())
                    .await,
            )
        }
    });
    for (i, (status, id, body)) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(parse(&body), json!({"call": i}));
        let logs = server.log_lines(&id).await.join("\n");
        assert!(
            logs.contains(&format!("log line for {{\"call\":{i}}}")),
            "{logs}"
        );
        for other in (0..8).filter(|o| *o != i) {
            assert!(!logs.contains(&format!("{{\"call\":{other}}}")), "{logs}");
        }
    }
}
