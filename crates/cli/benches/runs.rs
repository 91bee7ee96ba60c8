//! Asynchronous runs next to blocking calls of the same warm echo function, in one run:
//! the acceptance rate of `invoke?async=true` at client concurrency 50 (each 202 answered
//! after the run is stored), the end-to-end throughput of those runs (from the first
//! submission until every run has ended), and blocking calls at the same concurrency.
//!
//! Run as root: `cargo bench -p faasbox --bench runs` (FAASBOX_BENCH_N sets the number of
//! calls of each kind, default 300). Figures are printed, never asserted.

#[path = "bench_support.rs"]
#[allow(dead_code)] // the data directory and runc helpers are not used here
mod bench_support;
#[path = "../tests/support/images.rs"]
#[allow(dead_code)]
mod images;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_support::{ms, percentiles, BenchServer};
use serde_json::{json, Value};

/// Client concurrency of every phase.
const CONCURRENCY: usize = 50;

fn main() {
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let (_image_dir, tar) =
        images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", images::TEST_FUNCTION, 0o755)]);
    let server = BenchServer::start();
    let url = server.url.clone();
    let figures = runtime.block_on(async {
        let http = server.ready().await;
        let entrypoint = serde_json::to_string(
            &images::HTTPD
                .iter()
                .chain([images::WWW].iter())
                .collect::<Vec<_>>(),
        )
        .expect("json");
        let query = [("entrypoint", entrypoint.as_str())];
        bench_support::import(&http, &url, "bench/echo", &tar, &query).await;
        let spec = json!({
            "image": "bench/echo",
            "envs": {"MODE": "plain"},
            "scale": {"min": 1, "max": 4, "concurrency": 10},
        });
        bench_support::deploy(&http, &url, "echo", &spec).await;
        bench_support::invoke(&http, &url, "echo", r#"{"warm":true}"#).await;

        let blocking = blocking_calls(&http, &url, n).await;
        let (accepted, latencies, ids) = submit_async(&http, &url, n).await;
        let first_submitted = accepted.0;
        assert_eq!(ids.len(), n);
        let all_ended = wait_all_ended(&http, &url).await;
        Figures {
            blocking,
            accept_time: accepted.1,
            accept_latencies: latencies,
            end_to_end: all_ended.duration_since(first_submitted),
        }
    });
    drop(server);
    figures.print(n);
}

struct Figures {
    /// Wall time of the blocking calls and each call's latency.
    blocking: (Duration, Vec<Duration>),
    /// Wall time until every async submission was answered 202.
    accept_time: Duration,
    /// Each submission's time to its 202.
    accept_latencies: Vec<Duration>,
    /// From the first submission until every async run had ended.
    end_to_end: Duration,
}

impl Figures {
    fn print(&self, n: usize) {
        let rate = |d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
        let blocking_rate = rate(self.blocking.0);
        let accept_rate = rate(self.accept_time);
        let async_rate = rate(self.end_to_end);
        let (bp50, bp99) = percentiles(&self.blocking.1);
        let (ap50, ap99) = percentiles(&self.accept_latencies);
        println!();
        println!(
            "faasbox runs benchmark ({n} calls of each kind, client concurrency {CONCURRENCY}, \
             warm echo function on busybox httpd, up to 4 instances × 10 calls)"
        );
        println!("{:<46} {:>10} {:>10} {:>10}", "", "per s", "p50", "p99");
        println!(
            "{:<46} {:>10.1} {:>8.2}ms {:>8.2}ms",
            "blocking calls (answered with the output)",
            blocking_rate,
            ms(bp50),
            ms(bp99)
        );
        println!(
            "{:<46} {:>10.1} {:>8.2}ms {:>8.2}ms",
            "async acceptance (202, run stored)",
            accept_rate,
            ms(ap50),
            ms(ap99)
        );
        println!(
            "{:<46} {:>10.1} {:>10} {:>10}",
            "async end to end (first accepted → all ended)", async_rate, "-", "-"
        );
        println!();
        println!(
            "async acceptance / blocking calls:   {:.2}x",
            accept_rate / blocking_rate.max(1e-9)
        );
        println!(
            "async end to end / blocking calls:   {:.2}x",
            async_rate / blocking_rate.max(1e-9)
        );
    }
}

/// Runs `jobs` tasks of `call` at [`CONCURRENCY`], each given its index; the results in
/// order of completion.
async fn fan_out<T, F, Fut>(jobs: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let call = Arc::new(call);
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, call) = (next.clone(), call.clone());
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    return done;
                }
                done.push(call(i).await);
            }
        }));
    }
    let mut all = Vec::with_capacity(jobs);
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    all
}

/// `n` blocking calls: (wall time, each call's latency).
async fn blocking_calls(http: &reqwest::Client, url: &str, n: usize) -> (Duration, Vec<Duration>) {
    let (http, url) = (http.clone(), url.to_string());
    let started = Instant::now();
    let latencies = fan_out(n, move |i| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let input = format!(r#"{{"blocking":{i}}}"#);
            let at = Instant::now();
            let body = bench_support::invoke(&http, &url, "echo", &input).await;
            assert_eq!(body, input.as_bytes(), "the echo came back changed");
            at.elapsed()
        }
    })
    .await;
    (started.elapsed(), latencies)
}

/// `n` async submissions: ((when the first was sent, wall time until all were accepted),
/// each one's time to its 202, the run ids).
async fn submit_async(
    http: &reqwest::Client,
    url: &str,
    n: usize,
) -> ((Instant, Duration), Vec<Duration>, Vec<String>) {
    let (http, url) = (http.clone(), url.to_string());
    let started = Instant::now();
    let answers = fan_out(n, move |i| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let at = Instant::now();
            let r = http
                .post(format!(
                    "{url}/api/v1/namespaces/bench/functions/echo/invoke?async=true"
                ))
                .header("content-type", "application/json")
                .body(format!(r#"{{"async":{i}}}"#))
                .send()
                .await
                .expect("async invoke");
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(status.as_u16(), 202, "async invoke: {status} {body}");
            let id = body["id"].as_str().expect("a run id").to_string();
            (at.elapsed(), id)
        }
    })
    .await;
    let elapsed = started.elapsed();
    let (latencies, ids) = answers.into_iter().unzip();
    ((started, elapsed), latencies, ids)
}

/// Polls the function's runs until none is queued or running (every submission was accepted
/// before this starts); when it was seen so. Fails if any run did not succeed.
async fn wait_all_ended(http: &reqwest::Client, url: &str) -> Instant {
    let count = |status: &'static str| {
        let (http, url) = (http.clone(), url.to_string());
        async move {
            let list: Value = http
                .get(format!(
                    "{url}/api/v1/namespaces/bench/runs?function=echo&status={status}&limit=1"
                ))
                .send()
                .await
                .expect("list runs")
                .json()
                .await
                .expect("runs JSON");
            list.as_array().map(Vec::len).unwrap_or(0)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if count("queued").await == 0 && count("running").await == 0 {
            let done = Instant::now();
            for status in ["failed", "crashed", "timeout", "cancelled"] {
                assert_eq!(count(status).await, 0, "a run ended {status}");
            }
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "the runs did not end within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
