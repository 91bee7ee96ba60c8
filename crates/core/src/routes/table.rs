//! The gateway's view of every enabled route, compiled for matching: which route answers a
//! request under `/ns/{namespace}` or on a route's host, and its path parameters. Reloaded from
//! the store whenever a route changes (see `manage`) and at server start. Reads take a shared
//! lock for a pointer copy only: the compiled table is swapped whole on reload.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use super::auth::ReplayGuard;
use super::limits::RateLimiter;
use super::{RouteSpec, RESERVED_PREFIXES};
use crate::failure::Failure;
use crate::state::AppState;

/// Every route the gateway serves, and the per-route memory the gateway keeps beside it (rate
/// buckets, Slack signatures seen).
#[derive(Default)]
pub struct RouteTable {
    compiled: RwLock<Arc<Compiled>>,
    /// The token buckets of the routes' rate limits.
    pub rates: RateLimiter,
    /// Slack signatures seen within their window (replays are refused).
    pub replays: ReplayGuard,
    /// Basic-auth credentials verified recently (Argon2 is slow on purpose).
    pub verified: super::auth::VerifiedCache,
}

/// One served route.
#[derive(Debug)]
pub struct ServedRoute {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its spec (credentials hashed).
    pub spec: RouteSpec,
    /// Its path, compiled.
    pattern: Vec<Segment>,
}

impl ServedRoute {
    /// The route `name` of `namespace` with `spec`, its path compiled.
    pub fn new(namespace: &str, name: &str, spec: RouteSpec) -> Self {
        ServedRoute {
            pattern: compile(&spec.path),
            namespace: namespace.to_string(),
            name: name.to_string(),
            spec,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Rest => 2,
        }
    }
}

#[derive(Default)]
struct Compiled {
    /// Namespace → its enabled routes, most specific first.
    by_namespace: HashMap<String, Vec<Arc<ServedRoute>>>,
    /// Host (lower case) → the enabled routes naming it, most specific first.
    by_host: HashMap<String, Vec<Arc<ServedRoute>>>,
}

/// A request that a route answers.
#[derive(Debug, Clone)]
pub struct Matched {
    /// The route.
    pub route: Arc<ServedRoute>,
    /// The path parameters, decoded.
    pub params: BTreeMap<String, String>,
    /// The path the route matched (below `/ns/{namespace}`, or the whole path on a host).
    pub path: String,
}

/// What the table says of a request.
#[derive(Debug)]
pub enum Lookup {
    /// A route answers it.
    Found(Matched),
    /// Routes match the path but none takes the method: these methods are allowed.
    MethodNotAllowed(Vec<String>),
    /// No route matches.
    NotFound,
}

/// Every method a route without `methods` answers (what `Allow` lists for it).
pub const ALL_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl RouteTable {
    /// Reads every namespace's routes from the store and serves the enabled ones from now on.
    /// A stored spec that cannot be read is skipped (logged), not served.
    pub async fn reload(&self, state: &AppState) -> Result<(), Failure> {
        let records = state.store.all_routes().await?;
        let mut routes = Vec::with_capacity(records.len());
        for record in records {
            match serde_json::from_str::<RouteSpec>(&record.spec) {
                Ok(spec) => routes.push((record.namespace, record.name, spec)),
                Err(e) => tracing::error!(
                    namespace = %record.namespace,
                    route = %record.name,
                    "the stored route cannot be read and is not served: {e}; replace it with \
                     `faasbox route create`"
                ),
            }
        }
        self.replace(routes);
        Ok(())
    }

    /// Serves exactly `routes` (namespace, name, spec) from now on (the enabled ones).
    pub fn replace(&self, routes: Vec<(String, String, RouteSpec)>) {
        let mut compiled = Compiled::default();
        for (namespace, name, spec) in routes {
            if !spec.enabled {
                continue;
            }
            let route = Arc::new(ServedRoute::new(&namespace, &name, spec));
            for host in &route.spec.hosts {
                compiled
                    .by_host
                    .entry(host.to_ascii_lowercase())
                    .or_default()
                    .push(route.clone());
            }
            compiled
                .by_namespace
                .entry(route.namespace.clone())
                .or_default()
                .push(route);
        }
        for list in compiled
            .by_namespace
            .values_mut()
            .chain(compiled.by_host.values_mut())
        {
            list.sort_by_cached_key(|r| specificity(r));
        }
        self.rates.keep_routes(
            &compiled
                .by_namespace
                .values()
                .flatten()
                .map(|r| (r.namespace.clone(), r.name.clone()))
                .collect(),
        );
        *self
            .compiled
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(compiled);
    }

    fn current(&self) -> Arc<Compiled> {
        self.compiled
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether `host` (any case, with or without a port) is a route host: requests to it
    /// outside the reserved prefixes are the gateway's.
    pub fn serves_host(&self, host: &str) -> bool {
        let host = bare_host(host);
        self.current().by_host.contains_key(&host)
    }

    /// The route of namespace `namespace` for `path` (below `/ns/{namespace}`) and `method`.
    pub fn lookup_namespace(&self, namespace: &str, path: &str, method: &str) -> Lookup {
        let compiled = self.current();
        match compiled.by_namespace.get(namespace) {
            Some(routes) => find(routes, path, method),
            None => Lookup::NotFound,
        }
    }

    /// The route on `host` for the whole request `path` and `method`; a reserved path is
    /// never a host route's.
    pub fn lookup_host(&self, host: &str, path: &str, method: &str) -> Lookup {
        if is_reserved(path) {
            return Lookup::NotFound;
        }
        let compiled = self.current();
        match compiled.by_host.get(&bare_host(host)) {
            Some(routes) => find(routes, path, method),
            None => Lookup::NotFound,
        }
    }
}

/// Whether `path` is under one of [`RESERVED_PREFIXES`] (the API's own).
pub fn is_reserved(path: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// A `Host` header's name: lower case, without the port.
pub fn bare_host(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        host.split_once(']')
            .map_or(host, |(addr, _)| &host[..addr.len() + 1])
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.to_ascii_lowercase()
}

fn compile(path: &str) -> Vec<Segment> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let mut segments: Vec<&str> = trimmed.split('/').collect();
    // `/` alone is the root: no segment.
    if segments == [""] {
        segments.clear();
    }
    segments
        .into_iter()
        .map(|s| {
            if s == "*" {
                Segment::Rest
            } else if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Segment::Param(name.to_string())
            } else {
                Segment::Literal(s.to_string())
            }
        })
        .collect()
}

/// The order of routes: the more specific first (segment by segment: literal, parameter,
/// `*`; then the longer), then by name for a stable order.
fn specificity(route: &ServedRoute) -> (Vec<u8>, std::cmp::Reverse<usize>, String) {
    (
        route.pattern.iter().map(Segment::rank).collect(),
        std::cmp::Reverse(route.pattern.len()),
        route.name.clone(),
    )
}

fn find(routes: &[Arc<ServedRoute>], path: &str, method: &str) -> Lookup {
    let path = if path.is_empty() { "/" } else { path };
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let mut segments: Vec<&str> = trimmed.split('/').collect();
    if segments == [""] {
        segments.clear();
    }
    let mut allowed: BTreeSet<&str> = BTreeSet::new();
    let mut matched_any = false;
    for route in routes {
        let Some(params) = match_pattern(&route.pattern, &segments) else {
            continue;
        };
        matched_any = true;
        let methods = &route.spec.methods;
        let takes = methods.is_empty()
            || methods.iter().any(|m| m.eq_ignore_ascii_case(method))
            // HEAD is answered by a route that takes GET.
            || (method.eq_ignore_ascii_case("HEAD") && methods.iter().any(|m| m == "GET"));
        // A CORS preflight reaches a route with CORS whatever its methods.
        let preflight = method.eq_ignore_ascii_case("OPTIONS") && route.spec.cors.is_some();
        if takes || preflight {
            return Lookup::Found(Matched {
                route: route.clone(),
                params,
                path: path.to_string(),
            });
        }
        if methods.is_empty() {
            allowed.extend(ALL_METHODS);
        } else {
            allowed.extend(methods.iter().map(String::as_str));
        }
    }
    if matched_any {
        Lookup::MethodNotAllowed(allowed.into_iter().map(str::to_string).collect())
    } else {
        Lookup::NotFound
    }
}

fn match_pattern(pattern: &[Segment], segments: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, part) in pattern.iter().enumerate() {
        match part {
            Segment::Rest => {
                let rest = segments.get(i..).unwrap_or_default().join("/");
                params.insert("*".to_string(), percent_decode(&rest)?);
                return Some(params);
            }
            Segment::Literal(literal) => {
                let given = segments.get(i)?;
                if given != literal && percent_decode(given).as_deref() != Some(literal) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let given = segments.get(i)?;
                if given.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(given)?);
            }
        }
    }
    (segments.len() == pattern.len()).then_some(params)
}

/// `%XX` escapes decoded (`+` stays `+`: this is a path); `None` when the result is not
/// UTF-8 or an escape is broken.
pub fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteTarget;

    fn spec(path: &str, methods: &[&str], hosts: &[&str]) -> RouteSpec {
        RouteSpec {
            path: path.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            target: RouteTarget::Function("echo".into()),
            auth: Default::default(),
            cors: None,
            raw_response: false,
            limits: Default::default(),
            enabled: true,
        }
    }

    fn table(routes: &[(&str, &str, RouteSpec)]) -> RouteTable {
        let t = RouteTable::default();
        t.replace(
            routes
                .iter()
                .map(|(ns, name, s)| (ns.to_string(), name.to_string(), s.clone()))
                .collect(),
        );
        t
    }

    fn found(lookup: Lookup) -> Matched {
        match lookup {
            Lookup::Found(m) => m,
            other => panic!("expected a match, got {other:?}"),
        }
    }

    #[test]
    fn literals_beat_parameters_which_beat_the_rest() {
        let t = table(&[
            ("demo", "rest", spec("/orders/*", &[], &[])),
            ("demo", "param", spec("/orders/{id}", &[], &[])),
            ("demo", "literal", spec("/orders/new", &[], &[])),
        ]);
        let m = found(t.lookup_namespace("demo", "/orders/new", "GET"));
        assert_eq!(m.route.name, "literal");
        let m = found(t.lookup_namespace("demo", "/orders/a%20b", "GET"));
        assert_eq!(m.route.name, "param");
        assert_eq!(m.params["id"], "a b");
        let m = found(t.lookup_namespace("demo", "/orders/1/items/2", "GET"));
        assert_eq!(m.route.name, "rest");
        assert_eq!(m.params["*"], "1/items/2");
        let m = found(t.lookup_namespace("demo", "/orders", "GET"));
        assert_eq!(m.route.name, "rest", "the rest may be empty");
        assert_eq!(m.params["*"], "");
        assert!(matches!(
            t.lookup_namespace("demo", "/other", "GET"),
            Lookup::NotFound
        ));
        assert!(matches!(
            t.lookup_namespace("other", "/orders/new", "GET"),
            Lookup::NotFound
        ));
    }

    #[test]
    fn another_method_is_405_with_what_is_allowed() {
        let t = table(&[
            ("demo", "hook", spec("/hooks/github", &["POST"], &[])),
            ("demo", "put", spec("/hooks/{name}", &["PUT"], &[])),
        ]);
        assert_eq!(
            found(t.lookup_namespace("demo", "/hooks/github", "POST"))
                .route
                .name,
            "hook"
        );
        // A less specific route that takes the method answers.
        assert_eq!(
            found(t.lookup_namespace("demo", "/hooks/github", "PUT"))
                .route
                .name,
            "put"
        );
        match t.lookup_namespace("demo", "/hooks/github", "GET") {
            Lookup::MethodNotAllowed(allowed) => assert_eq!(allowed, ["POST", "PUT"]),
            other => panic!("{other:?}"),
        }
        let t = table(&[("demo", "get", spec("/page", &["GET"], &[]))]);
        assert_eq!(
            found(t.lookup_namespace("demo", "/page", "HEAD"))
                .route
                .name,
            "get"
        );
    }

    #[test]
    fn disabled_routes_are_not_served_and_the_root_matches_empty() {
        let mut off = spec("/off", &[], &[]);
        off.enabled = false;
        let t = table(&[("demo", "off", off), ("demo", "root", spec("/", &[], &[]))]);
        assert!(matches!(
            t.lookup_namespace("demo", "/off", "GET"),
            Lookup::NotFound
        ));
        assert_eq!(
            found(t.lookup_namespace("demo", "", "GET")).route.name,
            "root"
        );
        assert_eq!(
            found(t.lookup_namespace("demo", "/", "GET")).route.name,
            "root"
        );
        // A trailing slash is a segment of its own.
        let t = table(&[("demo", "slash", spec("/a/", &[], &[]))]);
        assert!(matches!(
            t.lookup_namespace("demo", "/a", "GET"),
            Lookup::NotFound
        ));
        assert_eq!(
            found(t.lookup_namespace("demo", "/a/", "GET")).route.name,
            "slash"
        );
    }

    #[test]
    fn host_routes_match_by_host_and_never_take_reserved_paths() {
        let t = table(&[("demo", "site", spec("/*", &[], &["shop.example.com"]))]);
        assert!(t.serves_host("Shop.Example.com:8080"));
        assert!(!t.serves_host("other.example.com"));
        let m = found(t.lookup_host("SHOP.example.com:80", "/cart/1", "GET"));
        assert_eq!(m.route.name, "site");
        assert_eq!(m.params["*"], "cart/1");
        for reserved in [
            "/api/v1/health",
            "/api",
            "/v1/runs",
            "/metrics",
            "/ns/demo/x",
            "/ui",
        ] {
            assert!(
                matches!(
                    t.lookup_host("shop.example.com", reserved, "GET"),
                    Lookup::NotFound
                ),
                "{reserved}"
            );
        }
        // `/apix` is not under `/api`.
        assert!(matches!(
            t.lookup_host("shop.example.com", "/apix", "GET"),
            Lookup::Found(_)
        ));
        // The route is served under its namespace too.
        assert!(matches!(
            t.lookup_namespace("demo", "/x", "GET"),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn hosts_lose_their_port_and_case() {
        assert_eq!(bare_host("Example.COM:8080"), "example.com");
        assert_eq!(bare_host("example.com"), "example.com");
        assert_eq!(bare_host("[::1]:8080"), "[::1]");
        assert_eq!(percent_decode("a%2Fb"), Some("a/b".into()));
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("a+b"), Some("a+b".into()));
    }
}
