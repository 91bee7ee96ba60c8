//! Keyset paging of the lists the web UI pages through (runs, flow instances, events): a page
//! is asked with `before=<key of the last row seen>`; a full page answers the header
//! `Faasbox-Next` with its last row's key. The body stays a bare array.

use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;

/// The header naming the key to pass as `before` for the next page.
pub const NEXT_HEADER: HeaderName = HeaderName::from_static("faasbox-next");

/// `rows` as a JSON array; with `Faasbox-Next` (the last row's key) when the page is full.
pub fn page<T: Serialize>(rows: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Response {
    let next = (limit > 0 && rows.len() >= limit)
        .then(|| rows.last().map(&key))
        .flatten()
        .and_then(|k| HeaderValue::from_str(&k).ok());
    let mut response = Json(rows).into_response();
    if let Some(next) = next {
        response.headers_mut().insert(NEXT_HEADER, next);
    }
    response
}

/// The 400 for a `before` that names no row of the list in namespace `ns` (another
/// namespace's row is no row of it: the answer does not say whether it exists elsewhere).
pub fn unknown_before(what: &str, ns: &str, before: &str) -> ApiError {
    ApiError::bad_request(format!(
        "before '{}' is not {what} of namespace {ns}: pass the Faasbox-Next header of the \
         previous page (or leave before out for the first page)",
        before.escape_debug()
    ))
}
