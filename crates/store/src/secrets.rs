//! Secrets and registry credentials: wrapped data keys, secret ciphertexts and registry rows.
//!
//! A store holds no crypto. Values and passwords arrive already encrypted (by
//! `faasbox-secrets`) and leave as the same opaque blobs. Rows belong to a namespace, or to a
//! pseudo-namespace of a global scope: those start with `*`, which a real namespace name cannot,
//! so deleting a namespace never touches them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Whether `namespace` names a global scope rather than a real namespace.
pub fn is_pseudo_namespace(namespace: &str) -> bool {
    namespace.starts_with('*')
}

/// A namespace's data key, encrypted ("wrapped") by a master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataKeyRecord {
    /// The namespace, or a pseudo-namespace (`*…`) of a global scope.
    pub namespace: String,
    /// The id of the master key that wrapped it.
    pub key_id: String,
    /// The data key, encrypted: opaque to the store.
    pub wrapped: Vec<u8>,
    /// When it was made.
    pub created: String,
    /// When it was last wrapped (creation or master-key rotation).
    pub updated: String,
}

/// One stored secret: its encrypted value and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// The namespace it belongs to.
    pub namespace: String,
    /// Its name, unique in its namespace.
    pub name: String,
    /// The value, encrypted with the namespace's data key: opaque to the store.
    pub ciphertext: Vec<u8>,
    /// When it was first stored; kept when it is replaced.
    pub created: String,
    /// When its value last changed.
    pub updated: String,
}

/// A secret without its value, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEntry {
    /// The namespace it belongs to.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// When it was first stored.
    pub created: String,
    /// When its value last changed.
    pub updated: String,
}

/// One registry's credentials: the password is in `ciphertext`, the rest is in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// Its id (chosen by the server); kept when the credentials are replaced.
    pub id: String,
    /// The namespace, or a pseudo-namespace (`*…`) of a global scope.
    pub namespace: String,
    /// The URL as given.
    pub url: String,
    /// The normalised `host[:port]` used for look-ups; unique per namespace.
    pub host: String,
    /// The user name, in clear.
    pub username: String,
    /// The password, encrypted with the namespace's data key: opaque to the store.
    pub ciphertext: Vec<u8>,
    /// When the credentials for this host were first stored.
    pub created: String,
    /// When they last changed.
    pub updated: String,
}

/// Re-wraps one data key: gets the stored key and returns its new `(key_id, wrapped)`. Called
/// inside the store's transaction; it must not call the store. An error (a caller's own as
/// [`crate::StoreError::Refused`]) leaves every key as it was.
pub type Rewrap = Box<dyn FnMut(&DataKeyRecord) -> Result<(String, Vec<u8>)> + Send>;

/// Data keys, secrets and registry credentials, as opaque blobs. A namespace's rows go with the
/// namespace ([`crate::NamespaceStore::delete_namespace`]); pseudo-namespaces' rows stay.
#[async_trait]
pub trait SecretStore: Send + Sync {
    // --- data keys --------------------------------------------------------------------------

    /// The data key of `namespace` (real or pseudo); `None` when it has none.
    async fn data_key(&self, namespace: &str) -> Result<Option<DataKeyRecord>>;

    /// Stores a new data key unless the namespace already has one, and returns the one that is
    /// stored: when two callers race, both end up with the winner's key. The namespace is not
    /// checked (pseudo-namespaces have keys too).
    async fn insert_data_key(&self, record: &DataKeyRecord) -> Result<DataKeyRecord>;

    /// Every data key, ordered by namespace.
    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>>;

    /// Re-wraps every data key in one write transaction: no data key can be added or changed
    /// by anyone else between the read and the commit. If `rewrap` fails for any key nothing
    /// is changed and its error is returned. `rewrap` is called once per key, in order of
    /// namespace; `now` becomes each key's `updated` (`created` stays). Returns how many keys
    /// were re-wrapped.
    async fn rewrap_data_keys(&self, now: &str, rewrap: Rewrap) -> Result<usize>;

    // --- secrets ----------------------------------------------------------------------------

    /// Creates or replaces a secret's ciphertext (keeping `created` on replace), in one
    /// transaction with the checks: the namespace must exist (`NoNamespace`) and have a data key
    /// (`NoDataKey`).
    async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        ciphertext: &[u8],
        now: &str,
    ) -> Result<SecretRecord>;

    /// The secret `name` of `namespace`; `None` when there is none.
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretRecord>>;

    /// The secrets of a namespace ordered by name, without their values (empty for an unknown
    /// namespace).
    async fn list_secrets(&self, namespace: &str) -> Result<Vec<SecretEntry>>;

    /// Deletes a secret; whether it existed.
    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool>;

    // --- registries -------------------------------------------------------------------------

    /// Creates or replaces the credentials of `record.host` in `record.namespace`. On replace
    /// the stored `id` and `created` are kept and `record.updated` is taken as the time.
    /// A real namespace must exist (`NoNamespace`); every namespace (real or pseudo) must have
    /// a data key (`NoDataKey`). One transaction. Returns the credentials as stored.
    async fn put_registry(&self, record: &RegistryRecord) -> Result<RegistryRecord>;

    /// The credentials of `host` (normalised, as [`RegistryRecord::host`]) in `namespace`;
    /// `None` when there are none.
    async fn registry(&self, namespace: &str, host: &str) -> Result<Option<RegistryRecord>>;

    /// A namespace's (or pseudo-namespace's) registry credentials, ordered by host.
    async fn list_registries(&self, namespace: &str) -> Result<Vec<RegistryRecord>>;

    /// Deletes the credentials of `host` in `namespace`; whether they existed.
    async fn delete_registry(&self, namespace: &str, host: &str) -> Result<bool>;
}
