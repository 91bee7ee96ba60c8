//! `/api/v1/images`: import an archive (streamed to disk, then unpacked), list, remove.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use faasbox_images::{ImageRecord, RootfsOptions};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::error::{codes, ApiError, ApiResult};
use crate::state::AppState;

/// Query of `POST /api/v1/images/import`. List values are JSON arrays of strings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    name: String,
    entrypoint: Option<String>,
    cmd: Option<String>,
    env: Option<String>,
    workdir: Option<String>,
    user: Option<String>,
}

fn string_list(field: &str, value: Option<&str>) -> ApiResult<Vec<String>> {
    match value {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            ApiError::bad_request(format!(
                "`{field}` must be a JSON array of strings, like [\"/bin/sh\",\"-c\"]"
            ))
        }),
    }
}

pub async fn import(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImageRecord>)> {
    let max = state.config.limits.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(upload_too_large(max));
    }
    let Query(query) = query
        .map_err(|e| ApiError::bad_request(format!("{}; `name` is required", e.body_text())))?;
    let name = faasbox_images::normalize_reference(&query.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let options = RootfsOptions {
        entrypoint: string_list("entrypoint", query.entrypoint.as_deref())?,
        cmd: string_list("cmd", query.cmd.as_deref())?,
        env: string_list("env", query.env.as_deref())?,
        workdir: query.workdir.filter(|w| !w.is_empty()),
        user: query.user.filter(|u| !u.is_empty()),
    };
    if let Some(bad) = options
        .env
        .iter()
        .find(|kv| !kv.contains('=') || kv.starts_with('='))
    {
        return Err(ApiError::bad_request(format!(
            "env entry '{bad}' is not KEY=VALUE"
        )));
    }
    let uploads = state.config.uploads_dir();
    tokio::fs::create_dir_all(&uploads)
        .await
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", uploads.display())))?;
    tokio::fs::set_permissions(&uploads, crate::app::private_dir())
        .await
        .map_err(|e| ApiError::internal(format!("restricting {}: {e}", uploads.display())))?;
    let upload = uploads.join(uuid::Uuid::new_v4().simple().to_string());
    let guard = RemoveOnDrop(upload.clone());
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&upload)
        .await
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", upload.display())))?;
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
        received += chunk.len() as u64;
        if received > max {
            return Err(upload_too_large(max));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    drop(file);
    if received == 0 {
        return Err(ApiError::bad_request(
            "the request body is empty; send the image archive as the body",
        ));
    }
    let record = state
        .blocking(move |s| {
            let result = s.images.import_archive(&upload, &name, &options);
            drop(guard);
            result.map_err(image_error)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<ImageRecord>>> {
    let images = state
        .blocking(|s| s.images.list().map_err(image_error))
        .await?;
    Ok(Json(images))
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    name: String,
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    let name = query.name.clone();
    let removed = state
        .blocking(move |s| s.images.remove(&name).map_err(image_error))
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "image '{}' is not in the store",
            query.name
        )))
    }
}

/// The answer to an archive over the upload bound (413; nothing is kept of it).
fn upload_too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::TOO_LARGE,
        format!(
            "the image archive is larger than the server's upload limit of {}; \
             raise it with the server's `max-upload-size` setting",
            crate::bounds::show_size(max)
        ),
    )
}

/// Problems with what the user sent are 400s; the store's own failures are 500s.
fn image_error(e: faasbox_images::ImageError) -> ApiError {
    if matches!(e, faasbox_images::ImageError::TooLarge { .. }) {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
            e.to_string(),
        )
    } else if e.is_user_error() {
        ApiError::bad_request(e.to_string())
    } else {
        ApiError::internal(e.to_string())
    }
}

/// Deletes an uploaded archive however the import ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
