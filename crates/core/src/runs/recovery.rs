//! Crash recovery of runs, at start before the executor runs: synchronous calls that were
//! running end `crashed` (their callers are gone); an asynchronous run that was running is
//! queued again once (attempt 2, with a log line saying so), one already on its second
//! attempt ends `crashed`. Queued runs just stay queued for the executor.

use std::sync::Arc;
use std::time::Duration;

use faasbox_store::{Requeued, Store, StoreError};

use crate::state::AppState;

/// What [`recover`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Synchronous calls marked `crashed`.
    pub sync_crashed: usize,
    /// Asynchronous runs queued again, and those that ended `crashed`.
    pub requeued: Requeued,
}

/// Recovers the runs a stopped server left running (see the module documentation).
pub async fn recover(store: &dyn Store) -> Result<Recovered, StoreError> {
    let now = crate::run_record::now();
    let sync_crashed = store.fail_interrupted_invocations(&now).await?;
    let requeued = store.requeue_interrupted_runs(&now).await?;
    if sync_crashed > 0 {
        tracing::warn!(
            "{sync_crashed} calls were running when the server last stopped; they are marked crashed"
        );
    }
    if !requeued.requeued.is_empty() {
        tracing::warn!(
            "{} asynchronous runs were running when the server last stopped; they run again",
            requeued.requeued.len()
        );
    }
    if !requeued.crashed.is_empty() {
        tracing::warn!(
            "{} asynchronous runs were on their second attempt when the server last stopped; \
             they are marked crashed",
            requeued.crashed.len()
        );
    }
    Ok(Recovered {
        sync_crashed,
        requeued,
    })
}

/// Sends, in the background, the callbacks of the asynchronous runs [`recover`] ended
/// `crashed` (their receivers learn of the end too).
pub fn send_callbacks(state: &Arc<AppState>, crashed: Vec<String>) {
    if crashed.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for id in crashed {
            let Ok(Some(run)) = state.store.invocation(&id).await else {
                continue;
            };
            let Some(url) = run.callback_url.clone() else {
                continue;
            };
            let message = run.error_message.clone().unwrap_or_default();
            let outcome = super::callback::Outcome::crashed(&message);
            let state = state.clone();
            tokio::spawn(async move {
                super::callback::send(&state, &run, &url, outcome, Duration::ZERO).await;
            });
        }
    });
}
