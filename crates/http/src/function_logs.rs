//! `GET /api/v1/namespaces/{ns}/functions/{name}/logs[?limit=N][&after=CURSOR]`: a function's
//! recent log lines across its calls, oldest first, each with its invocation id and a cursor;
//! `after` (the answer's `next`) gives only the lines stored since, which is how
//! `faasbox logs NS/FN` reads.
//!
//! With `follow=true` the answer is a Server-Sent Events stream of the function's lines as its
//! calls print them (`faasbox_core::live_logs`): an event `line` per line (data: `{"run",
//! "ts_ms", "stream", "line"}`), `lagged` (data: `{"missed": N}`) for a follower that fell
//! behind, a comment every [`KEEP_ALIVE`]; it ends when the client goes away (which drops the
//! follower, and with the last one the reading of running calls' lines).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use super::records::FunctionLogs;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::{require_namespace, valid_name};
use crate::error::{ApiError, ApiResult};
use faasbox_core::live_logs::{Followed, Follower};
use faasbox_core::owner::Owner;
use faasbox_core::state::AppState;

/// Lines answered when `limit` is not given.
pub const DEFAULT_LINES: u32 = 100;
/// The most lines one answer holds.
pub const MAX_LINES: u32 = 1000;
/// How often a followed stream gets a comment when it has no line to send (keeps proxies
/// from closing it; a client that went away is noticed at the latest then).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    limit: Option<u32>,
    after: Option<i64>,
    follow: Option<bool>,
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
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; the query takes limit=1..{MAX_LINES} and after=CURSOR (the `next` of an \
             earlier answer), or follow=true",
            e.body_text()
        ))
    })?;
    if query.follow == Some(true) {
        if query.limit.is_some() || query.after.is_some() {
            return Err(ApiError::bad_request(
                "follow=true streams the lines printed from now on; `limit` and `after` read \
                 stored lines: ask for those without follow",
            ));
        }
        return follow(&state, ns, name).await;
    }
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
    // The blocking calls' records (and lines) the writer holds are written first.
    state.runs.records.settle().await;
    let logs = state
        .store
        .function_logs(&ns, &name, query.after, limit)
        .await?;
    Ok(Json(FunctionLogsView {
        namespace: ns,
        function: name,
        logs: logs.into(),
    })
    .into_response())
}

/// The function's lines as its calls print them, as Server-Sent Events, from now on.
async fn follow(state: &Arc<AppState>, ns: String, name: String) -> ApiResult<Response> {
    valid_name("function", &name)?;
    require_namespace(state, &ns).await?;
    let owner = Owner::Namespace(ns.clone());
    if owner.load_function(&*state.store, &name).await?.is_none() {
        return Err(owner.missing(&name).into());
    }
    let follower = state.live_logs.follow(&ns, &name)?;
    // A first comment sends the answer's head at once: the client knows it follows.
    let hello = Event::default().comment(format!("following the logs of {ns}/{name}"));
    let events = stream::once(async move { Ok(hello) }).chain(followed_events(follower));
    let keep_alive = KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// The events of `follower`'s lines; the follower goes with the stream.
fn followed_events(follower: Follower) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(follower, |mut follower| async move {
        let event = match follower.next().await? {
            Followed::Line(line) => match serde_json::to_string(&*line) {
                Ok(data) => Event::default().event("line").data(data),
                Err(e) => Event::default().comment(format!("a line could not be sent: {e}")),
            },
            Followed::Lagged(missed) => Event::default()
                .event("lagged")
                .data(serde_json::json!({ "missed": missed }).to_string()),
        };
        Some((Ok(event), follower))
    })
}
