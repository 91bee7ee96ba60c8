//! How the vault's errors answer over the API: bad names and values are the caller's (400,
//! 413), an unknown namespace is 404, and broken ciphertexts or keys are the server's (500).
//! No vault error message holds a secret value or key material.

use axum::http::StatusCode;
use faasbox_secrets::VaultError;

use crate::error::{codes, ApiError};

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::InvalidName { .. }
            | VaultError::InvalidRegistry(_)
            | VaultError::InvalidCredentials { .. } => ApiError::bad_request(e.to_string()),
            VaultError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::TOO_LARGE,
                e.to_string(),
            ),
            VaultError::Store(store) => ApiError::from(store),
            VaultError::Undecryptable { .. }
            | VaultError::WrongMasterKey { .. }
            | VaultError::Encrypt { .. }
            | VaultError::Key(_) => ApiError::internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let bad = VaultError::InvalidRegistry("x".into());
        assert_eq!(ApiError::from(bad).status, StatusCode::BAD_REQUEST);
        let large = VaultError::TooLarge {
            what: "secret demo/x".into(),
            len: 2,
            max: 1,
        };
        assert_eq!(ApiError::from(large).status, StatusCode::PAYLOAD_TOO_LARGE);
        let missing = VaultError::Store(faasbox_store::StoreError::NoNamespace("demo".into()));
        assert_eq!(ApiError::from(missing).status, StatusCode::NOT_FOUND);
        let broken = VaultError::Undecryptable {
            what: "secret demo/x".into(),
        };
        assert_eq!(
            ApiError::from(broken).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
