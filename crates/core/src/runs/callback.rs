//! The callback of an asynchronous run: when it ends, its result is POSTed to the http URL it
//! was submitted with (`X-Callback-Url`), with `Faasbox-Invocation-Id` and `X-Function-Status`
//! (the HTTP status the synchronous call would have answered). Each try has 10 s; 5 tries,
//! 1, 2, 4 and 8 s apart. How it went is kept in the run's `callback_status`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faasbox_store::InvocationRecord;
use serde_json::{json, Value};

use crate::failure::{Failure, FailureKind};
use crate::state::AppState;

/// How long one try may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The waits between tries (so 5 tries in all).
const BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Refuses a callback URL that is not http (https too: the client has no TLS).
pub fn check_url(url: &str) -> Result<(), Failure> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "http" && parsed.has_host() => Ok(()),
        Ok(parsed) if parsed.scheme() == "https" => Err(Failure::invalid(format!(
            "callback URL '{url}': https callbacks are not available in this build (the \
             server's HTTP client has no TLS); use an http:// URL, e.g. a receiver on this \
             host or a TLS-terminating proxy in front of the real one"
        ))),
        Ok(_) => Err(Failure::invalid(format!(
            "callback URL '{url}' is not an http:// or https:// URL"
        ))),
        Err(e) => Err(Failure::invalid(format!(
            "callback URL '{url}' is not a URL: {e}"
        ))),
    }
}

/// What a callback tells of a run's end.
pub struct Outcome {
    status: &'static str,
    http_status: u16,
    output: Option<Value>,
    error: Option<Value>,
}

impl Outcome {
    /// The callback's view of a call's result.
    pub fn of(result: &Result<Bytes, Failure>) -> Outcome {
        let status = crate::invoker::status_of(result);
        match result {
            Ok(output) => Outcome {
                status,
                http_status: 200,
                output: Some(
                    serde_json::from_slice(output)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(output).into())),
                ),
                error: None,
            },
            Err(e) => Outcome {
                status,
                http_status: http_status(e.kind),
                output: None,
                error: Some(json!({
                    "type": crate::run_record::error_type(e),
                    "code": e.code,
                    "message": e.message,
                    "stacktrace": [],
                })),
            },
        }
    }
}

impl Outcome {
    /// The callback's view of a run the server's crash ended (`crashed`, a `SystemError`).
    pub fn crashed(message: &str) -> Outcome {
        Outcome {
            status: "crashed",
            http_status: 500,
            output: None,
            error: Some(json!({
                "type": "SystemError",
                "code": "",
                "message": message,
                "stacktrace": [],
            })),
        }
    }
}

/// The HTTP status a synchronous call answers for a failure of `kind` (as the API maps it).
fn http_status(kind: FailureKind) -> u16 {
    match kind {
        FailureKind::Invalid => 400,
        FailureKind::NotFound => 404,
        FailureKind::Conflict | FailureKind::Cancelled => 409,
        FailureKind::TooLarge => 413,
        FailureKind::Forbidden => 403,
        FailureKind::Unavailable => 503,
        FailureKind::FunctionFailed => 502,
        FailureKind::FunctionTimeout => 504,
        FailureKind::Internal => 500,
    }
}

/// POSTs run `run`'s result to `url`, retrying, and records how it went.
pub async fn send(
    state: &Arc<AppState>,
    run: &InvocationRecord,
    url: &str,
    result: Outcome,
    duration: Duration,
) {
    let body = json!({
        "id": run.id,
        "namespace": run.namespace,
        "function": run.function,
        "status": result.status,
        "duration_ms": duration.as_millis() as u64,
        "output": result.output,
        "error": result.error,
    });
    let status = deliver(url, &run.id, result.http_status, &body).await;
    if let Err(e) = state.store.set_callback_status(&run.id, &status).await {
        tracing::warn!(run = %run.id, "recording the callback's status failed: {e}");
    }
}

/// The client callbacks are sent with (the workspace's reqwest, built without TLS: https
/// URLs are refused at submit).
fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(TRY_TIMEOUT).build()
}

/// Tries the POST until one is answered 2xx; what to record.
async fn deliver(url: &str, id: &str, http_status: u16, body: &Value) -> String {
    let client = match client() {
        Ok(client) => client,
        Err(e) => return format!("failed: no HTTP client: {e}"),
    };
    let mut last = String::new();
    for attempt in 0..=BACKOFF.len() {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF[attempt - 1]).await;
        }
        let sent = client
            .post(url)
            .header("faasbox-invocation-id", id)
            .header("x-function-status", http_status.to_string())
            .json(body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => {
                return format!("delivered (HTTP {})", answer.status().as_u16())
            }
            Ok(answer) => last = format!("HTTP {}", answer.status().as_u16()),
            Err(e) => last = e.to_string(),
        }
        tracing::debug!(run = %id, "callback to {url} failed (try {}): {last}", attempt + 1);
    }
    tracing::warn!(run = %id, "callback to {url} failed after {} tries: {last}", BACKOFF.len() + 1);
    format!("failed after {} tries: {last}", BACKOFF.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_go_to_http_urls_only() {
        assert!(client().is_ok(), "the client builds");
        assert!(check_url("http://127.0.0.1:9000/done").is_ok());
        let https = check_url("https://example.com/hook").unwrap_err();
        assert!(https.message.contains("http://"), "{https}");
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "not a url",
            "http://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
