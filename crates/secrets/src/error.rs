//! The errors of this crate. No message holds a secret value, a password or key material.

use std::path::PathBuf;

use faasbox_store::StoreError;

/// Loading, creating or writing a master key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file exists but cannot be read.
    #[error("cannot read the master key file {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// A new key file cannot be written.
    #[error("cannot write the master key file {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// Why writing failed.
        source: std::io::Error,
    },
    /// The key file is not there.
    #[error("the master key file {path} does not exist")]
    NotFound {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is a directory, a device or another non-file.
    #[error("the master key file {path} is not a regular file")]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The key file grants its group or other users any access.
    #[error(
        "the master key file {path} can be read by other users (mode {mode:04o}); \
         restrict it with `chmod 600 {path}`"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// What was read is not a key.
    #[error("the master key from {origin} is invalid: {reason}")]
    Invalid {
        /// Where the key came from (a file or a variable).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two sources of the key are given (the two variables' names).
    #[error("both {0} and {1} are set; set only one of them")]
    Ambiguous(&'static str, &'static str),
    /// No key file, yet the store holds data keys wrapped by a master key: making a new key
    /// would lose them.
    #[error(
        "the master key file {path} is missing, but the database holds data keys wrapped by \
         master key {key_ids}; restore that key file (or give the key with FAASBOX_MASTER_KEY) \
         instead of letting faasbox create a new one"
    )]
    Missing {
        /// The key file.
        path: PathBuf,
        /// The ids of the master keys the stored data keys need.
        key_ids: String,
    },
    /// A new key could not be drawn.
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
    Undecryptable {
        /// What could not be decrypted (kind, namespace and name).
        what: String,
    },
    /// The data key was wrapped by another master key than the one in use.
    #[error(
        "{what} cannot be decrypted: the data key of {owner} was wrapped by master key \
         {stored}, not by the master key in use ({current}); start faasbox with the master \
         key that encrypted it"
    )]
    WrongMasterKey {
        /// What could not be decrypted.
        what: String,
        /// The namespace (or registry scope) whose data key it is.
        owner: String,
        /// The id of the master key that wrapped the data key.
        stored: String,
        /// The id of the master key in use.
        current: String,
    },
    /// A secret's or registry's name breaks the naming rule.
    #[error("{kind} name '{name}' is invalid: {rule}")]
    InvalidName {
        /// What is named (`secret`, …).
        kind: &'static str,
        /// The name given.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A registry URL that names no registry host (the reason).
    #[error("registry URL is invalid: {0}")]
    InvalidRegistry(String),
    /// A registry user name or password that cannot be used.
    #[error("registry {field} is invalid: {rule}")]
    InvalidCredentials {
        /// `username` or `password`.
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A value past its size bound.
    #[error("{what} is too large: {len} bytes, at most {max} are allowed")]
    TooLarge {
        /// What was given.
        what: String,
        /// Its length in bytes.
        len: usize,
        /// The bound in bytes.
        max: usize,
    },
    /// Encryption itself failed.
    #[error("cannot encrypt {what}: {reason}")]
    Encrypt {
        /// What was being encrypted.
        what: String,
        /// Why it failed.
        reason: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The master key could not be had.
    #[error(transparent)]
    Key(#[from] KeyError),
}
