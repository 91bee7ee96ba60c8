//! What the vault's errors are in the core's terms: bad names and values are the caller's
//! (invalid, too large), an unknown namespace is not found, and broken ciphertexts or keys are
//! the server's (internal). No vault error message holds a secret value or key material.

use faasbox_secrets::VaultError;

use crate::failure::Failure;

impl From<VaultError> for Failure {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::InvalidName { .. }
            | VaultError::InvalidRegistry(_)
            | VaultError::InvalidCredentials { .. } => Failure::invalid(e.to_string()),
            VaultError::TooLarge { .. } => Failure::too_large(e.to_string()),
            VaultError::Store(store) => Failure::from(store),
            VaultError::Undecryptable { .. }
            | VaultError::WrongMasterKey { .. }
            | VaultError::Encrypt { .. }
            | VaultError::Key(_) => Failure::internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureKind;

    #[test]
    fn kinds() {
        let bad = VaultError::InvalidRegistry("x".into());
        assert_eq!(Failure::from(bad).kind, FailureKind::Invalid);
        let large = VaultError::TooLarge {
            what: "secret demo/x".into(),
            len: 2,
            max: 1,
        };
        assert_eq!(Failure::from(large).kind, FailureKind::TooLarge);
        let missing = VaultError::Store(faasbox_store::StoreError::NoNamespace("demo".into()));
        assert_eq!(Failure::from(missing).kind, FailureKind::NotFound);
        let broken = VaultError::Undecryptable {
            what: "secret demo/x".into(),
        };
        assert_eq!(Failure::from(broken).kind, FailureKind::Internal);
    }
}
