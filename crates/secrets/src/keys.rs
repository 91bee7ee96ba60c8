//! Key material: the master key and the per-namespace data keys.
//!
//! Both are 32 random bytes held in [`Zeroizing`] buffers (wiped on drop), and both print as
//! `…` in `Debug`. A master key is known by its key id: the first 8 bytes of the SHA-256 of the
//! key, in hex (16 characters). The id is stored next to every wrapped data key so that a wrong
//! master key is told apart from tampering.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::KeyError;

/// Length of master and data keys, in bytes (AES-256).
pub(crate) const KEY_LEN: usize = 32;

/// The key that wraps every data key. Kept apart from the database.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl MasterKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<MasterKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(KeyError::Random)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let digest = Sha256::digest(bytes.as_slice());
        let id = hex::encode(&digest[..8]);
        MasterKey { bytes, id }
    }

    /// A key from base64 text (standard alphabet, padding optional; surrounding whitespace
    /// ignored), as in `FAASBOX_MASTER_KEY`.
    pub fn from_base64(text: &str) -> Result<MasterKey, KeyError> {
        MasterKey::parse_base64(text, "base64 text")
    }

    pub(crate) fn parse_base64(text: &str, origin: &str) -> Result<MasterKey, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            origin: origin.to_string(),
            reason,
        };
        let trimmed = text.trim().trim_end_matches('=');
        let mut decoded = Zeroizing::new(Vec::with_capacity(KEY_LEN + 3));
        // The decoder's own error names the offending character, a piece of the key: drop it.
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode_vec(trimmed, &mut decoded)
            .map_err(|_| {
                invalid(format!(
                    "it is not base64 text; create one with `head -c {KEY_LEN} /dev/urandom | base64`"
                ))
            })?;
        MasterKey::from_slice(&decoded).ok_or_else(|| {
            invalid(format!(
                "it decodes to {} bytes, a master key is {KEY_LEN}",
                decoded.len()
            ))
        })
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<MasterKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Some(MasterKey::from_bytes(key))
    }

    /// The key id: hex of the first 8 bytes of SHA-256 of the key.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// The key as base64 text (the key file's content, or a value for `FAASBOX_MASTER_KEY`).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_slice()))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

/// A namespace's (or global scope's) data key, unwrapped.
pub(crate) struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub(crate) fn generate() -> Result<DataKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(KeyError::Random)?;
        Ok(DataKey(bytes))
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Some(DataKey(key))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(…)")
    }
}
