//! Tests of the vault on real SQLite files: round trips, tampering, key files, rotation and
//! registry scopes.

mod keys;
mod registries;
mod rotation;
mod services;
mod tamper;
mod vault;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use faasbox_store_sqlite::SqliteStore;
use tempfile::TempDir;

use crate::{MasterKey, Vault, VaultError};

/// The seed's registry password.
pub(crate) const SEED_PASSWORD: &str = "8QwFLg%D$qg*";
/// A secret value easy to spot in raw bytes.
pub(crate) const SECRET_VALUE: &[u8] = b"s3cr3t-VALUE-42";

pub(crate) struct TestEnv {
    pub dir: TempDir,
    pub db: PathBuf,
    pub store: Arc<SqliteStore>,
    pub vault: Vault,
}

/// A database file with namespaces `demo` and `other`, and a vault with a fresh key.
pub(crate) fn env() -> TestEnv {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("faasbox.db");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    store.create_namespace("demo", "t0").unwrap();
    store.create_namespace("other", "t0").unwrap();
    let vault = Vault::new(MasterKey::generate().unwrap(), store.clone());
    TestEnv {
        dir,
        db,
        store,
        vault,
    }
}

impl TestEnv {
    /// A second connection on the database file, to alter rows behind the vault's back.
    pub fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).unwrap()
    }

    /// Another vault on the same store.
    pub fn vault_with(&self, key: MasterKey) -> Vault {
        Vault::new(key, self.store.clone())
    }

    /// A copy of the vault's master key, through its base64 form.
    pub async fn key_copy(&self) -> MasterKey {
        copy(&**self.vault.master().await)
    }
}

pub(crate) fn copy(key: &MasterKey) -> MasterKey {
    MasterKey::from_base64(&key.to_base64()).unwrap()
}

/// The message every decryption failure of a secret must carry.
pub(crate) fn undecryptable_message(what: &str) -> String {
    format!(
        "{what} cannot be decrypted: it was altered, moved from another name or namespace, \
         or encrypted under another master key"
    )
}

/// Asserts that `result` is the clear decryption error for `what`.
pub(crate) fn assert_undecryptable<T: std::fmt::Debug>(result: Result<T, VaultError>, what: &str) {
    match result {
        Err(e @ VaultError::Undecryptable { .. }) => {
            assert_eq!(e.to_string(), undecryptable_message(what))
        }
        other => panic!("expected {what} to be undecryptable, got {other:?}"),
    }
}

/// Every byte of the database file and its WAL.
pub(crate) fn raw_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(PathBuf::from(wal)) {
        bytes.extend_from_slice(&more);
    }
    bytes
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
