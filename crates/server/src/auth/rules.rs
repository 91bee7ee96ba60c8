//! Who may do what, decided from a request's method, path and `?namespace=` alone, so routes
//! added later under `/api/v1/namespaces/{ns}/…` are covered without naming them here.
//!
//! - An admin token (server-wide) may do everything.
//! - A namespace token sees its namespace only: any path under another namespace answers 404,
//!   exactly like a namespace that does not exist. Server-wide endpoints answer 403, except the
//!   shared ones below.
//! - Within its namespace, role `admin` may do everything but delete the namespace; role
//!   `invoke` may read (GET) and call (POST to a path ending in `/invoke`, a flow's `…/run`,
//!   the namespace's `events`), nothing else.
//! - Shared with namespace tokens: listing namespaces (the handler shows only the token's),
//!   the OpenAPI document, listing the image store and the global services, and, for role
//!   `admin`, importing, pulling and pushing images (a pull or push names a namespace with
//!   `?namespace=`, checked like a path; without it only global registry credentials are used).
//!   Removing images, namespaces, tokens, global registries, global services and master-key
//!   rotation need the admin token, and so does `/metrics` (it names every namespace's
//!   functions and flows).

use axum::http::Method;

use super::tokens::Role;
use super::Principal;

/// What a request touches.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Something inside namespace `ns`; `rest` are the path segments after it.
    Namespace { ns: String, rest: Vec<String> },
    /// `/api/v1/invocations/{id}…` or `/api/v1/instances/{id}…`: the call's or the flow
    /// instance's namespace is looked up by id; `rest` is the path from the kind on.
    ById {
        kind: ByIdKind,
        id: String,
        rest: Vec<String>,
    },
    /// A server-wide endpoint that namespace tokens may use (with the role it needs).
    Shared { needs_admin_role: bool },
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

pub fn classify(method: &Method, path: &str, query_namespace: Option<&str>) -> Target {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let read = *method == Method::GET || *method == Method::HEAD;
    match segments.as_slice() {
        ["api", "v1", "namespaces", ns, rest @ ..] => Target::Namespace {
            ns: ns.to_string(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
        },
        // Direktiv's registry route.
        ["api", "functions", "registries", "namespaces", ns] => Target::Namespace {
            ns: ns.to_string(),
            rest: vec!["registries".to_string()],
        },
        ["api", "v1", kind @ ("invocations" | "instances"), id, more @ ..] => Target::ById {
            kind: if *kind == "invocations" {
                ByIdKind::Invocation
            } else {
                ByIdKind::FlowInstance
            },
            id: id.to_string(),
            rest: std::iter::once(*kind)
                .chain(more.iter().copied())
                .map(str::to_string)
                .collect(),
        },
        ["api", "v1", "images", action @ ("pull" | "push")] => match query_namespace {
            Some(ns) => Target::Namespace {
                ns: ns.to_string(),
                rest: vec!["images".to_string(), action.to_string()],
            },
            None => Target::Shared {
                needs_admin_role: true,
            },
        },
        ["api", "v1", "images", "import"] if *method == Method::POST => Target::Shared {
            needs_admin_role: true,
        },
        ["api", "v1", "namespaces"]
        | ["api", "v1", "openapi.json"]
        | ["api", "v1", "images"]
        | ["api", "v1", "functions"]
        | ["api", "v1", "functions", _]
            if read =>
        {
            Target::Shared {
                needs_admin_role: false,
            }
        }
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
                    || rest.len() == 1 && rest[0] == "events");
            match role {
                Role::Admin => Verdict::Allow,
                Role::Invoke if read || call => Verdict::Allow,
                Role::Invoke => Verdict::Forbidden(
                    "an invoke token may call functions, run flows, send events and read calls \
                     and logs; changing anything needs a namespace admin token (`faasbox token create --role admin`)",
                ),
            }
        }
        Target::Shared { needs_admin_role } => {
            if *needs_admin_role && role != Role::Admin {
                Verdict::Forbidden("an invoke token cannot change the image store")
            } else {
                Verdict::Allow
            }
        }
        Target::ById { .. } | Target::AdminOnly => Verdict::Forbidden(ADMIN_ONLY),
    }
}

impl Principal {
    pub fn sees_namespace(&self, ns: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Namespace { namespace, .. } => namespace == ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(role: Role, method: Method, path: &str, query_ns: Option<&str>) -> Verdict {
        judge("a", role, &method, &classify(&method, path, query_ns))
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
        ] {
            assert_eq!(
                verdict(Role::Admin, Method::GET, path, None),
                Verdict::HiddenNamespace("b".into()),
                "{path}"
            );
        }
        assert_eq!(
            verdict(Role::Admin, Method::POST, "/api/v1/images/pull", Some("b")),
            Verdict::HiddenNamespace("b".into())
        );
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
        ];
        for (m, p) in allow {
            assert_eq!(verdict(Role::Invoke, m, p, None), Verdict::Allow, "{p}");
        }
        let deny = [
            (Method::PUT, "/api/v1/namespaces/a/functions/f"),
            (Method::DELETE, "/api/v1/namespaces/a/secrets/s"),
            (Method::POST, "/api/v1/namespaces/a/registries"),
            (Method::POST, "/api/v1/images/import"),
            (Method::PUT, "/api/v1/namespaces/a/flows/run"),
            (Method::DELETE, "/api/v1/namespaces/a/flows/x/run"),
        ];
        for (m, p) in deny {
            assert!(
                matches!(verdict(Role::Invoke, m, p, None), Verdict::Forbidden(_)),
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
        ] {
            assert!(
                matches!(verdict(Role::Admin, m, p, None), Verdict::Forbidden(_)),
                "{p}"
            );
        }
        for (m, p) in [
            (Method::GET, "/api/v1/namespaces"),
            (Method::GET, "/api/v1/images"),
            (Method::GET, "/api/v1/functions"),
            (Method::POST, "/api/v1/images/import"),
        ] {
            assert_eq!(verdict(Role::Admin, m, p, None), Verdict::Allow, "{p}");
        }
    }
}
