//! The web UI's sign-in: `POST /ui/session` (a token in, a session cookie and a CSRF token
//! out), `GET /ui/session` (who is signed in, the CSRF token again), `DELETE /ui/session`
//! (sign-out), and [`caller`], how the token middleware finds the caller of a `/ui/api/…`
//! request from the session cookie and the `X-Faasbox-Csrf` header.
//!
//! The cookie is `Path=/ui; HttpOnly; SameSite=Strict`: the browser sends it only to `/ui/…`,
//! never to the API at `/api` or to the routes the gateway serves. A request from another
//! site (`Origin` of another host, `Sec-Fetch-Site` other than same-origin) is refused.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::codes;
use crate::error::ApiError;
use faasbox_core::auth::sessions::SessionInfo;
use faasbox_core::auth::tokens;
use faasbox_core::auth::Principal;
use faasbox_core::state::AppState;

/// The session cookie's name (the gateway never forwards it to functions).
pub const COOKIE: &str = faasbox_core::routes::context::UI_SESSION_COOKIE;
/// The header that carries the session's CSRF token on every `/ui/api/…` request.
pub const CSRF_HEADER: &str = "x-faasbox-csrf";
/// Where the sign-in is.
pub const SESSION_PATH: &str = "/ui/session";

/// The largest sign-in body read: a token is 68 characters.
const MAX_SIGN_IN_BODY: usize = 4096;

/// Answers a request to [`SESSION_PATH`].
pub async fn serve(state: &Arc<AppState>, request: Request) -> Response {
    if let Err(refused) = same_origin(request.headers()) {
        return refused.into_response();
    }
    let mut response = match *request.method() {
        Method::POST => sign_in(state, request).await,
        Method::GET => show(state, request.headers()),
        Method::DELETE => sign_out(state, request.headers()),
        _ => {
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                faasbox_core::failure::codes::BAD_REQUEST,
                "the session is opened with POST, read with GET and closed with DELETE",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            response
        }
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(state: &Arc<AppState>, request: Request) -> Response {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            faasbox_core::failure::codes::BAD_REQUEST,
            "sign in with Content-Type: application/json and the body {\"token\": \"fbx_…\"}",
        )
        .into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_SIGN_IN_BODY).await else {
        return ApiError::bad_request(format!(
            "the sign-in body is at most {MAX_SIGN_IN_BODY} bytes: {{\"token\": \"fbx_…\"}}"
        ))
        .into_response();
    };
    // The body is not echoed in the error: it holds a token.
    let Ok(SignIn { token }) = serde_json::from_slice::<SignIn>(&bytes) else {
        return ApiError::bad_request(
            "the sign-in body is JSON with the token as a string: {\"token\": \"fbx_…\"}",
        )
        .into_response();
    };
    let token = token.trim();
    let Some((principal, name)) = state.tokens.check_named(token) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::INVALID,
            format!(
                "the token is not valid (unknown, deleted, or its namespace was deleted): sign \
                 in with the admin token (in {} on the server machine) or one made by \
                 `faasbox token create --namespace NS`",
                tokens::admin_token_path(&state.config.data_dir).display()
            ),
        )
        .into_response();
    };
    let opened = match state.sessions.open(&tokens::hash(token), &name) {
        Ok(opened) => opened,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let max_age = state.sessions.limits().lifetime.as_secs();
    let secure = if state.config.ui.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        opened.id
    );
    let mut response = (
        StatusCode::CREATED,
        axum::Json(view(&principal, &name, &opened.info)),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn show(state: &Arc<AppState>, headers: &HeaderMap) -> Response {
    match session(state, headers) {
        Ok((principal, name, info, _)) => {
            axum::Json(view(&principal, &name, &info)).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

fn sign_out(state: &Arc<AppState>, headers: &HeaderMap) -> Response {
    let mut response = match session(state, headers) {
        Ok((_, _, info, id)) => match csrf_matches(headers, &info) {
            Ok(()) => {
                state.sessions.close(&id);
                StatusCode::NO_CONTENT.into_response()
            }
            Err(refused) => return refused.into_response(),
        },
        Err(refused) => refused.into_response(),
    };
    let secure = if state.config.ui.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cleared = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The caller of a `/ui/api/…` request without a bearer token: the session of its cookie,
/// if its `X-Faasbox-Csrf` header is that session's CSRF token (on every method: a page that
/// holds only the cookie can neither read nor change anything), and the session's token
/// still exists. Its idle time restarts.
pub fn caller(state: &AppState, headers: &HeaderMap) -> Result<(Principal, String), ApiError> {
    let (principal, name, info, _) = session(state, headers)?;
    csrf_matches(headers, &info)?;
    Ok((principal, name))
}

/// The live session of the request's cookie, its caller, and its id; 401 without one.
fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Principal, String, SessionInfo, String), ApiError> {
    let id = cookie(headers).ok_or_else(|| signed_out("no session: sign in at /ui/signin"))?;
    let info = state.sessions.find(&id).ok_or_else(|| {
        signed_out("the session has ended (signed out, expired, or the server restarted): sign in again at /ui/signin")
    })?;
    let Some((principal, name)) = state.tokens.check_hash(&info.token_hash) else {
        state.sessions.close(&id);
        return Err(signed_out(
            "the session's token was deleted (or its namespace): sign in again at /ui/signin \
             with a valid token",
        ));
    };
    Ok((principal, name, info, id))
}

fn csrf_matches(headers: &HeaderMap, info: &SessionInfo) -> Result<(), ApiError> {
    let sent = headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if same_bytes(sent, info.csrf.as_bytes()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        codes::CSRF,
        "the X-Faasbox-Csrf header is missing or wrong: the UI sends the session's CSRF token \
         (from GET /ui/session) with every request; API clients call /api with \
         `Authorization: Bearer <token>` instead",
    ))
}

/// Compares in time that depends on the length only (the CSRF token's length is public).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn signed_out(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::SESSION, message)
}

/// The session id of the request's `faasbox_session` cookie.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// Refuses a request another site made: an `Origin` that is not this server's host (or
/// `null`, an opaque origin such as a sandboxed route page), or `Sec-Fetch-Site` other than
/// `same-origin` (or `none`, the user typing the address).
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |why: String| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            format!("{why}: the session is opened and read only by this server's own pages at /ui"),
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if site != "same-origin" && site != "none" {
            return refuse(format!(
                "the request came from another site (Sec-Fetch-Site: {site})"
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if authority.is_none_or(|a| host.is_empty() || !a.eq_ignore_ascii_case(host)) {
            return refuse(format!(
                "the request came from another origin ({origin:?}, this server is {host:?})"
            ));
        }
    }
    Ok(())
}

/// The session as the page reads it.
fn view(principal: &Principal, name: &str, info: &SessionInfo) -> serde_json::Value {
    let principal = match principal {
        Principal::Admin => json!({"kind": "admin"}),
        Principal::Namespace { namespace, role } => {
            json!({"kind": "namespace", "namespace": namespace, "role": role.as_str()})
        }
    };
    json!({
        "principal": principal,
        "token_name": name,
        "expires": info.expires,
        "csrf": info.csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            cookie(&headers(&[("cookie", "a=1; faasbox_session=abc; b=2")])),
            Some("abc".into())
        );
        assert_eq!(
            cookie(&headers(&[
                ("cookie", "a=1"),
                ("cookie", "faasbox_session=x")
            ])),
            Some("x".into())
        );
        assert_eq!(cookie(&headers(&[("cookie", "faasbox_sessionx=1")])), None);
        assert_eq!(cookie(&headers(&[("cookie", "faasbox_session=")])), None);
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn other_sites_are_refused() {
        let host = ("host", "127.0.0.1:8470");
        assert!(same_origin(&headers(&[host])).is_ok());
        assert!(same_origin(&headers(&[host, ("origin", "http://127.0.0.1:8470")])).is_ok());
        assert!(same_origin(&headers(&[host, ("sec-fetch-site", "same-origin")])).is_ok());
        for bad in [
            ("origin", "http://evil.example"),
            ("origin", "null"),
            ("origin", "http://127.0.0.1:8471"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            assert!(same_origin(&headers(&[host, bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(same_bytes(b"abcd", b"abcd"));
        assert!(!same_bytes(b"abcd", b"abce"));
        assert!(!same_bytes(b"abc", b"abcd"));
        assert!(!same_bytes(b"", b"abcd"));
    }
}
