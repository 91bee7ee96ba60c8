//! Figures of the last hour for the web UI: `GET /api/v1/namespaces/{ns}/summary` (functions,
//! flows, runs by outcome, instances running or waiting, function instances) and the per
//! function `stats` of `GET …/functions?stats=1h` (calls, errors, cold starts).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::require_namespace;
use crate::error::{ApiError, ApiResult};
use faasbox_core::state::AppState;

/// The one window the figures are given for.
pub const WINDOW: &str = "1h";

/// Run statuses counted as errors.
const ERROR_STATUSES: [&str; 4] = ["failed", "timeout", "cancelled", "crashed"];

/// A namespace at a glance.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub functions: u64,
    pub flows: u64,
    /// Always `1h`: the window of `runs`.
    pub window: String,
    pub runs: RunFigures,
    pub instances: InstanceFigures,
    /// Function instances running now.
    pub function_instances: u64,
}

/// Function runs accepted in the window, by outcome.
#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct RunFigures {
    /// Succeeded.
    pub ok: u64,
    /// Failed, timed out, cancelled or crashed.
    pub errors: u64,
    /// Queued or running.
    pub running: u64,
}

/// Flow instances that have not ended, now.
#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct InstanceFigures {
    pub running: u64,
    pub waiting: u64,
}

/// One function's runs in the window.
#[derive(Serialize, Default, Clone, Copy, utoipa::ToSchema)]
pub struct FunctionStats {
    /// Runs accepted.
    pub calls: u64,
    /// Of them, failed, timed out, cancelled or crashed.
    pub errors: u64,
    /// Of them, the ones that started an instance.
    pub cold_starts: u64,
}

/// The start of the window, as the store compares run times.
fn window_start() -> String {
    faasbox_core::run_record::timestamp(time::OffsetDateTime::now_utc() - time::Duration::HOUR)
}

/// Checks a `stats=` value: only the window there is.
pub fn check_window(value: &str) -> ApiResult<()> {
    if value == WINDOW {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "stats '{value}' is not a window the server counts: use stats={WINDOW}"
        )))
    }
}

/// Each function's runs of namespace `ns` in the window, by function name.
pub async fn function_stats(
    state: &Arc<AppState>,
    ns: &str,
) -> ApiResult<HashMap<String, FunctionStats>> {
    let mut stats: HashMap<String, FunctionStats> = HashMap::new();
    // Blocking calls' records may still be with the record writer.
    state.runs.records.settle().await;
    for count in state.store.run_counts(ns, &window_start()).await? {
        let entry = stats.entry(count.function).or_default();
        entry.calls += count.count;
        if ERROR_STATUSES.contains(&count.status.as_str()) {
            entry.errors += count.count;
        }
        if count.cold_start {
            entry.cold_starts += count.count;
        }
    }
    Ok(stats)
}

pub async fn summary(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Summary>> {
    require_namespace(&state, &ns).await?;
    let functions = state.store.list_functions(&ns).await?;
    let function_instances = functions
        .iter()
        .filter_map(|f| state.deployments.deployed(&f.namespace, &f.name))
        .map(|d| d.pool.stats().instances as u64)
        .sum();
    let flows = state.store.list_flows(&ns).await?.len() as u64;
    let mut runs = RunFigures::default();
    state.runs.records.settle().await;
    for count in state.store.run_counts(&ns, &window_start()).await? {
        match count.status.as_str() {
            "succeeded" => runs.ok += count.count,
            "queued" | "running" => runs.running += count.count,
            s if ERROR_STATUSES.contains(&s) => runs.errors += count.count,
            _ => {}
        }
    }
    let mut instances = InstanceFigures::default();
    for (status, n) in state.store.instance_counts(&ns).await? {
        match status.as_str() {
            "running" => instances.running += n,
            "waiting" => instances.waiting += n,
            _ => {}
        }
    }
    Ok(Json(Summary {
        functions: functions.len() as u64,
        flows,
        window: WINDOW.to_string(),
        runs,
        instances,
        function_instances,
    }))
}
