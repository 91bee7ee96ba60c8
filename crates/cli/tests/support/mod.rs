//! Test support: a real `faasbox server` on a free port with its own data directory, the CLI
//! run as a process, and function images built from Debian's busybox-static.
#![allow(dead_code)]

pub mod browser;
pub mod cgroups;
pub mod cluster;
pub mod flows;
pub mod gate;
pub mod images;
pub mod lang_images;
pub mod marked;
pub mod metrics;
pub mod postgres;
pub mod proc_stat;
pub mod registry;
pub mod routes;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(unused_imports)]
pub use proc_stat::cpu_ticks;

pub const FAASBOX: &str = env!("CARGO_BIN_EXE_faasbox");

/// A test that cannot do what it says here: fails with `reason` when `CI` is set (a CI run
/// must not pass without it), else prints `SKIPPED: <reason>` (counted by `scripts/test.sh`).
/// The workspace's one skip policy, [`faasbox_test_registry::cannot_run`].
#[allow(unused_imports)]
pub use faasbox_test_registry::cannot_run;

/// Polls `condition` every 50 ms until it holds; fails with `what` if it does not within
/// `within`. The way to wait for an event instead of sleeping a fixed time.
pub async fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {within:?} for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`wait_until`] for a condition that has to be fetched (the server's state): polls every
/// 100 ms, returns the first value `done` accepts, fails with `what` and the last value.
pub async fn wait_for<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    within: Duration,
    what: &str,
    mut fetch: impl FnMut() -> F,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let value = fetch().await;
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "waited {within:?} for {what}, in vain; last seen: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// For "this must not happen": fetches the state every 100 ms for the whole `window` (and
/// once at its end) and fails as soon as `holds` is false. The window is the caller's stated
/// claim of how long is long enough.
pub async fn assert_stays<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    window: Duration,
    what: &str,
    mut fetch: impl FnMut() -> F,
    mut holds: impl FnMut(&T) -> bool,
) {
    let end = Instant::now() + window;
    loop {
        let done = Instant::now() >= end;
        let value = fetch().await;
        assert!(
            holds(&value),
            "{what} stopped holding within {window:?}: {value:?}"
        );
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The test function's images ([`images::TEST_FUNCTION`]), built once per test binary.
pub fn test_images() -> &'static images::TestImages {
    static IMAGES: std::sync::OnceLock<images::TestImages> = std::sync::OnceLock::new();
    IMAGES.get_or_init(|| images::shared(images::TEST_FUNCTION))
}

/// A server with namespace `demo` and the test function imported as `test/function:latest`.
pub async fn server_with_test_function() -> Server {
    server_with_test_function_and(&[]).await
}

/// [`server_with_test_function`] with extra `faasbox server` flags.
pub async fn server_with_test_function_and(args: &[&str]) -> Server {
    let server = Server::start_with(args).await;
    server.create_namespace("demo").await;
    let r = server
        .import(&test_images().oci_tar, "test/function:latest", &[])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server
}

/// Deploys `demo/<name>`: the test function in `mode` (its `MODE`), plus `extra`'s fields.
pub async fn deploy_mode(server: &Server, name: &str, mode: &str, extra: Value) {
    let mut spec = serde_json::json!({"image": "test/function:latest", "envs": {"MODE": mode}});
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    server.deploy("demo", name, spec).await;
}

/// A running server; stopped with SIGTERM (and waited for) on drop.
pub struct Server {
    pub url: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    /// A client that sends the server's admin token.
    pub http: reqwest::Client,
    /// The server's admin token (read from `<data-dir>/admin.token` once it is up).
    pub token: String,
}

pub use faasbox_test_registry::free_port;
#[allow(unused_imports)]
pub use faasbox_test_registry::OutsideAddress;

/// The `faasbox server` flag that lets functions reach services on the host's loopback (off by
/// default). A test whose function calls back to a server the test runs opts in with it.
pub const ALLOW_HOST_LOOPBACK: &str = "--allow-host-loopback";

impl Server {
    pub async fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("faasbox-test-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        let mut server = Server::start_in(&data_dir).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server with extra `faasbox server` flags.
    pub async fn start_with(args: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("faasbox-test-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        let mut server = Server::spawn(&data_dir, args, &[]).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server on an existing data directory (to test restarts).
    pub async fn start_in(data_dir: &Path) -> Server {
        Server::spawn(data_dir, &[], &[]).await
    }

    /// Starts a server on an existing data directory with extra `faasbox server` flags.
    pub async fn start_in_with(data_dir: &Path, args: &[&str]) -> Server {
        Server::spawn(data_dir, args, &[]).await
    }

    /// Starts a server on an existing data directory with extra flags and environment variables.
    pub async fn start_in_with_args_env(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Server::spawn(data_dir, args, env).await
    }

    /// Starts a server on an existing data directory with extra environment variables.
    pub async fn start_in_with_env(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::spawn(data_dir, &[], env).await
    }

    async fn spawn(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut server = Server::spawn_untokened(data_dir, extra, env).await;
        server.token = std::fs::read_to_string(data_dir.join("admin.token"))
            .expect("the server wrote its admin token")
            .trim()
            .to_string();
        server.http = client_with_token(Some(&server.token));
        server
    }

    /// Starts a server and waits until it is healthy, without its admin token (a server on a
    /// shared store finds the admin token made by another; see `support::cluster`).
    pub async fn spawn_untokened(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("server.log"))
            .expect("server log file");
        let mut command = Command::new(FAASBOX);
        command
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log",
                "info,faasbox=debug",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra);
        // FAASBOX_TEST_OCI_RUNTIME=crun runs the tests' servers with `--oci-runtime crun`
        // (unless a test sets the runtime itself).
        if let Ok(runtime) = std::env::var("FAASBOX_TEST_OCI_RUNTIME") {
            command.env("FAASBOX_OCI_RUNTIME", runtime);
        }
        let child = command
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting faasbox server");
        let server = Server {
            url,
            data_dir: data_dir.to_path_buf(),
            child: Some(child),
            _dir: None,
            http: client_with_token(None),
            token: String::new(),
        };
        server.wait_healthy().await;
        server
    }

    /// Sends `token` from now on (the CLI too).
    pub fn use_token(&mut self, token: &str) {
        self.token = token.to_string();
        self.http = client_with_token(Some(token));
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .http
                .get(format!("{}/api/v1/health", self.url))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become healthy; its log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Stops with SIGTERM and waits; returns the exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                if !status.success() {
                    // Shown only when the test fails: why the server did not exit cleanly.
                    eprintln!(
                        "the server exited with {status} on SIGTERM; its log:\n{}",
                        self.log()
                    );
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "the server did not exit within 30 s of SIGTERM; its log:\n{}",
            self.log()
        );
        false
    }

    /// Waits for the server to exit by itself (a test hook made it); its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server did not exit; its log:\n{}", self.log());
    }

    /// Opens the server's database directly (to inspect it while the server is down, or to
    /// put it in a state a crash would leave).
    pub fn open_store(&self) -> faasbox_store_sqlite::SqliteStore {
        faasbox_store_sqlite::SqliteStore::open(&self.data_dir.join("faasbox.db"))
            .expect("opening the store")
    }

    /// Kills with SIGKILL (no cleanup by the server).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends only the head of a `POST path` declaring a `length`-byte JSON body, and reads
    /// the answer the server gives without having read a byte of the body: its status and JSON.
    /// (A client that writes the body meanwhile may see the connection closed under it
    /// before it reads the answer.)
    pub async fn post_head_only(&self, path: &str, length: usize) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.url.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\nConnection: close\r\n\r\n",
            self.token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
            .await
            .expect("an answer")
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("an HTTP answer: {text}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, None)
    }

    /// The CLI with `args`, set to talk to this server with its admin token.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(FAASBOX);
        command
            .args(args)
            .env("FAASBOX_URL", &self.url)
            .env("FAASBOX_TOKEN", &self.token);
        command
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut child = self
            .cli_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running the faasbox CLI");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input)
                .expect("writing stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("waiting for the CLI")
    }

    /// Runs the CLI and asserts success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "faasbox {args:?} failed:\nstdout: {}\nstderr: {}\nserver log tail:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("JSON body")
    }

    pub async fn create_namespace(&self, name: &str) {
        let r = self
            .post_json("/api/v1/namespaces", &serde_json::json!({ "name": name }))
            .await;
        assert_eq!(r.status(), 201, "creating namespace {name}");
    }

    /// Imports an archive through the API into the server-wide images.
    pub async fn import(
        &self,
        archive: &Path,
        name: &str,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        self.import_as(&self.http, None, archive, name, query).await
    }

    /// Imports an archive with `http`'s token into namespace `ns`'s images (`None`: the
    /// server-wide ones).
    pub async fn import_as(
        &self,
        http: &reqwest::Client,
        ns: Option<&str>,
        archive: &Path,
        name: &str,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = std::fs::read(archive).expect("reading archive");
        let mut q: Vec<(&str, &str)> = vec![("name", name)];
        q.extend_from_slice(query);
        let path = match ns {
            Some(ns) => format!("/api/v1/namespaces/{ns}/images/import"),
            None => "/api/v1/images/import".to_string(),
        };
        http.post(self.url(&path))
            .query(&q)
            .body(body)
            .send()
            .await
            .expect("import")
    }

    /// Deploys a function through the API and asserts it was accepted.
    pub async fn deploy(&self, ns: &str, name: &str, spec: Value) {
        let r = self
            .put_json(&format!("/api/v1/namespaces/{ns}/functions/{name}"), &spec)
            .await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "deploying {ns}/{name}: {status} {text}"
        );
    }

    /// Invokes through the API: (status, invocation id, body).
    pub async fn invoke(
        &self,
        ns: &str,
        name: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, String, Vec<u8>) {
        self.call(
            &format!("/api/v1/namespaces/{ns}/functions/{name}/invoke"),
            body,
        )
        .await
    }

    /// POSTs a JSON body to a call route: (status, invocation id, body).
    pub async fn call(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String, Vec<u8>) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("invoke");
        let status = r.status().as_u16();
        let id = r
            .headers()
            .get("faasbox-invocation-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = r.bytes().await.expect("invoke body").to_vec();
        (status, id, bytes)
    }

    /// The raw bytes of the database file and its write-ahead log.
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.data_dir.join("faasbox.db")).unwrap_or_default();
        bytes.extend(std::fs::read(self.data_dir.join("faasbox.db-wal")).unwrap_or_default());
        bytes
    }

    /// Polls until `ns/function` has `calls` calls in flight (within a minute).
    pub async fn wait_busy_calls(&self, ns: &str, function: &str, calls: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let shown = self
                .get_json(&format!("/api/v1/namespaces/{ns}/functions/{function}"))
                .await;
            if shown["instances"]["busy_calls"] == calls {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{ns}/{function} never had {calls} calls in flight: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The lines of an invocation's logs.
    pub async fn log_lines(&self, id: &str) -> Vec<String> {
        let logs = self
            .get_json(&format!("/api/v1/invocations/{id}/logs"))
            .await;
        logs["logs"]
            .as_array()
            .expect("logs array")
            .iter()
            .map(|l| l["line"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        // A killed server leaves its mounts (its state directory's tmpfs, its instances' root
        // filesystems, logs and disks): gone before its temporary directory is removed, so
        // that repeated runs do not pile them up. Only for a data directory of its own: another
        // server may run on one it was given.
        if self._dir.is_some() {
            unmount_under(&self.data_dir);
        }
    }
}

/// Unmounts everything mounted at or under `dir`, deepest first (what a SIGKILLed server
/// left: it cleans up only when it starts again).
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = std::process::Command::new("umount")
            .args(["-l", point])
            .status();
    }
}

/// Sends a request with `http` (whatever its token) and returns its status and JSON body (Null
/// when not JSON).
pub async fn send(
    http: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The seed's registry command as written (URL and NAMESPACE filled in), with only an
/// `Authorization` header added, for `sh -c`.
pub fn seed_curl_command(url: &str, ns: &str, token: &str, data: &str, reg: &str) -> String {
    format!(
        r#"curl -X 'POST' \
  '{url}/api/functions/registries/namespaces/{ns}' \
  -H 'Authorization: Bearer {token}' \
  -H 'accept: application/json' \
  -H 'Content-Type: application/json' \
  -d '{{
  "data": "{data}",
  "reg": "{reg}"
}}'"#
    )
}

/// An HTTP client that sends `token` as a bearer token (none: no Authorization header).
/// No idle connections kept: a server that answers an oversized body early (413) closes the
/// connection, and a pooled client could send the next request into it.
pub fn client_with_token(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header value"),
        );
    }
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Parses a JSON body, with the raw text in the panic message when it is not JSON.
pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The OCI runtime state directories under a server's data directory, each with the runtime
/// command that lists it: `runc` for runc's (and gVisor's, whose state runc reads), `crun`
/// for crun's (a server with `--oci-runtime crun`) and this build's faasbox-oci for
/// libcontainer's (`--oci-runtime libcontainer`).
pub fn runc_roots(data_dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let run = data_dir.join("run");
    std::fs::read_dir(&run)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .filter_map(|p| {
                    let name = p.file_name()?.to_string_lossy().into_owned();
                    let command = if name == "crun" {
                        PathBuf::from("crun")
                    } else if name == "libcontainer" {
                        Path::new(FAASBOX).with_file_name("faasbox-oci")
                    } else if name.starts_with("run") {
                        PathBuf::from("runc")
                    } else {
                        return None;
                    };
                    Some((command, p))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `runc list` (or `crun list`) of every runtime state directory under `data_dir`: the
/// containers running now.
pub fn runc_containers(data_dir: &Path) -> Vec<Value> {
    let mut found = Vec::new();
    for (runtime, root) in runc_roots(data_dir) {
        let out = Command::new(&runtime)
            .arg("--root")
            .arg(&root)
            .args(["list", "--format", "json"])
            .output()
            .unwrap_or_else(|e| panic!("{} list: {e}", runtime.display()));
        if let Ok(Value::Array(list)) = serde_json::from_slice(&out.stdout) {
            found.extend(list);
        }
    }
    found
}

/// The function (`ns/name`) of every container the server under `data_dir` runs, from the
/// annotation of its bundle.
pub fn container_functions(data_dir: &Path) -> Vec<String> {
    let mut functions = Vec::new();
    for container in runc_containers(data_dir) {
        let bundle = PathBuf::from(container["bundle"].as_str().unwrap_or_default());
        let Ok(config) = std::fs::read(bundle.join("config.json")) else {
            continue; // stopped meanwhile
        };
        let config: Value = serde_json::from_slice(&config).unwrap_or(Value::Null);
        if let Some(function) = config["annotations"]["io.faasbox.function"].as_str() {
            functions.push(function.to_string());
        }
    }
    functions
}

/// Polls until the server under `data_dir` runs no container of `function`.
pub async fn wait_containers_gone(data_dir: &Path, function: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let running = container_functions(data_dir);
        if !running.iter().any(|f| f == function) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "containers of {function} still run: {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The host pid of the container process of `function` (`ns/name`) that the server under
/// `data_dir` runs, if one runs.
pub fn container_pid(data_dir: &Path, function: &str) -> Option<u32> {
    runc_containers(data_dir).into_iter().find_map(|container| {
        let bundle = PathBuf::from(container["bundle"].as_str()?);
        let config: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
        (config["annotations"]["io.faasbox.function"].as_str() == Some(function))
            .then(|| container["pid"].as_u64())
            .flatten()
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0)
    })
}

/// Polls until the server under `data_dir` runs a container of `function`; its host pid.
pub async fn wait_container_pid(data_dir: &Path, function: &str, within: Duration) -> u32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(pid) = container_pid(data_dir, function) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no container of {function} within {within:?}: {:?}",
            container_functions(data_dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `faasbox expr-worker` processes whose parent is `parent` (a server, or this test
/// process), zombies left out.
pub fn expr_workers(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some(fields) = proc_stat::fields(pid) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
            && fields[0] != "Z"
            && contains_bytes(&cmdline, b"expr-worker")
        {
            found.push(pid);
        }
    }
    found
}

/// Whether process `pid` runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    proc_stat::fields(pid).is_some_and(|fields| fields[0] != "Z")
}

/// base64 of a tar.gz of `files` (name, content): the `source` of a function from code.
pub fn code_source(files: &[(&str, &str)]) -> String {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("src");
    std::fs::create_dir_all(&tree).expect("mkdir");
    for (name, content) in files {
        std::fs::write(tree.join(name), content).expect("write");
    }
    let archive = dir.path().join("src.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&archive).expect("read"))
}
