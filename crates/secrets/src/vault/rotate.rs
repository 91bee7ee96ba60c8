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

use faasbox_store::{Rewrap, Store, StoreError};

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
    /// otherwise the error says which key to restore. The key file is read and written here
    /// directly: this runs once, before the server serves anything.
    pub async fn open(source: &KeySource, store: Arc<dyn Store>) -> Result<Vault, VaultError> {
        if let Some(path) = source.key_file() {
            recover_staged_key(path, &*store).await?;
        }
        if let KeySource::DefaultFile(path) = source {
            let missing = matches!(
                fs::symlink_metadata(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            );
            if missing {
                let mut ids: Vec<String> = store
                    .list_data_keys()
                    .await?
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
        vault.check_master_key().await?;
        Ok(vault)
    }

    /// Re-wraps every data key under `new` in one transaction and then, still under the lock,
    /// makes `new` the key in use. Returns how many data keys were re-wrapped.
    ///
    /// Until the commit, reads keep working with the old key; if anything fails (a data key
    /// that the old key cannot unwrap, a database error) nothing changes. Data keys already
    /// wrapped by `new` (a retried rotation) are accepted. Persisting `new` is the caller's
    /// job; [`Vault::rotate_key_file`] does both for a key file.
    pub async fn rotate_master_key(&self, new: MasterKey) -> Result<usize, VaultError> {
        // Held from the read of the data keys to the swap: no operation uses the old key
        // after the commit, none wraps a data key under it meanwhile.
        let mut master = self.master.write().await;
        let old = Arc::clone(&*master);
        let new = Arc::new(new);
        let wrapping = Arc::clone(&new);
        // The store's transaction calls it once per data key; it owns what it needs.
        let rewrap: Rewrap = Box::new(move |record| {
            let what = format!("the data key of {}", describe_owner(&record.namespace));
            let holder = if record.key_id == wrapping.key_id() {
                &wrapping
            } else {
                &old
            };
            let key = unwrap_data_key(holder, record, &what).map_err(refuse)?;
            let wrapped = wrap_data_key(&wrapping, &record.namespace, &key).map_err(refuse)?;
            Ok((wrapping.key_id().to_string(), wrapped))
        });
        let count = self
            .store
            .rewrap_data_keys(&now_rfc3339(), rewrap)
            .await
            .map_err(refused)?;
        *master = new;
        Ok(count)
    }

    /// Rotates to `new` and replaces the key file at `path`, crash-safely (see the module
    /// documentation). The key file keeps mode 0600.
    /// The file work (write and fsync, rename) runs on a blocking thread.
    pub async fn rotate_key_file(&self, path: &Path, new: MasterKey) -> Result<usize, VaultError> {
        let staged = staged_key_path(path);
        let new = {
            let staged = staged.clone();
            on_blocking_thread(path, move || write_key_file(&staged, &new).map(|()| new)).await?
        };
        let count = match self.rotate_master_key(new).await {
            Ok(count) => count,
            Err(e) => {
                let _ = on_blocking_thread(path, move || {
                    let _ = fs::remove_file(&staged);
                    Ok(())
                })
                .await;
                return Err(e);
            }
        };
        let file = path.to_path_buf();
        on_blocking_thread(path, move || commit_staged_key(&file)).await?;
        Ok(count)
    }
}

/// Runs file work on the key file `path` on one of tokio's blocking threads.
async fn on_blocking_thread<T, F>(path: &Path, work: F) -> Result<T, KeyError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, KeyError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down.
        Err(e) => Err(KeyError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        }),
    }
}

/// A vault error raised inside the store's transaction, carried out as the store's refusal.
fn refuse(error: VaultError) -> StoreError {
    StoreError::Refused(Box::new(error))
}

/// The store's error of a rotation: the vault's own error again if the re-wrap refused.
fn refused(error: StoreError) -> VaultError {
    match error {
        StoreError::Refused(source) => match source.downcast::<VaultError>() {
            Ok(vault) => *vault,
            Err(other) => VaultError::Store(StoreError::Refused(other)),
        },
        other => VaultError::Store(other),
    }
}

/// Finishes or undoes a rotation interrupted between staging its key and renaming it.
async fn recover_staged_key(path: &Path, store: &dyn Store) -> Result<(), VaultError> {
    let staged = staged_key_path(path);
    let new = match MasterKey::from_file(&staged) {
        Ok(key) => key,
        Err(KeyError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let committed = store
        .list_data_keys()
        .await?
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
