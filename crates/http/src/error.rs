//! API errors: every failure answers `{"error":{"code","message"}}` with a fitting status.
//! The core's [`Failure`] gets its status here, in [`status_of`], the one place that maps a
//! kind of failure to HTTP; the few answers only HTTP knows (401, 415, an extractor's refusal)
//! are made here too.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use faasbox_core::failure::{codes, Failure, FailureDetail, FailureKind};

/// The body of every error answer, as the OpenAPI document shows it (see [`ApiError::body`]).
// Only its schema is used (the answer itself is written by `ApiError::body`), so its fields
// are never read.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[allow(dead_code)] // only its schema is used, as for `ErrorBody`
#[derive(utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code, e.g. `faasbox.request.invalid`.
    pub code: String,
    /// What is wrong, with the fix.
    pub message: String,
    /// For function failures: whether a flow can catch it by its code.
    pub catchable: Option<bool>,
    /// The single problems the message sums up, each at its JSON pointer (an input's schema
    /// violations); absent when there are none.
    pub details: Option<Vec<FailureDetail>>,
}

/// A failed request's answer: its status and the `{"error": …}` body it is sent with.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status answered.
    pub status: StatusCode,
    /// A stable code, e.g. `faasbox.request.invalid`.
    pub code: String,
    /// What is wrong, with the fix.
    pub message: String,
    /// For function failures: whether a flow can catch it by its code.
    pub catchable: Option<bool>,
    /// The single problems the message sums up (a schema's violations, with their JSON
    /// pointers); sent only when there are some.
    pub details: Vec<FailureDetail>,
}

/// The status each kind of failure answers with.
pub fn status_of(kind: FailureKind) -> StatusCode {
    match kind {
        FailureKind::Invalid => StatusCode::BAD_REQUEST,
        FailureKind::NotFound => StatusCode::NOT_FOUND,
        FailureKind::Conflict => StatusCode::CONFLICT,
        FailureKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FailureKind::Forbidden => StatusCode::FORBIDDEN,
        FailureKind::Cancelled => StatusCode::CONFLICT,
        FailureKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        FailureKind::FunctionFailed => StatusCode::BAD_GATEWAY,
        FailureKind::FunctionTimeout => StatusCode::GATEWAY_TIMEOUT,
        FailureKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        // A code function's input error (its schema.in, or the handler's own) is the
        // caller's: 422, whatever produced it.
        let status = if f.code == faasbox_proto::CODE_INPUT_ERROR {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status_of(f.kind)
        };
        ApiError {
            status,
            code: f.code,
            message: f.message,
            catchable: f.catchable,
            details: f.details,
        }
    }
}

impl ApiError {
    /// An answer only HTTP has (401, 415, an extractor's refusal); the core's failures come
    /// through [`From<Failure>`].
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            catchable: None,
            details: Vec::new(),
        }
    }

    /// A 400 answer (`faasbox.request.invalid`): what the caller sent is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Failure::invalid(message).into()
    }

    /// A 404 answer (`faasbox.not_found`): what the caller named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Failure::not_found(message).into()
    }

    /// A 409 answer (`faasbox.conflict`): the request clashes with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Failure::conflict(message).into()
    }

    /// A 500 answer (`faasbox.internal`): the server's own fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Failure::internal(message).into()
    }

    /// The JSON body answered: `{"error": {"code", "message", "catchable"?, "details"?}}`.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(catchable) = self.catchable {
            error["catchable"] = json!(catchable);
        }
        if !self.details.is_empty() {
            error["details"] = json!(self.details);
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
        Failure::from(e).into()
    }
}

impl From<faasbox_images::ImageError> for ApiError {
    fn from(e: faasbox_images::ImageError) -> Self {
        Failure::from(e).into()
    }
}

impl From<faasbox_secrets::VaultError> for ApiError {
    fn from(e: faasbox_secrets::VaultError) -> Self {
        Failure::from(e).into()
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Failure::from(e).into()
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

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table. The match makes a new kind fail to compile here until it has a status.
    #[test]
    fn every_kind_has_its_status() {
        for kind in FailureKind::ALL {
            let expected = match kind {
                FailureKind::Invalid => 400,
                FailureKind::NotFound => 404,
                FailureKind::Conflict => 409,
                FailureKind::TooLarge => 413,
                FailureKind::Forbidden => 403,
                FailureKind::Cancelled => 409,
                FailureKind::Unavailable => 503,
                FailureKind::FunctionFailed => 502,
                FailureKind::FunctionTimeout => 504,
                FailureKind::Internal => 500,
            };
            assert_eq!(status_of(kind).as_u16(), expected, "{kind:?}");
            // What the core calls the caller's fault is exactly what answers 4xx.
            assert_eq!(
                status_of(kind).is_client_error(),
                kind.is_callers(),
                "{kind:?}"
            );
            assert_eq!(
                status_of(kind).is_server_error(),
                !kind.is_callers(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_failure_keeps_its_code_message_and_catchable() {
        let f = Failure::function(
            FailureKind::FunctionTimeout,
            codes::FUNCTION_TIMEOUT,
            "m",
            true,
        );
        let e = ApiError::from(f);
        assert_eq!(e.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            e.body(),
            json!({"error": {"code": codes::FUNCTION_TIMEOUT, "message": "m", "catchable": true}})
        );
        let e = ApiError::from(Failure::invalid("bad"));
        assert_eq!(
            e.body(),
            json!({"error": {"code": codes::BAD_REQUEST, "message": "bad"}})
        );
    }

    /// A code function's input error answers 422 whether its schema or its handler found it;
    /// its other errors answer 502.
    #[test]
    fn code_function_errors_answer_422_and_502() {
        for kind in [FailureKind::Invalid, FailureKind::FunctionFailed] {
            let f = Failure::function(kind, faasbox_proto::CODE_INPUT_ERROR, "m", true);
            assert_eq!(ApiError::from(f).status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let f = Failure::function(
            FailureKind::FunctionFailed,
            faasbox_proto::CODE_FUNCTION_ERROR,
            "m",
            true,
        );
        assert_eq!(ApiError::from(f).status, StatusCode::BAD_GATEWAY);
    }

    /// The statuses the vault's, the store's and the images' errors answered with before
    /// they became core failures.
    #[test]
    fn outside_errors_answer_as_before() {
        use faasbox_secrets::VaultError;
        let status = |e: VaultError| ApiError::from(e).status;
        assert_eq!(
            status(VaultError::InvalidRegistry("x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(VaultError::TooLarge {
                what: "secret demo/x".into(),
                len: 2,
                max: 1,
            }),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(VaultError::Store(faasbox_store::StoreError::NoNamespace(
                "demo".into()
            ))),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(VaultError::Undecryptable {
                what: "secret demo/x".into(),
            }),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let exists = faasbox_store::StoreError::NamespaceExists("demo".into());
        assert_eq!(ApiError::from(exists).status, StatusCode::CONFLICT);
    }
}
