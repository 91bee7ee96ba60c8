//! `/api/v1/admin`: master-key rotation. Calls keep working throughout: the vault swaps the
//! key in place once every data key is re-wrapped.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use faasbox_secrets::MasterKey;
use serde::Serialize;

use crate::error::ApiResult;
use faasbox_core::failure::Failure;
use faasbox_core::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Rotated {
    /// How many data keys (one per namespace or global scope) were re-wrapped.
    pub rewrapped: usize,
    /// The id of the new master key (a fingerprint, not the key).
    pub key_id: String,
}

pub async fn rotate_master_key(State(state): State<Arc<AppState>>) -> ApiResult<Json<Rotated>> {
    let Some(path) = state.key_source.key_file() else {
        return Err(Failure::conflict(
            "the master key was given in FAASBOX_MASTER_KEY, so the server cannot store \
             a new one; start it with a key file (FAASBOX_MASTER_KEY_FILE or the default \
             <data-dir>/keys/master.key) to rotate through the API",
        )
        .into());
    };
    let new = MasterKey::generate().map_err(|e| Failure::internal(e.to_string()))?;
    let key_id = new.key_id().to_string();
    // One store transaction re-wraps every data key; the key file is written on a blocking
    // thread (see `Vault::rotate_key_file`). It runs to the end even if the client goes away:
    // the store's commit, the in-memory swap and the key file's rename must not be cut apart.
    let path = path.to_path_buf();
    let rewrapped = state
        .to_completion(move |s| async move { Ok(s.vault.rotate_key_file(&path, new).await?) })
        .await?;
    let rotated = Rotated { rewrapped, key_id };
    tracing::info!(
        rewrapped = rotated.rewrapped,
        key_id = %rotated.key_id,
        "master key rotated"
    );
    Ok(Json(rotated))
}
