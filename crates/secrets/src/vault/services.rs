//! Service instances' secret parameters: sealed one by one under the namespace's data key,
//! each bound to its namespace, its service (`service:NAME`) and its key, and opened for a
//! call. The rest of a service (its plain parameters, its times) is the caller's to store.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{seal_error, Vault, MAX_SECRET_BYTES};
use crate::cipher::{self, Kind};
use crate::error::VaultError;
use crate::names::check_namespace;

impl Vault {
    /// Encrypts the secret parameters of service `service` of `namespace` (which must exist;
    /// its data key is created on first use): key → blob for the store.
    pub async fn seal_service_params(
        &self,
        namespace: &str,
        service: &str,
        params: &BTreeMap<String, Zeroizing<String>>,
    ) -> Result<BTreeMap<String, Vec<u8>>, VaultError> {
        check_namespace(namespace)?;
        let mut sealed = BTreeMap::new();
        if params.is_empty() {
            return Ok(sealed);
        }
        let master = self.master().await;
        self.require_namespace(namespace).await?;
        let what = format!("the secret parameters of service {namespace}/{service}");
        let key = self.data_key_or_create(&master, namespace, &what).await?;
        let place = format!("service:{service}");
        for (name, value) in params {
            let what = format!("secret parameter '{name}' of service {namespace}/{service}");
            if value.len() > MAX_SECRET_BYTES {
                return Err(VaultError::TooLarge {
                    what,
                    len: value.len(),
                    max: MAX_SECRET_BYTES,
                });
            }
            let aad = cipher::aad(Kind::Service, &[namespace, &place, name])
                .map_err(|e| seal_error(e, what.clone()))?;
            let blob = cipher::seal(key.bytes(), &aad, value.as_bytes())
                .map_err(|e| seal_error(e, what))?;
            sealed.insert(name.clone(), blob);
        }
        Ok(sealed)
    }

    /// Decrypts the secret parameters [`Vault::seal_service_params`] sealed for the same
    /// namespace and service.
    pub async fn open_service_params(
        &self,
        namespace: &str,
        service: &str,
        sealed: &BTreeMap<String, Vec<u8>>,
    ) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, VaultError> {
        check_namespace(namespace)?;
        let mut opened = BTreeMap::new();
        if sealed.is_empty() {
            return Ok(opened);
        }
        let master = self.master().await;
        let what = format!("the secret parameters of service {namespace}/{service}");
        let key = self
            .data_key(&master, namespace, &what)
            .await?
            .ok_or_else(|| VaultError::Undecryptable { what: what.clone() })?;
        let place = format!("service:{service}");
        for (name, blob) in sealed {
            let undecryptable = || VaultError::Undecryptable {
                what: format!("secret parameter '{name}' of service {namespace}/{service}"),
            };
            let aad = cipher::aad(Kind::Service, &[namespace, &place, name])
                .map_err(|_| undecryptable())?;
            let value = cipher::open(key.bytes(), &aad, blob).map_err(|_| undecryptable())?;
            opened.insert(name.clone(), value);
        }
        Ok(opened)
    }
}
