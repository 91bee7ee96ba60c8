//! The quickstart's examples, as `scripts/quickstart.sh` sets them up: the `greet` function
//! built by `examples/build-busybox-function.sh`, and the `greet-team` workflow, deployed and
//! run through the CLI against a real server.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::Server;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[tokio::test]
async fn the_example_workflow_greets_a_team_and_reports_a_member_without_a_name() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("greet.tar");
    let built = Command::new("sh")
        .arg(examples().join("build-busybox-function.sh"))
        .arg(examples().join("functions/greet/index.cgi"))
        .arg(&image)
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    server.cli_ok(&[
        "image",
        "import",
        image.to_str().unwrap(),
        "--name",
        "examples/greet:latest",
        "--entrypoint",
        "/bin/busybox httpd -f -p 8080 -h /www",
    ]);
    server.cli_ok(&["ns", "create", "examples"]);
    server.cli_ok(&[
        "fn",
        "deploy",
        "examples/greet",
        "--image",
        "examples/greet:latest",
    ]);
    let flow = examples().join("flows/greet-team.yaml");
    server.cli_ok(&[
        "flow",
        "deploy",
        "examples/greet-team",
        flow.to_str().unwrap(),
    ]);

    let out = server.cli_ok(&[
        "flow",
        "run",
        "examples/greet-team",
        "--data",
        r#"{"members":["Ada","Grace"]}"#,
        "--wait",
        "-o",
        "json",
    ]);
    let out: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        out["output"]["greetings"],
        json!(["Hello, Ada!", "Hello, Grace!"]),
        "{out}"
    );

    let out = server.cli_ok(&[
        "flow",
        "run",
        "examples/greet-team",
        "--data",
        r#"{"members":["Ada",""]}"#,
        "--wait",
        "-o",
        "json",
    ]);
    let out: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        out["output"]["problem"], r#"the input needs a "name", like {"name":"Ada"}"#,
        "{out}"
    );
}
