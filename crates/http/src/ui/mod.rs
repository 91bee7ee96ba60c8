//! The web UI's HTTP side: `/` redirects to `/ui/`, `/ui/assets/{file}` serves the embedded
//! files, and every other `GET /ui/…` answers the one page shell (`index.html`), whose
//! JavaScript routes on the client, so each page has its own URL. The UI reads and changes
//! everything through the API, under `/ui/api/v1/…` (see `docs/UI.md`).
//!
//! Every UI answer carries a Content-Security-Policy that allows only the server's own
//! scripts, styles and connections.
//!
//! `/ui/session` is the sign-in ([`session`]). [`rewrite`], in front of the router, turns
//! `/ui/api/…` into `/api/…` (and `/ui/metrics` into `/metrics`) marked [`ViaUi`], so the
//! token middleware accepts the session cookie with its CSRF header there.

pub mod assets;
pub mod session;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::session::ViaUi;
use crate::error::ApiError;
use faasbox_core::state::AppState;

/// Where the UI lives.
pub const UI_PREFIX: &str = "/ui";
/// Where the UI's own files live.
const ASSETS_PREFIX: &str = "/ui/assets/";
/// Where the UI calls the API (`/ui/api/v1/…` is `/api/v1/…`).
pub const UI_API_PREFIX: &str = "/ui/api/";

/// The policy of every UI answer: the server's own scripts, styles and connections only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// Where the UI reads the server's metrics (`/metrics`, admins only).
pub const UI_METRICS_PATH: &str = "/ui/metrics";

/// Runs in front of the router (routing happens after it): `/ui/api/…` becomes `/api/…` and
/// `/ui/metrics` becomes `/metrics`, the query kept, marked [`ViaUi`].
pub async fn rewrite(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api_path = match path.strip_prefix(UI_API_PREFIX) {
        Some(rest) => Some(format!("/api/{rest}")),
        None if path == UI_METRICS_PATH => Some(faasbox_core::metrics::PATH.to_string()),
        None => None,
    };
    if let Some(api_path) = api_path {
        let target = match request.uri().query() {
            Some(query) => format!("{api_path}?{query}"),
            None => api_path,
        };
        let mut parts = request.uri().clone().into_parts();
        let rewritten = target.parse().ok().and_then(|pq| {
            parts.path_and_query = Some(pq);
            Uri::from_parts(parts).ok()
        });
        let Some(uri) = rewritten else {
            return ApiError::bad_request("the request's path cannot be read").into_response();
        };
        *request.uri_mut() = uri;
        request.extensions_mut().insert(ViaUi);
    }
    next.run(request).await
}

/// The middleware in front of the gateway and the API: UI requests are answered here,
/// everything else goes on.
pub async fn divert(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if request.uri().path() == session::SESSION_PATH {
        return secure(session::serve(&state, request).await);
    }
    match answer(&request) {
        Some(response) => secure(response),
        None => next.run(request).await,
    }
}

fn answer(request: &Request) -> Option<Response> {
    let path = request.uri().path();
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    if path == "/" && reading {
        return Some(redirect("/ui/"));
    }
    if path == "/favicon.ico" && reading {
        return Some(asset(request, "favicon.svg"));
    }
    if path == UI_PREFIX && reading {
        return Some(redirect("/ui/"));
    }
    if path.starts_with(UI_API_PREFIX) || !path.starts_with("/ui/") {
        return None;
    }
    if let Some(file) = path.strip_prefix(ASSETS_PREFIX) {
        return Some(if reading {
            asset(request, file)
        } else {
            method_not_allowed()
        });
    }
    if reading {
        return Some(asset(request, "index.html"));
    }
    None
}

fn asset(request: &Request, file: &str) -> Response {
    let Some(found) = assets::find(file) else {
        return ApiError::not_found(format!("the UI has no file {file}")).into_response();
    };
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == found.etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(found.bytes));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(found.content_type),
        );
        r
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&found.etag) {
        headers.insert(header::ETAG, tag);
    }
    // Revalidated at each load (a 304 is cheap), so a new server's files show at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn method_not_allowed() -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        faasbox_core::failure::codes::BAD_REQUEST,
        "the UI's files are read with GET",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// Adds the UI's security headers to an answer.
pub fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
