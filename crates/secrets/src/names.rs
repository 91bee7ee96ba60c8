//! Checks of the names and credentials that go into associated data and the store.

use crate::error::VaultError;

const NAMESPACE_RULE: &str =
    "use 1-63 characters of a-z, 0-9, '-', '_' and '.', starting with a letter or digit";
const SECRET_RULE: &str =
    "use 1-128 characters of A-Z, a-z, 0-9, '-', '_' and '.', starting with a letter or digit";

/// A namespace name, as the server checks it. Such names never start with `*`, which keeps
/// them apart from the pseudo-namespaces of global scopes.
pub(crate) fn check_namespace(name: &str) -> Result<(), VaultError> {
    let valid = name.len() <= 63
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            kind: "namespace",
            name: name.escape_debug().to_string(),
            rule: NAMESPACE_RULE,
        })
    }
}

/// A secret name (case kept: workflows refer to them as `.secrets.secretToken`).
pub fn check_secret_name(name: &str) -> Result<(), VaultError> {
    let valid = name.len() <= 128
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            kind: "secret",
            name: name.escape_debug().to_string(),
            rule: SECRET_RULE,
        })
    }
}

/// A registry username: 1-256 characters, no control characters and no ':' (HTTP basic
/// authentication joins username and password with the first ':').
pub(crate) fn check_username(username: &str) -> Result<(), VaultError> {
    let valid = !username.is_empty()
        && username.len() <= 256
        && !username.chars().any(|c| c.is_control() || c == ':');
    if valid {
        Ok(())
    } else {
        Err(VaultError::InvalidCredentials {
            field: "username",
            rule: "use 1-256 characters without ':' or control characters",
        })
    }
}

/// A registry password: not empty, no NUL; its length is checked by the vault.
pub(crate) fn check_password(password: &str) -> Result<(), VaultError> {
    if password.is_empty() || password.contains('\0') {
        return Err(VaultError::InvalidCredentials {
            field: "password",
            rule: "it must not be empty or contain NUL characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_namespace("demo-1.x_y").is_ok());
        for bad in ["", "Demo", "-x", "*global", "a/b", &"a".repeat(64)] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
        assert!(check_secret_name("secretToken").is_ok());
        for bad in ["", ".x", "a b", "a\0b", "a/b", &"a".repeat(129)] {
            assert!(check_secret_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_username("_json_key_base64").is_ok());
        assert!(check_username("a:b").is_err());
        assert!(check_password("8QwFLg%D$qg*").is_ok());
        assert!(check_password("").is_err());
    }
}
