//! `/api/v1/namespaces/{ns}/subscriptions`: event subscriptions — create or replace (PUT),
//! show, list, delete. Each runs its function asynchronously for every matching event the
//! namespace accepts (see `faasbox_core::subscriptions`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use faasbox_core::subscriptions::{self, SubscriptionBody, SubscriptionView};

use crate::error::{ApiError, ApiResult};
use crate::json_body::{JsonBody, JsonShape};
use faasbox_core::state::AppState;

impl JsonShape for SubscriptionBody {
    fn problem(detail: &str) -> String {
        format!(
            "a subscription is {{\"function\": FN, \"type\": TYPE, \"source\": PATTERN (optional), \
             \"context\": {{attribute: PATTERN}} (optional)}}: {detail}"
        )
    }
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<JsonBody<SubscriptionBody>, ApiError>,
) -> ApiResult<(StatusCode, Json<SubscriptionView>)> {
    let JsonBody(body) = body?;
    let (view, created) = subscriptions::put(&state, &ns, &name, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<SubscriptionView>> {
    Ok(Json(subscriptions::get(&state, &ns, &name).await?))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<SubscriptionView>>> {
    Ok(Json(subscriptions::list(&state, &ns).await?))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    subscriptions::delete(&state, &ns, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
