//! Registry scopes, the normalised host used for look-ups, and what the vault returns about
//! registries.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::VaultError;

/// Pseudo-namespace owning global registries and their data key.
pub(crate) const GLOBAL_OWNER: &str = "*global";
/// Pseudo-namespace owning global-private registries and their data key.
pub(crate) const GLOBAL_PRIVATE_OWNER: &str = "*global-private";

/// Which functions a registry's credentials serve.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "namespace", rename_all = "kebab-case")]
pub enum RegistryScope {
    /// The functions of one namespace.
    Namespace(String),
    /// Every function, whatever its namespace, and global services.
    Global,
    /// Global services only.
    GlobalPrivate,
}

impl RegistryScope {
    /// The namespace or pseudo-namespace whose data key and rows this scope uses.
    pub(crate) fn owner(&self) -> &str {
        match self {
            RegistryScope::Namespace(ns) => ns,
            RegistryScope::Global => GLOBAL_OWNER,
            RegistryScope::GlobalPrivate => GLOBAL_PRIVATE_OWNER,
        }
    }

    pub(crate) fn from_owner(owner: &str) -> RegistryScope {
        match owner {
            GLOBAL_OWNER => RegistryScope::Global,
            GLOBAL_PRIVATE_OWNER => RegistryScope::GlobalPrivate,
            ns => RegistryScope::Namespace(ns.to_string()),
        }
    }
}

impl fmt::Display for RegistryScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryScope::Namespace(ns) => write!(f, "namespace {ns}"),
            RegistryScope::Global => f.write_str("global scope"),
            RegistryScope::GlobalPrivate => f.write_str("global-private scope"),
        }
    }
}

/// A registry as listed: never its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    /// The registry entry's id.
    pub id: String,
    /// Whose entry it is.
    pub scope: RegistryScope,
    /// The URL as given.
    pub url: String,
    /// The normalised `host[:port]` it is looked up by.
    pub host: String,
    /// The user name sent to the registry.
    pub username: String,
    /// When it was added (RFC 3339).
    pub created: String,
    /// When its credentials were last set (RFC 3339).
    pub updated: String,
}

/// Decrypted credentials for one registry. `Debug` leaves the password out.
pub struct RegistryCredentials {
    /// The user name.
    pub username: String,
    /// The password, wiped from memory when dropped.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password", &"…")
            .finish()
    }
}

/// Docker Hub's other names, all stored and looked up as `docker.io`.
const DOCKER_HUB_ALIASES: &[&str] = &[
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// The `host[:port]` of a registry URL, image reference or bare host: scheme, path, query and
/// fragment are dropped, the host is lower-cased, the port kept. Docker Hub's aliases become
/// `docker.io`. URLs carrying credentials (`user@host`) are refused.
///
/// `https://GHCR.io/v2/` → `ghcr.io`; `localhost:5000/team/app:1` → `localhost:5000`.
pub fn normalize_registry_host(url: &str) -> Result<String, VaultError> {
    let bad = |reason: &str| VaultError::InvalidRegistry(reason.to_string());
    let text = url.trim();
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let rest = match text.split_once("://") {
        Some((scheme, rest)) => {
            let scheme_ok = scheme
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
            if !scheme_ok {
                return Err(bad("its scheme is not valid"));
            }
            rest
        }
        None => text,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad(
            "it contains a user name; give the username and password in their own fields",
        ));
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = split_host_port(&authority).ok_or_else(|| {
        VaultError::InvalidRegistry(format!(
            "'{}' is not a host name with an optional port",
            authority.escape_debug()
        ))
    })?;
    let host = if DOCKER_HUB_ALIASES.contains(&host) {
        "docker.io"
    } else {
        host
    };
    Ok(match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// Splits `host[:port]` (host name, IPv4 or bracketed IPv6) and checks both parts.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
        {
            return None;
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
            && !host.starts_with(['.', '-'])
            && !host.ends_with(['.', '-']);
        if !host_ok {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&n| n != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised() {
        let cases = [
            ("ghcr.io", "ghcr.io"),
            ("https://GHCR.io/v2/", "ghcr.io"),
            ("http://localhost:5000", "localhost:5000"),
            ("localhost:5000/team/app:1.0", "localhost:5000"),
            (
                "registry.example.com:443/path?x#y",
                "registry.example.com:443",
            ),
            ("https://index.docker.io/v1/", "docker.io"),
            ("docker.io/library/alpine", "docker.io"),
            ("  europe-docker.pkg.dev/p/r  ", "europe-docker.pkg.dev"),
            ("[::1]:5000/x", "[::1]:5000"),
            ("10.0.0.7:8443", "10.0.0.7:8443"),
        ];
        for (url, host) in cases {
            assert_eq!(normalize_registry_host(url).unwrap(), host, "{url}");
        }
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_credentials() {
        for bad in [
            "",
            "https://",
            "ghcr.io:",
            "ghcr.io:99999",
            "ghcr.io:0",
            "-x.io",
            "a b",
            "ht tp://x",
            "[zz]:1",
            "host:1:2",
        ] {
            assert!(normalize_registry_host(bad).is_err(), "{bad}");
        }
        let err = normalize_registry_host("https://admin:hunter2@ghcr.io/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn scopes_map_to_owners() {
        for scope in [
            RegistryScope::Namespace("demo".into()),
            RegistryScope::Global,
            RegistryScope::GlobalPrivate,
        ] {
            assert_eq!(RegistryScope::from_owner(scope.owner()), scope);
        }
        let json = serde_json::to_string(&RegistryScope::Namespace("demo".into())).unwrap();
        assert_eq!(json, r#"{"type":"namespace","namespace":"demo"}"#);
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let creds = RegistryCredentials {
            username: "admin".into(),
            password: Zeroizing::new("8QwFLg%D$qg*".into()),
        };
        assert!(!format!("{creds:?}").contains("8QwFLg"));
    }
}
