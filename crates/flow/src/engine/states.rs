//! What each state type does, given the instance data; and how received events resume a
//! waiting state.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::actions::CallSite;
use super::data::{require_object, truth, with};
use super::{codes, Checkpoint, Done, Engine, FlowError, InstanceRef, Wait, WaitEvent, WaitMode};
use crate::model::{EventFilter, State, StateKind, Workflow};

pub(super) async fn execute(
    engine: &Engine,
    inst: &InstanceRef,
    flow: &Arc<Workflow>,
    state: &State,
    cp: &Checkpoint,
    cancel: &CancellationToken,
) -> Result<Done, FlowError> {
    let data = cp.data.clone();
    let next = |data: Value| async move {
        Ok(Done::Next {
            data: engine
                .transform(state.transform.as_ref(), data, cancel)
                .await?,
            next: state.transition.clone(),
            pending_error: None,
        })
    };
    match &state.kind {
        StateKind::Noop => next(data).await,
        StateKind::Action {
            action,
            run_async: false,
        } => {
            let output = engine
                .call_action(
                    inst,
                    flow,
                    CallSite::new(&state.id, cp.step),
                    action,
                    &data,
                    cancel,
                )
                .await?;
            next(with(data, "return", output)).await
        }
        StateKind::Action {
            action,
            run_async: true,
        } => {
            let (engine, inst, flow, action, input, id) = (
                engine.clone(),
                inst.clone(),
                flow.clone(),
                action.clone(),
                data.clone(),
                state.id.clone(),
            );
            let step = cp.step;
            tokio::spawn(async move {
                let detached = CancellationToken::new();
                let site = CallSite::new(&id, step).detached();
                if let Err(e) = engine
                    .call_action(&inst, &flow, site, &action, &input, &detached)
                    .await
                {
                    engine
                        .effects
                        .log(
                            &inst,
                            format!(
                                "the async action of state '{id}' failed: {}: {}",
                                e.code, e.message
                            ),
                        )
                        .await;
                }
            });
            next(data).await
        }
        StateKind::Switch {
            conditions,
            default_transition,
            default_transform,
        } => {
            for (index, condition) in conditions.iter().enumerate() {
                let value = engine.evaluate(&condition.condition, &data, cancel).await?;
                if let (Value::Null, Value::String(expr)) = (&value, &condition.condition) {
                    // Direktiv's jq gives an error, not null, for a query whose result is
                    // null; only a condition written as a literal null is "not met".
                    return Err(FlowError::catchable(
                        codes::BAD_COMMAND,
                        format!(
                            "failed to evaluate jq/js: condition {index} of state '{}' ({expr}) \
                             gave null, which is an error as in Direktiv; to treat a missing \
                             value as not met, give a default, as in jq(.x // false)",
                            state.id
                        ),
                    ));
                }
                if truth(&value) {
                    let t = condition.transform.as_ref().or(state.transform.as_ref());
                    return Ok(Done::Next {
                        data: engine.transform(t, data, cancel).await?,
                        next: condition.transition.clone(),
                        pending_error: None,
                    });
                }
            }
            let t = default_transform.as_ref().or(state.transform.as_ref());
            Ok(Done::Next {
                data: engine.transform(t, data, cancel).await?,
                next: default_transition.clone(),
                pending_error: None,
            })
        }
        StateKind::Delay { duration } => {
            let now = engine.effects.now_ms();
            let wake = cp.wake_at_ms.unwrap_or(now + duration.as_millis() as u64);
            // Ends at a cancel at once: the state's guard only gives a stopped state a grace
            // period, and a parent waiting on this instance as its subflow may wait less.
            tokio::select! {
                () = engine.effects.sleep(Duration::from_millis(wake.saturating_sub(now))) => {}
                () = cancel.cancelled() => return Err(super::cancelled()),
            }
            next(data).await
        }
        StateKind::Error {
            error,
            message,
            args,
        } => {
            if let Some(first) = &cp.pending_error {
                // As in Direktiv: the second raise is an error of its own, catchable.
                return Err(FlowError::catchable(
                    codes::MULTIPLE_ERRORS,
                    format!(
                        "the workflow instance tried to throw multiple errors (state '{}' \
                         raised {error} while {} was pending)",
                        state.id, first.code
                    ),
                ));
            }
            let mut text = message.clone();
            for arg in args {
                let value = engine.render(arg, &data, cancel).await?;
                let shown = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                if let Some(at) = text.find("%s").or_else(|| text.find("%v")) {
                    text.replace_range(at..at + 2, &shown);
                }
            }
            let raised = FlowError::catchable(error, text);
            Ok(Done::Next {
                data,
                next: state.transition.clone(),
                pending_error: Some(raised),
            })
        }
        StateKind::Foreach { array, action } => {
            let items = match engine.evaluate(array, &data, cancel).await? {
                Value::Array(items) => items,
                other => {
                    return Err(FlowError::catchable(
                        codes::FOREACH_BAD_ARRAY,
                        format!(
                            "jq produced non-array output: the array of state '{}' gave {}",
                            state.id,
                            shorten(&other.to_string())
                        ),
                    ))
                }
            };
            let results = engine
                .foreach(
                    inst,
                    flow,
                    CallSite::new(&state.id, cp.step),
                    action,
                    items,
                    cancel,
                )
                .await?;
            next(with(data, "return", Value::Array(results))).await
        }
        StateKind::Parallel { .. } => {
            let results = engine
                .parallel(inst, flow, state, cp.step, &data, cancel)
                .await?;
            next(with(data, "return", Value::Array(results))).await
        }
        StateKind::Validate { subject, schema } => {
            let subject = match subject {
                Some(s) => engine.evaluate(s, &data, cancel).await?,
                None => data.clone(),
            };
            // Compiling the schema and checking up to the instance's bound of data is CPU
            // work: a blocking thread's, never an async worker's.
            let (schema, state_id) = (schema.clone(), state.id.clone());
            let problems = tokio::task::spawn_blocking(move || {
                let validator = jsonschema::validator_for(&schema).map_err(|e| {
                    FlowError::internal(format!("the schema of state '{state_id}' is invalid: {e}"))
                })?;
                Ok::<_, FlowError>(
                    validator
                        .iter_errors(&subject)
                        .map(|e| format!("{} (at '{}')", e, e.instance_path))
                        .collect::<Vec<String>>(),
                )
            })
            .await
            .map_err(|e| FlowError::internal(format!("the validation stopped: {e}")))??;
            if !problems.is_empty() {
                return Err(FlowError::catchable(
                    codes::SCHEMA_FAILED,
                    format!(
                        "subject failed its JSONSchema validation (state '{}'): {}",
                        state.id,
                        problems.join("; ")
                    ),
                ));
            }
            next(data).await
        }
        StateKind::Getter { variables } => {
            let mut vars = match data.get("var") {
                Some(Value::Object(map)) => map.clone(),
                _ => serde_json::Map::new(),
            };
            for v in variables {
                let value = engine
                    .effects
                    .get_var(inst, v.scope, &v.key)
                    .await?
                    .unwrap_or(Value::Null);
                vars.insert(v.as_name.clone().unwrap_or_else(|| v.key.clone()), value);
            }
            next(with(data, "var", Value::Object(vars))).await
        }
        StateKind::Setter { variables } => {
            for v in variables {
                let value = engine.render(&v.value, &data, cancel).await?;
                let value = (!value.is_null()).then_some(value);
                engine.effects.set_var(inst, v.scope, &v.key, value).await?;
            }
            next(data).await
        }
        StateKind::GenerateEvent { event, delay } => {
            let mut out = serde_json::Map::new();
            for (k, v) in &event.context {
                out.insert(k.clone(), engine.render(v, &data, cancel).await?);
            }
            out.insert("specversion".into(), "1.0".into());
            out.insert(
                "type".into(),
                engine
                    .render(&Value::String(event.event_type.clone()), &data, cancel)
                    .await?,
            );
            out.insert(
                "source".into(),
                engine
                    .render(&Value::String(event.source.clone()), &data, cancel)
                    .await?,
            );
            // Without `data`, Direktiv sends the instance data (its template of nothing is
            // the whole input), and receivers of its events rely on that.
            let event_data = match &event.data {
                Some(d) => engine.render(d, &data, cancel).await?,
                None => data.clone(),
            };
            out.insert("data".into(), event_data);
            if let Some(ct) = &event.data_content_type {
                out.insert("datacontenttype".into(), Value::String(ct.clone()));
            }
            engine
                .effects
                .generate_event(inst, Value::Object(out), *delay)
                .await?;
            next(data).await
        }
        StateKind::ConsumeEvent { event } => {
            wait(
                engine,
                state,
                WaitMode::Consume,
                std::slice::from_ref(event),
                &data,
                cancel,
            )
            .await
        }
        StateKind::EventsAnd { events } => {
            wait(engine, state, WaitMode::And, events, &data, cancel).await
        }
        StateKind::EventsXor { events } => {
            let filters: Vec<EventFilter> = events.iter().map(|b| b.event.clone()).collect();
            wait(engine, state, WaitMode::Xor, &filters, &data, cancel).await
        }
    }
}

/// A wait for events, their context filters evaluated against the data now; events
/// accepted from now on count for it.
async fn wait(
    engine: &Engine,
    state: &State,
    mode: WaitMode,
    filters: &[EventFilter],
    data: &Value,
    cancel: &CancellationToken,
) -> Result<Done, FlowError> {
    let watermark = engine.effects.event_watermark().await?;
    let mut events = Vec::new();
    for filter in filters {
        let mut context = serde_json::Map::new();
        for (k, v) in &filter.context {
            context.insert(k.clone(), engine.render(v, data, cancel).await?);
        }
        events.push(WaitEvent {
            event_type: filter.event_type.clone(),
            context,
        });
    }
    let deadline_ms = state
        .timeout
        .map(|t| engine.effects.now_ms() + t.as_millis() as u64);
    Ok(Done::Wait(Wait {
        mode,
        events,
        deadline_ms,
        watermark,
    }))
}

/// A waiting state finished: each received event goes into the data under its type; an
/// `eventsXor` state moves on by the branch whose event came.
pub(super) async fn received_events(
    engine: &Engine,
    state: &State,
    wait: &Wait,
    data: Value,
    events: Vec<(usize, Value)>,
    cancel: &CancellationToken,
) -> Result<Done, FlowError> {
    let mut data = require_object(data)?;
    let mut next = state.transition.clone();
    let mut t = state.transform.as_ref();
    for (index, event) in events {
        let Some(expected) = wait.events.get(index) else {
            return Err(FlowError::internal(format!(
                "state '{}' got an event for wait {index}, which it does not have",
                state.id
            )));
        };
        data = with(data, &expected.event_type, event);
        if let StateKind::EventsXor { events: branches } = &state.kind {
            if let Some(branch) = branches.get(index) {
                next = branch.transition.clone();
                t = branch.transform.as_ref().or(t);
            }
        }
    }
    Ok(Done::Next {
        data: engine.transform(t, data, cancel).await?,
        next,
        pending_error: None,
    })
}

/// A value's JSON text for a message, cut to 200 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
