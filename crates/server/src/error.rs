//! API errors: every failure answers `{"error":{"code","message"}}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Error codes the platform itself produces (a function's own codes pass through unchanged).
pub mod codes {
    pub const BAD_REQUEST: &str = "faasbox.request.invalid";
    pub const NOT_FOUND: &str = "faasbox.not_found";
    pub const CONFLICT: &str = "faasbox.conflict";
    pub const TOO_LARGE: &str = "faasbox.request.too_large";
    pub const INTERNAL: &str = "faasbox.internal";
    /// A request handler panicked (a bug); the server goes on serving.
    pub const PANIC: &str = "faasbox.internal.panic";
    pub const FUNCTION_CRASHED: &str = "faasbox.function.crashed";
    pub const FUNCTION_TIMEOUT: &str = "faasbox.function.timeout";
    pub const FUNCTION_CANCELLED: &str = "faasbox.function.cancelled";
    pub const FUNCTION_OOM: &str = "faasbox.function.oom";
    pub const FUNCTION_START: &str = "faasbox.function.start_failed";
    pub const QUEUE_FULL: &str = "faasbox.function.queue_full";
}

/// The body of every error answer, as the OpenAPI document shows it (see [`ApiError::body`]).
#[derive(utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code, e.g. `faasbox.request.invalid`.
    pub code: String,
    /// What is wrong, with the fix.
    pub message: String,
    /// For function failures: whether a flow can catch it by its code.
    pub catchable: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// For function failures: whether a flow can catch it by its code.
    pub catchable: Option<bool>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            catchable: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message)
    }

    /// A failure of the function (502 unless a more specific status fits).
    pub fn function(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        catchable: bool,
    ) -> Self {
        ApiError {
            catchable: Some(catchable),
            ..Self::new(status, code, message)
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(catchable) = self.catchable {
            error["catchable"] = json!(catchable);
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::BAD_GATEWAY {
            tracing::error!(code = %self.code, "{}", self.message);
        }
        (self.status, Json(self.body())).into_response()
    }
}

impl From<faasbox_store::StoreError> for ApiError {
    fn from(e: faasbox_store::StoreError) -> Self {
        use faasbox_store::StoreError;
        match e {
            StoreError::NoNamespace(ns) => ApiError::not_found(format!(
                "namespace '{ns}' does not exist; create it with `faasbox ns create {ns}`"
            )),
            StoreError::NamespaceExists(ns) => {
                ApiError::conflict(format!("namespace '{ns}' already exists"))
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Problems with what the user sent (a bad name, a bad archive, a missing image) are 4xx;
/// the image store's own failures are 500s.
impl From<faasbox_images::ImageError> for ApiError {
    fn from(e: faasbox_images::ImageError) -> Self {
        match &e {
            faasbox_images::ImageError::NotFound(_) => ApiError::not_found(e.to_string()),
            faasbox_images::ImageError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::TOO_LARGE,
                e.to_string(),
            ),
            _ if e.is_user_error() => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        ApiError::unreadable_body(
            e.status(),
            format!("the request body cannot be read: {}", e.body_text()),
        )
    }
}

impl ApiError {
    /// A body its extractor refused with `status`: 413 when too large, else 400.
    fn unreadable_body(status: StatusCode, message: String) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, codes::TOO_LARGE, message)
        } else {
            ApiError::bad_request(message)
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    /// A task that panicked is a bug like a panicking handler: 500 with [`codes::PANIC`]
    /// (logged when answered).
    fn from(e: tokio::task::JoinError) -> Self {
        let code = if e.is_panic() {
            codes::PANIC
        } else {
            codes::INTERNAL
        };
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            format!("a background task failed: {e}"),
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
