//! API tokens: who a token belongs to ([`Principal`]), and the token book the server keeps
//! of them ([`tokens`]); the web UI's sign-in sessions ([`sessions`]). The HTTP side (the
//! middleware and its rules) is `faasbox_http::auth`.

pub mod sessions;
pub mod tokens;

/// Whose token a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server-wide admin.
    Admin,
    /// A namespace's token, with the role it has there.
    Namespace {
        /// The namespace the token belongs to (it sees no other).
        namespace: String,
        /// What the token may do in its namespace.
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
