//! Cold-start and warm-invoke latency of an echo function, next to the floors measured in the
//! same run: `runc run` of the same image, and a direct HTTP call to the function's own server
//! inside the same container (from a thread that joined the container's network namespace).
//!
//! Run as root: `cargo bench -p faasbox --bench invoke` (FAASBOX_BENCH_N sets the iterations).
//! Figures are printed, never asserted.

#[path = "bench_support.rs"]
mod bench_support;
#[path = "../tests/support/images.rs"]
#[allow(dead_code)]
mod images;

use bench_support::{ms, percentiles, BenchServer};

/// Invokes the echo function and checks the echo.
async fn invoke(http: &reqwest::Client, url: &str, name: &str, input: &str) {
    let body = bench_support::invoke(http, url, name, input).await;
    assert_eq!(body, input.as_bytes(), "the echo came back changed");
}

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn main() {
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let cold_n = (n / 10).max(5);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let built = images::build(images::TEST_FUNCTION);
    let server = BenchServer::start();
    let url = server.url.clone();
    let input = r#"{"hello":"world"}"#;

    let (cold, warm) = runtime.block_on(async {
        let http = server.ready().await;
        let body = std::fs::read(&built.oci_tar).expect("image");
        let r = http
            .post(format!("{url}/api/v1/images/import"))
            .query(&[("name", "bench/echo")])
            .body(body)
            .send()
            .await
            .expect("import");
        assert!(r.status().is_success(), "import failed");
        let spec = json!({"image": "bench/echo", "envs": {"MODE": "plain"}, "network": true});
        let mut cold = Vec::new();
        for i in 0..cold_n {
            let name = format!("cold{i}");
            put(&http, &url, &name, &spec).await;
            let started = Instant::now();
            invoke(&http, &url, &name, input).await;
            cold.push(started.elapsed());
            http.delete(format!("{url}/api/v1/namespaces/bench/functions/{name}"))
                .send()
                .await
                .expect("delete");
        }
        put(&http, &url, "warm", &spec).await;
        invoke(&http, &url, "warm", input).await;
        let mut warm = Vec::new();
        for _ in 0..n {
            let started = Instant::now();
            invoke(&http, &url, "warm", input).await;
            warm.push(started.elapsed());
        }
        (cold, warm)
    });

    let direct = direct_http_in_container(server.data_dir(), input, n);
    drop(server);
    let runc_run = runc_run_floor(&built.rootfs_tar, cold_n);

    println!();
    println!(
        "faasbox invoke benchmark ({} warm calls, {} cold starts, echo function on busybox httpd)",
        n, cold_n
    );
    println!("{:<52} {:>10} {:>10}", "", "p50", "p99");
    let row = |label: &str, samples: &[Duration]| {
        let (p50, p99) = percentiles(samples);
        println!("{label:<52} {:>8.2}ms {:>8.2}ms", ms(p50), ms(p99));
        (p50, p99)
    };
    let runc = row(
        "floor: `runc run` of the same image (busybox true)",
        &runc_run,
    );
    let cold = row("faasbox cold start: invoke with no instance", &cold);
    let direct = row(
        "floor: direct HTTP call to the function in its netns",
        &direct,
    );
    let warm = row("faasbox warm invoke (API → agent → function)", &warm);
    println!();
    println!(
        "cold start / runc run:   {:.1}x (p50), {:.1}x (p99)",
        ratio(cold.0, runc.0),
        ratio(cold.1, runc.1)
    );
    println!(
        "warm invoke / direct:    {:.1}x (p50), {:.1}x (p99)",
        ratio(warm.0, direct.0),
        ratio(warm.1, direct.1)
    );
    println!(
        "warm invoke overhead:    {:.2}ms (p50)",
        ms(warm.0.saturating_sub(direct.0))
    );
}

async fn put(http: &reqwest::Client, url: &str, name: &str, spec: &Value) {
    let r = http
        .put(format!("{url}/api/v1/namespaces/bench/functions/{name}"))
        .json(spec)
        .send()
        .await
        .expect("deploy");
    assert!(
        r.status().is_success(),
        "deploy failed: {}",
        r.text().await.unwrap_or_default()
    );
}

/// Calls busybox httpd inside the warm instance directly: a thread joins the container's
/// network namespace and speaks HTTP to 127.0.0.1:8080 as the agent does.
fn direct_http_in_container(data_dir: &Path, input: &str, n: usize) -> Vec<Duration> {
    let root = data_dir.join("run/runc");
    let out = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["list", "--format", "json"])
        .output()
        .expect("runc list");
    let list: Value = serde_json::from_slice(&out.stdout).expect("runc list json");
    let pid = list
        .as_array()
        .and_then(|l| l.first())
        .and_then(|c| c["pid"].as_u64())
        .expect("a running instance");
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("netns");
    let input = input.to_string();
    std::thread::spawn(move || {
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + 1 {
            let started = Instant::now();
            let mut stream = std::net::TcpStream::connect("127.0.0.1:8080").expect("connect");
            let request = format!(
                "POST / HTTP/1.0\r\nContent-Type: application/json\r\nDirektiv-ActionID: bench{i}\r\n\
                 Direktiv-TempDir: /tmp\r\nContent-Length: {}\r\n\r\n{input}",
                input.len()
            );
            stream.write_all(request.as_bytes()).expect("write");
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).expect("read");
            assert!(answer.ends_with(input.as_bytes()), "direct call failed");
            if i > 0 {
                samples.push(started.elapsed());
            }
        }
        samples
    })
    .join()
    .expect("direct-call thread")
}

/// `runc run` of a bundle holding the same root filesystem, running `busybox true`.
fn runc_run_floor(rootfs_tar: &Path, n: usize) -> Vec<Duration> {
    let mut floor = bench_support::RuncFloor::new(rootfs_tar, &["/bin/busybox", "true"]);
    (0..n).map(|_| floor.run_once()).collect()
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
