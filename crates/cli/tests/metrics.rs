//! Prometheus metrics at `/metrics` on a real server: calls of real functions (ok, the
//! function's error, a crash, a timeout, a full queue, out of memory, cancelled) counted by namespace, function and
//! outcome with their durations and cold starts; flow instances and events counted by
//! namespace; the admin token required (401 without one, 403 for namespace tokens); and the
//! answer read by a strict OpenMetrics parser, so values are asserted, not just names.

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;
use support::images::{self, TestImages};
use support::metrics::Exposition;
use support::{client_with_token, Server};

const NS: &str = "demo";
const IMAGE: &str = "test/function:latest";
const OUTCOMES: [&str; 7] = [
    "ok",
    "error",
    "crash",
    "timeout",
    "oom",
    "cancelled",
    "rejected",
];

fn test_images() -> &'static TestImages {
    static IMAGES: OnceLock<TestImages> = OnceLock::new();
    IMAGES.get_or_init(|| images::shared(images::TEST_FUNCTION))
}

/// A server with namespace demo and the test image imported.
async fn server_with_image(args: &[&str]) -> Server {
    let server = Server::start_with(args).await;
    server.create_namespace(NS).await;
    let r = server.import(&test_images().oci_tar, IMAGE, &[]).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server
}

async fn deploy_mode(server: &Server, name: &str, mode: &str, extra: serde_json::Value) {
    let mut spec = json!({"image": IMAGE, "envs": {"MODE": mode}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    server.deploy(NS, name, spec).await;
}

/// Scrapes `/metrics` with the admin token and parses it.
async fn scrape(server: &Server) -> Exposition {
    let r = server.get("/metrics").await;
    assert_eq!(r.status(), 200);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = r.text().await.expect("metrics text");
    let exposition = Exposition::parse(&text);
    for sample in exposition.matching("faasbox_invocations_total", &[]) {
        let outcome = sample.labels.get("outcome").map(String::as_str);
        assert!(
            outcome.is_some_and(|o| OUTCOMES.contains(&o)),
            "unbounded outcome label: {sample:?}"
        );
    }
    exposition
}

fn calls(m: &Exposition, function: &str, outcome: &str) -> f64 {
    m.value(
        "faasbox_invocations_total",
        &[
            ("namespace", NS),
            ("function", function),
            ("outcome", outcome),
        ],
    )
}

fn create_token(server: &Server, role: &str) -> String {
    let token = server
        .cli_ok(&["token", "create", "--namespace", NS, "--role", role])
        .trim()
        .to_string();
    assert!(token.starts_with("fbx_"), "{token}");
    token
}

#[tokio::test]
async fn metrics_count_calls_by_function_and_outcome_for_the_admin_token_only() {
    let server = server_with_image(&[]).await;
    deploy_mode(&server, "echo", "plain", json!({})).await;
    deploy_mode(&server, "fails", "error", json!({})).await;
    deploy_mode(&server, "crashes", "crash", json!({})).await;
    for _ in 0..2 {
        let (status, _, body) = server.invoke(NS, "echo", r#"{"x":1}"#).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let (status, _, _) = server.invoke(NS, "fails", "{}").await;
    assert_eq!(status, 502);
    let (status, _, _) = server.invoke(NS, "crashes", "{}").await;
    assert_eq!(status, 502);

    let m = scrape(&server).await;
    assert_eq!(calls(&m, "echo", "ok"), 2.0);
    assert_eq!(calls(&m, "fails", "error"), 1.0);
    assert_eq!(calls(&m, "crashes", "crash"), 1.0);
    assert!(m
        .matching(
            "faasbox_invocations_total",
            &[("function", "echo"), ("outcome", "error")]
        )
        .is_empty());
    // Durations: every call observed once, buckets cumulative up to +Inf.
    let echo = [("namespace", NS), ("function", "echo")];
    assert_eq!(
        m.value("faasbox_invocation_duration_seconds_count", &echo),
        2.0
    );
    assert!(m.value("faasbox_invocation_duration_seconds_sum", &echo) > 0.0);
    let buckets = m.matching("faasbox_invocation_duration_seconds_bucket", &echo);
    assert!(buckets.len() > 2, "{buckets:?}");
    let counts: Vec<f64> = buckets.iter().map(|b| b.value).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(
        m.value(
            "faasbox_invocation_duration_seconds_bucket",
            &[("function", "echo"), ("le", "+Inf")]
        ),
        2.0
    );
    // The first call started the instance, the second reused it, which is still warm.
    assert_eq!(m.value("faasbox_cold_starts_total", &echo), 1.0);
    assert_eq!(m.value("faasbox_instances", &echo), 1.0);
    assert_eq!(m.value("faasbox_calls_in_flight", &echo), 0.0);
    assert_eq!(
        m.value(
            "faasbox_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        m.types.get("faasbox_invocations").map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        m.types
            .get("faasbox_invocation_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );

    // Who may scrape: the admin token only (metrics name every namespace's functions).
    let anonymous = client_with_token(None);
    let r = anonymous
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "faasbox.auth.missing");
    for role in ["invoke", "admin"] {
        let token = create_token(&server, role);
        let r = client_with_token(Some(&token))
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 403, "namespace {role} token");
        let body: serde_json::Value = r.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "faasbox.auth.forbidden");
    }
}

#[tokio::test]
async fn metrics_count_timeouts_and_calls_refused_by_a_full_queue() {
    let server = server_with_image(&["--queue-limit", "0"]).await;
    deploy_mode(
        &server,
        "slow",
        "sleep",
        json!({"timeout": "3s", "scale": {"max": 1}}),
    )
    .await;
    let slow = [("namespace", NS), ("function", "slow")];
    let first = {
        let (http, url) = (
            server.http.clone(),
            server.url("/api/v1/namespaces/demo/functions/slow/invoke"),
        );
        tokio::spawn(async move {
            let r = http.post(url).body("{}").send().await.expect("invoke");
            r.status().as_u16()
        })
    };
    // Wait until the first call holds the only instance (the gauge says so).
    let since = Instant::now();
    loop {
        let m = scrape(&server).await;
        if !m.matching("faasbox_calls_in_flight", &slow).is_empty()
            && m.value("faasbox_calls_in_flight", &slow) == 1.0
        {
            assert_eq!(m.value("faasbox_instances", &slow), 1.0);
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the first call never got its instance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, body) = server.invoke(NS, "slow", "{}").await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(first.await.expect("first call"), 504);

    let m = scrape(&server).await;
    assert_eq!(calls(&m, "slow", "rejected"), 1.0);
    assert_eq!(calls(&m, "slow", "timeout"), 1.0);
    assert_eq!(m.value("faasbox_queue_rejections_total", &slow), 1.0);
    assert_eq!(m.value("faasbox_cold_starts_total", &slow), 1.0);
    assert_eq!(m.value("faasbox_calls_in_flight", &slow), 0.0);
    assert_eq!(
        m.value("faasbox_invocation_duration_seconds_count", &slow),
        2.0
    );
}

#[tokio::test]
async fn metrics_count_calls_out_of_memory_and_cancelled() {
    let server = server_with_image(&[]).await;
    // Over the small size's memory limit: the kernel's OOM killer ends the call.
    deploy_mode(
        &server,
        "hog",
        "oom",
        json!({"size": "small", "scale": {"max": 1}}),
    )
    .await;
    let (status, _, body) = server.invoke(NS, "hog", "{}").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        support::json(&body)["error"]["code"],
        "faasbox.function.oom"
    );
    assert_eq!(calls(&scrape(&server).await, "hog", "oom"), 1.0);

    // A flow's call cancelled with its instance.
    deploy_mode(&server, "slow", "sleep", json!({"timeout": "60s"})).await;
    server
        .deploy_flow(
            "caller",
            "functions:\n- {id: slow, type: knative-namespace, service: slow}\nstates:\n- {id: a, type: action, action: {function: slow}}\n",
        )
        .await;
    let id = server.start_flow("caller", &json!({})).await;
    server.wait_busy_calls(NS, "slow", 1).await;
    let r = server
        .post_json(
            &format!("/api/v1/namespaces/demo/instances/{id}/cancel"),
            &json!({}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let m = support::wait_for(
        Duration::from_secs(60),
        "the cancelled call counted",
        || scrape(&server),
        |m| {
            !m.matching("faasbox_invocations_total", &[("function", "slow")])
                .is_empty()
        },
    )
    .await;
    assert_eq!(calls(&m, "slow", "cancelled"), 1.0);
    assert_eq!(calls(&m, "hog", "oom"), 1.0);
}

#[tokio::test]
async fn metrics_count_flow_instances_by_status_and_accepted_events() {
    let server = Server::start().await;
    server.create_namespace(NS).await;
    server
        .deploy_flow(
            "fine",
            "states:\n- {id: a, type: noop, transform: {done: true}}\n",
        )
        .await;
    server
        .deploy_flow(
            "broken",
            "states:\n- {id: e, type: error, error: my.code, message: 'always'}\n",
        )
        .await;
    for _ in 0..2 {
        let (status, _, body) = server.run_flow("fine", &json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = server.run_flow("broken", &json!({})).await;
    assert_eq!(status, 422, "{body}");
    for id in ["e-1", "e-1", "e-2"] {
        let event =
            json!({"specversion": "1.0", "id": id, "source": "/test", "type": "t.happened"});
        let r = server
            .post_json("/api/v1/namespaces/demo/events", &event)
            .await;
        assert_eq!(r.status(), 202);
    }

    let m = scrape(&server).await;
    let ns = [("namespace", NS)];
    assert_eq!(m.value("faasbox_flow_instances_started_total", &ns), 3.0);
    assert_eq!(
        m.value(
            "faasbox_flow_instances_finished_total",
            &[("namespace", NS), ("status", "complete")]
        ),
        2.0
    );
    assert_eq!(
        m.value(
            "faasbox_flow_instances_finished_total",
            &[("namespace", NS), ("status", "failed")]
        ),
        1.0
    );
    // The duplicate e-1 is accepted but not counted again.
    assert_eq!(m.value("faasbox_events_accepted_total", &ns), 2.0);
}

#[tokio::test]
async fn metrics_count_cron_started_and_cancelled_flow_instances() {
    let server = Server::start().await;
    server.create_namespace(NS).await;
    server
        .deploy_flow(
            "waiter",
            "states:\n- id: w\n  type: consumeEvent\n  timeout: PT5M\n  event: {type: never.sent}\n",
        )
        .await;
    let id = server.start_flow("waiter", &json!({})).await;
    server
        .wait_instance(&id, &["waiting"], Duration::from_secs(60))
        .await;
    let r = server
        .post_json(
            &format!("/api/v1/namespaces/demo/instances/{id}/cancel"),
            &json!({}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let m = scrape(&server).await;
    let cancelled = [("namespace", NS), ("status", "cancelled")];
    assert_eq!(
        m.value("faasbox_flow_instances_finished_total", &cancelled),
        1.0
    );

    server
        .deploy_flow(
            "ticker",
            "start:\n  type: scheduled\n  cron: \"* * * * * *\"\nstates:\n- {id: a, type: noop}\n",
        )
        .await;
    let ns = [("namespace", NS)];
    let since = Instant::now();
    while scrape(&server)
        .await
        .value("faasbox_flow_instances_started_total", &ns)
        < 3.0
    {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "no cron slot fired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = server.delete("/api/v1/namespaces/demo/flows/ticker").await;
    assert!(r.status().is_success());
    // Every stored instance was counted once as started, each complete one as finished.
    let since = Instant::now();
    loop {
        let before = server
            .get_json("/api/v1/namespaces/demo/instances?limit=10000")
            .await;
        let m = scrape(&server).await;
        let after = server
            .get_json("/api/v1/namespaces/demo/instances?limit=10000")
            .await;
        let all = after.as_array().expect("instances");
        let complete = all.iter().filter(|i| i["status"] == "complete").count();
        let still_running = all.iter().any(|i| i["status"] == "running");
        if before == after && !still_running {
            assert_eq!(
                m.value("faasbox_flow_instances_started_total", &ns),
                all.len() as f64
            );
            let finished = m.matching(
                "faasbox_flow_instances_finished_total",
                &[("namespace", NS), ("status", "complete")],
            );
            assert_eq!(finished.len(), 1, "{finished:?}");
            assert_eq!(finished[0].value, complete as f64);
            assert_eq!(all.len(), complete + 1, "the waiter and the ticks");
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "instances kept changing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The containers created ahead of demand (`--spare-containers`, 1 by default) are a gauge:
/// none before any start, one after a start of the image (made in the background), taken by
/// the next function of the same image and settings and made again after its start.
#[tokio::test]
async fn metrics_show_the_containers_created_ahead() {
    let server = server_with_image(&[]).await;
    let spare = |m: &Exposition| {
        assert_eq!(
            m.types.get("faasbox_spare_containers").map(String::as_str),
            Some("gauge")
        );
        m.value("faasbox_spare_containers", &[])
    };
    assert_eq!(spare(&scrape(&server).await), 0.0);
    deploy_mode(&server, "first", "plain", json!({})).await;
    let (status, _, body) = server.invoke(NS, "first", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if spare(&scrape(&server).await) == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no container was created ahead within 30 s of a start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // At most one per image and settings (the default): a second start of the same image
    // takes it and one is made again, never two.
    deploy_mode(&server, "second", "plain", json!({})).await;
    let (status, _, body) = server.invoke(NS, "second", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for _ in 0..20 {
        assert!(spare(&scrape(&server).await) <= 1.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reader the tests above rely on refuses what is not the format, so their parses mean
/// something.
#[test]
fn the_openmetrics_reader_refuses_what_is_not_the_format() {
    let good = "# TYPE x counter\nx_total{a=\"q\\\"\"} 2\n# EOF\n";
    let m = Exposition::parse(good);
    assert_eq!(m.value("x_total", &[("a", "q\"")]), 2.0);
    for bad in [
        "# TYPE x counter\nx_total 2\n",                  // no # EOF
        "x_total 2\n# EOF\n",                             // undeclared family
        "# TYPE x counter\nx 2\n# EOF\n",                 // a counter's sample needs _total
        "# TYPE x gauge\nx{a=b} 2\n# EOF\n",              // unquoted label value
        "# TYPE x gauge\nx{a=\"b\"} two\n# EOF\n",        // not a number
        "# TYPE x gauge\nx 1\n# EOF\nx 2\n",              // text after # EOF
        "# TYPE x gauge\n# TYPE x counter\nx 1\n# EOF\n", // declared twice
    ] {
        let result = std::panic::catch_unwind(|| Exposition::parse(bad));
        assert!(result.is_err(), "accepted {bad:?}");
    }
}
