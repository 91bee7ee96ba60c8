//! The HTTP client the commands use to talk to a faasbox server, turning API errors into
//! messages with the server's explanation.

use anyhow::{anyhow, Context};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// An error the server answered with (`{"error":{"code","message"}}`).
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub body: Value,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, HTTP {})",
            self.message,
            self.code,
            self.status.as_u16()
        )
    }
}

impl std::error::Error for ApiFailure {}

impl Client {
    /// A client for `url` that sends `token`, or else the admin token file's (see
    /// [`default_token`]).
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Client> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            anyhow::bail!("FAASBOX_URL '{url}' must start with http:// or https://");
        }
        let mut headers = HeaderMap::new();
        let given = token.filter(|t| !t.trim().is_empty());
        if let Some(token) = given.or_else(default_token) {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .context("the API token holds characters a header cannot carry")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .context("building the HTTP client")?;
        Ok(Client { base, http })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    /// Sends the request and returns the answer whatever its status; only a server that
    /// cannot be reached is an error.
    pub async fn send_raw(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the faasbox server at {}: {e}\n\
                 Start one with `faasbox server`, or point FAASBOX_URL at it.",
                self.base
            )
        })
    }

    /// Sends the request; a non-2xx answer becomes an [`ApiFailure`].
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = self.send_raw(request).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(failure(response).await.into())
    }

    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        let response = self.send(request).await?;
        response.json().await.context("reading the server's answer")
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, path)).await
    }
}

/// The admin token of the server on this machine: `$FAASBOX_DATA_DIR/admin.token` (default
/// data directory /var/lib/faasbox), when it exists and this user may read it.
fn default_token() -> Option<String> {
    let dir = std::env::var_os("FAASBOX_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| faasbox_server::DEFAULT_DATA_DIR.into());
    let text = std::fs::read_to_string(dir.join("admin.token")).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

pub async fn failure(response: Response) -> ApiFailure {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("http").to_string();
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the server answered HTTP {status}: {}", text.trim()));
    ApiFailure {
        status,
        code,
        message,
        body,
    }
}

/// Splits "namespace/name".
pub fn split_function(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => anyhow::bail!("'{text}' is not NAMESPACE/FUNCTION (for example demo/echo)"),
    }
}
