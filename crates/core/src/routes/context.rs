//! What a route's call gives the function and what the caller gets back: the request's
//! [`HttpContext`], the input each contract gets from it (Dispatch's `httpContext` for code
//! functions, OpenWhisk's `__ow_*` parameters, headers forwarded to Direktiv HTTP functions),
//! and the HTTP answer made of the output (JSON, or a raw `{statusCode, headers, body}`).
//! See `docs/ROUTES.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The HTTP request that caused a call, as the function and the run record see it (without
/// the body, which travels as the call's input).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpContext {
    /// The route's name.
    pub route: String,
    /// The request method, upper case.
    pub method: String,
    /// The path the route matched: below `/ns/{namespace}`, or the whole path on a host route.
    pub path: String,
    /// The path parameters (`{id}`; a final `*` gives `*`), decoded.
    pub params: BTreeMap<String, String>,
    /// The query string as sent, without `?` (empty when none).
    pub raw_query: String,
    /// The query parameters, decoded; a repeated one keeps its first value.
    pub query: BTreeMap<String, String>,
    /// The request headers, names lower case, repeated ones joined with `, `; without
    /// hop-by-hop headers and the route's own credentials.
    pub headers: BTreeMap<String, String>,
    /// The client's address (`ip:port`).
    pub remote_addr: String,
    /// The `Host` the request named, without the port (when it had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}
