//! `POST …/images/pull` and `…/images/push`: transfers between an image table and a registry,
//! answered as a stream of newline-delimited JSON progress events that ends with a `done` or an
//! `error` event. A namespace's routes (`/api/v1/namespaces/{ns}/images/…`) pull into and push
//! from its own table with its registries' credentials, then the global ones; the server-wide
//! routes (`/api/v1/images/…`, admin token) use the server-wide table and the global
//! credentials only. Credentials are looked up at each transfer, so a registry added after a
//! failed pull is used by the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use faasbox_images::{ImageError, Progress, PullOptions, Scope};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::failure::codes;
use faasbox_core::image_pull::{CredentialScope, VaultCredentials};
use faasbox_core::owner::Owner;
use faasbox_core::state::AppState;

/// At most one `bytes` event per layer in this interval (the last bytes of a layer always go).
const BYTES_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    #[serde(rename = "ref")]
    reference: String,
    /// No longer taken: a namespace pulls through its own route.
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushQuery {
    name: String,
    target: String,
    /// No longer taken: a namespace pushes through its own route.
    namespace: Option<String>,
}

/// `?namespace=` on a server-wide route: the namespace's own route is the way now.
fn namespace_moved(namespace: &Option<String>, what: &str) -> ApiResult<()> {
    match namespace {
        None => Ok(()),
        Some(ns) => Err(ApiError::bad_request(format!(
            "a namespace's images have their own routes: {what} with POST \
             /api/v1/namespaces/{ns}/images/{what} (CLI: `faasbox image {what} … -n {ns}`)"
        ))),
    }
}

fn pull_query(query: Result<Query<PullQuery>, QueryRejection>) -> ApiResult<PullQuery> {
    let Query(query) = query
        .map_err(|e| ApiError::bad_request(format!("{}; `ref` is required", e.body_text())))?;
    faasbox_images::normalize_reference(&query.reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(query)
}

fn push_query(query: Result<Query<PushQuery>, QueryRejection>) -> ApiResult<PushQuery> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; `name` and `target` are required",
            e.body_text()
        ))
    })?;
    faasbox_images::normalize_reference(&query.target)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(query)
}

pub async fn pull(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let query = pull_query(query)?;
    namespace_moved(&query.namespace, "pull")?;
    Ok(pull_into(
        state,
        Scope::Global,
        CredentialScope::Global,
        query,
    ))
}

pub async fn pull_ns(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let query = pull_query(query)?;
    namespace_moved(&query.namespace, "pull")?;
    require_namespace(&state, &ns).await?;
    let creds = CredentialScope::Namespace(ns.clone());
    Ok(pull_into(state, Scope::Namespace(ns), creds, query))
}

pub async fn push(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PushQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let query = push_query(query)?;
    namespace_moved(&query.namespace, "push")?;
    Ok(push_from(
        state,
        Scope::Global,
        CredentialScope::Global,
        query,
    ))
}

pub async fn push_ns(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    query: Result<Query<PushQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let query = push_query(query)?;
    namespace_moved(&query.namespace, "push")?;
    require_namespace(&state, &ns).await?;
    let creds = CredentialScope::Namespace(ns.clone());
    Ok(push_from(state, Scope::Namespace(ns), creds, query))
}

fn pull_into(
    state: Arc<AppState>,
    scope: Scope,
    creds: CredentialScope,
    query: PullQuery,
) -> Response {
    let namespace = scope.namespace().map(str::to_string);
    stream(namespace, move |progress| async move {
        let creds = VaultCredentials::load(&state.vault, &creds).await;
        let record = state
            .images
            .pull(
                &scope,
                &query.reference,
                &creds,
                &PullOptions::default(),
                &*progress,
            )
            .await?;
        // With a cluster registry, the pull is done once every server can get the image.
        if let Err(e) = faasbox_core::shared_images::share(&state, &scope, &record.name).await {
            return Ok(json!({
                "event": "error",
                "error": { "code": e.code, "message": e.message }
            }));
        }
        Ok(json!({ "event": "done", "image": record }))
    })
}

fn push_from(
    state: Arc<AppState>,
    scope: Scope,
    creds: CredentialScope,
    query: PushQuery,
) -> Response {
    let namespace = scope.namespace().map(str::to_string);
    stream(namespace, move |progress| async move {
        let creds = VaultCredentials::load(&state.vault, &creds).await;
        let digest = state
            .images
            .push(
                &scope,
                &query.name,
                &query.target,
                &creds,
                &PullOptions::default(),
                &*progress,
            )
            .await?;
        Ok(json!({ "event": "done", "digest": digest }))
    })
}

type Reporter = Arc<dyn Fn(Progress) + Send + Sync>;

/// Runs `transfer` (of `namespace`'s images, `None`: the server-wide ones) in its own task and
/// answers with its events as they come.
fn stream<F, Fut>(namespace: Option<String>, transfer: F) -> Response
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
                let (code, message) = error_code(&e, namespace.as_deref());
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

/// The error code and message of a failed transfer, with which credentials were used and
/// how to change them for a refusal (`namespace`: the table's; `None`: the server-wide one).
fn error_code(e: &ImageError, namespace: Option<&str>) -> (&'static str, String) {
    let (code, message) = error_code_of(e);
    if !matches!(e, ImageError::Unauthorized { .. }) {
        return (code, message);
    }
    let fix = match namespace {
        Some(ns) => Owner::Namespace(ns.to_string()).credentials_fix(),
        None => "the server admin adds or corrects the global credentials with `faasbox \
                 registry add --global HOST -u USER --password-stdin` (`faasbox registry ls \
                 --global` lists them)"
            .to_string(),
    };
    (code, format!("{message}; {fix}"))
}

fn error_code_of(e: &ImageError) -> (&'static str, String) {
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
