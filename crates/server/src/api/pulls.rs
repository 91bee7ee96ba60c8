//! `POST /api/v1/images/pull` and `/api/v1/images/push`: transfers between the local store and
//! a registry, answered as a stream of newline-delimited JSON progress events that ends with a
//! `done` or an `error` event. Credentials are picked by registry host from the namespace's
//! registries, then the global ones (without a namespace, the global ones only); they are
//! looked up at each transfer, so a registry added after a failed pull is used by the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use faasbox_images::{ImageError, Progress, PullOptions};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::require_namespace;
use crate::error::{codes, ApiError, ApiResult};
use crate::image_pull::{CredentialScope, VaultCredentials};
use crate::state::AppState;

/// At most one `bytes` event per layer in this interval (the last bytes of a layer always go).
const BYTES_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    #[serde(rename = "ref")]
    reference: String,
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushQuery {
    name: String,
    target: String,
    namespace: Option<String>,
}

pub async fn pull(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query
        .map_err(|e| ApiError::bad_request(format!("{}; `ref` is required", e.body_text())))?;
    faasbox_images::normalize_reference(&query.reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let creds = credentials(&state, query.namespace).await?;
    Ok(stream(move |progress| async move {
        let record = state
            .images
            .pull(
                &faasbox_images::Scope::Global,
                &query.reference,
                &creds,
                &PullOptions::default(),
                &*progress,
            )
            .await?;
        Ok(json!({ "event": "done", "image": record }))
    }))
}

pub async fn push(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PushQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; `name` and `target` are required",
            e.body_text()
        ))
    })?;
    faasbox_images::normalize_reference(&query.target)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let creds = credentials(&state, query.namespace).await?;
    Ok(stream(move |progress| async move {
        let digest = state
            .images
            .push(
                &faasbox_images::Scope::Global,
                &query.name,
                &query.target,
                &creds,
                &PullOptions::default(),
                &*progress,
            )
            .await?;
        Ok(json!({ "event": "done", "digest": digest }))
    }))
}

async fn credentials(
    state: &Arc<AppState>,
    namespace: Option<String>,
) -> ApiResult<VaultCredentials> {
    let scope = match namespace {
        Some(ns) => {
            require_namespace(state, &ns).await?;
            CredentialScope::Namespace(ns)
        }
        None => CredentialScope::Global,
    };
    Ok(VaultCredentials {
        vault: state.vault.clone(),
        scope,
    })
}

type Reporter = Arc<dyn Fn(Progress) + Send + Sync>;

/// Runs `transfer` in its own task and answers with its events as they come.
fn stream<F, Fut>(transfer: F) -> Response
where
    F: FnOnce(Reporter) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Value, ImageError>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    let events = tx.clone();
    let last_bytes: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
    let reporter: Reporter = Arc::new(move |p: Progress| {
        if let Some(event) = progress_event(p, &last_bytes) {
            let _ = events.send(event);
        }
    });
    tokio::spawn(async move {
        let last = match transfer(reporter).await {
            Ok(done) => done,
            Err(e) => {
                let (code, message) = error_code(&e);
                json!({ "event": "error", "error": { "code": code, "message": message } })
            }
        };
        let _ = tx.send(last);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = event.to_string();
        line.push('\n');
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(line)), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

fn progress_event(p: Progress, last_bytes: &Mutex<HashMap<String, Instant>>) -> Option<Value> {
    match p {
        Progress::Resolved {
            layers,
            total_bytes,
        } => Some(json!({ "event": "resolved", "layers": layers, "total_bytes": total_bytes })),
        Progress::LayerStarted { digest, size } => {
            Some(json!({ "event": "layer_started", "digest": digest, "size": size }))
        }
        Progress::Bytes { digest, done, size } => {
            let now = Instant::now();
            let mut last = last_bytes.lock().unwrap_or_else(PoisonError::into_inner);
            let due = done >= size
                || last
                    .get(&digest)
                    .is_none_or(|t| now.duration_since(*t) >= BYTES_INTERVAL);
            if !due {
                return None;
            }
            last.insert(digest.clone(), now);
            Some(json!({ "event": "bytes", "digest": digest, "done": done, "size": size }))
        }
        Progress::LayerDone { digest } => Some(json!({ "event": "layer_done", "digest": digest })),
        Progress::Done => None,
    }
}

/// The error code and message of a failed transfer.
fn error_code(e: &ImageError) -> (&'static str, String) {
    let code = match e {
        ImageError::Unauthorized { .. } => "faasbox.registry.unauthorized",
        ImageError::ManifestUnknown { .. } => "faasbox.registry.not_found",
        ImageError::NotFound(_) => codes::NOT_FOUND,
        ImageError::RegistryUnreachable { .. } => "faasbox.registry.unreachable",
        _ if e.is_registry_error() => "faasbox.registry.failed",
        _ if e.is_user_error() => codes::BAD_REQUEST,
        _ => codes::INTERNAL,
    };
    (code, e.to_string())
}
