//! Every number a request carries is range-checked (a 400 naming the field and the range,
//! nothing changed), and a handler that panics answers 500 with a code while the server goes
//! on serving — against a real server.

mod support;

use serde_json::{json, Value};
use support::{images, Server};

/// A server with namespace `demo` and a busybox image `bounds/img` (so that only the numbers
/// are wrong in the specs below), whose instance quota allows the largest `scale.max`.
async fn server_with_image() -> (Server, tempfile::TempDir) {
    let server = Server::start_with(&["--quota-instances", "100"]).await;
    server.create_namespace("demo").await;
    let (dir, tar) = images::rootfs_tar_with(&[]);
    // With an entrypoint: a deploy refuses an image without one (and without `cmd`).
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "bounds/img", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    (server, dir)
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON error, not ({e}): {text}"));
    (status, body)
}

#[tokio::test]
async fn huge_and_out_of_range_numbers_in_a_spec_are_a_400_naming_field_and_range() {
    let (server, _dir) = server_with_image().await;
    let base = json!({"image": "bounds/img"});
    // (what to merge into the spec, texts the message must contain)
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"timeout": 1e308}),
            vec!["`timeout`", "from 1ms to 24h"],
        ),
        (
            json!({"timeout": "99999999999999999999999y"}),
            vec!["`timeout`", "from 1ms to 24h"],
        ),
        (
            json!({"timeout": 0}),
            vec!["`timeout`", "from 1ms to 24h", "got 0s"],
        ),
        (
            json!({"timeout": 90000}),
            vec!["`timeout`", "from 1ms to 24h"],
        ),
        (json!({"timeout": -1}), vec!["`timeout`", "negative"]),
        (
            json!({"timeout": "soon"}),
            vec!["`timeout`", "not a duration"],
        ),
        (
            json!({"scale": {"idle_timeout": 1e20}}),
            vec!["`scale.idle_timeout`", "from 1s to 720h"],
        ),
        (
            json!({"scale": {"idle_timeout": 0.5}}),
            vec!["`scale.idle_timeout`", "from 1s to 720h"],
        ),
        (
            json!({"scale": {"max": 1e10}}),
            vec!["`scale.max`", "from 1 to 100"],
        ),
        (
            json!({"scale": {"max": 0}}),
            vec!["`scale.max`", "from 1 to 100"],
        ),
        (
            json!({"scale": {"min": -1}}),
            vec!["`scale.min`", "negative"],
        ),
        (
            json!({"scale": {"min": 101, "max": 100}}),
            vec!["`scale.min`", "from 0 to 100"],
        ),
        (
            json!({"scale": {"concurrency": 2.5}}),
            vec!["`scale.concurrency`", "whole number"],
        ),
        (
            json!({"scale": {"concurrency": 5000}}),
            vec!["`scale.concurrency`", "from 1 to 1000"],
        ),
        (
            json!({"contract": "file", "disk": 1e30}),
            vec!["`disk`", "from 64KiB to 64GiB"],
        ),
        (
            json!({"contract": "file", "disk": "1KiB"}),
            vec!["`disk`", "from 64KiB to 64GiB", "got 1KiB"],
        ),
        (
            json!({"contract": "file", "disk": -5}),
            vec!["`disk`", "negative"],
        ),
    ];
    for (extra, wanted) in cases {
        let mut spec = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let r = server
            .put_json("/api/v1/namespaces/demo/functions/f", &spec)
            .await;
        let (status, body) = error_of(r).await;
        assert_eq!(status, 400, "{spec}: {body}");
        assert_eq!(body["error"]["code"], "faasbox.request.invalid", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        for w in wanted {
            assert!(message.contains(w), "{spec}: {message:?} lacks {w:?}");
        }
        // Nothing was deployed.
        assert_eq!(
            server
                .get("/api/v1/namespaces/demo/functions/f")
                .await
                .status(),
            404
        );
    }
    // An integer literal beyond 64 bits.
    let r = server
        .http
        .put(server.url("/api/v1/namespaces/demo/functions/f"))
        .body(r#"{"image":"bounds/img","scale":{"max":184467440737095516160000}}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`scale.max` must be a whole number from 1 to 100"),
        "{body}"
    );
    // The edges of the ranges are accepted.
    let edge = json!({"image": "bounds/img", "timeout": 86400, "scale": {"min": 0, "max": 100,
        "concurrency": 1000, "idle_timeout": "720h"}});
    server.deploy("demo", "edge", edge).await;
    let shown = server
        .get_json("/api/v1/namespaces/demo/functions/edge")
        .await;
    assert_eq!(shown["spec"]["scale"]["max"], 100);
    // A global service is checked the same way.
    let r = server
        .put_json(
            "/api/v1/functions/g",
            &json!({"image": "bounds/img", "timeout": 1e308}),
        )
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`timeout`"));
    assert!(!server.log().contains("panicked"), "{}", server.log());
    assert_eq!(server.get("/api/v1/health").await.status(), 200);
}

#[tokio::test]
async fn query_numbers_are_checked_and_every_rejection_is_a_json_error() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let cases = [
        (
            "/api/v1/namespaces/demo/invocations?limit=0",
            "from 1 to 10000",
        ),
        (
            "/api/v1/namespaces/demo/invocations?limit=10001",
            "from 1 to 10000",
        ),
        (
            "/api/v1/namespaces/demo/invocations?limit=99999999999999999999999",
            "limit",
        ),
        ("/api/v1/namespaces/demo/invocations?limit=-4", "limit"),
        ("/api/v1/namespaces/demo/instances?limit=abc", "limit"),
        (
            "/api/v1/namespaces/demo/instances?limit=20000",
            "from 1 to 10000",
        ),
        (
            "/api/v1/namespaces/demo/events?limit=1001",
            "from 1 to 1000",
        ),
        ("/api/v1/namespaces/demo/events?limit=1e3", "limit"),
    ];
    for (path, wanted) in cases {
        let (status, body) = error_of(server.get(path).await).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "faasbox.request.invalid", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(wanted), "{path}: {message}");
    }
    // The edges work.
    for path in [
        "/api/v1/namespaces/demo/invocations?limit=1",
        "/api/v1/namespaces/demo/invocations?limit=10000",
        "/api/v1/namespaces/demo/events?limit=1000",
    ] {
        assert_eq!(server.get(path).await.status(), 200, "{path}");
    }
    // Instance logs' `after` and a flow run's `wait`: a malformed value is a JSON 400.
    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/flows/x/run?wait=maybe"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("wait"),
        "{body}"
    );
    let (status, body) = error_of(server.get("/api/v1/instances/x/logs?after=-1").await).await;
    assert_eq!(status, 400, "{body}");
    // A body that is not JSON where JSON is expected, on a route with an extractor.
    let r = server
        .http
        .post(server.url("/api/v1/tokens"))
        .header("content-type", "application/json")
        .body("[1,")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 400, "{body}");
    // A method a route does not take.
    let r = server
        .http
        .patch(server.url("/api/v1/namespaces"))
        .send()
        .await
        .unwrap();
    let allow = r.headers().get("allow").cloned();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 405, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not take that method"),
        "{body}"
    );
    assert!(allow.is_some(), "the Allow header is kept");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_with_a_code_and_the_server_goes_on() {
    // Without the hook the route does not exist.
    let plain = Server::start().await;
    let r = plain
        .http
        .post(plain.url("/api/v1/admin/test-panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(plain);

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in_with_env(
        &dir.path().join("data"),
        &[("FAASBOX_TEST_PANIC_ROUTE", "1")],
    )
    .await;
    // Many at once: each is its own 500; none takes the server down.
    let mut calls = Vec::new();
    for _ in 0..20 {
        let http = server.http.clone();
        let url = server.url("/api/v1/admin/test-panic");
        calls.push(tokio::spawn(async move {
            let r = http.post(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "faasbox.internal.panic", "{body}");
    }
    // Only the admin token reaches it.
    let anonymous = support::client_with_token(None)
        .post(server.url("/api/v1/admin/test-panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // The panics are in the log, and the server serves on.
    let log = server.log();
    assert!(
        log.contains("a request handler panicked: the test route panicked on purpose"),
        "{log}"
    );
    assert_eq!(server.get("/api/v1/health").await.status(), 200);
    server.create_namespace("after-the-panics").await;
    let list = server.get_json("/api/v1/namespaces").await;
    assert!(list.to_string().contains("after-the-panics"));
}
