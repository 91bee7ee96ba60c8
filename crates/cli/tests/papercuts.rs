//! The paper cuts a new user hit (issue 12, part 2), each tried as that user would, against a
//! real server, real runc containers and the real CLI: refused calls without an id, a call
//! bounded by the function's timeout while its instance never becomes ready, secrets and input
//! templates that do not fit, flag errors, imports of files that are no image, hints for who
//! asks, closed pipes, a busy port, the effective contract, the output rules, images without an
//! entrypoint, the README's event example and a function's logs.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::images::{self, TestImages};
use support::{send, Server, FAASBOX};

fn test_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| images::shared(images::TEST_FUNCTION))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A server with namespace `demo` and the test function imported as `test/function:latest`
/// (busybox httpd, the CGI's behaviour picked by `MODE`).
async fn server_with_function() -> Server {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server
        .import(&test_images().rootfs_tar, "test/function:latest", &query)
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server
}

/// Deploys the test function as `demo/NAME` with `MODE=mode` and `extra` spec fields.
async fn deploy_mode(server: &Server, name: &str, mode: &str, extra: Value) {
    let mut spec = json!({"image": "test/function:latest", "envs": {"MODE": mode}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    server.deploy("demo", name, spec).await;
}

// --- a request refused before it became a call has no id ----------------------------------

#[tokio::test]
async fn a_refused_call_prints_no_invocation_id() {
    let server = server_with_function().await;
    server.create_namespace("ux").await;

    let out = server.cli(&["invoke", "ux/nosuch"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!err.contains("invocation:"), "{err}");
    let out = server.cli(&["invoke", "ux/nosuch", "-o", "json"]);
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(answer.get("invocation").is_none(), "{answer}");
    assert_eq!(answer["error"]["code"], "faasbox.not_found", "{answer}");

    // Through the API: no id header for a missing function, namespace or a body not JSON.
    for (path, body) in [
        ("/api/v1/namespaces/ux/functions/nosuch/invoke", "{}"),
        ("/api/v1/namespaces/nons/functions/nosuch/invoke", "{}"),
        (
            "/api/v1/namespaces/demo/global-functions/nosuch/invoke",
            "{}",
        ),
    ] {
        let (status, id, _) = server.call(path, body).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(id, "", "{path}");
    }
    deploy_mode(&server, "echo", "error", json!({})).await;
    let (status, id, _) = server.invoke("demo", "echo", "{not json").await;
    assert_eq!((status, id.as_str()), (400, ""));
    assert!(server
        .get_json("/api/v1/namespaces/demo/invocations")
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // A call that ran and failed has its id, and its logs say why.
    let out = server.cli(&["invoke", "demo/echo"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let id = err
        .lines()
        .find_map(|l| l.strip_prefix("invocation: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id: {err}"))
        .to_string();
    let logs = server.cli_ok(&["logs", &id]);
    assert!(logs.contains("myapp.input"), "{logs}");
}

// --- an instance that never becomes ready holds a call no longer than its timeout ----------

#[tokio::test]
async fn a_function_that_never_listens_fails_within_its_timeout_with_its_output() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[]);
    let entrypoint = json!([
        "/bin/sh",
        "-c",
        "echo starting on the wrong port 9090; exec sleep 600"
    ])
    .to_string();
    let r = server
        .import(&tar, "test/deaf:latest", &[("entrypoint", &entrypoint)])
        .await;
    assert_eq!(r.status(), 201);
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/deaf",
        "--image",
        "test/deaf:latest",
        "--timeout",
        "5s",
    ]);
    let started = Instant::now();
    let (status, id, body) = server.invoke("demo", "deaf", "{}").await;
    let took = started.elapsed();
    let answer = support::json(&body);
    // The server's ready timeout is two minutes; the function's timeout is what counts.
    assert!(
        took < Duration::from_secs(60),
        "the call took {took:?}: {answer}"
    );
    assert!(took >= Duration::from_secs(4), "{took:?}: {answer}");
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["code"], "faasbox.function.start_failed");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("never became ready"), "{message}");
    assert!(message.contains("5s"), "{message}");
    assert!(
        message.contains("starting on the wrong port 9090"),
        "the function's output: {message}"
    );
    // It was a call: recorded, with the reason in its logs.
    assert!(!id.is_empty());
    let logs = server.log_lines(&id).await.join("\n");
    assert!(logs.contains("never became ready"), "{logs}");

    // A function that does listen still starts with a short timeout.
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server
        .import(&test_images().rootfs_tar, "test/function:latest", &query)
        .await;
    assert_eq!(r.status(), 201);
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/echo",
        "--image",
        "test/function:latest",
        "--env",
        "MODE=plain",
        "--timeout",
        "5s",
    ]);
    let out = server.cli_ok(&["invoke", "demo/echo", "--data", r#"{"ok":1}"#]);
    assert_eq!(support::json(out.as_bytes()), json!({"ok": 1}));
}

// --- secrets and input templates that do not fit are refused at deploy ---------------------

#[tokio::test]
async fn secrets_without_a_template_and_templates_without_secrets_are_refused() {
    let server = server_with_function().await;
    server.cli_ok(&["secret", "set", "demo/token", "--value", "s3cr3t-value"]);
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "fn",
            "deploy",
            "demo/getter",
            "--image",
            "test/function:latest",
        ];
        args.extend_from_slice(extra);
        server.cli(&args)
    };
    let out = deploy(&["--secret", "token"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no --input (`input`) template") && err.contains("jq(.secrets.token)"),
        "{err}"
    );
    let out = deploy(&["--input", r#"{"auth": "bearer jq(.secrets.token)"}"#]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(".secrets.token") && err.contains("--secret token"),
        "{err}"
    );
    // A listed secret the template never uses does nothing either.
    let out = deploy(&[
        "--secret",
        "token",
        "--secret",
        "other",
        "--input",
        r#"{"auth": "jq(.secrets.token)"}"#,
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("'other'"), "{}", stderr(&out));
    // Nothing was deployed by any of them.
    let (status, _) = send(
        &server.http,
        &server,
        reqwest::Method::GET,
        "/api/v1/namespaces/demo/functions/getter",
        None,
    )
    .await;
    assert_eq!(status, 404);
    // The API refuses the same, and an update that takes the template away too.
    let (status, body) = send(
        &server.http,
        &server,
        reqwest::Method::PUT,
        "/api/v1/namespaces/demo/functions/getter",
        Some(json!({"image": "test/function:latest", "secrets": ["token"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let fitting = [
        "--secret",
        "token",
        "--env",
        "MODE=plain",
        "--input",
        r#"{"auth": "bearer jq(.secrets.token)", "data": "jq(.input)"}"#,
    ];
    let out = deploy(&fitting);
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = server.cli_ok(&["invoke", "demo/getter", "--data", r#"{"x":1}"#]);
    assert_eq!(
        support::json(answer.as_bytes()),
        json!({"auth": "bearer s3cr3t-value", "data": {"x": 1}})
    );
    let (status, body) = send(
        &server.http,
        &server,
        reqwest::Method::PATCH,
        "/api/v1/namespaces/demo/functions/getter",
        Some(json!({"input": null})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no `input` template"));
}

// --- CLI errors speak of the flags ---------------------------------------------------------

#[tokio::test]
async fn flag_errors_name_the_flag_not_the_json_built_from_it() {
    let server = server_with_function().await;
    for (args, flag) in [
        (&["--size", "huge"][..], "--size"),
        (&["--timeout", "5parsecs"], "--timeout"),
        (&["--idle-timeout", "soon"], "--idle-timeout"),
        (&["--contract", "grpc"], "--contract"),
        (&["--runtime", "kata"], "--runtime"),
        (&["--disk", "12 parsecs"], "--disk"),
        (&["--cmd", "echo 'open"], "--cmd"),
        (&["--env", "NOEQUALS"], "--env"),
        (&["--input", "{not json"], "--input"),
    ] {
        let mut all = vec!["fn", "deploy", "demo/f", "--image", "test/function:latest"];
        all.extend_from_slice(args);
        let out = server.cli(&all);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(flag), "{args:?}: {err}");
        // A position is only ever one in the user's own text (--input), never in JSON the
        // CLI built.
        assert!(
            flag == "--input" || !err.contains("column"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Ranges the server checks come back naming the flag too.
    let out = server.cli(&[
        "fn",
        "deploy",
        "demo/f",
        "--image",
        "test/function:latest",
        "--max-scale",
        "100000",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--max-scale"), "{}", stderr(&out));
    for (args, flag) in [
        (&["--size", "huge"][..], "--size"),
        (&["--timeout", "later"], "--timeout"),
    ] {
        let mut all = vec!["fn", "update", "demo/f"];
        all.extend_from_slice(args);
        let err = stderr(&server.cli(&all));
        assert!(err.contains(flag), "{err}");
    }
    let tar = test_images().rootfs_tar.to_str().unwrap().to_string();
    for (args, flag) in [
        (&["--entrypoint", "[\"/bin/sh\", 1]"][..], "--entrypoint"),
        (&["--cmd", "sh -c 'open"], "--cmd"),
        (&["--env", "=x"], "--env"),
    ] {
        let mut all = vec!["image", "import", &tar, "--name", "demo/x", "-n", "demo"];
        all.extend_from_slice(args);
        let out = server.cli(&all);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }
    let out = server.cli(&["invoke", "demo/f", "--data", "{nope"]);
    assert!(stderr(&out).contains("--data"), "{}", stderr(&out));
    let out = server.cli(&["event", "send", "demo", "--type", "t", "--data", "{nope"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--data") && !err.contains("HTTP"), "{err}");
}

// --- help teaches ------------------------------------------------------------------------------

#[test]
fn help_lists_every_subcommand_keeps_global_options_apart_and_shows_examples() {
    let help = |args: &[&str]| {
        let out = Command::new(FAASBOX)
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        stdout(&out)
    };
    let image = help(&["image"]);
    for sub in ["import", "ls", "rm", "prune", "pull", "push"] {
        assert!(
            image
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "image --help lacks {sub}:\n{image}"
        );
    }
    let deploy = help(&["fn", "deploy"]);
    assert!(!deploy.contains("local image"), "{deploy}");
    assert!(deploy.contains("registry reference"), "{deploy}");
    for args in [
        &["invoke"][..],
        &["fn", "deploy"],
        &["fn", "update"],
        &["image", "import"],
        &["image", "pull"],
        &["flow", "run"],
        &["logs"],
        &["secret", "set"],
        &["registry", "add"],
        &["event", "send"],
        &["token", "create"],
    ] {
        let text = help(args);
        let (own, global) = text
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("{args:?} has no Global options heading:\n{text}"));
        assert!(
            !own.contains("--url"),
            "{args:?}: --url among its own options"
        );
        assert!(
            global.contains("--url") && global.contains("--output"),
            "{args:?}"
        );
        let examples = text.split_once("\nExamples:\n").map(|(_, e)| e);
        assert!(
            examples.is_some_and(|e| e.contains(&format!("faasbox {}", args.join(" ")))),
            "{args:?} has no examples"
        );
    }
}

// --- a file that is no image -----------------------------------------------------------------

#[tokio::test]
async fn importing_a_file_that_is_no_image_says_what_is_accepted() {
    let server = Server::start().await;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let first_line = passwd.lines().next().unwrap().to_string();
    let out = server.cli(&["image", "import", "/etc/passwd", "--name", "x/y"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("/etc/passwd"), "names the user's file: {err}");
    assert!(
        err.contains("docker save") && err.contains("OCI image layout"),
        "{err}"
    );
    assert!(!err.contains(&first_line), "echoes the file: {err}");
    assert!(!err.contains("uploads"), "names the server's path: {err}");
    let data_dir = server.data_dir.to_str().unwrap().to_string();
    assert!(!err.contains(&data_dir), "{err}");
    // The same over HTTP, and a gzip file that is no tar.
    let gz = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c /etc/passwd > {}", gz.path().display()))
        .status()
        .unwrap();
    assert!(status.success());
    for file in [std::path::Path::new("/etc/passwd"), gz.path()] {
        let r = server.import(file, "x/y", &[]).await;
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains("not an image faasbox can import"), "{text}");
        assert!(
            !text.contains(&first_line) && !text.contains(&data_dir),
            "{text}"
        );
    }
}

// --- hints fit who asks ------------------------------------------------------------------------

#[tokio::test]
async fn hints_name_commands_the_asker_can_run() {
    let server = Server::start().await;
    server.create_namespace("a").await;
    server.create_namespace("b").await;
    let token = server
        .cli_ok(&["token", "create", "--namespace", "a"])
        .trim()
        .to_string();
    let a = support::client_with_token(Some(&token));
    for path in [
        "/api/v1/namespaces/b/functions",
        "/api/v1/namespaces/nosuch/functions",
    ] {
        let (status, body) = send(&a, &server, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 404);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("ns create"), "{message}");
        assert!(message.contains("namespace 'a'"), "{message}");
    }
    // A registry that wants credentials: the hint names the namespace the pull used.
    let registry = faasbox_test_registry::Registry::start_htpasswd(&[("user", "pw-1")]);
    let reference = registry.reference("team/app:1");
    let out = server.cli(&["image", "pull", &reference, "-n", "a"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("faasbox registry ls a") && err.contains("faasbox registry add a"),
        "{err}"
    );
    assert!(!err.contains("`faasbox registry ls`"), "{err}");
    let out = server.cli(&["image", "pull", &reference]);
    let err = stderr(&out);
    assert!(err.contains("faasbox registry ls --global"), "{err}");
    // A function's failed pull says who can fix it, and with which command.
    let (status, deployed) = send(
        &server.http,
        &server,
        reqwest::Method::PUT,
        "/api/v1/namespaces/a/functions/app",
        Some(json!({"image": reference})),
    )
    .await;
    assert_eq!(status, 201, "{deployed}");
    let error = deployed["image"]["last_pull_error"].as_str().unwrap();
    assert!(
        error.contains("an admin of namespace a") && error.contains("faasbox registry add a"),
        "{error}"
    );
    // A local name that is missing: import it into the namespace's images, not server-wide.
    let (status, body) = send(
        &a,
        &server,
        reqwest::Method::PUT,
        "/api/v1/namespaces/a/functions/local",
        Some(json!({"image": "team/local:1"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--name team/local:1 -n a"),
        "{body}"
    );
}

// --- no command panics on a closed standard output -----------------------------------------

/// Runs the CLI with standard output a pipe whose reader is already gone.
fn cli_into_closed_pipe(server: &Server, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    server
        .cli_command(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("running the CLI")
}

#[tokio::test]
async fn no_command_panics_on_a_closed_pipe() {
    let server = server_with_function().await;
    deploy_mode(&server, "echo", "echo", json!({})).await;
    let (status, id, _) = server.invoke("demo", "echo", "{}").await;
    assert_eq!(status, 200);
    let runs: Vec<Vec<&str>> = vec![
        vec!["completions", "zsh"],
        vec!["completions", "bash"],
        vec!["--help"],
        vec!["fn", "ls", "demo"],
        vec!["fn", "ls", "demo", "-o", "json"],
        vec!["fn", "get", "demo/echo"],
        vec!["image", "ls"],
        vec!["invoke", "demo/echo", "--data", "{\"a\":1}"],
        vec!["invoke", "demo/echo", "-o", "json"],
        vec!["logs", &id],
        vec!["logs", &id, "-o", "json"],
        vec!["logs", "demo/echo"],
        vec!["invocation", "ls", "demo"],
        vec!["ns", "ls", "-o", "json"],
    ];
    for args in runs {
        let out = cli_into_closed_pipe(&server, &args);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
}

// --- a server on a busy port ------------------------------------------------------------------

#[test]
fn a_server_on_a_busy_port_prints_no_token_and_changes_nothing() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(FAASBOX)
        .args(["server", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .expect("faasbox server");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&addr) && err.contains("--listen"), "{err}");
    assert!(
        !err.contains("admin API token") && !err.contains("fbx_"),
        "{err}"
    );
    assert!(!stdout(&out).contains("fbx_"));
    assert!(!data.join("admin.token").exists());
    assert!(!data.join("faasbox.db").exists(), "the store was made");
    drop(busy);
}

// --- the effective contract --------------------------------------------------------------------

#[tokio::test]
async fn fn_ls_shows_the_contract_the_function_runs_under() {
    let server = server_with_function().await;
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/sh",
        "--image",
        "test/function:latest",
        "--cmd",
        "/usr/share/direktiv/direktiv-cmd",
    ]);
    let listed = server.cli_ok(&["fn", "ls", "demo"]);
    let row = listed.lines().find(|l| l.starts_with("demo/sh")).unwrap();
    assert!(row.split_whitespace().any(|c| c == "cmd"), "{listed}");
    assert!(!row.split_whitespace().any(|c| c == "http"), "{listed}");
    let shown = server
        .get_json("/api/v1/namespaces/demo/functions/sh")
        .await;
    assert_eq!(shown["contract"], "cmd", "{shown}");
    let listed = server.get_json("/api/v1/namespaces/demo/functions").await;
    assert_eq!(listed[0]["contract"], "cmd");
    let out = server.cli_ok(&[
        "invoke",
        "demo/sh",
        "--data",
        r#"{"commands":[{"command":"echo -n hi"}]}"#,
    ]);
    assert_eq!(
        support::json(out.as_bytes()),
        json!([{"Error": "", "Output": "hi"}])
    );
}

// --- output: bare ids and one JSON rule ---------------------------------------------------------

const HELLO_FLOW: &str = "direktiv_api: workflow/v1\nstates:\n- id: hello\n  type: noop\n  transform: {greeting: 'Hello jq(.name)'}\n";

#[tokio::test]
async fn flow_run_prints_the_bare_id_and_json_output_follows_one_rule() {
    let server = server_with_function().await;
    deploy_mode(&server, "echo", "plain", json!({})).await;
    server.deploy_flow("hello", HELLO_FLOW).await;
    // Text: the bare id, ready for ID=$(…).
    let out = server.cli_ok(&["flow", "run", "demo/hello", "--data", r#"{"name":"Ada"}"#]);
    let id = out.trim();
    assert!(
        !id.is_empty() && !id.contains(char::is_whitespace),
        "{out:?}"
    );
    let done = server
        .wait_instance(id, &["complete"], Duration::from_secs(20))
        .await;
    assert_eq!(done["output"]["greeting"], "Hello Ada");
    // Text with --wait: the output, the id on stderr (as invoke does).
    let out = server.cli(&[
        "flow",
        "run",
        "demo/hello",
        "--wait",
        "--data",
        r#"{"name":"B"}"#,
    ]);
    assert!(out.status.success());
    assert_eq!(support::json(&out.stdout), json!({"greeting": "Hello B"}));
    assert!(stderr(&out).starts_with("instance: "), "{}", stderr(&out));
    // JSON: every command that runs something wraps its result with the id the same way.
    let invoked = support::json(
        &server
            .cli(&["invoke", "demo/echo", "-o", "json", "--data", r#"{"n":1}"#])
            .stdout,
    );
    assert_eq!(invoked["output"], json!({"n": 1}));
    assert!(invoked["invocation"].is_string(), "{invoked}");
    let waited = support::json(
        &server
            .cli(&[
                "flow",
                "run",
                "demo/hello",
                "--wait",
                "-o",
                "json",
                "-d",
                r#"{"name":"C"}"#,
            ])
            .stdout,
    );
    assert_eq!(waited["output"], json!({"greeting": "Hello C"}), "{waited}");
    assert!(waited["instance"].is_string(), "{waited}");
    let started = support::json(
        &server
            .cli(&["flow", "run", "demo/hello", "-o", "json"])
            .stdout,
    );
    assert!(started["instance"].is_string(), "{started}");
    assert_eq!(started["status"], "running", "{started}");
    // A failure is the same shape with `error`, and a non-zero exit.
    let failing = "direktiv_api: workflow/v1\nstates:\n- id: fail\n  type: error\n  error: demo.broken\n  message: 'it broke'\n";
    server.deploy_flow("fails", failing).await;
    let out = server.cli(&["flow", "run", "demo/fails", "--wait", "-o", "json"]);
    assert!(!out.status.success());
    let failed = support::json(&out.stdout);
    assert_eq!(failed["error"]["code"], "demo.broken", "{failed}");
    assert!(failed["instance"].is_string(), "{failed}");
    let out = server.cli(&["invoke", "demo/missing", "-o", "json"]);
    assert!(!out.status.success());
    assert_eq!(
        support::json(&out.stdout)["error"]["code"],
        "faasbox.not_found"
    );
    // Lists and shows are the API's answer as is; logs without --follow one document.
    let listed = support::json(
        server
            .cli_ok(&["fn", "ls", "demo", "-o", "json"])
            .as_bytes(),
    );
    assert!(listed.is_array());
    let logs = support::json(
        server
            .cli_ok(&["flow", "logs", id, "-o", "json"])
            .as_bytes(),
    );
    assert!(logs["logs"].is_array(), "{logs}");
}

// --- images without an entrypoint are refused where the contract needs one ------------------

#[tokio::test]
async fn an_image_without_an_entrypoint_is_refused_at_deploy_where_it_needs_one() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[("action/exec", images::OPENWHISK_ACTION, 0o755)]);
    server.cli_ok(&[
        "image",
        "import",
        tar.to_str().unwrap(),
        "--name",
        "demo/raw",
        "-n",
        "demo",
    ]);
    for contract in ["http", "file"] {
        let out = server.cli(&[
            "fn",
            "deploy",
            "demo/f",
            "--image",
            "demo/raw",
            "--contract",
            contract,
        ]);
        assert!(!out.status.success(), "{contract}");
        let err = stderr(&out);
        assert!(
            err.contains("no entrypoint") && err.contains("--cmd") && err.contains("--entrypoint"),
            "{contract}: {err}"
        );
    }
    let (status, _) = send(
        &server.http,
        &server,
        reqwest::Method::GET,
        "/api/v1/namespaces/demo/functions/f",
        None,
    )
    .await;
    assert_eq!(status, 404, "nothing was deployed");
    // With --cmd, or under contracts that run their own commands, it is fine.
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/served",
        "--image",
        "demo/raw",
        "--cmd",
        "/bin/busybox httpd -f -p 8080 -h /www",
    ]);
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/sh",
        "--image",
        "demo/raw",
        "--contract",
        "cmd",
    ]);
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/act",
        "--image",
        "demo/raw",
        "--contract",
        "openwhisk",
    ]);
    let out = server.cli_ok(&["invoke", "demo/act", "--data", r#"{"hi":1}"#]);
    assert_eq!(support::json(out.as_bytes()), json!({"hi": 1}));
    // An update that takes the command away is refused the same way.
    let out = server.cli(&["fn", "update", "demo/sh", "--size", "medium"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = send(
        &server.http,
        &server,
        reqwest::Method::PATCH,
        "/api/v1/namespaces/demo/functions/served",
        Some(json!({"cmd": null})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

// --- the README's event example, as written ------------------------------------------------------

/// The fenced block of `lang` that follows `marker` in the README.
fn readme_block(readme: &str, marker: &str, lang: &str) -> String {
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("the README lacks {marker:?}"));
    let fence = format!("```{lang}\n");
    let start = at + readme[at..].find(&fence).expect("a block") + fence.len();
    let end = start + readme[start..].find("```").expect("its end");
    readme[start..end].to_string()
}

/// The README's shell lines that start with `prefix`, continuation lines joined, comments cut,
/// `$AUTH` filled in, split like a shell splits them.
fn readme_commands(block: &str, prefix: &str, auth: &str) -> Vec<Vec<String>> {
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            let words =
                shlex::split(&l.replace("\"$AUTH\"", &format!("'{auth}'"))).expect("shell words");
            words
                .into_iter()
                .take_while(|w| !w.starts_with('#'))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn the_readme_event_example_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let sends = readme_block(&readme, "A namespace takes CloudEvents", "sh");
    let flow = readme_block(&readme, "Events start and resume flows", "yaml");
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server.deploy_flow("approve", &flow).await;

    let auth = format!("Authorization: Bearer {}", server.token);
    let cli = readme_commands(&sends, "faasbox event send demo --type", &auth);
    assert!(cli.len() >= 2, "the README's sends: {cli:?}");
    // The first send starts the flow, as the README says.
    let args: Vec<&str> = cli[0][1..].iter().map(String::as_str).collect();
    server.cli_ok(&args);
    let instances = wait_instances(&server, 1).await;
    let id = instances[0]["id"].as_str().unwrap().to_string();
    server
        .wait_instance(&id, &["waiting"], Duration::from_secs(20))
        .await;
    // The curl example starts one too.
    let curl = readme_commands(&sends, "curl", &auth);
    assert_eq!(curl.len(), 1, "{curl:?}");
    let mut words = curl[0].clone();
    for w in &mut words {
        *w = w.replace("localhost:8470", server.url.trim_start_matches("http://"));
    }
    let out = Command::new(&words[0])
        .args(&words[1..])
        .arg("-sf")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wait_instances(&server, 2).await;
    // The approval the README sends resumes the waiting instance, which then ends.
    let args: Vec<&str> = cli[1][1..].iter().map(String::as_str).collect();
    server.cli_ok(&args);
    let done = server
        .wait_instance(&id, &["complete"], Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "complete", "{done}");
}

/// Polls until namespace demo has `count` instances; them, newest first.
async fn wait_instances(server: &Server, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = server.get_json("/api/v1/namespaces/demo/instances").await;
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() >= count {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{count} instances expected, got {list:?}\n{}",
            support::tail(&server.log(), 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// --- a function's logs, and following them ----------------------------------------------------

/// Starts `faasbox ARGS` with its standard output read line by line into a channel.
fn cli_lines(server: &Server, args: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = server
        .cli_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("faasbox");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines from `rx` until one holds each of `wanted`, or the deadline.
fn lines_until(rx: &mpsc::Receiver<String>, wanted: &[&str], within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while !wanted
        .iter()
        .all(|w| seen.iter().any(|l: &String| l.contains(w)))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("never saw {wanted:?}; saw {seen:#?}"),
        }
    }
    seen
}

#[tokio::test]
async fn a_functions_logs_and_following_them() {
    let server = server_with_function().await;
    deploy_mode(&server, "echo", "echo", json!({"timeout": "3s"})).await;
    deploy_mode(&server, "slow", "sleep", json!({"timeout": "3s"})).await;
    let no_lines = server.cli_ok(&["logs", "demo/echo"]);
    assert_eq!(no_lines, "");
    let (status, first, _) = server.invoke("demo", "echo", "{}").await;
    assert_eq!(status, 200);
    let (_, other, _) = server.invoke("demo", "slow", "{}").await;

    // The function's recent lines, each with its call; another function's are not mixed in.
    let out = server.cli_ok(&["logs", "demo/echo"]);
    assert!(out.contains(&format!("endpoint-get {first}")), "{out}");
    assert!(out.lines().all(|l| l.contains(&first)), "{out}");
    assert!(!out.contains(&other), "{out}");
    let page = support::json(
        server
            .cli_ok(&["logs", "demo/echo", "-o", "json"])
            .as_bytes(),
    );
    assert_eq!(page["function"], "echo");
    assert!(page["logs"][0]["invocation"] == first.as_str(), "{page}");
    assert!(page["next"].as_i64().unwrap() > 0);
    let out = server.cli_ok(&["logs", "demo/echo", "--limit", "1"]);
    assert_eq!(out.lines().count(), 1, "{out}");

    // Following: the stored lines, then new calls' lines as they come (a live stream), one
    // JSON object per line.
    let (mut follower, rx) = cli_lines(&server, &["logs", "demo/echo", "--follow", "-o", "json"]);
    lines_until(
        &rx,
        &[&format!("endpoint-get {first}")],
        Duration::from_secs(20),
    );
    let (_, second, _) = server.invoke("demo", "echo", "{}").await;
    let (_, third, _) = server.invoke("demo", "echo", "{}").await;
    let seen = lines_until(
        &rx,
        &[
            &format!("endpoint-get {second}"),
            &format!("endpoint-get {third}"),
        ],
        Duration::from_secs(20),
    );
    for line in &seen {
        let line: Value = serde_json::from_str(line).expect("one JSON object per line");
        // Stored lines (the first call's) have their `seq`; live ones are not stored yet.
        let stored = line["invocation"] == first.as_str();
        assert!(
            line["invocation"].is_string()
                && line["ts_ms"].is_u64()
                && line["seq"].is_i64() == stored,
            "{line}"
        );
    }
    let _ = follower.kill();
    let _ = follower.wait();

    // Following one running call: its lines once it ended.
    let http = server.http.clone();
    let url = server.url("/api/v1/namespaces/demo/functions/slow/invoke");
    let call = tokio::spawn(async move { http.post(url).body("{}").send().await });
    let running = loop {
        let calls = server
            .get_json("/api/v1/namespaces/demo/invocations?function=slow")
            .await;
        if let Some(c) = calls
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == "running")
        {
            break c["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut follower, rx) = cli_lines(&server, &["logs", &running, "--follow"]);
    lines_until(&rx, &["faasbox.function.timeout"], Duration::from_secs(30));
    let status = follower.wait().unwrap();
    assert!(status.success());
    let answer = call.await.unwrap().unwrap();
    assert_eq!(answer.status(), 504);

    // Bounds and names.
    for (query, status) in [
        ("?limit=0", 400),
        ("?limit=1001", 400),
        ("?after=-1", 400),
        ("?bogus=1", 400),
    ] {
        let r = server
            .get(&format!(
                "/api/v1/namespaces/demo/functions/echo/logs{query}"
            ))
            .await;
        assert_eq!(r.status(), status, "{query}");
    }
    let r = server
        .get("/api/v1/namespaces/demo/functions/nosuch/logs")
        .await;
    assert_eq!(r.status(), 404);
    let out = server.cli(&["logs", "demo/echo", "--limit", "5000"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--limit"));
}

// --- invocation ls and completions (README's first commands) ----------------------------------

#[tokio::test]
async fn invocation_ls_lists_the_namespaces_calls_newest_first() {
    let server = server_with_function().await;
    deploy_mode(&server, "echo", "echo", json!({})).await;
    deploy_mode(&server, "fails", "error", json!({})).await;
    let (_, ok, _) = server.invoke("demo", "echo", "{}").await;
    let (_, failed, _) = server.invoke("demo", "fails", "{}").await;
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["invocation", "ls", "demo", "-o", "json"])).unwrap();
    let rows: Vec<(&str, &str, &str)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default(),
                r["function"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (failed.as_str(), "fails", "failed"),
            (ok.as_str(), "echo", "succeeded")
        ],
        "{listed}"
    );
    // The table: a header, then one row per call with its id, function and status.
    let table = server.cli_ok(&["invocation", "ls", "demo", "--function", "fails"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("INVOCATION"), "{table}");
    assert_eq!(lines.len(), 2, "{table}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells[..3],
        [failed.as_str(), "demo/fails", "failed"],
        "{table}"
    );
}

#[test]
fn completions_are_scripts_the_shells_accept() {
    let script = |shell: &str| {
        let out = Command::new(FAASBOX)
            .args(["completions", shell])
            .output()
            .expect("faasbox completions");
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        stdout(&out)
    };
    // bash loads it and then completes faasbox's subcommands.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faasbox.bash");
    std::fs::write(&file, script("bash")).unwrap();
    let out = Command::new("bash")
        .args([
            "-c",
            "source \"$FBX_COMPLETION\" && complete -p faasbox && \
             COMP_WORDS=(faasbox inv); COMP_CWORD=1; COMP_LINE='faasbox inv'; COMP_POINT=11; \
             $(complete -p faasbox | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p') faasbox inv faasbox; \
             printf '%s\\n' \"${COMPREPLY[@]}\"",
        ])
        .env("FBX_COMPLETION", &file)
        .output()
        .expect("bash");
    let said = stdout(&out);
    assert!(out.status.success(), "{said}{}", stderr(&out));
    assert!(said.lines().any(|l| l == "invocation"), "{said}");
    assert!(said.lines().any(|l| l == "invoke"), "{said}");
    // zsh's is a compdef function (zsh is not installed here to load it).
    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef faasbox"), "{zsh}");
}
