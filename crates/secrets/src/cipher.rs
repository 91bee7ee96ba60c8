//! AES-256-GCM sealing of values and data keys, and the associated data that binds each
//! ciphertext to its place.
//!
//! **Blob layout** (version 1): `0x01 || nonce (12 bytes, random) || ciphertext || tag (16)`.
//! A fresh nonce is drawn for every encryption, so the same value never encrypts twice to the
//! same blob.
//!
//! **Associated data**: `faasbox-secret-v1 \0 <kind> \0 <part> \0 <part> …`, each part followed
//! by a NUL byte. Parts never contain NUL (such input is refused), so the encoding is
//! unambiguous. Kinds and parts:
//!
//! - `secret`: namespace, secret name;
//! - `registry`: owner (namespace or `*global` / `*global-private`), host, username;
//! - `data-key`: owner, master key id;
//! - `service`: namespace, `service:NAME`, the secret parameter's key.
//!
//! A blob moved to another name, namespace, owner, host, username or kind fails to open.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::KEY_LEN;

/// The first byte of every blob written by this version.
pub(crate) const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;
const AAD_PREFIX: &[u8] = b"faasbox-secret-v1";

/// What a ciphertext holds; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Secret,
    Registry,
    DataKey,
    Service,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Kind::Secret => b"secret",
            Kind::Registry => b"registry",
            Kind::DataKey => b"data-key",
            Kind::Service => b"service",
        }
    }
}

/// Why sealing or opening failed. Deliberately without detail: callers turn it into an error
/// that names the item, never its content.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CryptoError {
    /// A part of the associated data holds a NUL byte.
    BadAad,
    /// The blob is malformed, of an unknown version, or fails authentication.
    Open,
    /// Encryption itself failed (input too long for AES-GCM).
    Seal,
    Random(getrandom::Error),
}

/// The associated data of an item of `kind` identified by `parts`.
pub(crate) fn aad(kind: Kind, parts: &[&str]) -> Result<Vec<u8>, CryptoError> {
    if parts.iter().any(|p| p.as_bytes().contains(&0)) {
        return Err(CryptoError::BadAad);
    }
    let len = AAD_PREFIX.len() + 1 + kind.label().len() + 1;
    let mut out = Vec::with_capacity(len + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    out.extend_from_slice(AAD_PREFIX);
    out.push(0);
    out.extend_from_slice(kind.label());
    for part in parts {
        out.push(0);
        out.extend_from_slice(part.as_bytes());
    }
    out.push(0);
    Ok(out)
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(<&Key<Aes256Gcm>>::from(key))
}

/// Encrypts `plaintext` under `key` with a fresh random nonce; returns the blob.
pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(CryptoError::Random)?;
    // Sized once, so the plaintext copy is never left behind by a reallocation; it is
    // encrypted in place right away.
    let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    blob.push(BLOB_VERSION);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(plaintext);
    let sealed = cipher(key).encrypt_inout_detached(
        <&Nonce<_>>::from(&nonce),
        aad,
        (&mut blob[HEADER_LEN..]).into(),
    );
    match sealed {
        Ok(tag) => {
            blob.extend_from_slice(tag.as_slice());
            Ok(blob)
        }
        Err(_) => {
            blob.zeroize();
            Err(CryptoError::Seal)
        }
    }
}

/// Decrypts a blob made by [`seal`] with the same key and associated data.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < HEADER_LEN + TAG_LEN || blob[0] != BLOB_VERSION {
        return Err(CryptoError::Open);
    }
    let (header, body) = blob.split_at(HEADER_LEN);
    let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
    let nonce = <&Nonce<_>>::try_from(&header[1..]).map_err(|_| CryptoError::Open)?;
    let tag = <&Tag>::try_from(tag).map_err(|_| CryptoError::Open)?;
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    cipher(key)
        .decrypt_inout_detached(nonce, aad, plain.as_mut_slice().into(), tag)
        .map_err(|_| CryptoError::Open)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_LEN] = [7; KEY_LEN];

    #[test]
    fn blob_layout_and_round_trip() {
        let ad = aad(Kind::Secret, &["demo", "token"]).unwrap();
        assert_eq!(ad, b"faasbox-secret-v1\0secret\0demo\0token\0");
        let blob = seal(&KEY, &ad, b"hello").unwrap();
        assert_eq!(blob.len(), 1 + 12 + 5 + 16);
        assert_eq!(blob[0], BLOB_VERSION);
        assert_eq!(open(&KEY, &ad, &blob).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn nonces_are_fresh() {
        let ad = aad(Kind::Secret, &["demo", "token"]).unwrap();
        let a = seal(&KEY, &ad, b"same").unwrap();
        let b = seal(&KEY, &ad, b"same").unwrap();
        assert_ne!(a[1..13], b[1..13]);
        assert_ne!(a, b);
    }

    #[test]
    fn any_change_fails() {
        let ad = aad(Kind::Secret, &["demo", "token"]).unwrap();
        let blob = seal(&KEY, &ad, b"hello").unwrap();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert_eq!(open(&KEY, &ad, &bad), Err(CryptoError::Open), "byte {i}");
        }
        assert_eq!(open(&KEY, &ad, &blob[..20]), Err(CryptoError::Open));
        assert_eq!(open(&[8; KEY_LEN], &ad, &blob), Err(CryptoError::Open));
        let other = aad(Kind::Registry, &["demo", "token"]).unwrap();
        assert_eq!(open(&KEY, &other, &blob), Err(CryptoError::Open));
    }

    #[test]
    fn aad_is_unambiguous() {
        assert_ne!(
            aad(Kind::Secret, &["ab", "c"]).unwrap(),
            aad(Kind::Secret, &["a", "bc"]).unwrap()
        );
        assert_eq!(aad(Kind::Secret, &["a\0b", "c"]), Err(CryptoError::BadAad));
    }
}
