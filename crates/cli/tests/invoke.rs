//! Calls through real runc containers: the Direktiv HTTP contract end to end, via the API and
//! the CLI.

mod support;

use serde_json::{json, Value};
use support::{
    deploy_mode, json as parse, server_with_test_function, server_with_test_function_and,
    test_images, Server, ALLOW_HOST_LOOPBACK,
};

#[tokio::test]
async fn echo_round_trip_through_the_api() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "echo", "echo", json!({})).await;
    let input =
        json!({"a": 1, "text": "❄ ☃ ❄ — ünïcödé 漢字", "nested": {"list": [1, 2.5, null, true]}});
    let (status, id, body) = server.invoke("demo", "echo", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), input);
    assert!(!id.is_empty());
    let record = server
        .get_json(&format!("/api/v1/namespaces/demo/invocations/{id}"))
        .await;
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["function"], "echo");
    assert!(record["ended"].is_string());
    // The function saw the Direktiv headers and a per-call temp dir.
    deploy_mode(&server, "headers", "headers", json!({})).await;
    let (status, id, body) = server.invoke("demo", "headers", "{}").await;
    assert_eq!(status, 200);
    let seen = parse(&body);
    assert_eq!(seen["action"], id.as_str());
    assert_eq!(seen["tempdir_exists"], "yes");
    assert!(seen["tempdir"].as_str().unwrap().contains(&id));
    assert!(
        seen["deadline"].as_str().unwrap().contains('T'),
        "RFC 3339: {seen}"
    );
}

#[tokio::test]
async fn five_mib_input_comes_back_intact() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "echo", "echo", json!({})).await;
    let big = "x".repeat(5 * 1024 * 1024);
    let input = json!({ "big": big });
    let (status, _, body) = server.invoke("demo", "echo", input.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), input.to_string().len());
    assert_eq!(parse(&body), input);
}

#[tokio::test]
async fn echo_round_trip_through_the_cli() {
    let server = Server::start().await;
    server.cli_ok(&["ns", "create", "demo"]);
    let images = test_images();
    server.cli_ok(&[
        "image",
        "import",
        images.docker_tar.to_str().unwrap(),
        "--name",
        "test/function:latest",
    ]);
    let listed = server.cli_ok(&["image", "ls"]);
    assert!(
        listed.contains("test/function:latest") && listed.contains("sha256:"),
        "{listed}"
    );
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/echo",
        "--image",
        "test/function:latest",
        "--env",
        "MODE=echo",
        "--timeout",
        "20s",
    ]);
    let out = server.cli(&["invoke", "demo/echo", "--data", r#"{"hello":"wörld ❄"}"#]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(parse(&out.stdout), json!({"hello": "wörld ❄"}));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("invocation: "))
        .expect("invocation id on stderr")
        .to_string();
    let logs = server.cli_ok(&["logs", &id]);
    assert!(logs.contains(&format!("endpoint-get {id}")), "{logs}");
    // --output json everywhere, stdin input.
    let out = server.cli_with_stdin(
        &["invoke", "demo/echo", "--data", "-", "-o", "json"],
        Some(br#"{"n":42}"#),
    );
    let wrapped = parse(&out.stdout);
    assert_eq!(wrapped["output"], json!({"n": 42}));
    let fns: Value =
        serde_json::from_str(&server.cli_ok(&["fn", "ls", "demo", "-o", "json"])).unwrap();
    assert_eq!(fns[0]["spec"]["envs"]["MODE"], "echo");
    assert_eq!(fns[0]["spec"]["timeout"], "20s");
    let logs: Value = serde_json::from_str(&server.cli_ok(&["logs", &id, "-o", "json"])).unwrap();
    assert!(logs["logs"].as_array().unwrap().len() >= 4);
    // A failed call exits non-zero and says why.
    let out = server.cli(&["invoke", "demo/echo", "--data", "{broken"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not JSON"));
}

#[tokio::test]
async fn function_errors_map_to_the_direktiv_contract() {
    let server = server_with_test_function().await;
    for mode in ["error", "crash", "status500", "text"] {
        deploy_mode(&server, mode, mode, json!({})).await;
    }
    // Direktiv-ErrorCode + message: a catchable error with that code, whatever the body.
    let (status, id, body) = server.invoke("demo", "error", "{}").await;
    assert_eq!(status, 502);
    let error = &parse(&body)["error"];
    assert_eq!(error["code"], "myapp.input");
    assert_eq!(
        error["message"],
        "Missing customerId property in JSON input."
    );
    assert_eq!(error["catchable"], true);
    let record = server.get_json(&format!("/api/v1/invocations/{id}")).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error_code"], "myapp.input");
    // A message without a code: an uncatchable crash.
    let (status, id, body) = server.invoke("demo", "crash", "{}").await;
    assert_eq!(status, 502);
    let error = &parse(&body)["error"];
    assert_eq!(error["code"], "faasbox.function.crashed");
    assert_eq!(error["message"], "something broke");
    assert_eq!(error["catchable"], false);
    assert_eq!(
        server.get_json(&format!("/api/v1/invocations/{id}")).await["status"],
        "crashed"
    );
    // Non-2xx without a code: "container failed".
    let (status, _, body) = server.invoke("demo", "status500", "{}").await;
    assert_eq!(status, 502);
    let error = &parse(&body)["error"];
    assert_eq!(error["code"], "container failed");
    assert!(
        error["message"].as_str().unwrap().contains("500"),
        "{error}"
    );
    // A body that is not JSON comes back base64.
    let (status, _, body) = server.invoke("demo", "text", "{}").await;
    assert_eq!(status, 200);
    use base64::Engine;
    let encoded = parse(&body);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, b"hello, not json");
    // Input that is not JSON never reaches the function.
    let (status, _, body) = server.invoke("demo", "text", "not json").await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("not JSON"));
}

#[tokio::test]
async fn timeout_kills_the_call_and_the_next_call_gets_a_fresh_instance() {
    let server = server_with_test_function().await;
    deploy_mode(
        &server,
        "slow",
        "sleep",
        json!({"timeout": "2s", "scale": {"max": 1}}),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, id, body) = server.invoke("demo", "slow", "{}").await;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(parse(&body)["error"]["code"], "faasbox.function.timeout");
    assert_eq!(
        server.get_json(&format!("/api/v1/invocations/{id}")).await["status"],
        "timeout"
    );
    // Same function, now answering quickly: the timed-out instance was replaced.
    deploy_mode(
        &server,
        "slow",
        "headers",
        json!({"timeout": "10s", "scale": {"max": 1}}),
    )
    .await;
    let (status, _, body) = server.invoke("demo", "slow", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // And a timed-out call on a function that stays the same is followed by a working one.
    deploy_mode(
        &server,
        "flaky",
        "sleep-if-asked",
        json!({"timeout": "1s", "scale": {"max": 1}}),
    )
    .await;
    let (status, _, body) = server.invoke("demo", "flaky", r#"{"sleep":true}"#).await;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    let f = server
        .get_json("/api/v1/namespaces/demo/functions/flaky")
        .await;
    assert_eq!(f["instances"]["busy_calls"], 0, "{f}");
    let (status, _, body) = server.invoke("demo", "flaky", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"slept": false}));
}

#[tokio::test]
async fn logs_attach_to_the_right_call_under_concurrency() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "echo", "echo", json!({"scale": {"max": 8}})).await;
    let calls = (0..8).map(|i| {
        let server = &server;
        async move {
            server
                .invoke("demo", "echo", json!({"call": i}).to_string())
                .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let ids: Vec<String> = results.iter().map(|(_, id, _)| id.clone()).collect();
    for (i, (status, id, body)) in results.iter().enumerate() {
        assert_eq!(*status, 200);
        assert_eq!(parse(body), json!({"call": i}));
        let lines = server.log_lines(id).await;
        for expected in [
            "endpoint-get",
            "endpoint-post",
            "stderr-line",
            "stdout-line",
        ] {
            assert!(
                lines.iter().any(|l| l == &format!("{expected} {id}")),
                "call {id} lacks its {expected} line: {lines:?}"
            );
        }
        for other in ids.iter().filter(|o| *o != id) {
            assert!(
                !lines.iter().any(|l| l.contains(other.as_str())),
                "call {id} holds a line of call {other}: {lines:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_function_reaches_a_server_on_the_host_loopback() {
    // The default network helper: slirp4netns.
    reaches_the_host_loopback(&[ALLOW_HOST_LOOPBACK], "slirp4netns").await;
}

#[tokio::test]
async fn a_function_reaches_the_host_loopback_through_pasta() {
    reaches_the_host_loopback(&[ALLOW_HOST_LOOPBACK, "--network-helper", "pasta"], "pasta").await;
}

/// A function fetches from a server the test runs on the host's loopback, through a server
/// started with `args` (which allow host loopback), whose network helper is `helper`.
async fn reaches_the_host_loopback(args: &[&str], helper: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let host = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = socket.read(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        socket
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nhello-from-host")
            .await
            .unwrap();
        request
    });
    // Opted in: by default the host's loopback is out of reach (isolation.rs).
    let server = server_with_test_function_and(args).await;
    deploy_mode(
        &server,
        "fetch",
        "fetch",
        json!({"envs": {"MODE": "fetch", "TARGET_PORT": port.to_string()}}),
    )
    .await;
    let (status, _, body) = server.invoke("demo", "fetch", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)["fetched"], "hello-from-host");
    let request = tokio::time::timeout(std::time::Duration::from_secs(5), host)
        .await
        .unwrap()
        .unwrap();
    assert!(request.starts_with("GET /hello"), "{request}");
    // The function's namespace is served by the helper chosen.
    let helpers: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .filter(|c| {
            // The server starts either by its full path (passt's AVX2 build keeps the name
            // pasta as its first argument).
            let program = c.split('\0').next().unwrap_or_default();
            std::path::Path::new(program)
                .file_name()
                .is_some_and(|name| name.to_string_lossy() == helper)
                && c.contains("/run/netns/")
        })
        .collect();
    assert!(!helpers.is_empty(), "no {helper} runs for the function");
}

#[tokio::test]
async fn a_function_deployed_with_runsc_runs_under_gvisor() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "native", "kernel", json!({})).await;
    deploy_mode(&server, "sandboxed", "kernel", json!({"runtime": "runsc"})).await;
    let (status, _, native) = server.invoke("demo", "native", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&native));
    let (status, _, sandboxed) = server.invoke("demo", "sandboxed", "{}").await;
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&sandboxed),
        support::tail(&server.log(), 20)
    );
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(
        parse(&native)["release"],
        host_release.trim(),
        "runc shares the host kernel"
    );
    assert_ne!(
        parse(&sandboxed)["release"],
        host_release.trim(),
        "gVisor's own kernel answers uname"
    );
    // Calls keep working on the warm gVisor instance.
    deploy_mode(
        &server,
        "sandboxed-echo",
        "echo",
        json!({"runtime": "runsc"}),
    )
    .await;
    for _ in 0..3 {
        let (status, id, body) = server
            .invoke("demo", "sandboxed-echo", r#"{"in":"gvisor ❄"}"#)
            .await;
        assert_eq!(status, 200);
        assert_eq!(parse(&body), json!({"in": "gvisor ❄"}));
        let lines = server.log_lines(&id).await;
        for expected in ["endpoint-get", "endpoint-post", "stderr-line"] {
            assert!(
                lines.contains(&format!("{expected} {id}")),
                "{expected} missing: {lines:?}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    }
}

#[tokio::test]
async fn a_timed_out_call_reaches_the_function_as_delete_with_its_action_id() {
    let gate = support::gate::Gate::start().await;
    let server = server_with_test_function_and(&[ALLOW_HOST_LOOPBACK]).await;
    deploy_mode(
        &server,
        "held",
        "gate",
        json!({
            "envs": {"MODE": "gate", "TARGET_PORT": gate.port.to_string()},
            "timeout": "2s",
            "scale": {"max": 1},
        }),
    )
    .await;
    let (status, id, body) = server.invoke("demo", "held", r#""first""#).await;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    // The function itself got `DELETE /` (its CGI reports it to the gate) with the call's id.
    support::wait_until(
        std::time::Duration::from_secs(30),
        "the function's DELETE",
        || gate.arrivals().iter().any(|a| a.host == "deleted"),
    )
    .await;
    let arrivals = gate.arrivals();
    let deleted: Vec<_> = arrivals.iter().filter(|a| a.host == "deleted").collect();
    let aid: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    assert_eq!(deleted.len(), 1, "{arrivals:?}");
    assert_eq!(deleted[0].tag, aid, "{arrivals:?}");
    assert_eq!(arrivals[0].tag, "first", "{arrivals:?}");
    gate.open();
}

/// The ids of the stem cells (containers created ahead, `--spare-containers`) the server under
/// `data_dir` holds now: their `instance.json` says `"stem": true` and runc (or crun) says
/// their container is `created`.
fn stem_cells(data_dir: &std::path::Path) -> Vec<String> {
    let roots = support::runc_roots(data_dir);
    std::fs::read_dir(data_dir.join("run/instances"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("instance.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                        .is_some_and(|meta| meta["stem"] == true)
                        && roots.iter().any(|(runtime, root)| {
                            std::process::Command::new(runtime)
                                .arg("--root")
                                .arg(root)
                                .arg("state")
                                .arg(e.file_name())
                                .output()
                                .ok()
                                .and_then(|out| serde_json::from_slice::<Value>(&out.stdout).ok())
                                .is_some_and(|state| state["status"] == "created")
                        })
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// After a cold start the server keeps a container of the same image and settings created
/// (default `--spare-containers 1`); a cold start of another function with those settings
/// takes it and answers; with `--spare-containers 0` none is made.
#[tokio::test]
async fn a_cold_start_takes_a_container_created_ahead() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "first", "echo", json!({})).await;
    let (status, _, body) = server.invoke("demo", "first", r#"{"n":1}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut stems = Vec::new();
    for _ in 0..400 {
        stems = stem_cells(&server.data_dir);
        if !stems.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(stems.len(), 1, "one stem cell after a start: {stems:?}");
    // `runc create` has returned; the driver counts it ready just after.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    deploy_mode(&server, "second", "echo", json!({})).await;
    let (status, _, body) = server.invoke("demo", "second", r#"{"n":2}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"n": 2}));
    let meta: Value = serde_json::from_slice(
        &std::fs::read(
            server
                .data_dir
                .join("run/instances")
                .join(&stems[0])
                .join("instance.json"),
        )
        .expect("the stem cell is now an instance"),
    )
    .unwrap();
    assert_eq!(
        meta["function"],
        "demo/second",
        "{meta}; server log:\n{}",
        support::tail(&server.log(), 30)
    );
    let listed = server
        .get_json("/api/v1/namespaces/demo/functions/second/instances")
        .await;
    assert!(
        listed.to_string().contains(&stems[0]),
        "the function's instance is the stem cell {}: {listed}",
        stems[0]
    );

    let bare = server_with_test_function_and(&["--spare-containers", "0"]).await;
    deploy_mode(&bare, "first", "echo", json!({})).await;
    let (status, _, _) = bare.invoke("demo", "first", "{}").await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stem_cells(&bare.data_dir), Vec::<String>::new());
}
