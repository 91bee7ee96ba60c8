//! Helpers for HTTP route tests: creating a route through the API, calling a route without a
//! token, signing webhook bodies (GitHub's and Slack's forms), and counting a namespace's runs.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{client_with_token, Server};

/// The hex HMAC-SHA256 of `parts` (concatenated) with `key`.
pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// GitHub's `X-Hub-Signature-256` value of `body`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, &[body]))
}

/// Slack's `X-Slack-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn slack_signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let base = format!("v0:{timestamp}:");
    format!("v0={}", hmac_hex(secret, &[base.as_bytes(), body]))
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

impl Server {
    /// PUTs route `name` of `ns` in the API's form: (status, body).
    pub async fn put_route(&self, ns: &str, name: &str, route: &Value) -> (u16, Value) {
        let r = self
            .put_json(&format!("/api/v1/namespaces/{ns}/routes/{name}"), route)
            .await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates (or replaces) route `name` of `ns` and asserts it was accepted.
    pub async fn create_route(&self, ns: &str, name: &str, route: Value) -> Value {
        let (status, body) = self.put_route(ns, name, &route).await;
        assert!(
            status == 200 || status == 201,
            "creating route {ns}/{name}: {status} {body}"
        );
        body
    }

    /// PATCHes route `name` of `ns` and asserts it was accepted.
    pub async fn patch_route(&self, ns: &str, name: &str, patch: Value) {
        let r = self
            .http
            .patch(self.url(&format!("/api/v1/namespaces/{ns}/routes/{name}")))
            .json(&patch)
            .send()
            .await
            .expect("PATCH");
        let status = r.status();
        assert!(
            status.is_success(),
            "patching route {ns}/{name}: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// A client without a token, for calling routes as the public would.
    pub fn public_client(&self) -> reqwest::Client {
        client_with_token(None)
    }

    /// How many runs namespace `ns` has.
    pub async fn run_count(&self, ns: &str) -> usize {
        self.get_json(&format!("/api/v1/namespaces/{ns}/runs?limit=1000"))
            .await
            .as_array()
            .map_or(0, Vec::len)
    }

    /// The run record `id` of `ns`.
    pub async fn run_record(&self, ns: &str, id: &str) -> Value {
        self.get_json(&format!("/api/v1/namespaces/{ns}/runs/{id}"))
            .await
    }
}
