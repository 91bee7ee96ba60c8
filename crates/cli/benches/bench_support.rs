//! What the benchmarks share: a `faasbox server` of their own, waiting for it, running a
//! program inside a function's container (`runc exec`, the floor), percentiles.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const FAASBOX: &str = env!("CARGO_BIN_EXE_faasbox");

/// A server on a free port with a data directory of its own; stopped with SIGTERM on drop.
pub struct BenchServer {
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The server's data directory.
    pub data_dir: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    /// Starts the server (without waiting for it).
    pub fn start() -> BenchServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(FAASBOX)
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log",
                "warn",
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the server");
        BenchServer {
            url: format!("http://127.0.0.1:{port}"),
            data_dir,
            child,
            _dir: dir,
        }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Waits for health, then creates the namespace `bench`; returns a client that sends the
    /// server's admin token.
    pub async fn ready(&self) -> reqwest::Client {
        let anonymous = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = anonymous
                .get(format!("{}/api/v1/health", self.url))
                .send()
                .await
            {
                if r.status().is_success() {
                    let token = std::fs::read_to_string(self.data_dir.join("admin.token"))
                        .expect("the server wrote its admin token");
                    let http = admin_client(&token);
                    http.post(format!("{}/api/v1/namespaces", self.url))
                        .json(&serde_json::json!({"name": "bench"}))
                        .send()
                        .await
                        .expect("creating namespace bench");
                    return http;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server did not start");
    }
}

/// A client that sends `token` (as read from `admin.token`) with every request.
pub fn admin_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", token.trim())
            .parse()
            .expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Imports the OCI archive `tar` as image `name` (with further query pairs, such as an
/// `entrypoint`); panics when the import fails.
#[allow(dead_code)] // not every benchmark imports its image this way
pub async fn import(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    tar: &Path,
    query: &[(&str, &str)],
) {
    let r = http
        .post(format!("{url}/api/v1/images/import"))
        .query(&[("name", name)])
        .query(query)
        .body(std::fs::read(tar).expect("image"))
        .send()
        .await
        .expect("import");
    assert!(r.status().is_success(), "import failed: {}", r.status());
}

/// Deploys `bench/<name>` from `spec`; panics when the deploy fails.
#[allow(dead_code)] // not every benchmark deploys this way
pub async fn deploy(http: &reqwest::Client, url: &str, name: &str, spec: &serde_json::Value) {
    let r = http
        .put(format!("{url}/api/v1/namespaces/bench/functions/{name}"))
        .json(spec)
        .send()
        .await
        .expect("deploy");
    assert!(r.status().is_success(), "deploy failed: {}", r.status());
}

/// Invokes `bench/<name>` and returns its output; panics when the call fails.
pub async fn invoke(http: &reqwest::Client, url: &str, name: &str, input: &str) -> Vec<u8> {
    let r = http
        .post(format!(
            "{url}/api/v1/namespaces/bench/functions/{name}/invoke"
        ))
        .body(input.to_string())
        .send()
        .await
        .expect("invoke");
    let status = r.status();
    let body = r.bytes().await.expect("body").to_vec();
    assert!(
        status.is_success(),
        "{name} failed: {status} {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// p50 and p99 of the samples.
pub fn percentiles(samples: &[Duration]) -> (Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

/// A duration in milliseconds, with fractions.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The id of the running container of `function` (`ns/name`), from the driver's instance
/// records.
#[allow(dead_code)] // not every benchmark execs into containers
pub fn container_of(data_dir: &Path, function: &str) -> String {
    let instances = data_dir.join("run/instances");
    for entry in std::fs::read_dir(&instances).expect("instances").flatten() {
        let meta: serde_json::Value = std::fs::read(entry.path().join("instance.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null);
        if meta["function"] == function {
            return entry.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("no instance of {function}");
}

/// Runs `command` inside `container` with `runc exec` (environment `env`, `input` on stdin)
/// and returns how long it took and what it printed; panics when it fails.
#[allow(dead_code)] // not every benchmark execs into containers
pub fn runc_exec(
    data_dir: &Path,
    container: &str,
    command: &[&str],
    env: &[&str],
    input: &str,
) -> (Duration, Vec<u8>) {
    use std::io::Write;
    let started = std::time::Instant::now();
    let mut runc = Command::new("runc");
    runc.arg("--root")
        .arg(data_dir.join("run/runc"))
        .arg("exec");
    for env in env {
        runc.args(["--env", env]);
    }
    let mut child = runc
        .arg(container)
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runc exec");
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    let output = child.wait_with_output().expect("runc exec");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hint = if stderr.contains("setns into net namespace") {
        "\n(this runc cannot exec into a container whose user namespace joined a network \
         namespace made outside it, runc issue 4390: deploy the bench's functions with \
         \"network\": false, or install a runc with the fix of runc pull request 4492)"
    } else {
        ""
    };
    assert!(
        output.status.success(),
        "runc exec of {command:?} failed ({}): {stderr}{hint}",
        output.status,
    );
    (elapsed, output.stdout)
}
