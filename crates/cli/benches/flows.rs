//! Workflow overhead, in one run: noop-flow instances per second (sequential and with
//! concurrent clients), and the latency an action state adds over invoking the same warm
//! function directly.
//!
//! Run as root: `scripts/bench.sh` (FAASBOX_BENCH_N sets the iterations). Figures are printed,
//! never asserted.

#[path = "bench_support.rs"]
#[allow(dead_code)]
mod bench_support;
#[path = "../tests/support/images.rs"]
#[allow(dead_code)]
mod images;

use std::time::{Duration, Instant};

use bench_support::{invoke, ms, percentiles, put_flow, BenchServer};
use serde_json::{json, Value};

const INPUT: &str = r#"{"hello":"world"}"#;
const CLIENTS: usize = 8;

async fn run_flow(http: &reqwest::Client, url: &str, path: &str) -> Value {
    let r = http
        .post(format!(
            "{url}/api/v1/namespaces/bench/flows/{path}/run?wait=true"
        ))
        .body(INPUT)
        .send()
        .await
        .expect("run");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert!(status.is_success(), "{path} failed: {status} {body}");
    body
}

fn main() {
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let (_dir, tar) =
        images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", images::TEST_FUNCTION, 0o755)]);
    let server = BenchServer::start();
    let url = server.url.clone();
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let http = server.ready().await;
        let query = images::rootfs_query();
        let r = http.post(format!("{url}/api/v1/images/import")).query(&[("name", "bench/echo")]).query(&query).body(std::fs::read(&tar).expect("tar")).send().await.expect("import");
        assert!(r.status().is_success(), "import failed");
        let spec = json!({"image": "bench/echo", "envs": {"MODE": "plain"}, "scale": {"min": 1, "concurrency": 16}});
        let r = http.put(format!("{url}/api/v1/namespaces/bench/functions/echo")).json(&spec).send().await.expect("deploy");
        assert!(r.status().is_success(), "deploy failed");
        put_flow(&http, &url, "noop", "states:\n- {id: a, type: noop}\n").await;
        put_flow(&http, &url, "action", "functions:\n- {id: echo, type: knative-namespace, service: echo}\nstates:\n- {id: a, type: action, action: {function: echo}}\n").await;
        invoke(&http, &url, "echo", INPUT).await;
        run_flow(&http, &url, "action").await;

        let started = Instant::now();
        let mut noop = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            run_flow(&http, &url, "noop").await;
            noop.push(t.elapsed());
        }
        let sequential = n as f64 / started.elapsed().as_secs_f64();

        let started = Instant::now();
        let per_client = n / CLIENTS;
        let clients = (0..CLIENTS).map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                for _ in 0..per_client {
                    run_flow(&http, &url, "noop").await;
                }
            })
        });
        futures_util::future::join_all(clients).await;
        let concurrent = (per_client * CLIENTS) as f64 / started.elapsed().as_secs_f64();

        let (mut direct, mut action) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let t = Instant::now();
            invoke(&http, &url, "echo", INPUT).await;
            direct.push(t.elapsed());
            let t = Instant::now();
            let out = run_flow(&http, &url, "action").await;
            action.push(t.elapsed());
            assert_eq!(out["return"], json!({"hello": "world"}));
        }
        report(n, sequential, concurrent, &noop, &direct, &action);
    });
}

fn report(
    n: usize,
    sequential: f64,
    concurrent: f64,
    noop: &[Duration],
    direct: &[Duration],
    action: &[Duration],
) {
    let (noop50, noop99) = percentiles(noop);
    let (d50, d99) = percentiles(direct);
    let (a50, a99) = percentiles(action);
    println!("workflow benchmark, {n} iterations");
    println!("  noop flow, run?wait=true one at a time: {sequential:8.1} instances/s  (p50 {:.2} ms, p99 {:.2} ms)", ms(noop50), ms(noop99));
    println!("  noop flow, {CLIENTS} concurrent clients:       {concurrent:8.1} instances/s");
    println!(
        "  warm function invoked directly:         p50 {:7.2} ms  p99 {:7.2} ms",
        ms(d50),
        ms(d99)
    );
    println!(
        "  same function as a flow's action state: p50 {:7.2} ms  p99 {:7.2} ms",
        ms(a50),
        ms(a99)
    );
    println!(
        "  added by the action state:              p50 {:7.2} ms",
        ms(a50) - ms(d50)
    );
}
