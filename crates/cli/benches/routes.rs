//! A warm echo function reached three ways in one run: through a public HTTP route
//! (`POST /ns/bench/echo`, no token), through the authenticated invoke API, and directly (a
//! thread in the instance's network namespace speaking HTTP to the function's own server, the
//! floor). Latency (p50, p99) of sequential calls, then throughput (calls/s) at a client
//! concurrency of [`CONCURRENCY`], each with its ratio to the floor.
//!
//! Run as root: `cargo bench -p faasbox --bench routes` (FAASBOX_BENCH_N sets the calls of
//! each kind, default 300). Figures are printed, never asserted.

#[path = "bench_support.rs"]
#[allow(dead_code)] // the runc exec helper is not used here
mod bench_support;
#[path = "../tests/support/images.rs"]
#[allow(dead_code)]
mod images;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_support::{ms, percentiles, BenchServer};
use serde_json::{json, Value};

/// Calls in flight at once in the throughput phases.
const CONCURRENCY: usize = 8;
const INPUT: &str = r#"{"hello":"world"}"#;

/// One way of calling the function.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Route,
    Invoke,
}

fn main() {
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let built = images::build(images::TEST_FUNCTION);
    let server = BenchServer::start();
    let url = server.url.clone();
    let (admin, public) = runtime.block_on(async {
        let admin = server.ready().await;
        bench_support::import(&admin, &url, "bench/echo", &built.oci_tar, &[]).await;
        // One warm instance serving every way, several calls at once.
        let spec = json!({
            "image": "bench/echo",
            "envs": {"MODE": "plain"},
            "network": true,
            "scale": {"min": 1, "max": 1, "concurrency": CONCURRENCY},
        });
        bench_support::deploy(&admin, &url, "echo", &spec).await;
        let route = json!({"path": "/echo", "methods": ["POST"], "target": {"function": "echo"}});
        let r = admin
            .put(format!("{url}/api/v1/namespaces/bench/routes/echo"))
            .json(&route)
            .send()
            .await
            .expect("route");
        assert!(
            r.status().is_success(),
            "creating the route failed: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        let public = reqwest::Client::new();
        for _ in 0..5 {
            call(&admin, &public, &url, Way::Route).await;
            call(&admin, &public, &url, Way::Invoke).await;
        }
        (admin, public)
    });
    let pid = instance_pid(server.data_dir(), "bench/echo");

    // Latency: sequential calls, the three ways one after another.
    let route = runtime.block_on(sequential(&admin, &public, &url, Way::Route, n));
    let invoke = runtime.block_on(sequential(&admin, &public, &url, Way::Invoke, n));
    let direct = direct_calls(pid, 1, n).remove(0);

    // Throughput at CONCURRENCY calls in flight.
    let route_rate = runtime.block_on(concurrent(&admin, &public, &url, Way::Route, n));
    let invoke_rate = runtime.block_on(concurrent(&admin, &public, &url, Way::Invoke, n));
    let started = Instant::now();
    let per_thread = n.div_ceil(CONCURRENCY);
    let done: usize = direct_calls(pid, CONCURRENCY, per_thread)
        .iter()
        .map(Vec::len)
        .sum();
    let direct_rate = done as f64 / started.elapsed().as_secs_f64();
    drop(server);

    println!();
    println!(
        "faasbox routes benchmark ({n} calls of each kind, warm echo function on busybox httpd, \
         one instance)"
    );
    println!("{:<56} {:>10} {:>10} {:>12}", "", "p50", "p99", "calls/s");
    let row = |label: &str, samples: &[Duration], rate: f64| {
        let (p50, p99) = percentiles(samples);
        println!(
            "{label:<56} {:>8.2}ms {:>8.2}ms {:>12.0}",
            ms(p50),
            ms(p99),
            rate
        );
        (p50, p99, rate)
    };
    let direct = row(
        "floor: direct HTTP call to the function in its netns",
        &direct,
        direct_rate,
    );
    let invoke = row(
        "invoke API (bearer token → agent → function)",
        &invoke,
        invoke_rate,
    );
    let route = row(
        "public route POST /ns/bench/echo (no auth)",
        &route,
        route_rate,
    );
    println!("(calls/s at {CONCURRENCY} calls in flight; p50 and p99 of sequential calls)");
    println!();
    for (label, way) in [("route ", route), ("invoke", invoke)] {
        println!(
            "{label} / direct:  {:.1}x (p50), {:.1}x (p99), {:.2}x the calls/s",
            ratio(way.0, direct.0),
            ratio(way.1, direct.1),
            way.2 / direct.2
        );
    }
    println!(
        "route / invoke:   {:.2}x (p50), {:.2}x (p99), {:.2}x the calls/s",
        ratio(route.0, invoke.0),
        ratio(route.1, invoke.1),
        route.2 / invoke.2
    );
}

/// One call the given way; panics unless the echo comes back.
async fn call(admin: &reqwest::Client, public: &reqwest::Client, url: &str, way: Way) {
    let request = match way {
        Way::Route => public.post(format!("{url}/ns/bench/echo")),
        Way::Invoke => admin.post(format!(
            "{url}/api/v1/namespaces/bench/functions/echo/invoke"
        )),
    };
    let r = request
        .header("content-type", "application/json")
        .body(INPUT)
        .send()
        .await
        .expect("call");
    let status = r.status();
    let body = r.bytes().await.expect("body");
    let echoed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert!(
        status.is_success() && echoed == json!({"hello": "world"}),
        "the call failed: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

async fn sequential(
    admin: &reqwest::Client,
    public: &reqwest::Client,
    url: &str,
    way: Way,
    n: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        call(admin, public, url, way).await;
        samples.push(started.elapsed());
    }
    samples
}

/// Calls per second with [`CONCURRENCY`] calls in flight.
async fn concurrent(
    admin: &reqwest::Client,
    public: &reqwest::Client,
    url: &str,
    way: Way,
    n: usize,
) -> f64 {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..CONCURRENCY).map(|_| {
        let next = next.clone();
        async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                call(admin, public, url, way).await;
            }
        }
    });
    futures_util::future::join_all(workers).await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// The process id of `function`'s running container.
fn instance_pid(data_dir: &Path, function: &str) -> u32 {
    let container = bench_support::container_of(data_dir, function);
    let out = Command::new("runc")
        .arg("--root")
        .arg(data_dir.join("run/runc"))
        .args(["state", &container])
        .output()
        .expect("runc state");
    let state: Value = serde_json::from_slice(&out.stdout).expect("runc state JSON");
    state["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .expect("the container's pid")
}

/// `threads` threads in the network namespace of process `pid`, each making `calls` calls
/// to the function's server (127.0.0.1:8080) as the agent does; each thread's durations.
fn direct_calls(pid: u32, threads: usize, calls: usize) -> Vec<Vec<Duration>> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            // Each thread's calls get a directory of their own (the function writes its input
            // there), made through the container's root as the agent makes a call's.
            let dir = format!("/proc/{pid}/root/tmp/direct{t}");
            std::fs::create_dir_all(&dir).expect("a directory for the direct calls");
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .expect("chmod");
            let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("netns");
            std::thread::spawn(move || {
                nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                (0..calls)
                    .map(|i| {
                        let started = Instant::now();
                        let mut stream =
                            std::net::TcpStream::connect("127.0.0.1:8080").expect("connect");
                        let request = format!(
                            "POST / HTTP/1.0\r\nContent-Type: application/json\r\n\
                             Direktiv-ActionID: direct{t}x{i}\r\nDirektiv-TempDir: /tmp/direct{t}\r\n\
                             Content-Length: {}\r\n\r\n{INPUT}",
                            INPUT.len()
                        );
                        stream.write_all(request.as_bytes()).expect("write");
                        let mut answer = Vec::new();
                        stream.read_to_end(&mut answer).expect("read");
                        assert!(answer.ends_with(INPUT.as_bytes()), "the direct call failed");
                        started.elapsed()
                    })
                    .collect()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("direct-call thread"))
        .collect()
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
