//! The web UI's session as a credential: a request that came in as `/ui/api/…` (marked
//! [`ViaUi`] by `ui::rewrite`) without a bearer token is the caller of its `faasbox_session`
//! cookie's session, if it carries that session's CSRF token in `X-Faasbox-Csrf` (on every
//! method). Signing in and out is `ui::session`'s.

use axum::http::{header, HeaderMap, StatusCode};

use super::codes;
use crate::error::ApiError;
use faasbox_core::auth::sessions::SessionInfo;
use faasbox_core::auth::Principal;
use faasbox_core::state::AppState;

/// The session cookie's name (the gateway never forwards it to functions).
pub const COOKIE: &str = faasbox_core::routes::context::UI_SESSION_COOKIE;
/// The header that carries the session's CSRF token on every `/ui/api/…` request.
pub const CSRF_HEADER: &str = "x-faasbox-csrf";

/// Marks a request that came in as `/ui/api/…` (or `/ui/metrics`): the token middleware then
/// also accepts the session cookie with its CSRF header.
#[derive(Debug, Clone, Copy)]
pub struct ViaUi;

/// The caller of a `/ui/api/…` request without a bearer token: the session of its cookie,
/// if its `X-Faasbox-Csrf` header is that session's CSRF token (on every method: a page that
/// holds only the cookie can neither read nor change anything), and the session's token
/// still exists. Its idle time restarts.
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Principal, String), ApiError> {
    let (principal, name, info, _) = session(state, headers).await?;
    csrf_matches(headers, &info)?;
    Ok((principal, name))
}

/// The live session of the request's cookie, its caller, and its id; 401 without one.
pub async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Principal, String, SessionInfo, String), ApiError> {
    let id = cookie(headers).ok_or_else(|| signed_out("no session: sign in at /ui/signin"))?;
    let info = state
        .sessions
        .find(&*state.store, &id)
        .await?
        .ok_or_else(|| {
            signed_out("the session has ended (signed out or expired): sign in again at /ui/signin")
        })?;
    let Some((principal, name)) = state.tokens.check_hash(&info.token_hash) else {
        state.sessions.close(&*state.store, &id).await?;
        return Err(signed_out(
            "the session's token was deleted (or its namespace): sign in again at /ui/signin \
             with a valid token",
        ));
    };
    Ok((principal, name, info, id))
}

/// Whether the request's `X-Faasbox-Csrf` header is the session's CSRF token; 403 if not.
pub fn csrf_matches(headers: &HeaderMap, info: &SessionInfo) -> Result<(), ApiError> {
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
         (answered once, at sign-in) with every request; API clients call /api with \
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
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
    fn csrf_tokens_compare_whole() {
        assert!(same_bytes(b"abcd", b"abcd"));
        assert!(!same_bytes(b"abcd", b"abce"));
        assert!(!same_bytes(b"abc", b"abcd"));
        assert!(!same_bytes(b"", b"abcd"));
    }
}
