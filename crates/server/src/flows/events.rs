//! The glue between events (`crate::events`) and the workflow engine: the [`FlowRunner`] that
//! starts and resumes instances for deliveries and claims cron slots with their instance, a
//! deployed flow's start as a [`FlowStart`], instance waits stored as listeners (with their
//! timeout timers, re-armed at start-up), and `generateEvent`'s events emitted into the
//! namespace.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use faasbox_events::{EventFilter, ListenMode};
use faasbox_flow::engine::{Checkpoint, InstanceRef, Wait, WaitMode, WaitResolution};
use faasbox_flow::model::StartKind;
use faasbox_flow::Workflow;
use faasbox_store::ScheduleRecord;
use serde_json::{json, Map, Value};

use super::runner;
use crate::events::{FlowRunner, FlowStart, GeneratedFields, RunnerError, WaitRequest};
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
    let waiting = state
        .blocking(|s| Ok(s.store.instances_with_status("waiting")?))
        .await?;
    for record in waiting {
        let Some(wait) = serde_json::from_str::<Checkpoint>(&record.checkpoint)
            .ok()
            .and_then(|cp| cp.wait)
        else {
            continue;
        };
        let after_seq = match wait.watermark {
            Some(mark) => mark,
            None => {
                let saved_ms = time::OffsetDateTime::parse(
                    &record.updated,
                    &time::format_description::well_known::Rfc3339,
                )
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .unwrap_or(0);
                state
                    .blocking(move |s| Ok(s.store.event_watermark_before(saved_ms)?))
                    .await?
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
        let existing = instance_id.to_string();
        let started = state
            .blocking(move |s| Ok(s.store.instance(&existing)?.is_some()))
            .await
            .map_err(|e| RunnerError::Retry(e.message))?;
        if started {
            // An earlier hand-over created it; the server drives it (again) at start-up.
            return Ok(());
        }
        let by = runner::StartedBy::Trigger;
        let id = runner::create_as(&state, instance_id, namespace, flow, input, None, by)
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
        let id = instance_id.to_string();
        let record = state
            .blocking(move |s| Ok(s.store.instance(&id)?))
            .await
            .map_err(|e| RunnerError::Retry(e.message))?
            .ok_or_else(|| RunnerError::Gone(format!("instance {instance_id} is gone")))?;
        let wait = serde_json::from_str::<Checkpoint>(&record.checkpoint)
            .ok()
            .and_then(|cp| cp.wait)
            .filter(|_| record.status == "waiting")
            .ok_or_else(|| {
                RunnerError::Gone(format!(
                    "instance {instance_id} is no longer waiting ({})",
                    record.status
                ))
            })?;
        let received = match_to_wait(&wait, events);
        // Awaited, so the delivery is only removed once the instance moved on (a crash
        // before that delivers it again).
        runner::resume_waiting(
            &state,
            instance_id.to_string(),
            WaitResolution::Events(received),
        )
        .await
        .map_err(|e| RunnerError::Retry(e.to_string()))?;
        Ok(())
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

/// Pairs each event with the index of the wait's event it answers: in order for eventsAnd
/// (the listener fires in filter order), the first matching filter otherwise.
fn match_to_wait(wait: &Wait, events: Vec<Value>) -> Vec<(usize, Value)> {
    if wait.mode == WaitMode::And {
        return events.into_iter().enumerate().collect();
    }
    let filters = wait_filters(wait);
    events
        .into_iter()
        .map(|event| {
            let index = faasbox_events::CloudEvent::from_json(event.clone())
                .ok()
                .and_then(|e| filters.iter().position(|f| f.matches(&e)))
                .unwrap_or(0);
            (index, event)
        })
        .collect()
}

fn wait_filters(wait: &Wait) -> Vec<EventFilter> {
    wait.events
        .iter()
        .map(|e| {
            crate::events::event_filter(&e.event_type, &e.context, |v| {
                Ok::<_, std::convert::Infallible>(v.clone())
            })
            .unwrap_or_else(|never| match never {})
        })
        .collect()
}

/// Stores the wait of an instance the engine left waiting: events accepted since its state
/// started (its watermark) count. `fallback_after_seq` stands in for a wait saved without a
/// watermark (by an older version): the mark taken when this run of the instance began.
pub async fn on_waiting(
    state: &Arc<AppState>,
    instance: &InstanceRef,
    wait: &Wait,
    fallback_after_seq: i64,
) {
    let request = WaitRequest {
        namespace: instance.namespace.clone(),
        flow: instance.flow.clone(),
        instance_id: instance.id.clone(),
        mode: match wait.mode {
            WaitMode::Consume => ListenMode::One,
            WaitMode::Xor => ListenMode::Xor,
            WaitMode::And => ListenMode::And,
        },
        filters: wait_filters(wait),
        deadline_ms: wait.deadline_ms.map(|d| d as i64),
        after_seq: wait.watermark.unwrap_or(fallback_after_seq),
        now_ms: crate::events::now_ms(),
    };
    let stored = state
        .blocking(move |s| {
            // A resumed-after-restart wait is stored already.
            if s.store
                .wait_listeners()?
                .iter()
                .any(|l| l.instance_id.as_deref() == Some(request.instance_id.as_str()))
            {
                return Ok(None);
            }
            Ok(Some(crate::events::register_wait(&s.store, &request)?))
        })
        .await;
    match stored {
        Ok(Some((_, fired))) => {
            if fired.is_some() {
                state.events.wake();
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(instance = %instance.id, "storing the instance's event wait failed: {e}")
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
    let id = uuid::Uuid::new_v4().to_string();
    let prepared = match runner::prepare(
        state,
        &id,
        &schedule.namespace,
        &schedule.flow,
        json!({}),
        None,
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
    let s = schedule.clone();
    state
        .blocking(move |st| {
            let now = crate::clock::now_rfc3339();
            let record = prepared.as_ref().map(|p| p.record(&now));
            let claimed = st.store.claim_schedule_slot(
                &s.namespace,
                &s.flow,
                &s.cron,
                slot_ms,
                record.as_ref(),
            )?;
            Ok(prepared.filter(|_| claimed).map(|p| p.id().to_string()))
        })
        .await
        .inspect(|created| {
            if created.is_some() {
                crate::metrics::flow_started(&schedule.namespace);
            }
        })
}

/// A flow's start as the events machinery sees it.
pub fn flow_start(flow: &Workflow) -> FlowStart {
    let filter = |f: &faasbox_flow::model::EventFilter| {
        crate::events::event_filter(&f.event_type, &f.context, |v| {
            Ok::<_, std::convert::Infallible>(v.clone())
        })
        .unwrap_or_else(|never| match never {})
    };
    match &flow.start.kind {
        StartKind::Default => FlowStart::Default,
        StartKind::Scheduled { cron } => FlowStart::Scheduled { cron: cron.clone() },
        StartKind::Event { event } => FlowStart::Events {
            mode: ListenMode::One,
            filters: vec![filter(event)],
            lifespan: None,
        },
        StartKind::EventsXor { events } => FlowStart::Events {
            mode: ListenMode::Xor,
            filters: events.iter().map(filter).collect(),
            lifespan: None,
        },
        StartKind::EventsAnd { events, lifespan } => FlowStart::Events {
            mode: ListenMode::And,
            filters: events.iter().map(filter).collect(),
            lifespan: *lifespan,
        },
    }
}

/// `generateEvent`: the engine's evaluated event (attributes, `data`, and the context as
/// further members) emitted into the instance's namespace, at once or after `delay`.
pub async fn generate(
    state: &Arc<AppState>,
    instance: &InstanceRef,
    event: Value,
    delay: Option<Duration>,
) -> Result<String, String> {
    let Value::Object(mut members) = event else {
        return Err("the generated event is not an object".into());
    };
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    members.remove("specversion");
    let fields = GeneratedFields {
        event_type: text(members.remove("type")),
        source: text(members.remove("source")),
        data: members.remove("data"),
        data_content_type: members.remove("datacontenttype").map(|v| text(Some(v))),
        context: members.into_iter().collect::<Map<String, Value>>(),
    };
    let event = crate::events::generated_event(&fields)?;
    let id = event.id.clone();
    match delay {
        Some(delay) => crate::events::emit_later(state, &instance.namespace, event, delay).await,
        None => crate::events::emit(state, &instance.namespace, event)
            .await
            .map(|_| ()),
    }
    .map_err(|e| e.message)?;
    Ok(id)
}
