//! The HTTP endpoint the function logs to: `127.0.0.1:<log_port>`.
//!
//! - `POST /log?aid=<id>`: every line of the body is a log line of call `<id>`.
//! - `GET /log?aid=<id>&log=<text>`: `<text>` (percent-decoded, `+` as a space) is.
//!
//! A missing, unknown or finished `aid` is still answered 200; its lines go to the instance
//! buffer and are attached to the next call. `/var` (Direktiv's variable API) is answered 501
//! for now.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use faasbox_proto::LogStream;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::http_util::{self, Body};
use crate::lines::split_all;
use crate::logs::LogHub;
use crate::query;

/// The largest log request body accepted.
pub const MAX_LOG_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Binds `127.0.0.1:port`.
pub async fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on 127.0.0.1:{port}: {e}")))
}

/// Serves the endpoint with blocking accepts and reads (see [`crate::tcp_bridge`]).
pub fn serve_blocking(listener: TcpListener, logs: Arc<LogHub>) -> io::Result<()> {
    let listener = listener.into_std()?;
    crate::tcp_bridge::serve_blocking(listener, move |pipe| {
        let logs = Arc::clone(&logs);
        http_util::spawn_connection(pipe, move |req| handle(Arc::clone(&logs), req));
    })
}

/// Serves the endpoint until the listener fails.
pub async fn serve(listener: TcpListener, logs: Arc<LogHub>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let logs = Arc::clone(&logs);
                http_util::spawn_connection(stream, move |req| handle(Arc::clone(&logs), req));
            }
            Err(err) => {
                eprintln!("faasbox-agent: log endpoint accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(logs: Arc<LogHub>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/var" || path.starts_with("/var/") {
        return http_util::text(
            StatusCode::NOT_IMPLEMENTED,
            "variables (/var) are not supported by faasbox yet",
        );
    }
    if path != "/log" {
        return http_util::text(StatusCode::NOT_FOUND, "not found");
    }
    let query = req.uri().query().map(str::to_owned);
    let aid = query::param(query.as_deref(), "aid");
    let text: Bytes = match *req.method() {
        Method::GET => match query::param(query.as_deref(), "log") {
            Some(text) => Bytes::from(text),
            None => return http_util::text(StatusCode::BAD_REQUEST, "missing `log` parameter"),
        },
        Method::POST => match Limited::new(req.into_body(), MAX_LOG_BODY_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(err) => {
                return http_util::text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("cannot read the log body: {err}"),
                )
            }
        },
        _ => return http_util::text(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
    };
    record(&logs, aid.as_deref(), &text);
    http_util::text(StatusCode::OK, "")
}

/// Records each line of `text` for call `aid` (or the buffer).
fn record(logs: &LogHub, aid: Option<&str>, text: &[u8]) {
    let aid = aid.filter(|aid| !aid.is_empty());
    for line in split_all(text) {
        logs.call_line(aid, LogStream::Function, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_lines_go_to_the_named_call() {
        let logs = LogHub::new();
        assert!(logs.begin_call("a"));
        record(&logs, Some("a"), b"one\ntwo\n");
        record(&logs, Some(""), b"stray");
        let lines = logs.end_call("a");
        let texts: Vec<_> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(texts, ["one", "two"]);
        assert!(lines.iter().all(|l| l.stream == LogStream::Function));
        assert_eq!(logs.buffered()[0].line, "stray");
    }
}
