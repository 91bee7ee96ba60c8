//! `/api/v1/tokens`: create (the token is answered once), list and delete API tokens. Only the
//! admin token reaches these routes (see `auth::rules`).

use std::sync::Arc;

use super::records::{self, TokenRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::json_body::{JsonBody, JsonShape};
use super::{require_namespace, valid_name};
use crate::error::{ApiError, ApiResult};
use faasbox_core::auth::tokens::{issue, Role};
use faasbox_core::follow::{self, Kind};
use faasbox_core::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Without it, a server-wide admin token.
    namespace: Option<String>,
    role: Option<String>,
    name: Option<String>,
}

impl JsonShape for CreateToken {
    fn problem(detail: &str) -> String {
        format!(r#"expected {{"namespace": "…", "role": "admin|invoke", "name": "…"}}: {detail}"#)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token itself: shown only in this answer.
    token: String,
    #[serde(flatten)]
    record: TokenRecord,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let role = Role::parse(body.role.as_deref().unwrap_or("admin"))?;
    if let Some(ns) = &body.namespace {
        require_namespace(&state, ns).await?;
    } else if role != Role::Admin {
        return Err(ApiError::bad_request(
            "a token without a namespace is a server-wide admin token; give --namespace for an invoke token",
        ));
    }
    let name = body
        .name
        .unwrap_or_else(|| body.namespace.clone().unwrap_or_else(|| "admin".into()));
    valid_name("token name", &name)?;
    let issued = issue(&name, body.namespace, role)?;
    let record = issued.record.clone();
    state
        .to_completion(move |s| async move {
            s.store.insert_token(&record).await?;
            follow::publish(&*s.store, Kind::Token, "").await;
            s.tokens.reload(&*s.store).await
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: issued.token,
            record: issued.record.into(),
        }),
    ))
}

pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<TokenRecord>>> {
    Ok(Json(records::all(state.store.list_tokens().await?)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let shown = id.clone();
    // A deleted token stops working with the reload: the two go together.
    let deleted = state
        .to_completion(move |s| async move {
            let deleted = s.store.delete_token(&id).await?;
            if deleted {
                follow::publish(&*s.store, Kind::Token, "").await;
            }
            s.tokens.reload(&*s.store).await?;
            Ok(deleted)
        })
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no token has id '{}'; see `faasbox token ls`",
            shown.escape_debug()
        )))
    }
}
