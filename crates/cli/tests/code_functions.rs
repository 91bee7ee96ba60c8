//! Functions from code end to end (issue 14), through the CLI and the API of a real server
//! running real containers: base images made from Debian root filesystems with Python 3 and
//! Node.js (support::lang_images, made with mmdebstrap, no container registry), handlers built
//! from a directory with a second module, their output, logs, warm workers, errors, build
//! failures, and images with runtime dependencies from PyPI and npm with their cached layer.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::{cannot_run, lang_images, tail, Server};

/// The name the Debian image is imported under in namespace `demo`.
const LANG_IMAGE: &str = "debian/lang:12";

/// A server with namespace `demo`, the Debian root filesystem with `packages` imported as
/// [`LANG_IMAGE`], and the base images `python3-base` and `node-base` made from it with the
/// CLI. None (after [`cannot_run`]) on a machine that cannot make the root filesystem.
async fn server_with_base_images(packages: &'static [&'static str]) -> Option<Server> {
    if let Some(reason) = lang_images::missing() {
        cannot_run(&format!("functions from code: {reason}"));
        return None;
    }
    let tar = tokio::task::spawn_blocking(move || lang_images::rootfs(packages))
        .await
        .expect("making the root filesystem");
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let tar = tar.to_str().expect("utf-8 path");
    server.cli_ok(&["image", "import", tar, "--name", LANG_IMAGE, "-n", "demo"]);
    let made = server.cli_ok(&[
        "base-image",
        "create",
        "python3-base",
        LANG_IMAGE,
        "--language",
        "python3",
        "-n",
        "demo",
    ]);
    assert!(made.contains("READY"), "{made}");
    server.cli_ok(&[
        "base-image",
        "create",
        "demo/node-base",
        LANG_IMAGE,
        "--language",
        "nodejs",
    ]);
    Some(server)
}

/// Writes `files` (relative path, content) under a new directory.
fn source(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, content) in files {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, content).expect("write");
    }
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs the CLI; (success, stdout, stderr).
fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = server.cli(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `fn create` that must succeed; its standard output.
fn create_ok(server: &Server, function: &str, src: &Path, image: &str, handler: &str) -> String {
    let (ok, out, err) = cli(
        server,
        &[
            "fn",
            "create",
            function,
            path(src),
            "--image",
            image,
            "--handler",
            handler,
        ],
    );
    assert!(
        ok,
        "fn create {function} failed:\nstdout: {out}\nstderr: {err}\nserver log:\n{}",
        tail(&server.log(), 40)
    );
    assert!(out.contains("READY"), "{out}");
    out
}

/// Invokes `demo/<name>` with `input`: (HTTP status, invocation id, body as JSON).
async fn call(server: &Server, name: &str, input: &Value) -> (u16, String, Value) {
    let (status, id, body) = server.invoke("demo", name, input.to_string()).await;
    (status, id, support::json(&body))
}

#[tokio::test]
async fn the_test_root_filesystems_run_python_and_node() {
    if let Some(reason) = lang_images::missing() {
        cannot_run(&format!("functions from code: {reason}"));
        return;
    }
    let tar = tokio::task::spawn_blocking(|| lang_images::rootfs(lang_images::SLIM))
        .await
        .expect("making the root filesystem");
    // Made once: a second ask finds it in the cache.
    assert_eq!(lang_images::rootfs(lang_images::SLIM), tar);
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let image = server.cli_ok(&[
        "image",
        "import",
        path(&tar),
        "--name",
        LANG_IMAGE,
        "-n",
        "demo",
    ]);
    assert!(image.contains(LANG_IMAGE), "{image}");
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/sh",
        "--image",
        LANG_IMAGE,
        "--contract",
        "cmd",
    ]);
    let (status, _, out) = call(
        &server,
        "sh",
        &json!({"commands": [
            {"command": "python3 -c 'print(6 * 7)'"},
            {"command": "node -e 'console.log(6 * 7)'"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!([{"Error": "", "Output": 42}, {"Error": "", "Output": 42}])
    );
}

const PY_HELLO: &str = r#"import sys
import greeting

calls = 0


def handle(context, payload):
    global calls
    calls += 1
    print("stdout from python", payload["name"])
    print("stderr from python", payload["name"], file=sys.stderr)
    return {
        "greeting": greeting.make(payload["name"]),
        "calls": calls,
        "types": [1, 2.5, "three", None, True, {"nested": []}],
        "has_deadline": "deadline" in context,
    }
"#;

const PY_GREETING: &str = "def make(name):\n    return 'Hello, ' + name + '!'\n";

const NODE_INDEX: &str = r#"const greeting = require('./lib/greeting');

let calls = 0;

module.exports = async (context, payload) => {
  calls += 1;
  console.log('stdout from node', payload.name);
  console.error('stderr from node', payload.name);
  await new Promise((resolve) => setTimeout(resolve, 10));
  return {
    greeting: greeting.make(payload.name),
    calls,
    types: [1, 2.5, 'three', null, true, { nested: [] }],
    has_deadline: 'deadline' in context,
  };
};
"#;

const NODE_GREETING: &str = "exports.make = (name) => `Hi, ${name}!`;\n";

#[tokio::test]
async fn python_and_node_handlers_from_a_directory_run_through_the_api_dispatch_and_a_flow() {
    let Some(server) = server_with_base_images(lang_images::SLIM).await else {
        return;
    };
    let py = source(&[("hello.py", PY_HELLO), ("greeting.py", PY_GREETING)]);
    create_ok(
        &server,
        "demo/hello",
        py.path(),
        "python3-base",
        "hello.handle",
    );
    let node = source(&[("index.js", NODE_INDEX), ("lib/greeting.js", NODE_GREETING)]);
    create_ok(&server, "demo/greet", node.path(), "node-base", "index");

    // The output is exactly what the handler returned; each call's own lines are its logs.
    for (name, language, greeting) in [
        ("hello", "python", "Hello, Ada!"),
        ("greet", "node", "Hi, Ada!"),
    ] {
        let expected = json!({
            "greeting": greeting,
            "calls": 1,
            "types": [1, 2.5, "three", null, true, {"nested": []}],
            "has_deadline": true,
        });
        let (status, id, output) = call(&server, name, &json!({"name": "Ada"})).await;
        assert_eq!(status, 200, "{output}");
        assert_eq!(output, expected);
        let lines = server.log_lines(&id).await;
        for line in [
            format!("stdout from {language} Ada"),
            format!("stderr from {language} Ada"),
        ] {
            assert!(lines.iter().any(|l| l.contains(&line)), "{line}: {lines:?}");
        }
        // Warm: the same worker takes the second call (its module-level counter goes on).
        let (status, id2, output) = call(&server, name, &json!({"name": "Bo"})).await;
        assert_eq!(status, 200, "{output}");
        assert_eq!(output["calls"], 2, "{output}");
        let lines2 = server.log_lines(&id2).await;
        assert!(
            !lines2.iter().any(|l| l.contains("Ada")),
            "the first call's lines in the second's logs: {lines2:?}"
        );
        assert!(lines2.iter().any(|l| l.contains("Bo")), "{lines2:?}");

        // Through Dispatch's API: a blocking run answers the Run with the same output and
        // that call's lines.
        let run = server
            .http
            .post(server.url(&format!("/v1/runs?functionName={name}")))
            .header("X-Dispatch-Org", "demo")
            .json(&json!({"blocking": true, "input": {"name": "Ed"}}))
            .send()
            .await
            .expect("Dispatch run");
        assert_eq!(run.status(), 200);
        let run: Value = run.json().await.expect("a Dispatch Run");
        assert_eq!(
            run["output"]["greeting"],
            greeting.replace("Ada", "Ed"),
            "{run}"
        );
        assert_eq!(run["output"]["calls"], 3, "{run}");
        assert!(
            run["logs"]["stdout"]
                .to_string()
                .contains(&format!("stdout from {language} Ed")),
            "{run}"
        );
        assert!(
            run["logs"]["stderr"]
                .to_string()
                .contains(&format!("stderr from {language} Ed")),
            "{run}"
        );
    }

    // `fn get` shows the handler, language, built image and status.
    let shown: Value =
        serde_json::from_str(&server.cli_ok(&["fn", "get", "demo/hello", "-o", "json"]))
            .expect("JSON");
    let code = &shown["code"];
    assert_eq!(code["handler"], "hello.handle", "{shown}");
    assert_eq!(code["language"], "python3", "{shown}");
    assert_eq!(code["status"], "READY", "{shown}");
    assert!(
        code["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{shown}"
    );
    assert_eq!(shown["contract"], "code", "{shown}");

    // In a flow, as any namespace function.
    server
        .deploy_flow(
            "greet-both",
            "direktiv_api: workflow/v1\n\
             functions:\n\
             - {id: py, type: knative-namespace, service: hello}\n\
             - {id: js, type: knative-namespace, service: greet}\n\
             states:\n\
             - id: python\n  type: action\n  action: {function: py, input: {name: 'jq(.name)'}}\n\
             \x20 transform: {python: 'jq(.return.greeting)', name: 'jq(.name)'}\n  transition: node\n\
             - id: node\n  type: action\n  action: {function: js, input: {name: 'jq(.name)'}}\n\
             \x20 transform: {python: 'jq(.python)', node: 'jq(.return.greeting)'}\n",
        )
        .await;
    let (status, id, out) = server.run_flow("greet-both", &json!({"name": "Cy"})).await;
    assert_eq!(status, 200, "{out}\n{}", server.instance_log(&id).await);
    assert_eq!(out, json!({"python": "Hello, Cy!", "node": "Hi, Cy!"}));

    // `faasbox invoke` prints exactly the handler's return.
    let printed = server.cli_ok(&["invoke", "demo/hello", "--data", r#"{"name": "Di"}"#]);
    let printed: Value = serde_json::from_str(&printed).expect("JSON");
    assert_eq!(printed["greeting"], "Hello, Di!", "{printed}");

    // Deleting the function deletes its build too.
    server.cli_ok(&["fn", "rm", "demo/greet"]);
    let (ok, _, err) = cli(&server, &["fn", "get", "demo/greet"]);
    assert!(!ok && err.contains("greet"), "{err}");

    // A shell script from a single file, created without waiting and followed later.
    server.cli_ok(&[
        "base-image",
        "create",
        "shell-base",
        LANG_IMAGE,
        "--language",
        "shell",
        "-n",
        "demo",
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("run.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nread -r payload\necho \"log line\"\nprintf '{\"got\": %s}\\n' \"$payload\"\n",
    )
    .expect("write");
    let accepted = server.cli_ok(&[
        "fn",
        "create",
        "demo/script",
        path(&script),
        "--image",
        "shell-base",
        "--handler",
        "run.sh",
        "--no-wait",
        "-o",
        "json",
    ]);
    let accepted: Value = serde_json::from_str(&accepted).expect("JSON");
    assert_eq!(accepted["handler"], "run.sh", "{accepted}");
    let log = server.cli_ok(&["fn", "build-logs", "demo/script", "--follow"]);
    assert!(log.contains("READY"), "{log}");
    let (status, id, out) = call(&server, "script", &json!({"n": 1})).await;
    assert_eq!((status, out), (200, json!({"got": {"n": 1}})));
    let lines = server.log_lines(&id).await;
    assert!(lines.iter().any(|l| l.contains("log line")), "{lines:?}");
}

#[tokio::test]
async fn schemas_check_the_input_of_a_function_from_code() {
    let Some(server) = server_with_base_images(lang_images::SLIM).await else {
        return;
    };
    let src = source(&[(
        "main.py",
        "def handle(context, payload):\n    return {'n': payload['n']}\n",
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = dir.path().join("in.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}"#,
    )
    .expect("write");
    let (ok, out, err) = cli(
        &server,
        &[
            "fn",
            "create",
            "demo/checked",
            path(src.path()),
            "--image",
            "python3-base",
            "--handler",
            "main.handle",
            "--schema-in",
            path(&schema),
            "--timeout",
            "20s",
        ],
    );
    assert!(
        ok,
        "stdout: {out}\nstderr: {err}\n{}",
        tail(&server.log(), 40)
    );
    let (status, _, output) = call(&server, "checked", &json!({"n": 3})).await;
    assert_eq!((status, output), (200, json!({"n": 3})));
    // The input schema refuses before the handler runs.
    let (status, id, output) = call(&server, "checked", &json!({"n": "three"})).await;
    assert_eq!(status, 422, "{output}");
    let record = server.get_json(&format!("/api/v1/invocations/{id}")).await;
    assert_eq!(record["error_code"], "InputError", "{record}");
    let shown: Value =
        serde_json::from_str(&server.cli_ok(&["fn", "get", "demo/checked", "-o", "json"]))
            .expect("JSON");
    assert_eq!(
        shown["code"]["schema"]["in"]["required"],
        json!(["n"]),
        "{shown}"
    );
    assert_eq!(shown["spec"]["timeout"], "20s", "{shown}");
}

#[tokio::test]
async fn secrets_reach_the_handler_in_its_context() {
    let Some(server) = server_with_base_images(lang_images::SLIM).await else {
        return;
    };
    server.cli_ok(&["secret", "set", "demo/token", "--value", "s3cret"]);
    server.cli_ok(&[
        "secret",
        "set",
        "demo/db",
        "--value",
        r#"{"user": "ada", "password": "pw"}"#,
    ]);
    let src = source(&[(
        "main.py",
        "def handle(context, payload):\n    s = context['secrets']\n    return {'token': s.get('token') == 's3cret', 'user': s.get('user'), 'keys': sorted(s)}\n",
    )]);
    let (ok, out, err) = cli(
        &server,
        &[
            "fn",
            "create",
            "demo/secretive",
            path(src.path()),
            "--image",
            "python3-base",
            "--handler",
            "main.handle",
            "--secret",
            "token",
            "--secret",
            "db",
        ],
    );
    assert!(
        ok,
        "stdout: {out}\nstderr: {err}\n{}",
        tail(&server.log(), 40)
    );
    // A secret holding a JSON object gives its keys (Dispatch merges them into one map).
    let (status, _, output) = call(&server, "secretive", &json!({})).await;
    assert_eq!(
        (status, output),
        (
            200,
            json!({"token": true, "user": "ada", "keys": ["password", "token", "user"]})
        )
    );
    let shown: Value =
        serde_json::from_str(&server.cli_ok(&["fn", "get", "demo/secretive", "-o", "json"]))
            .expect("JSON");
    assert_eq!(shown["code"]["secrets"], json!(["token", "db"]), "{shown}");
}

/// A Python source whose hello.py is `module`.
fn py_source(module: &str) -> tempfile::TempDir {
    source(&[("hello.py", module), ("greeting.py", PY_GREETING)])
}

/// `fn create` that must fail with a reason holding every one of `words`; checks the stored
/// status and reason, and that the build log holds `in_log` (the interpreter's own words).
async fn create_fails(
    server: &Server,
    function: &str,
    src: &Path,
    image: &str,
    handler: &str,
    words: &[&str],
    in_log: &str,
) {
    let (ok, out, err) = cli(
        server,
        &[
            "fn",
            "create",
            function,
            path(src),
            "--image",
            image,
            "--handler",
            handler,
        ],
    );
    assert!(!ok, "fn create {function} succeeded: {out}");
    for word in words {
        assert!(err.contains(word), "{function}: '{word}' not in: {err}");
    }
    let shown: Value =
        serde_json::from_str(&server.cli_ok(&["fn", "get", function, "-o", "json"])).expect("JSON");
    assert_eq!(shown["code"]["status"], "ERROR", "{shown}");
    let reason = shown["code"]["reason"].as_str().unwrap_or_default();
    for word in words {
        assert!(
            reason.contains(word),
            "{function}: '{word}' not in {reason}"
        );
    }
    let log = server.cli_ok(&["fn", "build-logs", function]);
    assert!(
        log.contains(in_log),
        "{function}: '{in_log}' not in its log:\n{log}"
    );
    // A call is refused with the status and reason.
    let (status, _, body) = call(server, function.trim_start_matches("demo/"), &json!({})).await;
    assert!(status == 503 || status == 409, "{status} {body}");
    assert!(body.to_string().contains("ERROR"), "{body}");
}

#[tokio::test]
async fn build_failures_and_handler_exceptions_say_what_went_wrong() {
    let Some(server) = server_with_base_images(lang_images::SLIM).await else {
        return;
    };
    // The handler is checked at build time: it must import, exist and take two arguments.
    let syntax = py_source("def handle(context, payload)\n    return 1\n");
    create_fails(
        &server,
        "demo/syntax",
        syntax.path(),
        "python3-base",
        "hello.handle",
        &["SyntaxError"],
        "hello.py",
    )
    .await;
    let missing = py_source("def other(context, payload):\n    return 1\n");
    create_fails(
        &server,
        "demo/missing",
        missing.path(),
        "python3-base",
        "hello.handle",
        &["handle"],
        "handle",
    )
    .await;
    let arity = py_source("def handle(payload):\n    return 1\n");
    create_fails(
        &server,
        "demo/arity",
        arity.path(),
        "python3-base",
        "hello.handle",
        &["argument"],
        "argument",
    )
    .await;
    let node_syntax = source(&[("index.js", "module.exports = (context, payload) => {\n")]);
    create_fails(
        &server,
        "demo/nodesyntax",
        node_syntax.path(),
        "node-base",
        "index",
        &["SyntaxError"],
        "index.js",
    )
    .await;
    // A build that failed and is fixed: the same name becomes READY.
    let fixed = py_source("def handle(context, payload):\n    return payload\n");
    create_ok(
        &server,
        "demo/syntax",
        fixed.path(),
        "python3-base",
        "hello.handle",
    );
    let (status, _, out) = call(&server, "syntax", &json!({"fixed": true})).await;
    assert_eq!((status, out), (200, json!({"fixed": true})));

    // Exceptions: the input classes are InputError, the others FunctionError, each with its
    // message and stack trace in the stored call.
    let raising = py_source(
        "def check(payload):\n    if payload.get('bad'):\n        raise ValueError('bad input ' + str(payload['bad']))\n    raise RuntimeError('broke inside')\n\n\
         def handle(context, payload):\n    return check(payload)\n",
    );
    create_ok(
        &server,
        "demo/raising",
        raising.path(),
        "python3-base",
        "hello.handle",
    );
    let node_raising = source(&[(
        "index.js",
        "function check(payload) {\n  if (payload.bad) throw new TypeError(`bad input ${payload.bad}`);\n  throw new Error('broke inside');\n}\n\
         module.exports = (context, payload) => check(payload);\n",
    )]);
    create_ok(
        &server,
        "demo/noderaising",
        node_raising.path(),
        "node-base",
        "index",
    );
    for (name, input_class, other_class, frame) in [
        ("raising", "ValueError", "RuntimeError", "in check"),
        ("noderaising", "TypeError", "Error", "at check"),
    ] {
        for (input, code, class, message) in [
            (json!({"bad": 7}), "InputError", input_class, "bad input 7"),
            (json!({}), "FunctionError", other_class, "broke inside"),
        ] {
            let (status, id, body) = call(&server, name, &input).await;
            assert_ne!(status, 200, "{body}");
            let record = server.get_json(&format!("/api/v1/invocations/{id}")).await;
            assert_eq!(record["status"], "failed", "{record}");
            assert_eq!(record["error_code"], code, "{record}");
            let stored = record["error_message"].as_str().unwrap_or_default();
            assert!(
                stored.starts_with(&format!("{class}: {message}")),
                "{name}: {stored}"
            );
            assert!(stored.contains(frame), "{name}: no stack trace: {stored}");
        }
    }
}

#[tokio::test]
async fn runtime_dependencies_come_from_pypi_and_npm_and_a_second_build_reuses_the_layer() {
    let Some(server) = server_with_base_images(lang_images::DEPS).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let requirements = dir.path().join("requirements.txt");
    std::fs::write(&requirements, "six==1.16.0\n").expect("write");
    let package_json = dir.path().join("package.json");
    std::fs::write(
        &package_json,
        r#"{"name": "deps", "version": "1.0.0", "dependencies": {"is-odd": "3.0.1"}}"#,
    )
    .expect("write");

    for (image, base, manifest, installed) in [
        ("py-deps", "python3-base", &requirements, "six"),
        ("node-deps", "node-base", &package_json, "added 2 packages"),
    ] {
        let build = |server: &Server| {
            let (ok, out, err) = cli(
                server,
                &[
                    "image",
                    "build",
                    image,
                    "--base-image",
                    base,
                    "--runtime-deps",
                    path(manifest),
                    "-n",
                    "demo",
                ],
            );
            assert!(
                ok,
                "image build {image}:\nstdout: {out}\nstderr: {err}\n{}",
                tail(&server.log(), 40)
            );
            let shown: Value = serde_json::from_str(
                &server.cli_ok(&["image", "builds", "get", image, "-n", "demo", "-o", "json"]),
            )
            .expect("JSON");
            (out, shown)
        };
        let (first_log, first) = build(&server);
        assert_eq!(first["status"], "READY", "{first}");
        assert_eq!(first["cached"], false, "{first}");
        assert!(
            first_log.contains(installed),
            "the install's own output is not in the log:\n{first_log}"
        );
        // The same base and the same file: the layer is reused, nothing is installed.
        let (second_log, second) = build(&server);
        assert_eq!(second["status"], "READY", "{second}");
        assert_eq!(second["cached"], true, "{second}");
        assert_eq!(second["digest"], first["digest"], "{second}");
        assert!(
            second_log.to_lowercase().contains("reuse"),
            "the log does not say the layer was reused:\n{second_log}"
        );
        for install_words in ["Collecting", "Successfully installed", "added "] {
            assert!(
                !second_log.contains(install_words),
                "an install ran again ('{install_words}'):\n{second_log}"
            );
        }
    }
    // The built images are the namespace's images too.
    let images = server.cli_ok(&["image", "ls", "demo"]);
    assert!(
        images.contains("py-deps") && images.contains("node-deps"),
        "{images}"
    );
    let builds: Value =
        serde_json::from_str(&server.cli_ok(&["image", "builds", "ls", "demo", "-o", "json"]))
            .expect("JSON");
    assert_eq!(builds.as_array().map(Vec::len), Some(2), "{builds}");

    // Handlers import what was installed.
    let py = source(&[(
        "main.py",
        "import six\n\ndef handle(context, payload):\n    return {'six': six.__version__}\n",
    )]);
    create_ok(&server, "demo/usesix", py.path(), "py-deps", "main.handle");
    let (status, _, out) = call(&server, "usesix", &json!({})).await;
    assert_eq!((status, out), (200, json!({"six": "1.16.0"})));
    let js = source(&[(
        "index.js",
        "const isOdd = require('is-odd');\nmodule.exports = (context, payload) => ({ odd: isOdd(payload.n) });\n",
    )]);
    create_ok(&server, "demo/usesodd", js.path(), "node-deps", "index");
    let (status, _, out) = call(&server, "usesodd", &json!({"n": 3})).await;
    assert_eq!((status, out), (200, json!({"odd": true})));
    let shown: Value =
        serde_json::from_str(&server.cli_ok(&["fn", "get", "demo/usesix", "-o", "json"]))
            .expect("JSON");
    assert_eq!(shown["code"]["image"], "py-deps", "{shown}");

    // System packages with the base's apt-get: Debian's python3-idna, imported by a handler.
    let packages = dir.path().join("packages.txt");
    std::fs::write(&packages, "# for the handler\npython3-idna\n").expect("write");
    let (ok, out, err) = cli(
        &server,
        &[
            "image",
            "build",
            "demo/py-apt",
            "--base-image",
            "python3-base",
            "--system-packages",
            path(&packages),
        ],
    );
    assert!(ok, "image build py-apt:\nstdout: {out}\nstderr: {err}");
    assert!(
        out.contains("python3-idna"),
        "apt's output is not in the log:\n{out}"
    );
    let py = source(&[(
        "main.py",
        "import idna\n\ndef handle(context, payload):\n    return idna.encode(payload).decode()\n",
    )]);
    create_ok(&server, "demo/usesidna", py.path(), "py-apt", "main.handle");
    let (status, _, out) = call(&server, "usesidna", &json!("bücher.example")).await;
    assert_eq!((status, out), (200, json!("xn--bcher-kva.example")));

    // A dependency that does not exist: ERROR naming it, pip's own words in the log.
    let missing = dir.path().join("missing.txt");
    std::fs::write(&missing, "faasbox-no-such-package-4f1c2==1.0\n").expect("write");
    let (ok, out, err) = cli(
        &server,
        &[
            "image",
            "build",
            "demo/broken-deps",
            "--base-image",
            "python3-base",
            "--runtime-deps",
            path(&missing),
        ],
    );
    assert!(!ok, "the build succeeded: {out}");
    let refused = err;
    assert!(
        out.contains("No matching distribution"),
        "pip's own output is not in the log:\n{out}"
    );
    let shown: Value = serde_json::from_str(&server.cli_ok(&[
        "image",
        "builds",
        "get",
        "demo/broken-deps",
        "-o",
        "json",
    ]))
    .expect("JSON");
    assert_eq!(shown["status"], "ERROR", "{shown}");
    let logs: Value = serde_json::from_str(&server.cli_ok(&[
        "image",
        "builds",
        "logs",
        "demo/broken-deps",
        "-o",
        "json",
    ]))
    .expect("JSON");
    assert_eq!(logs["done"], true, "{logs}");
    assert!(
        logs.to_string().contains("No matching distribution"),
        "{logs}"
    );

    // Removing a build and a base image.
    server.cli_ok(&["image", "builds", "rm", "demo/broken-deps"]);
    let (ok, _, err) = cli(&server, &["image", "builds", "get", "demo/broken-deps"]);
    assert!(!ok && err.contains("broken-deps"), "{err}");
    let bases: Value =
        serde_json::from_str(&server.cli_ok(&["base-image", "ls", "demo", "-o", "json"]))
            .expect("JSON");
    assert_eq!(bases.as_array().map(Vec::len), Some(2), "{bases}");
    server.cli_ok(&["base-image", "rm", "node-base", "-n", "demo"]);
    let (ok, _, _) = cli(&server, &["base-image", "get", "demo/node-base"]);
    assert!(!ok, "the base image is still there");

    // The failed build's reason (the CLI's error and the stored one) names the dependency.
    let reason = shown["reason"].as_str().unwrap_or_default();
    for said in [refused.as_str(), reason] {
        assert!(
            said.contains("faasbox-no-such-package-4f1c2"),
            "the reason does not name the missing dependency: {said}"
        );
    }
}
