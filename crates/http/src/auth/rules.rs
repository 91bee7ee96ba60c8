//! Who may do what, decided from a request's method and path alone, so routes added later under
//! `/api/v1/namespaces/{ns}/…` are covered without naming them here.
//!
//! - An admin token (server-wide) may do everything.
//! - A namespace token sees its namespace only: any path under another namespace answers 404,
//!   exactly like a namespace that does not exist. Server-wide endpoints answer 403, except the
//!   shared ones below.
//! - Within its namespace, role `admin` may do everything but delete the namespace; role
//!   `invoke` may read (GET) and call (POST to a path ending in `/invoke`, a flow's `…/run`,
//!   the namespace's `events`), nothing else.
//! - Shared with namespace tokens: listing namespaces (the handler shows only the token's),
//!   the OpenAPI document, listing the server-wide images and the global services. A
//!   namespace's own images are under `/api/v1/namespaces/{ns}/images` like everything else of
//!   it; writing the server-wide image table (`/api/v1/images…`: import, pull, push, remove,
//!   prune), namespaces, tokens, global registries, global services and master-key rotation
//!   need the admin token, and so does `/metrics` (it names every namespace's functions and
//!   flows).

use axum::http::Method;

use faasbox_core::auth::tokens::Role;

/// What a request touches.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Something inside namespace `ns`; `rest` are the path segments after it.
    Namespace { ns: String, rest: Vec<String> },
    /// `/api/v1/invocations/{id}…` (or `/api/v1/runs/{id}…`) or `/api/v1/instances/{id}…`: the call's or the flow
    /// instance's namespace is looked up by id; `rest` is the path from the kind on.
    ById {
        kind: ByIdKind,
        id: String,
        rest: Vec<String>,
    },
    /// A server-wide endpoint that namespace tokens may read.
    SharedRead,
    /// A change of the server-wide image table (admin token only).
    ServerImages,
    /// A server-wide endpoint for the admin token only.
    AdminOnly,
}

/// What a [`Target::ById`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByIdKind {
    Invocation,
    FlowInstance,
}

/// The outcome for a namespace token.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Answer as if namespace `ns` did not exist.
    HiddenNamespace(String),
    Forbidden(&'static str),
}

/// The header that names the organization of a request to Dispatch's API (`/v1/…`): in faasbox,
/// the namespace.
pub const DISPATCH_ORG_HEADER: &str = "x-dispatch-org";

/// What a request to `method path` touches; `org` is its [`DISPATCH_ORG_HEADER`], which places
/// Dispatch's `/v1/…` routes in that namespace (rest: `dispatch` and the path's segments). A
/// Dispatch route without the header touches nothing a namespace token may use.
pub fn classify(method: &Method, path: &str, org: Option<&str>) -> Target {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let read = *method == Method::GET || *method == Method::HEAD;
    match segments.as_slice() {
        ["v1", rest @ ..] => match org {
            Some(ns) => Target::Namespace {
                ns: ns.to_string(),
                rest: std::iter::once("dispatch")
                    .chain(rest.iter().copied())
                    .map(str::to_string)
                    .collect(),
            },
            None => Target::AdminOnly,
        },
        ["api", "v1", "namespaces", ns, rest @ ..] => Target::Namespace {
            ns: ns.to_string(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
        },
        // Direktiv's registry route.
        ["api", "functions", "registries", "namespaces", ns] => Target::Namespace {
            ns: ns.to_string(),
            rest: vec!["registries".to_string()],
        },
        ["api", "v1", kind @ ("invocations" | "runs" | "instances"), id, more @ ..] => {
            Target::ById {
                kind: if *kind != "instances" {
                    ByIdKind::Invocation
                } else {
                    ByIdKind::FlowInstance
                },
                id: id.to_string(),
                rest: std::iter::once(*kind)
                    .chain(more.iter().copied())
                    .map(str::to_string)
                    .collect(),
            }
        }
        ["api", "v1", "namespaces"]
        | ["api", "v1", "openapi.json"]
        | ["api", "v1", "images"]
        | ["api", "v1", "functions"]
        | ["api", "v1", "functions", _]
            if read =>
        {
            Target::SharedRead
        }
        ["api", "v1", "images", ..] => Target::ServerImages,
        _ => Target::AdminOnly,
    }
}

/// The verdict for a namespace token (`own`, `role`) on `target`; `ById` targets must be
/// resolved to their namespace first.
pub fn judge(own: &str, role: Role, method: &Method, target: &Target) -> Verdict {
    const ADMIN_ONLY: &str =
        "this needs the server's admin token (a namespace token cannot use it)";
    match target {
        Target::Namespace { ns, rest } => {
            if ns != own {
                return Verdict::HiddenNamespace(ns.clone());
            }
            let read = *method == Method::GET || *method == Method::HEAD;
            if rest.is_empty() && !read {
                return Verdict::Forbidden(
                    "creating or deleting a namespace needs the server's admin token",
                );
            }
            // Calls: invoking a function, running a flow, sending an event into the namespace.
            let call = *method == Method::POST
                && (rest.last().is_some_and(|s| s == "invoke")
                    || (rest.first().is_some_and(|s| s == "flows")
                        && rest.last().is_some_and(|s| s == "run"))
                    || rest.len() == 1 && rest[0] == "events"
                    || (rest.first().is_some_and(|s| s == "runs")
                        && rest.last().is_some_and(|s| s == "cancel"))
                    || *rest == ["dispatch", "runs"]
                    || *rest == ["dispatch", "event"]);
            match role {
                Role::Admin => Verdict::Allow,
                Role::Invoke if read || call => Verdict::Allow,
                Role::Invoke => Verdict::Forbidden(
                    "an invoke token may call functions, run flows, send events and read calls \
                     and logs; changing anything needs a namespace admin token (`faasbox token create --role admin`)",
                ),
            }
        }
        Target::SharedRead => Verdict::Allow,
        Target::ServerImages => Verdict::Forbidden(
            "the server-wide images are changed with the server's admin token; a namespace \
             token imports, pulls, pushes and removes its namespace's own images \
             (/api/v1/namespaces/{ns}/images…; CLI: `faasbox image … -n NS`)",
        ),
        Target::ById { .. } | Target::AdminOnly => Verdict::Forbidden(ADMIN_ONLY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(role: Role, method: Method, path: &str) -> Verdict {
        judge("a", role, &method, &classify(&method, path, None))
    }

    #[test]
    fn other_namespaces_are_hidden_whatever_the_route() {
        for path in [
            "/api/v1/namespaces/b",
            "/api/v1/namespaces/b/functions/f",
            "/api/v1/namespaces/b/secrets",
            "/api/v1/namespaces/b/flows/x/instances",
            "/api/v1/namespaces/b/some/future/route",
            "/api/functions/registries/namespaces/b",
            "/api/v1/namespaces/b/images",
            "/api/v1/namespaces/b/routes",
            "/api/v1/namespaces/b/routes/hook",
        ] {
            assert_eq!(
                verdict(Role::Admin, Method::GET, path),
                Verdict::HiddenNamespace("b".into()),
                "{path}"
            );
        }
        for path in [
            "/api/v1/namespaces/b/images/pull",
            "/api/v1/namespaces/b/images/import",
            "/api/v1/namespaces/b/images/push",
        ] {
            assert_eq!(
                verdict(Role::Admin, Method::POST, path),
                Verdict::HiddenNamespace("b".into()),
                "{path}"
            );
        }
    }

    #[test]
    fn invoke_role_reads_and_calls_only() {
        let allow = [
            (Method::GET, "/api/v1/namespaces/a/invocations"),
            (Method::POST, "/api/v1/namespaces/a/functions/f/invoke"),
            (
                Method::POST,
                "/api/v1/namespaces/a/global-functions/g/invoke",
            ),
            (Method::POST, "/api/v1/namespaces/a/flows/dir/hello/run"),
            (Method::POST, "/api/v1/namespaces/a/events"),
            (Method::GET, "/api/v1/namespaces/a/images"),
            (Method::GET, "/api/v1/namespaces/a/functions/f/revisions"),
            (Method::GET, "/api/v1/namespaces/a/runs"),
            (Method::POST, "/api/v1/namespaces/a/runs/r1/cancel"),
            (Method::GET, "/api/v1/namespaces/a/routes"),
            (Method::GET, "/api/v1/namespaces/a/routes/hook"),
        ];
        for (m, p) in allow {
            assert_eq!(verdict(Role::Invoke, m, p), Verdict::Allow, "{p}");
        }
        let deny = [
            (Method::PUT, "/api/v1/namespaces/a/functions/f"),
            (Method::DELETE, "/api/v1/namespaces/a/secrets/s"),
            (Method::POST, "/api/v1/namespaces/a/registries"),
            (Method::POST, "/api/v1/images/import"),
            (Method::PUT, "/api/v1/namespaces/a/flows/run"),
            (Method::DELETE, "/api/v1/namespaces/a/flows/x/run"),
            (Method::POST, "/api/v1/namespaces/a/images/import"),
            (Method::POST, "/api/v1/namespaces/a/images/pull"),
            (Method::DELETE, "/api/v1/namespaces/a/images"),
            (Method::PATCH, "/api/v1/namespaces/a/functions/f"),
            (Method::POST, "/api/v1/namespaces/a/functions/f/rollback"),
            (Method::DELETE, "/api/v1/namespaces/a/runs/r1"),
            (Method::PUT, "/api/v1/namespaces/a/routes/hook"),
            (Method::PATCH, "/api/v1/namespaces/a/routes/hook"),
            (Method::DELETE, "/api/v1/namespaces/a/routes/hook"),
        ];
        for (m, p) in deny {
            assert!(
                matches!(verdict(Role::Invoke, m, p), Verdict::Forbidden(_)),
                "{p}"
            );
        }
    }

    #[test]
    fn dispatch_routes_belong_to_the_org_headers_namespace() {
        let judged = |role, method: Method, path, org| {
            judge("a", role, &method, &classify(&method, path, org))
        };
        assert_eq!(
            judged(Role::Admin, Method::POST, "/v1/function", Some("a")),
            Verdict::Allow
        );
        assert_eq!(
            judged(Role::Admin, Method::GET, "/v1/function/f", Some("b")),
            Verdict::HiddenNamespace("b".into())
        );
        assert!(matches!(
            judged(Role::Admin, Method::GET, "/v1/function", None),
            Verdict::Forbidden(_)
        ));
        assert_eq!(
            judged(Role::Invoke, Method::POST, "/v1/runs", Some("a")),
            Verdict::Allow
        );
        assert_eq!(
            judged(Role::Invoke, Method::GET, "/v1/baseimage", Some("a")),
            Verdict::Allow
        );
        assert_eq!(
            judged(Role::Invoke, Method::GET, "/v1/api/a", Some("a")),
            Verdict::Allow
        );
        for (m, p) in [
            (Method::POST, "/v1/function"),
            (Method::PUT, "/v1/function/f"),
            (Method::DELETE, "/v1/image/i"),
            (Method::POST, "/v1/baseimage"),
            (Method::POST, "/v1/api"),
            (Method::PUT, "/v1/api/a"),
            (Method::DELETE, "/v1/api/a"),
        ] {
            assert!(
                matches!(judged(Role::Invoke, m, p, Some("a")), Verdict::Forbidden(_)),
                "{p}"
            );
        }
    }

    #[test]
    fn server_wide_changes_need_the_admin_token() {
        for (m, p) in [
            (Method::POST, "/api/v1/namespaces"),
            (Method::DELETE, "/api/v1/namespaces/a"),
            (Method::POST, "/api/v1/registries"),
            (Method::GET, "/api/v1/registries"),
            (Method::POST, "/api/v1/tokens"),
            (Method::POST, "/api/v1/admin/rotate-master-key"),
            (Method::PUT, "/api/v1/functions/g"),
            (Method::DELETE, "/api/v1/images"),
            (Method::GET, "/metrics"),
            (Method::POST, "/api/v1/images/import"),
            (Method::POST, "/api/v1/images/pull"),
            (Method::POST, "/api/v1/images/push"),
            (Method::POST, "/api/v1/images/prune"),
            (Method::PATCH, "/api/v1/functions/g"),
            (Method::POST, "/api/v1/functions/g/rollback"),
            (Method::GET, "/api/v1/functions/g/revisions"),
        ] {
            assert!(
                matches!(verdict(Role::Admin, m, p), Verdict::Forbidden(_)),
                "{p}"
            );
        }
        for (m, p) in [
            (Method::GET, "/api/v1/namespaces"),
            (Method::GET, "/api/v1/images"),
            (Method::GET, "/api/v1/functions"),
            (Method::POST, "/api/v1/namespaces/a/images/import"),
            (Method::POST, "/api/v1/namespaces/a/images/prune"),
            (Method::PATCH, "/api/v1/namespaces/a/functions/f"),
        ] {
            assert_eq!(verdict(Role::Admin, m, p), Verdict::Allow, "{p}");
        }
    }
}
