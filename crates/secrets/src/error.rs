//! The errors of this crate. No message holds a secret value, a password or key material.

use std::path::PathBuf;

use faasbox_store::StoreError;

/// Loading, creating or writing a master key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the master key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the master key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the master key file {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("the master key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "the master key file {path} can be read by other users (mode {mode:04o}); \
         restrict it with `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the master key from {origin} is invalid: {reason}")]
    Invalid { origin: String, reason: String },
    #[error("both {0} and {1} are set; set only one of them")]
    Ambiguous(&'static str, &'static str),
    #[error(
        "the master key file {path} is missing, but the database holds data keys wrapped by \
         master key {key_ids}; restore that key file (or give the key with FAASBOX_MASTER_KEY) \
         instead of letting faasbox create a new one"
    )]
    Missing { path: PathBuf, key_ids: String },
    #[error("the system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// Storing or reading secrets and registry credentials.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Authentication of a ciphertext failed: tampering, a row moved to another name,
    /// namespace or kind, or a data key wrapped under another master key.
    #[error(
        "{what} cannot be decrypted: it was altered, moved from another name or namespace, \
         or encrypted under another master key"
    )]
    Undecryptable { what: String },
    /// The data key was wrapped by another master key than the one in use.
    #[error(
        "{what} cannot be decrypted: the data key of {owner} was wrapped by master key \
         {stored}, not by the master key in use ({current}); start faasbox with the master \
         key that encrypted it"
    )]
    WrongMasterKey {
        what: String,
        owner: String,
        stored: String,
        current: String,
    },
    #[error("{kind} name '{name}' is invalid: {rule}")]
    InvalidName {
        kind: &'static str,
        name: String,
        rule: &'static str,
    },
    #[error("registry URL is invalid: {0}")]
    InvalidRegistry(String),
    #[error("registry {field} is invalid: {rule}")]
    InvalidCredentials {
        field: &'static str,
        rule: &'static str,
    },
    #[error("{what} is too large: {len} bytes, at most {max} are allowed")]
    TooLarge {
        what: String,
        len: usize,
        max: usize,
    },
    #[error("cannot encrypt {what}: {reason}")]
    Encrypt { what: String, reason: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
}
