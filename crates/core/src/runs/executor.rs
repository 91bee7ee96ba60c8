//! The executor of asynchronous runs: claims queued runs from the store (each once, by an
//! atomic `queued` → `running` change), at most `runs_per_function` of one function and
//! `runs_in_flight` in all at once, and runs each through the invoker like a synchronous call
//! (`invoker::invoke_stored`); when one ends, its callback is sent and the next is claimed.
//! It is woken by `submit` and by each run's end, and looks at the store every second anyway.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faasbox_store::InvocationRecord;
use tokio_util::sync::CancellationToken;

use crate::invoker::{self, CallOptions, StoredRun};
use crate::routes::context::HttpContext;
use crate::state::AppState;

/// How often the store is looked at without a wake-up.
const POLL: Duration = Duration::from_secs(1);
/// Queued runs looked at per round.
const BATCH: u32 = 500;

/// Starts the executor in the background; it runs as long as the server.
pub fn start(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let woken = state.runs.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Err(e) = round(&state).await {
                tracing::warn!("claiming queued runs failed (retrying): {e}");
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

/// Claims and starts every queued run there is room for.
async fn round(state: &Arc<AppState>) -> Result<(), faasbox_store::StoreError> {
    let (per_function, total) = (
        state.config.runs_per_function.max(1),
        state.config.runs_in_flight.max(1),
    );
    let full: Vec<String> = {
        let counts = in_flight(state);
        if counts.total >= total {
            return Ok(());
        }
        counts
            .by_function
            .iter()
            .filter(|(_, n)| **n >= per_function)
            .map(|(key, _)| key.clone())
            .collect()
    };
    // Functions without room are left out, so their backlog does not hide other functions'.
    for run in state.store.queued_runs(BATCH, &full).await? {
        let key = function_key(&run);
        {
            let counts = in_flight(state);
            if counts.total >= total {
                return Ok(());
            }
            if counts.by_function.get(&key).copied().unwrap_or(0) >= per_function {
                continue;
            }
        }
        if !state
            .store
            .claim_run(&run.id, &crate::run_record::now(), state.node.as_str())
            .await?
        {
            // Cancelled (or claimed) meanwhile.
            continue;
        }
        {
            let mut counts = in_flight(state);
            *counts.by_function.entry(key.clone()).or_default() += 1;
            counts.total += 1;
        }
        let state = state.clone();
        tokio::spawn(async move {
            execute(&state, run).await;
            {
                let mut counts = in_flight(&state);
                if let Some(n) = counts.by_function.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        counts.by_function.remove(&key);
                    }
                }
                counts.total = counts.total.saturating_sub(1);
            }
            state.runs.wake();
        });
    }
    Ok(())
}

fn in_flight(state: &AppState) -> std::sync::MutexGuard<'_, crate::run_book::InFlight> {
    state
        .runs
        .in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn function_key(run: &InvocationRecord) -> String {
    format!("{}/{}", run.namespace, run.function)
}

/// Runs one claimed run to its end, then sends its callback.
async fn execute(state: &Arc<AppState>, run: InvocationRecord) {
    let parse = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    let (event, http_context) = (parse(&run.event), parse(&run.http_context));
    let mut code_context = serde_json::Map::new();
    if let Some(event) = &event {
        code_context.insert("event".into(), event.clone());
    }
    if let Some(http) = &http_context {
        code_context.insert("httpContext".into(), http.clone());
    }
    // A route's async call: an http function sees the caller's request as a blocking one does.
    let http_forward = http_context
        .as_ref()
        .and_then(|http| serde_json::from_value::<HttpContext>(http.clone()).ok())
        .map(|http| crate::routes::context::http_forward(&http));
    let options = CallOptions {
        cancel: CancellationToken::new(),
        code_context,
        secrets: run.secrets.clone(),
        services: run.services.clone(),
        event,
        http_context,
        http_forward,
        ..CallOptions::default()
    };
    let started = std::time::Instant::now();
    let input = Bytes::from(run.input.clone().unwrap_or_else(|| "{}".into()));
    let invocation = invoker::invoke_stored(
        state.clone(),
        StoredRun {
            id: run.id.clone(),
            namespace: run.namespace.clone(),
            function: run.function.clone(),
            input,
            options,
        },
    )
    .await;
    if let Some(url) = run.callback_url.clone() {
        // The callback is sent apart: its retries do not hold the run's place.
        let result = super::callback::Outcome::of(&invocation.result);
        let state = state.clone();
        let elapsed = started.elapsed();
        tokio::spawn(async move {
            super::callback::send(&state, &run, &url, result, elapsed).await;
        });
    }
}
