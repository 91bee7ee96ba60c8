//! Service instances (issue 15) against a real server running real containers: created and
//! listed with the CLI (secret parameters by key only), injected into a shell code function's
//! `context.serviceBindings` and into an http function's input template, their secret values
//! masked in the call's logs, error and record, and a missing service refused with 422
//! `InputError` before the function runs.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{code_source as source, images, json as parse, wait_for, Server};

const PASSWORD: &str = "pw-S3rv1ce-7c1e";

/// Logs its input (its own record of calls), then answers it.
const ECHO: &str = "#!/bin/sh\ninput=$(cat | tr -d '\\r\\n')\necho \"called with $input\" >&2\nprintf 'Content-Type: application/json\\r\\n\\r\\n%s' \"$input\"\n";

/// A shell handler: logs its context; fails with it on stderr when the payload says so;
/// else answers the context.
const HANDLER: &str = "read -r input\necho \"context $FAASBOX_CONTEXT\" >&2\ncase \"$input\" in *fail*) echo \"failing with $FAASBOX_CONTEXT\" >&2; exit 3;; esac\nprintf '%s\\n' \"$FAASBOX_CONTEXT\"\n";

async fn server() -> Server {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", ECHO, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "test/echo", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = server
        .import_as(&server.http, Some("demo"), &tar, "test/busybox:1", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = server
        .post_json(
            "/api/v1/namespaces/demo/base-images",
            &json!({"name": "sh-base", "image": "test/busybox:1", "language": "shell"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    server
}

async fn built(server: &Server, name: &str) -> Value {
    wait_for(
        Duration::from_secs(120),
        &format!("function {name} to be built"),
        || async {
            server
                .get_json(&format!("/api/v1/namespaces/demo/functions/{name}/code"))
                .await
        },
        |view| view["status"] == "READY" || view["status"] == "ERROR",
    )
    .await
}

/// Asserts `text` does not hold the secret value.
fn hidden(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "{what} holds the secret: {text}");
}

#[tokio::test]
async fn services_reach_code_and_template_functions_and_their_secrets_stay_masked() {
    let server = server().await;
    let made = server.cli_ok(&[
        "service",
        "create",
        "demo/db",
        "--param",
        "host=db.local",
        "--secret-param",
        &format!("password={PASSWORD}"),
        "-o",
        "json",
    ]);
    hidden("service create", &made);
    let made: Value = serde_json::from_str(&made).expect("JSON");
    assert_eq!(made["params"], json!({"host": "db.local"}), "{made}");
    assert_eq!(made["secret_params"], json!(["password"]), "{made}");
    for args in [
        &["service", "ls", "demo"][..],
        &["service", "ls", "demo", "-o", "json"],
        &["service", "get", "demo/db", "-o", "json"],
    ] {
        let out = server.cli_ok(args);
        hidden("service ls/get", &out);
        assert!(
            out.contains("db.local") && out.contains("password"),
            "{out}"
        );
    }
    let listed = server.get_json("/api/v1/namespaces/demo/services").await;
    assert_eq!(listed[0]["secret_params"], json!(["password"]), "{listed}");
    hidden("the listing", &listed.to_string());

    // A code function (shell) gets it in context.serviceBindings.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/bound/code",
            &json!({"image": "sh-base", "handler": "run.sh", "services": ["db"],
                    "source": source(&[("run.sh", HANDLER)]), "timeout": "20s"}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    assert_eq!(built(&server, "bound").await["status"], "READY");
    let (status, id, body) = server.invoke("demo", "bound", r#"{"x":1}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let context = parse(&body);
    assert_eq!(
        context["serviceBindings"],
        json!({"db": {"host": "db.local", "password": PASSWORD}}),
        "{context}"
    );
    let lines = server.log_lines(&id).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("context ") && l.contains("***")),
        "{lines:?}"
    );
    hidden("the call's logs", &lines.join("\n"));
    // The function fails with the value in its error: masked in the answer and the record.
    let (status, id, body) = server.invoke("demo", "bound", r#""fail""#).await;
    let answer = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 502, "{answer}");
    assert!(answer.contains("failing with"), "{answer}");
    hidden("the error", &answer);
    let record = server.get_json(&format!("/api/v1/invocations/{id}")).await;
    hidden("the record", &record.to_string());
    hidden(
        "the failed call's logs",
        &server.log_lines(&id).await.join("\n"),
    );

    // An http function gets it where its input template puts it.
    server
        .deploy(
            "demo",
            "templated",
            json!({"image": "test/echo", "services": ["db"], "input": {
                "host": "jq(.services.db.host)", "auth": "jq(.services.db.password)",
                "data": "jq(.input)"}}),
        )
        .await;
    let (status, id, body) = server.invoke("demo", "templated", r#"{"y":2}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        parse(&body),
        json!({"host": "db.local", "auth": PASSWORD, "data": {"y": 2}})
    );
    let lines = server.log_lines(&id).await;
    assert!(lines.iter().any(|l| l.contains("***")), "{lines:?}");
    hidden("the template call's logs", &lines.join("\n"));

    // A template that is not plain paths runs in an expression worker: the services are in
    // its data too.
    server
        .deploy(
            "demo",
            "computed",
            json!({"image": "test/echo", "services": ["db"], "input": {
                "line": "jq(\"host \" + .services.db.host + \" pw \" + .services.db.password)"}}),
        )
        .await;
    let (status, id, body) = server.invoke("demo", "computed", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        parse(&body),
        json!({"line": format!("host db.local pw {PASSWORD}")})
    );
    hidden(
        "the computed call's logs",
        &server.log_lines(&id).await.join("\n"),
    );

    // A missing service: 422 InputError naming it and the fix, before the function runs.
    server
        .deploy(
            "demo",
            "unbound",
            json!({"image": "test/echo", "services": ["cache"],
                   "input": {"cache": "jq(.services.cache)"}}),
        )
        .await;
    let (status, id, body) = server.invoke("demo", "unbound", "{}").await;
    let answer = parse(&body);
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "InputError", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'cache'") && message.contains("faasbox service create demo/cache"),
        "{message}"
    );
    // The server's own line says why; the function logged nothing (it never ran).
    let lines = server.log_lines(&id).await;
    assert!(
        !lines.iter().any(|l| l.contains("called with")),
        "{lines:?}"
    );
    // Deleted, the service is missing for the functions bound to it too.
    server.cli_ok(&["service", "rm", "demo/db"]);
    let (status, _, body) = server.invoke("demo", "templated", "{}").await;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    let out = server.cli(&["service", "get", "demo/db"]);
    assert!(!out.status.success());
    // A service name that is not a name is refused at deploy.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/badly",
            &json!({"image": "test/echo", "services": ["Not A Name"]}),
        )
        .await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap_or_default());
    // The server logged none of it either.
    hidden("the server's log", &server.log());
    // Nor are services a template-less function of another contract would never see.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/unseen",
            &json!({"image": "test/echo", "services": ["db"]}),
        )
        .await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("template"), "{text}");
}
