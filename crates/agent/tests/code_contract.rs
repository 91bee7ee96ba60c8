//! The agent binary speaking the code contract with the host's python3, node and /bin/sh:
//! handlers built from code called as `handle(context, payload)` in a warm worker (python3,
//! nodejs) or a script per call (shell).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use faasbox_proto::{
    InvokeOutcome, InvokeStatus, LogStream, CODE_FUNCTION_ERROR, CODE_INPUT_ERROR,
};
use hyper::StatusCode;
use serde_json::{json, Value};
use support::{deadline_in, lines_of, ok_output, Options, TestAgent, DEADLINE};

/// An agent for the code in `files` (written into a fresh directory), not yet checked ready.
async fn code_agent(
    language: &str,
    handler: &str,
    files: &[(&str, &str)],
) -> (TestAgent, tempfile::TempDir) {
    code_agent_with_env(language, handler, files, Vec::new()).await
}

/// The same with more environment variables for the agent (and so the worker).
async fn code_agent_with_env(
    language: &str,
    handler: &str,
    files: &[(&str, &str)],
    env: Vec<(String, String)>,
) -> (TestAgent, tempfile::TempDir) {
    let code = tempfile::tempdir().unwrap();
    fs::set_permissions(code.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for (name, text) in files {
        let path = code.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
    }
    let agent = TestAgent::start_with(Options {
        contract: "code",
        command: Some(vec![]),
        config: json!({"code": {"language": language, "handler": handler, "dir": code.path()}}),
        env,
        ..Options::default()
    })
    .await;
    (agent, code)
}

/// The same, checked ready.
async fn ready_agent(
    language: &str,
    handler: &str,
    files: &[(&str, &str)],
) -> (TestAgent, tempfile::TempDir) {
    let (agent, code) = code_agent(language, handler, files).await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    (agent, code)
}

/// The reason ready gives for code that cannot be loaded.
async fn ready_error(language: &str, handler: &str, files: &[(&str, &str)]) -> String {
    let (agent, _code) = code_agent(language, handler, files).await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report:?}");
    let reason = report.error.expect("a reason");
    // A call gets the same reason.
    let outcome = agent
        .invoke("after-1", r#"{"context":{},"payload":1}"#)
        .await;
    assert_eq!(outcome.status, InvokeStatus::Crash, "{outcome:?}");
    assert_eq!(outcome.message.as_deref(), Some(reason.as_str()));
    reason
}

fn call_input(payload: Value) -> String {
    json!({"context": {"secrets": {"token": "s3"}, "serviceBindings": {}}, "payload": payload})
        .to_string()
}

/// A call that succeeded with the output `null`.
fn assert_null(outcome: &InvokeOutcome) {
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    assert!(
        outcome.output.as_ref().is_none_or(|o| o.get() == "null"),
        "{outcome:?}"
    );
}

fn error_of(outcome: &InvokeOutcome) -> (&str, &str) {
    assert_eq!(outcome.status, InvokeStatus::Error, "{outcome:?}");
    (
        outcome.code.as_deref().unwrap_or_default(),
        outcome.message.as_deref().unwrap_or_default(),
    )
}

const PY_HELLO: &str = r#"
import sys
import helper

count = 0

def handle(context, payload):
    global count
    count += 1
    print("stdout of call", payload.get("n"))
    print("stderr of call", payload.get("n"), file=sys.stderr)
    sys.stdout.write("no line end")
    return {
        "greeting": helper.greet(payload.get("name")),
        "payload": payload,
        "count": count,
        "deadline": context.get("deadline"),
        "secrets": context.get("secrets"),
    }
"#;

const PY_HELPER: &str = r#"
print("helper imported")

def greet(name):
    return "hello " + name
"#;

const JS_HELLO: &str = r#"
const helper = require('./lib/helper');
let count = 0;
module.exports = async (context, payload) => {
  count += 1;
  console.log('stdout of call', payload.n);
  console.error('stderr of call', payload.n);
  await new Promise((resolve) => setTimeout(resolve, 20));
  return {
    greeting: helper.greet(payload.name),
    payload,
    count,
    deadline: context.deadline,
    secrets: context.secrets,
  };
};
"#;

const JS_HELPER: &str = r#"
exports.greet = (name) => 'hello ' + name;
"#;

/// Calls the echo handler twice: the output is what it returned, the worker stays warm (the
/// counter goes on) and each call's stdout and stderr are in that call's logs only.
async fn echo_twice(agent: &TestAgent, python: bool) {
    let first = agent
        .invoke(
            "echo-1",
            call_input(json!({"name": "ada", "n": 1, "x": 2.5, "ü": "✓"})),
        )
        .await;
    assert_eq!(
        ok_output(&first),
        json!({
            "greeting": "hello ada",
            "payload": {"name": "ada", "n": 1, "x": 2.5, "ü": "✓"},
            "count": 1,
            "deadline": DEADLINE,
            "secrets": {"token": "s3"},
        })
    );
    let second = agent
        .invoke("echo-2", call_input(json!({"name": "bob", "n": 2})))
        .await;
    let output = ok_output(&second);
    assert_eq!(output["count"], 2, "the worker stays warm: {output}");
    assert_eq!(output["greeting"], "hello bob");

    let stdout_1 = lines_of(&first.logs, LogStream::Stdout);
    let stdout_2 = lines_of(&second.logs, LogStream::Stdout);
    if python {
        // Printed while the module loaded, before any call: given to the first call.
        assert_eq!(
            stdout_1,
            ["helper imported", "stdout of call 1", "no line end"]
        );
        assert_eq!(stdout_2, ["stdout of call 2", "no line end"]);
    } else {
        assert_eq!(stdout_1, ["stdout of call 1"]);
        assert_eq!(stdout_2, ["stdout of call 2"]);
    }
    assert_eq!(
        lines_of(&first.logs, LogStream::Stderr),
        ["stderr of call 1"]
    );
    assert_eq!(
        lines_of(&second.logs, LogStream::Stderr),
        ["stderr of call 2"]
    );

    // A body that is not the envelope is the payload itself.
    let plain = agent.invoke("echo-3", r#"{"name":"cy","n":3}"#).await;
    let output = ok_output(&plain);
    assert_eq!(output["payload"], json!({"name": "cy", "n": 3}));
    assert_eq!(output["secrets"], Value::Null);
    assert_eq!(output["count"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_echo_with_a_second_module() {
    let (agent, _code) = ready_agent(
        "python3",
        "hello.handle",
        &[("hello.py", PY_HELLO), ("helper.py", PY_HELPER)],
    )
    .await;
    echo_twice(&agent, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_dotted_package_and_default_function() {
    let module = "def handle(context, payload):\n    return {'pkg': True, 'payload': payload}\n";
    let (agent, _code) = ready_agent(
        "python3",
        "pkg.mod",
        &[("pkg/__init__.py", ""), ("pkg/mod.py", module)],
    )
    .await;
    let outcome = agent.invoke("pkg-1", call_input(json!([1, 2]))).await;
    assert_eq!(ok_output(&outcome), json!({"pkg": true, "payload": [1, 2]}));
    let (agent, _code) = ready_agent(
        "python3",
        "pkg.mod.handle",
        &[("pkg/__init__.py", ""), ("pkg/mod.py", module)],
    )
    .await;
    let outcome = agent.invoke("pkg-2", call_input(json!(null))).await;
    assert_eq!(ok_output(&outcome), json!({"pkg": true, "payload": null}));
}

#[tokio::test(flavor = "multi_thread")]
async fn node_async_echo_with_a_second_module() {
    let (agent, _code) = ready_agent(
        "nodejs",
        "hello",
        &[("hello.js", JS_HELLO), ("lib/helper.js", JS_HELPER)],
    )
    .await;
    echo_twice(&agent, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_worker_runs_as_the_functions_user_in_the_code_dir() {
    let code = "module.exports = (context, payload) => ({ uid: process.getuid(), gid: process.getgid(), cwd: process.cwd(), mark: process.env.FAASBOX_TEST_MARK, size: payload.length });\n";
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.path().join("who.js"), code).unwrap();
    let agent = TestAgent::start_with(Options {
        contract: "code",
        command: Some(vec![]),
        user: Some(json!({"uid": 65534, "gid": 65534})),
        config: json!({"code": {"language": "nodejs", "handler": "who", "dir": dir.path()}}),
        ..Options::default()
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    // A large payload and answer pass through the worker's pipes.
    let big = "x".repeat(3 * 1024 * 1024);
    let outcome = agent.invoke("who-1", call_input(json!(big))).await;
    assert_eq!(
        ok_output(&outcome),
        json!({"uid": 65534, "gid": 65534, "cwd": dir.path(), "mark": "xyz", "size": big.len()})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_async_handler_is_awaited() {
    let code = "import asyncio\n\nasync def handle(context, payload):\n    await asyncio.sleep(0.01)\n    return {'awaited': payload}\n";
    let (agent, _code) = ready_agent("python3", "coro.handle", &[("coro.py", code)]).await;
    let outcome = agent.invoke("coro-1", call_input(json!(7))).await;
    assert_eq!(ok_output(&outcome), json!({"awaited": 7}));
}

/// Debian's `python3-minimal` has no `json` module: the shim reads and writes JSON itself.
#[tokio::test(flavor = "multi_thread")]
async fn python_without_the_json_module() {
    let shadow = tempfile::tempdir().unwrap();
    fs::set_permissions(shadow.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(shadow.path().join("json")).unwrap();
    fs::write(
        shadow.path().join("json/__init__.py"),
        "raise ImportError('no json in python3-minimal')\n",
    )
    .unwrap();
    let handler = "import sys\n\ndef handle(context, payload):\n    if payload == 'set':\n        return {1}\n    if payload == 'nan':\n        return float('nan')\n    if payload == 'bad':\n        raise ValueError('bad')\n    return {'payload': payload, 'deadline': context['deadline'], 'tuple': (1, None), 1: True, 'json': 'json' in sys.modules}\n";
    let (agent, _code) = code_agent_with_env(
        "python3",
        "echo",
        &[("echo.py", handler)],
        vec![("PYTHONPATH".into(), shadow.path().display().to_string())],
    )
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    let payload = json!({"text": "ü \" \\ \n \u{1F600} \u{1}", "big": 12345678901234567890u64, "f": -2.5e-3, "l": [true, false, null, {}, []]});
    let outcome = agent.invoke("mini-1", call_input(payload.clone())).await;
    assert_eq!(
        ok_output(&outcome),
        json!({"payload": payload, "deadline": DEADLINE, "tuple": [1, null], "1": true, "json": false})
    );
    let outcome = agent.invoke("mini-2", call_input(json!("set"))).await;
    assert_eq!(
        error_of(&outcome),
        (CODE_FUNCTION_ERROR, "the handler's result is not JSON: TypeError: Object of type set is not JSON serializable")
    );
    let outcome = agent.invoke("mini-3", call_input(json!("nan"))).await;
    assert_eq!(error_of(&outcome).0, CODE_FUNCTION_ERROR);
    let outcome = agent.invoke("mini-4", call_input(json!("bad"))).await;
    assert!(error_of(&outcome)
        .1
        .starts_with("ValueError: bad\nTraceback"));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_large_payload_round_trip() {
    let (agent, _code) = ready_agent(
        "python3",
        "echo",
        &[(
            "echo.py",
            "def handle(context, payload):\n    if payload == 'huge':\n        return 'x' * (65 * 1024 * 1024)\n    return payload\n",
        )],
    )
    .await;
    let big =
        json!({"text": "ü".repeat(2 * 1024 * 1024), "list": (0..10_000).collect::<Vec<u32>>()});
    let outcome = agent.invoke("big-1", call_input(big.clone())).await;
    assert_eq!(ok_output(&outcome), big);
    // Past the output limit of every contract: the function's error, and a fresh worker.
    let outcome = agent.invoke("huge-1", call_input(json!("huge"))).await;
    assert_eq!(
        error_of(&outcome),
        (
            CODE_FUNCTION_ERROR,
            "the handler's result is larger than 67108864 bytes"
        )
    );
    let outcome = agent.invoke("big-2", call_input(json!([1]))).await;
    assert_eq!(ok_output(&outcome), json!([1]));
}

#[tokio::test(flavor = "multi_thread")]
async fn node_es_modules_are_imported() {
    let files = [
        ("package.json", r#"{"type": "module"}"#),
        ("hello.js", "import { twice } from './lib.js';\nexport default async (context, payload) => ({ esm: twice(payload) });\nexport function named(context, payload) { return 'named ' + payload; }\n"),
        ("lib.js", "export const twice = (n) => n * 2;\n"),
    ];
    let (agent, _code) = ready_agent("nodejs", "hello", &files).await;
    let outcome = agent.invoke("esm-1", call_input(json!(4))).await;
    assert_eq!(ok_output(&outcome), json!({"esm": 8}));
    let (agent, _code) = ready_agent("nodejs", "hello.named", &files).await;
    let outcome = agent.invoke("esm-2", call_input(json!(4))).await;
    assert_eq!(ok_output(&outcome), json!("named 4"));
    let reason = ready_error("nodejs", "hello.missing", &files).await;
    assert_eq!(reason, "module 'hello' has no function 'missing'");

    // A node that cannot require an ES module (before 20.19, e.g. Debian 12's 18): imported.
    let no_require = vec![(
        "NODE_OPTIONS".to_owned(),
        "--no-experimental-require-module".to_owned(),
    )];
    for (handler, expected) in [
        ("hello", json!({"esm": 8})),
        ("hello.named", json!("named 4")),
    ] {
        let (agent, _code) =
            code_agent_with_env("nodejs", handler, &files, no_require.clone()).await;
        let (status, report) = agent.ready().await;
        assert_eq!(status, StatusCode::OK, "{report:?}");
        let outcome = agent.invoke("esm-3", call_input(json!(4))).await;
        assert_eq!(ok_output(&outcome), expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_named_function_returning_a_promise() {
    let code = "exports.run = (context, payload) => Promise.resolve({ doubled: payload * 2 });\n";
    let (agent, _code) = ready_agent("nodejs", "calc.run", &[("calc.js", code)]).await;
    let outcome = agent.invoke("calc-1", call_input(json!(21))).await;
    assert_eq!(ok_output(&outcome), json!({"doubled": 42}));
}

const PY_ERRORS: &str = r#"
import os

def check(payload):
    if payload == "value":
        raise ValueError("bad input")
    if payload == "type":
        raise TypeError("wrong type")
    if payload == "runtime":
        raise RuntimeError("it broke")

def handle(context, payload):
    check(payload)
    if payload == "set":
        return {1, 2}
    if payload == "nan":
        return float("nan")
    if payload == "none":
        return None
    if payload == "exit":
        print("leaving")
        os._exit(3)
    return "fine"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_input_and_function_errors() {
    let (agent, code) = ready_agent("python3", "errs.handle", &[("errs.py", PY_ERRORS)]).await;
    let file = code.path().join("errs.py").display().to_string();

    let outcome = agent.invoke("value-1", call_input(json!("value"))).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_INPUT_ERROR);
    let expected_start = format!(
        "ValueError: bad input\nTraceback (most recent call last):\n  File \"{file}\", line 13, in handle\n    check(payload)\n  File \"{file}\", line 6, in check\n"
    );
    assert!(message.starts_with(&expected_start), "{message}");
    assert!(!message.contains("shim.py"), "{message}");

    let outcome = agent.invoke("type-1", call_input(json!("type"))).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_INPUT_ERROR);
    assert!(
        message.starts_with("TypeError: wrong type\nTraceback"),
        "{message}"
    );

    let outcome = agent
        .invoke("runtime-1", call_input(json!("runtime")))
        .await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_FUNCTION_ERROR);
    assert!(
        message.starts_with("RuntimeError: it broke\nTraceback"),
        "{message}"
    );
    assert!(message.contains(", line 10, in check"), "{message}");

    // A result that is not JSON is the function's fault, whatever the exception's class.
    let outcome = agent.invoke("set-1", call_input(json!("set"))).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_FUNCTION_ERROR);
    assert!(
        message.starts_with("the handler's result is not JSON: TypeError: Object of type set is not JSON serializable"),
        "{message}"
    );
    let outcome = agent.invoke("nan-1", call_input(json!("nan"))).await;
    assert_eq!(error_of(&outcome).0, CODE_FUNCTION_ERROR);

    let outcome = agent.invoke("none-1", call_input(json!("none"))).await;
    assert_null(&outcome);

    // A worker that dies during a call: the call crashes, its last words are in its logs, and a
    // fresh worker takes the next call.
    let outcome = agent.invoke("exit-1", call_input(json!("exit"))).await;
    assert_eq!(outcome.status, InvokeStatus::Crash, "{outcome:?}");
    let message = outcome.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("worker died during the call (function process exited with status 3)"),
        "{message}"
    );
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["leaving"]);
    let outcome = agent.invoke("fine-1", call_input(json!("ok"))).await;
    assert_eq!(ok_output(&outcome), json!("fine"));
    // Still ready: the code is fine.
    assert_eq!(agent.ready().await.0, StatusCode::OK);
}

const JS_ERRORS: &str = r#"
function check(payload) {
  if (payload === 'type') throw new TypeError('wrong type');
  if (payload === 'range') throw new RangeError('out of range');
  if (payload === 'string') throw 'just a string';
}
module.exports.handle = async (context, payload) => {
  check(payload);
  if (payload === 'bigint') return { n: 10n };
  if (payload === 'undefined') return undefined;
  if (payload === 'spin') { console.log('spinning'); for (;;) {} }
  if (payload === 'later') { setTimeout(() => process.exit(5), 50); return 'leaving soon'; }
  return 'fine';
};
"#;

#[tokio::test(flavor = "multi_thread")]
async fn node_input_and_function_errors_and_a_busy_loop_killed() {
    let (agent, code) = ready_agent("nodejs", "errs.handle", &[("errs.js", JS_ERRORS)]).await;
    let file = code.path().join("errs.js").display().to_string();

    let outcome = agent.invoke("type-1", call_input(json!("type"))).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_INPUT_ERROR);
    assert!(
        message.starts_with("TypeError: wrong type\n    at check ("),
        "{message}"
    );
    assert!(message.contains(&format!("{file}:3:")), "{message}");
    assert!(!message.contains("shim.js"), "{message}");

    let outcome = agent.invoke("range-1", call_input(json!("range"))).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_FUNCTION_ERROR);
    assert!(
        message.starts_with("RangeError: out of range\n    at check ("),
        "{message}"
    );

    let outcome = agent.invoke("string-1", call_input(json!("string"))).await;
    assert_eq!(
        error_of(&outcome),
        (CODE_FUNCTION_ERROR, "string: just a string")
    );

    let outcome = agent.invoke("bigint-1", call_input(json!("bigint"))).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_FUNCTION_ERROR);
    assert!(
        message.starts_with(
            "the handler's result is not JSON: TypeError: Do not know how to serialize a BigInt"
        ),
        "{message}"
    );

    let outcome = agent
        .invoke("undefined-1", call_input(json!("undefined")))
        .await;
    assert_null(&outcome);

    // A handler that never yields: killed at the deadline; the next call gets a fresh worker.
    let started = Instant::now();
    let outcome = agent
        .invoke_until(
            "spin-1",
            &deadline_in(Duration::from_millis(1500)),
            call_input(json!("spin")),
        )
        .await;
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["spinning"]);
    let outcome = agent.invoke("fine-1", call_input(json!("ok"))).await;
    assert_eq!(ok_output(&outcome), json!("fine"));

    // A worker that exits between calls is replaced when the next call comes.
    let outcome = agent.invoke("later-1", call_input(json!("later"))).await;
    assert_eq!(ok_output(&outcome), json!("leaving soon"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outcome = agent.invoke("fine-2", call_input(json!("ok"))).await;
    assert_eq!(ok_output(&outcome), json!("fine"));
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Agent),
        ["the nodejs worker ended between calls (function process exited with status 5); a fresh one takes this call"]
    );
}

const PY_SLOW: &str = r#"
import time

count = 0
busy = False

def handle(context, payload):
    global count, busy
    count += 1
    if payload == "sleep":
        print("sleeping", flush=True)
        time.sleep(30)
    overlap = busy
    busy = True
    time.sleep(0.2)
    busy = False
    return {"count": count, "overlap": overlap}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_timeout_kills_the_worker_and_the_next_call_works() {
    let (agent, _code) = ready_agent("python3", "slow", &[("slow.py", PY_SLOW)]).await;
    assert_eq!(
        ok_output(&agent.invoke("warm-1", call_input(json!(1))).await)["count"],
        1
    );
    let started = Instant::now();
    let outcome = agent
        .invoke_until(
            "sleep-1",
            &deadline_in(Duration::from_millis(1500)),
            call_input(json!("sleep")),
        )
        .await;
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
    let message = outcome.message.as_deref().unwrap_or_default();
    assert!(message.contains("python3 worker was killed"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["sleeping"]);
    // A fresh worker: the module's state started over.
    let outcome = agent.invoke("after-1", call_input(json!(1))).await;
    assert_eq!(ok_output(&outcome)["count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_calls_take_turns_and_a_cancel_replaces_the_worker() {
    let (agent, _code) = ready_agent("python3", "slow", &[("slow.py", PY_SLOW)]).await;
    let (a, b, c) = tokio::join!(
        agent.invoke("turn-0", call_input(json!(0))),
        agent.invoke("turn-1", call_input(json!(1))),
        agent.invoke("turn-2", call_input(json!(2))),
    );
    let outcomes = [a, b, c];
    let mut counts: Vec<i64> = outcomes
        .iter()
        .map(|outcome| {
            let output = ok_output(outcome);
            assert_eq!(output["overlap"], false, "calls overlapped: {output}");
            output["count"].as_i64().unwrap()
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 2, 3]);

    let sleeping = agent.invoke("sleep-1", call_input(json!("sleep")));
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        agent.cancel("sleep-1").await
    };
    let (outcome, report) = tokio::join!(sleeping, cancel);
    assert_eq!(outcome.status, InvokeStatus::Crash, "{outcome:?}");
    assert_eq!(outcome.message.as_deref(), Some("cancelled"));
    assert_eq!(lines_of(&report.logs, LogStream::Stdout), ["sleeping"]);
    assert_eq!(
        ok_output(&agent.invoke("after-1", call_input(json!(1))).await)["count"],
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_code_that_cannot_load_fails_ready_with_the_interpreters_words() {
    let reason = ready_error(
        "python3",
        "hello.handle",
        &[("hello.py", "def handle(context, payload:\n    return 1\n")],
    )
    .await;
    assert!(reason.contains("hello.py\", line 1"), "{reason}");
    assert!(reason.contains("SyntaxError: "), "{reason}");

    let reason = ready_error(
        "python3",
        "hello.handle",
        &[("hello.py", "def other(context, payload):\n    return 1\n")],
    )
    .await;
    assert_eq!(reason, "module 'hello' has no function 'handle'");

    let reason = ready_error(
        "python3",
        "hello.handle",
        &[("hello.py", "def handle(a, b, c):\n    return 1\n")],
    )
    .await;
    assert_eq!(
        reason,
        "handler hello.handle takes 3 arguments; it must take (context, payload)"
    );

    let reason = ready_error(
        "python3",
        "hello",
        &[("hello.py", "def handle(payload):\n    return 1\n")],
    )
    .await;
    assert_eq!(
        reason,
        "handler hello.handle takes 1 argument; it must take (context, payload)"
    );

    let reason = ready_error("python3", "missing.handle", &[("hello.py", "")]).await;
    assert!(
        reason.starts_with("ModuleNotFoundError: No module named 'missing' in "),
        "{reason}"
    );

    // An exception while importing: its class, message and where.
    let reason = ready_error(
        "python3",
        "hello",
        &[
            ("hello.py", "import helper\n"),
            ("helper.py", "x = 1 / 0\n"),
        ],
    )
    .await;
    assert!(
        reason.starts_with(
            "importing module 'hello' failed: ZeroDivisionError: division by zero\nTraceback"
        ),
        "{reason}"
    );
    assert!(reason.contains("helper.py\", line 1"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_code_that_cannot_load_fails_ready_with_the_interpreters_words() {
    let reason = ready_error(
        "nodejs",
        "hello",
        &[("hello.js", "module.exports = (context, payload => 1;\n")],
    )
    .await;
    assert!(reason.contains("hello.js:1"), "{reason}");
    assert!(reason.contains("SyntaxError: "), "{reason}");

    let reason = ready_error(
        "nodejs",
        "hello.handle",
        &[("hello.js", "exports.other = (c, p) => 1;\n")],
    )
    .await;
    assert_eq!(reason, "module 'hello' has no function 'handle'");

    let reason = ready_error(
        "nodejs",
        "hello.handle",
        &[("hello.js", "exports.handle = (a, b, c) => 1;\n")],
    )
    .await;
    assert_eq!(
        reason,
        "handler hello.handle takes 3 arguments; it must take (context, payload)"
    );

    let reason = ready_error(
        "nodejs",
        "hello",
        &[("hello.js", "module.exports = { answer: 42 };\n")],
    )
    .await;
    assert!(
        reason.starts_with("module 'hello' exports no function"),
        "{reason}"
    );

    let reason = ready_error("nodejs", "missing", &[("hello.js", "")]).await;
    assert!(
        reason.starts_with("Error: Cannot find module 'missing' in "),
        "{reason}"
    );
}

const SH_SCRIPT: &str = r#"
read -r payload
case "$payload" in
  *nojson*) echo "not json at all"; exit 0 ;;
  *fail*) echo "about to fail" >&2; echo "it failed" >&2; exit 4 ;;
  *nothing*) exit 0 ;;
  *sleep*) echo "sleeping"; sleep 30 ;;
esac
echo "log line one"
echo "to stderr" >&2
printf '{"payload":%s,"context":%s}\n' "$payload" "$FAASBOX_CONTEXT"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn shell_echo_logs_and_failures() {
    let (agent, _code) = ready_agent("shell", "bin/echo.sh", &[("bin/echo.sh", SH_SCRIPT)]).await;
    let outcome = agent
        .invoke("echo-1", call_input(json!({"a": [1, 2]})))
        .await;
    assert_eq!(
        ok_output(&outcome),
        json!({
            "payload": {"a": [1, 2]},
            "context": {"secrets": {"token": "s3"}, "serviceBindings": {}, "deadline": DEADLINE},
        })
    );
    // The result line is not a log line; the others are.
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["log line one"]);
    assert_eq!(lines_of(&outcome.logs, LogStream::Stderr), ["to stderr"]);

    let outcome = agent.invoke("nojson-1", call_input(json!("nojson"))).await;
    let (kind, message) = error_of(&outcome);
    assert_eq!(kind, CODE_FUNCTION_ERROR);
    assert!(
        message.starts_with("the last line the script bin/echo.sh wrote to stdout is not JSON"),
        "{message}"
    );
    assert!(message.ends_with(": not json at all"), "{message}");
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stdout),
        ["not json at all"]
    );

    let outcome = agent.invoke("fail-1", call_input(json!("fail"))).await;
    assert_eq!(
        error_of(&outcome),
        (
            CODE_FUNCTION_ERROR,
            "the script bin/echo.sh failed: exit status 4\nabout to fail\nit failed"
        )
    );

    let outcome = agent
        .invoke("nothing-1", call_input(json!("nothing")))
        .await;
    assert_null(&outcome);

    let started = Instant::now();
    let outcome = agent
        .invoke_until(
            "sleep-1",
            &deadline_in(Duration::from_millis(1000)),
            call_input(json!("sleep")),
        )
        .await;
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["sleeping"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_script_missing_or_not_parsing_fails_ready() {
    let reason = ready_error("shell", "nothere.sh", &[("echo.sh", "echo 1\n")]).await;
    assert!(reason.starts_with("the shell handler script "), "{reason}");
    assert!(reason.ends_with("nothere.sh does not exist"), "{reason}");
    let reason = ready_error("shell", "../echo.sh", &[("echo.sh", "echo 1\n")]).await;
    assert!(reason.contains("must be a path relative to"), "{reason}");
    let reason = ready_error("shell", "bad.sh", &[("bad.sh", "if then fi (\n")]).await;
    assert!(reason.contains("bad.sh"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_code_directory_fails_ready() {
    let agent = TestAgent::start_with(Options {
        contract: "code",
        command: Some(vec![]),
        config: json!({"code": {"language": "python3", "handler": "hello", "dir": "/nonexistent/code"}}),
        ..Options::default()
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        report.error.as_deref(),
        Some("the code directory /nonexistent/code does not exist (the function's code is placed there)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interpreters_are_found_on_the_path() {
    let code = tempfile::tempdir().unwrap();
    fs::set_permissions(code.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        code.path().join("hello.js"),
        "module.exports = () => 'hi';\n",
    )
    .unwrap();
    fs::write(
        code.path().join("hello.py"),
        "def handle(c, p):\n    return 'hi'\n",
    )
    .unwrap();
    // Only `nodejs` (Debian's old name) on the PATH: that is the one used.
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/usr/bin/node", bin.path().join("nodejs")).unwrap();
    let start = |language: &'static str, path: String| {
        let dir = code.path().to_owned();
        async move {
            TestAgent::start_with(Options {
                contract: "code",
                command: Some(vec![]),
                config: json!({"code": {"language": language, "handler": "hello", "dir": dir}}),
                env: vec![("PATH".into(), path)],
                ..Options::default()
            })
            .await
        }
    };
    let agent = start("nodejs", bin.path().display().to_string()).await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    assert_eq!(ok_output(&agent.invoke("hi-1", "{}").await), json!("hi"));

    // No python3 at all: ready says what the image lacks.
    let agent = start("python3", bin.path().display().to_string()).await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        report.error.as_deref(),
        Some("cannot start the python3 worker: exec: \"python3\": executable file not found in $PATH (the base image must have python3 on its PATH)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_calls_files_are_not_placed_and_its_log_says_so() {
    let (agent, _code) = ready_agent(
        "python3",
        "echo",
        &[(
            "echo.py",
            "def handle(context, payload):\n    return payload\n",
        )],
    )
    .await;
    let body = json!({
        "files": [{"name": "a.txt", "kind": "file", "data": "eA=="}],
        "input": {"context": {}, "payload": {"kept": true}},
    });
    let request = hyper::Request::post("http://agent/v1/invoke")
        .header("faasbox-action-id", "files-1")
        .header("faasbox-deadline", DEADLINE)
        .header(faasbox_proto::HEADER_CALL_FILES, "1")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let (status, body) = agent.request(request).await;
    assert_eq!(status, StatusCode::OK);
    let outcome: InvokeOutcome = serde_json::from_slice(&body).unwrap();
    assert_eq!(ok_output(&outcome), json!({"kept": true}));
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Agent),
        ["the call's 1 file(s) are not placed: a function built from code takes its input as JSON only"]
    );
}
