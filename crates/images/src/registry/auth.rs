//! A connection to one registry repository: the `oci-client` HTTP client
//! (rustls; plain HTTP for loopback and insecure registries), the
//! credentials chosen for the registry host, the token (bearer) or basic
//! authentication handshake, and the translation of client errors into
//! [`ImageError`]s that tell the user what to do — without the password.

use std::sync::Once;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::secrets::RegistryAuth as ClientAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::reference::{is_loopback, RemoteRef};
use super::{CredentialSource, PullOptions};
use crate::error::ImageError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A stalled transfer is given up after this long without data (the
/// downloaded part is kept for the next pull).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("faasbox/", env!("CARGO_PKG_VERSION"));
/// Longest registry-supplied text put into an error message.
const MAX_REMOTE_TEXT: usize = 300;

/// An authenticated client for one repository of one registry.
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) remote: RemoteRef,
    /// What the client authenticates with (it keeps its own copy after
    /// `open`; calls that take credentials get this one).
    pub(crate) auth: ClientAuth,
    user: Option<String>,
    /// Kept only to scrub it from registry-supplied text.
    password: Option<String>,
}

impl Connection {
    /// Builds the client, picks the credentials for the registry and
    /// authenticates for `op` (fetching a bearer token when the registry
    /// asks for one). Fails when the registry is unreachable or refuses the
    /// credentials at the token endpoint; registries with basic auth only
    /// refuse them at the first real request.
    pub(crate) async fn open(
        remote: RemoteRef,
        creds: &dyn CredentialSource,
        options: &PullOptions,
        op: RegistryOperation,
    ) -> Result<Connection, ImageError> {
        let found = remote
            .credential_hosts()
            .into_iter()
            .find_map(|host| creds.credentials(host));
        let (auth, user, password) = match found {
            Some(c) => (
                ClientAuth::Basic(c.username.clone(), c.password.clone()),
                Some(c.username),
                Some(c.password),
            ),
            None => (ClientAuth::Anonymous, None, None),
        };
        let client = build_client(&remote, options)?;
        let conn = Connection {
            client,
            remote,
            auth,
            user,
            password,
        };
        tracing::debug!(
            registry = %conn.remote.registry,
            repository = %conn.remote.repository,
            user = conn.user.as_deref().unwrap_or("<anonymous>"),
            ?op,
            "authenticating to registry"
        );
        conn.client
            .auth(&conn.remote.client_ref(), &conn.auth, op)
            .await
            .map_err(|e| conn.error(e))?;
        Ok(conn)
    }

    pub(crate) fn registry(&self) -> &str {
        &self.remote.registry
    }

    /// The reference the connection was opened for.
    pub(crate) fn image(&self) -> Reference {
        self.remote.client_ref()
    }

    /// Translates a client error into the store's error.
    pub(crate) fn error(&self, e: OciDistributionError) -> ImageError {
        use OciDistributionError as E;
        match e {
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => self.unauthorized(401),
            E::RegistryError { envelope, .. } => self.envelope_error(&envelope),
            E::ServerError { code, message, .. } => self.status_error(code, &message),
            E::ImageManifestNotFoundError(_) => self.not_found(),
            // `blob_exists` turns an error status into a request error.
            E::RequestError(err) if err.status().is_some() => {
                let code = err.status().map_or(0, |s| s.as_u16());
                self.status_error(code, &chain(&err))
            }
            E::RequestError(err) if err.is_connect() || (err.is_timeout() && !err.is_body()) => {
                ImageError::RegistryUnreachable {
                    registry: self.remote.registry.clone(),
                    reason: self.scrub(&chain(&err)),
                }
            }
            E::RequestError(err) => self.failed(chain(&err)),
            E::DigestError(DigestError::VerificationError { expected, actual }) => {
                ImageError::RemoteDigestMismatch {
                    registry: self.remote.registry.clone(),
                    what: format!("the manifest of '{}'", self.remote.name),
                    expected,
                    actual,
                }
            }
            other => self.failed(other.to_string()),
        }
    }

    /// A transfer that broke off; `what` names the blob.
    pub(crate) fn interrupted(&self, what: &str, e: &dyn std::error::Error) -> ImageError {
        ImageError::TransferInterrupted {
            registry: self.remote.registry.clone(),
            what: what.to_string(),
            reason: self.scrub(&chain(e)),
        }
    }

    /// Any other failure, with registry-supplied text scrubbed.
    pub(crate) fn failed(&self, message: impl AsRef<str>) -> ImageError {
        ImageError::Registry {
            registry: self.remote.registry.clone(),
            message: self.scrub(message.as_ref()),
        }
    }

    fn status_error(&self, code: u16, message: &str) -> ImageError {
        match code {
            401 => self.unauthorized(401),
            403 => self.unauthorized(403),
            404 => self.not_found(),
            429 => self.failed(format!(
                "too many requests (429): {}; wait and try again",
                self.scrub(message)
            )),
            _ => self.failed(format!("HTTP {code}: {}", self.scrub(message))),
        }
    }

    fn unauthorized(&self, status: u16) -> ImageError {
        ImageError::Unauthorized {
            registry: self.remote.registry.clone(),
            user: self.user.clone(),
            status,
        }
    }

    fn not_found(&self) -> ImageError {
        ImageError::ManifestUnknown {
            registry: self.remote.registry.clone(),
            reference: self.remote.name.clone(),
        }
    }

    fn envelope_error(&self, envelope: &OciEnvelope) -> ImageError {
        let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
        let has = |code: OciErrorCode| codes.contains(&&code);
        if has(OciErrorCode::Unauthorized) {
            return self.unauthorized(401);
        }
        if has(OciErrorCode::Denied) {
            return self.unauthorized(403);
        }
        if has(OciErrorCode::ManifestUnknown)
            || has(OciErrorCode::NameUnknown)
            || has(OciErrorCode::NotFound)
        {
            return self.not_found();
        }
        let text: Vec<String> = envelope
            .errors
            .iter()
            .map(|e| format!("{:?}: {}", e.code, e.message))
            .collect();
        let hint = if has(OciErrorCode::Toomanyrequests) {
            "; wait and try again, or authenticate for a higher limit"
        } else if has(OciErrorCode::BlobUnknown) {
            "; the registry lacks a blob the manifest lists — push the image again"
        } else {
            ""
        };
        self.failed(format!("{}{hint}", text.join("; ")))
    }

    /// Removes the password from registry-supplied text and bounds its
    /// length.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.trim().to_string();
        if let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) {
            text = text.replace(password, "<redacted>");
        }
        if text.len() > MAX_REMOTE_TEXT {
            let mut cut = MAX_REMOTE_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        text
    }
}

/// The HTTP client for `remote`: plain HTTP for loopback and insecure
/// registries, HTTPS (rustls, the system's roots) otherwise.
fn build_client(remote: &RemoteRef, options: &PullOptions) -> Result<Client, ImageError> {
    install_crypto_provider();
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(plain_http_hosts(remote, options)),
        // Streamed single-request uploads: the blob is read from disk as
        // it is sent, never held in memory whole.
        use_monolithic_push: true,
        // Indexes are resolved by `pull` itself, with a clear error.
        platform_resolver: None,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        user_agent: USER_AGENT,
        ..ClientConfig::default()
    };
    Client::try_from(config).map_err(|e| ImageError::Registry {
        registry: remote.registry.clone(),
        message: format!("cannot set up the HTTP client: {e}"),
    })
}

/// The hosts spoken to over plain HTTP: the insecure registries, and the
/// registry itself when it is on loopback.
fn plain_http_hosts(remote: &RemoteRef, options: &PullOptions) -> Vec<String> {
    let mut hosts = options.insecure_registries.clone();
    if is_loopback(&remote.api_host) {
        hosts.push(remote.api_host.clone());
    }
    hosts
}

/// rustls needs a process-wide crypto provider; faasbox uses `ring`. When
/// something else installed one first, that one is used.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An error and its sources, joined: reqwest's own message alone ("error
/// sending request") hides the cause ("connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(password: Option<&str>) -> Connection {
        let remote = RemoteRef::parse("127.0.0.1:1/a/b").unwrap();
        Connection {
            client: build_client(&remote, &PullOptions::default()).unwrap(),
            remote,
            auth: ClientAuth::Anonymous,
            user: password.map(|_| "admin".to_string()),
            password: password.map(str::to_string),
        }
    }

    #[test]
    fn unauthorized_names_the_user_not_the_password() {
        let c = conn(Some("8QwFLg%D$qg*"));
        let err = c.error(OciDistributionError::UnauthorizedError {
            url: "http://127.0.0.1:1/v2/".into(),
        });
        let text = err.to_string();
        assert!(text.contains("user 'admin'"), "{text}");
        assert!(text.contains("(401)"), "{text}");
        // Which command fixes it depends on who asks: the server says.
        assert!(!text.contains("faasbox "), "{text}");
        assert!(!text.contains("8QwFLg"), "{text}");

        let anonymous = conn(None).error(OciDistributionError::ServerError {
            code: 401,
            url: String::new(),
            message: String::new(),
        });
        assert!(
            anonymous.to_string().contains("none are configured"),
            "{anonymous}"
        );
    }

    #[test]
    fn registry_text_is_scrubbed() {
        let c = conn(Some("s3cret:pw"));
        let err = c.error(OciDistributionError::ServerError {
            code: 500,
            url: String::new(),
            message: format!("oops s3cret:pw {}", "x".repeat(1000)),
        });
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.len() < 500, "{text}");
        assert!(err.is_registry_error());
    }

    #[test]
    fn plain_http_for_loopback_and_insecure_registries_only() {
        let insecure = PullOptions {
            insecure_registries: vec!["registry.lan:5000".into()],
            ..PullOptions::default()
        };
        let hosts = |r: &str, o: &PullOptions| plain_http_hosts(&RemoteRef::parse(r).unwrap(), o);
        assert_eq!(
            hosts("localhost:5000/a", &PullOptions::default()),
            ["localhost:5000"]
        );
        assert_eq!(
            hosts("127.0.0.1:5000/a", &insecure),
            ["registry.lan:5000", "127.0.0.1:5000"]
        );
        assert_eq!(
            hosts("registry.lan:5000/a", &insecure),
            ["registry.lan:5000"]
        );
        assert!(hosts("ghcr.io/a/b", &PullOptions::default()).is_empty());
        assert!(hosts("alpine", &PullOptions::default()).is_empty());
    }

    #[test]
    fn envelope_codes() {
        let c = conn(None);
        let envelope = |code: &str| {
            let json = format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#);
            OciDistributionError::RegistryError {
                envelope: serde_json::from_str(&json).unwrap(),
                url: String::new(),
            }
        };
        assert!(matches!(
            c.error(envelope("MANIFEST_UNKNOWN")),
            ImageError::ManifestUnknown { .. }
        ));
        assert!(matches!(
            c.error(envelope("DENIED")),
            ImageError::Unauthorized { status: 403, .. }
        ));
        let other = c.error(envelope("TOOMANYREQUESTS")).to_string();
        assert!(other.contains("wait and try again"), "{other}");
    }
}
