//! Dispatch's API (VMware Dispatch v0.1.24, base path `/v1`) on the same server, so Dispatch's
//! own clients and scripts work: base images, images, functions, runs (blocking or not, and
//! their records), event subscriptions and emitted events, the API gateway (`/v1/api`, faasbox's
//! HTTP routes), in Dispatch's JSON shapes. The organization of a request (header `X-Dispatch-Org`) is the
//! faasbox namespace; the token is faasbox's (`Authorization: Bearer`), checked by the same
//! middleware and rules as `/api/v1` (see `auth::rules::classify`). Errors answer Dispatch's
//! `{"code": <HTTP status>, "message"}`.
//!
//! The handlers are adapters: what they do is `faasbox_core::code`'s and the invoker's; this
//! module only maps shapes ([`models`]) and statuses.

pub(crate) mod apis;
pub(crate) mod base_images;
pub(crate) mod functions;
pub(crate) mod images;
pub(crate) mod models;
pub(crate) mod runs;
pub(crate) mod subscriptions;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::auth::rules::DISPATCH_ORG_HEADER;
use crate::error::ApiError;

/// The namespace a Dispatch request is for: its `X-Dispatch-Org` header, checked as a name.
pub(crate) struct Org(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Org {
    type Rejection = DispatchError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(DISPATCH_ORG_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let Some(org) = value else {
            return Err(DispatchError::new(
                StatusCode::BAD_REQUEST,
                "Dispatch's API needs the header `X-Dispatch-Org: <namespace>` naming the faasbox \
                 namespace to work in",
            ));
        };
        faasbox_core::model::check_name("namespace", org)
            .map_err(|e| DispatchError::new(StatusCode::BAD_REQUEST, e))?;
        Ok(Org(org.to_owned()))
    }
}

/// Dispatch's error answer: `{"code": <status>, "message"}`, and the run it concerns when a
/// run failed (so its record is found).
#[derive(Debug)]
pub(crate) struct DispatchError {
    status: StatusCode,
    message: String,
    run: Option<Box<models::Run>>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a models::Run>,
}

impl DispatchError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        DispatchError {
            status,
            message: message.into(),
            run: None,
        }
    }

    /// The same error, naming `run`.
    pub(crate) fn with_run(mut self, run: models::Run) -> Self {
        self.run = Some(Box::new(run));
        self
    }
}

impl From<ApiError> for DispatchError {
    fn from(e: ApiError) -> Self {
        DispatchError::new(e.status, e.message)
    }
}

impl From<faasbox_core::failure::Failure> for DispatchError {
    fn from(f: faasbox_core::failure::Failure) -> Self {
        ApiError::from(f).into()
    }
}

impl From<faasbox_store::StoreError> for DispatchError {
    fn from(e: faasbox_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for DispatchError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::BAD_GATEWAY {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        let body = ErrorBody {
            code: self.status.as_u16(),
            message: &self.message,
            run: self.run.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}

pub(crate) type DispatchResult<T> = Result<T, DispatchError>;

/// The body as Dispatch's `what`, or a 400 naming the field that is wrong.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> DispatchResult<T> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let at = e.path().to_string();
        let place = if at == "." {
            String::new()
        } else {
            format!(" at `{at}`")
        };
        DispatchError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a Dispatch {what}{place}: {}", e.inner()),
        )
    })
}

/// The namespace must exist (404 with the fix otherwise).
pub(crate) async fn require_org(
    state: &std::sync::Arc<faasbox_core::state::AppState>,
    ns: &str,
) -> DispatchResult<()> {
    Ok(crate::require_namespace(state, ns).await?)
}
