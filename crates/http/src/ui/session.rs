//! The web UI's sign-in: `POST /ui/session` (a token in, a session cookie and a CSRF token
//! out), `GET /ui/session` (who is signed in; never the CSRF token), `DELETE /ui/session`
//! (sign-out). How the token middleware finds the caller of a `/ui/api/…` request from the
//! session cookie and the `X-Faasbox-Csrf` header is `auth::session`.
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
use crate::auth::session::{csrf_matches, session, COOKIE};
use crate::error::ApiError;
use faasbox_core::auth::sessions::SessionInfo;
use faasbox_core::auth::tokens;
use faasbox_core::auth::Principal;
use faasbox_core::state::AppState;

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
        Method::GET => show(state, request.headers()).await,
        Method::DELETE => sign_out(state, request.headers()).await,
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
    let Some((principal, name)) = state
        .tokens
        .check_named_or_store(&*state.store, token)
        .await
    else {
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
    let opened = match state
        .sessions
        .open(&*state.store, &tokens::hash(token), &name)
        .await
    {
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
        axum::Json(view(&principal, &name, &opened.info, Csrf::Shown)),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn show(state: &Arc<AppState>, headers: &HeaderMap) -> Response {
    match session(state, headers).await {
        Ok((principal, name, info, _)) => {
            axum::Json(view(&principal, &name, &info, Csrf::Withheld)).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

async fn sign_out(state: &Arc<AppState>, headers: &HeaderMap) -> Response {
    let mut response = match session(state, headers).await {
        Ok((_, _, info, id)) => match csrf_matches(headers, &info) {
            Ok(()) => match state.sessions.close(&*state.store, &id).await {
                Ok(_) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => return ApiError::from(e).into_response(),
            },
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

/// Whether an answer carries the session's CSRF token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Csrf {
    /// Only the sign-in answer: the page keeps it (in its own origin's storage).
    Shown,
    /// `GET /ui/session`: the cookie alone must never yield the CSRF token, or a stolen
    /// cookie would be the whole session.
    Withheld,
}

/// The session as the page reads it.
fn view(principal: &Principal, name: &str, info: &SessionInfo, csrf: Csrf) -> serde_json::Value {
    let principal = match principal {
        Principal::Admin => json!({"kind": "admin"}),
        Principal::Namespace { namespace, role } => {
            json!({"kind": "namespace", "namespace": namespace, "role": role.as_str()})
        }
    };
    let mut view = json!({
        "principal": principal,
        "token_name": name,
        "expires": info.expires,
    });
    if csrf == Csrf::Shown {
        view["csrf"] = json!(info.csrf);
    }
    view
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
}
