//! A call that runs past its function's timeout is the catchable timeout (504
//! `faasbox.function.timeout`) every time, for every contract — never the uncatchable crash,
//! whichever of the agent's deadline and the server's own timer fires first.

mod support;

use serde_json::{json, Value};
use support::images::{self, ISOLATE, TEST_FUNCTION};
use support::{json as parse, Server};

/// How many calls in a row each contract must time out the same way.
const CALLS: usize = 10;

fn entrypoint(cmd: &[&str]) -> Vec<(&'static str, String)> {
    vec![("entrypoint", serde_json::to_string(cmd).unwrap())]
}

async fn import(server: &Server, name: &str, tar: &std::path::Path, query: Vec<(&str, String)>) {
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(tar, name, &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}

/// Calls `name` [`CALLS`] times in a row; every call must be the timeout.
async fn assert_times_out_every_time(server: &Server, name: &str, input: &Value) {
    for attempt in 1..=CALLS {
        let (status, id, body) = server.invoke("demo", name, input.to_string()).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 504, "{name}, call {attempt}: {text}");
        let error = &parse(&body)["error"];
        assert_eq!(
            error["code"], "faasbox.function.timeout",
            "{name}, call {attempt}: {error}"
        );
        assert_eq!(error["catchable"], true, "{name}, call {attempt}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("longer than the function's timeout of 1s"),
            "{name}, call {attempt}: {message}"
        );
        let record = server.get_json(&format!("/api/v1/invocations/{id}")).await;
        assert_eq!(
            record["status"], "timeout",
            "{name}, call {attempt}: {record}"
        );
    }
}

#[tokio::test]
async fn every_contract_times_out_catchably_every_time() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let http = images::build(TEST_FUNCTION);
    import(
        &server,
        "test/http:latest",
        &http.rootfs_tar,
        images::rootfs_query(),
    )
    .await;
    let (_plain_dir, plain) = images::rootfs_tar_with(&[("bin/isolate.sh", ISOLATE, 0o755)]);
    import(
        &server,
        "test/plain:latest",
        &plain,
        entrypoint(&["/bin/sh"]),
    )
    .await;
    import(
        &server,
        "test/isolate:latest",
        &plain,
        entrypoint(&["/bin/isolate.sh"]),
    )
    .await;

    let limits = json!({"timeout": "1s", "scale": {"max": 1}});
    let with = |spec: Value| {
        let mut spec = spec;
        for (k, v) in limits.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    server
        .deploy(
            "demo",
            "cmd",
            with(json!({"image": "test/plain:latest", "cmd": "/usr/share/direktiv/direktiv-cmd"})),
        )
        .await;
    server
        .deploy(
            "demo",
            "openwhisk",
            with(
                json!({"image": "test/plain:latest", "contract": "openwhisk",
                        "code": "#!/bin/sh\necho started\nexec sleep 30\n"}),
            ),
        )
        .await;
    server
        .deploy(
            "demo",
            "file",
            with(json!({"image": "test/isolate:latest", "contract": "file", "envs": {"MODE": "sleep"}})),
        )
        .await;
    server
        .deploy(
            "demo",
            "http",
            with(json!({"image": "test/http:latest", "envs": {"MODE": "sleep"}})),
        )
        .await;

    let sleep_cmd = json!({"commands": [{"command": "echo started"}, {"command": "sleep 30"}]});
    let empty = json!({});
    futures_util::future::join4(
        assert_times_out_every_time(&server, "cmd", &sleep_cmd),
        assert_times_out_every_time(&server, "openwhisk", &empty),
        assert_times_out_every_time(&server, "file", &empty),
        assert_times_out_every_time(&server, "http", &empty),
    )
    .await;

    // The call's log has what the function printed before it was stopped.
    let (status, id, _) = server.invoke("demo", "cmd", sleep_cmd.to_string()).await;
    assert_eq!(status, 504);
    let logs = server.log_lines(&id).await;
    assert!(logs.iter().any(|l| l == "started"), "{logs:?}");
    // And the instance still answers the next call that fits in the timeout.
    let quick = json!({"commands": [{"command": "echo -n quick"}]});
    let (status, _, body) = server.invoke("demo", "cmd", quick.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)[0]["Output"], "quick");
}
