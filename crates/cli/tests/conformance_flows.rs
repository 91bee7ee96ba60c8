//! Direktiv's workflow tests (v0.8 `tests/engine/*.test.js`, `tests/instances/wait-*.test.js`,
//! `tests/events/workflow_events.test.js`) and the facts of its engine (`pkg/flow/states`:
//! switch `truth()`, retry and catch patterns, error codes) translated: the same flows, deployed
//! under Direktiv's file names, run against a real server (and real runc containers where an
//! action calls a function).
//!
//! Where Direktiv answers a failed `?wait=true` run with HTTP 500, faasbox answers 422 with
//! the same code and message (and Direktiv's two headers). Not translated: `base64js.test.js`
//! (faasbox has no `js(…)` expressions).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::images::{self, rootfs_query, TEST_FUNCTION};
use support::Server;

/// A server with namespace demo and no functions.
async fn plain() -> Server {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server
}

/// A server with namespace demo, the image `alpine` (busybox, for direktiv-cmd) and the
/// namespace functions `fails` (answers Direktiv's error `myapp.input`) and `echo` (logs to
/// the log endpoint, stdout and stderr, and answers its input).
async fn with_functions() -> (Server, tempfile::TempDir) {
    let server = plain().await;
    let wrapper = |applet: &str| format!("#!/bin/sh\nexec /bin/busybox {applet} \"$@\"\n");
    let (bash, seq) = (wrapper("sh"), wrapper("seq"));
    let (dir, tar) = images::rootfs_tar_with(&[
        ("bin/bash", &bash, 0o755),
        ("bin/seq", &seq, 0o755),
        ("www/cgi-bin/index.cgi", TEST_FUNCTION, 0o755),
    ]);
    let r = server
        .import(&tar, "alpine", &[("entrypoint", "[\"/bin/sh\"]")])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let query = rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "test/function:latest", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    for (name, mode) in [("fails", "error"), ("echo", "echo")] {
        server
            .deploy(
                "demo",
                name,
                json!({"image": "test/function:latest", "envs": {"MODE": mode}, "scale": {"max": 2, "concurrency": 4}}),
            )
            .await;
    }
    (server, dir)
}

/// The line (from 1) of `source` that starts with `text`, and the column (from 1) of `at`
/// in it.
fn place(source: &str, text: &str, at: &str) -> (u64, u64) {
    let (index, line) = source
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with(text))
        .unwrap_or_else(|| panic!("no line starting with {text:?}"));
    let column = line
        .find(at)
        .unwrap_or_else(|| panic!("no {at:?} in {line:?}"));
    (index as u64 + 1, column as u64 + 1)
}

/// Runs `path` with `?wait=true` and a raw body (`content_type` as given): status and body.
async fn run_raw(server: &Server, path: &str, body: &str, content_type: &str) -> (u16, Value) {
    let mut request = server
        .http
        .post(server.url(&format!(
            "/api/v1/namespaces/demo/flows/{path}/run?wait=true"
        )))
        .body(body.to_string());
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    let r = request.send().await.expect("run");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Asserts a failed run: 422 with `code` and exactly `message` (the instance's own, as
/// Direktiv answers it), and Direktiv's headers.
async fn assert_fails(server: &Server, path: &str, code: &str, message: &str) {
    let r = server
        .http
        .post(server.url(&format!(
            "/api/v1/namespaces/demo/flows/{path}/run?wait=true"
        )))
        .json(&json!({}))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 422, "{path}");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("direktiv-instance-error-code"), code, "{path}");
    assert_eq!(header("direktiv-instance-error-message"), message, "{path}");
    let id = header("faasbox-instance-id");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": {"code": code, "message": message, "instance": id}}),
        "{path}"
    );
}

/// Asserts a failed `?wait=true` run's answer: 422 with `code` and a message starting with
/// `start`.
fn assert_failure(status: u16, out: &Value, code: &str, start: &str) {
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], code, "{out}");
    let message = out["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(start), "{out}");
}

/// Polls the instance until it has one of `statuses`.
async fn wait_status(server: &Server, id: &str, statuses: &[&str]) -> Value {
    server
        .wait_instance(id, statuses, Duration::from_secs(60))
        .await
}

// --- tests/engine: noop, simple-chain, simple-loop, instance-data; tests/instances: wait-* --

#[tokio::test]
async fn engine_noop_chain_loop_and_instance_data() {
    let server = plain().await;

    // engine/noop.test.js and instances/wait-success.test.js
    server
        .deploy_flow(
            "noop.yaml",
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform:\n    result: x\n",
        )
        .await;
    let (status, _, out) = server.run_flow("noop.yaml", &json!({})).await;
    assert_eq!((status, out), (200, json!({"result": "x"})));
    // `path=%2Fnoop.yaml` (from the namespace's root) is the same flow.
    let (status, _, out) = server.run_flow("%2Fnoop.yaml", &json!({})).await;
    assert_eq!((status, out), (200, json!({"result": "x"})));

    // engine/simple-chain.test.js
    server
        .deploy_flow(
            "simple-chain.yaml",
            r#"direktiv_api: workflow/v1
states:
- id: a
  type: noop
  transform:
    a: x
  transition: b
- id: b
  type: noop
  transform: 'jq(.b = "y")'
  transition: c
- id: c
  type: noop
  transform: 'jq(.c = "z")'
"#,
        )
        .await;
    let (status, _, out) = server.run_flow("simple-chain.yaml", &json!({})).await;
    assert_eq!((status, out), (200, json!({"a": "x", "b": "y", "c": "z"})));

    // engine/simple-loop.test.js: the switch stops at 0 (Direktiv's truth(); jq's
    // truthiness would loop until the transition bound).
    server
        .deploy_flow(
            "simple-loop.yaml",
            r#"direktiv_api: workflow/v1
states:
- id: init
  type: noop
  transform:
    i: 5
    result: []
  transition: check
- id: check
  type: switch
  conditions:
  - condition: 'jq(.i)'
    transform: 'jq(.result += [.i] | .i -= 1)'
    transition: check
"#,
        )
        .await;
    let (status, _, out) = server.run_flow("simple-loop.yaml", &json!({})).await;
    assert_eq!(
        (status, out),
        (200, json!({"i": 0, "result": [5, 4, 3, 2, 1]}))
    );

    // engine/instance-data.test.js: no input is {}, an object is the data, other JSON goes
    // under .input, a body that is not JSON goes there as base64.
    server
        .deploy_flow(
            "instance-data.yaml",
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n",
        )
        .await;
    for (body, content_type, expected) in [
        ("", "", json!({})),
        (r#"{"x": 5}"#, "application/json", json!({"x": 5})),
        ("[1, 2, 3]", "application/json", json!({"input": [1, 2, 3]})),
        (
            "Hello, world!",
            "text/plain",
            json!({"input": "SGVsbG8sIHdvcmxkIQ=="}),
        ),
        (
            "Hello, world!",
            "",
            json!({"input": "SGVsbG8sIHdvcmxkIQ=="}),
        ),
    ] {
        let (status, out) = run_raw(&server, "instance-data.yaml", body, content_type).await;
        assert_eq!(
            (status, out),
            (200, expected),
            "{body:?} as {content_type:?}"
        );
    }
    // Sent as JSON but not JSON: a mistake, said so (nothing runs).
    let (status, out) = run_raw(&server, "instance-data.yaml", "{oops", "application/json").await;
    assert_eq!(status, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not JSON"),
        "{out}"
    );

    // Conditions as Direktiv's truth() reads them, and a condition whose jq gives null is
    // direktiv.jq.badCommand (catchable), not "not met".
    server
        .deploy_flow(
            "truth.yaml",
            r#"direktiv_api: workflow/v1
states:
- id: s
  type: switch
  conditions:
  - condition: 'jq(.v)'
    transition: met
  defaultTransition: not
  catch:
  - error: direktiv.jq.badCommand
    transition: bad
- {id: met, type: noop, transform: {met: true}}
- {id: not, type: noop, transform: {met: false}}
- {id: bad, type: noop, transform: {bad: 'jq(.error.code)'}}
"#,
        )
        .await;
    for (v, expected) in [
        (json!(0), json!({"met": false})),
        (json!(""), json!({"met": false})),
        (json!([]), json!({"met": false})),
        (json!({}), json!({"met": false})),
        (json!(false), json!({"met": false})),
        (json!("0"), json!({"met": true})),
        (json!(-1), json!({"met": true})),
        (json!(null), json!({"bad": "direktiv.jq.badCommand"})),
    ] {
        let (status, _, out) = server.run_flow("truth.yaml", &json!({ "v": v })).await;
        assert_eq!((status, out), (200, expected), "v = {v}");
    }
}

// --- tests/engine/error-state.test.js, catch.test.js; tests/instances/wait-fail.test.js ---

const ERROR_YAML: &str = r#"direktiv_api: workflow/v1
states:
- id: a
  type: error
  error: testcode
  message: 'this is a test error'
  transform:
    result: x
"#;

#[tokio::test]
async fn error_states_fail_the_instance_and_catch_takes_the_child_s_error() {
    let server = plain().await;
    server.deploy_flow("error.yaml", ERROR_YAML).await;
    assert_fails(&server, "error.yaml", "testcode", "this is a test error").await;

    // A subflow's catchable error reaches the caller unchanged.
    server
        .deploy_flow(
            "caller.yaml",
            r#"direktiv_api: workflow/v1
functions:
- id: child
  type: subflow
  workflow: '/error.yaml'
states:
- id: a
  type: action
  action:
    function: child
"#,
        )
        .await;
    assert_fails(&server, "caller.yaml", "testcode", "this is a test error").await;

    // An error state marks the instance failed and the flow goes on: it ends failed.
    server
        .deploy_flow(
            "error-transition.yaml",
            r#"direktiv_api: workflow/v1
states:
- id: a
  type: error
  error: testcode
  message: 'this is a test error'
  transition: b
- id: b
  type: noop
  transform:
    ran: true
"#,
        )
        .await;
    assert_fails(
        &server,
        "error-transition.yaml",
        "testcode",
        "this is a test error",
    )
    .await;

    // double-error.yaml: the second raise is its own catchable error.
    server
        .deploy_flow(
            "double-error.yaml",
            "direktiv_api: workflow/v1\nstates:\n- {id: a, type: error, error: one, message: first, transition: b}\n- {id: b, type: error, error: two, message: second}\n",
        )
        .await;
    let (status, _, out) = server.run_flow("double-error.yaml", &json!({})).await;
    assert_failure(
        status,
        &out,
        "direktiv.workflow.multipleErrors",
        "the workflow instance tried to throw multiple errors",
    );

    // engine/catch.test.js: the caught error at .error as {code, msg}; no transition ends
    // the flow successfully.
    server
        .deploy_flow(
            "catch.yaml",
            r#"direktiv_api: workflow/v1
functions:
- id: child
  type: subflow
  workflow: '/error.yaml'
states:
- id: a
  type: action
  action:
    function: child
  catch:
  - error: 'testcode'
"#,
        )
        .await;
    let (status, _, out) = server.run_flow("catch.yaml", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["error"],
        json!({"code": "testcode", "msg": "this is a test error"})
    );

    // instances/wait-fail.test.js with Direktiv's own names.
    server
        .deploy_flow(
            "wait-fail.yaml",
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: error\n  error: errA\n  message: error A\n  transform: {result: x}\n",
        )
        .await;
    assert_fails(&server, "wait-fail.yaml", "errA", "error A").await;
    assert_fails(&server, "%2Fwait-fail.yaml", "errA", "error A").await;
    // The CLI names the instance itself.
    let out = server.cli(&["flow", "run", "demo/wait-fail.yaml", "--wait"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed: error A (errA)") && stderr.contains("instance "),
        "{stderr}"
    );
}

// --- tests/engine/simple-subflow.test.js, and what happens around it ------------------------

const CHILD_YAML: &str = r#"direktiv_api: workflow/v1
states:
- id: a
  type: noop
  transform:
    result: 'jq(.input + 1)'
"#;

fn parent_yaml(workflow: &str) -> String {
    format!(
        r#"direktiv_api: workflow/v1
functions:
- id: child
  type: subflow
  workflow: '{workflow}'
states:
- id: a
  type: action
  action:
    function: child
    input:
      input: 1
  transform:
    result: 'jq(.return.result)'
"#
    )
}

#[tokio::test]
async fn subflow_references_resolve_as_direktiv_resolves_them() {
    let server = plain().await;
    server.deploy_flow("a/child.yaml", CHILD_YAML).await;
    for (n, workflow) in [
        "/a/child.yaml",
        "child.yaml",
        "./child.yaml",
        "../a/child.yaml",
    ]
    .iter()
    .enumerate()
    {
        let path = format!("a/parent{}.yaml", n + 1);
        server.deploy_flow(&path, &parent_yaml(workflow)).await;
        let (status, id, out) = server.run_flow(&path, &json!({})).await;
        assert_eq!((status, &out), (200, &json!({"result": 2})), "{workflow}");
        // The parent links its child.
        let instance = server.instance(&id).await;
        let calls = instance["calls"].as_array().cloned().unwrap_or_default();
        assert_eq!(calls.len(), 1, "{instance}");
        assert_eq!(calls[0]["kind"], "instance");
        assert_eq!(calls[0]["status"], "complete");
        let child = server
            .instance(calls[0]["id"].as_str().expect("child id"))
            .await;
        assert_eq!(child["flow"], "a/child.yaml");
        assert_eq!(child["parent"], id.as_str());
    }

    // Relative means relative to the parent's folder: from a/, `a/child.yaml` is
    // a/a/child.yaml — which exists here, so it wins over a/child.yaml.
    server
        .deploy_flow(
            "a/a/child.yaml",
            &CHILD_YAML.replace(".input + 1", ".input + 100"),
        )
        .await;
    server
        .deploy_flow("a/nested.yaml", &parent_yaml("a/child.yaml"))
        .await;
    let (status, _, out) = server.run_flow("a/nested.yaml", &json!({})).await;
    assert_eq!((status, out), (200, json!({"result": 101})));

    // faasbox flows deployed without `.yaml` are found by Direktiv's references, and a
    // plain reference from a folder still finds a flow at the namespace's root (what faasbox
    // resolved before).
    server.deploy_flow("lib/plus", CHILD_YAML).await;
    server
        .deploy_flow("app/main", &parent_yaml("/lib/plus.yaml"))
        .await;
    let (status, _, out) = server.run_flow("app/main", &json!({})).await;
    assert_eq!((status, out), (200, json!({"result": 2})));
    server
        .deploy_flow("app/legacy", &parent_yaml("lib/plus"))
        .await;
    let (status, _, out) = server.run_flow("app/legacy", &json!({})).await;
    assert_eq!((status, out), (200, json!({"result": 2})));
    // `..` stops at the root.
    server
        .deploy_flow("app/up", &parent_yaml("../../../lib/plus"))
        .await;
    let (status, _, out) = server.run_flow("app/up", &json!({})).await;
    assert_eq!((status, out), (200, json!({"result": 2})));

    // A missing subflow: catchable direktiv.workflow.notfound, naming where it looked.
    server
        .deploy_flow("a/lost.yaml", &parent_yaml("./nowhere.yaml"))
        .await;
    let (status, _, out) = server.run_flow("a/lost.yaml", &json!({})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "direktiv.workflow.notfound");
    let message = out["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("demo/a/nowhere.yaml")
            && message.contains("faasbox flow deploy demo/a/nowhere.yaml"),
        "{message}"
    );
    let caught = parent_yaml("./nowhere.yaml").replace(
        "  transform:\n    result: 'jq(.return.result)'\n",
        "  catch:\n  - error: direktiv.workflow.notfound\n",
    );
    server.deploy_flow("a/lost-caught.yaml", &caught).await;
    let (status, _, out) = server.run_flow("a/lost-caught.yaml", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["error"]["code"], "direktiv.workflow.notfound");

    // An event-started flow cannot be a subflow: uncatchable direktiv.workflow.invoke.
    server
        .deploy_flow(
            "on-event.yaml",
            "direktiv_api: workflow/v1\nstart:\n  type: event\n  event:\n    type: greeting\nstates:\n- {id: a, type: noop}\n",
        )
        .await;
    let invoking = parent_yaml("/on-event.yaml").replace(
        "  transform:\n    result: 'jq(.return.result)'\n",
        "  catch:\n  - error: '*'\n",
    );
    server.deploy_flow("invoker.yaml", &invoking).await;
    let (status, _, out) = server.run_flow("invoker.yaml", &json!({})).await;
    // Not caught by `*`.
    assert_failure(
        status,
        &out,
        "direktiv.workflow.invoke",
        "cannot invoke event-based workflow as a subflow",
    );
}

// --- tests/engine/getter-setter.test.js ------------------------------------------------------

const GETTER_SETTER: &str = r#"direktiv_api: workflow/v1
states:
- id: get
  type: getter
  variables:
  - {key: x, scope: namespace, as: nsx}
  - {key: x, scope: workflow, as: wfx}
  - {key: x, scope: instance, as: inx}
  transform:
    nsx: 'jq(.var.nsx // 0)'
    wfx: 'jq(.var.wfx // 0)'
    inx: 'jq(.var.inx // 0)'
  transition: add
- id: add
  type: noop
  log: 'jq(.)'
  transform:
    nsx: 'jq(.nsx + 1)'
    wfx: 'jq(.wfx + 10)'
    inx: 'jq(.inx + 100)'
  transition: set
- id: set
  type: setter
  variables:
  - {key: x, scope: namespace, value: 'jq(.nsx)'}
  - {key: x, scope: workflow, value: 'jq(.wfx)'}
  - {key: x, scope: instance, value: 'jq(.inx)'}
"#;

#[tokio::test]
async fn variables_of_three_scopes_as_in_direktiv_s_getter_setter_test() {
    let server = plain().await;
    server.deploy_flow("test.yaml", GETTER_SETTER).await;
    server.deploy_flow("test2.yaml", GETTER_SETTER).await;
    server
        .deploy_flow(
            "nuller.yaml",
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: setter\n  variables:\n  - {key: x, scope: namespace, value: null}\n",
        )
        .await;
    for (path, expected) in [
        ("test.yaml", json!({"nsx": 1, "wfx": 10, "inx": 100})),
        ("test.yaml", json!({"nsx": 2, "wfx": 20, "inx": 100})),
        ("test2.yaml", json!({"nsx": 3, "wfx": 10, "inx": 100})),
        ("nuller.yaml", json!({})),
        ("test.yaml", json!({"nsx": 1, "wfx": 30, "inx": 100})),
    ] {
        let (status, _, out) = server.run_flow(path, &json!({})).await;
        assert_eq!((status, out), (200, expected), "{path}");
    }
}

// --- tests/engine/sync.test.js --------------------------------------------------------------

#[tokio::test]
async fn a_parallel_state_of_twelve_subflows_returns_in_action_order() {
    let server = plain().await;
    server
        .deploy_flow(
            "noop.yaml",
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n",
        )
        .await;
    let actions: String = (0..12)
        .map(|x| format!("  - function: noop\n    input:\n      x: {x}\n"))
        .collect();
    server
        .deploy_flow(
            "parallel.yaml",
            &format!(
                "direktiv_api: workflow/v1\nfunctions:\n- id: noop\n  type: subflow\n  workflow: /noop.yaml\nstates:\n- id: a\n  type: parallel\n  mode: and\n  timeout: PT2M\n  actions:\n{actions}"
            ),
        )
        .await;
    let (status, _, out) = server.run_flow("parallel.yaml", &json!({})).await;
    let expected: Vec<Value> = (0..12).map(|x| json!({ "x": x })).collect();
    assert_eq!((status, out), (200, json!({ "return": expected })));
}

// --- tests/engine/simple-events.test.js -----------------------------------------------------

#[tokio::test]
async fn generated_events_reach_listeners_and_a_flow_with_an_unreachable_state_deploys() {
    let server = plain().await;
    server
        .deploy_flow(
            "generate-event.yaml",
            r#"direktiv_api: workflow/v1
states:
- id: delay
  type: delay
  duration: PT1S
  transition: generate
- id: generate
  type: generateEvent
  event:
    type: test.simple
    source: "generate-event"
"#,
        )
        .await;
    let listener = |transform: &str, rest: &str| {
        format!(
            r#"direktiv_api: workflow/v1
functions:
- id: gen
  type: subflow
  workflow: /generate-event.yaml
states:
- id: trigger
  type: action
  async: true
  action:
    function: gen
  transition: listen
- id: listen
  type: consumeEvent
  timeout: PT1M
  event:
    type: test.simple
  transform: {transform}
{rest}"#
        )
    };
    server
        .deploy_flow("simple-listener.yaml", &listener("\n    result: x", ""))
        .await;
    // `?wait=true` waits through the event wait, as Direktiv's does.
    let (status, _, out) = server.run_flow("simple-listener.yaml", &json!({})).await;
    assert_eq!((status, out), (200, json!({"result": "x"})));

    // or-listener.yaml has a state no transition reaches; Direktiv accepts it, so it deploys
    // (with a warning at its place).
    let or_listener = listener(
        "'jq(.result = \"x\")'\n  transition: a",
        "- id: a\n  type: noop\n  transform: 'jq(.transitioned = \"a\")'\n- id: b\n  type: noop\n  transform: 'jq(.transitioned = \"b\")'\n",
    );
    let r = server.put_flow("or-listener.yaml", &or_listener).await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    let warnings = body["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{body}");
    let (line, _) = place(&or_listener, "- id: b", "-");
    assert_eq!(warnings[0]["line"], line, "{body}");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("state 'b' is unreachable"),
        "{body}"
    );
    let (status, _, out) = server.run_flow("or-listener.yaml", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"], "x");
    assert_eq!(out["transitioned"], "a");
    let event = &out["test.simple"];
    assert_eq!(event["datacontenttype"], "application/json", "{out}");
    assert_eq!(event["source"], "generate-event");
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "test.simple");
    // Without `data`, the generated event carries the generating instance's data.
    assert_eq!(event["data"], json!({}), "{out}");
    // The CLI shows the warning.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("or-listener.yaml");
    std::fs::write(&file, &or_listener).expect("write");
    let out = server.cli(&[
        "flow",
        "deploy",
        "demo/or-listener.yaml",
        file.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("warning: line {line}, column")) && stderr.contains("unreachable"),
        "{stderr}"
    );
}

// --- tests/events/workflow_events.test.js ---------------------------------------------------

/// Sends an event in binary mode with JSON data and extension attributes.
async fn send_event(
    server: &Server,
    event_type: &str,
    id: &str,
    data: Value,
    ext: &[(&str, &str)],
) {
    let mut request = server
        .http
        .post(server.url("/api/v1/namespaces/demo/events"))
        .header("content-type", "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "conformance")
        .header("ce-type", event_type)
        .body(data.to_string());
    for (name, value) in ext {
        request = request.header(format!("ce-{name}"), *value);
    }
    let r = request.send().await.expect("POST event");
    assert_eq!(r.status(), 202);
}

async fn instances_of(server: &Server, flow: &str) -> Vec<Value> {
    let list = server
        .get_json("/api/v1/namespaces/demo/instances?limit=1000")
        .await;
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["flow"] == flow)
        .cloned()
        .collect()
}

async fn first_instance_of(server: &Server, flow: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(i) = instances_of(server, flow).await.first() {
            return i["id"].as_str().expect("id").to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no instance of {flow}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn event_started_flows_as_direktiv_s_workflow_events_test() {
    let server = plain().await;
    let start = |context: &str| {
        format!(
            "direktiv_api: workflow/v1\nstart:\n  type: event\n  event:\n    type: greeting\n{context}states:\n- id: a\n  type: noop\n  transform:\n    greeted: true\n"
        )
    };
    // Run by hand: refused, as Direktiv refuses it.
    server.deploy_flow("greeting.yaml", &start("")).await;
    let (status, out) = run_raw(&server, "greeting.yaml", "{}", "application/json").await;
    assert_eq!(status, 409, "{out}");
    assert_eq!(out["error"]["code"], "direktiv.workflow.invoke");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cannot manually invoke event-based workflow"),
        "{out}"
    );
    assert!(instances_of(&server, "greeting.yaml").await.is_empty());
    server
        .delete("/api/v1/namespaces/demo/flows/greeting.yaml")
        .await;

    // A start's context: an event with `state: stopped` starts only the flow that asks for it.
    server
        .deploy_flow(
            "started.yaml",
            &start("    context:\n      state: started\n"),
        )
        .await;
    server
        .deploy_flow(
            "stopped.yaml",
            &start("    context:\n      state: stopped\n"),
        )
        .await;
    send_event(
        &server,
        "greeting",
        "g1",
        json!({}),
        &[("state", "stopped")],
    )
    .await;
    let id = first_instance_of(&server, "stopped.yaml").await;
    let done = wait_status(&server, &id, &["complete"]).await;
    assert_eq!(done["output"]["greeted"], true);
    // The event has been dispatched to every listener by now (one transaction per event).
    assert!(instances_of(&server, "started.yaml").await.is_empty());

    // A consumeEvent's context computed from the start event; only a matching event resumes.
    server
        .deploy_flow(
            "hello.yaml",
            r#"direktiv_api: workflow/v1
start:
  type: event
  event:
    type: hello
states:
- id: wait
  type: consumeEvent
  event:
    type: hellowait
    context:
      hello: 'jq(."hello".hello)'
"#,
        )
        .await;
    send_event(
        &server,
        "hello",
        "h1",
        json!({"hello": "world"}),
        &[("hello", "world")],
    )
    .await;
    let id = first_instance_of(&server, "hello.yaml").await;
    wait_status(&server, &id, &["waiting"]).await;
    send_event(&server, "hellowait", "w1", json!({}), &[("hello", "other")]).await;
    // The event whose context does not match must not resume it: watched for 3 s (events
    // are dispatched within milliseconds).
    support::assert_stays(
        Duration::from_secs(3),
        "the instance waiting",
        || server.instance(&id),
        |i| i["status"] == "waiting",
    )
    .await;
    send_event(&server, "hellowait", "w2", json!({}), &[("hello", "world")]).await;
    let done = wait_status(&server, &id, &["complete", "failed"]).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["output"]["hello"]["data"]["hello"], "world", "{done}");
    assert_eq!(done["output"]["hellowait"]["hello"], "world", "{done}");
}

// --- tests/engine/cancel.test.js ------------------------------------------------------------

#[tokio::test]
async fn an_api_cancel_ends_the_instance_and_is_not_caught() {
    let server = plain().await;
    let delay = |catch: &str| {
        format!("direktiv_api: workflow/v1\nstates:\n- id: a\n  type: delay\n  duration: PT5S\n{catch}  transition: b\n- id: b\n  type: noop\n")
    };
    server.deploy_flow("delay.yaml", &delay("")).await;
    server
        .deploy_flow(
            "delay-catch.yaml",
            &delay("  catch:\n  - error: 'direktiv.cancels.api'\n    transition: b\n"),
        )
        .await;
    for path in ["delay.yaml", "delay-catch.yaml"] {
        let id = server.start_flow(path, &json!({})).await;
        server
            .wait_log(&id, "running state 'a'", Duration::from_secs(30))
            .await;
        let r = server
            .http
            .post(server.url(&format!("/api/v1/instances/{id}/cancel")))
            .send()
            .await
            .expect("cancel");
        assert_eq!(r.status(), 202);
        let done = wait_status(&server, &id, &["cancelled", "complete", "failed"]).await;
        assert_eq!(done["status"], "cancelled", "{path}: {done}");
        assert_eq!(
            done["error"],
            json!({"code": "direktiv.cancels.api", "message": "cancelled by api request"}),
            "{path}"
        );
    }
}

// --- pkg/flow/states: retries and catch patterns (no v0.8 end-to-end test exists) -----------

#[tokio::test]
async fn retry_codes_and_catch_patterns_are_unanchored_regular_expressions() {
    let (server, _dir) = with_functions().await;
    let retrying = |codes: &str| {
        format!(
            r#"direktiv_api: workflow/v1
functions:
- id: fails
  type: knative-namespace
  service: fails
states:
- id: a
  type: action
  action:
    function: fails
    retries:
      max_attempts: 2
      delay: PT0.1S
      codes: {codes}
"#
        )
    };
    let calls = |instance: &Value| instance["calls"].as_array().cloned().unwrap_or_default();

    // Direktiv's own example `.*`, and a pattern found inside the code (`input` in
    // `myapp.input`): two retries after the first call, then direktiv.retries.exceeded.
    for codes in [r#"[".*"]"#, r#"["input"]"#, r#"["*"]"#] {
        server.deploy_flow("retry.yaml", &retrying(codes)).await;
        let (status, id, out) = server.run_flow("retry.yaml", &json!({})).await;
        assert_eq!(status, 422, "{codes}: {out}");
        assert_eq!(out["error"]["code"], "direktiv.retries.exceeded", "{codes}");
        let message = out["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("maximum retries exceeded"), "{message}");
        let instance = server.instance(&id).await;
        let made = calls(&instance);
        assert_eq!(made.len(), 3, "{codes}: {instance}");
        assert!(made
            .iter()
            .all(|c| c["status"] == "failed" && c["state"] == "a"));
    }
    // Anchored, it does not match: no retry, the function's own error.
    server
        .deploy_flow("retry.yaml", &retrying(r#"["^input"]"#))
        .await;
    let (status, id, out) = server.run_flow("retry.yaml", &json!({})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "myapp.input");
    assert_eq!(
        out["error"]["message"],
        "Missing customerId property in JSON input."
    );
    assert_eq!(calls(&server.instance(&id).await).len(), 1);

    // Catch: the first pattern found in the code wins.
    server
        .deploy_flow(
            "catch.yaml",
            r#"direktiv_api: workflow/v1
functions:
- {id: fails, type: knative-namespace, service: fails}
states:
- id: a
  type: action
  action:
    function: fails
  catch:
  - error: '^input'
    transition: wrong
  - error: 'app\.in'
    transition: handled
- {id: wrong, type: noop, transform: {wrong: true}}
- {id: handled, type: noop, transform: {handled: 'jq(.error)'}}
"#,
        )
        .await;
    let (status, _, out) = server.run_flow("catch.yaml", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!({"handled": {"code": "myapp.input", "msg": "Missing customerId property in JSON input."}})
    );

    // A glob that is not a regular expression is refused at deploy, where it is written
    // (Direktiv accepts it and it never matches).
    let glob = retrying(r#"[".*", "*.input"]"#);
    let r = server.put_flow("glob.yaml", &glob).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    let problem = &body["error"]["problems"][0];
    let (line, column) = place(&glob, "      codes:", "\"*.input");
    assert_eq!(
        (problem["line"].as_u64(), problem["column"].as_u64()),
        (Some(line), Some(column)),
        "{body}"
    );
    let message = problem["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("error pattern '*.input' is not a valid regular expression")
            && message.contains(r"write '^.*\.input$'"),
        "{message}"
    );
    let r = server.get("/api/v1/namespaces/demo/flows/glob.yaml").await;
    assert_eq!(r.status(), 404, "a refused flow is not stored");
}

// --- direktiv-cmd's output and an HTTP function's logs in the instance log ------------------

#[tokio::test]
async fn an_action_s_log_lines_reach_the_instance_log_attributed_to_its_state() {
    let (server, _dir) = with_functions().await;
    let secret = "t0ps3cr3t-value";
    let r = server
        .http
        .put(server.url("/api/v1/namespaces/demo/secrets/token"))
        .body(secret)
        .send()
        .await
        .expect("secret");
    assert!(r.status().is_success());
    // Direktiv's special-command "supress" test: the log has hello1 and not hello2.
    server
        .deploy_flow(
            "cmd.yaml",
            r#"direktiv_api: workflow/v1
functions:
- id: get
  image: alpine
  type: knative-workflow
  cmd: /usr/share/direktiv/direktiv-cmd
states:
- id: getter
  type: action
  action:
    function: get
    secrets: [token]
    input:
      data:
        commands:
        - command: echo hello1
        - command: echo hello2
          suppress_output: true
        - command: echo 'token jq(.secrets.token)'
"#,
        )
        .await;
    let (status, id, out) = server.run_flow("cmd.yaml", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["return"][1]["Output"], "hello2\n");
    let instance = server.instance(&id).await;
    let calls = instance["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1, "{instance}");
    let call = &calls[0];
    assert_eq!(
        (
            &call["kind"],
            &call["state"],
            &call["function"],
            &call["status"]
        ),
        (
            &json!("invocation"),
            &json!("getter"),
            &json!("get"),
            &json!("succeeded")
        )
    );
    let invocation = call["id"].as_str().expect("invocation id").to_string();
    let logs = server
        .get_json(&format!("/api/v1/namespaces/demo/instances/{id}/logs"))
        .await;
    let logs = logs["logs"].as_array().cloned().unwrap_or_default();
    let of_call: Vec<&Value> = logs
        .iter()
        .filter(|l| l["invocation"] == invocation.as_str())
        .collect();
    assert!(
        of_call.iter().all(|l| l["state"] == "getter"),
        "{of_call:#?}"
    );
    let messages: Vec<&str> = of_call
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    // Direktiv's entry is the write as it came (`hello1\n`); faasbox keeps lines.
    assert!(messages.contains(&"hello1"), "{messages:?}");
    assert!(
        messages.contains(&"running command 'echo hello2'"),
        "{messages:?}"
    );
    assert!(!messages.contains(&"hello2"), "suppressed: {messages:?}");
    assert!(messages.contains(&"token ***"), "{messages:?}");
    let all = serde_json::to_string(&logs).expect("json");
    assert!(!all.contains(secret), "the secret reached the instance log");
    // The link is logged where the call starts.
    assert!(
        messages.first().is_some_and(
            |m| *m == format!("state 'getter' calls function 'get': invocation {invocation}")
        ),
        "{messages:?}"
    );
    // The invocation's own log has the same lines.
    assert!(server
        .log_lines(&invocation)
        .await
        .contains(&"hello1".to_string()));
    // The CLI shows the state of each function line and the call.
    let text = server.cli_ok(&["flow", "logs", &id]);
    assert!(text.contains("[getter] hello1"), "{text}");
    let text = server.cli_ok(&["flow", "instance", &id]);
    assert!(
        text.contains(&format!("invocation {invocation}")) && text.contains("succeeded"),
        "{text}"
    );

    // An HTTP function: what it sent to the log endpoint and printed, by state.
    server
        .deploy_flow(
            "http.yaml",
            "direktiv_api: workflow/v1\nfunctions:\n- {id: echo, type: knative-namespace, service: echo}\nstates:\n- id: first\n  type: action\n  action: {function: echo, input: {n: 1}}\n  transition: second\n- id: second\n  type: action\n  action: {function: echo, input: {n: 2}}\n",
        )
        .await;
    let (status, id, out) = server.run_flow("http.yaml", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    let logs = server
        .get_json(&format!("/api/v1/namespaces/demo/instances/{id}/logs"))
        .await;
    let logs = logs["logs"].as_array().cloned().unwrap_or_default();
    for state in ["first", "second"] {
        let lines: Vec<&str> = logs
            .iter()
            .filter(|l| l["state"] == state && l["invocation"].is_string())
            .filter_map(|l| l["message"].as_str())
            .collect();
        for prefix in [
            "endpoint-get ",
            "endpoint-post ",
            "stderr-line ",
            "stdout-line ",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(prefix)),
                "{state}: no {prefix} in {lines:?}"
            );
        }
    }

    // A call refused before it became an invocation (no such function) links nothing.
    server
        .deploy_flow(
            "ghost.yaml",
            "direktiv_api: workflow/v1\nfunctions:\n- {id: ghost, type: knative-namespace, service: ghost}\nstates:\n- {id: a, type: action, action: {function: ghost}}\n",
        )
        .await;
    let (status, id, out) = server.run_flow("ghost.yaml", &json!({})).await;
    assert_eq!(status, 422, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ghost"),
        "{out}"
    );
    assert_eq!(server.instance(&id).await["calls"], json!([]));
    assert!(!server.instance_log(&id).await.contains("invocation "));

    // A call's lines are copied up to a bound; the invocation keeps them all.
    server
        .deploy_flow(
            "many.yaml",
            "direktiv_api: workflow/v1\nfunctions:\n- {id: get, image: alpine, type: knative-workflow, cmd: /usr/share/direktiv/direktiv-cmd}\nstates:\n- id: count\n  type: action\n  action:\n    function: get\n    input: {commands: [{command: seq 1 1500}]}\n",
        )
        .await;
    let (status, id, out) = server.run_flow("many.yaml", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    let logs = server
        .get_json(&format!("/api/v1/namespaces/demo/instances/{id}/logs"))
        .await;
    let copied: Vec<&str> = logs["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["state"] == "count" && l["invocation"].is_string())
        .filter_map(|l| l["message"].as_str())
        .collect();
    // The link line, 1000 copied lines and the note of how many more the invocation has.
    assert_eq!(copied.len(), 1002, "{}", copied.len());
    let note = copied.last().copied().unwrap_or_default();
    let invocation = server.instance(&id).await["calls"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let all = server.log_lines(&invocation).await;
    assert!(all.len() >= 1502, "{}", all.len());
    assert_eq!(copied[1..1001], all[..1000], "the first lines are copied");
    assert_eq!(
        note,
        format!(
            "{} more lines of invocation {invocation} are not copied here; see them with `faasbox logs {invocation}`",
            all.len() - 1000
        )
    );
}

// --- foreach, validate, transforms, parallel `or` (pkg/flow/states facts) -------------------

#[tokio::test]
async fn foreach_validate_transform_and_parallel_errors_carry_direktiv_s_codes() {
    let server = plain().await;
    server.deploy_flow("error.yaml", ERROR_YAML).await;
    server
        .deploy_flow(
            "double.yaml",
            "direktiv_api: workflow/v1\nstates:\n- {id: a, type: noop, transform: {n: 'jq(.n * 2)'}}\n",
        )
        .await;
    server
        .deploy_flow(
            "each.yaml",
            r#"direktiv_api: workflow/v1
functions:
- {id: double, type: subflow, workflow: double.yaml}
states:
- id: each
  type: foreach
  array: 'jq(.items)'
  action:
    function: double
    input: {n: 'jq(.)'}
  transform: {doubled: 'jq([.return[].n])'}
"#,
        )
        .await;
    let (status, _, out) = server
        .run_flow("each.yaml", &json!({"items": [1, 2, 3, 4]}))
        .await;
    assert_eq!((status, out), (200, json!({"doubled": [2, 4, 6, 8]})));
    // An empty array runs nothing. (Direktiv leaves `.return` as it was; faasbox sets it to
    // [] so the transform below sees an empty list rather than a previous state's result.)
    let (status, _, out) = server.run_flow("each.yaml", &json!({"items": []})).await;
    assert_eq!((status, out), (200, json!({"doubled": []})));
    let (status, _, out) = server
        .run_flow("each.yaml", &json!({"items": {"not": "a list"}}))
        .await;
    assert_failure(
        status,
        &out,
        "direktiv.foreach.badArray",
        "jq produced non-array output",
    );

    server
        .deploy_flow(
            "validate.yaml",
            "direktiv_api: workflow/v1\nstates:\n- id: v\n  type: validate\n  schema:\n    type: object\n    required: [name]\n",
        )
        .await;
    let (status, _, out) = server
        .run_flow("validate.yaml", &json!({"name": "n"}))
        .await;
    assert_eq!((status, out), (200, json!({"name": "n"})));
    let (status, _, out) = server.run_flow("validate.yaml", &json!({})).await;
    assert_failure(
        status,
        &out,
        "direktiv.schema.failed",
        "subject failed its JSONSchema validation",
    );

    server
        .deploy_flow(
            "not-object.yaml",
            "direktiv_api: workflow/v1\nstates:\n- {id: a, type: noop, transform: 'jq(1)'}\n",
        )
        .await;
    let (status, _, out) = server.run_flow("not-object.yaml", &json!({})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "direktiv.jq.notObject");

    server
        .deploy_flow(
            "or.yaml",
            "direktiv_api: workflow/v1\nfunctions:\n- {id: err, type: subflow, workflow: /error.yaml}\nstates:\n- id: p\n  type: parallel\n  mode: or\n  actions: [{function: err}, {function: err}]\n",
        )
        .await;
    let (status, _, out) = server.run_flow("or.yaml", &json!({})).await;
    assert_failure(
        status,
        &out,
        "direktiv.parallel.allFailed",
        "all branches failed",
    );
}
