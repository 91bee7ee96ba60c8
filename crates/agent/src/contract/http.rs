//! The Direktiv HTTP contract: the function is a server on `127.0.0.1:<function_port>`.
//!
//! Ready means the port accepts connections. A call is `POST /` with the input as body and the
//! headers `Direktiv-ActionID`, `Direktiv-TempDir` (the call's directory, holding its files),
//! `Direktiv-Deadline` and `Content-Type: application/json` (and, for a call through an HTTP
//! route, the caller's headers and `Faasbox-Http-Method`, `-Path`, `-Query`: see
//! [`add_forwarded`]); the answer is mapped by [`map_answer`]. A cancel is
//! `DELETE /` with the call's `Direktiv-ActionID`. The function logs through the log endpoint
//! this contract serves on `127.0.0.1:<log_port>`.
//!
//! Connections to the function are kept alive and reused (see [`Kept`]): a call takes an idle
//! one or opens one, and gives it back once the function's whole answer is read, if the
//! function keeps it open. A call that ends before its answer (cancelled, past its deadline)
//! closes its connection, as before.
//!
//! The agent owns the call's deadline, as for every contract: a call still unanswered then gets
//! its `DELETE` (while its connection is still open), the connection is closed, and the call
//! ends as a timeout ([`CallResult::timeout`]).

use std::error::Error as StdError;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::deadline::Deadline;
use super::disk::Disk;
use super::temp_dir::{CallDir, CallRoot};
use super::{output_json, Call, CallResult, Shared, CANCELLED};
use crate::calls::Cancelled;
use crate::lines::{char_boundary_before, lossy};
use crate::process::{FunctionProcess, SpawnSpec};
use crate::{log_endpoint, tcp_bridge};
use faasbox_proto::{
    forwardable_header, HttpForward, ProcessUser, CODE_CONTAINER_FAILED, HEADER_HTTP_METHOD,
    HEADER_HTTP_PATH, HEADER_HTTP_QUERY,
};

/// The largest answer body the agent takes from the function.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;
/// How much of a failed answer's body goes into the error message.
const ERROR_BODY_BYTES: usize = 1024;
/// How long a cancel waits for the function to take its `DELETE`.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);
/// After a broken connection, how long to wait for the process to die (for a better message)
/// when it still looks alive...
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// ... and for the reaper's report when it is already dead.
const EXIT_REPORT_WAIT: Duration = Duration::from_secs(10);

const DIREKTIV_ACTION_ID: &str = "Direktiv-ActionID";
const DIREKTIV_TEMP_DIR: &str = "Direktiv-TempDir";
const DIREKTIV_DEADLINE: &str = "Direktiv-Deadline";
const DIREKTIV_ERROR_CODE: &str = "direktiv-errorcode";
const DIREKTIV_ERROR_MESSAGE: &str = "direktiv-errormessage";

/// How many idle connections to the function are kept at most: more than an instance takes
/// calls at once (32 in the benchmarks), since one closed for want of room means a new
/// connection (a new thread, in a thread-per-connection server) for a later call.
const MAX_KEPT: usize = 64;
/// A connection idle longer than this is not reused: a function server may close an idle
/// connection after a short while (gunicorn after 2 s, Node and uvicorn after 5 s), and a
/// request written just as it does would be lost.
const MAX_KEPT_IDLE: Duration = Duration::from_secs(1);
/// How long a connection whose answer was read may take to be ready for the next request.
const READY_AGAIN: Duration = Duration::from_millis(100);

/// The http contract of one instance.
#[derive(Debug)]
pub struct HttpContract {
    process: FunctionProcess,
    addr: SocketAddr,
    temp_root: CallRoot,
    /// Who the function runs as: the call's files are theirs.
    user: Option<ProcessUser>,
    ready_timeout: Duration,
    ready_deadline: Instant,
    ready: OnceCell<Result<(), String>>,
    /// Under runsc: TCP through blocking threads (see [`crate::tcp_bridge`]).
    blocking_tcp: bool,
    /// The instance's disk (the temp dirs are on it).
    disk: Disk,
    /// Idle kept-alive connections to the function.
    kept: Arc<Kept>,
}

impl HttpContract {
    /// Serves the log endpoint, then starts the function process.
    pub async fn start(shared: Shared) -> io::Result<HttpContract> {
        let config = &shared.config;
        let listener = log_endpoint::bind(config.log_port).await?;
        if config.blocking_tcp {
            log_endpoint::serve_blocking(listener, shared.logs.clone())?;
        } else {
            tokio::spawn(log_endpoint::serve(listener, shared.logs.clone()));
        }

        let process = FunctionProcess::spawn(
            SpawnSpec {
                command: &config.command,
                workdir: &config.workdir,
                user: config.user.as_ref(),
            },
            &shared.reaper,
            shared.logs.clone(),
        );
        let ready_timeout = Duration::from_millis(config.ready_timeout_ms);
        let ready_deadline = shared
            .started
            .checked_add(ready_timeout)
            .unwrap_or_else(|| shared.started + Duration::from_secs(365 * 24 * 3600));
        let temp_root = CallRoot::new(&config.temp_root);
        Ok(HttpContract {
            process,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, config.function_port)),
            temp_root: temp_root.clone(),
            user: config.user.clone(),
            ready_timeout,
            ready_deadline,
            ready: OnceCell::new(),
            blocking_tcp: config.blocking_tcp,
            disk: Disk::new(&temp_root, config.disk_limit_bytes),
            kept: Arc::default(),
        })
    }

    pub fn process(&self) -> &FunctionProcess {
        &self.process
    }

    /// Waits (once, shared by all callers) until the function accepts connections.
    pub async fn ready(&self) -> Result<(), String> {
        if let Some(exit) = self.process.exited() {
            return Err(exit.description.clone());
        }
        self.ready
            .get_or_init(|| self.wait_until_listening())
            .await
            .clone()?;
        match self.process.exited() {
            Some(exit) => Err(exit.description.clone()),
            None => Ok(()),
        }
    }

    async fn wait_until_listening(&self) -> Result<(), String> {
        let addr = self.addr;
        let probe = async {
            let mut delay = Duration::from_millis(5);
            let mut attempts = 0u32;
            loop {
                if accepts(addr, Duration::from_secs(1), self.blocking_tcp).await {
                    return;
                }
                tokio::time::sleep(delay).await;
                attempts += 1;
                // 5 ms for the first ~100 ms, then back off to 50 ms.
                if attempts >= 20 {
                    delay = (delay * 2).min(Duration::from_millis(50));
                }
            }
        };
        let deadline = tokio::time::Instant::from_std(self.ready_deadline);
        tokio::select! {
            () = probe => Ok(()),
            exit = self.process.wait_exit() => Err(exit.description.clone()),
            () = tokio::time::sleep_until(deadline) => {
                // One last try, for a first ready request that comes after the deadline.
                match accepts(addr, Duration::from_millis(100), self.blocking_tcp).await {
                    true => Ok(()),
                    false => Err(format!(
                        "the function did not accept connections on {addr} within {} ms",
                        self.ready_timeout.as_millis()
                    )),
                }
            }
        }
    }

    /// Forwards one call to the function and maps its answer.
    pub async fn invoke(&self, call: &Call, mut cancelled: Cancelled) -> CallResult {
        let deadline = Deadline::parse(&call.deadline).instant();
        tokio::select! {
            // A ready function is never reported as "not ready" for a deadline that has passed.
            biased;
            ready = self.ready() => if let Err(reason) = ready {
                return CallResult::crash(reason);
            },
            () = cancelled.aborted() => return CallResult::crash(CANCELLED),
            () = tokio::time::sleep_until(deadline) => {
                return CallResult::timeout(format!(
                    "the function was not ready yet at the call's deadline ({})",
                    call.deadline
                ));
            }
        }
        let dir =
            match CallDir::prepare(&self.temp_root, &call.aid, &call.files, self.user.as_ref())
                .await
            {
                Ok(dir) => dir,
                Err(failed) => return self.disk.verdict(failed),
            };
        let result = {
            let forward = self.forward(call, dir.path());
            tokio::pin!(forward);
            tokio::select! {
                answer = &mut forward => match answer {
                    Ok(answer) => map_answer(
                        answer.status,
                        answer.error_code.as_deref(),
                        answer.error_message.as_deref(),
                        &answer.body,
                    ),
                    Err(err) => CallResult::crash(self.explain(err).await),
                },
                exit = self.process.wait_exit() => {
                    CallResult::crash(format!("call aborted: {}", exit.description))
                }
                // Dropping the exchange closes the connection to the function.
                () = cancelled.aborted() => CallResult::crash(CANCELLED),
                () = tokio::time::sleep_until(deadline) => {
                    // The exchange is still open while the function gets its DELETE.
                    self.cancel(&call.aid).await;
                    CallResult::timeout(format!(
                        "the function had not answered at the call's deadline ({}); it got its DELETE",
                        call.deadline
                    ))
                }
            }
        };
        // Before the temp dir goes: what filled the disk may be in it.
        let result = self.disk.verdict(result);
        dir.remove().await;
        result
    }

    async fn forward(&self, call: &Call, temp_dir: &Path) -> Result<Answer, ForwardError> {
        use std::os::unix::ffi::OsStrExt as _;
        let temp_dir = HeaderValue::from_bytes(temp_dir.as_os_str().as_bytes())
            .map_err(|e| ForwardError::Request(format!("temp dir path: {e}")))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header(HOST, self.addr.to_string())
            .header(DIREKTIV_ACTION_ID, &call.aid)
            .header(DIREKTIV_TEMP_DIR, temp_dir)
            .header(DIREKTIV_DEADLINE, &call.deadline)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(call.input.clone()))
            .map_err(|e| ForwardError::Request(e.to_string()))?;
        if let Some(http) = &call.http {
            add_forwarded(request.headers_mut(), http);
        }
        self.exchange(request, MAX_OUTPUT_BYTES).await
    }

    /// One request to the function on a kept connection (or a fresh one), its whole answer
    /// read; the connection is kept for the next call if the function keeps it open.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<Answer, ForwardError> {
        let mut request = Some(request);
        loop {
            let (mut connection, kept) = match self.kept.take() {
                Some(connection) => (connection, true),
                None => (Connection::open(self.addr, self.blocking_tcp).await?, false),
            };
            let Some(sending) = request.take() else {
                return Err(ForwardError::Request("the request was lost".into()));
            };
            match connection.sender.try_send_request(sending).await {
                Ok(response) => {
                    let answer = read_answer(response, limit).await?;
                    if answer.reusable
                        && matches!(
                            tokio::time::timeout(READY_AGAIN, connection.sender.ready()).await,
                            Ok(Ok(()))
                        )
                    {
                        Kept::put(&self.kept, connection);
                    }
                    return Ok(answer);
                }
                Err(mut refused) => match refused.take_message() {
                    // The kept connection was closed before the request went out: again, on
                    // another connection.
                    Some(unsent) if kept => request = Some(unsent),
                    _ => return Err(ForwardError::Exchange(error_chain(&refused.into_error()))),
                },
            }
        }
    }

    /// Explains a failed exchange, preferring "the process died" when that is what happened.
    async fn explain(&self, err: ForwardError) -> String {
        let wait = if self.process.is_dead_now() {
            EXIT_REPORT_WAIT
        } else {
            EXIT_GRACE
        };
        match tokio::time::timeout(wait, self.process.wait_exit()).await {
            Ok(exit) => format!("call aborted: {}", exit.description),
            Err(_) => err.to_string(),
        }
    }

    /// Sends the function `DELETE /` for call `aid` (best effort, bounded in time).
    pub async fn cancel(&self, aid: &str) {
        if self.process.exited().is_some() {
            return;
        }
        let request = Request::builder()
            .method(Method::DELETE)
            .uri("/")
            .header(HOST, self.addr.to_string())
            .header(DIREKTIV_ACTION_ID, aid)
            .body(Full::new(Bytes::new()));
        let Ok(request) = request else { return };
        let _ = tokio::time::timeout(CANCEL_TIMEOUT, self.exchange(request, 64 * 1024)).await;
    }
}

/// Adds the HTTP request behind a call (a call through a route) to the function's `POST /`:
/// the caller's headers that are [`forwardable_header`]s (never the `Direktiv-*` and
/// `Faasbox-*` ones this request carries itself), then `Faasbox-Http-Method`, `-Path` and
/// `-Query`. A header the HTTP library cannot carry is left out.
fn add_forwarded(headers: &mut HeaderMap, http: &HttpForward) {
    for (name, value) in &http.headers {
        if !forwardable_header(name) {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    for (name, value) in [
        (HEADER_HTTP_METHOD, &http.method),
        (HEADER_HTTP_PATH, &http.path),
        (HEADER_HTTP_QUERY, &http.query),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
}

/// What the function answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    error_code: Option<String>,
    error_message: Option<String>,
    body: Bytes,
    /// Whether the function keeps the connection open for another request.
    reusable: bool,
}

#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("cannot build the request to the function: {0}")]
    Request(String),
    #[error("cannot connect to the function on {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("the function did not answer the call: {0}")]
    Exchange(String),
    #[error("reading the function's answer failed: {0}")]
    Body(String),
    #[error("the function's answer is larger than {MAX_OUTPUT_BYTES} bytes")]
    TooLarge,
}

/// Aborts the task (the client connection) when the call is done or dropped (cancelled).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection to the function: its sender, and its task (aborted, closing the
/// connection, when the connection is dropped: a call that ends before its answer).
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    _task: AbortOnDrop,
}

impl Connection {
    /// Opens a connection to the function at `addr`.
    async fn open(addr: SocketAddr, blocking_tcp: bool) -> Result<Connection, ForwardError> {
        if blocking_tcp {
            let pipe = tcp_bridge::connect(addr)
                .await
                .map_err(|source| ForwardError::Connect { addr, source })?;
            Connection::over(pipe).await
        } else {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|source| ForwardError::Connect { addr, source })?;
            let _ = stream.set_nodelay(true);
            Connection::over(stream).await
        }
    }

    async fn over<IO>(io: IO) -> Result<Connection, ForwardError>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            // Canonical header case, as Direktiv's Go client sends them.
            .title_case_headers(true)
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ForwardError::Exchange(error_chain(&e)))?;
        let task = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        Ok(Connection {
            sender,
            _task: task,
        })
    }
}

/// Idle connections to the function, most recently used last. Those idle longer than
/// [`MAX_KEPT_IDLE`] are closed by a sweeping task while any are kept, not only at the next
/// call: an idle instance then holds no connection buffers (on either side), and its agent
/// can return their memory (see [`crate::idle`]).
#[derive(Default)]
struct Kept(std::sync::Mutex<KeptList>);

#[derive(Default)]
struct KeptList {
    connections: Vec<(Connection, Instant)>,
    /// Whether the sweeping task runs (it ends once nothing is kept).
    sweeping: bool,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").finish_non_exhaustive()
    }
}

impl Kept {
    /// The most recently used idle connection that is still open and fresh enough.
    fn take(&self) -> Option<Connection> {
        let mut kept = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        while let Some((connection, since)) = kept.connections.pop() {
            if !connection.sender.is_closed() && since.elapsed() < MAX_KEPT_IDLE {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next call (closes it when enough are kept), and starts the
    /// sweeping task if it does not run.
    fn put(this: &Arc<Kept>, connection: Connection) {
        let mut kept = this.0.lock().unwrap_or_else(|poison| poison.into_inner());
        // The oldest ones are stale first.
        kept.connections
            .retain(|(_, since)| since.elapsed() < MAX_KEPT_IDLE);
        if kept.connections.len() < MAX_KEPT {
            kept.connections.push((connection, Instant::now()));
        }
        if !kept.sweeping {
            kept.sweeping = true;
            tokio::spawn(Kept::sweep(Arc::clone(this)));
        }
    }

    /// Closes each kept connection once it has been idle for [`MAX_KEPT_IDLE`], waking when
    /// the oldest one is due, until none are kept.
    async fn sweep(this: Arc<Kept>) {
        let mut due = Instant::now() + MAX_KEPT_IDLE;
        loop {
            tokio::time::sleep_until(due.into()).await;
            let (stale, sweeping) = {
                let mut kept = this.0.lock().unwrap_or_else(|poison| poison.into_inner());
                let now = Instant::now();
                // Oldest first: the stale ones are a prefix.
                let fresh_from = kept
                    .connections
                    .iter()
                    .position(|(_, since)| now.duration_since(*since) < MAX_KEPT_IDLE)
                    .unwrap_or(kept.connections.len());
                let stale: Vec<_> = kept.connections.drain(..fresh_from).collect();
                if let Some((_, since)) = kept.connections.first() {
                    due = *since + MAX_KEPT_IDLE;
                }
                kept.sweeping = !kept.connections.is_empty();
                (stale, kept.sweeping)
            };
            // Closed outside the lock.
            drop(stale);
            if !sweeping {
                return;
            }
        }
    }
}

/// True when something accepts TCP connections on `addr` within `timeout`.
async fn accepts(addr: SocketAddr, timeout: Duration, blocking_tcp: bool) -> bool {
    if blocking_tcp {
        tcp_bridge::accepts(addr, timeout).await
    } else {
        matches!(
            tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
            Ok(Ok(_))
        )
    }
}

/// Reads the function's whole answer (at most `limit` bytes of body).
async fn read_answer(
    response: hyper::Response<hyper::body::Incoming>,
    limit: usize,
) -> Result<Answer, ForwardError> {
    let (parts, body) = response.into_parts();
    let body = crate::http_util::read_whole(body, &parts.headers, limit)
        .await
        .map_err(|e| match e {
            crate::http_util::ReadError::TooLarge => ForwardError::TooLarge,
            crate::http_util::ReadError::Broken(e) => ForwardError::Body(error_chain(&e)),
        })?;
    let reusable = parts.version == hyper::Version::HTTP_11
        && !parts
            .headers
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    Ok(Answer {
        status: parts.status,
        error_code: header_text(&parts.headers, DIREKTIV_ERROR_CODE),
        error_message: header_text(&parts.headers, DIREKTIV_ERROR_MESSAGE),
        body,
        reusable,
    })
}

/// A header's value as text; absent or blank is `None`.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    let text = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// An error and its sources, "a: b: c".
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Maps the function's answer to a call result:
///
/// - `Direktiv-ErrorCode` (non-blank): a catchable error with that code and
///   `Direktiv-ErrorMessage` (or "") as message, whatever the status and body;
/// - only `Direktiv-ErrorMessage`: a crash with that message;
/// - any other non-2xx: the catchable [`CODE_CONTAINER_FAILED`], the message quoting the start
///   of the body;
/// - 2xx: success, the output made by [`output_json`].
pub fn map_answer(
    status: StatusCode,
    error_code: Option<&str>,
    error_message: Option<&str>,
    body: &[u8],
) -> CallResult {
    if let Some(code) = error_code {
        return CallResult::error(code, error_message.unwrap_or(""));
    }
    if let Some(message) = error_message {
        return CallResult::crash(message);
    }
    if !status.is_success() {
        let quoted = &body[..char_boundary_before(body, ERROR_BODY_BYTES)];
        let quoted = lossy(quoted.to_vec());
        let quoted = quoted.trim();
        let message = if quoted.is_empty() {
            format!("function answered HTTP {}", status.as_u16())
        } else {
            format!("function answered HTTP {}: {quoted}", status.as_u16())
        };
        return CallResult::error(CODE_CONTAINER_FAILED, message);
    }
    CallResult::ok(output_json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_proto::InvokeStatus;

    /// A kept connection that no call takes is closed by the sweep after [`MAX_KEPT_IDLE`]
    /// (the function sees its end), and the sweep stops once nothing is kept.
    #[tokio::test]
    async fn an_idle_kept_connection_is_closed_by_the_sweep() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("listen");
        let addr = listener.local_addr().expect("address");
        let connection = Connection::open(addr, false).await.expect("connect");
        let (mut function_side, _) = listener.accept().await.expect("accept");
        let kept = Arc::new(Kept::default());
        Kept::put(&kept, connection);
        assert!(kept.0.lock().expect("lock").sweeping);

        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(MAX_KEPT_IDLE * 4, function_side.read(&mut byte))
            .await
            .expect("closed within a few idle periods");
        assert_eq!(
            read.expect("read"),
            0,
            "the function sees the connection end"
        );
        let list = kept.0.lock().expect("lock");
        assert!(list.connections.is_empty());
        assert!(!list.sweeping, "the sweep ended with nothing kept");
    }

    #[test]
    fn error_code_wins_over_everything() {
        let r = map_answer(StatusCode::OK, Some("app.bad"), Some("nope"), b"{}");
        assert_eq!(r.status, InvokeStatus::Error);
        assert_eq!(r.code.as_deref(), Some("app.bad"));
        assert_eq!(r.message.as_deref(), Some("nope"));
        assert!(r.output.is_none());
        let r = map_answer(StatusCode::INTERNAL_SERVER_ERROR, Some("x"), None, b"");
        assert_eq!(r.code.as_deref(), Some("x"));
        assert_eq!(r.message.as_deref(), Some(""));
    }

    #[test]
    fn message_alone_is_a_crash() {
        let r = map_answer(StatusCode::OK, None, Some("broken"), b"{}");
        assert_eq!(r.status, InvokeStatus::Crash);
        assert_eq!(r.message.as_deref(), Some("broken"));
        assert!(r.code.is_none());
    }

    #[test]
    fn non_2xx_is_container_failed() {
        let r = map_answer(StatusCode::INTERNAL_SERVER_ERROR, None, None, b"boom\n");
        assert_eq!(r.status, InvokeStatus::Error);
        assert_eq!(r.code.as_deref(), Some(CODE_CONTAINER_FAILED));
        assert_eq!(
            r.message.as_deref(),
            Some("function answered HTTP 500: boom")
        );
        let r = map_answer(StatusCode::NOT_FOUND, None, None, b"");
        assert_eq!(r.message.as_deref(), Some("function answered HTTP 404"));
        let long = vec![b'x'; 5000];
        let r = map_answer(StatusCode::BAD_GATEWAY, None, None, &long);
        let message = r.message.unwrap();
        assert_eq!(message.len(), "function answered HTTP 502: ".len() + 1024);
    }

    #[test]
    fn success_output() {
        let r = map_answer(StatusCode::OK, None, None, "{\"a\":\"ü\"}".as_bytes());
        assert_eq!(r.status, InvokeStatus::Ok);
        assert_eq!(r.output.unwrap().get(), "{\"a\":\"ü\"}");
        let r = map_answer(StatusCode::CREATED, None, None, b"plain");
        assert_eq!(r.output.unwrap().get(), "\"cGxhaW4=\"");
        let r = map_answer(StatusCode::NO_CONTENT, None, None, b"");
        assert_eq!(r.output.unwrap().get(), "null");
    }

    #[test]
    fn header_text_trims_and_ignores_blank() {
        let mut headers = HeaderMap::new();
        headers.insert("Direktiv-ErrorCode", HeaderValue::from_static(" c "));
        headers.insert("Direktiv-ErrorMessage", HeaderValue::from_static(""));
        assert_eq!(
            header_text(&headers, DIREKTIV_ERROR_CODE).as_deref(),
            Some("c")
        );
        assert_eq!(header_text(&headers, DIREKTIV_ERROR_MESSAGE), None);
    }
}
