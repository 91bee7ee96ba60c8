//! The pool of warm instances: reuse, scale-up to `max`, the bounded queue, `min` kept warm,
//! idle instances stopped.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::images;
use support::{json as parse, Server};

async fn server_with_function(spec: serde_json::Value) -> (Server, tempfile::TempDir) {
    server_with_function_and(spec, &[]).await
}

async fn server_with_function_and(
    spec: serde_json::Value,
    args: &[&str],
) -> (Server, tempfile::TempDir) {
    let (dir, tar) =
        images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", images::TEST_FUNCTION, 0o755)]);
    let server = Server::start_with(args).await;
    server.create_namespace("demo").await;
    let entrypoint = serde_json::to_string(
        &images::HTTPD
            .iter()
            .chain([images::WWW].iter())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let r = server
        .import(&tar, "test/function:latest", &[("entrypoint", &entrypoint)])
        .await;
    assert_eq!(r.status(), 201);
    let mut full = json!({"image": "test/function:latest"});
    for (k, v) in spec.as_object().cloned().unwrap_or_default() {
        full[k] = v;
    }
    server.deploy("demo", "f", full).await;
    (server, dir)
}

async fn instances(server: &Server) -> serde_json::Value {
    server.get_json("/api/v1/namespaces/demo/functions/f").await["instances"].clone()
}

#[tokio::test]
async fn warm_instances_are_reused_and_calls_beyond_max_wait_their_turn() {
    let (server, _dir) =
        server_with_function(json!({"envs": {"MODE": "headers"}, "scale": {"max": 2}})).await;
    for _ in 0..5 {
        let (status, _, _) = server.invoke("demo", "f", "{}").await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        instances(&server).await["instances"],
        1,
        "sequential calls reuse one instance"
    );
    // Six calls at once on max 2: all succeed, never more than two instances.
    let calls = (0..6).map(|_| server.invoke("demo", "f", "{}"));
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|(status, _, _)| *status == 200));
    assert!(instances(&server).await["instances"].as_u64().unwrap() <= 2);
}

#[tokio::test]
async fn calls_beyond_the_queue_are_refused_and_waiting_is_bounded() {
    let (server, _dir) = server_with_function_and(
        json!({"envs": {"MODE": "sleep"}, "timeout": "4s", "scale": {"max": 1}}),
        &["--queue-limit", "1", "--queue-timeout", "1s"],
    )
    .await;
    let delayed = |ms: u64| {
        let server = &server;
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            server.invoke("demo", "f", "{}").await
        }
    };
    // The first call holds the only instance; the second waits in the queue of one; the third
    // finds the queue full.
    let ((s1, _, _), (s2, _, b2), (s3, _, b3)) =
        tokio::join!(delayed(0), delayed(600), delayed(1000));
    assert_eq!(s1, 504, "the first call sleeps past its timeout");
    assert_eq!(s3, 503, "{}", String::from_utf8_lossy(&b3));
    let error = &parse(&b3)["error"];
    assert_eq!(error["code"], "faasbox.function.queue_full");
    assert!(
        error["message"].as_str().unwrap().contains("scale.max"),
        "{error}"
    );
    assert_eq!(s2, 503, "{}", String::from_utf8_lossy(&b2));
    assert!(parse(&b2)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no free instance within 1s"));
}

#[tokio::test]
async fn min_instances_stay_warm_and_idle_ones_stop() {
    let (server, _dir) = server_with_function(
        json!({"envs": {"MODE": "headers"}, "scale": {"min": 1, "max": 3, "idle_timeout": "1s"}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while instances(&server).await["instances"] != 1 {
        assert!(
            Instant::now() < deadline,
            "min 1 never came up: {}",
            instances(&server).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A burst scales up…
    let calls = (0..3).map(|_| server.invoke("demo", "f", "{}"));
    for (status, _, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200);
        assert!(parse(&body)["action"].is_string());
    }
    // …and after the idle timeout only `min` remain.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = instances(&server).await;
        if now["instances"] == 1 && now["starting"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "idle instances did not stop: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // With min 0, everything idle goes away.
    server.deploy("demo", "f", json!({"image": "test/function:latest", "envs": {"MODE": "headers"}, "scale": {"min": 0, "idle_timeout": "1s"}})).await;
    let (status, _, _) = server.invoke("demo", "f", "{}").await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while instances(&server).await["instances"] != 0 {
        assert!(
            Instant::now() < deadline,
            "scale to zero did not happen: {}",
            instances(&server).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
