//! `GET /metrics`: the process's metrics as OpenMetrics text, with the pools' gauges read at
//! scrape time from the functions in service (`Deployments` as `PoolStatistics`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use faasbox_core::metrics::{render, CONTENT_TYPE};
use faasbox_core::state::AppState;

/// `GET /metrics` (behind the token check: admin token only, see `auth::rules`).
pub async fn serve(State(state): State<Arc<AppState>>) -> Response {
    match render(&state.deployments) {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => ApiError::internal("the metrics could not be written").into_response(),
    }
}
