//! The pool of warm instances: reuse, scale-up to `max`, per-instance `concurrency`, the
//! bounded queue served in order, `min` kept warm, idle instances stopped. Calls that must
//! stay running are held at a [`Gate`] the test opens, so counts are exact and nothing
//! depends on timing.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::gate::Gate;
use support::images;
use support::metrics::Exposition;
use support::{json as parse, wait_for, Server, ALLOW_HOST_LOOPBACK};

/// How long a test waits for what it expects (instances start in well under a second).
const WITHIN: Duration = Duration::from_secs(60);

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

/// A server whose function `demo/f` waits at `gate` on every call, with `scale`.
async fn gated(gate: &Gate, scale: serde_json::Value) -> (Server, tempfile::TempDir) {
    server_with_function_and(
        json!({
            "envs": {"MODE": "gate", "TARGET_PORT": gate.port.to_string()},
            "timeout": "300s",
            "scale": scale,
        }),
        &[ALLOW_HOST_LOOPBACK],
    )
    .await
}

/// Calls `demo/f` with input `tag` (a JSON string): status and the answer's `host`.
async fn call(server: &Server, tag: &str) -> (u16, String) {
    let (status, _, body) = server.invoke("demo", "f", format!("{tag:?}")).await;
    assert_eq!(status, 200, "{tag}: {}", String::from_utf8_lossy(&body));
    let answer = parse(&body);
    assert_eq!(answer["tag"], tag, "{answer}");
    (
        status,
        answer["host"].as_str().unwrap_or_default().to_string(),
    )
}

/// `faasbox_cold_starts_total` of `demo/f`.
async fn cold_starts(server: &Server) -> f64 {
    let text = server.get("/metrics").await.text().await.expect("metrics");
    Exposition::parse(&text).value(
        "faasbox_cold_starts_total",
        &[("namespace", "demo"), ("function", "f")],
    )
}

fn distinct(hosts: impl IntoIterator<Item = String>) -> std::collections::BTreeSet<String> {
    hosts.into_iter().collect()
}

#[tokio::test]
async fn a_burst_on_max_3_reaches_exactly_3_instances_and_3_cold_starts() {
    let gate = Gate::start().await;
    let (server, _dir) = gated(&gate, json!({"max": 3, "concurrency": 1})).await;
    let tags: Vec<String> = (0..5).map(|i| format!("burst{i}")).collect();
    let calls = futures_util::future::join_all(tags.iter().map(|t| call(&server, t)));
    let observe = async {
        // Three calls run, one per instance; the other two wait in the queue.
        let held = gate.wait_held(3, WITHIN).await;
        let stats = wait_for(
            WITHIN,
            "two calls queued",
            || instances(&server),
            |s| s["waiting"] == 2,
        )
        .await;
        assert_eq!(stats["instances"], 3, "{stats}");
        assert_eq!(stats["busy_calls"], 3, "{stats}");
        assert_eq!(
            distinct(held.iter().map(|a| a.host.clone())).len(),
            3,
            "{held:?}"
        );
        assert_eq!(cold_starts(&server).await, 3.0);
        assert_eq!(gate.held().len(), 3, "a fourth call ran beyond max");
        gate.open();
    };
    let (results, ()) = tokio::join!(calls, observe);
    // The queued calls ran in the same three instances; nothing else started.
    assert_eq!(distinct(results.into_iter().map(|(_, h)| h)).len(), 3);
    assert_eq!(cold_starts(&server).await, 3.0);
    assert_eq!(instances(&server).await["instances"], 3);
}

#[tokio::test]
async fn concurrency_4_lets_4_calls_share_one_instance_and_a_fifth_starts_another() {
    let gate = Gate::start().await;
    let (server, _dir) = gated(&gate, json!({"max": 2, "concurrency": 4})).await;
    let first = call(&server, "share0");
    let rest = async {
        // Once the first call runs in its instance, three more join it there.
        gate.wait_held(1, WITHIN).await;
        let more = futures_util::future::join_all(
            ["share1", "share2", "share3"].map(|tag| call(&server, tag)),
        );
        let check = async {
            let held = gate.wait_held(4, WITHIN).await;
            assert_eq!(
                distinct(held.iter().map(|a| a.host.clone())).len(),
                1,
                "{held:?}"
            );
            let stats = instances(&server).await;
            assert_eq!(stats["instances"], 1, "{stats}");
            assert_eq!(stats["busy_calls"], 4, "{stats}");
            assert_eq!(cold_starts(&server).await, 1.0);
            // The instance is full: a fifth call starts a second one.
            let fifth = call(&server, "share4");
            let opened = async {
                let held = gate.wait_held(5, WITHIN).await;
                assert_eq!(
                    distinct(held.iter().map(|a| a.host.clone())).len(),
                    2,
                    "{held:?}"
                );
                assert_eq!(cold_starts(&server).await, 2.0);
                gate.open();
            };
            tokio::join!(fifth, opened).0
        };
        tokio::join!(more, check)
    };
    let (first, (more, fifth)) = tokio::join!(first, rest);
    assert!(
        more.iter().all(|(_, host)| *host == first.1),
        "{first:?} {more:?}"
    );
    assert_ne!(fifth.1, first.1);
}

#[tokio::test]
async fn calls_queued_beyond_max_are_served_in_order() {
    let gate = Gate::start().await;
    let (server, _dir) = gated(&gate, json!({"max": 1, "concurrency": 1})).await;
    let order = ["running", "queued1", "queued2", "queued3"];
    // Each call is sent once the one before it is running or queued.
    let calls = futures_util::future::join_all(order.iter().enumerate().map(|(i, tag)| {
        let server = &server;
        let gate = &gate;
        async move {
            if i > 0 {
                gate.wait_held(1, WITHIN).await;
                wait_for(
                    WITHIN,
                    &format!("{} calls queued", i - 1),
                    || instances(server),
                    |s| s["waiting"] == i - 1,
                )
                .await;
            }
            call(server, tag).await
        }
    }));
    let release = async {
        wait_for(
            WITHIN,
            "three calls queued",
            || instances(&server),
            |s| s["waiting"] == 3,
        )
        .await;
        for (i, tag) in order.iter().enumerate() {
            let held = gate.wait_held(1, WITHIN).await;
            assert_eq!(held[0].tag, *tag, "call {i} to run");
            gate.release(1);
        }
    };
    let (results, ()) = tokio::join!(calls, release);
    assert_eq!(results.len(), 4);
    let arrived: Vec<String> = gate.arrivals().into_iter().map(|a| a.tag).collect();
    assert_eq!(arrived, order);
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
    // The first call holds the only instance; the second waits in the queue of one; the third
    // finds the queue full. Each is sent once the pool shows the one before it in place.
    let first = server.invoke("demo", "f", "{}");
    let second = async {
        wait_for(
            WITHIN,
            "the first call running",
            || instances(&server),
            |s| s["busy_calls"] == 1,
        )
        .await;
        server.invoke("demo", "f", "{}").await
    };
    let third = async {
        wait_for(
            WITHIN,
            "the second call queued",
            || instances(&server),
            |s| s["busy_calls"] == 1 && s["waiting"] == 1,
        )
        .await;
        server.invoke("demo", "f", "{}").await
    };
    let ((s1, _, _), (s2, _, b2), (s3, _, b3)) = tokio::join!(first, second, third);
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
    let gate = Gate::start().await;
    let (server, _dir) = gated(
        &gate,
        json!({"min": 1, "max": 3, "concurrency": 1, "idle_timeout": "1s"}),
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
    // A burst scales up to three instances (all three calls held at once)…
    let calls = futures_util::future::join_all(["up0", "up1", "up2"].map(|t| call(&server, t)));
    let observe = async {
        let held = gate.wait_held(3, WITHIN).await;
        assert_eq!(distinct(held.into_iter().map(|a| a.host)).len(), 3);
        assert_eq!(instances(&server).await["instances"], 3);
        gate.open();
    };
    tokio::join!(calls, observe);
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

/// How long a negative check watches for a call that must not start. The flow engine hands a
/// freed place to the next item at once; two seconds are many times that.
const NOTHING_MORE_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_foreach_runs_at_most_10_calls_at_once() {
    let gate = Gate::start().await;
    // One instance with room for 20 calls: the pool does not limit, the foreach does.
    let (server, _dir) = gated(&gate, json!({"max": 1, "concurrency": 20})).await;
    server
        .deploy_flow(
            "fan",
            "functions:\n- {id: f, type: knative-namespace, service: f}\nstates:\n- id: each\n  type: foreach\n  array: 'jq([range(15) | {i: .}])'\n  action: {function: f, input: 'jq(\"item\" + (.i | tostring))'}\n  transform: 'jq({tags: [.return[].tag]})'\n",
        )
        .await;
    let id = server.start_flow("fan", &json!({})).await;
    gate.wait_held(10, WITHIN).await;
    tokio::time::sleep(NOTHING_MORE_WITHIN).await;
    assert_eq!(
        gate.arrivals().len(),
        10,
        "an 11th call started while 10 ran"
    );
    // The first item's call ending makes room for exactly one more. (The results are
    // collected in the items' order: a later item that ends keeps its place until the
    // items before it are done, so the first item is the one released.)
    let mut held: Vec<String> = gate.held().into_iter().map(|a| a.tag).collect();
    held.sort_by_key(|t| {
        t.trim_start_matches("item")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    assert_eq!(
        held,
        (0..10).map(|i| format!("item{i}")).collect::<Vec<_>>()
    );
    gate.release_tag("item0");
    support::wait_until(WITHIN, "an 11th call", || gate.arrivals().len() == 11).await;
    assert_eq!(gate.held().len(), 10);
    gate.open();
    let done = server
        .wait_instance(&id, &["complete", "failed"], WITHIN)
        .await;
    let tags: Vec<String> = (0..15).map(|i| format!("item{i}")).collect();
    assert_eq!(done["output"], json!({"tags": tags}), "{done}");
    assert_eq!(gate.arrivals().len(), 15);
}
