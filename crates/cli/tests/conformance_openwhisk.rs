//! OpenWhisk's tests of docker actions, translated to faasbox's platform path (deploy, invoke,
//! logs) against a real server and runc containers: the `__OW_*` environment of apache/openwhisk
//! `BasicActionRunnerTests` and `ContainerProxy`, `DockerExampleContainerTests`' blackbox
//! example, the skeleton's stub, and an action with nothing to run.

mod support;

use serde_json::{json, Value};
use support::images;
use support::{json as parse, Server};

const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// Prints the `__OW_*` variables as a JSON object (`${X-unset}` tells unset from empty).
const ENV_ACTION: &str = r#"#!/bin/sh
printf '{"api_host":"%s","api_key":"%s","namespace":"%s","action_name":"%s","action_version":"%s","activation_id":"%s","transaction_id":"%s","deadline":"%s"}\n' \
  "$__OW_API_HOST" "${__OW_API_KEY-unset}" "$__OW_NAMESPACE" "$__OW_ACTION_NAME" \
  "${__OW_ACTION_VERSION-unset}" "$__OW_ACTIVATION_ID" "$__OW_TRANSACTION_ID" "$__OW_DEADLINE"
"#;

/// `sdk/docker/example.c`, as a shell script (the skeleton's `example` image).
const EXAMPLE: &str = r#"#!/bin/sh
echo "This is an example log message from an arbitrary C program!"
printf '{ "msg": "Hello from arbitrary C program!", "args": %s }' "${1:-undefined}"
"#;

/// The docker skeleton's stub action.
const STUB: &str = r#"#!/bin/sh
echo "This is a stub action. Replace it with custom logic."
echo "{\"error\": \"This is a stub action. Replace it with custom logic.\"}"
"#;

async fn setup() -> (Server, Vec<tempfile::TempDir>) {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let mut dirs = Vec::new();
    for (name, files) in [
        ("test/plain:latest", vec![]),
        ("test/example:latest", vec![("action/exec", EXAMPLE, 0o755)]),
        ("test/stub:latest", vec![("action/exec", STUB, 0o755)]),
    ] {
        let (dir, tar) = images::rootfs_tar_with(&files);
        let r = server
            .import(&tar, name, &[("entrypoint", "[\"/bin/sh\"]")])
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        dirs.push(dir);
    }
    (server, dirs)
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test]
async fn activation_environment_as_openwhisk_sets_it() {
    let (server, _dirs) = setup().await;
    let spec = json!({"image": "test/plain:latest", "contract": "openwhisk", "code": ENV_ACTION,
                      "timeout": "30s"});
    server.deploy("demo", "envs", spec.clone()).await;
    let before = now_ms();
    let (status, id, body) = server.invoke("demo", "envs", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let env = parse(&body);
    assert_eq!(env["namespace"], "demo", "{env}");
    assert_eq!(env["action_name"], "/demo/envs", "{env}");
    // OpenWhisk creates an action as 0.0.1 and bumps the patch on every update.
    assert_eq!(env["action_version"], "0.0.1", "{env}");
    // A new OpenWhisk action gets no API key (`provide-api-key: false`): the variable is unset.
    assert_eq!(env["api_key"], "unset", "{env}");
    // The activation id is the invocation's: 32 lowercase hex digits, as OpenWhisk's.
    let activation = env["activation_id"].as_str().unwrap();
    assert_eq!(activation, id);
    assert!(
        activation.len() == 32
            && activation
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{activation}"
    );
    assert_eq!(env["transaction_id"], id.as_str());
    // The deadline: epoch milliseconds as a string, the call's start plus its timeout.
    let deadline: u128 = env["deadline"].as_str().unwrap().parse().unwrap();
    assert!(
        deadline >= before + 29_000 && deadline <= now_ms() + 31_000,
        "{deadline} vs {before}"
    );
    // Nothing but the sentinels on the call's stdout and stderr (the result line is no log).
    let logs = server.log_lines(&id).await;
    let sentinels = logs.iter().filter(|l| *l == SENTINEL).count();
    assert_eq!(sentinels, 2, "{logs:?}");

    // Updated twice: 0.0.3.
    server.deploy("demo", "envs", spec.clone()).await;
    server.deploy("demo", "envs", spec).await;
    let (status, _, body) = server.invoke("demo", "envs", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)["action_version"], "0.0.3");
}

#[tokio::test]
async fn docker_example_and_stub_images() {
    let (server, _dirs) = setup().await;
    server
        .deploy(
            "demo",
            "example",
            json!({"image": "test/example:latest", "contract": "openwhisk"}),
        )
        .await;
    // "run sample without init" / "run sample with argument"
    for args in [json!({}), json!({"a": "A"}), json!({"i": 1})] {
        let (status, id, body) = server.invoke("demo", "example", args.to_string()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let out = parse(&body);
        assert_eq!(out["msg"], "Hello from arbitrary C program!");
        assert_eq!(out["args"], args);
        let logs = server.log_lines(&id).await;
        assert!(
            logs.iter()
                .any(|l| l == "This is an example log message from an arbitrary C program!"),
            "{logs:?}"
        );
        assert_eq!(
            logs.iter().filter(|l| *l == SENTINEL).count(),
            2,
            "{logs:?}"
        );
    }

    // The skeleton's stub answers its stub result (the proxy's 200; no code was given).
    server
        .deploy(
            "demo",
            "stub",
            json!({"image": "test/stub:latest", "contract": "openwhisk"}),
        )
        .await;
    let (status, _, body) = server.invoke("demo", "stub", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        parse(&body),
        json!({"error": "This is a stub action. Replace it with custom logic."})
    );
}

#[tokio::test]
async fn nothing_to_run_fails_with_the_proxys_init_error() {
    let (server, _dirs) = setup().await;
    // No code and no /action/exec in the image.
    server
        .deploy(
            "demo",
            "empty",
            json!({"image": "test/plain:latest", "contract": "openwhisk"}),
        )
        .await;
    let (status, _, body) = server.invoke("demo", "empty", "{}").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    let error: Value = parse(&body)["error"].clone();
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("The action failed to generate or locate a binary. See logs for details."),
        "{error}"
    );
    // Text code without a `#!` line is refused as OpenWhisk's proxy refuses it.
    server
        .deploy(
            "demo",
            "noshebang",
            json!({"image": "test/plain:latest", "contract": "openwhisk", "code": "echo '{}'\n"}),
        )
        .await;
    let (status, id, body) = server.invoke("demo", "noshebang", "{}").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        parse(&body)["error"]["message"],
        "action answered HTTP 502: The action did not return a dictionary or array."
    );
    let logs = server.log_lines(&id).await;
    assert!(
        logs.iter().any(|l| l.ends_with("exec format error")),
        "{logs:?}"
    );
}

/// Reports how many arguments it got and how many bytes came on stdin.
const COUNT_ACTION: &[u8] =
    b"#!/bin/sh\nn=$(/bin/busybox wc -c)\necho \"{\\\"argc\\\": $#, \\\"stdin\\\": $n}\"\n";

#[tokio::test]
async fn a_zip_from_the_cli_runs_and_argv_carries_the_input_only_under_128_kib() {
    use std::io::Write as _;
    let (server, _dirs) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("action.zip");
    {
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        writer.start_file("exec", options).unwrap();
        writer.write_all(COUNT_ACTION).unwrap();
        writer.finish().unwrap();
    }
    // `--code ./action.zip`, as the README writes it (relative to the working directory).
    let out = server
        .cli_command(&[
            "fn",
            "deploy",
            "demo/counted",
            "--contract",
            "openwhisk",
            "--image",
            "test/plain:latest",
            "--code",
            "./action.zip",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = server.cli_ok(&["invoke", "demo/counted", "--data", r#"{"a":1}"#]);
    assert_eq!(
        serde_json::from_str::<Value>(shown.trim()).unwrap(),
        json!({"argc": 1, "stdin": 7}),
        "{shown}"
    );
    // Arguments of 131071 bytes (Linux's longest argument) still come as argv[1]; one byte
    // more come on stdin only.
    for (len, argc) in [(131_071usize, 1), (131_072, 0)] {
        let input = json!({"p": "x".repeat(len - 8)}).to_string();
        assert_eq!(input.len(), len);
        let (status, _, body) = server.invoke("demo", "counted", input).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(parse(&body), json!({"argc": argc, "stdin": len}), "{len}");
    }
}
