//! The agent binary as OpenWhisk's docker-skeleton action proxy, against OpenWhisk's own tests
//! translated: apache/openwhisk `BasicActionRunnerTests` (as configured for the docker
//! skeleton), openwhisk-runtime-docker `ActionProxyContainerTests` and
//! `DockerExampleContainerTests`, and `actionproxy.py`'s behaviour, through the raw `/init` and
//! `/run` routes; plus `/v1/*` as the platform uses it (`__OW_*`, deadlines, cancels, turns).
//!
//! Differences kept on purpose: text code becomes an executable `exec` on any image (the
//! skeleton relied on its executable stub being overwritten, so on an image without a stub
//! OpenWhisk's text code would fail `verify`), and the proxy's Flask quirks (an HTML 404 page)
//! are plain JSON answers.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use faasbox_proto::{InvokeStatus, LogStream, CODE_CONTAINER_FAILED};
use hyper::StatusCode;
use serde_json::{json, Value};
use support::{deadline_in, lines_of, Options, TestAgent};

const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
const ERR_REINIT: &str = r#"{"error":"Cannot initialize the action more than once."}"#;
const ERR_INIT: &str =
    r#"{"error":"The action failed to generate or locate a binary. See logs for details."}"#;
const ERR_NO_BINARY: &str =
    r#"{"error":"The action failed to locate a binary. See logs for details."}"#;
const ERR_RESULT: &str = r#"{"error":"The action did not return a dictionary or array."}"#;
const ERR_ARGUMENT: &str =
    r#"{"error":"The action did not receive a dictionary or array as an argument."}"#;

/// OpenWhisk's bash echo sample (`CodeSamples.stdCodeSamples`), also printing its argc.
const BASH_ECHO: &str = r#"#!/bin/bash
echo 'hello stdout'
echo 'hello stderr' 1>&2
echo "argc=$#" 1>&2
if [[ -z $1 || $1 == '{}' ]]; then
   echo '{ "msg": "Hello from bash script!" }'
else
   echo $1 # echo the arguments back as the result
fi
"#;

/// The docker skeleton's stub action.
const STUB: &str = r#"#!/bin/bash
echo "This is a stub action. Replace it with custom logic."
echo "{\"error\": \"This is a stub action. Replace it with custom logic.\"}"
"#;

/// An agent with its action directory in `action` and its stdio captured.
async fn ow_agent(action: &Path, config: Value) -> TestAgent {
    ow_agent_with(action, config, Vec::new()).await
}

async fn ow_agent_with(action: &Path, config: Value, env: Vec<(String, String)>) -> TestAgent {
    TestAgent::start_with(Options {
        contract: "openwhisk",
        command: Some(vec![]),
        config,
        args: vec!["--action-dir".into(), action.display().to_string()],
        env,
        capture_stdio: true,
        ..Options::default()
    })
    .await
}

fn init_payload(code: &str) -> String {
    json!({"value": {"code": code, "main": "main", "binary": false, "name": "test"}}).to_string()
}

fn run_payload(args: Value) -> String {
    json!({"value": args}).to_string()
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// What the agent printed on `stream` with the sentinel lines removed, trimmed (OpenWhisk's
/// `checkStreams`).
fn without_sentinels(agent: &TestAgent, stream: &str) -> String {
    agent
        .stdio(stream)
        .lines()
        .filter(|line| *line != SENTINEL)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// A fresh agent (its action directory is the first value) initialised with text `code`.
async fn initialised(code: &str) -> (tempfile::TempDir, TestAgent) {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    let (status, body) = agent.post("/init", init_payload(code)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"));
    (action, agent)
}

/// An image's own `/action/exec` (a blackbox action): `script`, executable.
fn blackbox(action: &Path, script: &str) {
    let exec = action.join("exec");
    std::fs::write(&exec, script).unwrap();
    std::fs::set_permissions(&exec, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// How many sentinel lines the agent printed on `stream` ("stdout" or "stderr").
fn sentinels(agent: &TestAgent, stream: &str) -> usize {
    agent
        .stdio(stream)
        .lines()
        .filter(|line| *line == SENTINEL)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_arguments_and_print_to_stdout_and_stderr() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    let (status, body) = agent.post("/init", init_payload(BASH_ECHO)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"));

    let arguments = [
        json!({"string": "hello"}),
        json!({"string": "❄ ☃ ❄"}),
        json!({"numbers": [42, 1]}),
        json!({"object": {"a": "A"}}),
    ];
    for args in &arguments {
        let (status, body) = agent.post("/run", run_payload(args.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(&parse(&body), args);
    }
    let out = agent.stdio("stdout");
    let err = agent.stdio("stderr");
    assert_eq!(out.matches("hello stdout").count(), 4, "{out}");
    assert_eq!(err.matches("hello stderr").count(), 4, "{err}");
    assert_eq!(err.matches("argc=1").count(), 4, "{err}");
    // Exactly one sentinel per stream per activation, after the activation's lines.
    assert_eq!(sentinels(&agent, "stdout"), 4);
    assert_eq!(sentinels(&agent, "stderr"), 4);
    assert!(out.trim_end().ends_with(SENTINEL));
    let first: Vec<&str> = out.lines().take(2).collect();
    assert_eq!(first, ["hello stdout", SENTINEL]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unicode_in_source_arguments_logs_and_result() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    let code = r#"#!/bin/sh
d=$(echo "$1" | /bin/busybox sed 's/.*"delimiter":"\([^"]*\)".*/\1/')
s="$d ☃ $d"
echo "$s"
echo "{\"winter\":\"$s\"}"
"#;
    assert_eq!(
        agent.post("/init", init_payload(code)).await.0,
        StatusCode::OK
    );
    let (status, body) = agent
        .post("/run", run_payload(json!({"delimiter": "❄"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(parse(&body)["winter"], "❄ ☃ ❄");
    assert!(agent.stdio("stdout").contains("❄ ☃ ❄"));
}

#[tokio::test(flavor = "multi_thread")]
async fn init_only_once() {
    let code = "#!/bin/sh\necho not a json object\n";
    let (_action, agent) = initialised(code).await;
    let (status, body) = agent.post("/init", init_payload(code)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, ERR_REINIT);
    assert!(agent
        .stdio("stderr")
        .contains("Cannot initialize the action more than once."));
    // Inits are no activations.
    assert_eq!(sentinels(&agent, "stdout"), 0);
    assert_eq!(sentinels(&agent, "stderr"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn reinit_allowed_by_proxy_allow_reinit() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent_with(
        action.path(),
        json!({}),
        vec![("PROXY_ALLOW_REINIT".into(), "1".into())],
    )
    .await;
    let first = "#!/bin/sh\necho '{\"v\":1}'\n";
    let second = "#!/bin/sh\necho '{\"v\":2}'\n";
    assert_eq!(
        agent.post("/init", init_payload(first)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        agent.post("/init", init_payload(second)).await.0,
        StatusCode::OK
    );
    let (_, body) = agent.post("/run", run_payload(json!({}))).await;
    assert_eq!(parse(&body), json!({"v": 2}));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_to_run() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    // No code and no exec: there is nothing an init could install, and ready says so with the
    // proxy's init error (OpenWhisk's invoker inits every action before it runs it).
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        report.error.as_deref(),
        Some("The action failed to generate or locate a binary. See logs for details.")
    );
    // Run before init.
    let (status, body) = agent.post("/run", run_payload(json!({}))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_GATEWAY, ERR_NO_BINARY)
    );
    // An init with no content, or no code, has nothing to locate.
    for payload in [
        json!({}),
        json!({"value": {"code": null}}),
        json!({"value": {}}),
    ] {
        let (status, body) = agent.post("/init", payload.to_string()).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_GATEWAY, ERR_INIT),
            "{payload}"
        );
    }
    // A broken zip: the proxy prints why.
    let payload = json!({"value": {"code": "bm90IGEgemlw", "binary": true}});
    let (status, body) = agent.post("/init", payload.to_string()).await;
    assert_eq!((status, body.as_str()), (StatusCode::BAD_GATEWAY, ERR_INIT));
    assert!(agent.stdio("stdout").lines().any(|l| l.starts_with("err ")));
    // The init's value must be an object.
    let (status, _) = agent.post("/init", r#"{"value": "code"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The failed run and the failed inits each end with sentinels.
    assert_eq!(sentinels(&agent, "stdout"), 5);
    assert_eq!(sentinels(&agent, "stderr"), 5);
    // Code can still be installed, and then it runs.
    let (status, _) = agent
        .post(
            "/init",
            init_payload(
                "#!/bin/sh
echo '{\"late\": true}'\n",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let (status, body) = agent.post("/run", run_payload(json!({}))).await;
    assert_eq!(
        (status, parse(&body)),
        (StatusCode::OK, json!({"late": true}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn results_that_are_not_objects_or_arrays() {
    let (_action, agent) = initialised("#!/bin/sh\necho not a json object\n").await;
    let (status, body) = agent.post("/run", run_payload(json!({}))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_GATEWAY, ERR_RESULT)
    );
    assert!(agent.stdio("stdout").contains("not a json object\n"));
    assert_eq!(without_sentinels(&agent, "stderr"), "");
    assert_eq!(sentinels(&agent, "stdout"), 1);
    assert_eq!(sentinels(&agent, "stderr"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_code_fails_to_run() {
    // OpenWhisk's "fail to run a bad script": an empty exec initialises, and cannot run; stdout
    // says why (Python's "[Errno 8] Exec format error", here Go's "exec format error").
    let (_action, agent) = initialised("").await;
    let (status, body) = agent.post("/run", "null").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_GATEWAY, ERR_RESULT)
    );
    let out = without_sentinels(&agent, "stdout");
    assert!(out.contains("error"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn arguments_must_be_objects_or_arrays() {
    let (_action, agent) = initialised("#!/bin/bash\narr=$1\necho $arr\n").await;
    for bad in [
        run_payload(json!("A")),
        run_payload(Value::Null),
        "5".into(),
    ] {
        let (status, body) = agent.post("/run", bad.clone()).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, ERR_ARGUMENT),
            "{bad}"
        );
    }
    // An array argument, an array result.
    let (status, body) = agent.post("/run", run_payload(json!(["a", "b"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&body), json!(["a", "b"]));
    // No value is an empty object.
    let (status, body) = agent.post("/run", "{}").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "{}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_action_with_exec() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    let exec = "#!/bin/sh\necho \"This is an example zip used with the docker skeleton action.\"\nmsg=$(cat lib/msg.txt)\necho \"{\\\"msg\\\": \\\"$msg\\\"}\"\n";
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("exec", options).unwrap();
    zip.write_all(exec.as_bytes()).unwrap();
    zip.add_directory("lib/", options).unwrap();
    zip.start_file("lib/msg.txt", options.unix_permissions(0o644))
        .unwrap();
    zip.write_all(b"hello zip").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let code = base64::engine::general_purpose::STANDARD.encode(bytes);
    let payload = json!({"value": {"code": code, "binary": true}});
    let (status, body) = agent.post("/init", payload.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = agent.post("/run", run_payload(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(parse(&body), json!({"msg": "hello zip"}));
    assert!(agent
        .stdio("stdout")
        .starts_with("This is an example zip used with the docker skeleton action.\n"));
}

/// Prints every `__OW_*` variable and the init's `env` as a JSON object.
const ENV_ACTION: &str = r#"#!/bin/sh
printf '{"api_host":"%s","api_key":"%s","namespace":"%s","action_name":"%s","action_version":"%s","activation_id":"%s","transaction_id":"%s","deadline":"%s","some_var":"%s","number":"%s","another":"%s"}\n' \
  "$__OW_API_HOST" "${__OW_API_KEY-unset}" "$__OW_NAMESPACE" "$__OW_ACTION_NAME" "$__OW_ACTION_VERSION" \
  "$__OW_ACTIVATION_ID" "$__OW_TRANSACTION_ID" "$__OW_DEADLINE" "$SOME_VAR" "$NUMBER" "$ANOTHER_VAR"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn activation_environment() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(
        action.path(),
        json!({"function": "demo/envs", "function_version": 3}),
    )
    .await;
    let payload = json!({"value": {
        "code": ENV_ACTION,
        "env": {"SOME_VAR": "xyz", "NUMBER": 3, "ANOTHER_VAR": ""}
    }});
    assert_eq!(
        agent.post("/init", payload.to_string()).await.0,
        StatusCode::OK
    );
    let run = json!({
        "value": {},
        "api_host": "xyz", "api_key": "abc", "namespace": "zzz", "action_name": "xxx",
        "action_version": "0.0.1", "activation_id": "iii", "transaction_id": "ttt", "deadline": "123"
    });
    let (status, body) = agent.post("/run", run.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        parse(&body),
        json!({
            "api_host": "xyz", "api_key": "abc", "namespace": "zzz", "action_name": "xxx",
            "action_version": "0.0.1", "activation_id": "iii", "transaction_id": "ttt",
            "deadline": "123", "some_var": "xyz", "number": "3", "another": ""
        })
    );

    // The platform's call: the variables come from the function and the call. As for a new
    // OpenWhisk action (`provide-api-key: false`), there is no `__OW_API_KEY` at all; the
    // version is the third deploy's.
    let outcome = agent.invoke("act-7", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    assert_eq!(
        parse(outcome.output.as_ref().unwrap().get()),
        json!({
            "api_host": "", "api_key": "unset", "namespace": "demo", "action_name": "/demo/envs",
            "action_version": "0.0.3", "activation_id": "act-7", "transaction_id": "act-7",
            "deadline": "1893456000000", "some_var": "xyz", "number": "3", "another": ""
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_argument_goes_through_stdin() {
    let (_action, agent) =
        initialised("#!/bin/sh\necho \"argc=$#\" >&2\n/bin/busybox cat\necho\n").await;
    let arg = json!({"arg": "a".repeat(1_048_561)});
    let (status, body) = agent.post("/run", run_payload(arg.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&body), arg);
    assert!(agent.stdio("stderr").contains("argc=0"));
    // A small one is on stdin too, and also the first argument.
    let (_, body) = agent.post("/run", run_payload(json!({"small": 1}))).await;
    assert_eq!(parse(&body), json!({"small": 1}));
    assert!(agent.stdio("stderr").contains("argc=1"));
    // The same through the platform.
    let outcome = agent.invoke("big-1", arg.to_string()).await;
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(parse(outcome.output.unwrap().get()), arg);
}

#[tokio::test(flavor = "multi_thread")]
async fn current_directory_is_the_action_directory() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    let code =
        "#!/bin/bash\necho \"{\\\"pwd_env\\\":\\\"$PWD\\\",\\\"pwd_cmd\\\":\\\"$(pwd)\\\"}\"\n";
    assert_eq!(
        agent.post("/init", init_payload(code)).await.0,
        StatusCode::OK
    );
    let (_, body) = agent.post("/run", run_payload(json!({}))).await;
    let dir = action.path().display().to_string();
    assert_eq!(parse(&body), json!({"pwd_env": dir, "pwd_cmd": dir}));
}

#[tokio::test(flavor = "multi_thread")]
async fn blackbox_image_runs_without_init() {
    let action = tempfile::tempdir().unwrap();
    let exec = action.path().join("exec");
    std::fs::write(&exec, STUB).unwrap();
    std::fs::set_permissions(&exec, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let stub_result = json!({"error": "This is a stub action. Replace it with custom logic."});
    let (status, body) = agent.post("/run", run_payload(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&body), stub_result);
    assert!(agent.stdio("stdout").contains("This is a stub action"));
    // An init with no code (or a null one) keeps the image's exec.
    let (status, _) = agent
        .post("/init", json!({"value": {"code": null}}).to_string())
        .await;
    assert_eq!(status, StatusCode::OK);
    let outcome = agent.invoke("stub-1", "{}").await;
    assert_eq!(parse(outcome.output.unwrap().get()), stub_result);
}

#[tokio::test(flavor = "multi_thread")]
async fn init_from_the_config_at_start() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(
        action.path(),
        json!({"function": "demo/echo", "openwhisk": {"code": BASH_ECHO, "name": "echo"}}),
    )
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    // The platform already initialised the action.
    let (status, body) = agent.post("/init", init_payload(BASH_ECHO)).await;
    assert_eq!((status, body.as_str()), (StatusCode::FORBIDDEN, ERR_REINIT));

    let input = r#"{"greeting": "grüß dich", "n": [1, 2]}"#;
    let outcome = agent.invoke("echo-1", input).await;
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    assert_eq!(parse(outcome.output.as_ref().unwrap().get()), parse(input));
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stdout),
        ["hello stdout", SENTINEL]
    );
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stderr),
        ["hello stderr", "argc=1", SENTINEL]
    );
    assert_eq!(sentinels(&agent, "stdout"), 1);
    assert_eq!(sentinels(&agent, "stderr"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_init_at_start_fails_ready() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(
        action.path(),
        json!({"openwhisk": {"code": "bm90IGEgemlw", "binary": true}}),
    )
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        report.error.as_deref(),
        Some("The action failed to generate or locate a binary. See logs for details.")
    );
    let lines: Vec<&str> = report.logs.iter().map(|l| l.line.as_str()).collect();
    assert!(lines.iter().any(|l| l.starts_with("err ")), "{lines:?}");
    let outcome = agent.invoke("x-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some(CODE_CONTAINER_FAILED));
    assert_eq!(
        outcome.message.as_deref(),
        Some(
            "action answered HTTP 502: The action failed to locate a binary. See logs for details."
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_errors() {
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(
        action.path(),
        json!({"openwhisk": {"code": "#!/bin/sh\necho partial log\necho not json\n"}}),
    )
    .await;
    let outcome = agent.invoke("bad-result", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some(CODE_CONTAINER_FAILED));
    assert_eq!(
        outcome.message.as_deref(),
        Some("action answered HTTP 502: The action did not return a dictionary or array.")
    );
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stdout),
        ["partial log", "not json", SENTINEL]
    );
    for (aid, input) in [
        ("bad-arg-1", "\"A\""),
        ("bad-arg-2", "not json"),
        ("bad-arg-3", "7"),
    ] {
        let outcome = agent.invoke(aid, input).await;
        assert_eq!(
            outcome.code.as_deref(),
            Some(CODE_CONTAINER_FAILED),
            "{aid}"
        );
        assert_eq!(
            outcome.message.as_deref(),
            Some("action answered HTTP 404: The action did not receive a dictionary or array as an argument."),
            "{aid}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deadline_and_cancel_kill_the_action() {
    let action = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let code = format!(
        "#!/bin/sh\necho started\necho $$ > {}/pid-$__OW_ACTIVATION_ID\nexec /bin/busybox sleep 30\n",
        state.path().display()
    );
    let agent = Arc::new(ow_agent(action.path(), json!({"openwhisk": {"code": code}})).await);
    let started = Instant::now();
    let outcome = agent
        .invoke_until("slow-1", &deadline_in(Duration::from_millis(1500)), "{}")
        .await;
    // Ten times the 1.5 s deadline (the function itself would run 30 s).
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
    assert!(outcome
        .message
        .unwrap()
        .starts_with("the action was still running"));
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stdout),
        ["started", SENTINEL]
    );
    assert_gone(&state.path().join("pid-slow-1")).await;

    let call = {
        let agent = Arc::clone(&agent);
        tokio::spawn(async move { agent.invoke("slow-2", "{}").await })
    };
    let pid_file = state.path().join("pid-slow-2");
    let until = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() {
        assert!(Instant::now() < until, "the action never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    agent.cancel("slow-2").await;
    let outcome = call.await.unwrap();
    assert_eq!(outcome.message.as_deref(), Some("cancelled"));
    assert_gone(&pid_file).await;
    assert_eq!(sentinels(&agent, "stdout"), 2);
    assert_eq!(sentinels(&agent, "stderr"), 2);
}

/// Waits until the process whose pid is in `pid_file` is gone.
async fn assert_gone(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let proc = format!("/proc/{}", pid.trim());
    let until = Instant::now() + Duration::from_secs(10);
    while Path::new(&proc).exists() {
        assert!(Instant::now() < until, "{proc} survived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_take_turns_with_their_own_logs() {
    let action = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let code = format!(
        r#"#!/bin/sh
lock={state}/busy
if [ -e $lock ]; then echo overlap >> {state}/overlaps; fi
touch $lock
echo "log of $__OW_ACTIVATION_ID"
echo "err of $__OW_ACTIVATION_ID" >&2
/bin/busybox sleep 0.1
rm $lock
/bin/busybox cat
echo
"#,
        state = state.path().display()
    );
    let agent = Arc::new(ow_agent(action.path(), json!({"openwhisk": {"code": code}})).await);
    let started = Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let agent = Arc::clone(&agent);
            tokio::spawn(async move {
                let aid = format!("turn-{i}");
                let input = json!({"i": i, "aid": aid}).to_string();
                let outcome = agent.invoke(&aid, input.clone()).await;
                (aid, input, outcome)
            })
        })
        .collect();
    for call in calls {
        let (aid, input, outcome) = call.await.unwrap();
        assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
        assert_eq!(outcome.output.as_ref().unwrap().get(), input);
        assert_eq!(
            lines_of(&outcome.logs, LogStream::Stdout),
            [format!("log of {aid}").as_str(), SENTINEL]
        );
        assert_eq!(
            lines_of(&outcome.logs, LogStream::Stderr),
            [format!("err of {aid}").as_str(), SENTINEL]
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert!(
        !state.path().join("overlaps").exists(),
        "activations overlapped"
    );
    assert_eq!(sentinels(&agent, "stdout"), 8);
    assert_eq!(sentinels(&agent, "stderr"), 8);
}

// --- cases of the anchors not covered above --------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stub_runs_after_an_init_that_does_nothing() {
    // ActionProxyContainerTests "run sample with init that does nothing" / "with 'null' init",
    // BasicActionRunnerTests "handle initialization with no content" (with a code stub).
    for (i, init) in [
        json!({}),
        json!({"value": {"code": null, "main": "main", "binary": false}}),
    ]
    .into_iter()
    .enumerate()
    {
        let action = tempfile::tempdir().unwrap();
        blackbox(action.path(), STUB);
        let agent = ow_agent(action.path(), json!({})).await;
        let (status, body) = agent.post("/init", init.to_string()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"), "{i}");
        let (status, body) = agent.post("/run", "{}").await;
        assert_eq!(status, StatusCode::OK, "{i}");
        assert_eq!(
            parse(&body),
            json!({"error": "This is a stub action. Replace it with custom logic."})
        );
        assert!(agent.stdio("stdout").contains("This is a stub action"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_run_argument_leaves_the_streams_empty() {
    // ActionProxyContainerTests "respond with 404 for bad run argument".
    let action = tempfile::tempdir().unwrap();
    blackbox(action.path(), STUB);
    let agent = ow_agent(action.path(), json!({})).await;
    let (status, body) = agent.post("/run", run_payload(json!("A"))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, ERR_ARGUMENT)
    );
    assert_eq!(without_sentinels(&agent, "stdout"), "");
    assert_eq!(without_sentinels(&agent, "stderr"), "");
    assert_eq!(sentinels(&agent, "stdout"), 1);
    assert_eq!(sentinels(&agent, "stderr"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn result_lines() {
    // ActionProxyContainerTests "support return array result".
    let (_action, agent) = initialised("#!/bin/sh\necho '[\"a\", \"b\"]'\n").await;
    let (status, body) = agent.post("/run", "{}").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&body), json!(["a", "b"]));
    // Only the last line is the result; a blank line after it is the (bad) result.
    let (_action, agent) = initialised("#!/bin/sh\necho '{}'\necho\n").await;
    let (status, body) = agent.post("/run", "{}").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_GATEWAY, ERR_RESULT)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_point_other_than_main_is_ignored() {
    // BasicActionRunnerTests "invoke non-standard entry point" (main: "exec").
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent(action.path(), json!({})).await;
    let code = "#!/bin/sh\n/bin/busybox cat\necho\n";
    let payload = json!({"value": {"code": code, "main": "exec", "binary": false}});
    assert_eq!(
        agent.post("/init", payload.to_string()).await.0,
        StatusCode::OK
    );
    let (status, body) = agent
        .post("/run", run_payload(json!({"string": "hello"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(parse(&body), json!({"string": "hello"}));
    assert_eq!(without_sentinels(&agent, "stderr"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_run_leaves_the_streams_empty() {
    // BasicActionRunnerTests "confirm expected environment variables": the result line is not
    // echoed to the logs.
    let action = tempfile::tempdir().unwrap();
    let agent = ow_agent_with(
        action.path(),
        json!({}),
        vec![("__OW_API_HOST".into(), "xyz".into())],
    )
    .await;
    assert_eq!(
        agent.post("/init", init_payload(ENV_ACTION)).await.0,
        StatusCode::OK
    );
    let run = json!({
        "value": {}, "api_key": "abc", "namespace": "zzz", "action_name": "xxx",
        "action_version": "0.0.1", "activation_id": "iii", "deadline": "123"
    });
    let (status, body) = agent.post("/run", run.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let env = parse(&body);
    for (key, value) in [
        ("api_host", "xyz"),
        ("api_key", "abc"),
        ("namespace", "zzz"),
        ("action_name", "xxx"),
        ("action_version", "0.0.1"),
        ("activation_id", "iii"),
        ("deadline", "123"),
    ] {
        assert_eq!(env[key], value, "{key}: {env}");
    }
    assert_eq!(without_sentinels(&agent, "stdout"), "");
    assert_eq!(without_sentinels(&agent, "stderr"), "");
}

/// `sdk/docker/example.c` of openwhisk-runtime-docker, as a shell script: a log line, then the
/// result without a trailing newline, `args` being argv[1] (or `undefined`).
const EXAMPLE: &str = r#"#!/bin/sh
echo "This is an example log message from an arbitrary C program!"
printf '{ "msg": "Hello from arbitrary C program!", "args": %s }' "${1:-undefined}"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn docker_example_container() {
    // DockerExampleContainerTests.
    let action = tempfile::tempdir().unwrap();
    blackbox(action.path(), EXAMPLE);
    let agent = ow_agent(action.path(), json!({})).await;
    // "run sample without init"
    let (status, body) = agent.post("/run", "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = parse(&body);
    assert_eq!(out["msg"], "Hello from arbitrary C program!");
    assert_eq!(out["args"], json!({}));
    assert!(agent
        .stdio("stdout")
        .contains("This is an example log message from an arbitrary C program!"));
    // "run sample with init that does nothing"
    assert_eq!(agent.post("/init", "{}").await.0, StatusCode::OK);
    let (status, _) = agent.post("/run", "{}").await;
    assert_eq!(status, StatusCode::OK);

    // "run sample with argument": a fresh container, two runs, two sentinels per stream.
    let action = tempfile::tempdir().unwrap();
    blackbox(action.path(), EXAMPLE);
    let agent = ow_agent(action.path(), json!({})).await;
    for args in [json!({"a": "A"}), json!({"i": 1})] {
        let (status, body) = agent.post("/run", run_payload(args.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(parse(&body)["args"], args);
    }
    assert_eq!(sentinels(&agent, "stdout"), 2);
    assert_eq!(sentinels(&agent, "stderr"), 2);
}
