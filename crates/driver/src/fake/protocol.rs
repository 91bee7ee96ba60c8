//! Serving the agent protocol of [`faasbox_proto`] (`GET /v1/ready`, `POST /v1/invoke`,
//! `POST /v1/cancel`) on a Unix socket, or on TCP behind a bearer secret as the real agent does,
//! with what each request answers left to an
//! [`AgentHandler`]. Shared by the [`super::FakeDriver`]'s in-process agent stand-in and by the
//! fake agent the runtime's own tests run inside real containers.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use faasbox_proto::{
    AgentSecret, CancelReport, InvokeOutcome, LogLine, LogStream, ReadyReport, HEADER_ACTION_ID,
    HEADER_DEADLINE,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;

/// One `POST /v1/invoke` as the agent receives it.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// The `Faasbox-Action-Id` header (empty when missing).
    pub action_id: String,
    /// The `Faasbox-Deadline` header, RFC 3339 (empty when missing).
    pub deadline: String,
    /// The request body as sent.
    pub input: Bytes,
}

/// What an agent does with the requests of the protocol. `None` from a method hangs up the
/// connection without an answer, as an agent that died mid-request would.
#[async_trait]
pub trait AgentHandler: Send + Sync + 'static {
    /// `GET /v1/ready`: answered 200 when the report says ready, 503 otherwise.
    async fn ready(&self) -> Option<ReadyReport>;
    /// `POST /v1/invoke`: answered 200 with the outcome.
    async fn invoke(&self, call: InvokeRequest) -> Option<InvokeOutcome>;
    /// `POST /v1/cancel?aid=ID`: answered 200 with the report.
    async fn cancel(&self, action_id: &str) -> Option<CancelReport>;
}

/// Accepts connections on `listener` and serves each with `handler` until the returned future
/// is dropped (which also drops every connection still open).
pub async fn serve(listener: UnixListener, handler: Arc<dyn AgentHandler>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_connection(stream, handler.clone(), None));
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

/// [`serve`] on TCP: every request must carry `Authorization: Bearer <secret>`, or is answered
/// 401 (as the real agent does on TCP).
pub async fn serve_tcp(listener: TcpListener, secret: AgentSecret, handler: Arc<dyn AgentHandler>) {
    let secret = Arc::new(secret);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_connection(stream, handler.clone(), Some(secret.clone())));
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn serve_connection<IO>(
    stream: IO,
    handler: Arc<dyn AgentHandler>,
    secret: Option<Arc<AgentSecret>>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let handler = handler.clone();
        let authorized = secret.as_ref().is_none_or(|secret| {
            secret.authorizes(
                request
                    .headers()
                    .get(hyper::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            )
        });
        async move {
            if !authorized {
                return Ok(json_response(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({"error": "unauthorized"}),
                ));
            }
            handle(handler.as_ref(), request).await
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct HungUp;

impl fmt::Display for HungUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the agent hung up")
    }
}

impl std::error::Error for HungUp {}

async fn handle(
    handler: &dyn AgentHandler,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, HungUp> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    match (method, path.as_str()) {
        (Method::GET, "/v1/ready") => {
            let report = handler.ready().await.ok_or(HungUp)?;
            let status = if report.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Ok(json_response(status, &report))
        }
        (Method::POST, "/v1/invoke") => {
            let action_id = header(HEADER_ACTION_ID);
            let deadline = header(HEADER_DEADLINE);
            let input = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => return Err(HungUp),
            };
            let call = InvokeRequest {
                action_id,
                deadline,
                input,
            };
            let outcome = handler.invoke(call).await.ok_or(HungUp)?;
            Ok(json_response(StatusCode::OK, &outcome))
        }
        (Method::POST, "/v1/cancel") => {
            let aid = request
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|pair| pair.strip_prefix("aid="))
                .map(percent_decode)
                .unwrap_or_default();
            let report = handler.cancel(&aid).await.ok_or(HungUp)?;
            Ok(json_response(StatusCode::OK, &report))
        }
        _ => Ok(json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "no route"}),
        )),
    }
}

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    // The protocol's types always serialize; an empty body would show up as a decode error.
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Decodes `%XX` escapes (the agent client percent-encodes action ids).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Milliseconds since the Unix epoch, for log lines.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A log line of the agent's own.
pub fn agent_line(text: String) -> LogLine {
    LogLine {
        ts_ms: now_ms(),
        stream: LogStream::Agent,
        line: text,
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decode("plain-id"), "plain-id");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }
}
