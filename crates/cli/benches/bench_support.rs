//! What the benchmarks share: a `faasbox server` of their own, waiting for it, running a
//! program inside a function's container (`runc exec`, the floor), percentiles; and for the
//! performance benchmark (`perf.rs`): a keep-alive HTTP/1.1 client, joining an instance's
//! network namespace, `runc run` of a bundle, process memory (PSS, RSS).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `faasbox` binary of this build (its agent and faasbox-oci are looked for next to it).
pub const FAASBOX: &str = env!("CARGO_BIN_EXE_faasbox");

/// A server on a free port with a data directory of its own; stopped with SIGTERM on drop.
pub struct BenchServer {
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The server's data directory.
    pub data_dir: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl BenchServer {
    /// Starts the server (without waiting for it).
    #[allow(dead_code)] // perf starts its server with arguments
    pub fn start() -> BenchServer {
        BenchServer::start_with(&[])
    }

    /// Starts the server with further command-line arguments (e.g. `--quota-instances 200`),
    /// without waiting for it.
    pub fn start_with(extra: &[&str]) -> BenchServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // FAASBOX_BENCH_LOG: the server's log filter (e.g.
        // `warn,faasbox_driver_runc::start=debug` for each start's steps); default `warn`.
        let log = std::env::var("FAASBOX_BENCH_LOG").unwrap_or_else(|_| "warn".to_string());
        let child = Command::new(FAASBOX)
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log",
                &log,
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            .stdout(Stdio::null())
            // The first start prints the new admin token on stderr: kept out of the bench's
            // output (and CI logs) in a file, shown without that line when the server fails to
            // start or ends badly, and at its end when FAASBOX_BENCH_LOG is set.
            .stderr(
                std::fs::File::create(dir.path().join("server.stderr")).expect("server log file"),
            )
            .spawn()
            .expect("starting the server");
        BenchServer {
            url: format!("http://127.0.0.1:{port}"),
            data_dir,
            child,
            dir,
        }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server process's id.
    #[allow(dead_code)] // used by perf
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        panic!("the server did not start; its stderr:\n{}", self.stderr());
    }

    /// What the server wrote on stderr, without the line that shows its admin token.
    fn stderr(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("server.stderr")).unwrap_or_default();
        log.lines()
            .filter(|l| !l.contains("admin API token"))
            .collect::<Vec<_>>()
            .join("\n")
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
        let status = self.child.wait();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            eprintln!(
                "the bench server ended with {status:?}; its stderr:\n{}",
                self.stderr()
            );
        } else if std::env::var_os("FAASBOX_BENCH_LOG").is_some() {
            // Asked for: the server's log (e.g. each start's steps), once it has ended.
            eprintln!("the bench server's log:\n{}", self.stderr());
        }
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

/// A blocking HTTP/1.1 client on one keep-alive connection: the same client code for calls
/// through the API and direct calls to a function, so that both sides pay the same client cost.
#[allow(dead_code)] // used by perf
pub struct KeepAlive {
    reader: std::io::BufReader<std::net::TcpStream>,
    host: String,
}

#[allow(dead_code)] // used by perf
impl KeepAlive {
    /// Connects to `addr` (`host:port`).
    pub fn connect(addr: &str) -> std::io::Result<KeepAlive> {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(KeepAlive {
            reader: std::io::BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// POSTs `body` to `path` with `headers` (`Name: value` lines without their CRLF) and
    /// returns the status and the body of the answer (Content-Length or chunked).
    pub fn post(
        &mut self,
        path: &str,
        headers: &[String],
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        use std::io::{BufRead, Read, Write};
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for h in headers {
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.reader.get_mut().write_all(&bytes)?;

        let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
        let mut line = String::new();
        let mut status = 0u16;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut first = true;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(bad("connection closed before the answer's head ended"));
            }
            let l = line.trim_end();
            if first {
                status = l
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("bad status line"))?;
                first = false;
                continue;
            }
            if l.is_empty() {
                if status == 100 {
                    first = true;
                    continue;
                }
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding")
                    && value.trim().eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(
                    line.trim_end().split(';').next().unwrap_or("").trim(),
                    16,
                )
                .map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    // The trailer, up to its empty line.
                    loop {
                        line.clear();
                        self.reader.read_line(&mut line)?;
                        if line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = out.len();
                out.resize(start + size + 2, 0);
                self.reader.read_exact(&mut out[start..])?;
                out.truncate(start + size);
            }
        } else {
            out.resize(length.ok_or_else(|| bad("answer without a length"))?, 0);
            self.reader.read_exact(&mut out)?;
        }
        Ok((status, out))
    }
}

/// The pid of container `container`'s init (the agent) from `runc state`.
#[allow(dead_code)] // used by perf
pub fn container_pid(data_dir: &Path, container: &str) -> i32 {
    let out = Command::new("runc")
        .arg("--root")
        .arg(data_dir.join("run/runc"))
        .args(["state", container])
        .output()
        .expect("runc state");
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "runc state {container}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    state["pid"].as_i64().expect("runc state has a pid") as i32
}

/// Runs `work` on a thread that joined the network namespace of process `pid` (an instance's
/// agent), and returns what it returned. Sockets `work` holds were opened before the join and
/// stay in the namespace they were opened in.
#[allow(dead_code)] // used by perf
pub fn in_netns_of<T: Send + 'static>(pid: i32, work: impl FnOnce() -> T + Send + 'static) -> T {
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("the instance's netns");
    std::thread::spawn(move || {
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        work()
    })
    .join()
    .expect("thread in the instance's netns")
}

/// Runs `work(state)` for each of `states` on a thread of its own that joined the network
/// namespace of process `pid`; returns their results in order. Sockets in a state were opened
/// before the join and stay in the namespace they were opened in.
#[allow(dead_code)] // used by perf
pub fn in_netns_threads<S: Send + 'static, T: Send + 'static>(
    pid: i32,
    states: Vec<S>,
    work: impl Fn(S) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let work = std::sync::Arc::new(work);
    let handles: Vec<_> = states
        .into_iter()
        .map(|state| {
            let netns =
                std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("the instance's netns");
            let work = work.clone();
            std::thread::spawn(move || {
                nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                work(state)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread in the instance's netns"))
        .collect()
}

/// A bundle with `runc spec`'s defaults around an unpacked root filesystem, for timing
/// `runc run` (create, start, the process's exit, delete) of it.
#[allow(dead_code)] // used by perf and invoke
pub struct RuncFloor {
    dir: tempfile::TempDir,
    runs: usize,
}

#[allow(dead_code)] // used by perf and invoke
impl RuncFloor {
    /// Unpacks `rootfs_tar` into a bundle whose process runs `args`.
    pub fn new(rootfs_tar: &Path, args: &[&str]) -> RuncFloor {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(bundle.join("rootfs")).expect("rootfs");
        let status = Command::new("tar")
            .arg("-C")
            .arg(bundle.join("rootfs"))
            .arg("-xf")
            .arg(rootfs_tar)
            .status()
            .expect("tar");
        assert!(status.success(), "unpacking the root filesystem");
        let status = Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .expect("runc spec");
        assert!(status.success(), "runc spec");
        let config_path = bundle.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).expect("config")).expect("json");
        config["process"]["terminal"] = serde_json::json!(false);
        config["process"]["args"] = serde_json::json!(args);
        std::fs::write(&config_path, serde_json::to_vec(&config).expect("json"))
            .expect("write config");
        RuncFloor { dir, runs: 0 }
    }

    /// One `runc run` of the bundle; how long it took. Panics when the process fails.
    pub fn run_once(&mut self) -> Duration {
        self.runs += 1;
        let started = std::time::Instant::now();
        let status = Command::new("runc")
            .arg("--root")
            .arg(self.dir.path().join("runc-root"))
            .args(["run", "--bundle"])
            .arg(self.dir.path().join("bundle"))
            .arg(format!("bench-floor-{}-{}", std::process::id(), self.runs))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("runc run");
        let elapsed = started.elapsed();
        assert!(status.success(), "runc run failed");
        elapsed
    }
}

/// A field of `/proc/PID/smaps_rollup` (`Pss`, `Rss`, …) in KiB; `None` when the process is
/// gone or the field is missing.
#[allow(dead_code)] // used by perf
pub fn smaps_kib(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The children of process `pid` (from `/proc/PID/task/*/children`).
#[allow(dead_code)] // used by perf
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    out
}

/// Deploys the flow `bench/<path>` from `yaml`; panics when the deploy fails.
#[allow(dead_code)] // used by perf and flows
pub async fn put_flow(http: &reqwest::Client, url: &str, path: &str, yaml: &str) {
    let r = http
        .put(format!("{url}/api/v1/namespaces/bench/flows/{path}"))
        .body(yaml.to_string())
        .send()
        .await
        .expect("put flow");
    assert!(
        r.status().is_success(),
        "deploying {path}: {}",
        r.text().await.unwrap_or_default()
    );
}

/// Runs the flow `bench/<path>` with `run?wait=true` and returns its answer; panics when it
/// fails.
#[allow(dead_code)] // used by perf
pub async fn run_flow(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    input: &str,
) -> serde_json::Value {
    let r = http
        .post(format!(
            "{url}/api/v1/namespaces/bench/flows/{path}/run?wait=true"
        ))
        .body(input.to_string())
        .send()
        .await
        .expect("run");
    let status = r.status();
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(status.is_success(), "{path} failed: {status} {body}");
    body
}

/// Whether `name` is a file in one of `PATH`'s directories.
#[allow(dead_code)] // used by perf
pub fn command_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}
