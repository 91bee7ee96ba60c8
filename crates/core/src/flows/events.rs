//! The workflow engine as the events' [`FlowRunner`] (`crate::events` knows it only by that
//! trait): it starts and resumes instances for deliveries and claims cron slots with their
//! instance; at start-up it is installed and restores the waits a kill lost (their timeout
//! timers are the runner's). What instances do with events is `super::event_waits`.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use faasbox_flow::engine::{Checkpoint, InstanceRef, WaitResolution};
use faasbox_store::ScheduleRecord;
use serde_json::{json, Value};

use super::event_waits::{match_to_wait, on_waiting};
use super::runner;
use crate::events::{FlowRunner, RunnerError};
use crate::failure::Failure;
use crate::state::AppState;

/// Starts and resumes instances for the dispatcher, claims cron slots for the scheduler.
pub struct EngineRunner {
    // Weak: the state owns the event bus that owns this runner.
    state: Weak<AppState>,
}

/// Installs the engine as the events' runner and restores waits lost to a kill. (Wait
/// timeouts are `runner::schedule_wait_timeout`'s: it takes the wait's listener, so
/// either the timeout or an event resumes the instance, never both.)
pub async fn install(state: &Arc<AppState>) -> Result<(), Failure> {
    state.events.set_runner(Arc::new(EngineRunner {
        state: Arc::downgrade(state),
    }));
    restore_lost_waits(state).await
}

/// An instance saved as waiting whose wait was not stored yet when the server died gets it
/// now, counting the events accepted since its state started (the wait's watermark; a wait
/// saved without one counts those accepted since its checkpoint was saved).
async fn restore_lost_waits(state: &Arc<AppState>) -> Result<(), Failure> {
    let waiting = state.store.instances_with_status("waiting").await?;
    let fired: std::collections::HashSet<String> = state
        .store
        .pending_deliveries()
        .await?
        .into_iter()
        .filter(|d| d.kind == faasbox_store::ListenerKind::Wait)
        .map(|d| d.instance_id)
        .collect();
    for record in waiting {
        let Some(wait) = serde_json::from_str::<Checkpoint>(&record.checkpoint)
            .ok()
            .and_then(|cp| cp.wait)
        else {
            continue;
        };
        // Its wait fired already: the delivery resumes it (handed over again if the server
        // handling it stopped).
        if fired.contains(&record.id) {
            continue;
        }
        let after_seq = match wait.watermark {
            Some(mark) => mark,
            None => {
                let saved_ms = time::OffsetDateTime::parse(
                    &record.updated,
                    &time::format_description::well_known::Rfc3339,
                )
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .unwrap_or(0);
                state.store.event_watermark_before(saved_ms).await?
            }
        };
        let instance = InstanceRef {
            id: record.id,
            namespace: record.namespace,
            flow: record.flow,
        };
        on_waiting(state, &instance, &wait, after_seq).await;
    }
    Ok(())
}

impl EngineRunner {
    fn state(&self) -> Result<Arc<AppState>, RunnerError> {
        self.state
            .upgrade()
            .ok_or_else(|| RunnerError::Retry("the server is stopping".into()))
    }
}

#[async_trait]
impl FlowRunner for EngineRunner {
    async fn start_instance(
        &self,
        namespace: &str,
        flow: &str,
        instance_id: &str,
        input: Value,
        _invoker: &str,
    ) -> Result<(), RunnerError> {
        let state = self.state()?;
        let started = state
            .store
            .instance(instance_id)
            .await
            .map_err(|e| RunnerError::Retry(e.to_string()))?
            .is_some();
        if started {
            // An earlier hand-over created it: its server drives it (again at its start-up,
            // or another server takes it over once that server's lease on it expired).
            return Ok(());
        }
        let by = runner::StartedBy::Trigger;
        let id = runner::create_as(
            &state,
            instance_id,
            namespace,
            flow,
            input,
            runner::Lineage::TOP,
            by,
        )
        .await
        .map_err(|e| {
            if e.is_callers() {
                RunnerError::Gone(e.message)
            } else {
                RunnerError::Retry(e.message)
            }
        })?;
        runner::spawn(&state, id);
        Ok(())
    }

    async fn resume_instance(
        &self,
        instance_id: &str,
        _listener_id: &str,
        events: Vec<Value>,
    ) -> Result<(), RunnerError> {
        let state = self.state()?;
        let record = state
            .store
            .instance(instance_id)
            .await
            .map_err(|e| RunnerError::Retry(e.to_string()))?
            .ok_or_else(|| RunnerError::Gone(format!("instance {instance_id} is gone")))?;
        let wait = serde_json::from_str::<Checkpoint>(&record.checkpoint)
            .ok()
            .and_then(|cp| cp.wait);
        if record.status == "running" && wait.is_some() {
            // Claimed to be resumed, and not moved on yet: by a server that is resuming it
            // (with this delivery, handed over again after its claim expired) or that stopped
            // first (the instance waits again once it is taken over). Asked again later.
            return Err(RunnerError::Retry(format!(
                "instance {instance_id} is being resumed by a server"
            )));
        }
        let wait = wait.filter(|_| record.status == "waiting").ok_or_else(|| {
            RunnerError::Gone(format!(
                "instance {instance_id} is no longer waiting ({})",
                record.status
            ))
        })?;
        let received = match_to_wait(&wait, events);
        // Awaited, so the delivery is only removed once the instance moved on (a crash
        // before that delivers it again).
        let resumed = runner::resume_waiting(
            &state,
            instance_id.to_string(),
            WaitResolution::Events(received),
        )
        .await
        .map_err(|e| RunnerError::Retry(e.message))?;
        match resumed {
            Some(_) => Ok(()),
            // Of the servers resuming its wait, another claimed it first (its timeout, say).
            None => Err(RunnerError::Gone(format!(
                "instance {instance_id} was resumed by another server or timer"
            ))),
        }
    }

    async fn claim_slot(
        &self,
        schedule: &ScheduleRecord,
        slot_ms: i64,
    ) -> Result<Option<String>, Failure> {
        let state = self
            .state
            .upgrade()
            .ok_or_else(|| Failure::internal("the server is stopping"))?;
        claim_slot(&state, schedule, slot_ms).await
    }

    fn drive_created(&self, id: String) {
        if let Some(state) = self.state.upgrade() {
            runner::spawn(&state, id);
        }
    }
}

/// Claims a cron slot of `schedule` together with its instance, in one store transaction,
/// so a claimed slot always has its instance (a crash before it is driven leaves it
/// `running`, and the start-up resume drives it). The instance id if this call claimed it;
/// a flow that cannot run (gone, invalid) has its slot claimed without one and skipped.
async fn claim_slot(
    state: &Arc<AppState>,
    schedule: &ScheduleRecord,
    slot_ms: i64,
) -> Result<Option<String>, Failure> {
    let id = crate::record_id::instance();
    let prepared = match runner::prepare(
        state,
        &id,
        &schedule.namespace,
        &schedule.flow,
        json!({}),
        runner::Lineage::TOP,
        runner::StartedBy::Trigger,
    )
    .await
    {
        Ok(prepared) => Some(prepared),
        Err(e) if e.is_callers() => {
            tracing::warn!(flow = %schedule.flow, namespace = %schedule.namespace, "scheduled start skipped: {}", e.message);
            None
        }
        Err(e) => return Err(e),
    };
    let now = crate::clock::now_rfc3339();
    let record = prepared.as_ref().map(|p| p.record(&now));
    let claimed = state
        .store
        .claim_schedule_slot(
            &schedule.namespace,
            &schedule.flow,
            &schedule.cron,
            slot_ms,
            record.as_ref(),
        )
        .await?;
    let created = prepared.filter(|_| claimed).map(|p| p.id().to_string());
    if created.is_some() {
        crate::metrics::flow_started(&schedule.namespace);
    }
    Ok(created)
}
