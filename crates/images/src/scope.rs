//! Which name table an image name lives in: the server-wide one (written by the server's
//! admin, usable by everyone) or one namespace's own.

use std::fmt;

/// A name table of the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The server-wide table.
    Global,
    /// One namespace's table.
    Namespace(String),
}

impl Scope {
    /// `Some(ns)` for a namespace's table, `None` for the server-wide one.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }

    /// The table of namespace `ns`, or the server-wide one for `None`.
    pub fn of(namespace: Option<&str>) -> Scope {
        match namespace {
            None => Scope::Global,
            Some(ns) => Scope::Namespace(ns.to_string()),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("the server-wide images"),
            Scope::Namespace(ns) => write!(f, "namespace {ns}'s images"),
        }
    }
}
