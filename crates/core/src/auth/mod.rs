//! API tokens: who a token belongs to ([`Principal`]), and the token book the server keeps
//! of them ([`tokens`]). The HTTP side (the middleware and its rules) is `faasbox_http::auth`.

pub mod tokens;

/// Whose token a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server-wide admin.
    Admin,
    Namespace {
        namespace: String,
        role: tokens::Role,
    },
}

impl Principal {
    /// Whether this principal may see namespace `ns` at all (others' namespaces are hidden).
    pub fn sees_namespace(&self, ns: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Namespace { namespace, .. } => namespace == ns,
        }
    }
}
