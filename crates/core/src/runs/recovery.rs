//! Crash recovery of runs, at start before the executor runs: synchronous calls that were
//! running end `crashed` (their callers are gone); an asynchronous run that was running is
//! queued again once (attempt 2, with a log line saying so), one already on its second
//! attempt ends `crashed`. Queued runs just stay queued for the executor.

use faasbox_store::{Requeued, Store, StoreError};

use crate::clock;

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
    let now = clock::now_rfc3339();
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
