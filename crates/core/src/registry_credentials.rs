//! Which stored registry credentials a pull or push may use ([`CredentialScope`]) and the
//! vault's credentials for it as the image store asks for them ([`VaultCredentials`]). A
//! module of its own: deploy-time pulls (`image_pull`) and the cluster's shared images
//! (`shared_images`) both use it, and each uses the other.

use std::collections::HashMap;

use faasbox_images::{CredentialSource, RegistryAuth};
use faasbox_secrets::{normalize_registry_host, RegistryScope, Vault};

use crate::owner::Owner;

/// Which stored registry credentials a pull may use.
#[derive(Debug, Clone)]
pub enum CredentialScope {
    /// A namespace's function: the namespace's registries, then the global ones.
    Namespace(String),
    /// The global registries only (a pull named by no namespace).
    Global,
    /// A global service: the global-private registries, then the global ones.
    GlobalService,
}

impl From<&Owner> for CredentialScope {
    fn from(owner: &Owner) -> Self {
        match owner {
            Owner::Namespace(ns) => CredentialScope::Namespace(ns.clone()),
            Owner::Global => CredentialScope::GlobalService,
        }
    }
}

/// Registry credentials from the vault for one transfer. The image store asks for them
/// synchronously, in the middle of async work, and the vault is async: so they are read (and
/// decrypted) before the transfer starts, every registry of the scopes the owner's pulls may
/// use, and kept only for this transfer.
pub struct VaultCredentials {
    /// By normalised host, the first scope's first: what the vault gave, or why it could not
    /// (the transfer then goes anonymous, as it did when a look-up failed).
    found: HashMap<String, Result<RegistryAuth, String>>,
}

impl VaultCredentials {
    /// Reads the credentials `scope`'s pulls may use: a namespace's own registries, then the
    /// global ones; a global service's global-private ones, then the global ones.
    pub async fn load(vault: &Vault, scope: &CredentialScope) -> VaultCredentials {
        let scopes = match scope {
            CredentialScope::Namespace(ns) => {
                vec![RegistryScope::Namespace(ns.clone()), RegistryScope::Global]
            }
            CredentialScope::GlobalService => {
                vec![RegistryScope::GlobalPrivate, RegistryScope::Global]
            }
            CredentialScope::Global => vec![RegistryScope::Global],
        };
        let mut found = HashMap::new();
        for scope in &scopes {
            let listed = match vault.list_registries(scope).await {
                Ok(listed) => listed,
                Err(e) => {
                    // Later scopes must not stand in for this one's registries.
                    tracing::warn!("reading the registry credentials of {scope}: {e}");
                    break;
                }
            };
            for registry in listed {
                if found.contains_key(&registry.host) {
                    continue;
                }
                let read = match vault.registry_credentials(scope, &registry.host).await {
                    Ok(Some(c)) => Ok(RegistryAuth {
                        username: c.username.clone(),
                        password: c.password.to_string(),
                    }),
                    // Deleted meanwhile.
                    Ok(None) => continue,
                    Err(e) => Err(e.to_string()),
                };
                found.insert(registry.host, read);
            }
        }
        VaultCredentials { found }
    }
}

impl CredentialSource for VaultCredentials {
    fn credentials(&self, registry_host: &str) -> Option<RegistryAuth> {
        let host = match normalize_registry_host(registry_host) {
            Ok(host) => host,
            Err(e) => {
                tracing::warn!("reading the credentials of registry {registry_host}: {e}");
                return None;
            }
        };
        match self.found.get(&host)? {
            Ok(auth) => Some(auth.clone()),
            Err(e) => {
                tracing::warn!("reading the credentials of registry {registry_host}: {e}");
                None
            }
        }
    }
}
