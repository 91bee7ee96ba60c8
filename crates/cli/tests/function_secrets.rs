//! Functions using secrets through real runc containers: the input template puts the secret
//! where the user asked, while logs (every stream) and error messages keep it masked; bad
//! templates and missing secrets are clear errors; master-key rotation keeps secrets usable.

mod support;

use serde_json::{json, Value};
use support::images;
use support::{contains_bytes, json as parse, Server};

const TOKEN: &str = "tok-S3cr3t-9f2c1";

/// A CGI function that echoes its input, prints it to stderr and stdout, logs it through the
/// log endpoint, or (MODE=fail) fails with its input in the error message.
const SCRIPT: &str = r#"#!/bin/sh
aid="$HTTP_DIREKTIV_ACTIONID"
input_file="$HTTP_DIREKTIV_TEMPDIR/input.json"
cat > "$input_file"
input=$(tr -d '\r\n' < "$input_file")
case "$MODE" in
reveal)
  wget -q -O /dev/null --post-data "endpoint saw $input" "http://127.0.0.1:8889/log?aid=$aid"
  echo "stderr saw $input" >&2
  httpd_pid=$(awk '{print $4}' /proc/$PPID/stat)
  echo "stdout saw $input" > /proc/$httpd_pid/fd/1
  printf 'Content-Type: application/json\r\n\r\n'
  cat "$input_file"
  ;;
env)
  printf 'Content-Type: application/json\r\n\r\n{"count":%s}' "$(env | grep -c FAASBOX_MASTER)"
  ;;
encoded)
  s=$(sed -n 's/.*"secret":"\([^"]*\)".*/\1/p' "$input_file")
  b64=$(printf '%s' "$s" | /bin/busybox base64 | tr -d '\n')
  echo "b64 $b64" >&2
  echo "b64url $(printf '%s' "$b64" | tr '+/' '-_' | tr -d '=')" >&2
  echo "pct $(printf '%s' "$s" | /bin/busybox od -An -tx1 | tr -d ' \n' | sed 's/\(..\)/%\1/g')" >&2
  echo "basic $(printf 'user:%s' "$s" | /bin/busybox base64 | tr -d '\n')" >&2
  printf 'Content-Type: application/json\r\n\r\n{}'
  ;;
fail)
  printf 'Direktiv-ErrorCode: app.failed\r\nDirektiv-ErrorMessage: could not use %s\r\nContent-Type: application/json\r\n\r\n{}' "$input"
  ;;
esac
"#;

fn template() -> Value {
    json!({"auth": "bearer jq(.secrets.token)", "data": "jq(.input)"})
}

async fn start(data: &std::path::Path, image: &std::path::Path, fresh: bool) -> Server {
    let server = Server::start_in(data).await;
    if fresh {
        server.create_namespace("demo").await;
        let r = server.import(image, "test/secrets:latest", &[]).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }
    server
}

fn spec(mode: &str, extra: Value) -> Value {
    let mut spec = json!({"image": "test/secrets:latest", "envs": {"MODE": mode}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    spec
}

async fn error_of(server: &Server, function: &str, input: &str) -> (u16, Value) {
    let (status, _, body) = server.invoke("demo", function, input.to_string()).await;
    (status, parse(&body)["error"].clone())
}

#[tokio::test]
async fn secrets_reach_the_function_only_where_asked_and_are_masked_elsewhere() {
    let image = images::build(SCRIPT);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, &image.oci_tar, true).await;
    server.cli_ok(&["secret", "set", "demo/token", "--value", TOKEN]);
    let with_secret = json!({"secrets": ["token"], "input": template()});
    server
        .deploy("demo", "reveal", spec("reveal", with_secret.clone()))
        .await;

    // The function gets the secret where the template puts it; its output is returned as is.
    let (status, id, body) = server.invoke("demo", "reveal", r#"{"x":1}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        parse(&body),
        json!({"auth": format!("bearer {TOKEN}"), "data": {"x": 1}})
    );
    // Its logs, from every stream, show the value masked.
    let lines = server.log_lines(&id).await;
    for prefix in ["endpoint saw", "stderr saw", "stdout saw"] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' line in {lines:?}"));
        assert!(line.contains("bearer ***"), "{line}");
    }
    assert!(!lines.iter().any(|l| l.contains(TOKEN)), "{lines:?}");

    // An error message holding the value is masked in the answer, the record and the logs.
    server
        .deploy("demo", "fail", spec("fail", with_secret.clone()))
        .await;
    let (status, id, body) = server.invoke("demo", "fail", "{}").await;
    assert_eq!(status, 502);
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(
        !text.contains(TOKEN) && text.contains("bearer ***"),
        "{text}"
    );
    let record = server
        .get_json(&format!("/api/v1/invocations/{id}"))
        .await
        .to_string();
    assert!(
        !record.contains(TOKEN) && record.contains("***"),
        "{record}"
    );
    assert!(!server
        .log_lines(&id)
        .await
        .iter()
        .any(|l| l.contains(TOKEN)));

    // Without a template a secret would reach nothing: refused at deploy, saying so.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/plain",
            &spec("reveal", json!({"secrets": ["token"]})),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no `input` template"),
        "{body}"
    );

    // Nothing faasbox stored holds the value.
    assert!(!contains_bytes(&server.database_bytes(), TOKEN.as_bytes()));

    // Rotation through the CLI while calls run (none fails), then a restart: the secret still
    // reaches the function.
    let url = server.url("/api/v1/namespaces/demo/functions/reveal/invoke");
    let http = server.http.clone();
    let calls = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..15 {
            let r = http.post(&url).body("{}").send().await.expect("invoke");
            statuses.push(r.status().as_u16());
        }
        statuses
    });
    for _ in 0..3 {
        let rotated: Value =
            serde_json::from_str(&server.cli_ok(&["admin", "rotate-master-key", "-o", "json"]))
                .unwrap();
        assert_eq!(rotated["rewrapped"], 1);
    }
    let statuses = calls.await.unwrap();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let (status, _, body) = server.invoke("demo", "reveal", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)["auth"], format!("bearer {TOKEN}"));
    server.stop();
    drop(server);
    let server = start(&data, &image.oci_tar, false).await;
    let (status, _, body) = server.invoke("demo", "reveal", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body)["auth"], format!("bearer {TOKEN}"));
}

/// A secret whose base64 holds `+` and `/`, and whose URL encoding changes its space and `&`.
const ENCODED_SECRET: &str = "p?w>~ &s3cr=t~~?";

#[tokio::test]
async fn base64_and_url_encoded_forms_of_a_secret_are_masked_in_the_logs() {
    use base64::Engine;
    let image = images::build(SCRIPT);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &image.oci_tar, true).await;
    server.cli_ok(&["secret", "set", "demo/enc", "--value", ENCODED_SECRET]);
    server
        .deploy(
            "demo",
            "encoded",
            spec(
                "encoded",
                json!({"secrets": ["enc"], "input": {"secret": "jq(.secrets.enc)"}}),
            ),
        )
        .await;
    let (status, id, body) = server.invoke("demo", "encoded", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let lines = server.log_lines(&id).await;
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let b64 = engines[0].encode(ENCODED_SECRET);
    assert!(b64.contains('+') || b64.contains('/'), "{b64}");
    let b64url = engines[1].encode(ENCODED_SECRET);
    let pct: String = ENCODED_SECRET
        .bytes()
        .map(|b| format!("%{b:02x}"))
        .collect();
    let basic = engines[0].encode(format!("user:{ENCODED_SECRET}"));
    for (prefix, form) in [("b64", &b64), ("b64url", &b64url), ("pct", &pct)] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{prefix} ")))
            .unwrap_or_else(|| panic!("no {prefix} line in {lines:?}"));
        assert_eq!(line, &format!("{prefix} ***"), "the {prefix} form {form}");
    }
    let basic_line = lines.iter().find(|l| l.starts_with("basic ")).unwrap();
    assert!(
        basic_line.contains("***") && !basic_line.contains(&basic),
        "{basic_line}"
    );
    for form in [ENCODED_SECRET, &b64, &b64url, &pct, &basic] {
        assert!(
            !lines.iter().any(|l| l.contains(form)),
            "{form} in {lines:?}"
        );
    }
    assert!(!contains_bytes(&server.database_bytes(), b64.as_bytes()));
}

#[tokio::test]
async fn bad_templates_and_missing_secrets_are_clear_errors() {
    let image = images::build(SCRIPT);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &image.oci_tar, true).await;
    server.cli_ok(&["secret", "set", "demo/token", "--value", TOKEN]);

    // Templates that cannot compile are refused at deploy.
    for bad in ["jq(.input | nosuchfn)", "x jq(.input", "jq(.input.)"] {
        let r = server
            .put_json(
                "/api/v1/namespaces/demo/functions/bad",
                &spec("reveal", json!({"input": {"a": bad}})),
            )
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "direktiv.jq.badCommand", "{body}");
    }
    // Expressions giving no or several results fail the call, masked.
    server
        .deploy(
            "demo",
            "many",
            spec(
                "reveal",
                json!({"secrets": ["token"], "input": {"a": "jq(.input.list[])", "t": "jq(.secrets.token)"}}),
            ),
        )
        .await;
    let (status, error) = error_of(&server, "many", r#"{"list":[1,2]}"#).await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "direktiv.jq.badCommand");
    assert!(error["message"].as_str().unwrap().contains("exactly one"));
    let (status, error) = error_of(&server, "many", r#"{"list":[]}"#).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("direktiv.jq.badCommand"))
    );
    server
        .deploy(
            "demo",
            "leaky",
            spec(
                "reveal",
                json!({"secrets": ["token"], "input": {"a": "jq(.secrets.token | error)"}}),
            ),
        )
        .await;
    let (status, error) = error_of(&server, "leaky", "{}").await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "direktiv.jq.badCommand");
    assert!(!error.to_string().contains(TOKEN), "{error}");

    // A secret the namespace lacks is named.
    server
        .deploy(
            "demo",
            "absent",
            spec(
                "reveal",
                json!({"secrets": ["nothere"], "input": {"a": "jq(.secrets.nothere)"}}),
            ),
        )
        .await;
    let (status, error) = error_of(&server, "absent", "{}").await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "faasbox.secret.missing");
    assert!(error["message"].as_str().unwrap().contains("'nothere'"));
    // The CLI deploys with --secret and --input.
    server.cli_ok(&[
        "fn",
        "deploy",
        "demo/cli",
        "--image",
        "test/secrets:latest",
        "--env",
        "MODE=reveal",
        "--secret",
        "token",
        "--input",
        r#"{"auth": "bearer jq(.secrets.token)"}"#,
    ]);
    let out = server.cli_ok(&["invoke", "demo/cli", "-d", "{}"]);
    assert_eq!(parse(out.as_bytes())["auth"], format!("bearer {TOKEN}"));
    let bad = server.cli(&[
        "fn",
        "deploy",
        "demo/cli2",
        "--image",
        "test/secrets:latest",
        "--input",
        r#"{"a": "jq(.x | nosuch)"}"#,
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("direktiv.jq.badCommand"));
    // Bad secret names in a spec are refused at deploy.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/badname",
            &spec("reveal", json!({"secrets": ["a/b"]})),
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn no_child_process_inherits_the_master_key_variables() {
    use std::os::unix::fs::PermissionsExt;
    let image = images::build(SCRIPT);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("outside.key");
    std::fs::write(&key_file, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key_path = key_file.to_str().unwrap().to_string();
    let server = Server::start_in_with_env(
        &dir.path().join("data"),
        &[("FAASBOX_MASTER_KEY_FILE", &key_path)],
    )
    .await;
    server.create_namespace("demo").await;
    let r = server
        .import(&image.oci_tar, "test/secrets:latest", &[])
        .await;
    assert_eq!(r.status(), 201);
    server.cli_ok(&["secret", "set", "demo/token", "--value", TOKEN]);
    server
        .deploy(
            "demo",
            "env",
            spec("env", json!({"secrets": ["token"], "input": template()})),
        )
        .await;
    let (status, _, body) = server.invoke("demo", "env", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"count": 0}));
    // While the instance is warm, no process but the server itself (whose initial environment
    // block the kernel keeps) has the variable: not runc, pasta, the agent or the function.
    let mut holders = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if pid != server.pid() && contains_bytes(&environ, key_path.as_bytes()) {
            holders.push(pid);
        }
    }
    assert!(
        holders.is_empty(),
        "processes with the key variable: {holders:?}"
    );
    assert!(!server.data_dir.join("keys/master.key").exists());
}

#[tokio::test]
async fn a_global_service_uses_the_secrets_of_the_namespace_that_calls_it() {
    let image = images::build(SCRIPT);
    let server = Server::start().await;
    let r = server
        .import_as(
            &server.http,
            None,
            &image.oci_tar,
            "test/secrets:latest",
            &[],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    for ns in ["demo", "other", "bare"] {
        server.create_namespace(ns).await;
    }
    server.cli_ok(&["secret", "set", "demo/token", "--value", "demo-value-1"]);
    server.cli_ok(&["secret", "set", "other/token", "--value", "other-value-2"]);
    let r = server
        .put_json(
            "/api/v1/functions/reveal",
            &spec("reveal", json!({"secrets": ["token"], "input": template()})),
        )
        .await;
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    for (ns, value) in [("demo", "demo-value-1"), ("other", "other-value-2")] {
        let (status, _, body) = server
            .call(
                &format!("/api/v1/namespaces/{ns}/global-functions/reveal/invoke"),
                r#"{"x":1}"#,
            )
            .await;
        assert_eq!(status, 200, "{ns}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            parse(&body),
            json!({"auth": format!("bearer {value}"), "data": {"x": 1}}),
            "{ns}"
        );
    }
    // A namespace without the secret gets an error naming it, not another namespace's value.
    let (status, _, body) = server
        .call(
            "/api/v1/namespaces/bare/global-functions/reveal/invoke",
            r#"{"x":1}"#,
        )
        .await;
    let text = String::from_utf8_lossy(&body);
    assert!(status >= 400, "{status}: {text}");
    assert!(text.contains("token"), "{text}");
    assert!(!text.contains("value-"), "{text}");
}
