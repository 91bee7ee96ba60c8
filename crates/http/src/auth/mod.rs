//! API authentication and authorisation: one middleware (`serve` wraps the whole router
//! in it) in front of every route but health. The tokens themselves are `faasbox_core::auth`'s.
//! It reads `Authorization: Bearer <token>`, finds whose token it is, applies the rules of
//! [`rules`] and leaves the caller's [`Access`] in the request for handlers that filter lists.
//! A request that came in as `/ui/api/…` (marked [`session::ViaUi`]) may instead carry the
//! UI's session cookie with its CSRF header ([`session::caller`]).

pub mod rules;
pub mod session;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use self::rules::{ByIdKind, Target, Verdict};
use crate::error::ApiError;
use faasbox_core::auth::tokens::{self, Role};
use faasbox_core::auth::Principal;
use faasbox_core::failure::{Failure, FailureKind};
use faasbox_core::state::AppState;

/// The one route that needs no token.
pub const HEALTH_PATH: &str = "/api/v1/health";

/// The caller, for handlers whose answer depends on it (e.g. the namespace list).
#[derive(Debug, Clone)]
pub struct Access(pub Principal);

/// The name of the caller's token, for what records who did it (function revisions).
#[derive(Debug, Clone)]
pub struct TokenName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TokenName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TokenName>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the route is not behind the token check"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Access>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the route is not behind the token check"))
    }
}

pub mod codes {
    pub const MISSING: &str = "faasbox.auth.missing";
    pub const INVALID: &str = "faasbox.auth.invalid";
    pub const FORBIDDEN: &str = "faasbox.auth.forbidden";
    /// A UI request without a live session (none, signed out, expired, token deleted).
    pub const SESSION: &str = "faasbox.auth.session";
    /// A UI request with the session cookie but without its CSRF token.
    pub const CSRF: &str = "faasbox.auth.csrf";
}

/// The middleware: 401 without a valid token, 404/403 outside what the token may see.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == HEALTH_PATH {
        return next.run(request).await;
    }
    let via_ui = request.extensions().get::<session::ViaUi>().is_some();
    let (principal, name) = match bearer(request.headers()) {
        // `/ui/api/…` without a bearer token: the session cookie and its CSRF header.
        None if via_ui => match session::caller(&state, request.headers()).await {
            Ok(caller) => caller,
            Err(refused) => return refused.into_response(),
        },
        None => return unauthorized(&state, codes::MISSING, "this API needs a token"),
        Some(token) => match state
            .tokens
            .check_named_or_store(&*state.store, token)
            .await
        {
            Some(p) => p,
            None => {
                return unauthorized(
                    &state,
                    codes::INVALID,
                    "the token is not valid (unknown, deleted, or its namespace was deleted)",
                )
            }
        },
    };
    if let Principal::Namespace { namespace, role } = &principal {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let org = request
            .headers()
            .get(rules::DISPATCH_ORG_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Err(e) = authorize(&state, namespace, *role, &method, &uri, org.as_deref()).await {
            return e.into_response();
        }
    }
    request.extensions_mut().insert(Access(principal));
    request.extensions_mut().insert(TokenName(name));
    next.run(request).await
}

async fn authorize(
    state: &Arc<AppState>,
    own: &str,
    role: Role,
    method: &Method,
    uri: &Uri,
    org: Option<&str>,
) -> Result<(), ApiError> {
    let mut target = rules::classify(method, uri.path(), org);
    if let Target::ById { kind, id, rest } = &target {
        let (kind, rest) = (*kind, rest.clone());
        let owner = match kind {
            ByIdKind::Invocation => {
                // A blocking call's record may still be with the record writer.
                state.runs.records.settle().await;
                state.store.invocation(id).await?.map(|r| r.namespace)
            }
            ByIdKind::FlowInstance => state.store.instance(id).await?.map(|r| r.namespace),
        };
        // Unknown (also an id written with percent escapes, which the handler would decode)
        // or another namespace's: answered like one that does not exist.
        let Some(ns) = owner.filter(|ns| ns == own) else {
            let what = match kind {
                ByIdKind::Invocation => "invocation",
                ByIdKind::FlowInstance => "instance",
            };
            return Err(ApiError::not_found(format!("{what} '{id}' does not exist")));
        };
        target = Target::Namespace { ns, rest };
    }
    match rules::judge(own, role, method, &target) {
        Verdict::Allow => Ok(()),
        Verdict::HiddenNamespace(ns) => Err(hidden_namespace(&ns, own)),
        Verdict::Forbidden(why) => {
            Err(Failure::new(FailureKind::Forbidden, codes::FORBIDDEN, why).into())
        }
    }
}

/// What a namespace token hears of any namespace but its own: the same whether it exists or
/// not, and no fix it could not carry out (creating namespaces takes the admin token).
fn hidden_namespace(ns: &str, own: &str) -> ApiError {
    ApiError::not_found(format!(
        "namespace '{ns}' does not exist or is not this token's (the token belongs to namespace \
         '{own}')"
    ))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(state: &AppState, code: &str, what: &str) -> Response {
    let message = format!(
        "{what}: send `Authorization: Bearer <token>` (the CLI reads FAASBOX_TOKEN or --token). \
         The admin token is in {} on the server machine; `faasbox token create --namespace NS` \
         makes namespace tokens",
        tokens::admin_token_path(&state.config.data_dir).display()
    );
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}
