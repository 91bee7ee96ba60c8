//! faasbox's secrets: per-namespace secrets and container-registry credentials, kept encrypted
//! in the metadata store with envelope encryption.
//!
//! - A **master key** (32 random bytes) lives apart from the database: a key file created on
//!   first use with mode 0600, or a key given from outside (`FAASBOX_MASTER_KEY`,
//!   `FAASBOX_MASTER_KEY_FILE`). See [`MasterKey`] and [`KeySource`].
//! - Each namespace (and each global registry scope) has its own random 256-bit **data key**,
//!   stored wrapped by the master key (AES-256-GCM).
//! - Secret values and registry passwords are encrypted with the data key (AES-256-GCM, fresh
//!   nonce each time), bound to their kind, namespace and name (formats: `cipher.rs`).
//! - [`Vault`] is the facade the server uses. Rotating the master key re-wraps the data keys
//!   only; see [`Vault::rotate_master_key`] and [`Vault::rotate_key_file`].
//!
//! Values and key material are held in [`zeroize::Zeroizing`] buffers and never appear in an
//! error message or in the `Debug` output of this crate's types. The buffer
//! [`Vault::get_secret`] returns is the caller's to keep out of logs (its `Debug` shows bytes).

mod cipher;
mod error;
mod keyfile;
mod keys;
mod names;
mod registry;
pub(crate) mod vault;

pub use error::{KeyError, VaultError};
pub use keyfile::{staged_key_path, write_key_file, KeySource, ENV_KEY, ENV_KEY_FILE};
pub use keys::MasterKey;
pub use names::check_secret_name;
pub use registry::{normalize_registry_host, RegistryCredentials, RegistryInfo, RegistryScope};
pub use vault::{SecretInfo, Vault, MAX_PASSWORD_BYTES, MAX_SECRET_BYTES};
pub use zeroize::Zeroizing;

#[cfg(test)]
mod tests;
