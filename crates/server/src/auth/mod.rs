//! API tokens: who a token belongs to ([`Principal`]), and the token book the server keeps
//! of them ([`tokens`]). The HTTP side (the middleware and its rules) is `crate::api::auth`.

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
