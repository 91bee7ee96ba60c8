//! HTTP routes: a namespace's public URLs for its functions and flows (webhooks, web actions,
//! an API gateway). This module holds the route's model, what the API takes and shows, and
//! the managing operations; the gateway that serves routes is `crate::routes::table` (which
//! route answers a request), `auth` (its credentials check), `limits` (rate and size) and
//! `context` (what the function gets and what the caller gets back).
//!
//! The contract of every shape here is `docs/ROUTES.md`'s.

pub mod auth;
pub mod context;
pub mod credentials;
pub mod limits;
pub mod manage;
pub mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use table::RouteTable;

/// A route as stored: its credentials are hashes (see [`credentials`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The path below `/ns/{namespace}` (and on each of `hosts`): literal segments,
    /// `{param}` segments, and an optional final `*` that matches the rest (prefix match).
    pub path: String,
    /// The methods it answers (upper case); empty answers every method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Host names that also serve the route at `path` itself (lower case, no port).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// What it calls.
    pub target: RouteTarget,
    /// Who may call it.
    #[serde(default)]
    pub auth: StoredAuth,
    /// Cross-origin access; `None` answers no preflight and adds no CORS header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// Whether an output `{statusCode, headers, body[, isBase64Encoded]}` is the HTTP answer.
    #[serde(default)]
    pub raw_response: bool,
    /// Body size, rate and time limits.
    #[serde(default)]
    pub limits: RouteLimits,
    /// A disabled route answers 404 as if it did not exist.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// What a route calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum RouteTarget {
    /// A function of the route's namespace, by name.
    Function(String),
    /// A flow of the route's namespace, by path (e.g. `/hooks/push`).
    Flow(String),
}

/// A route's authentication as stored (hashes only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StoredAuth {
    /// Public.
    #[default]
    None,
    /// A faasbox token of the route's namespace with role invoke or admin (or a server admin's).
    Token,
    /// HTTP basic authentication: user name → password hash ([`credentials::hash_password`]).
    Basic {
        /// User name → Argon2id hash.
        users: BTreeMap<String, String>,
    },
    /// An API key in a header (default `X-API-Key`) or, when `query` is set, that query
    /// parameter: key name → key hash ([`credentials::hash_key`]).
    ApiKey {
        /// The header that carries the key.
        #[serde(default = "default_key_header")]
        header: String,
        /// When set, the query parameter that carries the key instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        /// Key name → SHA-256 hex.
        keys: BTreeMap<String, String>,
    },
    /// An HMAC-SHA256 of the raw body with the namespace secret `secret`, hex, in `header`
    /// after `prefix` (GitHub's `X-Hub-Signature-256: sha256=…` by default).
    HmacSha256 {
        /// The namespace secret that signs.
        secret: String,
        /// The header that carries the signature.
        #[serde(default = "default_hmac_header")]
        header: String,
        /// What comes before the hex signature.
        #[serde(default = "default_hmac_prefix")]
        prefix: String,
    },
    /// Slack's signed requests: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret,
    /// "v0:{X-Slack-Request-Timestamp}:{body}"))`, the timestamp within `max_age_seconds`.
    Slack {
        /// The namespace secret that signs.
        secret: String,
        /// How old a request's timestamp may be, seconds.
        #[serde(default = "default_slack_age")]
        max_age_seconds: u64,
    },
}

/// `api-key`'s default header.
pub fn default_key_header() -> String {
    "X-API-Key".into()
}
/// `hmac-sha256`'s default header (GitHub's).
pub fn default_hmac_header() -> String {
    "X-Hub-Signature-256".into()
}
/// `hmac-sha256`'s default prefix (GitHub's).
pub fn default_hmac_prefix() -> String {
    "sha256=".into()
}
/// `slack`'s default replay window, seconds (Slack's advice).
pub fn default_slack_age() -> u64 {
    300
}

/// A route's CORS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Allowed origins (`*` for any).
    #[serde(default)]
    pub origins: Vec<String>,
    /// Allowed methods; empty means the route's methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default)]
    pub headers: Vec<String>,
    /// `Access-Control-Max-Age` of preflight answers, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

/// A route's limits; `None` takes the default named in `docs/ROUTES.md`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteLimits {
    /// The largest request body, bytes (at most the server's `--max-input-bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// Requests per second per client address (token bucket refill rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    /// The bucket's size (burst); default: the rate rounded up, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// How long a blocking call through the route may take before the caller gets 202 with
    /// the run id (at most the server's `--blocking-timeout`), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

impl StoredAuth {
    /// The kind's name as the CLI and API say it.
    pub fn kind(&self) -> &'static str {
        match self {
            StoredAuth::None => "none",
            StoredAuth::Token => "token",
            StoredAuth::Basic { .. } => "basic",
            StoredAuth::ApiKey { .. } => "api-key",
            StoredAuth::HmacSha256 { .. } => "hmac-sha256",
            StoredAuth::Slack { .. } => "slack",
        }
    }
}

/// Path prefixes a route on a host can never take: the API's own (routes never shadow it).
pub const RESERVED_PREFIXES: &[&str] = &["/api", "/v1", "/metrics", "/ns", "/ui"];
