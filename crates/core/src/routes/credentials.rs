//! A route's stored credentials: basic-auth passwords as Argon2id hashes (PHC strings), API
//! keys as SHA-256 hex (keys must be long enough that a fast hash is safe), and their checks,
//! in constant time.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest API key a route takes.
pub const MIN_KEY_LEN: usize = 16;

/// Why a credential could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("the password could not be hashed: {0}")]
pub struct HashError(String);

/// An Argon2id hash of `password` with a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `hash` (a [`hash_password`] result); a malformed hash matches
/// nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The SHA-256 hex of an API key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether `key` hashes to `hash`, compared in constant time.
pub fn verify_key(key: &str, hash: &str) -> bool {
    hash_key(key).as_bytes().ct_eq(hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_only() {
        let hash = hash_password("s3cret-pass").expect("hashed");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("s3cret-pass", &hash));
        assert!(!verify_password("s3cret-pasS", &hash));
        assert!(!verify_password("s3cret-pass", "not a hash"));
    }

    #[test]
    fn a_key_matches_its_hash_only() {
        let hash = hash_key("0123456789abcdef");
        assert!(verify_key("0123456789abcdef", &hash));
        assert!(!verify_key("0123456789abcdeF", &hash));
    }
}
