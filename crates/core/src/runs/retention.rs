//! Retention of run records: every minute, ended runs older than `runs_max_age`, and in each
//! namespace ended runs beyond its newest `runs_keep`, are removed with their logs.

use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

/// How often old runs are removed.
pub const EVERY: Duration = Duration::from_secs(60);

/// Removes what the policy says once; returns how many runs went.
pub async fn purge_once(state: &AppState) -> Result<usize, faasbox_store::StoreError> {
    let age = time::Duration::try_from(state.config.runs_max_age).unwrap_or(time::Duration::MAX);
    let before = time::OffsetDateTime::now_utc()
        .checked_sub(age)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let removed = state
        .store
        .purge_runs(
            &crate::run_record::timestamp(before),
            state.config.runs_keep,
        )
        .await?;
    if removed > 0 {
        tracing::debug!("removed {removed} old runs");
    }
    Ok(removed)
}

/// Starts the retention task in the background; it runs as long as the server.
pub fn start(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            ticks.tick().await;
            if let Err(e) = purge_once(&state).await {
                tracing::warn!("removing old runs failed (retrying in a minute): {e}");
            }
        }
    })
}
