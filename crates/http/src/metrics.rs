//! `GET /metrics`: the process's metrics as OpenMetrics text, with the pools' gauges read at
//! scrape time from the pools in service.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use faasbox_core::metrics::{render, PoolGauges, CONTENT_TYPE};
use faasbox_core::state::AppState;

/// `GET /metrics` (behind the token check: admin token only, see `auth::rules`).
pub async fn serve(State(state): State<Arc<AppState>>) -> Response {
    let pools = state.all_pools().into_iter().map(|pool| {
        let stats = pool.stats();
        PoolGauges {
            key: pool.key.clone(),
            instances: stats.instances,
            busy_calls: stats.busy_calls,
            waiting: stats.waiting,
        }
    });
    match render(pools) {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => ApiError::internal("the metrics could not be written").into_response(),
    }
}
