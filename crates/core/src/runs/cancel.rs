//! Cancelling a run: a queued one ends `cancelled` at once (it never runs); a running one gets
//! its cancel (the function gets its `DELETE`, the run ends `cancelled`); an ended one cannot
//! be cancelled.

use std::sync::Arc;
use std::time::Duration;

use faasbox_store::InvocationRecord;

use crate::failure::{Failure, FailureKind};
use crate::state::AppState;

/// The code of the refusal to cancel a run that has ended.
pub const RUN_ENDED: &str = "faasbox.run.ended";

/// How long [`cancel`] waits for a cancelled running run to record its end.
const SETTLE: Duration = Duration::from_secs(5);

/// Cancels run `id` (of `namespace`, when given) and answers its record as it is then.
pub async fn cancel(
    state: &Arc<AppState>,
    namespace: Option<&str>,
    id: &str,
) -> Result<InvocationRecord, Failure> {
    let record = find(state, namespace, id).await?;
    match record.status.as_str() {
        "queued" => {
            if state
                .store
                .cancel_queued_run(id, &crate::run_record::now())
                .await?
            {
                return find(state, namespace, id).await;
            }
            // Claimed meanwhile: it runs now; cancel it as such.
        }
        "running" => {}
        status => return Err(ended(id, status)),
    }
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let signalled = state.runs.cancel_running(id);
        let now = find(state, namespace, id).await?;
        if !matches!(now.status.as_str(), "queued" | "running") {
            return Ok(now);
        }
        if now.status == "queued"
            && state
                .store
                .cancel_queued_run(id, &crate::run_record::now())
                .await?
        {
            return find(state, namespace, id).await;
        }
        if tokio::time::Instant::now() >= deadline {
            if signalled {
                // It got its cancel and ends shortly.
                return Ok(now);
            }
            return Err(Failure::new(
                FailureKind::Conflict,
                crate::failure::codes::CONFLICT,
                format!(
                    "run '{id}' is running but not in this server's hands (was the server \
                     restarted?); it ends on its own or by its function's timeout"
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ended(id: &str, status: &str) -> Failure {
    Failure::new(
        FailureKind::Conflict,
        RUN_ENDED,
        format!("run '{id}' has ended ({status}); only a queued or running run can be cancelled"),
    )
}

async fn find(
    state: &Arc<AppState>,
    namespace: Option<&str>,
    id: &str,
) -> Result<InvocationRecord, Failure> {
    // A blocking call's record is written just after its answer (or, in its first moments,
    // not yet): what the writer holds is written first.
    state.runs.records.settle().await;
    match state.store.invocation(id).await? {
        Some(r) if namespace.is_none_or(|ns| ns == r.namespace) => Ok(r),
        _ => Err(Failure::not_found(format!("run '{id}' does not exist"))),
    }
}
