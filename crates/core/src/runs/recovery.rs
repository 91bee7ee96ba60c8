//! Recovery of the runs a server left running when it stopped: at its own start (before the
//! executor runs), and on another server when this one was declared dead
//! (`crate::membership`). Synchronous calls that were running end `crashed` (their
//! callers are gone); an asynchronous run that was running is queued again once (attempt 2,
//! with a log line saying so), one already on its second attempt ends `crashed`. Queued runs
//! just stay queued for any server's executor. Only the stopped node's runs are touched:
//! the other servers' keep running.

use std::sync::Arc;
use std::time::Duration;

use faasbox_store::{Interruption, Requeued, Store, StoreError};

use crate::state::AppState;

/// What [`recover`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Synchronous calls marked `crashed`.
    pub sync_crashed: usize,
    /// Asynchronous runs queued again, and those that ended `crashed`.
    pub requeued: Requeued,
}

/// Recovers the runs this server (`node`) left running when it last stopped (at start).
pub async fn recover(store: &dyn Store, node: &str) -> Result<Recovered, StoreError> {
    recover_node(store, node, "the server stopped").await
}

/// Recovers the runs `node` left running: `cause` says what happened to it, as the start of
/// a sentence (the runs' records and this server's log say it).
pub async fn recover_node(
    store: &dyn Store,
    node: &str,
    cause: &str,
) -> Result<Recovered, StoreError> {
    let now = crate::run_record::now();
    let gone = Interruption {
        ended: &now,
        node,
        cause,
    };
    let sync_crashed = store.fail_interrupted_invocations(&gone).await?;
    let requeued = store.requeue_interrupted_runs(&gone).await?;
    if sync_crashed > 0 {
        tracing::warn!("{sync_crashed} calls were running when {cause}; they are marked crashed");
    }
    if !requeued.requeued.is_empty() {
        tracing::warn!(
            "{} asynchronous runs were running when {cause}; they run again",
            requeued.requeued.len()
        );
    }
    if !requeued.crashed.is_empty() {
        tracing::warn!(
            "{} asynchronous runs were on their second attempt when {cause}; they are marked \
             crashed",
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
