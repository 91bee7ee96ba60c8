//! The bodies that create a registry: faasbox's `{"url","username","password"}` or Direktiv's
//! `{"data":"user:password","reg":"URL"}` (split at the first colon, so a password may hold
//! `%`, `$`, `*` and `:`), each with an optional `scope` on the global route.

use faasbox_secrets::Zeroizing;
use serde::Deserialize;

use crate::error::ApiError;
use crate::json_body::JsonShape;

/// Either form; which one is decided by the fields present.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryBody {
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    data: Option<String>,
    reg: Option<String>,
    pub scope: Option<String>,
}

/// A registry to store.
pub struct NewRegistry {
    pub url: String,
    pub username: String,
    pub password: Zeroizing<String>,
}

impl JsonShape for RegistryBody {
    fn problem(detail: &str) -> String {
        format!("expected {{\"url\", \"username\", \"password\"}} or {{\"data\": \"user:password\", \"reg\": \"URL\"}}: {detail}")
    }
}

impl std::fmt::Debug for RegistryBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryBody(…)")
    }
}

const FORMS: &str =
    "send {\"url\", \"username\", \"password\"} or {\"data\": \"user:password\", \"reg\": \"URL\"}";

impl RegistryBody {
    /// The registry the body describes (its secret parts moved into wiped buffers).
    pub fn into_registry(self) -> Result<NewRegistry, ApiError> {
        let RegistryBody {
            url,
            username,
            password,
            data,
            reg,
            scope: _,
        } = self;
        let password = password.map(Zeroizing::new);
        let data = data.map(Zeroizing::new);
        match (url, username, password, data, reg) {
            (Some(url), Some(username), Some(password), None, None) => Ok(NewRegistry {
                url,
                username,
                password,
            }),
            (None, None, None, Some(data), Some(reg)) => {
                let (username, password) = split_credentials(&data)?;
                Ok(NewRegistry {
                    url: reg,
                    username,
                    password,
                })
            }
            _ => Err(ApiError::bad_request(format!(
                "the registry body mixes or lacks fields: {FORMS}"
            ))),
        }
    }
}

/// Splits Direktiv's `user:password` at the first colon.
pub fn split_credentials(data: &str) -> Result<(String, Zeroizing<String>), ApiError> {
    match data.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            Ok((user.to_string(), Zeroizing::new(password.to_string())))
        }
        _ => Err(ApiError::bad_request(
            "\"data\" must be \"user:password\": a username, a colon, then the password",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direktiv_data_splits_at_the_first_colon() {
        let (user, password) = split_credentials("admin:8QwFLg%D$qg*:x").unwrap();
        assert_eq!(user, "admin");
        assert_eq!(password.as_str(), "8QwFLg%D$qg*:x");
        for bad in ["admin", ":pw", "admin:", ""] {
            assert!(split_credentials(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forms_must_not_mix() {
        let mixed: RegistryBody =
            serde_json::from_str(r#"{"url":"r.io","data":"a:b","reg":"r.io"}"#).unwrap();
        assert!(mixed.into_registry().is_err());
        let native: RegistryBody =
            serde_json::from_str(r#"{"url":"r.io","username":"u","password":"p:w"}"#).unwrap();
        let native = native.into_registry().unwrap();
        assert_eq!(
            (native.url.as_str(), native.password.as_str()),
            ("r.io", "p:w")
        );
    }
}
