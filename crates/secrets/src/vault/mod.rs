//! [`Vault`]: the facade the server uses for secrets and registry credentials.
//!
//! The vault holds the master key (behind an async lock, so a rotation can swap it in place)
//! and the store, reached through its traits (`Arc<dyn Store>`: any backend). Its operations
//! are async: the store's work runs wherever the backend runs it, and the crypto here is a few
//! AES-GCM operations on small buffers. Each operation unwraps the data key it needs, uses it
//! and drops it (wiped); no data key stays in memory. Every operation holds the master key's
//! read lock from the data key's unwrapping (or creation) to the store write, and a rotation
//! holds the write lock from its read of the data keys to the in-memory swap, so no data key
//! can be wrapped under a key that is being retired.

mod registries;
mod rotate;
mod secrets;
mod services;

use std::sync::Arc;

use faasbox_store::{DataKeyRecord, Store, StoreError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::cipher::{self, CryptoError, Kind};
use crate::error::{KeyError, VaultError};
use crate::keys::{DataKey, MasterKey};
use crate::registry::RegistryScope;

pub use secrets::SecretInfo;

/// Largest secret value accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 256 * 1024;
/// Largest registry password accepted, in bytes (service-account keys in base64 fit).
pub const MAX_PASSWORD_BYTES: usize = 64 * 1024;

/// Secrets and registry credentials of every namespace, encrypted in the store under the
/// namespace's data key, which the master key wraps.
pub struct Vault {
    /// Shared with a rotation's re-wrap function, which runs inside the store's transaction.
    master: RwLock<Arc<MasterKey>>,
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key_id = match self.master.try_read() {
            Ok(master) => master.key_id().to_string(),
            Err(_) => "<being rotated>".to_string(),
        };
        f.debug_struct("Vault")
            .field("key_id", &key_id)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault over `store` with `master` as the master key in use.
    pub fn new(master: MasterKey, store: Arc<dyn Store>) -> Vault {
        Vault {
            master: RwLock::new(Arc::new(master)),
            store,
        }
    }

    /// The id of the master key in use.
    pub async fn key_id(&self) -> String {
        self.master().await.key_id().to_string()
    }

    /// Checks that every data key in the store is wrapped by the master key in use; returns
    /// how many there are. Call it at start to fail early with the wrong key.
    pub async fn check_master_key(&self) -> Result<usize, VaultError> {
        let master = self.master().await;
        let keys = self.store.list_data_keys().await?;
        let foreign: Vec<&DataKeyRecord> = keys
            .iter()
            .filter(|k| k.key_id != master.key_id())
            .collect();
        match foreign.first() {
            None => Ok(keys.len()),
            Some(first) => {
                let mut owner = describe_owner(&first.namespace);
                if foreign.len() > 1 {
                    owner.push_str(&format!(" (and {} more)", foreign.len() - 1));
                }
                Err(VaultError::WrongMasterKey {
                    what: "stored secrets and registry credentials".into(),
                    owner,
                    stored: first.key_id.clone(),
                    current: master.key_id().to_string(),
                })
            }
        }
    }

    /// The master key in use, read-locked: no rotation ends while the guard lives.
    pub(crate) async fn master(&self) -> RwLockReadGuard<'_, Arc<MasterKey>> {
        self.master.read().await
    }

    /// The data key of `owner`, or `None` if it has none yet.
    async fn data_key(
        &self,
        master: &MasterKey,
        owner: &str,
        what: &str,
    ) -> Result<Option<DataKey>, VaultError> {
        match self.store.data_key(owner).await? {
            Some(record) => unwrap_data_key(master, &record, what).map(Some),
            None => Ok(None),
        }
    }

    /// The data key of `owner`, created (and stored wrapped) on first use.
    async fn data_key_or_create(
        &self,
        master: &MasterKey,
        owner: &str,
        what: &str,
    ) -> Result<DataKey, VaultError> {
        if let Some(key) = self.data_key(master, owner, what).await? {
            return Ok(key);
        }
        let key = DataKey::generate()?;
        let wrapped = wrap_data_key(master, owner, &key)?;
        let now = now_rfc3339();
        let stored = self
            .store
            .insert_data_key(&DataKeyRecord {
                namespace: owner.to_string(),
                key_id: master.key_id().to_string(),
                wrapped: wrapped.clone(),
                created: now.clone(),
                updated: now,
            })
            .await?;
        if stored.wrapped == wrapped {
            Ok(key)
        } else {
            // Another writer created it first: use theirs.
            unwrap_data_key(master, &stored, what)
        }
    }

    async fn require_namespace(&self, namespace: &str) -> Result<(), VaultError> {
        if self.store.namespace(namespace).await?.is_none() {
            return Err(StoreError::NoNamespace(namespace.to_string()).into());
        }
        Ok(())
    }
}

/// Encrypts a data key under the master key, bound to its owner and the master key's id.
fn wrap_data_key(master: &MasterKey, owner: &str, key: &DataKey) -> Result<Vec<u8>, VaultError> {
    let what = || format!("the data key of {}", describe_owner(owner));
    let aad =
        cipher::aad(Kind::DataKey, &[owner, master.key_id()]).map_err(|e| seal_error(e, what()))?;
    cipher::seal(master.bytes(), &aad, key.bytes()).map_err(|e| seal_error(e, what()))
}

/// Decrypts a stored data key; `what` names the item it was needed for, in errors.
pub(crate) fn unwrap_data_key(
    master: &MasterKey,
    record: &DataKeyRecord,
    what: &str,
) -> Result<DataKey, VaultError> {
    if record.key_id != master.key_id() {
        return Err(VaultError::WrongMasterKey {
            what: what.to_string(),
            owner: describe_owner(&record.namespace),
            stored: record.key_id.clone(),
            current: master.key_id().to_string(),
        });
    }
    let undecryptable = || VaultError::Undecryptable {
        what: what.to_string(),
    };
    let aad = cipher::aad(Kind::DataKey, &[&record.namespace, &record.key_id])
        .map_err(|_| undecryptable())?;
    let plain = cipher::open(master.bytes(), &aad, &record.wrapped).map_err(|_| undecryptable())?;
    DataKey::from_slice(&plain).ok_or_else(undecryptable)
}

/// The error for a failed encryption of `what`.
fn seal_error(error: CryptoError, what: String) -> VaultError {
    match error {
        CryptoError::Random(e) => VaultError::Key(KeyError::Random(e)),
        CryptoError::BadAad => VaultError::Encrypt {
            what,
            reason: "a name contains a NUL character",
        },
        CryptoError::Seal | CryptoError::Open => VaultError::Encrypt {
            what,
            reason: "it is too long for AES-GCM",
        },
    }
}

/// "namespace demo", "global scope", "global-private scope".
fn describe_owner(owner: &str) -> String {
    RegistryScope::from_owner(owner).to_string()
}

/// Timestamps as the server writes them: RFC 3339, UTC, milliseconds.
fn now_rfc3339() -> String {
    let t = OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
