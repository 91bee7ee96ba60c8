//! Client for the agent's HTTP/1.1 protocol (see [`faasbox_proto`]), over its Unix socket or
//! over TCP ([`AgentEndpoint`]); on TCP every request carries the instance's secret as
//! `Authorization: Bearer`.
//!
//! Connections are kept alive and reused: a request takes an idle connection of its client
//! (clones share them) or opens one, and gives it back once the whole answer is read. A
//! request that is dropped before its answer is read (a call whose caller went away) closes
//! its connection, which the agent takes as the caller going away; concurrent requests (calls
//! and cancels of one instance) each have a connection of their own. A kept connection the
//! agent closed meanwhile is noticed before the request is written, and the request goes on
//! a fresh connection.
//!
//! Bodies are held once: the input is sent from the caller's buffer as it is, and an answer
//! is read into one buffer of its declared length (at most [`MAX_ANSWER_BYTES`]), out of which
//! [`AgentClient::call`] slices the output without copying it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use faasbox_proto::{
    AgentEndpoint, CallEnvelope, CallFile, CancelReport, HttpForward, InvokeOutcome, LogsReport,
    ReadyReport, HEADER_ACTION_ID, HEADER_CALL_FILES, HEADER_DEADLINE,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::UnixStream;

use crate::error::AgentError;

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The largest answer taken from an agent: an output (the agent takes at most 64 MiB from a
/// function) and the call's log lines.
pub const MAX_ANSWER_BYTES: usize = 256 << 20;
/// The largest answer to the small requests (ready, cancel).
const MAX_REPORT_BYTES: usize = 64 << 20;

/// How many idle connections a client keeps at most (more concurrent requests open more,
/// which are closed when they end).
const MAX_IDLE_CONNECTIONS: usize = 32;
/// How long a connection is kept idle: calls back to back reuse it, and an instance left idle
/// holds no connection (neither the server's buffers of it nor the agent's, which the agent
/// then gives back to the kernel).
const MAX_IDLE_TIME: Duration = Duration::from_secs(1);

/// Talks to the agent of one instance.
#[derive(Debug, Clone)]
pub struct AgentClient {
    endpoint: AgentEndpoint,
    /// Idle kept-alive connections, shared by the client's clones.
    idle: Arc<Idle>,
}

/// A client's idle connections. Those idle for [`MAX_IDLE_TIME`] are closed by a sweeping
/// task that runs while any are kept (started by the first one put back, ending when none is
/// left), so an idle instance's connection closes then, not at its next request. The client
/// closes them, not the agent: no request can be on its way on a connection it closes.
#[derive(Debug, Default)]
struct Idle(Mutex<IdleList>);

#[derive(Debug, Default)]
struct IdleList {
    /// Most recently used last.
    connections: Vec<(SendRequest<Full<Bytes>>, Instant)>,
    /// Whether the sweeping task runs.
    sweeping: bool,
}

impl Idle {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdleList> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The most recently used idle connection still open.
    fn take(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.lock();
        while let Some((sender, since)) = idle.connections.pop() {
            if !sender.is_closed() && since.elapsed() < MAX_IDLE_TIME {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps `sender` for the next request (closes it when enough are kept), and starts the
    /// sweeping task if it does not run.
    fn put(this: &Arc<Idle>, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = this.lock();
        if idle.connections.len() < MAX_IDLE_CONNECTIONS {
            idle.connections.push((sender, Instant::now()));
        }
        if !idle.sweeping {
            idle.sweeping = true;
            tokio::spawn(Idle::sweep(Arc::downgrade(this)));
        }
    }

    /// Closes each kept connection once it has been idle for [`MAX_IDLE_TIME`], waking when
    /// the oldest one is due, until none is kept (or the client is gone, its connections
    /// with it).
    async fn sweep(this: std::sync::Weak<Idle>) {
        let mut due = Instant::now() + MAX_IDLE_TIME;
        loop {
            tokio::time::sleep_until(due.into()).await;
            let Some(idle) = this.upgrade() else {
                return;
            };
            let (stale, done) = {
                let mut list = idle.lock();
                let now = Instant::now();
                let fresh_from = list
                    .connections
                    .iter()
                    .position(|(sender, since)| {
                        !sender.is_closed() && now.duration_since(*since) < MAX_IDLE_TIME
                    })
                    .unwrap_or(list.connections.len());
                let stale: Vec<_> = list.connections.drain(..fresh_from).collect();
                match list.connections.first() {
                    Some((_, since)) => due = *since + MAX_IDLE_TIME,
                    None => list.sweeping = false,
                }
                (stale, !list.sweeping)
            };
            // Closed outside the lock (the connection's task ends as its sender goes).
            drop(stale);
            if done {
                return;
            }
        }
    }
}

impl AgentClient {
    /// A client for the agent listening on the Unix socket `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self::at(AgentEndpoint::Unix(socket))
    }

    /// A client for the agent at `endpoint`.
    pub fn at(endpoint: AgentEndpoint) -> Self {
        AgentClient {
            endpoint,
            idle: Arc::default(),
        }
    }

    /// Where this client connects to.
    pub fn endpoint(&self) -> &AgentEndpoint {
        &self.endpoint
    }

    /// `GET /v1/ready`: 200 and 503 both carry a [`ReadyReport`]; any other status is an error.
    pub async fn ready(&self) -> Result<ReadyReport, AgentError> {
        const PATH: &str = "/v1/ready";
        let request = Request::builder()
            .method(Method::GET)
            .uri(PATH)
            .header(hyper::header::HOST, "agent")
            .body(Full::new(Bytes::new()))
            .map_err(|e| AgentError::Request(e.to_string()))?;
        let (status, body) = self.exchange(request, PATH, MAX_REPORT_BYTES).await?;
        match status {
            StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE => decode(PATH, &body),
            _ => Err(status_error(PATH, status, &body)),
        }
    }

    /// `POST /v1/invoke`: run one call. A function failure is an `Ok` outcome; `Err` means the
    /// agent itself failed or could not be reached.
    pub async fn invoke(
        &self,
        action_id: &str,
        deadline_rfc3339: &str,
        input: Bytes,
    ) -> Result<InvokeOutcome, AgentError> {
        self.invoke_with_files(action_id, deadline_rfc3339, input, Vec::new())
            .await
    }

    /// [`AgentClient::invoke`] with files the agent places where the function finds them (the
    /// body becomes a [`CallEnvelope`]); `input` must be JSON then.
    pub async fn invoke_with_files(
        &self,
        action_id: &str,
        deadline_rfc3339: &str,
        input: Bytes,
        files: Vec<CallFile>,
    ) -> Result<InvokeOutcome, AgentError> {
        let outcome = self.call(action_id, deadline_rfc3339, input, files).await?;
        let output = outcome
            .output
            .as_ref()
            .map(|bytes| RawValue::from_string(String::from_utf8_lossy(bytes).into_owned()))
            .transpose()
            .map_err(|source| AgentError::Decode {
                path: INVOKE,
                source,
            })?;
        Ok(outcome.with_output(output))
    }

    /// [`AgentClient::invoke_with_files`] with the output as a slice of the answer's bytes:
    /// the JSON the agent sent, never copied (what the platform keeps of a call).
    pub async fn call(
        &self,
        action_id: &str,
        deadline_rfc3339: &str,
        input: Bytes,
        files: Vec<CallFile>,
    ) -> Result<InvokeOutcome<Bytes>, AgentError> {
        self.call_with_http(action_id, deadline_rfc3339, input, files, None)
            .await
    }

    /// [`AgentClient::call`] for a call through an HTTP route: with `http`, the body is a
    /// [`CallEnvelope`] carrying it (the http contract forwards the caller's request to the
    /// function; the others ignore it), and `input` must be JSON.
    pub async fn call_with_http(
        &self,
        action_id: &str,
        deadline_rfc3339: &str,
        input: Bytes,
        files: Vec<CallFile>,
        http: Option<HttpForward>,
    ) -> Result<InvokeOutcome<Bytes>, AgentError> {
        const PATH: &str = INVOKE;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(PATH)
            .header(hyper::header::HOST, "agent")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ACTION_ID, action_id)
            .header(HEADER_DEADLINE, deadline_rfc3339);
        let body = if files.is_empty() && http.is_none() {
            input
        } else {
            request = request.header(HEADER_CALL_FILES, "1");
            let input = serde_json::from_slice::<&serde_json::value::RawValue>(&input)
                .map_err(|e| {
                    AgentError::Request(format!(
                        "a call with files or an HTTP request needs JSON input: {e}"
                    ))
                })?
                .to_owned();
            let envelope = serde_json::to_vec(&CallEnvelope { files, input, http })
                .map_err(|e| AgentError::Request(e.to_string()))?;
            Bytes::from(envelope)
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| AgentError::Request(e.to_string()))?;
        let (status, body) = self.exchange(request, PATH, MAX_ANSWER_BYTES).await?;
        if status != StatusCode::OK {
            return Err(status_error(PATH, status, &body));
        }
        let outcome: InvokeOutcome<&RawValue> = decode(PATH, &body)?;
        Ok(outcome.map_output(|raw| slice_of(&body, raw.get().as_bytes())))
    }

    /// `POST /v1/cancel?aid=ID`: cancel a running call.
    pub async fn cancel(&self, action_id: &str) -> Result<CancelReport, AgentError> {
        const PATH: &str = "/v1/cancel";
        let uri = format!("{PATH}?aid={}", percent_encode(action_id));
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(hyper::header::HOST, "agent")
            .body(Full::new(Bytes::new()))
            .map_err(|e| AgentError::Request(e.to_string()))?;
        let (status, body) = self.exchange(request, PATH, MAX_REPORT_BYTES).await?;
        if status != StatusCode::OK {
            return Err(status_error(PATH, status, &body));
        }
        decode(PATH, &body)
    }

    /// `GET /v1/logs?aid=ID&after=N`: the lines the running call `action_id` has produced so
    /// far after its first `after` (a bounded batch; ask again from its `next`). An agent that
    /// predates the route answers 404, an error here.
    pub async fn logs(&self, action_id: &str, after: u64) -> Result<LogsReport, AgentError> {
        const PATH: &str = "/v1/logs";
        let uri = format!("{PATH}?aid={}&after={after}", percent_encode(action_id));
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(hyper::header::HOST, "agent")
            .body(Full::new(Bytes::new()))
            .map_err(|e| AgentError::Request(e.to_string()))?;
        let (status, body) = self.exchange(request, PATH, MAX_REPORT_BYTES).await?;
        if status != StatusCode::OK {
            return Err(status_error(PATH, status, &body));
        }
        decode(PATH, &body)
    }

    /// Sends one request on a kept connection (or a fresh one) and reads the whole answer, at
    /// most `max` bytes, into one buffer; the connection is kept for the next request then.
    async fn exchange(
        &self,
        mut request: Request<Full<Bytes>>,
        path: &'static str,
        max: usize,
    ) -> Result<(StatusCode, Bytes), AgentError> {
        if let AgentEndpoint::Tcp { secret, .. } = &self.endpoint {
            let mut bearer =
                hyper::header::HeaderValue::try_from(format!("Bearer {}", secret.expose()))
                    .map_err(|_| {
                        AgentError::Request("the agent's secret is not a valid header value".into())
                    })?;
            bearer.set_sensitive(true);
            request
                .headers_mut()
                .insert(hyper::header::AUTHORIZATION, bearer);
        }
        let mut request = Some(request);
        let (mut sender, response) = loop {
            let (mut sender, kept) = match self.idle.take() {
                Some(sender) => (sender, true),
                None => (self.open().await?, false),
            };
            let Some(sending) = request.take() else {
                return Err(AgentError::Request("the request was lost".into()));
            };
            // On a kept connection, a copy to send again should the agent have closed it.
            let spare = kept.then(|| duplicate(&sending));
            match sender.try_send_request(sending).await {
                Ok(response) => break (sender, response),
                Err(mut refused) => match (refused.take_message(), spare) {
                    // The kept connection was closed before the request went out: again, on
                    // another connection.
                    (Some(unsent), _) if kept => request = Some(unsent),
                    // It failed with no answer begun: the agent closes a connection only when
                    // it goes away, and never in the middle of an answer, so the request was
                    // not taken; again on a fresh connection, which says whether the agent is
                    // still there.
                    (None, Some(spare)) => request = Some(spare),
                    _ => return Err(refused.into_error().into()),
                },
            }
        };
        let status = response.status();
        let reusable = !response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = read_body(response, path, max).await?;
        if reusable && sender.ready().await.is_ok() {
            Idle::put(&self.idle, sender);
        }
        Ok((status, body))
    }

    /// Opens a connection to the agent.
    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, AgentError> {
        match &self.endpoint {
            AgentEndpoint::Unix(socket) => handshake(connect(socket).await?).await,
            AgentEndpoint::Tcp { addr, .. } => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|source| AgentError::Connect {
                        endpoint: self.endpoint.to_string(),
                        source,
                    })?;
                let _ = stream.set_nodelay(true);
                handshake(stream).await
            }
        }
    }
}

/// A copy of `request` (its body shares the buffer).
fn duplicate(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Starts HTTP/1.1 on the fresh connection `stream`; the connection's task ends when its
/// last sender is dropped (or the agent hangs up).
async fn handshake<IO>(stream: IO) -> Result<SendRequest<Full<Bytes>>, AgentError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

const INVOKE: &str = "/v1/invoke";

/// Reads an answer's body into one buffer of its declared length (no chunk list that is
/// concatenated afterwards), refusing more than `max` bytes.
async fn read_body(
    response: hyper::Response<hyper::body::Incoming>,
    path: &'static str,
    max: usize,
) -> Result<Bytes, AgentError> {
    let too_large = || AgentError::TooLarge { path, limit: max };
    let declared = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0));
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buffer.len() + data.len() > max {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// `part`, a slice of `whole`'s bytes, as a `Bytes` sharing `whole`'s buffer (a copy if it
/// is not inside `whole`, which a borrowed JSON value always is).
fn slice_of(whole: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= whole.len() => whole.slice(start..end),
        _ => Bytes::copy_from_slice(part),
    }
}

/// Connects to a Unix socket, also when its path is longer than `sun_path` allows: then the
/// socket's directory is opened and the socket addressed through `/proc/self/fd/N/<name>`.
async fn connect(socket: &Path) -> Result<UnixStream, AgentError> {
    let connect_error = |source| AgentError::Connect {
        endpoint: socket.display().to_string(),
        source,
    };
    if socket.as_os_str().len() <= MAX_SOCKET_PATH {
        return UnixStream::connect(socket).await.map_err(connect_error);
    }
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return Err(connect_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "socket path has no directory",
        )));
    };
    let dir_handle = std::fs::File::open(dir).map_err(connect_error)?;
    let short = Path::new("/proc/self/fd")
        .join(dir_handle.as_raw_fd().to_string())
        .join(name);
    let stream = UnixStream::connect(&short).await.map_err(connect_error);
    drop(dir_handle);
    stream
}

fn decode<'a, T: Deserialize<'a>>(path: &'static str, body: &'a [u8]) -> Result<T, AgentError> {
    serde_json::from_slice(body).map_err(|source| AgentError::Decode { path, source })
}

fn status_error(path: &'static str, status: StatusCode, body: &[u8]) -> AgentError {
    const MAX_BODY: usize = 2000;
    let mut text = String::from_utf8_lossy(body).into_owned();
    if text.len() > MAX_BODY {
        let mut cut = MAX_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    AgentError::Status {
        path,
        status: status.as_u16(),
        body: text,
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved() {
        assert_eq!(percent_encode("abc-1.2_~"), "abc-1.2_~");
        assert_eq!(percent_encode("a b&c/ü"), "a%20b%26c%2F%C3%BC");
    }

    /// A socket path longer than `sun_path` still connects (through /proc/self/fd), and a
    /// 503 answer to ready is a report, not an error.
    #[tokio::test]
    async fn long_socket_paths_connect() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d".repeat(120));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("agent.sock");
        assert!(socket.as_os_str().len() > MAX_SOCKET_PATH);
        let handle = std::fs::File::open(&dir).unwrap();
        let short = format!("/proc/self/fd/{}/agent.sock", handle.as_raw_fd());
        let listener = tokio::net::UnixListener::bind(&short).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await.unwrap();
            let body = r#"{"ready":false,"error":"port 8080 closed"}"#;
            let reply = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).await.unwrap();
        });
        let report = AgentClient::new(socket).ready().await.unwrap();
        assert!(!report.ready);
        assert_eq!(report.error.as_deref(), Some("port 8080 closed"));
    }

    /// Serves one canned HTTP answer with `body` on a fresh socket; returns a client for it.
    fn canned(dir: &Path, body: String, declared: usize) -> AgentClient {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = dir.join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await.unwrap();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {declared}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
        AgentClient::new(socket)
    }

    #[tokio::test]
    async fn the_output_is_the_answer_s_own_bytes_and_answers_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let output = r#"{"a": [1, 2.50, "x\u00e9"]}"#;
        let body = format!(r#"{{"status":"ok","output":{output},"logs":[]}}"#);
        let client = canned(tmp.path(), body.clone(), body.len());
        let outcome = client
            .call(
                "aid",
                "2030-01-01T00:00:00Z",
                Bytes::from_static(b"{}"),
                Vec::new(),
            )
            .await
            .unwrap();
        // Exactly the JSON text the agent sent (not re-encoded).
        assert_eq!(outcome.output.as_deref(), Some(output.as_bytes()));
        // An answer declared larger than the bound is refused before it is read.
        let tmp = tempfile::tempdir().unwrap();
        let client = canned(tmp.path(), String::new(), MAX_ANSWER_BYTES + 1);
        let err = client
            .call("aid", "2030-01-01T00:00:00Z", Bytes::new(), Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(err, AgentError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_call_with_an_http_request_sends_it_in_an_envelope() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let (sent, received) = tokio::sync::oneshot::channel::<String>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = vec![0u8; 4096];
            // The whole request: its head, then a body of its content-length.
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length || n == 0 {
                        break;
                    }
                }
            }
            let body = r#"{"status":"ok","output":1,"logs":[]}"#;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(body.as_bytes()).await.unwrap();
            let _ = sent.send(String::from_utf8_lossy(&request).into_owned());
        });
        let forward = HttpForward {
            method: "PUT".into(),
            path: "/a/b".into(),
            query: "x=1".into(),
            headers: vec![("x-event".into(), "push".into())],
        };
        let outcome = AgentClient::new(socket)
            .call_with_http(
                "aid",
                "2030-01-01T00:00:00Z",
                Bytes::from_static(b"{\"n\": 1}"),
                Vec::new(),
                Some(forward.clone()),
            )
            .await
            .unwrap();
        assert_eq!(outcome.output.as_deref(), Some(&b"1"[..]));
        let request = received.await.unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_lowercase().contains("faasbox-call-files: 1"),
            "{head}"
        );
        let envelope: CallEnvelope = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.http, Some(forward));
        assert_eq!(envelope.input.get(), "{\"n\": 1}");
        assert!(envelope.files.is_empty());
    }

    /// Two requests in a row go on one kept connection: the stand-in accepts one connection
    /// only and answers both on it. After it hangs up, the next request goes on a fresh one.
    #[tokio::test]
    async fn connections_are_kept_and_reused() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let (accepted, mut connections) = tokio::sync::mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            // Each connection: answers requests (no body) until the second, then hangs up.
            while let Ok((stream, _)) = listener.accept().await {
                let _ = accepted.send(());
                let mut stream = BufReader::new(stream);
                for _ in 0..2 {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await.unwrap() == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let body = r#"{"ready":true}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            }
        });
        let client = AgentClient::new(socket);
        assert!(client.ready().await.unwrap().ready);
        assert!(client.clone().ready().await.unwrap().ready);
        assert!(connections.recv().await.is_some());
        assert!(
            connections.try_recv().is_err(),
            "a second connection was opened"
        );
        // The stand-in hung up after two: the third request goes on a fresh connection.
        assert!(client.ready().await.unwrap().ready);
        assert!(connections.recv().await.is_some());
    }

    /// A connection left idle is closed by the client (the stand-in sees its end), without a
    /// further request; the next request goes on a fresh connection.
    #[tokio::test]
    async fn idle_connections_are_closed_and_the_next_request_opens_one() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        // Told "open" when a connection is accepted, "closed" when the client ended it.
        let (events, mut seen) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let events = events.clone();
                let _ = events.send("open");
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    // Answers requests (no body) until the client closes.
                    loop {
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if stream.read_line(&mut line).await.unwrap() == 0 {
                                let _ = events.send("closed");
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let body = r#"{"ready":true}"#;
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        let client = AgentClient::new(socket);
        assert!(client.ready().await.unwrap().ready);
        assert_eq!(seen.recv().await, Some("open"));
        // Nothing more is asked: the client closes the idle connection by itself.
        let closed = tokio::time::timeout(Duration::from_secs(30), seen.recv()).await;
        assert_eq!(closed.ok().flatten(), Some("closed"));
        assert!(client.idle.lock().connections.is_empty());
        // The next request works, on a fresh connection, kept in turn.
        assert!(client.ready().await.unwrap().ready);
        assert_eq!(seen.recv().await, Some("open"));
        assert_eq!(client.idle.lock().connections.len(), 1);
    }

    #[test]
    fn slices_share_the_buffer_and_strangers_are_copied() {
        let whole = Bytes::from_static(b"0123456789");
        let part = slice_of(&whole, &whole[3..6]);
        assert_eq!(&part[..], b"345");
        assert_eq!(part.as_ptr(), whole[3..].as_ptr());
        let other = b"345".to_vec();
        let copied = slice_of(&whole, &other);
        assert_eq!(&copied[..], b"345");
        assert_ne!(copied.as_ptr(), whole[3..].as_ptr());
    }

    #[tokio::test]
    async fn connect_error_names_the_socket() {
        let client = AgentClient::new(PathBuf::from("/nonexistent/faasbox/agent.sock"));
        let err = client.ready().await.unwrap_err();
        assert!(err.is_connect());
        assert!(err.to_string().contains("/nonexistent/faasbox/agent.sock"));
    }
}
