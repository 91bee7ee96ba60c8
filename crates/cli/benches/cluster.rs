//! Several servers on one PostgreSQL database (issue 19), in one run: the end-to-end rate of
//! asynchronous runs with one, two and three servers sharing the store on this machine (the
//! same cores for all, so the figure shows what coordinating through the database costs, not
//! a speed-up), and the time from a server's death (SIGKILL) to its runs running again on
//! another, next to the lease that bounds it.
//!
//! Run as root: `cargo bench -p faasbox --bench cluster` (FAASBOX_BENCH_N sets the number of
//! runs per phase, default 300). PostgreSQL comes from `FAASBOX_TEST_POSTGRES` or a throwaway
//! cluster of its own. Figures are printed, never asserted.

#[path = "bench_support.rs"]
#[allow(dead_code)] // the server and runc helpers are not used here
mod bench_support;
#[path = "../tests/support/images.rs"]
#[allow(dead_code)]
mod images;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faasbox_test_registry::postgres::TestDatabase;
use serde_json::{json, Value};

const FAASBOX: &str = env!("CARGO_BIN_EXE_faasbox");
/// Client concurrency of the submissions.
const CONCURRENCY: usize = 20;
/// The servers' lease (`--cluster-lease-seconds`).
const LEASE_SECONDS: u64 = 3;

fn main() {
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let (_image_dir, tar) =
        images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", images::TEST_FUNCTION, 0o755)]);
    let mut rates = Vec::new();
    for servers in 1..=3 {
        let cluster = runtime.block_on(BenchCluster::start(servers, &tar));
        let rate = runtime.block_on(async_rate(&cluster, n));
        rates.push((servers, rate));
    }
    let takeover = {
        let mut cluster = runtime.block_on(BenchCluster::start(2, &tar));
        runtime.block_on(takeover_time(&mut cluster))
    };
    println!();
    println!(
        "faasbox cluster benchmark ({n} async runs per line, client concurrency {CONCURRENCY} \
         round-robin over the servers, warm echo function, one PostgreSQL, one machine)"
    );
    println!("{:<36} {:>12} {:>14}", "", "runs per s", "vs one server");
    let one = rates[0].1;
    for (servers, rate) in &rates {
        println!(
            "{:<36} {:>12.1} {:>13.2}x",
            format!("{servers} server(s)"),
            rate,
            rate / one.max(1e-9)
        );
    }
    println!();
    match takeover {
        Some((first, last, count)) => println!(
            "a killed server's {count} running runs: first running again elsewhere after \
             {:.2} s, last after {:.2} s (lease {LEASE_SECONDS} s; bound: lease + one heartbeat)",
            first.as_secs_f64(),
            last.as_secs_f64()
        ),
        None => println!("take-over: the killed server was running no run; nothing measured"),
    }
}

/// One server of a [`BenchCluster`].
struct Node {
    url: String,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// n servers on a fresh database with one master key, namespace `bench` and the warm echo
/// function `bench/echo` (its image imported into each server).
struct BenchCluster {
    nodes: Vec<Node>,
    http: reqwest::Client,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl BenchCluster {
    async fn start(n: usize, tar: &Path) -> BenchCluster {
        let database = tokio::task::spawn_blocking(TestDatabase::new)
            .await
            .expect("a database");
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("master.key");
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").expect("urandom"),
            &mut bytes,
        )
        .expect("random bytes");
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key)
                .and_then(|mut file| file.write_all(&bytes))
                .expect("writing the master key (0600)");
        }
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let data_dir = dir.path().join(format!("data{i}"));
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                let child = Command::new(FAASBOX)
                    .args(["server", "--listen", &format!("127.0.0.1:{port}")])
                    .args(["--log", "warn", "--store", &database.url])
                    .args(["--cluster-lease-seconds", &LEASE_SECONDS.to_string()])
                    .arg("--data-dir")
                    .arg(&data_dir)
                    .env("FAASBOX_MASTER_KEY_FILE", &key)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("starting a server");
                Node {
                    url: format!("http://127.0.0.1:{port}"),
                    data_dir,
                    child: Some(child),
                }
            })
            .collect();
        let anonymous = reqwest::Client::new();
        for node in &nodes {
            wait_healthy(&anonymous, &node.url).await;
        }
        let token = nodes
            .iter()
            .find_map(|node| std::fs::read_to_string(node.data_dir.join("admin.token")).ok())
            .expect("one server made the admin token");
        let http = bench_support::admin_client(&token);
        let cluster = BenchCluster {
            nodes,
            http,
            _database: database,
            _dir: dir,
        };
        cluster.set_up(tar).await;
        cluster
    }

    async fn set_up(&self, tar: &Path) {
        let first = &self.nodes[0].url;
        let r = self
            .http
            .post(format!("{first}/api/v1/namespaces"))
            .json(&json!({"name": "bench"}))
            .send()
            .await
            .expect("creating namespace bench");
        assert!(r.status().is_success(), "namespace: {}", r.status());
        let entrypoint = serde_json::to_string(
            &images::HTTPD
                .iter()
                .chain([images::WWW].iter())
                .collect::<Vec<_>>(),
        )
        .expect("json");
        // Each server keeps images of its own: the same archive gives the same digest.
        for node in &self.nodes {
            let r = self
                .http
                .post(format!("{}/api/v1/images/import", node.url))
                .query(&[("name", "bench/echo"), ("entrypoint", entrypoint.as_str())])
                .body(std::fs::read(tar).expect("image"))
                .send()
                .await
                .expect("import");
            assert!(r.status().is_success(), "import: {}", r.status());
        }
        let r = self
            .http
            .put(format!("{first}/api/v1/namespaces/bench/functions/echo"))
            .json(&json!({
                "image": "bench/echo",
                "envs": {"MODE": "plain"},
                "scale": {"min": 1, "max": 4, "concurrency": 10},
            }))
            .send()
            .await
            .expect("deploy");
        assert!(r.status().is_success(), "deploy: {}", r.status());
        for node in &self.nodes {
            self.invoke(&node.url, r#"{"warm":true}"#).await;
        }
    }

    async fn invoke(&self, url: &str, input: &str) {
        let r = self
            .http
            .post(format!(
                "{url}/api/v1/namespaces/bench/functions/echo/invoke"
            ))
            .body(input.to_string())
            .send()
            .await
            .expect("invoke");
        assert!(r.status().is_success(), "invoke: {}", r.status());
    }

    /// Submits one async run of `bench/<function>` through server `i`; its id.
    async fn submit(&self, i: usize, function: &str, input: &str) -> String {
        let r = self
            .http
            .post(format!(
                "{}/api/v1/namespaces/bench/functions/{function}/invoke?async=true",
                self.nodes[i].url
            ))
            .header("content-type", "application/json")
            .body(input.to_string())
            .send()
            .await
            .expect("async invoke");
        assert_eq!(r.status().as_u16(), 202, "async invoke");
        let body: Value = r.json().await.expect("JSON");
        body["id"].as_str().expect("a run id").to_string()
    }

    /// The runs of `bench/<function>` with `status` (at most 1000), through server `via`.
    async fn runs(&self, via: usize, function: &str, status: &str) -> Vec<Value> {
        let list: Value = self
            .http
            .get(format!(
                "{}/api/v1/namespaces/bench/runs?function={function}&status={status}&limit=1000",
                self.nodes[via].url
            ))
            .send()
            .await
            .expect("list runs")
            .json()
            .await
            .expect("runs JSON");
        list.as_array().cloned().unwrap_or_default()
    }
}

async fn wait_healthy(http: &reqwest::Client, url: &str) {
    for _ in 0..1500 {
        if let Ok(r) = http.get(format!("{url}/api/v1/health")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a server did not start");
}

/// Runs per second from the first submission until every one of `n` runs ended.
async fn async_rate(cluster: &BenchCluster, n: usize) -> f64 {
    let cluster = Arc::new(cluster);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, cluster) = (next.clone(), cluster.clone());
            async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    cluster
                        .submit(
                            i % cluster.nodes.len(),
                            "echo",
                            &format!(r#"{{"run":{i}}}"#),
                        )
                        .await;
                }
            }
        })
        .collect();
    futures_util::future::join_all(workers).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if cluster.runs(0, "echo", "queued").await.is_empty()
            && cluster.runs(0, "echo", "running").await.is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the runs did not end in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    for status in ["failed", "crashed", "timeout", "cancelled"] {
        assert!(
            cluster.runs(0, "echo", status).await.is_empty(),
            "a run ended {status}"
        );
    }
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Submits slow runs (each sleeps 30 s) through both servers, kills server 1 while it runs
/// some, and measures until each run that was running on it runs (or ended) on server 0:
/// (first, last, how many).
async fn takeover_time(cluster: &mut BenchCluster) -> Option<(Duration, Duration, usize)> {
    let node1 = std::fs::read_to_string(cluster.nodes[1].data_dir.join("node.id"))
        .expect("node id")
        .trim()
        .to_string();
    let r = cluster
        .http
        .put(format!(
            "{}/api/v1/namespaces/bench/functions/slow",
            cluster.nodes[0].url
        ))
        .json(&json!({
            "image": "bench/echo",
            "envs": {"MODE": "sleep-if-asked"},
            "scale": {"max": 2, "concurrency": 2},
            "timeout": "120s",
        }))
        .send()
        .await
        .expect("deploy");
    assert!(r.status().is_success(), "deploy: {}", r.status());
    for i in 0..8 {
        cluster.submit(i % 2, "slow", r#"{"sleep":true}"#).await;
    }
    let running_on_one = |list: Vec<Value>| -> Vec<String> {
        list.into_iter()
            .filter(|r| r["node"] == node1.as_str())
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while running_on_one(cluster.runs(0, "slow", "running").await).is_empty() {
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(mut child) = cluster.nodes[1].child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let killed = Instant::now();
    // What the store says server 1 was running when it died (its runs sleep 30 s).
    let on_one = running_on_one(cluster.runs(0, "slow", "running").await);
    let (mut first, mut pending) = (None, on_one.clone());
    let deadline = killed + Duration::from_secs(120);
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for id in pending {
            let run: Value = cluster
                .http
                .get(format!("{}/api/v1/runs/{id}", cluster.nodes[0].url))
                .send()
                .await
                .expect("a run")
                .json()
                .await
                .expect("run JSON");
            if run["node"] != node1.as_str() && run["status"] != "queued" {
                first.get_or_insert_with(|| killed.elapsed());
            } else {
                still.push(id);
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !pending.is_empty() {
        return None;
    }
    Some((first?, killed.elapsed(), on_one.len()))
}
