//! The README's `curl` examples run as written (read from README.md at test time, only the
//! host and `$AUTH` filled in) against a real server with real runc containers; their JSON
//! bodies valid against the served OpenAPI document's schema for their route; and a JSON body
//! sent without a Content-Type (or with the one `curl -d` sends) to every kind of route that
//! takes JSON.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{json, Value};
use support::images::{self, TestImages};
use support::Server;

/// The README's host in its examples.
const README_HOST: &str = "localhost:8470";

/// The echo image the README imports as `echo.docker.tar`: the test function, echoing its
/// input unless `MODE` says otherwise.
fn echo_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let script = images::TEST_FUNCTION.replacen(
            "#!/bin/sh\n",
            "#!/bin/sh\nMODE=\"${MODE:-plain}\"\n",
            1,
        );
        images::shared(&script)
    })
}

/// Every `curl` command in the README's `sh` blocks, in order, continuation lines joined.
fn readme_curls() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut current: Option<String> = None;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let joined = match current.take() {
            Some(so_far) => format!("{so_far} {}", line.trim()),
            None if line.trim_start().starts_with("curl ") => line.trim().to_string(),
            None => continue,
        };
        match joined.strip_suffix('\\') {
            Some(open) => current = Some(open.trim_end().to_string()),
            None => commands.push(joined),
        }
    }
    commands
}

/// What each README example must answer: a piece of the command that names it, and the status.
/// Every example must match exactly one entry and every entry an example, so an example added
/// to the README needs its line here.
const EXPECTED: &[(&str, u16)] = &[
    ("-XPOST localhost:8470/api/v1/namespaces -d", 201),
    (
        "/images/import?name=demo/echo' --data-binary @echo.docker.tar",
        201,
    ),
    ("functions/echo -d '{\"image\":\"demo/echo\",\"envs\"", 201),
    (
        "-i -XPOST localhost:8470/api/v1/namespaces/demo/functions/echo/invoke",
        200,
    ),
    ("/invocations/<id>\n", 200),
    ("/invocations/<id>/logs", 200),
    ("invoke?async=true'", 202),
    ("/runs/<id>\n", 200),
    ("runs?function=echo&status=failed", 200),
    ("runs?limit=20&before=<id>", 200),
    ("/namespaces/demo/summary", 200),
    ("functions?stats=1h", 200),
    ("/runs/<id>/logs?after=0", 200),
    // The id is the README's blocking call's, which has ended.
    ("/runs/<id>/cancel", 409),
    ("functions/echo/logs?limit=100", 200),
    ("functions/echo?pull=missing", 200),
    ("-XPATCH", 200),
    ("functions/echo/revisions", 200),
    ("functions/echo/rollback", 200),
    ("--data-binary @token.txt", 201),
    ("secrets/token -H 'Content-Type: application/json'", 200),
    ("localhost:8470/api/v1/namespaces/demo/secrets\n", 200),
    ("functions/checked -d", 201),
    ("/services/db -d", 201),
    ("localhost:8470/api/v1/namespaces/demo/services\n", 200),
    ("functions/getter -d", 201),
    (
        "-XPOST localhost:8470/api/v1/namespaces/demo/registries",
        201,
    ),
    ("-XPOST localhost:8470/api/v1/registries", 201),
    ("-XDELETE", 204),
    ("/api/functions/registries/namespaces/demo", 201),
    // The README's registry does not exist: the pull answers its stream, which ends in an
    // error event (checked below).
    ("images/pull?ref=", 200),
    // Saved though its image cannot be pulled; calls then answer 503 with the fix.
    ("-XPUT localhost:8470/api/v1/functions/resize", 201),
    ("global-functions/resize/invoke", 503),
    (
        "/events -H 'Content-Type: application/cloudevents+json'",
        202,
    ),
];

/// Runs `command` with bash as a user would after the README's setup: `$AUTH` set, the
/// README's files in the working directory. `curl` is wrapped only to print the status last.
fn run_curl(command: &str, server: &Server, dir: &Path) -> (u16, String) {
    let host = server.url.trim_start_matches("http://");
    let script = format!(
        "curl() {{ command curl -sS -w '\\n%{{http_code}}' \"$@\"; }}\n{}",
        command.replace(README_HOST, host)
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("AUTH", format!("Authorization: Bearer {}", server.token))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let status = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{command}: no status in {stdout:?}"));
    (status, body.to_string())
}

#[tokio::test]
async fn the_readmes_curl_examples_work_as_written() {
    let commands = readme_curls();
    assert!(commands.len() >= EXPECTED.len(), "{commands:#?}");
    // Each example is matched with a newline after it, so "…/secrets\n" names only the list.
    let expected: Vec<u16> = commands
        .iter()
        .map(|c| {
            let keyed = format!("{c}\n");
            let matching: Vec<_> = EXPECTED
                .iter()
                .filter(|(needle, _)| keyed.contains(needle))
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "README example {c:?} matches {matching:?}"
            );
            matching[0].1
        })
        .collect();
    for (needle, _) in EXPECTED {
        assert!(
            commands.iter().any(|c| format!("{c}\n").contains(needle)),
            "no README example has {needle:?}: {commands:#?}"
        );
    }

    let server = Server::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        &echo_images().docker_tar,
        dir.path().join("echo.docker.tar"),
    )
    .expect("echo.docker.tar");
    std::fs::write(dir.path().join("token.txt"), "s3cret\n").expect("token.txt");

    let mut invocation: Option<String> = None;
    for (command, want) in commands.iter().zip(expected) {
        let command = match &invocation {
            Some(id) => command.replace("<id>", id),
            None => command.clone(),
        };
        let (status, body) = run_curl(&command, &server, dir.path());
        assert_eq!(
            status,
            want,
            "{command}\n{body}\nserver log:\n{}",
            support::tail(&server.log(), 30)
        );
        if command.contains("-i -XPOST") && command.contains("/functions/echo/invoke") {
            let (head, output) = body.split_once("\r\n\r\n").expect("headers, then the body");
            let id = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("faasbox-invocation-id")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_else(|| panic!("no invocation id in {head}"));
            assert_eq!(support::json(output.as_bytes()), json!({"a": 1}), "{body}");
            invocation = Some(id);
        }
        if command.contains("-XPATCH") {
            let answer = support::json(body.as_bytes());
            assert_eq!(answer["spec"]["envs"]["MODE"], "plain", "{answer}");
            assert_eq!(answer["spec"]["timeout"], "1m", "{answer}");
        }
        if command.contains("images/pull?ref=") {
            let last = body.lines().last().unwrap_or_default();
            let event = support::json(last.as_bytes());
            assert!(
                event.get("error").is_some() || event["event"] == "error",
                "{body}"
            );
        }
        if command.contains("global-functions/resize/invoke") {
            let answer = support::json(body.as_bytes());
            assert_eq!(answer["error"]["code"], "faasbox.image.missing", "{answer}");
        }
    }
    assert!(invocation.is_some(), "the README's invoke example ran");

    // What the examples did is there: the secret holds the file's bytes (set twice, the second
    // time as base64 JSON), the namespace's registry list is what the README left.
    let secrets = server.get_json("/api/v1/namespaces/demo/secrets").await;
    assert!(secrets.to_string().contains("\"token\""), "{secrets}");
    let registries = server.get_json("/api/v1/namespaces/demo/registries").await;
    let urls: Vec<&str> = registries
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["url"].as_str())
        .collect();
    assert_eq!(urls, ["https://registry.example.com"], "{registries}");
    let revisions = server
        .get_json("/api/v1/namespaces/demo/functions/echo/revisions")
        .await;
    let current: Vec<&Value> = revisions
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "{revisions}");
    assert_eq!(current[0]["spec"]["image"], "demo/echo", "{revisions}");
}

/// Sends `body` to `path` with `content_type` (none when `None`) and returns the status and
/// the JSON answer.
async fn send_raw(
    server: &Server,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = server
        .http
        .request(method, server.url(path))
        .body(body.to_string());
    if let Some(ct) = content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, ct);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Imports the echo image server-wide as `demo/echo:latest`.
async fn import_echo(server: &Server) {
    let r = server
        .import(&echo_images().docker_tar, "demo/echo:latest", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}

/// The Content-Types a JSON body may come with: none, JSON, and what `curl -d` or a shell's
/// `wget --post-data` send.
const TAKEN: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain; charset=utf-8"),
];

#[tokio::test]
async fn every_route_that_takes_json_takes_it_without_a_content_type() {
    let server = Server::start().await;
    import_echo(&server).await;

    for (i, ct) in TAKEN.into_iter().enumerate() {
        let ns = format!("ns{i}");
        let case = format!("Content-Type {ct:?}");
        // A namespace.
        let (status, answer) = send_raw(
            &server,
            Method::POST,
            "/api/v1/namespaces",
            ct,
            &json!({"name": ns}).to_string(),
        )
        .await;
        assert_eq!(status, 201, "{case}: {answer}");
        // A token.
        let (status, answer) = send_raw(
            &server,
            Method::POST,
            "/api/v1/tokens",
            ct,
            &json!({"namespace": ns, "role": "invoke", "name": format!("t{i}")}).to_string(),
        )
        .await;
        assert_eq!(status, 201, "{case}: {answer}");
        assert!(answer["token"].is_string(), "{case}: {answer}");
        // A function: deploy, a merge patch, a rollback.
        let function = format!("/api/v1/namespaces/{ns}/functions/echo");
        let spec = json!({"image": "demo/echo:latest", "envs": {"A": "1"}}).to_string();
        let (status, answer) = send_raw(&server, Method::PUT, &function, ct, &spec).await;
        assert_eq!(status, 201, "{case}: {answer}");
        let patch = json!({"envs": {"A": "2"}}).to_string();
        let (status, answer) = send_raw(&server, Method::PATCH, &function, ct, &patch).await;
        assert_eq!(status, 200, "{case}: {answer}");
        assert_eq!(answer["spec"]["envs"]["A"], "2", "{case}: {answer}");
        let (status, answer) = send_raw(
            &server,
            Method::POST,
            &format!("{function}/rollback"),
            ct,
            r#"{"revision": 1}"#,
        )
        .await;
        assert_eq!(status, 200, "{case}: {answer}");
        assert_eq!(answer["spec"]["envs"]["A"], "1", "{case}: {answer}");
        // A global service.
        let (status, answer) = send_raw(
            &server,
            Method::PUT,
            &format!("/api/v1/functions/g{i}"),
            ct,
            &spec,
        )
        .await;
        assert_eq!(status, 201, "{case}: {answer}");
        // Registries: a namespace's, a global one, and Direktiv's form.
        for (path, body) in [
            (
                format!("/api/v1/namespaces/{ns}/registries"),
                json!({"url": "https://ghcr.io", "username": "u", "password": "p"}),
            ),
            (
                "/api/v1/registries".to_string(),
                json!({"url": format!("r{i}.example.com"), "username": "u", "password": "p"}),
            ),
            (
                format!("/api/functions/registries/namespaces/{ns}"),
                json!({"data": "u:p", "reg": "https://quay.io"}),
            ),
        ] {
            let (status, answer) =
                send_raw(&server, Method::POST, &path, ct, &body.to_string()).await;
            assert_eq!(status, 201, "{case} {path}: {answer}");
        }
    }
}

#[tokio::test]
async fn a_json_route_says_what_is_wrong_with_a_body_or_its_content_type() {
    let server = Server::start().await;
    import_echo(&server).await;
    // Form data, as `curl -d name=demo` sends it: not JSON, and the answer says what is.
    let (status, answer) = send_raw(
        &server,
        Method::POST,
        "/api/v1/namespaces",
        Some("application/x-www-form-urlencoded"),
        "name=demo",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["code"], "faasbox.request.invalid",
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(r#"expected {"name""#), "{answer}");

    // A field of the wrong type is named.
    server.create_namespace("demo").await;
    let (status, answer) = send_raw(
        &server,
        Method::PUT,
        "/api/v1/namespaces/demo/functions/f",
        None,
        r#"{"image": "demo/echo", "envs": {"A": 5}}"#,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("function spec") && message.contains("`envs.A`"),
        "{answer}"
    );

    // A Content-Type that is no JSON gets 415 with the fix.
    let (status, answer) = send_raw(
        &server,
        Method::POST,
        "/api/v1/tokens",
        Some("application/xml"),
        r#"{"namespace": "demo", "role": "invoke"}"#,
    )
    .await;
    assert_eq!(status, 415, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("application/json"), "{answer}");

    // A rollback without a body still goes to the revision before.
    let spec = |a: &str| json!({"image": "demo/echo", "envs": {"A": a}}).to_string();
    for a in ["1", "2"] {
        let (status, answer) = send_raw(
            &server,
            Method::PUT,
            "/api/v1/namespaces/demo/functions/f",
            None,
            &spec(a),
        )
        .await;
        assert!(status == 200 || status == 201, "{answer}");
    }
    let (status, answer) = send_raw(
        &server,
        Method::POST,
        "/api/v1/namespaces/demo/functions/f/rollback",
        None,
        "",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["spec"]["envs"]["A"], "1", "{answer}");
}

/// The method, path and JSON body (`-d '…'`) of a README example, `None` without a body or
/// with a body the shell builds.
fn example_body(command: &str) -> Option<(String, String, String, Option<String>)> {
    let start = command.find("-d '")? + 4;
    let body = &command[start..];
    let body = &body[..body.find('\'')?];
    if command[start + body.len()..].starts_with("'\"") {
        return None; // the shell splices something in
    }
    let method = ["POST", "PUT", "PATCH", "DELETE"]
        .into_iter()
        .find(|m| command.contains(&format!("-X{m}")) || command.contains(&format!("-X '{m}'")))
        .unwrap_or("POST");
    let after_host = &command[command.find(README_HOST)? + README_HOST.len()..];
    let path: String = after_host
        .chars()
        .take_while(|c| !matches!(c, ' ' | '\'' | '?'))
        .collect();
    let content_type = command
        .split("-H '")
        .skip(1)
        .filter_map(|h| h.split('\'').next())
        .find_map(|h| h.strip_prefix("Content-Type: ").map(str::to_string));
    Some((method.to_lowercase(), path, body.to_string(), content_type))
}

/// The documented path template a concrete path matches.
fn template_for<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let wanted: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == wanted.len()
                && parts
                    .iter()
                    .zip(&wanted)
                    .all(|(t, w)| t == w || (t.starts_with('{') && t.ends_with('}')))
        })
}

/// Checks `body` against the document's schema for the request (`None`: no JSON schema).
fn check_body(
    doc: &Value,
    method: &str,
    path: &str,
    body: &Value,
    content_type: &str,
) -> Option<Result<(), String>> {
    let template = template_for(doc, path).unwrap_or_else(|| panic!("{path} is not documented"));
    let operation = &doc["paths"][template][method];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let schema = operation["requestBody"]["content"][content_type].get("schema")?;
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&root).expect("the document's schema compiles");
    let problems: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    Some(if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    })
}

#[tokio::test]
async fn the_readmes_json_bodies_match_the_openapi_document() {
    let server = Server::start().await;
    let doc = server.get_json("/api/v1/openapi.json").await;
    let mut checked = Vec::new();
    for command in readme_curls() {
        let Some((method, path, body, content_type)) = example_body(&command) else {
            continue;
        };
        let content_type = content_type.unwrap_or_else(|| "application/json".into());
        let body: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{command}: the body is not JSON: {e}"));
        match check_body(&doc, &method, &path, &body, &content_type) {
            Some(Ok(())) => checked.push(format!("{method} {path}")),
            Some(Err(problems)) => panic!("{command}: not valid against the document: {problems}"),
            None => {}
        }
    }
    // The namespace, the deploys, the rollback, the registries and the global service.
    assert!(checked.len() >= 8, "{checked:#?}");

    // The document refuses what the server refuses.
    let spec = "/api/v1/namespaces/demo/functions/echo";
    let wrong = json!({"image": "demo/echo", "sise": "small"});
    assert!(matches!(
        check_body(&doc, "put", spec, &wrong, "application/json"),
        Some(Err(_))
    ));
    let wrong = json!({"image": "demo/echo", "contract": "soap"});
    assert!(matches!(
        check_body(&doc, "put", spec, &wrong, "application/json"),
        Some(Err(_))
    ));
    let right = json!({"image": "demo/echo", "contract": "openwhisk", "code": "def main(a): return a",
        "main": "main", "disk": "128MiB", "cmd": "/bin/run --fast", "timeout": 30});
    assert!(matches!(
        check_body(&doc, "put", spec, &right, "application/json"),
        Some(Ok(()))
    ));
}

/// The README's `faasbox fn deploy` commands, continuation lines joined (fenced blocks in
/// lists included).
fn readme_deploys() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut current: Option<String> = None;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = trimmed == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let joined = match current.take() {
            Some(so_far) => format!("{so_far} {trimmed}"),
            None if trimmed.starts_with("faasbox fn deploy ") => trimmed.to_string(),
            None => continue,
        };
        match joined.strip_suffix('\\') {
            Some(open) => current = Some(open.trim_end().to_string()),
            None => commands.push(joined),
        }
    }
    commands
}

/// A stand-in server that keeps the body of every PUT it is sent and answers 500 to all.
fn capture_server() -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if request_line.starts_with("PUT ") {
                let _ = tx.send(body);
            }
            let answer = r#"{"error":{"code":"test.capture","message":"captured"}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, rx)
}

#[tokio::test]
async fn the_specs_the_clis_readme_deploys_send_match_the_openapi_document() {
    let server = Server::start().await;
    let doc = server.get_json("/api/v1/openapi.json").await;
    let (url, bodies) = capture_server();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("action.sh"), "#!/bin/sh\necho '{}'\n").expect("action.sh");
    let deploys = readme_deploys();
    assert!(deploys.len() >= 5, "{deploys:#?}");
    for command in &deploys {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "faasbox() {{ \"$FAASBOX_BIN\" \"$@\"; }}\n{command}"
            ))
            .current_dir(dir.path())
            .env("FAASBOX_BIN", support::FAASBOX)
            .env("FAASBOX_URL", &url)
            .env("FAASBOX_TOKEN", "fbx_test")
            .output()
            .expect("bash");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("captured"),
            "{command}: the CLI sent no deploy: {stderr}"
        );
        let body = bodies
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the deploy's body");
        let spec: Value = serde_json::from_slice(&body).expect("the CLI sends JSON");
        let path = if command.contains("--global") {
            "/api/v1/functions/f"
        } else {
            "/api/v1/namespaces/demo/functions/f"
        };
        match check_body(&doc, "put", path, &spec, "application/json") {
            Some(Ok(())) => {}
            Some(Err(problems)) => panic!("{command} sends {spec}, not valid: {problems}"),
            None => panic!("the document has no schema for a deploy"),
        }
    }
}
