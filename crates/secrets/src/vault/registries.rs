//! Registry credentials: the password is encrypted with the scope's data key; the URL, the
//! normalised host and the username are kept in clear (they are listed), and host and
//! username are bound into the ciphertext's associated data.

use faasbox_store::RegistryRecord;
use zeroize::{Zeroize, Zeroizing};

use super::{now_rfc3339, seal_error, Vault, MAX_PASSWORD_BYTES};
use crate::cipher::{self, Kind};
use crate::error::VaultError;
use crate::names::{check_namespace, check_password, check_username};
use crate::registry::{normalize_registry_host, RegistryCredentials, RegistryInfo, RegistryScope};

impl Vault {
    /// Creates or replaces the credentials for a registry in `scope`, keyed by the URL's
    /// normalised host. A namespace scope's namespace must exist.
    pub async fn put_registry(
        &self,
        scope: RegistryScope,
        url: &str,
        username: &str,
        password: &str,
    ) -> Result<RegistryInfo, VaultError> {
        check_scope(&scope)?;
        let host = normalize_registry_host(url)?;
        check_username(username)?;
        check_password(password)?;
        let what = describe(&scope, &host);
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(VaultError::TooLarge {
                what: format!("the password of {what}"),
                len: password.len(),
                max: MAX_PASSWORD_BYTES,
            });
        }
        let owner = scope.owner();
        let master = self.master().await;
        if let RegistryScope::Namespace(ns) = &scope {
            self.require_namespace(ns).await?;
        }
        let key = self.data_key_or_create(&master, owner, &what).await?;
        let aad = cipher::aad(Kind::Registry, &[owner, &host, username])
            .map_err(|e| seal_error(e, what.clone()))?;
        let blob = cipher::seal(key.bytes(), &aad, password.as_bytes())
            .map_err(|e| seal_error(e, what))?;
        let now = now_rfc3339();
        let record = self
            .store
            .put_registry(&RegistryRecord {
                id: uuid::Uuid::new_v4().to_string(),
                namespace: owner.to_string(),
                url: url.trim().to_string(),
                host,
                username: username.to_string(),
                ciphertext: blob,
                created: now.clone(),
                updated: now,
            })
            .await?;
        Ok(info(record))
    }

    /// The registries of one scope (only that scope), by host; passwords are never listed.
    pub async fn list_registries(
        &self,
        scope: &RegistryScope,
    ) -> Result<Vec<RegistryInfo>, VaultError> {
        check_scope(scope)?;
        Ok(self
            .store
            .list_registries(scope.owner())
            .await?
            .into_iter()
            .map(info)
            .collect())
    }

    /// The credentials stored in exactly `scope` for the host of `url_or_host` (a URL, an image
    /// reference or a bare `host[:port]`), or `None`.
    pub async fn registry_credentials(
        &self,
        scope: &RegistryScope,
        url_or_host: &str,
    ) -> Result<Option<RegistryCredentials>, VaultError> {
        check_scope(scope)?;
        let host = normalize_registry_host(url_or_host)?;
        self.credentials_in(scope, &host).await
    }

    /// The credentials a function would pull with: for a function of `namespace`, the
    /// namespace's registry, else the global one; for a global service (`None`), the
    /// global-private registry, else the global one.
    pub async fn resolve_registry_credentials(
        &self,
        namespace: Option<&str>,
        url_or_host: &str,
    ) -> Result<Option<RegistryCredentials>, VaultError> {
        let first = match namespace {
            Some(ns) => RegistryScope::Namespace(ns.to_string()),
            None => RegistryScope::GlobalPrivate,
        };
        check_scope(&first)?;
        let host = normalize_registry_host(url_or_host)?;
        match self.credentials_in(&first, &host).await? {
            Some(found) => Ok(Some(found)),
            None => self.credentials_in(&RegistryScope::Global, &host).await,
        }
    }

    /// Deletes the credentials of the URL's host in `scope`; false if there were none.
    pub async fn delete_registry(
        &self,
        scope: &RegistryScope,
        url: &str,
    ) -> Result<bool, VaultError> {
        check_scope(scope)?;
        let host = normalize_registry_host(url)?;
        Ok(self.store.delete_registry(scope.owner(), &host).await?)
    }

    async fn credentials_in(
        &self,
        scope: &RegistryScope,
        host: &str,
    ) -> Result<Option<RegistryCredentials>, VaultError> {
        let owner = scope.owner();
        let master = self.master().await;
        let Some(record) = self.store.registry(owner, host).await? else {
            return Ok(None);
        };
        let what = describe(scope, host);
        let undecryptable = || VaultError::Undecryptable { what: what.clone() };
        let key = self
            .data_key(&master, owner, &what)
            .await?
            .ok_or_else(undecryptable)?;
        let aad = cipher::aad(Kind::Registry, &[owner, host, &record.username])
            .map_err(|_| undecryptable())?;
        let mut plain =
            cipher::open(key.bytes(), &aad, &record.ciphertext).map_err(|_| undecryptable())?;
        // Move the bytes out of their wiping buffer into another one, without a copy.
        let password = match String::from_utf8(std::mem::take(&mut *plain)) {
            Ok(text) => Zeroizing::new(text),
            Err(e) => {
                e.into_bytes().zeroize();
                return Err(undecryptable());
            }
        };
        Ok(Some(RegistryCredentials {
            username: record.username,
            password,
        }))
    }
}

fn check_scope(scope: &RegistryScope) -> Result<(), VaultError> {
    match scope {
        RegistryScope::Namespace(ns) => check_namespace(ns),
        RegistryScope::Global | RegistryScope::GlobalPrivate => Ok(()),
    }
}

/// "registry credentials for ghcr.io (namespace demo)", for errors.
fn describe(scope: &RegistryScope, host: &str) -> String {
    format!("registry credentials for {host} ({scope})")
}

fn info(record: RegistryRecord) -> RegistryInfo {
    RegistryInfo {
        id: record.id,
        scope: RegistryScope::from_owner(&record.namespace),
        url: record.url,
        host: record.host,
        username: record.username,
        created: record.created,
        updated: record.updated,
    }
}
