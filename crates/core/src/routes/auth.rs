//! The credentials check of a route's call (`none`, `token`, `basic`, `api-key`, `hmac-sha256`,
//! `slack`): a request that fails it is 401 and never reaches the function. Secrets and
//! credentials never appear in a refusal's message or in the logs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::table::ServedRoute;
use super::{credentials, StoredAuth};
use crate::auth::tokens::Role;
use crate::auth::Principal;
use crate::state::AppState;

/// The error code of a refused request.
pub const UNAUTHORIZED: &str = "faasbox.route.unauthorized";

/// How many verified basic-auth credentials are remembered.
const VERIFIED_CAPACITY: usize = 1024;
/// How long a verified basic-auth credential is remembered.
const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// How many Slack signatures are remembered (within their windows).
const REPLAY_CAPACITY: usize = 100_000;

/// What a request presents: its headers (names lower case), its query parameters (decoded)
/// and its raw body.
pub struct Presented<'a> {
    /// The headers, names lower case, repeated ones joined with `, `.
    pub headers: &'a [(String, String)],
    /// The query parameters, decoded, in order.
    pub query: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl Presented<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A refused request: what the caller is told (no secret, no detail of which part failed
/// beyond what it must send) and the `WWW-Authenticate` challenge, for `basic` and `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// What the caller is told.
    pub message: String,
    /// The `WWW-Authenticate` value, for `basic` and `token`.
    pub challenge: Option<&'static str>,
}

fn denied(message: impl Into<String>) -> Denied {
    Denied {
        message: message.into(),
        challenge: None,
    }
}

/// The header and the query parameter that carry the route's own credential (what the
/// function's HTTP context leaves out), names lower case for headers.
pub fn credential_names(auth: &StoredAuth) -> (Option<String>, Option<String>) {
    match auth {
        StoredAuth::Token | StoredAuth::Basic { .. } => (Some("authorization".into()), None),
        StoredAuth::ApiKey { header, query, .. } => {
            (Some(header.to_ascii_lowercase()), query.clone())
        }
        _ => (None, None),
    }
}

/// Checks `presented` against `route`'s authentication.
pub async fn check(
    state: &AppState,
    route: &ServedRoute,
    presented: &Presented<'_>,
) -> Result<(), Denied> {
    match &route.spec.auth {
        StoredAuth::None => Ok(()),
        StoredAuth::Token => check_token(state, &route.namespace, presented),
        StoredAuth::Basic { users } => check_basic(state, route, users, presented).await,
        StoredAuth::ApiKey {
            header,
            query,
            keys,
        } => check_key(header, query.as_deref(), keys, presented),
        StoredAuth::HmacSha256 {
            secret,
            header,
            prefix,
        } => {
            let key = secret_value(state, route, secret).await?;
            let given = presented.header(header).unwrap_or_default();
            let refused = || {
                denied(format!(
                    "this route takes only requests signed with its secret: send `{header}: \
                     {prefix}<hex of HMAC-SHA256 of the body>`"
                ))
            };
            let hex_sig = given.strip_prefix(prefix.as_str()).ok_or_else(refused)?;
            if verify_hmac(&key, &[presented.body], hex_sig) {
                Ok(())
            } else {
                Err(refused())
            }
        }
        StoredAuth::Slack {
            secret,
            max_age_seconds,
        } => {
            let key = secret_value(state, route, secret).await?;
            let now = crate::clock::now_ms() / 1000;
            check_slack(
                &state.routes.replays,
                route,
                &key,
                *max_age_seconds,
                now,
                presented,
            )
        }
    }
}

fn check_token(state: &AppState, namespace: &str, presented: &Presented<'_>) -> Result<(), Denied> {
    let refused = Denied {
        message: format!(
            "this route needs a faasbox token of namespace {namespace} (role invoke or admin): \
             send `Authorization: Bearer <token>`"
        ),
        challenge: Some("Bearer"),
    };
    let token = presented
        .header("authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| refused.clone())?;
    match state.tokens.check(token) {
        Some(Principal::Admin) => Ok(()),
        Some(Principal::Namespace {
            namespace: own,
            role: Role::Invoke | Role::Admin,
        }) if own == namespace => Ok(()),
        _ => Err(refused),
    }
}

async fn check_basic(
    state: &AppState,
    route: &ServedRoute,
    users: &std::collections::BTreeMap<String, String>,
    presented: &Presented<'_>,
) -> Result<(), Denied> {
    let refused = Denied {
        message: "this route needs a user name and password: send `Authorization: Basic \
                  <base64 of user:password>`"
            .into(),
        challenge: Some("Basic realm=\"faasbox\", charset=\"UTF-8\""),
    };
    let (user, password) = presented
        .header("authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        })
        .ok_or_else(|| refused.clone())?;
    let Some(hash) = users.get(&user).cloned() else {
        return Err(refused);
    };
    let remembered = VerifiedCache::key(&route.namespace, &route.name, &hash, &user, &password);
    if state.routes.verified.contains(&remembered) {
        return Ok(());
    }
    let ok = tokio::task::spawn_blocking(move || credentials::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if ok {
        state.routes.verified.insert(remembered);
        Ok(())
    } else {
        Err(refused)
    }
}

fn check_key(
    header: &str,
    query: Option<&str>,
    keys: &std::collections::BTreeMap<String, String>,
    presented: &Presented<'_>,
) -> Result<(), Denied> {
    let given = presented
        .header(header)
        .or_else(|| query.and_then(|q| presented.query(q)));
    let place = match query {
        Some(q) => format!("the header {header} or the query parameter {q}"),
        None => format!("the header {header}"),
    };
    let refused = || denied(format!("this route needs an API key: send it in {place}"));
    let given = given.ok_or_else(refused)?;
    // Every key is compared (constant time each), so the time says nothing of which matched.
    let matched = keys.values().fold(false, |found, hash| {
        credentials::verify_key(given, hash) | found
    });
    if matched {
        Ok(())
    } else {
        Err(refused())
    }
}

/// The value of the route's signing secret; a missing one refuses every request (the server
/// log says which secret to set, never its value).
async fn secret_value(
    state: &AppState,
    route: &ServedRoute,
    secret: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Denied> {
    let refused = || denied("this route cannot check signatures now; its owner is told why");
    match state.vault.get_secret(&route.namespace, secret).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => {
            tracing::error!(
                namespace = %route.namespace,
                route = %route.name,
                "the route's signing secret '{secret}' does not exist, so every request is \
                 refused; set it with `faasbox secret set {}/{secret}`",
                route.namespace
            );
            Err(refused())
        }
        Err(e) => {
            tracing::error!(
                namespace = %route.namespace,
                route = %route.name,
                "the route's signing secret '{secret}' cannot be read: {e}"
            );
            Err(refused())
        }
    }
}

/// Whether `hex_sig` is the hex HMAC-SHA256 of the concatenated `parts` with `key` (compared
/// in constant time).
fn verify_hmac(key: &[u8], parts: &[&[u8]], hex_sig: &str) -> bool {
    let Ok(given) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(&given).is_ok()
}

fn check_slack(
    replays: &ReplayGuard,
    route: &ServedRoute,
    key: &[u8],
    max_age: u64,
    now: u64,
    presented: &Presented<'_>,
) -> Result<(), Denied> {
    let refused = |why: &str| {
        denied(format!(
            "this route takes only Slack-signed requests: {why} (X-Slack-Request-Timestamp and \
             X-Slack-Signature: v0=<hex of HMAC-SHA256 of v0:timestamp:body>)"
        ))
    };
    let timestamp = presented
        .header("x-slack-request-timestamp")
        .ok_or_else(|| refused("the timestamp is missing"))?;
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| refused("the timestamp is not a number of seconds"))?;
    if ts.abs_diff(now) > max_age {
        return Err(refused("the timestamp is too old (or in the future)"));
    }
    let signature = presented
        .header("x-slack-signature")
        .and_then(|s| s.strip_prefix("v0="))
        .ok_or_else(|| refused("the signature is missing"))?;
    let base = format!("v0:{}:", timestamp.trim());
    if !verify_hmac(key, &[base.as_bytes(), presented.body], signature) {
        return Err(refused("the signature does not match"));
    }
    let seen = ReplayGuard::key(&route.namespace, &route.name, signature);
    let expires = Instant::now() + Duration::from_secs(max_age.saturating_mul(2).max(1));
    if !replays.first_time(seen, expires) {
        return Err(refused("this signed request was sent before (a replay)"));
    }
    Ok(())
}

/// Slack signatures seen, until their window has passed: one seen again is a replay.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl ReplayGuard {
    fn key(namespace: &str, route: &str, signature: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [namespace, route, signature] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize().into()
    }

    /// Whether `key` is new (then it is remembered until `expires`).
    fn first_time(&self, key: [u8; 32], expires: Instant) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(&key).is_some_and(|until| *until > now) {
            return false;
        }
        if seen.len() >= REPLAY_CAPACITY {
            seen.retain(|_, until| *until > now);
            if seen.len() >= REPLAY_CAPACITY {
                // Still full: the one that expires first goes.
                if let Some(first) = seen
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(k, _)| *k)
                {
                    seen.remove(&first);
                }
            }
        }
        seen.insert(key, expires);
        true
    }
}

/// Basic-auth credentials verified recently, by a digest of (route, stored hash, user,
/// password): a changed password no longer matches, and no password is kept.
#[derive(Default)]
pub struct VerifiedCache {
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl VerifiedCache {
    fn key(namespace: &str, route: &str, hash: &str, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [namespace, route, hash, user, password] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize().into()
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    fn insert(&self, key: [u8; 32]) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= VERIFIED_CAPACITY {
            entries.retain(|_, at| at.elapsed() < VERIFIED_FOR);
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, Instant::now());
    }
}

/// The hex HMAC-SHA256 of `parts` with `key` (what a signer sends; used by tests and docs).
pub fn sign_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{RouteSpec, RouteTarget};

    fn route(auth: StoredAuth) -> ServedRoute {
        ServedRoute::new(
            "demo",
            "hook",
            RouteSpec {
                path: "/hook".into(),
                methods: vec![],
                hosts: vec![],
                target: RouteTarget::Function("echo".into()),
                auth,
                cors: None,
                raw_response: false,
                limits: Default::default(),
                enabled: true,
            },
        )
    }

    fn presented<'a>(
        headers: &'a [(String, String)],
        query: &'a [(String, String)],
        body: &'a [u8],
    ) -> Presented<'a> {
        Presented {
            headers,
            query,
            body,
        }
    }

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn hmac_signatures_are_checked_over_the_raw_body() {
        let key = b"webhook-secret";
        let body = br#"{"action":"opened"}"#;
        let good = sign_hex(key, &[body]);
        assert!(verify_hmac(key, &[body], &good));
        assert!(!verify_hmac(key, &[b"{}"], &good));
        assert!(!verify_hmac(b"other", &[body], &good));
        assert!(!verify_hmac(key, &[body], "not hex"));
        assert!(!verify_hmac(key, &[body], &good[..10]));
    }

    #[test]
    fn slack_requests_are_checked_for_age_signature_and_replay() {
        let key = b"slack-secret";
        let r = route(StoredAuth::Slack {
            secret: "s".into(),
            max_age_seconds: 300,
        });
        let guard = ReplayGuard::default();
        let body = b"token=x&text=hi";
        let now = 1_700_000_000u64;
        let sig = |ts: u64| {
            format!(
                "v0={}",
                sign_hex(key, &[format!("v0:{ts}:").as_bytes(), body])
            )
        };
        let headers = |ts: u64, sig: String| {
            vec![
                h("x-slack-request-timestamp", &ts.to_string()),
                h("x-slack-signature", &sig),
            ]
        };
        let fresh = headers(now - 10, sig(now - 10));
        assert_eq!(
            check_slack(&guard, &r, key, 300, now, &presented(&fresh, &[], body)),
            Ok(())
        );
        let again = check_slack(&guard, &r, key, 300, now, &presented(&fresh, &[], body));
        assert!(again.unwrap_err().message.contains("replay"));
        let stale = headers(now - 301, sig(now - 301));
        let err = check_slack(&guard, &r, key, 300, now, &presented(&stale, &[], body));
        assert!(err.unwrap_err().message.contains("too old"));
        let forged = headers(now, sig(now - 1));
        let err = check_slack(&guard, &r, key, 300, now, &presented(&forged, &[], body));
        assert!(err.unwrap_err().message.contains("does not match"));
        let err = check_slack(&guard, &r, key, 300, now, &presented(&[], &[], body));
        assert!(err.unwrap_err().message.contains("missing"));
    }

    #[test]
    fn api_keys_come_from_the_header_or_the_query() {
        let keys = [("ci".to_string(), credentials::hash_key("0123456789abcdef"))].into();
        let hdr = [h("x-api-key", "0123456789abcdef")];
        assert!(check_key("X-API-Key", None, &keys, &presented(&hdr, &[], b"")).is_ok());
        let wrong = [h("x-api-key", "0123456789abcdeX")];
        assert!(check_key("X-API-Key", None, &keys, &presented(&wrong, &[], b"")).is_err());
        let q = [h("key", "0123456789abcdef")];
        assert!(check_key("X-API-Key", Some("key"), &keys, &presented(&[], &q, b"")).is_ok());
        // Without `query`, a key in the query is not taken.
        assert!(check_key("X-API-Key", None, &keys, &presented(&[], &q, b"")).is_err());
    }

    #[test]
    fn the_route_credential_names_are_known() {
        assert_eq!(
            credential_names(&StoredAuth::Token),
            (Some("authorization".into()), None)
        );
        let api = StoredAuth::ApiKey {
            header: "X-Key".into(),
            query: Some("k".into()),
            keys: Default::default(),
        };
        assert_eq!(
            credential_names(&api),
            (Some("x-key".into()), Some("k".into()))
        );
        assert_eq!(credential_names(&StoredAuth::None), (None, None));
    }

    #[test]
    fn the_replay_memory_is_bounded() {
        let guard = ReplayGuard::default();
        let until = Instant::now() + Duration::from_secs(60);
        for i in 0..(REPLAY_CAPACITY + 5) {
            assert!(guard.first_time(ReplayGuard::key("d", "r", &i.to_string()), until));
        }
        assert!(guard.seen.lock().unwrap().len() <= REPLAY_CAPACITY);
        let cache = VerifiedCache::default();
        for i in 0..(VERIFIED_CAPACITY + 5) {
            cache.insert(VerifiedCache::key("d", "r", "h", "u", &i.to_string()));
        }
        assert!(cache.entries.lock().unwrap().len() <= VERIFIED_CAPACITY);
        assert!(cache.contains(&VerifiedCache::key(
            "d",
            "r",
            "h",
            "u",
            &(VERIFIED_CAPACITY + 4).to_string()
        )));
        assert!(!cache.contains(&VerifiedCache::key("d", "r", "h2", "u", "1")));
    }
}
