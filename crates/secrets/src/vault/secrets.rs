//! Secrets: write, read (for injection into calls), delete, list by name.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{now_rfc3339, seal_error, Vault, MAX_SECRET_BYTES};
use crate::cipher::{self, Kind};
use crate::error::VaultError;
use crate::names::{check_namespace, check_secret_name};

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretInfo {
    /// The namespace it belongs to.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When its value was last set (RFC 3339).
    pub updated: String,
}

impl Vault {
    /// Creates or replaces a secret. The namespace must exist; its data key is created on
    /// first use.
    pub async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        value: &[u8],
    ) -> Result<SecretInfo, VaultError> {
        check_namespace(namespace)?;
        check_secret_name(name)?;
        let what = format!("secret {namespace}/{name}");
        if value.len() > MAX_SECRET_BYTES {
            return Err(VaultError::TooLarge {
                what,
                len: value.len(),
                max: MAX_SECRET_BYTES,
            });
        }
        let master = self.master().await;
        self.require_namespace(namespace).await?;
        let key = self.data_key_or_create(&master, namespace, &what).await?;
        let aad = cipher::aad(Kind::Secret, &[namespace, name])
            .map_err(|e| seal_error(e, what.clone()))?;
        let blob = cipher::seal(key.bytes(), &aad, value).map_err(|e| seal_error(e, what))?;
        let record = self
            .store
            .put_secret(namespace, name, &blob, &now_rfc3339())
            .await?;
        Ok(SecretInfo {
            namespace: record.namespace,
            name: record.name,
            created: record.created,
            updated: record.updated,
        })
    }

    /// A secret's value, or `None` if there is no such secret.
    pub async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        check_namespace(namespace)?;
        check_secret_name(name)?;
        let master = self.master().await;
        let Some(record) = self.store.secret(namespace, name).await? else {
            return Ok(None);
        };
        let what = format!("secret {namespace}/{name}");
        let undecryptable = || VaultError::Undecryptable { what: what.clone() };
        let key = self
            .data_key(&master, namespace, &what)
            .await?
            .ok_or_else(undecryptable)?;
        let aad = cipher::aad(Kind::Secret, &[namespace, name]).map_err(|_| undecryptable())?;
        let value =
            cipher::open(key.bytes(), &aad, &record.ciphertext).map_err(|_| undecryptable())?;
        Ok(Some(value))
    }

    /// Deletes a secret; false if there was none.
    pub async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool, VaultError> {
        check_namespace(namespace)?;
        check_secret_name(name)?;
        Ok(self.store.delete_secret(namespace, name).await?)
    }

    /// The secrets of a namespace, by name; values are never listed.
    pub async fn list_secrets(&self, namespace: &str) -> Result<Vec<SecretInfo>, VaultError> {
        check_namespace(namespace)?;
        Ok(self
            .store
            .list_secrets(namespace)
            .await?
            .into_iter()
            .map(|e| SecretInfo {
                namespace: e.namespace,
                name: e.name,
                created: e.created,
                updated: e.updated,
            })
            .collect())
    }
}
