//! Creating, showing, changing and deleting routes: what the API takes (credentials in clear)
//! checked and turned into a [`super::RouteSpec`] (credentials hashed), stored, and the
//! gateway's table reloaded. Every bound is `docs/ROUTES.md`'s; a refusal names the field and
//! the fix, and never repeats a credential.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use zeroize::{Zeroize, Zeroizing};

use faasbox_store::RouteRecord;

use super::{
    credentials, default_hmac_header, default_hmac_prefix, default_key_header, default_slack_age,
    Cors, RouteLimits, RouteSpec, RouteTarget, StoredAuth, RESERVED_PREFIXES,
};
use crate::clock;
use crate::failure::Failure;
use crate::model::{check_name, check_secret_name};
use crate::state::AppState;

/// The longest route path, bytes.
pub const MAX_PATH_BYTES: usize = 512;
/// The most segments of a route path.
pub const MAX_SEGMENTS: usize = 32;
/// The most host names of a route.
pub const MAX_HOSTS: usize = 16;
/// The most users (basic) or keys (api-key) of a route.
pub const MAX_CREDENTIALS: usize = 100;
/// The shortest basic-auth password, bytes.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest password or API key, bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 1024;
/// The highest rate limit, requests per second.
pub const MAX_RATE: f64 = 10_000.0;
/// The largest burst of a rate limit.
pub const MAX_BURST: u32 = 10_000;
/// The most routes of a namespace.
pub const MAX_ROUTES: usize = 1000;
/// The longest replay window of a `slack` route, seconds.
pub const MAX_SLACK_AGE: u64 = 86_400;
/// The most CORS origins, methods or headers of a route (each).
pub const MAX_CORS_ITEMS: usize = 64;
/// The longest CORS `max_age_seconds`.
pub const MAX_CORS_AGE: u64 = 86_400;
/// The methods a route may answer.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A route as the API takes it (`PUT …/routes/{name}`): the stored form's fields, with the
/// credentials in clear.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    /// `/` then segments: literal, `{param}`, or a final `*`.
    pub path: String,
    /// Upper-case methods it answers; empty or absent: every method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Host names that also serve it at `path` (lower case, no port).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `{"function": NAME}` or `{"flow": PATH}`.
    pub target: RouteTarget,
    /// Who may call it; absent: public.
    #[serde(default)]
    pub auth: AuthBody,
    /// Cross-origin access.
    #[serde(default)]
    pub cors: Option<Cors>,
    /// Whether an output `{statusCode, headers, body, isBase64Encoded}` is the answer.
    #[serde(default)]
    pub raw_response: bool,
    /// Body size, rate and time limits.
    #[serde(default)]
    pub limits: RouteLimits,
    /// A disabled route answers 404 as if absent.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A route's authentication as the API takes it: passwords and keys in clear (they are
/// hashed before they are stored, and wiped from memory when this is dropped).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthBody {
    /// Public.
    #[default]
    None,
    /// A faasbox token of the route's namespace (role invoke or admin) or the admin token.
    Token,
    /// HTTP basic authentication.
    Basic {
        /// User name → password (at least 8 bytes).
        users: BTreeMap<String, String>,
    },
    /// An API key in a header or a query parameter.
    ApiKey {
        /// The header that carries the key (default `X-API-Key`).
        #[serde(default = "default_key_header")]
        header: String,
        /// When set, the query parameter that carries the key instead.
        #[serde(default)]
        query: Option<String>,
        /// Key name → key (at least 16 bytes).
        keys: BTreeMap<String, String>,
    },
    /// An HMAC-SHA256 of the raw body, GitHub's form by default.
    HmacSha256 {
        /// The namespace secret that signs.
        secret: String,
        /// The header that carries the signature (default `X-Hub-Signature-256`).
        #[serde(default = "default_hmac_header")]
        header: String,
        /// What comes before the hex signature (default `sha256=`).
        #[serde(default = "default_hmac_prefix")]
        prefix: String,
    },
    /// Slack's signed requests.
    Slack {
        /// The namespace secret that signs (Slack's signing secret).
        secret: String,
        /// How old a request's timestamp may be (default 300).
        #[serde(default = "default_slack_age")]
        max_age_seconds: u64,
    },
}

impl Drop for AuthBody {
    fn drop(&mut self) {
        match self {
            AuthBody::Basic { users } => users.values_mut().for_each(Zeroize::zeroize),
            AuthBody::ApiKey { keys, .. } => keys.values_mut().for_each(Zeroize::zeroize),
            _ => {}
        }
    }
}

/// `PATCH …/routes/{name}`: the top-level fields to change; an absent one is kept. An `auth`
/// given replaces the whole authentication (credentials in clear); `"cors": null` removes CORS.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePatch {
    /// A new path.
    #[serde(default)]
    pub path: Option<String>,
    /// New methods (empty: every method).
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// New host names (empty: none).
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// A new target.
    #[serde(default)]
    pub target: Option<RouteTarget>,
    /// A new authentication, credentials in clear; absent: the stored one is kept.
    #[serde(default)]
    pub auth: Option<AuthBody>,
    /// New CORS settings; `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Cors>)]
    pub cors: Option<Option<Cors>>,
    /// Whether the output is the raw answer.
    #[serde(default)]
    pub raw_response: Option<bool>,
    /// New limits (all of them: an absent limit takes its default).
    #[serde(default)]
    pub limits: Option<RouteLimits>,
    /// `false` disables the route, `true` enables it.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A route as the API shows it: never a hash nor a credential (users and keys by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouteView {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its path below `/ns/{namespace}` (and on its hosts).
    pub path: String,
    /// The methods it answers; empty: every method.
    pub methods: Vec<String>,
    /// Host names that also serve it at `path`.
    pub hosts: Vec<String>,
    /// What it calls.
    pub target: RouteTarget,
    /// Who may call it (no credential).
    pub auth: AuthView,
    /// Its CORS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// Whether the output is the raw answer.
    pub raw_response: bool,
    /// Its limits.
    pub limits: RouteLimits,
    /// Whether it is served.
    pub enabled: bool,
    /// Where it is served: `/ns/{namespace}{path}` on the server, and `http://{host}{path}`
    /// for each host.
    pub urls: Vec<String>,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

/// A route's authentication as shown: its kind and settings, users and keys by name only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthView {
    /// `none`, `token`, `basic`, `api-key`, `hmac-sha256` or `slack`.
    pub kind: String,
    /// `basic`: the user names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// `api-key`: the key names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// `api-key`, `hmac-sha256`: the header checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `api-key`: the query parameter checked, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `hmac-sha256`: what comes before the hex signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `hmac-sha256`, `slack`: the namespace secret that signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `slack`: the replay window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

impl From<&StoredAuth> for AuthView {
    fn from(auth: &StoredAuth) -> Self {
        let mut view = AuthView {
            kind: auth.kind().to_string(),
            ..AuthView::default()
        };
        match auth {
            StoredAuth::None | StoredAuth::Token => {}
            StoredAuth::Basic { users } => view.users = Some(users.keys().cloned().collect()),
            StoredAuth::ApiKey {
                header,
                query,
                keys,
            } => {
                view.keys = Some(keys.keys().cloned().collect());
                view.header = Some(header.clone());
                view.query = query.clone();
            }
            StoredAuth::HmacSha256 {
                secret,
                header,
                prefix,
            } => {
                view.secret = Some(secret.clone());
                view.header = Some(header.clone());
                view.prefix = Some(prefix.clone());
            }
            StoredAuth::Slack {
                secret,
                max_age_seconds,
            } => {
                view.secret = Some(secret.clone());
                view.max_age_seconds = Some(*max_age_seconds);
            }
        }
        view
    }
}

impl RouteView {
    /// The view of a stored route (its spec read).
    pub fn of(record: &RouteRecord) -> Result<RouteView, Failure> {
        let spec = read_spec(record)?;
        Ok(RouteView::from_spec(record, spec))
    }

    fn from_spec(record: &RouteRecord, spec: RouteSpec) -> RouteView {
        let mut urls = vec![format!("/ns/{}{}", record.namespace, spec.path)];
        urls.extend(
            spec.hosts
                .iter()
                .map(|h| format!("http://{h}{}", spec.path)),
        );
        RouteView {
            namespace: record.namespace.clone(),
            name: record.name.clone(),
            auth: AuthView::from(&spec.auth),
            path: spec.path,
            methods: spec.methods,
            hosts: spec.hosts,
            target: spec.target,
            cors: spec.cors,
            raw_response: spec.raw_response,
            limits: spec.limits,
            enabled: spec.enabled,
            urls,
            created: record.created.clone(),
            modified: record.modified.clone(),
        }
    }
}

fn read_spec(record: &RouteRecord) -> Result<RouteSpec, Failure> {
    serde_json::from_str(&record.spec).map_err(|e| {
        Failure::internal(format!(
            "the stored route {}/{} cannot be read ({e}); replace it with `faasbox route \
             create {}/{} …` or delete it",
            record.namespace, record.name, record.namespace, record.name
        ))
    })
}

/// The server's bounds a route's limits are checked against.
#[derive(Debug, Clone, Copy)]
pub struct ServerBounds {
    /// `--max-input-bytes`.
    pub max_input_bytes: u64,
    /// `--blocking-timeout`, whole seconds (at least 1).
    pub blocking_timeout_seconds: u64,
}

impl ServerBounds {
    /// The bounds of this server.
    pub fn of(state: &AppState) -> ServerBounds {
        ServerBounds {
            max_input_bytes: state.config.max_input_bytes as u64,
            blocking_timeout_seconds: state.config.blocking_timeout.as_secs().max(1),
        }
    }
}

/// Creates or replaces route `name` of `namespace`; whether it existed before.
pub async fn put(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    body: RouteBody,
) -> Result<(RouteView, bool), Failure> {
    check_name("route", name).map_err(Failure::invalid)?;
    let mut problems = check_credentials(&body.auth);
    let mut spec = RouteSpec {
        path: body.path.clone(),
        methods: body.methods.clone(),
        hosts: body.hosts.clone(),
        target: body.target.clone(),
        auth: shape_of(&body.auth),
        cors: body.cors.clone(),
        raw_response: body.raw_response,
        limits: body.limits.clone(),
        enabled: body.enabled,
    };
    problems.extend(check_spec(&mut spec, ServerBounds::of(state)));
    refuse(namespace, name, problems)?;
    check_secret(state, namespace, &spec.auth).await?;
    spec.auth = hash(&body.auth).await?;
    save(state, namespace, name, spec).await
}

/// Changes the given fields of route `name` of `namespace`.
pub async fn patch(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    change: RoutePatch,
) -> Result<RouteView, Failure> {
    let record = state
        .store
        .route(namespace, name)
        .await?
        .ok_or_else(|| no_such(namespace, name))?;
    let mut spec = read_spec(&record)?;
    let RoutePatch {
        path,
        methods,
        hosts,
        target,
        auth,
        cors,
        raw_response,
        limits,
        enabled,
    } = change;
    spec.path = path.unwrap_or(spec.path);
    spec.methods = methods.unwrap_or(spec.methods);
    spec.hosts = hosts.unwrap_or(spec.hosts);
    spec.target = target.unwrap_or(spec.target);
    spec.cors = cors.unwrap_or(spec.cors);
    spec.raw_response = raw_response.unwrap_or(spec.raw_response);
    spec.limits = limits.unwrap_or(spec.limits);
    spec.enabled = enabled.unwrap_or(spec.enabled);
    let mut problems = Vec::new();
    if let Some(auth) = &auth {
        problems.extend(check_credentials(auth));
        spec.auth = shape_of(auth);
    }
    problems.extend(check_spec(&mut spec, ServerBounds::of(state)));
    refuse(namespace, name, problems)?;
    check_secret(state, namespace, &spec.auth).await?;
    if let Some(auth) = &auth {
        spec.auth = hash(auth).await?;
    }
    save(state, namespace, name, spec)
        .await
        .map(|(view, _)| view)
}

/// The routes of `namespace`, by name.
pub async fn list(state: &Arc<AppState>, namespace: &str) -> Result<Vec<RouteView>, Failure> {
    state
        .store
        .list_routes(namespace)
        .await?
        .iter()
        .map(RouteView::of)
        .collect()
}

/// Route `name` of `namespace`.
pub async fn get(state: &Arc<AppState>, namespace: &str, name: &str) -> Result<RouteView, Failure> {
    match state.store.route(namespace, name).await? {
        Some(record) => RouteView::of(&record),
        None => Err(no_such(namespace, name)),
    }
}

/// Deletes route `name` of `namespace`; the gateway stops serving it at once.
pub async fn delete(state: &Arc<AppState>, namespace: &str, name: &str) -> Result<(), Failure> {
    let (ns, route) = (namespace.to_string(), name.to_string());
    state
        .to_completion(move |state| async move {
            let _changing = CHANGES.lock().await;
            if !state.store.delete_route(&ns, &route).await? {
                return Err(no_such(&ns, &route));
            }
            state.routes.reload(&state).await
        })
        .await
}

fn no_such(namespace: &str, name: &str) -> Failure {
    Failure::not_found(format!(
        "route {namespace}/{} does not exist; create it with `faasbox route create \
         {namespace}/NAME --path /PATH --function FN` (`faasbox route ls {namespace}` lists them)",
        name.escape_debug()
    ))
}

/// Route changes happen one at a time, so the conflict checks see every other change.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Checks what needs the other routes (the namespace's count, its conflicts, the hosts of other
/// namespaces), stores `spec` and reloads the gateway's table, to the end even if the caller
/// goes away.
async fn save(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    spec: RouteSpec,
) -> Result<(RouteView, bool), Failure> {
    let (ns, route) = (namespace.to_string(), name.to_string());
    state
        .to_completion(move |state| async move {
            let _changing = CHANGES.lock().await;
            if state.store.namespace(&ns).await?.is_none() {
                return Err(Failure::no_such_namespace(&ns));
            }
            let all = state.store.all_routes().await?;
            let existed = all.iter().any(|r| r.namespace == ns && r.name == route);
            let others: Vec<(&RouteRecord, RouteSpec)> = all
                .iter()
                .filter(|r| !(r.namespace == ns && r.name == route))
                // A stored spec that cannot be read conflicts with nothing (it is not served).
                .filter_map(|r| serde_json::from_str(&r.spec).ok().map(|s| (r, s)))
                .collect();
            if !existed {
                let count = all.iter().filter(|r| r.namespace == ns).count();
                if count >= MAX_ROUTES {
                    return Err(Failure::invalid(format!(
                        "namespace {ns} has {count} routes, the most it may have \
                         ({MAX_ROUTES}); delete one (`faasbox route rm {ns}/NAME`) or use a \
                         route with path parameters or a final `*` for several paths"
                    )));
                }
            }
            check_conflicts(&ns, &route, &spec, &others)?;
            let now = clock::now_rfc3339();
            let text = serde_json::to_string(&spec)
                .map_err(|e| Failure::internal(format!("the route cannot be encoded: {e}")))?;
            let record = RouteRecord {
                namespace: ns.clone(),
                name: route.clone(),
                spec: text,
                created: now.clone(),
                modified: now,
            };
            let stored = state.store.put_route(&record).await?;
            state.routes.reload(&state).await.map_err(|f| Failure {
                message: format!(
                    "route {ns}/{route} is stored but the gateway did not take it: {}",
                    f.message
                ),
                ..f
            })?;
            Ok((RouteView::from_spec(&stored, spec), existed))
        })
        .await
}

/// A 400 naming every problem, or nothing.
fn refuse(namespace: &str, name: &str, problems: Vec<String>) -> Result<(), Failure> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "route {namespace}/{name} is invalid: {}",
            problems.join("; ")
        )))
    }
}

/// The secret an `hmac-sha256` or `slack` route signs with must exist in its namespace.
async fn check_secret(
    state: &Arc<AppState>,
    namespace: &str,
    auth: &StoredAuth,
) -> Result<(), Failure> {
    let secret = match auth {
        StoredAuth::HmacSha256 { secret, .. } | StoredAuth::Slack { secret, .. } => secret,
        _ => return Ok(()),
    };
    if state.store.secret(namespace, secret).await?.is_some() {
        return Ok(());
    }
    Err(Failure::invalid(format!(
        "`auth.secret`: namespace {namespace} has no secret '{secret}'; create it first with \
         `faasbox secret set {namespace}/{secret}` (the webhook's signing secret), then the route"
    )))
}

/// Two enabled routes of a namespace with the same pattern and a method in common, or a host
/// that another namespace's route has: 409.
fn check_conflicts(
    namespace: &str,
    name: &str,
    spec: &RouteSpec,
    others: &[(&RouteRecord, RouteSpec)],
) -> Result<(), Failure> {
    for (record, other) in others {
        if record.namespace != namespace {
            if let Some(host) = spec.hosts.iter().find(|h| other.hosts.contains(h)) {
                return Err(Failure::conflict(format!(
                    "host '{host}' belongs to another namespace (a route there serves it); a \
                     host serves one namespace only: pick another host name for route \
                     {namespace}/{name}, or serve it at /ns/{namespace}{} without `hosts`",
                    spec.path
                )));
            }
            continue;
        }
        if !spec.enabled || !other.enabled || pattern_of(&spec.path) != pattern_of(&other.path) {
            continue;
        }
        let common = if spec.methods.is_empty() {
            other.methods.first().cloned()
        } else if other.methods.is_empty() {
            spec.methods.first().cloned()
        } else {
            spec.methods
                .iter()
                .find(|m| other.methods.contains(m))
                .cloned()
        };
        let both_all = spec.methods.is_empty() && other.methods.is_empty();
        if common.is_some() || both_all {
            let method = common.unwrap_or_else(|| "every method".to_string());
            return Err(Failure::conflict(format!(
                "route {namespace}/{name} conflicts with route {namespace}/{}: both answer {method} \
                 at {}; give them different paths or methods, or disable one (`faasbox route \
                 disable {namespace}/{}`)",
                record.name, other.path, record.name
            )));
        }
    }
    Ok(())
}

/// A path's pattern with parameter names left out (`/a/{x}` and `/a/{y}` match the same).
fn pattern_of(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The stored auth's shape, with empty hashes, for the checks that run before hashing.
fn shape_of(auth: &AuthBody) -> StoredAuth {
    match auth {
        AuthBody::None => StoredAuth::None,
        AuthBody::Token => StoredAuth::Token,
        AuthBody::Basic { users } => StoredAuth::Basic {
            users: users.keys().map(|k| (k.clone(), String::new())).collect(),
        },
        AuthBody::ApiKey {
            header,
            query,
            keys,
        } => StoredAuth::ApiKey {
            header: header.clone(),
            query: query.clone(),
            keys: keys.keys().map(|k| (k.clone(), String::new())).collect(),
        },
        AuthBody::HmacSha256 {
            secret,
            header,
            prefix,
        } => StoredAuth::HmacSha256 {
            secret: secret.clone(),
            header: header.clone(),
            prefix: prefix.clone(),
        },
        AuthBody::Slack {
            secret,
            max_age_seconds,
        } => StoredAuth::Slack {
            secret: secret.clone(),
            max_age_seconds: *max_age_seconds,
        },
    }
}

/// The stored auth: passwords hashed with Argon2id (off the async threads: it is slow on
/// purpose), keys with SHA-256.
async fn hash(auth: &AuthBody) -> Result<StoredAuth, Failure> {
    match auth {
        AuthBody::Basic { users } => {
            let clear: Vec<(String, Zeroizing<String>)> = users
                .iter()
                .map(|(u, p)| (u.clone(), Zeroizing::new(p.clone())))
                .collect();
            let users = tokio::task::spawn_blocking(move || {
                clear
                    .iter()
                    .map(|(user, password)| {
                        credentials::hash_password(password)
                            .map(|hash| (user.clone(), hash))
                            .map_err(|e| Failure::internal(e.to_string()))
                    })
                    .collect::<Result<BTreeMap<_, _>, Failure>>()
            })
            .await??;
            Ok(StoredAuth::Basic { users })
        }
        AuthBody::ApiKey {
            header,
            query,
            keys,
        } => Ok(StoredAuth::ApiKey {
            header: header.clone(),
            query: query.clone(),
            keys: keys
                .iter()
                .map(|(name, key)| (name.clone(), credentials::hash_key(key)))
                .collect(),
        }),
        other => Ok(shape_of(other)),
    }
}

/// The problems of the credentials in clear (never repeating one).
pub fn check_credentials(auth: &AuthBody) -> Vec<String> {
    let mut problems = Vec::new();
    match auth {
        AuthBody::Basic { users } => {
            check_count(&mut problems, "auth.users", "user", users.len());
            for (user, password) in users {
                if user.is_empty()
                    || user.len() > 128
                    || user.contains(':')
                    || user.chars().any(char::is_control)
                {
                    problems.push(format!(
                        "`auth.users`: user name '{}' is invalid: use 1-128 characters without \
                         ':' (basic authentication separates the user from the password by it)",
                        user.escape_debug()
                    ));
                }
                check_secret_len(
                    &mut problems,
                    &format!("auth.users.{user}"),
                    "password",
                    password,
                    MIN_PASSWORD_LEN,
                );
            }
        }
        AuthBody::ApiKey { keys, .. } => {
            check_count(&mut problems, "auth.keys", "key", keys.len());
            for (name, key) in keys {
                if let Err(e) = check_name("API key", name) {
                    problems.push(format!("`auth.keys`: {e}"));
                }
                check_secret_len(
                    &mut problems,
                    &format!("auth.keys.{name}"),
                    "API key",
                    key,
                    credentials::MIN_KEY_LEN,
                );
                if !key.bytes().all(|b| b.is_ascii_graphic()) {
                    problems.push(format!(
                        "`auth.keys.{name}`: an API key is sent in a header or a query \
                         parameter: use printable ASCII without spaces (e.g. `openssl rand -hex 24`)"
                    ));
                }
            }
        }
        _ => {}
    }
    problems
}

fn check_count(problems: &mut Vec<String>, field: &str, what: &str, count: usize) {
    if count == 0 {
        problems.push(format!(
            "`{field}`: give at least one {what} (the route would let no one in)"
        ));
    } else if count > MAX_CREDENTIALS {
        problems.push(format!(
            "`{field}`: {count} {what}s given; a route takes at most {MAX_CREDENTIALS}"
        ));
    }
}

fn check_secret_len(problems: &mut Vec<String>, field: &str, what: &str, value: &str, min: usize) {
    if value.len() < min {
        problems.push(format!(
            "`{field}`: a{} {what} must be at least {min} bytes (e.g. `openssl rand -hex 24`)",
            if what.starts_with('A') { "n" } else { "" }
        ));
    } else if value.len() > MAX_CREDENTIAL_BYTES {
        problems.push(format!(
            "`{field}`: a{} {what} holds at most {MAX_CREDENTIAL_BYTES} bytes",
            if what.starts_with('A') { "n" } else { "" }
        ));
    }
}

/// Every problem of `spec` but its credentials, naming the field and the fix; normalizes the
/// methods (upper case), hosts (lower case, no final dot) and a flow target (no leading `/`),
/// and drops repeated methods and hosts.
pub fn check_spec(spec: &mut RouteSpec, bounds: ServerBounds) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = check_path(&spec.path) {
        problems.push(format!("`path`: {e}"));
    }
    spec.methods = normalize_methods(&mut problems, "methods", &spec.methods);
    let mut hosts = Vec::new();
    for given in &spec.hosts {
        let host = given.trim().trim_end_matches('.').to_ascii_lowercase();
        match check_host(&host) {
            Ok(()) if !hosts.contains(&host) => hosts.push(host),
            Ok(()) => {}
            Err(e) => problems.push(format!("`hosts`: {e}")),
        }
    }
    spec.hosts = hosts;
    if spec.hosts.len() > MAX_HOSTS {
        problems.push(format!(
            "`hosts`: {} given; a route takes at most {MAX_HOSTS}",
            spec.hosts.len()
        ));
    }
    if !spec.hosts.is_empty() {
        let first = spec.path.trim_start_matches('/').split('/').next();
        if let Some(prefix) = RESERVED_PREFIXES
            .iter()
            .find(|p| first == Some(p.trim_start_matches('/')))
        {
            problems.push(format!(
                "`path`: a route with hosts cannot take a path under {prefix} (the API's own \
                 paths, served on every host); pick another path"
            ));
        }
    }
    match &mut spec.target {
        RouteTarget::Function(name) => {
            if let Err(e) = check_name("function", name) {
                problems.push(format!("`target.function`: {e}"));
            }
        }
        RouteTarget::Flow(path) => {
            let trimmed = path.trim_start_matches('/').to_string();
            match crate::flows::deployment::check_path(&trimmed) {
                Ok(()) => *path = trimmed,
                Err(e) => problems.push(format!("`target.flow`: {}", e.message)),
            }
        }
    }
    check_auth_settings(&mut problems, &spec.auth);
    if let Some(cors) = &mut spec.cors {
        check_cors(&mut problems, cors);
    }
    check_limits(&mut problems, &spec.limits, bounds);
    problems
}

fn normalize_methods(problems: &mut Vec<String>, field: &str, given: &[String]) -> Vec<String> {
    let mut methods = Vec::new();
    for method in given {
        let upper = method.trim().to_ascii_uppercase();
        if !METHODS.contains(&upper.as_str()) {
            problems.push(format!(
                "`{field}`: '{}' is not a method a route answers; use {}",
                method.escape_debug(),
                METHODS.join(", ")
            ));
        } else if !methods.contains(&upper) {
            methods.push(upper);
        }
    }
    methods
}

/// A route path: `/` then segments (see `docs/ROUTES.md`).
pub fn check_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "'{}' must start with '/' (e.g. /hooks/github)",
            path.escape_debug()
        ));
    };
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "{} bytes; a route path holds at most {MAX_PATH_BYTES}",
            path.len()
        ));
    }
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(format!(
            "{} segments; a route path has at most {MAX_SEGMENTS}",
            segments.len()
        ));
    }
    let mut params = BTreeSet::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if segment.is_empty() {
            if !last {
                return Err(format!(
                    "'{}' has an empty segment ('//'); only a final '/' may end it",
                    path.escape_debug()
                ));
            }
        } else if *segment == "*" {
            if !last {
                return Err(format!(
                    "'{}': `*` matches the rest of the path, so it may only be the last segment",
                    path.escape_debug()
                ));
            }
        } else if let Some(inner) = segment.strip_prefix('{') {
            let Some(param) = inner.strip_suffix('}') else {
                return Err(format!(
                    "segment '{}' opens a parameter with '{{' but does not end with '}}': a \
                     parameter is a whole segment, e.g. /orders/{{id}}",
                    segment.escape_debug()
                ));
            };
            check_name("path parameter", param)?;
            if !params.insert(param) {
                return Err(format!(
                    "parameter '{param}' appears twice; give each parameter its own name"
                ));
            }
        } else if *segment == "." || *segment == ".." {
            return Err(format!(
                "'{}' has a '{segment}' segment; spell the path out without it",
                path.escape_debug()
            ));
        } else if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._~!$&'()+,;=:@-".contains(*c)))
        {
            return Err(format!(
                "segment '{}' has '{}': literal segments take A-Z, a-z, 0-9 and \
                 ._~!$&'()+,;=:@- (a parameter is a whole segment `{{name}}`, a prefix match a \
                 final `*`)",
                segment.escape_debug(),
                bad.escape_debug()
            ));
        }
    }
    Ok(())
}

/// A host name (lower case, no port): labels of a-z, 0-9 and '-'.
fn check_host(host: &str) -> Result<(), String> {
    if host.contains(':') {
        return Err(format!(
            "'{}' has a port; give the host name alone (any port is served)",
            host.escape_debug()
        ));
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a host name: use labels of a-z, 0-9 and '-' separated by '.' (e.g. \
             hooks.example.com)",
            host.escape_debug()
        ))
    }
}

/// An HTTP header name (a token).
fn valid_header(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_auth_settings(problems: &mut Vec<String>, auth: &StoredAuth) {
    let header = |problems: &mut Vec<String>, name: &str| {
        if !valid_header(name) {
            problems.push(format!(
                "`auth.header`: '{}' is not a header name (letters, digits and \
                 !#$%&'*+-.^_`|~, e.g. X-API-Key)",
                name.escape_debug()
            ));
        }
    };
    let secret = |problems: &mut Vec<String>, name: &str| {
        if let Err(e) = check_secret_name(name) {
            problems.push(format!("`auth.secret`: {e}"));
        }
    };
    match auth {
        StoredAuth::None | StoredAuth::Token | StoredAuth::Basic { .. } => {}
        StoredAuth::ApiKey {
            header: name,
            query,
            ..
        } => {
            header(problems, name);
            if let Some(query) = query {
                let valid = !query.is_empty()
                    && query.len() <= 128
                    && query
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
                if !valid {
                    problems.push(format!(
                        "`auth.query`: '{}' is not a query parameter name (1-128 of A-Z, a-z, \
                         0-9 and -._~, e.g. api_key)",
                        query.escape_debug()
                    ));
                }
            }
        }
        StoredAuth::HmacSha256 {
            secret: name,
            header: header_name,
            prefix,
        } => {
            secret(problems, name);
            header(problems, header_name);
            if prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
                problems.push(
                    "`auth.prefix`: use at most 64 printable ASCII characters without spaces \
                     (GitHub's is sha256=, empty for a bare hex signature)"
                        .to_string(),
                );
            }
        }
        StoredAuth::Slack {
            secret: name,
            max_age_seconds,
        } => {
            secret(problems, name);
            if !(1..=MAX_SLACK_AGE).contains(max_age_seconds) {
                problems.push(format!(
                    "`auth.max_age_seconds`: {max_age_seconds} is out of range; give 1 to \
                     {MAX_SLACK_AGE} (Slack's advice is 300)"
                ));
            }
        }
    }
}

fn check_cors(problems: &mut Vec<String>, cors: &mut Cors) {
    if cors.origins.is_empty() {
        problems.push(
            "`cors.origins`: give at least one origin (e.g. https://app.example.com, or `*` for \
             any)"
                .to_string(),
        );
    }
    for (field, count) in [
        ("origins", cors.origins.len()),
        ("methods", cors.methods.len()),
        ("headers", cors.headers.len()),
    ] {
        if count > MAX_CORS_ITEMS {
            problems.push(format!(
                "`cors.{field}`: {count} given; at most {MAX_CORS_ITEMS}"
            ));
        }
    }
    for origin in &cors.origins {
        if origin != "*" && !valid_origin(origin) {
            problems.push(format!(
                "`cors.origins`: '{}' is not an origin: give scheme://host[:port] without a \
                 path (e.g. https://app.example.com), or `*` for any",
                origin.escape_debug()
            ));
        }
    }
    cors.methods = normalize_methods(problems, "cors.methods", &cors.methods);
    for header in &cors.headers {
        if !valid_header(header) {
            problems.push(format!(
                "`cors.headers`: '{}' is not a header name (e.g. Content-Type)",
                header.escape_debug()
            ));
        }
    }
    if let Some(age) = cors.max_age_seconds {
        if age > MAX_CORS_AGE {
            problems.push(format!(
                "`cors.max_age_seconds`: {age} is too long; give at most {MAX_CORS_AGE}"
            ));
        }
    }
}

fn valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        Some(_) => return false,
        None => rest,
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b))
}

fn check_limits(problems: &mut Vec<String>, limits: &RouteLimits, bounds: ServerBounds) {
    if let Some(bytes) = limits.max_body_bytes {
        if !(1..=bounds.max_input_bytes).contains(&bytes) {
            problems.push(format!(
                "`limits.max_body_bytes`: {bytes} is out of range; give 1 to {} (the server's \
                 --max-input-bytes)",
                bounds.max_input_bytes
            ));
        }
    }
    if let Some(rate) = limits.rate_per_second {
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            problems.push(format!(
                "`limits.rate_per_second`: {rate} is out of range; give more than 0, at most \
                 {MAX_RATE} (e.g. 0.5 for one request every 2 seconds)"
            ));
        }
    }
    if let Some(burst) = limits.burst {
        if !(1..=MAX_BURST).contains(&burst) {
            problems.push(format!(
                "`limits.burst`: {burst} is out of range; give 1 to {MAX_BURST}"
            ));
        }
        if limits.rate_per_second.is_none() {
            problems.push(
                "`limits.burst`: a burst needs a rate (`limits.rate_per_second`, `--rate`)"
                    .to_string(),
            );
        }
    }
    if let Some(seconds) = limits.timeout_seconds {
        if !(1..=bounds.blocking_timeout_seconds).contains(&seconds) {
            problems.push(format!(
                "`limits.timeout_seconds`: {seconds} is out of range; give 1 to {} (the \
                 server's --blocking-timeout)",
                bounds.blocking_timeout_seconds
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: ServerBounds = ServerBounds {
        max_input_bytes: 1024,
        blocking_timeout_seconds: 30,
    };

    fn spec(path: &str) -> RouteSpec {
        RouteSpec {
            path: path.into(),
            methods: Vec::new(),
            hosts: Vec::new(),
            target: RouteTarget::Function("echo".into()),
            auth: StoredAuth::None,
            cors: None,
            raw_response: false,
            limits: RouteLimits::default(),
            enabled: true,
        }
    }

    fn problems_of(mut s: RouteSpec) -> Vec<String> {
        check_spec(&mut s, BOUNDS)
    }

    #[test]
    fn good_paths_pass_and_bad_ones_say_why() {
        for good in [
            "/",
            "/hooks/github",
            "/hooks/",
            "/orders/{id}",
            "/orders/{id}/items/{item}",
            "/static/*",
            "/*",
            "/a.b~c!$&'()+,;=:@-",
        ] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("hooks", "must start with '/'"),
            ("/a//b", "empty segment"),
            ("/a/*/b", "last segment"),
            ("/a/{id", "does not end"),
            ("/a/{Id}", "path parameter name"),
            ("/a/{id}/{id}", "twice"),
            ("/a/../b", "'..' segment"),
            ("/a/./b", "'.' segment"),
            ("/a b", "has ' '"),
            ("/a%20b", "has '%'"),
            ("/a/x{id}", "has '{'"),
        ] {
            let e = check_path(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert!(check_path(&long).unwrap_err().contains("at most 512"));
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert!(check_path(&deep).unwrap_err().contains("at most 32"));
        assert_eq!(check_path(&"/a".repeat(MAX_SEGMENTS)), Ok(()));
    }

    #[test]
    fn methods_and_hosts_are_normalized_and_checked() {
        let mut s = spec("/x");
        s.methods = vec!["post".into(), "GET".into(), "POST".into()];
        s.hosts = vec!["Hooks.Example.COM.".into(), "hooks.example.com".into()];
        assert!(check_spec(&mut s, BOUNDS).is_empty());
        assert_eq!(s.methods, ["POST", "GET"]);
        assert_eq!(s.hosts, ["hooks.example.com"]);

        let mut s = spec("/x");
        s.methods = vec!["FETCH".into()];
        s.hosts = vec!["example.com:8080".into(), "bad_host".into()];
        let problems = check_spec(&mut s, BOUNDS).join("\n");
        assert!(problems.contains("`methods`: 'FETCH'"), "{problems}");
        assert!(problems.contains("has a port"), "{problems}");
        assert!(
            problems.contains("'bad_host' is not a host name"),
            "{problems}"
        );

        let mut s = spec("/x");
        s.hosts = (0..=MAX_HOSTS).map(|i| format!("h{i}.example")).collect();
        assert!(check_spec(&mut s, BOUNDS)[0].contains("at most 16"));
    }

    #[test]
    fn a_host_route_cannot_take_the_apis_paths() {
        for path in ["/api/x", "/v1", "/metrics", "/ns/a/b", "/ui/"] {
            let mut s = spec(path);
            s.hosts = vec!["example.com".into()];
            let problems = check_spec(&mut s, BOUNDS);
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains("cannot take a path under")),
                "{path}: {problems:?}"
            );
            // Without hosts it is served under /ns/{ns} only: fine.
            assert!(problems_of(spec(path)).is_empty(), "{path}");
        }
        let mut s = spec("/apidocs");
        s.hosts = vec!["example.com".into()];
        assert!(check_spec(&mut s, BOUNDS).is_empty());
    }

    #[test]
    fn targets_are_names_and_a_flow_path_loses_its_slash() {
        let mut s = spec("/x");
        s.target = RouteTarget::Flow("/hooks/push".into());
        assert!(check_spec(&mut s, BOUNDS).is_empty());
        assert_eq!(s.target, RouteTarget::Flow("hooks/push".into()));
        s.target = RouteTarget::Flow("hooks//push".into());
        assert!(check_spec(&mut s, BOUNDS)[0].starts_with("`target.flow`"));
        s.target = RouteTarget::Function("Echo".into());
        assert!(check_spec(&mut s, BOUNDS)[0].starts_with("`target.function`"));
    }

    #[test]
    fn limits_are_bounded_by_the_server() {
        let mut s = spec("/x");
        s.limits = RouteLimits {
            max_body_bytes: Some(1024),
            rate_per_second: Some(0.5),
            burst: Some(10),
            timeout_seconds: Some(30),
        };
        assert!(problems_of(s.clone()).is_empty());
        for (limits, field) in [
            (
                RouteLimits {
                    max_body_bytes: Some(1025),
                    ..Default::default()
                },
                "limits.max_body_bytes",
            ),
            (
                RouteLimits {
                    max_body_bytes: Some(0),
                    ..Default::default()
                },
                "limits.max_body_bytes",
            ),
            (
                RouteLimits {
                    rate_per_second: Some(0.0),
                    ..Default::default()
                },
                "limits.rate_per_second",
            ),
            (
                RouteLimits {
                    rate_per_second: Some(f64::NAN),
                    ..Default::default()
                },
                "limits.rate_per_second",
            ),
            (
                RouteLimits {
                    rate_per_second: Some(10_001.0),
                    ..Default::default()
                },
                "limits.rate_per_second",
            ),
            (
                RouteLimits {
                    rate_per_second: Some(1.0),
                    burst: Some(0),
                    ..Default::default()
                },
                "limits.burst",
            ),
            (
                RouteLimits {
                    burst: Some(5),
                    ..Default::default()
                },
                "limits.burst",
            ),
            (
                RouteLimits {
                    timeout_seconds: Some(31),
                    ..Default::default()
                },
                "limits.timeout_seconds",
            ),
        ] {
            s.limits = limits;
            let problems = problems_of(s.clone());
            assert_eq!(problems.len(), 1, "{field}: {problems:?}");
            assert!(
                problems[0].starts_with(&format!("`{field}`")),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn cors_is_checked() {
        let mut s = spec("/x");
        s.cors = Some(Cors {
            origins: vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into(),
            ],
            methods: vec!["get".into()],
            headers: vec!["Content-Type".into()],
            max_age_seconds: Some(600),
        });
        assert!(check_spec(&mut s, BOUNDS).is_empty());
        assert_eq!(
            s.cors.as_ref().map(|c| c.methods.clone()),
            Some(vec!["GET".into()])
        );
        s.cors = Some(Cors {
            origins: vec!["app.example.com".into(), "https://a.example/path".into()],
            headers: vec!["Bad Header".into()],
            max_age_seconds: Some(MAX_CORS_AGE + 1),
            ..Default::default()
        });
        let problems = check_spec(&mut s, BOUNDS);
        assert_eq!(problems.len(), 4, "{problems:?}");
        s.cors = Some(Cors::default());
        assert!(check_spec(&mut s, BOUNDS)[0].starts_with("`cors.origins`"));
    }

    #[test]
    fn credentials_are_checked_without_repeating_them() {
        let body: AuthBody = serde_json::from_value(serde_json::json!({
            "kind": "basic", "users": {"alice": "short1", "bo:b": "long-enough-pass"}
        }))
        .unwrap();
        let problems = check_credentials(&body).join("\n");
        assert!(problems.contains("`auth.users.alice`: a password must be at least 8"));
        assert!(problems.contains("user name 'bo:b'"));
        assert!(!problems.contains("short1") && !problems.contains("long-enough-pass"));

        let body: AuthBody = serde_json::from_value(serde_json::json!({
            "kind": "api-key", "keys": {"ci": "0123456789", "ok": "0123456789abcdef", "sp": "0123456789 abcdef"}
        }))
        .unwrap();
        let problems = check_credentials(&body);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("`auth.keys.ci`: an API key must be at least 16"));
        assert!(problems[1].starts_with("`auth.keys.sp`"));

        let body: AuthBody =
            serde_json::from_value(serde_json::json!({"kind": "basic", "users": {}})).unwrap();
        assert!(check_credentials(&body)[0].contains("at least one user"));
        let users: BTreeMap<String, String> = (0..=MAX_CREDENTIALS)
            .map(|i| (format!("u{i}"), "password1".to_string()))
            .collect();
        let body = AuthBody::Basic { users };
        assert!(check_credentials(&body)[0].contains("at most 100"));
    }

    #[test]
    fn auth_settings_are_checked_and_defaulted() {
        let body: AuthBody =
            serde_json::from_value(serde_json::json!({"kind": "hmac-sha256", "secret": "gh"}))
                .unwrap();
        assert_eq!(
            shape_of(&body),
            StoredAuth::HmacSha256 {
                secret: "gh".into(),
                header: "X-Hub-Signature-256".into(),
                prefix: "sha256=".into()
            }
        );
        let mut s = spec("/x");
        s.auth = StoredAuth::ApiKey {
            header: "X API".into(),
            query: Some("a&b".into()),
            keys: BTreeMap::new(),
        };
        let problems = check_spec(&mut s, BOUNDS);
        assert!(problems[0].starts_with("`auth.header`"), "{problems:?}");
        assert!(problems[1].starts_with("`auth.query`"), "{problems:?}");
        s.auth = StoredAuth::Slack {
            secret: "../x".into(),
            max_age_seconds: 0,
        };
        let problems = check_spec(&mut s, BOUNDS);
        assert!(problems[0].starts_with("`auth.secret`"), "{problems:?}");
        assert!(
            problems[1].starts_with("`auth.max_age_seconds`"),
            "{problems:?}"
        );
        // Unknown fields are refused, naming them.
        let e = serde_json::from_value::<AuthBody>(
            serde_json::json!({"kind": "basic", "users": {}, "password": "x"}),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("unknown field `password`"), "{e}");
    }

    #[test]
    fn the_view_shows_names_never_hashes() {
        let mut s = spec("/hooks/{id}");
        s.hosts = vec!["hooks.example.com".into()];
        s.auth = StoredAuth::Basic {
            users: BTreeMap::from([("alice".into(), "$argon2id$hash".into())]),
        };
        let record = RouteRecord {
            namespace: "demo".into(),
            name: "gh".into(),
            spec: serde_json::to_string(&s).unwrap(),
            created: "c".into(),
            modified: "m".into(),
        };
        let view = RouteView::of(&record).unwrap();
        assert_eq!(
            view.urls,
            ["/ns/demo/hooks/{id}", "http://hooks.example.com/hooks/{id}"]
        );
        let text = serde_json::to_string(&view).unwrap();
        assert!(!text.contains("argon2"), "{text}");
        assert_eq!(view.auth.users, Some(vec!["alice".to_string()]));
    }

    fn record(ns: &str, name: &str) -> RouteRecord {
        RouteRecord {
            namespace: ns.into(),
            name: name.into(),
            spec: String::new(),
            created: String::new(),
            modified: String::new(),
        }
    }

    #[test]
    fn same_pattern_and_a_common_method_conflict() {
        let a = record("demo", "a");
        let mut other = spec("/orders/{id}");
        other.methods = vec!["GET".into()];
        let mut new = spec("/orders/{order}");
        new.methods = vec!["POST".into()];
        let others = vec![(&a, other.clone())];
        assert!(check_conflicts("demo", "b", &new, &others).is_ok());
        new.methods.push("GET".into());
        let e = check_conflicts("demo", "b", &new, &others).unwrap_err();
        assert_eq!(e.kind, crate::failure::FailureKind::Conflict);
        assert!(e.message.contains("both answer GET"), "{}", e.message);
        new.methods.clear();
        assert!(check_conflicts("demo", "b", &new, &others).is_err());
        // A disabled one conflicts with nothing; nor does another namespace's route.
        new.enabled = false;
        assert!(check_conflicts("demo", "b", &new, &others).is_ok());
        new.enabled = true;
        assert!(check_conflicts("other", "b", &new, &others).is_ok());
        let mut all = spec("/orders/{id}");
        all.enabled = true;
        let mut new_all = spec("/orders/{x}");
        new_all.methods.clear();
        assert!(check_conflicts("demo", "b", &new_all, &[(&a, all)]).is_err());
    }

    #[test]
    fn a_host_belongs_to_one_namespace() {
        let a = record("tenant-a", "r");
        let mut theirs = spec("/x");
        theirs.hosts = vec!["shop.example.com".into()];
        theirs.enabled = false;
        let mut mine = spec("/y");
        mine.hosts = vec!["shop.example.com".into()];
        let e = check_conflicts("tenant-b", "r", &mine, &[(&a, theirs.clone())]).unwrap_err();
        assert_eq!(e.kind, crate::failure::FailureKind::Conflict);
        assert!(e.message.contains("'shop.example.com'"), "{}", e.message);
        assert!(!e.message.contains("tenant-a"), "{}", e.message);
        // The same namespace may use it for other paths.
        assert!(check_conflicts("tenant-a", "s", &mine, &[(&a, theirs)]).is_ok());
    }
}
