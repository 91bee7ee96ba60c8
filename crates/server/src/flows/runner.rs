//! Starting, driving, resuming and cancelling instances. An instance is created in the store
//! with its first checkpoint before it runs, so an accepted run survives a crash; at start the
//! server drives every instance that was `running` again from its last checkpoint.

use std::sync::Arc;
use std::time::Duration;

use faasbox_flow::engine::{
    codes, Checkpoint, Engine, FlowError, InstanceRef, Outcome, Wait, WaitResolution,
};
use faasbox_store::NewInstance;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::effects::{store_error, ServerEffects};
use crate::clock;
use crate::error::ApiError;
use crate::state::AppState;

/// The error code of a stored flow that no longer parses (it was stored by another version).
pub const FLOW_INVALID: &str = "faasbox.flow.invalid";

/// Creates an instance of `namespace/path` with `input`; it does not run yet (see [`spawn`]).
pub async fn create(
    state: &Arc<AppState>,
    namespace: &str,
    path: &str,
    input: Value,
    parent: Option<&str>,
) -> Result<String, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    create_as(state, &id, namespace, path, input, parent).await
}

/// [`create`] with the instance id chosen by the caller (an event delivery's, so that
/// handing it over again after a crash finds the instance instead of making another).
pub async fn create_as(
    state: &Arc<AppState>,
    id: &str,
    namespace: &str,
    path: &str,
    input: Value,
    parent: Option<&str>,
) -> Result<String, ApiError> {
    let new = prepare(state, id, namespace, path, input, parent).await?;
    state
        .blocking(move |s| {
            Ok(s.store
                .create_instance(&new.record(&clock::now_rfc3339()))?)
        })
        .await?;
    crate::metrics::flow_started(namespace);
    Ok(id.to_string())
}

/// An instance ready to be stored: its flow read and checked, its first checkpoint made.
pub struct PreparedInstance {
    id: String,
    namespace: String,
    flow: String,
    source: String,
    input: String,
    checkpoint: String,
    parent: Option<String>,
}

impl PreparedInstance {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store's record of it, created at `now`.
    pub fn record<'a>(&'a self, now: &'a str) -> NewInstance<'a> {
        NewInstance {
            id: &self.id,
            namespace: &self.namespace,
            flow: &self.flow,
            source: &self.source,
            input: &self.input,
            checkpoint: &self.checkpoint,
            parent: self.parent.as_deref(),
            now,
        }
    }
}

/// Reads and checks `namespace/path` and makes the first checkpoint of an instance `id` of
/// it (stored by [`create_as`], or by a caller that stores it with more in one transaction).
pub async fn prepare(
    state: &Arc<AppState>,
    id: &str,
    namespace: &str,
    path: &str,
    input: Value,
    parent: Option<&str>,
) -> Result<PreparedInstance, ApiError> {
    let (ns, p) = (namespace.to_string(), path.to_string());
    let record = state.blocking(move |s| Ok(s.store.flow(&ns, &p)?)).await?;
    let Some(record) = record else {
        return Err(ApiError::not_found(format!(
            "flow {namespace}/{path} does not exist; deploy it with `faasbox flow deploy {namespace}/{path} FILE`"
        )));
    };
    let flow = faasbox_flow::load(&record.source).map_err(|problems| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            FLOW_INVALID,
            format!("flow {namespace}/{path} is invalid: {}", problems[0]),
        )
    })?;
    let cp = Checkpoint::start(flow.first_state(), input.clone(), clock_ms());
    Ok(PreparedInstance {
        id: id.to_string(),
        namespace: namespace.to_string(),
        flow: path.to_string(),
        source: record.source,
        input: input.to_string(),
        checkpoint: json_text(&cp)?,
        parent: parent.map(str::to_string),
    })
}

/// Runs an instance in a task of its own.
pub fn spawn(state: &Arc<AppState>, id: String) -> tokio::task::JoinHandle<Outcome> {
    let state = state.clone();
    tokio::spawn(async move { drive(&state, &id, None, CancellationToken::new()).await })
}

/// Runs (or resumes) an instance until it ends or waits, and records how it ended.
/// `cancel` (with [`cancel`]) stops it.
pub async fn drive(
    state: &Arc<AppState>,
    id: &str,
    resolution: Option<WaitResolution>,
    cancel: CancellationToken,
) -> Outcome {
    let id_owned = id.to_string();
    let record = match state
        .blocking(move |s| Ok(s.store.instance(&id_owned)?))
        .await
    {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Outcome::Failed(FlowError::internal(format!("instance {id} does not exist")))
        }
        Err(e) => return Outcome::Failed(store_error(e)),
    };
    if state.flow_runs.is_running(id) {
        return Outcome::Failed(FlowError::internal(format!(
            "instance {id} is already running"
        )));
    }
    let waiting = record.status == "waiting";
    if !matches!(record.status.as_str(), "running" | "waiting")
        || (resolution.is_some() && !waiting)
    {
        return Outcome::Failed(FlowError::internal(format!(
            "instance {id} is {}; only a waiting instance can be resumed",
            record.status
        )));
    }
    let inst = InstanceRef {
        id: id.to_string(),
        namespace: record.namespace.clone(),
        flow: record.flow.clone(),
    };
    let parsed = faasbox_flow::load(&record.source);
    let cp = serde_json::from_str::<Checkpoint>(&record.checkpoint);
    let outcome = match (parsed, cp) {
        (Ok(flow), Ok(cp)) => {
            let flow = Arc::new(flow);
            let effects = Arc::new(ServerEffects::new(state.clone(), flow.clone(), &cp));
            state.flow_runs.register(id, cancel.clone());
            let watermark = crate::events::watermark(state).await;
            let engine = Engine::new(effects);
            let outcome = match resolution {
                Some(r) => engine.resume(&inst, &flow, cp, r, &cancel).await,
                None => engine.run(&inst, &flow, cp, &cancel).await,
            };
            state.flow_runs.remove(id);
            if let Outcome::Waiting(wait) = &outcome {
                crate::events::engine::on_waiting(state, &inst, wait, watermark).await;
            }
            outcome
        }
        (Err(problems), _) => Outcome::Failed(FlowError::fatal(
            FLOW_INVALID,
            format!("the instance's flow is invalid: {}", problems[0]),
        )),
        (_, Err(e)) => Outcome::Failed(FlowError::internal(format!(
            "the instance's checkpoint is unreadable: {e}"
        ))),
    };
    if state.flow_runs.is_shutting_down() && !matches!(outcome, Outcome::Waiting(_)) {
        return outcome;
    }
    record_end(state, &inst, &outcome).await;
    if let Outcome::Waiting(Wait {
        deadline_ms: Some(deadline),
        ..
    }) = &outcome
    {
        schedule_wait_timeout(state, id.to_string(), *deadline);
    }
    outcome
}

/// Resumes a waiting instance with [`WaitResolution::TimedOut`] at `deadline` (ms since the
/// epoch), if it still waits for the same wait then.
pub fn schedule_wait_timeout(state: &Arc<AppState>, id: String, deadline: u64) {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(clock_ms()))).await;
        let id2 = id.clone();
        let record = state.blocking(move |s| Ok(s.store.instance(&id2)?)).await;
        let Ok(Some(record)) = record else { return };
        let same_wait = serde_json::from_str::<Checkpoint>(&record.checkpoint)
            .ok()
            .and_then(|cp| cp.wait)
            .is_some_and(|w| w.deadline_ms == Some(deadline));
        if record.status != "waiting" || !same_wait {
            return;
        }
        // The wait's event listener goes with the timeout; if an event took it first, the
        // event resumes the instance and the timeout does nothing.
        let id3 = id.clone();
        let took_wait = state
            .blocking(move |s| Ok(s.store.delete_instance_listeners(&id3)?))
            .await
            .is_ok_and(|removed| removed > 0);
        if took_wait {
            drive(
                &state,
                &id,
                Some(WaitResolution::TimedOut),
                CancellationToken::new(),
            )
            .await;
        }
    });
}

async fn record_end(state: &Arc<AppState>, inst: &InstanceRef, outcome: &Outcome) {
    let (status, output, error) = match outcome {
        Outcome::Waiting(_) => return,
        Outcome::Completed(output) => ("complete", Some(output.to_string()), None),
        Outcome::Failed(e) if e.code == codes::CANCELLED => {
            ("cancelled", None, Some((e.code.clone(), e.message.clone())))
        }
        Outcome::Failed(e) => ("failed", None, Some((e.code.clone(), e.message.clone()))),
    };
    let line = match &error {
        None => "instance completed".to_string(),
        Some((code, message)) => format!("instance {status}: {code}: {message}"),
    };
    let id = inst.id.clone();
    let stored = state
        .blocking(move |s| {
            s.store.append_instance_log(&id, clock_ms() as i64, &line)?;
            let error = error.as_ref().map(|(c, m)| (c.as_str(), m.as_str()));
            Ok(s.store.finish_instance(
                &id,
                status,
                output.as_deref(),
                error,
                &clock::now_rfc3339(),
            )?)
        })
        .await;
    match stored {
        Ok(true) => crate::metrics::flow_finished(&inst.namespace, status),
        Ok(false) => {}
        Err(e) => tracing::error!("recording the end of instance {} failed: {e}", inst.id),
    }
}

/// Runs flow `path` as a child of `parent` and gives its output (its error if it fails).
pub async fn run_subflow(
    state: &Arc<AppState>,
    parent: &InstanceRef,
    path: &str,
    input: Value,
    cancel: CancellationToken,
) -> Result<Value, FlowError> {
    let id = create(state, &parent.namespace, path, input, Some(&parent.id))
        .await
        .map_err(|e| FlowError::catchable(&e.code, e.message))?;
    match drive(state, &id, None, cancel.child_token()).await {
        Outcome::Completed(output) => Ok(output),
        Outcome::Failed(e) => Err(e),
        Outcome::Waiting(_) => wait_for_end(state, &id, &cancel).await,
    }
}

/// Polls the store until a (waiting) child instance ended.
async fn wait_for_end(
    state: &Arc<AppState>,
    id: &str,
    cancel: &CancellationToken,
) -> Result<Value, FlowError> {
    loop {
        let id_owned = id.to_string();
        let record = state
            .blocking(move |s| Ok(s.store.instance(&id_owned)?))
            .await
            .map_err(store_error)?;
        let Some(record) = record else {
            return Err(FlowError::internal(format!(
                "subflow instance {id} vanished"
            )));
        };
        match record.status.as_str() {
            "complete" => {
                return Ok(record
                    .output
                    .and_then(|o| serde_json::from_str(&o).ok())
                    .unwrap_or(Value::Null))
            }
            "failed" | "cancelled" => {
                let code = record
                    .error_code
                    .unwrap_or_else(|| codes::CRASHED.to_string());
                return Err(FlowError::catchable(
                    &code,
                    record.error_message.unwrap_or_default(),
                ));
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = cancel.cancelled() => {
                cancel_instance(state, id).await.map_err(store_error)?;
                return Err(FlowError::fatal(codes::CANCELLED, "the instance was cancelled"));
            }
        }
    }
}

/// Drives every instance that was running when the server stopped (called at start).
pub async fn resume_unfinished(state: &Arc<AppState>) -> Result<usize, ApiError> {
    let records = state
        .blocking(|s| Ok(s.store.instances_with_status("running")?))
        .await?;
    let count = records.len();
    for record in records {
        if record.parent.is_some() {
            // A subflow is driven by its parent's action, which runs again on resume.
            let id = record.id.clone();
            let _ = state
                .blocking(move |s| {
                    Ok(s.store.finish_instance(
                        &id,
                        "failed",
                        None,
                        Some((
                            codes::CANCELLED,
                            "its parent was interrupted and runs the subflow again",
                        )),
                        &clock::now_rfc3339(),
                    )?)
                })
                .await;
            continue;
        }
        spawn(state, record.id);
    }
    let waiting = state
        .blocking(|s| Ok(s.store.instances_with_status("waiting")?))
        .await?;
    for record in waiting {
        let deadline = serde_json::from_str::<Checkpoint>(&record.checkpoint)
            .ok()
            .and_then(|cp| cp.wait)
            .and_then(|w| w.deadline_ms);
        if let Some(deadline) = deadline {
            schedule_wait_timeout(state, record.id, deadline);
        }
    }
    Ok(count)
}

/// Resumes a waiting instance with the events it received (or its wait's timeout), in a
/// task of its own. For the events ingestion.
pub fn resume_waiting(
    state: &Arc<AppState>,
    id: String,
    resolution: WaitResolution,
) -> tokio::task::JoinHandle<Outcome> {
    let state = state.clone();
    tokio::spawn(
        async move { drive(&state, &id, Some(resolution), CancellationToken::new()).await },
    )
}

/// Cancels an instance: a running one stops (its running calls get their cancel), a waiting
/// one is marked cancelled. False if it had ended already.
pub async fn cancel_instance(state: &Arc<AppState>, id: &str) -> Result<bool, ApiError> {
    if state.flow_runs.cancel(id) {
        return Ok(true);
    }
    let id = id.to_string();
    let cancelled = state
        .blocking(move |s| {
            s.store.delete_instance_listeners(&id)?;
            let namespace = s.store.instance(&id)?.map(|r| r.namespace);
            let done = s.store.finish_instance(
                &id,
                "cancelled",
                None,
                Some((codes::CANCELLED, "the instance was cancelled")),
                &clock::now_rfc3339(),
            )?;
            Ok(namespace.filter(|_| done))
        })
        .await?;
    if let Some(namespace) = &cancelled {
        crate::metrics::flow_finished(namespace, "cancelled");
    }
    Ok(cancelled.is_some())
}

fn clock_ms() -> u64 {
    clock::now_ms()
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::internal(e.to_string()))
}
