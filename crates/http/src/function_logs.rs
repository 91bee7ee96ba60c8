//! `GET /api/v1/namespaces/{ns}/functions/{name}/logs[?limit=N][&after=CURSOR]`: a function's
//! recent log lines across its calls, oldest first, each with its invocation id and a cursor;
//! `after` (the answer's `next`) gives only the lines stored since, which is how
//! `faasbox logs NS/FN --follow` polls.

use std::sync::Arc;

use super::records::FunctionLogs;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{require_namespace, valid_name};
use crate::error::{ApiError, ApiResult};
use faasbox_core::owner::Owner;
use faasbox_core::state::AppState;

/// Lines answered when `limit` is not given.
pub const DEFAULT_LINES: u32 = 100;
/// The most lines one answer holds.
pub const MAX_LINES: u32 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    limit: Option<u32>,
    after: Option<i64>,
}

/// The answer: the function, its lines, and the cursor for newer ones.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FunctionLogsView {
    pub namespace: String,
    pub function: String,
    #[serde(flatten)]
    pub logs: FunctionLogs,
}

pub async fn logs(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Json<FunctionLogsView>> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; the query takes limit=1..{MAX_LINES} and after=CURSOR (the `next` of an \
             earlier answer)",
            e.body_text()
        ))
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LINES);
    if !(1..=MAX_LINES).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_LINES} (lines), not {limit}"
        )));
    }
    if query.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request(
            "`after` is a cursor: the `next` of an earlier answer, 0 or more",
        ));
    }
    valid_name("function", &name)?;
    require_namespace(&state, &ns).await?;
    let owner = Owner::Namespace(ns.clone());
    let exists = owner.load_function(&*state.store, &name).await?.is_some();
    if !exists {
        return Err(owner.missing(&name).into());
    }
    let logs = state
        .store
        .function_logs(&ns, &name, query.after, limit)
        .await?;
    Ok(Json(FunctionLogsView {
        namespace: ns,
        function: name,
        logs: logs.into(),
    }))
}
