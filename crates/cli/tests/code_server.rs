//! Functions from code through the server with real runc containers: a base image from a
//! busybox root filesystem, a `shell` handler built onto it (its code under `/function`, its
//! ready check run in a real instance), deployed and called; a script that does not parse is
//! ERROR with the shell's own message, and its calls answer 503 saying so.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{code_source as source, images, json as parse, wait_for, Server};

async fn code_of(server: &Server, name: &str) -> Value {
    server
        .get_json(&format!("/api/v1/namespaces/demo/functions/{name}/code"))
        .await
}

async fn until_built(server: &Server, name: &str) -> Value {
    wait_for(
        Duration::from_secs(120),
        &format!("function {name} to be built"),
        || code_of(server, name),
        |view| view["status"] == "READY" || view["status"] == "ERROR",
    )
    .await
}

#[tokio::test]
async fn a_shell_function_from_code_builds_and_answers_and_a_broken_one_says_why() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[]);
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
    let base: Value = r.json().await.expect("JSON");
    assert_eq!(base["status"], "READY", "{base}");

    let script = "read -r input\nprintf '{\"hello\":%s,\"cwd\":\"%s\"}\\n' \"$input\" \"$(pwd)\"\n";
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/hello/code",
            &json!({"image": "sh-base", "handler": "run.sh",
                    "source": source(&[("run.sh", script)]), "timeout": "20s"}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let built = until_built(&server, "hello").await;
    assert_eq!(built["status"], "READY", "{built}");
    assert_eq!(built["language"], "shell");
    let (status, _, body) = server.invoke("demo", "hello", r#"{"name":"x"}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        parse(&body),
        json!({"hello": {"name": "x"}, "cwd": "/function"})
    );
    let function = server
        .get_json("/api/v1/namespaces/demo/functions/hello")
        .await;
    assert_eq!(function["spec"]["contract"], "code", "{function}");
    assert_eq!(function["spec"]["handler"], "run.sh");
    let logs = server
        .get_json("/api/v1/namespaces/demo/functions/hello/code/logs?after=0")
        .await;
    assert_eq!(logs["done"], true, "{logs}");
    assert!(
        logs["lines"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["text"] == "READY")),
        "{logs}"
    );

    // A rebuild with other code replaces the function's built image: one `code/hello:…` name
    // stays among the namespace's images, not one per build.
    let build_images = |images: Value| -> Vec<String> {
        images
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|i| i["name"].as_str())
                    .filter(|n| n.starts_with("code/hello:"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = build_images(server.get_json("/api/v1/namespaces/demo/images").await);
    assert_eq!(first.len(), 1, "{first:?}");
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/hello/code",
            &json!({"image": "sh-base", "handler": "run.sh",
                    "source": source(&[("run.sh", &format!("# v2\n{script}"))]), "timeout": "20s"}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let rebuilt = until_built(&server, "hello").await;
    assert_eq!(rebuilt["status"], "READY", "{rebuilt}");
    let second = build_images(server.get_json("/api/v1/namespaces/demo/images").await);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);
    let (status, _, body) = server.invoke("demo", "hello", r#"{"name":"y"}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // A script that does not parse: ERROR with the shell's message, and calls answer 503.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/broken/code",
            &json!({"image": "sh-base", "handler": "run.sh",
                    "source": source(&[("run.sh", "if then (\n")])}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let failed = until_built(&server, "broken").await;
    assert_eq!(failed["status"], "ERROR", "{failed}");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("syntax"), "{reason}");
    let (status, _, body) = server.invoke("demo", "broken", "{}").await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    let message = parse(&body)["error"]["message"].to_string();
    assert!(
        message.contains("function 'demo/broken' is ERROR"),
        "{message}"
    );

    // Deleting removes the record with the function, and its built image's name.
    let r = server
        .delete("/api/v1/namespaces/demo/functions/hello")
        .await;
    assert_eq!(r.status(), 204);
    let left = build_images(server.get_json("/api/v1/namespaces/demo/images").await);
    assert!(left.is_empty(), "{left:?}");
    let r = server
        .delete("/api/v1/namespaces/demo/functions/broken")
        .await;
    assert_eq!(r.status(), 204);
    let r = server
        .get("/api/v1/namespaces/demo/functions/broken/code")
        .await;
    assert_eq!(r.status(), 404);
}

async fn until_image_built(server: &Server, name: &str) -> Value {
    let path = format!("/api/v1/namespaces/demo/image-builds/{name}");
    wait_for(
        Duration::from_secs(120),
        &format!("image build {name} to end"),
        || server.get_json(&path),
        |view| view["status"] == "READY" || view["status"] == "ERROR",
    )
    .await
}

/// An image build on busybox (nothing to install: the builder starts, its changes are
/// exported and appended) is READY and among the namespace's images; the same build again
/// reuses the cached layer (the same digest, no builder); a function built on it answers; system
/// packages on a base without a package manager are ERROR saying so.
#[tokio::test]
async fn an_image_build_is_cached_and_functions_build_on_it() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[]);
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
    let build = json!({"name": "sh-deps", "baseImage": "sh-base"});
    let r = server
        .post_json("/api/v1/namespaces/demo/image-builds", &build)
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let first = until_image_built(&server, "sh-deps").await;
    assert_eq!(first["status"], "READY", "{first}");
    assert_eq!(first["cached"], false);
    let images = server.get_json("/api/v1/namespaces/demo/images").await;
    assert!(
        images
            .as_array()
            .is_some_and(|list| list.iter().any(|i| i["name"]
                .as_str()
                .is_some_and(|n| n.contains("sh-deps"))
                && i["digest"] == first["digest"])),
        "{images}"
    );
    let r = server
        .post_json("/api/v1/namespaces/demo/image-builds", &build)
        .await;
    assert_eq!(r.status(), 202);
    let again = until_image_built(&server, "sh-deps").await;
    assert_eq!(again["status"], "READY", "{again}");
    assert_eq!(again["cached"], true, "{again}");
    assert_eq!(again["digest"], first["digest"]);
    let logs = server
        .get_json("/api/v1/namespaces/demo/image-builds/sh-deps/logs")
        .await;
    assert!(
        logs["lines"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("reused cached layer")))),
        "{logs}"
    );

    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/on-deps/code",
            &json!({"image": "sh-deps", "handler": "run.sh",
                    "source": source(&[("run.sh", "read -r input\necho \"$input\"\n")])}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let built = until_built(&server, "on-deps").await;
    assert_eq!(built["status"], "READY", "{built}");
    let (status, _, body) = server.invoke("demo", "on-deps", "[1,2]").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!([1, 2]));

    let r = server
        .post_json(
            "/api/v1/namespaces/demo/image-builds",
            &json!({"name": "with-curl", "baseImage": "sh-base",
                    "systemPackages": [{"name": "curl", "version": ""}]}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let failed = until_image_built(&server, "with-curl").await;
    assert_eq!(failed["status"], "ERROR", "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("neither apk nor apt-get")),
        "{failed}"
    );
}

/// A build command's output reaches the build log while the command runs: on a base whose
/// `apk` prints a line, sleeps and prints another, the first line is in the build log while the
/// build is still CREATING, and once it is READY each line is there exactly once.
#[tokio::test]
async fn an_image_build_s_output_streams_while_its_command_runs() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let apk = "#!/bin/sh\necho \"fetching $3\"\nsleep 4\necho \"installed $3\"\n";
    let (_dir, tar) = images::rootfs_tar_with(&[("sbin/apk", apk, 0o755)]);
    let r = server
        .import_as(&server.http, Some("demo"), &tar, "test/slow-apk:1", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = server
        .post_json(
            "/api/v1/namespaces/demo/base-images",
            &json!({"name": "slow-base", "image": "test/slow-apk:1", "language": "shell"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = server
        .post_json(
            "/api/v1/namespaces/demo/image-builds",
            &json!({"name": "slow", "baseImage": "slow-base",
                    "systemPackages": [{"name": "pkg", "version": ""}]}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let count = |logs: &Value, text: &str| {
        logs["lines"]
            .as_array()
            .map_or(0, |l| l.iter().filter(|l| l["text"] == text).count())
    };
    let early = wait_for(
        Duration::from_secs(60),
        "the build log to hold the command's first line",
        || server.get_json("/api/v1/namespaces/demo/image-builds/slow/logs"),
        |logs| count(logs, "fetching pkg") > 0 || logs["done"] == true,
    )
    .await;
    assert_eq!(count(&early, "fetching pkg"), 1, "{early}");
    assert_eq!(early["status"], "CREATING", "{early}");
    assert_eq!(count(&early, "installed pkg"), 0, "{early}");
    let done = until_image_built(&server, "slow").await;
    assert_eq!(done["status"], "READY", "{done}");
    let logs = server
        .get_json("/api/v1/namespaces/demo/image-builds/slow/logs")
        .await;
    assert_eq!(count(&logs, "fetching pkg"), 1, "{logs}");
    assert_eq!(count(&logs, "installed pkg"), 1, "{logs}");
    // The agent's own lines about the command are there once too.
    assert_eq!(count(&logs, "running 1 commands"), 1, "{logs}");
}

/// A build a stopped server left unfinished (its record CREATING, as a crash mid-build leaves
/// it) is done at the next start: the function becomes READY and answers.
#[tokio::test]
async fn a_restarted_server_builds_what_it_left_unfinished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data).await;
    server.create_namespace("demo").await;
    let (_rootfs, tar) = images::rootfs_tar_with(&[]);
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
    assert!(server.stop());
    let stored = json!({"body": {
        "image": "sh-base", "handler": "run.sh",
        "source": source(&[("run.sh", "read -r input\necho \"$input\"\n")])
    }});
    let conn = rusqlite::Connection::open(data.join("faasbox.db")).expect("the database");
    conn.execute(
        "INSERT INTO code_records (namespace, kind, name, spec, status, created, modified)
         VALUES ('demo', 'function', 'later', ?1, 'CREATING', 't0', 't0')",
        [stored.to_string()],
    )
    .expect("storing the unfinished build");
    drop(conn);
    let server = Server::start_in(&data).await;
    let built = until_built(&server, "later").await;
    assert_eq!(built["status"], "READY", "{built}");
    let (status, _, body) = server.invoke("demo", "later", r#"{"again":true}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"again": true}));
}
