//! What wraps every route: a handler that panics answers 500 with a code (the panic is logged
//! and the server keeps serving), and the plain-text rejections of axum's extractors (a bad
//! query string, path or body) become the API's JSON errors.
//!
//! The test hook: with `FAASBOX_TEST_PANIC_ROUTE=1` in its environment at start, the server
//! also serves `POST /api/v1/admin/test-panic`, a handler that panics (server-wide, so only
//! the admin token reaches it). The hook is read at run time rather than compiled only into
//! tests because the integration tests run the shipped `faasbox` binary; without the
//! variable the route does not exist (404, like any unknown path).

use std::any::Any;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use faasbox_core::failure::{codes, Failure, FailureKind};

/// The environment variable that adds the panicking test route.
pub const TEST_PANIC_ENV: &str = "FAASBOX_TEST_PANIC_ROUTE";
/// The panicking test route.
pub const TEST_PANIC_PATH: &str = "/api/v1/admin/test-panic";

/// `router` with axum's plain-text rejections turned into the API's JSON errors (not around
/// the gateway: a route's function may answer plain text on purpose).
pub fn json_rejections(router: Router) -> Router {
    router.layer(axum::middleware::map_response(json_rejection))
}

/// `router` with the panic guard around it (outermost, so that a panic anywhere inside, the
/// token check and the gateway included, is caught).
pub fn catch_panics(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(panic_response))
}

/// `router` plus the test route when [`TEST_PANIC_ENV`] is `1`.
pub fn with_test_hook<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    if std::env::var_os(TEST_PANIC_ENV).is_some_and(|v| v == "1") {
        tracing::warn!(
            "{TEST_PANIC_ENV} is set: serving the panicking test route {TEST_PANIC_PATH}"
        );
        router.route(TEST_PANIC_PATH, axum::routing::post(test_panic))
    } else {
        router
    }
}

async fn test_panic() -> StatusCode {
    panic!("the test route panicked on purpose");
}

/// The answer to a panic: 500 `faasbox.internal.panic`, the panic logged with its message.
fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = if let Some(s) = err.downcast_ref::<String>() {
        s.as_str()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        s
    } else {
        "(no message)"
    };
    tracing::error!(code = codes::PANIC, "a request handler panicked: {message}");
    ApiError::from(Failure::new(
        FailureKind::Internal,
        codes::PANIC,
        "the server failed while handling this request (a bug: it is logged); the server \
         goes on serving, and the request may be retried",
    ))
    .into_response()
}

/// A plain-text or empty error answer (what axum's extractors and router answer with, e.g.
/// 405 for a method a route does not take) as the API's JSON error.
async fn json_rejection(response: Response<Body>) -> Response<Body> {
    use http_body::Body as _;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE);
    let text = content_type.is_some_and(|t| t.as_bytes().starts_with(b"text/plain"));
    let bare = content_type.is_none() && response.body().size_hint().exact() == Some(0);
    if !(text || bare) || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; anything longer is cut rather than held.
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&bytes).trim().to_string();
    if message.is_empty() {
        message = match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                "this route does not take that method; see /api/v1/openapi.json".to_string()
            }
            other => other.canonical_reason().unwrap_or("error").to_string(),
        };
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => codes::TOO_LARGE,
        StatusCode::NOT_FOUND => codes::NOT_FOUND,
        s if s.is_server_error() => codes::INTERNAL,
        _ => codes::BAD_REQUEST,
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}
