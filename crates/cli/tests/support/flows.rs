//! Helpers for workflow tests: deploying and running flows through the API, waiting for
//! instances, the host gateway functions reach host loopback through, and a loopback HTTP
//! server that records what it is sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Server;

impl Server {
    pub async fn put_flow(&self, path: &str, yaml: &str) -> reqwest::Response {
        self.http
            .put(self.url(&format!("/api/v1/namespaces/demo/flows/{path}")))
            .body(yaml.to_string())
            .send()
            .await
            .expect("put flow")
    }

    /// Deploys a flow in namespace demo and asserts it was accepted.
    pub async fn deploy_flow(&self, path: &str, yaml: &str) {
        let r = self.put_flow(path, yaml).await;
        let status = r.status();
        assert!(
            status.is_success(),
            "deploying flow {path}: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// Runs a flow with ?wait=true: (status, instance id, body).
    pub async fn run_flow(&self, path: &str, input: &Value) -> (u16, String, Value) {
        let r = self
            .http
            .post(self.url(&format!(
                "/api/v1/namespaces/demo/flows/{path}/run?wait=true"
            )))
            .json(input)
            .send()
            .await
            .expect("run flow");
        let status = r.status().as_u16();
        let id = r
            .headers()
            .get("faasbox-instance-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        (status, id, body)
    }

    /// Starts a flow without waiting; the instance id.
    pub async fn start_flow(&self, path: &str, input: &Value) -> String {
        let r = self
            .post_json(&format!("/api/v1/namespaces/demo/flows/{path}/run"), input)
            .await;
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.expect("json");
        body["id"].as_str().expect("id").to_string()
    }

    pub async fn instance(&self, id: &str) -> Value {
        self.get_json(&format!("/api/v1/namespaces/demo/instances/{id}"))
            .await
    }

    pub async fn instance_log(&self, id: &str) -> String {
        let logs = self
            .get_json(&format!("/api/v1/namespaces/demo/instances/{id}/logs"))
            .await;
        logs["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["message"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls until the instance has one of `statuses`; the instance.
    pub async fn wait_instance(&self, id: &str, statuses: &[&str], within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let instance = self.instance(id).await;
            if statuses.iter().any(|s| instance["status"] == *s) {
                return instance;
            }
            assert!(
                Instant::now() < deadline,
                "instance {id} did not reach {statuses:?}: {instance}\nlog:\n{}",
                self.instance_log(id).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until the instance log holds `text`.
    pub async fn wait_log(&self, id: &str, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let log = self.instance_log(id).await;
            if log.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "instance {id} never logged '{text}':\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The address functions reach host loopback through (on a server that allows it) with the
/// default network helper, slirp4netns: its gateway, which it maps to the host's loopback.
pub fn host_gateway() -> String {
    "10.0.2.2".to_string()
}

/// A loopback HTTP server answering `pong` and recording each request's head.
pub struct Recorder {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).to_string());
                    let _ = socket.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npong").await;
                });
            }
        });
        Recorder { port, requests }
    }

    /// How many requests' first line starts with `GET {path}`.
    pub fn count(&self, path: &str) -> usize {
        let prefix = format!("GET {path} ");
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with(&prefix))
            .count()
    }

    pub fn all(&self) -> String {
        self.requests.lock().unwrap().join("\n---\n")
    }
}
