//! `/api/v1/namespaces/{ns}/secrets`: set (PUT), delete, list. Values go in only: no answer
//! ever holds one, and nothing here logs one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use faasbox_secrets::{SecretInfo, Zeroizing, MAX_SECRET_BYTES};
use serde::Deserialize;

use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::state::AppState;

/// The largest PUT body: a largest value, base64-encoded inside `{"data": …}`, with room.
pub const MAX_BODY_BYTES: usize = MAX_SECRET_BYTES / 3 * 4 + 4096;

/// The JSON form of a PUT body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    data: String,
}

/// The value of a PUT: the raw body, or the base64 `data` of a JSON body.
fn value_of(headers: &HeaderMap, body: &[u8]) -> ApiResult<Zeroizing<Vec<u8>>> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let value = if json {
        let parsed: SecretBody = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "a JSON body must be {{\"data\": \"<base64 of the value>\"}} ({e}); \
                 send any other content type to store the body as it is"
            ))
        })?;
        let data = Zeroizing::new(parsed.data);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data.trim().as_bytes())
            .map_err(|e| ApiError::bad_request(format!("\"data\" is not valid base64: {e}")))?;
        Zeroizing::new(decoded)
    } else {
        Zeroizing::new(body.to_vec())
    };
    if value.is_empty() {
        return Err(ApiError::bad_request("the secret's value is empty"));
    }
    Ok(value)
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<SecretInfo>)> {
    require_namespace(&state, &ns).await?;
    faasbox_core::model::check_secret_name(&name).map_err(ApiError::bad_request)?;
    let value = value_of(&headers, &body?)?;
    let existed = state
        .store
        .list_secrets(&ns)
        .await?
        .iter()
        .any(|secret| secret.name == name);
    let info = state.vault.put_secret(&ns, &name, &value).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(info)))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<SecretInfo>>> {
    require_namespace(&state, &ns).await?;
    let list = state.vault.list_secrets(&ns).await?;
    Ok(Json(list))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    let deleted = state.vault.delete_secret(&ns, &name).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "secret {ns}/{} does not exist",
            name.escape_debug()
        )))
    }
}
