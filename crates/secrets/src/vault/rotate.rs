//! Master-key rotation: every data key is re-wrapped under the new master key in one
//! transaction; secrets and registry ciphertexts are untouched.
//!
//! For a key kept in a file, [`Vault::rotate_key_file`] makes the rotation crash-safe: the new
//! key is first written next to the key file (`<file>.new`, mode 0600, fsynced), then the data
//! keys are re-wrapped and committed, then `<file>.new` is renamed over the key file. After a
//! crash, [`Vault::open`] looks at which key the stored data keys name and either finishes the
//! rename or drops the staged file.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use faasbox_store_sqlite::SqliteStore;

use super::{describe_owner, now_rfc3339, unwrap_data_key, wrap_data_key, Vault};
use crate::error::{KeyError, VaultError};
use crate::keyfile::{commit_staged_key, staged_key_path, write_key_file, KeySource};
use crate::keys::MasterKey;

impl Vault {
    /// Opens the vault with the key from `source`, and checks that it is the key the stored
    /// data keys were wrapped with.
    ///
    /// For key files, an interrupted [`Vault::rotate_key_file`] is finished or undone first.
    /// A missing default key file is created only while the database holds no data key;
    /// otherwise the error says which key to restore.
    pub fn open(source: &KeySource, store: Arc<SqliteStore>) -> Result<Vault, VaultError> {
        if let Some(path) = source.key_file() {
            recover_staged_key(path, &store)?;
        }
        if let KeySource::DefaultFile(path) = source {
            let missing = matches!(
                fs::symlink_metadata(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            );
            if missing {
                let mut ids: Vec<String> = store
                    .list_data_keys()?
                    .into_iter()
                    .map(|k| k.key_id)
                    .collect();
                ids.sort();
                ids.dedup();
                if !ids.is_empty() {
                    return Err(KeyError::Missing {
                        path: path.clone(),
                        key_ids: ids.join(", "),
                    }
                    .into());
                }
            }
        }
        let vault = Vault::new(source.load()?, store);
        vault.check_master_key()?;
        Ok(vault)
    }

    /// Re-wraps every data key under `new` in one transaction and then, still under the lock,
    /// makes `new` the key in use. Returns how many data keys were re-wrapped.
    ///
    /// Until the commit, reads keep working with the old key; if anything fails (a data key
    /// that the old key cannot unwrap, a database error) nothing changes. Data keys already
    /// wrapped by `new` (a retried rotation) are accepted. Persisting `new` is the caller's
    /// job; [`Vault::rotate_key_file`] does both for a key file.
    pub fn rotate_master_key(&self, new: MasterKey) -> Result<usize, VaultError> {
        let mut master = self
            .master
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let old = &*master;
        let count = self.store.rewrap_data_keys(&now_rfc3339(), |record| {
            let what = format!("the data key of {}", describe_owner(&record.namespace));
            let holder = if record.key_id == new.key_id() {
                &new
            } else {
                old
            };
            let key = unwrap_data_key(holder, record, &what)?;
            let wrapped = wrap_data_key(&new, &record.namespace, &key)?;
            Ok::<_, VaultError>((new.key_id().to_string(), wrapped))
        })?;
        *master = new;
        Ok(count)
    }

    /// Rotates to `new` and replaces the key file at `path`, crash-safely (see the module
    /// documentation). The key file keeps mode 0600.
    pub fn rotate_key_file(&self, path: &Path, new: MasterKey) -> Result<usize, VaultError> {
        let staged = staged_key_path(path);
        write_key_file(&staged, &new)?;
        let count = match self.rotate_master_key(new) {
            Ok(count) => count,
            Err(e) => {
                let _ = fs::remove_file(&staged);
                return Err(e);
            }
        };
        commit_staged_key(path)?;
        Ok(count)
    }
}

/// Finishes or undoes a rotation interrupted between staging its key and renaming it.
fn recover_staged_key(path: &Path, store: &SqliteStore) -> Result<(), VaultError> {
    let staged = staged_key_path(path);
    let new = match MasterKey::from_file(&staged) {
        Ok(key) => key,
        Err(KeyError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let committed = store
        .list_data_keys()?
        .iter()
        .any(|k| k.key_id == new.key_id());
    if committed {
        commit_staged_key(path)?;
    } else {
        fs::remove_file(&staged).map_err(|source| KeyError::Write {
            path: staged.clone(),
            source,
        })?;
    }
    Ok(())
}
