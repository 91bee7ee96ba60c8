//! Test harness: runs the real agent binary outside a container, with a busybox httpd CGI
//! script as the function, on free ports, and talks to it over its Unix socket.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use faasbox_proto::{CancelReport, InvokeOutcome, InvokeStatus, LogLine, LogStream, ReadyReport};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::UnixStream;

pub const DEADLINE: &str = "2030-01-01T00:00:00Z";

/// A deadline `after` from now, as the platform writes it (RFC 3339).
pub fn deadline_in(after: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + after;
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("format deadline")
}

/// The CGI function: what it does depends on the prefix of the action id.
const CGI: &str = r#"#!/bin/busybox sh
bb=/bin/busybox
aid="$HTTP_DIREKTIV_ACTIONID"
state="@STATE@"
if [ "$REQUEST_METHOD" = "DELETE" ]; then
  echo "$aid" >> "$state/deleted"
  printf 'Content-Type: text/plain\r\n\r\n'
  exit 0
fi
case "$aid" in
  echo-*) printf 'Content-Type: application/json\r\n\r\n'; exec $bb cat ;;
  error-*) printf 'Direktiv-ErrorCode: app.bad\r\nDirektiv-ErrorMessage: it broke\r\n\r\n{"ignored":true}' ;;
  crash-*) printf 'Direktiv-ErrorMessage: only a message\r\n\r\n{}' ;;
  fail-*) printf 'Status: 500 Internal Server Error\r\n\r\nboom' ;;
  text-*) printf 'Content-Type: text/plain\r\n\r\nhello, world' ;;
  env-*)
    if echo probe > "$HTTP_DIREKTIV_TEMPDIR/probe"; then w=true; else w=false; fi
    printf 'Content-Type: application/json\r\n\r\n{"tempdir":"%s","deadline":"%s","content_type":"%s","writable":%s}' \
      "$HTTP_DIREKTIV_TEMPDIR" "$HTTP_DIREKTIV_DEADLINE" "$CONTENT_TYPE" "$w" ;;
  log-*)
    echo "stderr of $aid" >&2
    $bb wget -q -O /dev/null "http://127.0.0.1:@LOGPORT@/log?aid=$aid&log=get+line+of+$aid%21"
    $bb wget -q -O /dev/null --post-data "post line of $aid
second post line of $aid" "http://127.0.0.1:@LOGPORT@/log?aid=$aid"
    $bb sleep 0.3
    echo "late stderr of $aid" >&2
    printf 'Content-Type: application/json\r\n\r\n{"aid":"%s"}' "$aid" ;;
  stray-*)
    $bb wget -q -O /dev/null "http://127.0.0.1:@LOGPORT@/log?aid=nobody&log=stray+line"
    printf 'Content-Type: application/json\r\n\r\n{}' ;;
  slow-*)
    echo "$aid" >> "$state/started"
    echo "slow call waiting" >&2
    i=0
    while [ $i -lt 100 ]; do
      $bb grep -q "$aid" "$state/deleted" 2>/dev/null && break
      $bb sleep 0.1
      i=$((i+1))
    done
    echo "$aid" >> "$state/finished"
    printf 'Content-Type: application/json\r\n\r\n"too late"' ;;
  die-*)
    echo "dying" >&2
    main=$($bb cut -d' ' -f4 /proc/$PPID/stat)
    kill -9 "$main" "$PPID" ;;
  *) printf 'Status: 404 Not Found\r\n\r\nunknown mode' ;;
esac
"#;

/// A free TCP port on 127.0.0.1 (free when asked; the agent binds it soon after).
///
/// Picked at random below the kernel's ephemeral range (32768 and up here), so neither the
/// outgoing connections of parallel tests nor other `bind(0)` users take it in between.
pub fn free_port() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let seed = u64::from(std::process::id()) * 1_000_003 + nanos;
    for _ in 0..10_000 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((seed + n * 7_919) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A running agent and its files.
pub struct TestAgent {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub state: PathBuf,
    pub temp_root: PathBuf,
    pub log_port: u16,
    pub function_port: u16,
    child: Option<Child>,
}

pub struct Options {
    pub contract: &'static str,
    /// `None`: busybox httpd serving the CGI (printing "booting mark=…" first).
    pub command: Option<Vec<String>>,
    pub ready_timeout_ms: u64,
    pub user: Option<serde_json::Value>,
    pub workdir: Option<String>,
    /// More config keys (`function`, `file`, `openwhisk`, …), merged in last.
    pub config: serde_json::Value,
    /// More arguments after `serve --config PATH`.
    pub args: Vec<String>,
    /// Environment variables of the agent (and so of the function).
    pub env: Vec<(String, String)>,
    /// Send the agent's stdout and stderr to `agent.stdout` and `agent.stderr` in its directory.
    pub capture_stdio: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            contract: "http",
            command: None,
            ready_timeout_ms: 10_000,
            user: None,
            workdir: None,
            config: json!({}),
            args: Vec::new(),
            env: Vec::new(),
            capture_stdio: false,
        }
    }
}

impl TestAgent {
    pub async fn start() -> TestAgent {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let log_port = free_port();
        let function_port = free_port();
        let state = dir.path().join("state");
        let www = dir.path().join("www");
        let control = dir.path().join("control");
        let temp_root = dir.path().join("calls");
        for d in [&state, &www.join("cgi-bin"), &control] {
            fs::create_dir_all(d).unwrap();
        }
        let cgi_path = www.join("cgi-bin/index.cgi");
        let cgi = CGI
            .replace("@STATE@", &state.display().to_string())
            .replace("@LOGPORT@", &log_port.to_string());
        fs::write(&cgi_path, cgi).unwrap();
        fs::set_permissions(&cgi_path, fs::Permissions::from_mode(0o755)).unwrap();

        let command = options.command.unwrap_or_else(|| {
            let script = format!(
                "echo booting mark=$FAASBOX_TEST_MARK; exec /bin/busybox httpd -f -p 127.0.0.1:{function_port} -h {}",
                www.display()
            );
            vec!["/bin/busybox".into(), "sh".into(), "-c".into(), script]
        });
        let mut config = json!({
            "contract": options.contract,
            "command": command,
            "ready_timeout_ms": options.ready_timeout_ms,
            "function_port": function_port,
            "log_port": log_port,
            "temp_root": temp_root,
        });
        if let Some(user) = options.user {
            config["user"] = user;
        }
        if let Some(workdir) = options.workdir {
            config["workdir"] = json!(workdir);
        }
        if let serde_json::Value::Object(extra) = options.config {
            for (key, value) in extra {
                config[key] = value;
            }
        }
        let config_path = control.join("agent.json");
        fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

        // Started through a shell that first lowers its OOM score, as the platform does, so the
        // function's score reset is observable.
        let agent = env!("CARGO_BIN_EXE_faasbox-agent");
        let mut command = Command::new("/bin/busybox");
        command
            .args([
                "sh",
                "-c",
                "echo -500 > /proc/self/oom_score_adj 2>/dev/null; exec \"$0\" serve --config \"$@\"",
            ])
            .arg(agent)
            .arg(&config_path)
            .arg("--socket")
            .arg(control.join("agent.sock"))
            .args(&options.args)
            .env("FAASBOX_TEST_MARK", "xyz")
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if options.capture_stdio {
            let file = |name: &str| fs::File::create(dir.path().join(name)).expect("stdio file");
            command
                .stdout(file("agent.stdout"))
                .stderr(file("agent.stderr"));
        }
        let child = command.spawn().expect("start agent");
        let socket = control.join("agent.sock");
        let agent = TestAgent {
            dir,
            socket,
            state,
            temp_root,
            log_port,
            function_port,
            child: Some(child),
        };
        agent.wait_for_socket().await;
        agent
    }

    async fn wait_for_socket(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if UnixStream::connect(&self.socket).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("agent socket {} never appeared", self.socket.display());
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// One request over the socket.
    pub async fn request(&self, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
        let stream = UnixStream::connect(&self.socket).await.expect("connect");
        exchange(stream, request).await
    }

    pub async fn ready(&self) -> (StatusCode, ReadyReport) {
        let request = Request::get("http://agent/v1/ready")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, body) = self.request(request).await;
        let report = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("ready report {e}: {}", String::from_utf8_lossy(&body)));
        (status, report)
    }

    pub async fn invoke(&self, aid: &str, input: impl Into<Bytes>) -> InvokeOutcome {
        self.invoke_until(aid, DEADLINE, input).await
    }

    /// An invoke with its own deadline (RFC 3339).
    pub async fn invoke_until(
        &self,
        aid: &str,
        deadline: &str,
        input: impl Into<Bytes>,
    ) -> InvokeOutcome {
        let request = Request::post("http://agent/v1/invoke")
            .header("faasbox-action-id", aid)
            .header("faasbox-deadline", deadline)
            .body(Full::new(input.into()))
            .unwrap();
        let (status, body) = self.request(request).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "invoke {aid}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("outcome {e}: {}", String::from_utf8_lossy(&body)))
    }

    pub async fn cancel(&self, aid: &str) -> CancelReport {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://agent/v1/cancel?aid={aid}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, body) = self.request(request).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).unwrap()
    }

    /// One request to the agent's TCP listener at `port` on 127.0.0.1 (the socket stays the
    /// agent's own; see `tcp_endpoint.rs`).
    pub async fn request_tcp(
        &self,
        port: u16,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, Bytes) {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect TCP");
        exchange(stream, request).await
    }

    /// `POST path` with a body (OpenWhisk's `/init` and `/run`).
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> (StatusCode, String) {
        let request = Request::post(format!("http://agent{path}"))
            .body(Full::new(body.into()))
            .unwrap();
        let (status, body) = self.request(request).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// What the agent wrote to its stdout or stderr so far (with `capture_stdio`).
    pub fn stdio(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(format!("agent.{name}"))).unwrap_or_default()
    }

    /// Lines of a state file the CGI writes.
    pub fn state_lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.state.join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Sends SIGTERM and waits (bounded) for the agent to exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An agent speaking the cmd contract (no function process), checked ready.
pub async fn cmd_agent(options: Options) -> TestAgent {
    let agent = TestAgent::start_with(Options {
        contract: "cmd",
        command: Some(vec![]),
        ..options
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    agent
}

/// The output of a call that must have succeeded.
pub fn ok_output(outcome: &InvokeOutcome) -> serde_json::Value {
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    serde_json::from_str(outcome.output.as_ref().expect("output").get()).expect("output JSON")
}

/// The texts of the lines of one stream.
pub fn lines_of(logs: &[LogLine], stream: LogStream) -> Vec<&str> {
    logs.iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.as_str())
        .collect()
}

pub fn assert_path_gone(path: &Path) {
    assert!(!path.exists(), "{} still exists", path.display());
}

/// One HTTP/1 request over `stream` (the agent's socket or its TCP listener): status and body.
async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> (StatusCode, Bytes)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("send");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}
