//! The platform's side: HTTP/1.1 over the agent's Unix socket, and over TCP when the config
//! asks for it. On TCP every request must carry `Authorization: Bearer <tcp_secret>` (compared
//! in constant time); without it the answer is 401 with a JSON error. The socket needs none: its
//! file permissions keep others out.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/ready` | 200 / 503 `ReadyReport` |
//! | `POST /v1/invoke` | 200 `InvokeOutcome` (400 for a malformed request); with `faasbox-call-files: 1` the body is a `CallEnvelope` |
//! | `POST /v1/cancel?aid=ID` | 200 `CancelReport` |
//! | `GET /v1/logs?aid=ID&after=N` | 200 `LogsReport`: a running call's lines after its first N (400 without a valid `aid`) |
//!
//! The openwhisk contract also serves OpenWhisk's own `POST /init` and `POST /run` here (see
//! [`crate::contract::openwhisk`]). Anything else is 404 (405 for a known path with the wrong
//! method).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use faasbox_proto::{
    AgentSecret, CallEnvelope, CallFile, CancelReport, HttpForward, LogsReport, ReadyReport,
    HEADER_ACTION_ID, HEADER_CALL_FILES, HEADER_DEADLINE, MAX_LOGS_LINES,
};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::header::{ALLOW, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::net::{TcpListener, UnixListener};

use crate::calls::{valid_action_id, Calls};
use crate::contract::{openwhisk, AgentContract, Call, CallResult, CANCELLED};
use crate::http_util::{self, Body};
use crate::logs::LogHub;
use crate::query;

/// How long a cancel of a per-call process waits for the call to end and hand over its last
/// lines: well under the platform's own wait for the report (2 s).
const PER_CALL_REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The largest invoke body taken from the platform (its own bound is 64 MiB of input; a call
/// envelope adds the call's files).
const MAX_INPUT_BYTES: usize = 512 << 20;

/// What the handlers share.
#[derive(Debug)]
pub struct PlatformApi {
    pub contract: AgentContract,
    pub logs: Arc<LogHub>,
    pub calls: Calls,
}

/// Binds the socket at `path` (replacing a stale one), readable by its owner only.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(context(e)),
    }
    let listener = UnixListener::bind(path).map_err(context)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(context)?;
    Ok(listener)
}

/// Serves the platform until the listener fails.
pub async fn serve(listener: UnixListener, api: Arc<PlatformApi>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                spawn_connection(stream, &api, handle);
            }
            Err(err) => {
                eprintln!("faasbox-agent: platform socket accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves the platform on one accepted connection in its own task, and tells
/// [`crate::idle`] when the connection has closed (its buffers are free then).
fn spawn_connection<IO, H, F>(io: IO, api: &Arc<PlatformApi>, handler: H)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Arc<PlatformApi>, Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let api = Arc::clone(api);
    tokio::spawn(async move {
        let signals = api.calls.idle_signals();
        http_util::serve_connection(io, move |req| handler(Arc::clone(&api), req)).await;
        signals.connection_closed();
    });
}

/// Binds the TCP listener at `addr`.
pub async fn bind_tcp(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("TCP {addr}: {e}")))
}

/// Serves the platform over TCP until the listener fails; only requests that present `secret`
/// get past [`handle_authorized`].
pub async fn serve_tcp(listener: TcpListener, secret: AgentSecret, api: Arc<PlatformApi>) {
    let secret = Arc::new(secret);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let secret = Arc::clone(&secret);
                spawn_connection(stream, &api, move |api, req| {
                    handle_authorized(api, Arc::clone(&secret), req)
                });
            }
            Err(err) => {
                eprintln!("faasbox-agent: platform TCP accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// [`handle`], for a request that presents the secret; 401 for any other.
async fn handle_authorized(
    api: Arc<PlatformApi>,
    secret: Arc<AgentSecret>,
    req: Request<Incoming>,
) -> Response<Body> {
    let presented = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if !secret.authorizes(presented) {
        let mut response = http_util::json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({
                "error": "unauthorized",
                "message": "this agent's TCP endpoint needs `Authorization: Bearer <secret>` \
                            with the instance's secret (from `tcp_secret` in its config file)",
            }),
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    handle(api, req).await
}

async fn handle(api: Arc<PlatformApi>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    match (req.uri().path(), method) {
        ("/v1/ready", Method::GET) => ready(&api).await,
        ("/v1/invoke", Method::POST) => invoke(&api, req).await,
        ("/v1/cancel", Method::POST) => cancel(&api, req).await,
        ("/v1/logs", Method::GET) => logs(&api, &req),
        ("/v1/ready" | "/v1/logs", _) => not_allowed("GET"),
        ("/v1/invoke" | "/v1/cancel", _) => not_allowed("POST"),
        (path, _) => match &api.contract {
            AgentContract::Openwhisk(openwhisk) if openwhisk::routes::serves(path) => {
                openwhisk::routes::handle(openwhisk, req).await
            }
            _ => http_util::text(StatusCode::NOT_FOUND, "not found"),
        },
    }
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = http_util::text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}"));
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

async fn ready(api: &PlatformApi) -> Response<Body> {
    let ready = api.contract.ready().await;
    // Everything the function printed before it got ready (or failed to) is in the report.
    api.contract.flush_output().await;
    match ready {
        Ok(()) => http_util::json(
            StatusCode::OK,
            &ReadyReport {
                ready: true,
                error: None,
                // A copy: the lines stay buffered for the first call.
                logs: api.logs.buffered(),
            },
        ),
        Err(error) => http_util::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &ReadyReport {
                ready: false,
                error: Some(error),
                logs: api.logs.buffered(),
            },
        ),
    }
}

/// The call the platform asked for: (action id, deadline, whether the body is a
/// [`CallEnvelope`]), or why the request is malformed.
fn parse_call_headers(req: &Request<Incoming>) -> Result<(String, String, bool), String> {
    let header = |name: &str| -> Result<String, String> {
        let value = req
            .headers()
            .get(name)
            .ok_or_else(|| format!("missing header {name}"))?;
        value
            .to_str()
            .map(|v| v.trim().to_owned())
            .map_err(|_| format!("header {name} is not visible ASCII"))
    };
    let aid = header(HEADER_ACTION_ID)?;
    if !valid_action_id(&aid) {
        return Err(format!(
            "header {HEADER_ACTION_ID} must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"
        ));
    }
    let deadline = header(HEADER_DEADLINE)?;
    if OffsetDateTime::parse(&deadline, &Rfc3339).is_err() {
        return Err(format!("header {HEADER_DEADLINE} is not an RFC 3339 time"));
    }
    let envelope = match req.headers().get(HEADER_CALL_FILES) {
        None => false,
        Some(value) if value == "1" => true,
        Some(_) => return Err(format!("header {HEADER_CALL_FILES} must be 1")),
    };
    Ok((aid, deadline, envelope))
}

/// A [`CallEnvelope`] body as (files, input bytes, the HTTP request to forward).
fn open_envelope(body: &[u8]) -> Result<(Vec<CallFile>, Bytes, Option<HttpForward>), String> {
    let envelope: CallEnvelope = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not a call envelope: {e}"))?;
    let input = Bytes::copy_from_slice(envelope.input.get().as_bytes());
    Ok((envelope.files, input, envelope.http))
}

async fn invoke(api: &PlatformApi, req: Request<Incoming>) -> Response<Body> {
    let (aid, deadline, envelope) = match parse_call_headers(&req) {
        Ok(parsed) => parsed,
        Err(message) => return http_util::text(StatusCode::BAD_REQUEST, message),
    };
    let (parts, body) = req.into_parts();
    let input = match http_util::read_whole(body, &parts.headers, MAX_INPUT_BYTES).await {
        Ok(input) => input,
        Err(http_util::ReadError::TooLarge) => {
            return http_util::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the input is larger than {MAX_INPUT_BYTES} bytes"),
            )
        }
        Err(http_util::ReadError::Broken(err)) => {
            return http_util::text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the input: {err}"),
            )
        }
    };
    let (files, input, http) = if envelope {
        match open_envelope(&input) {
            Ok(opened) => opened,
            Err(message) => return http_util::text(StatusCode::BAD_REQUEST, message),
        }
    } else {
        (Vec::new(), input, None)
    };
    let Some((guard, cancelled)) = api.calls.begin(&aid) else {
        return http_util::text(
            StatusCode::BAD_REQUEST,
            format!("a call with action id {aid} is already in flight"),
        );
    };
    let call = Call {
        aid,
        deadline,
        input,
        files,
        http,
    };
    let mut result = api.contract.invoke(&call, cancelled.clone()).await;
    if cancelled.is_cancelled() {
        // Cancelled while the function was answering: the cancel wins.
        result = CallResult::crash(CANCELLED);
    }
    // Whatever the function wrote before it answered belongs to this call.
    api.contract.flush_output().await;
    let logs = guard.finish();
    http_util::json(StatusCode::OK, &result.into_outcome(logs))
}

/// `GET /v1/logs?aid=ID&after=N`: what call `ID` has logged so far after its first `N` lines
/// (`after` defaults to 0), while it runs.
fn logs(api: &PlatformApi, req: &Request<Incoming>) -> Response<Body> {
    let query = req.uri().query();
    let Some(aid) = query::param(query, "aid").filter(|aid| valid_action_id(aid)) else {
        return http_util::text(
            StatusCode::BAD_REQUEST,
            "missing or invalid `aid` query parameter",
        );
    };
    let after = match query::param(query, "after") {
        None => 0,
        Some(text) => match text.parse::<u64>() {
            Ok(after) => after,
            Err(_) => {
                return http_util::text(
                    StatusCode::BAD_REQUEST,
                    "`after` must be a count of lines (0 or more)",
                )
            }
        },
    };
    let from = usize::try_from(after).unwrap_or(usize::MAX);
    let report = match api.logs.call_lines_after(&aid, from, MAX_LOGS_LINES) {
        Some((lines, next)) => LogsReport {
            lines,
            next: u64::try_from(next).unwrap_or(u64::MAX),
            running: true,
        },
        None => LogsReport {
            lines: Vec::new(),
            next: after,
            running: false,
        },
    };
    http_util::json(StatusCode::OK, &report)
}

async fn cancel(api: &PlatformApi, req: Request<Incoming>) -> Response<Body> {
    let Some(aid) = query::param(req.uri().query(), "aid").filter(|aid| valid_action_id(aid))
    else {
        return http_util::text(
            StatusCode::BAD_REQUEST,
            "missing or invalid `aid` query parameter",
        );
    };
    let Some(first) = api.calls.start_cancel(&aid) else {
        return http_util::json(StatusCode::OK, &CancelReport::default());
    };
    if first {
        // The function hears of it while the call's connection is still open.
        api.contract.cancel(&aid).await;
    }
    if api.contract.function_process().is_none() {
        // A process per call: its last lines are read once it is killed, so the report holds
        // what the ended call collected (or, if it takes too long, what it had so far).
        let so_far = api.logs.call_logs(&aid).unwrap_or_default();
        let logs = match api.calls.abort_for_report(&aid) {
            Some(ended) => match tokio::time::timeout(PER_CALL_REPORT_WAIT, ended).await {
                Ok(Ok(logs)) => logs,
                _ => so_far,
            },
            None => so_far,
        };
        return http_util::json(StatusCode::OK, &CancelReport { logs });
    }
    api.contract.flush_output().await;
    // Read the logs before aborting: the aborted call ends its log collection.
    let logs = api.logs.call_logs(&aid).unwrap_or_default();
    api.calls.abort(&aid);
    http_util::json(StatusCode::OK, &CancelReport { logs })
}
