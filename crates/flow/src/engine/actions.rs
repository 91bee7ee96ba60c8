//! Actions: building a call's input (with secrets visible only then), calling with
//! retries, and the `foreach` and `parallel` fan-outs.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{codes, Engine, FileOfCall, FlowError, FunctionCall, InstanceRef};

/// The longest wait between two attempts of an action: a retry `delay` (or what its
/// `multiplier` grows it to) above it waits this long.
pub const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The delay before the attempt after one that waited `delay`: times `multiplier`, at most
/// [`MAX_RETRY_DELAY`] (`Duration::mul_f64` panics when the product does not fit, and a flow
/// may ask for `multiplier: 1e300`).
fn grown(delay: std::time::Duration, multiplier: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(delay.as_secs_f64() * multiplier)
        .map_or(MAX_RETRY_DELAY, |next| next.min(MAX_RETRY_DELAY))
}
use crate::model::{Action, FileType, ParallelMode, State, StateKind, Workflow};

/// Where a call is made: the state, the step of its run and the branch (see
/// [`FunctionCall::key`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct CallSite<'a> {
    pub state: &'a str,
    pub step: u64,
    pub branch: usize,
    /// The call of an `async` action: nobody waits for it.
    pub detached: bool,
}

impl<'a> CallSite<'a> {
    pub fn new(state: &'a str, step: u64) -> CallSite<'a> {
        CallSite {
            state,
            step,
            branch: 0,
            detached: false,
        }
    }

    /// The site of an `async` action's call.
    pub fn detached(self) -> CallSite<'a> {
        CallSite {
            detached: true,
            ..self
        }
    }

    fn branch(self, branch: usize) -> CallSite<'a> {
        CallSite { branch, ..self }
    }
}

impl Engine {
    /// Calls `action` with input built from `data`, retrying as its `retries` say.
    pub(super) async fn call_action(
        &self,
        inst: &InstanceRef,
        flow: &Workflow,
        site: CallSite<'_>,
        action: &Action,
        data: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, FlowError> {
        let function = flow.function(&action.function).ok_or_else(|| {
            FlowError::internal(format!("function '{}' is not defined", action.function))
        })?;
        let mut attempt = 0u32;
        let mut delay = action
            .retries
            .as_ref()
            .map(|r| r.delay.min(MAX_RETRY_DELAY))
            .unwrap_or_default();
        loop {
            attempt += 1;
            let (input, secret_values) = self.action_input(inst, action, data, cancel).await?;
            let files = self.action_files(inst, action).await?;
            let call = FunctionCall {
                function,
                input,
                files,
                secret_values: secret_values.clone(),
                state: site.state,
                attempt,
                step: site.step,
                branch: site.branch,
                detached: site.detached,
                cancel: cancel.clone(),
            };
            let error = match self.effects.call(inst, call).await {
                Ok(output) => return Ok(output),
                Err(e) => e.masked(&secret_values),
            };
            let Some(retries) = &action.retries else {
                return Err(error);
            };
            if !error.catchable || !retries.codes.iter().any(|c| c.matches(&error.code)) {
                return Err(error);
            }
            if attempt > retries.max_attempts {
                return Err(FlowError::catchable(
                    codes::RETRIES_EXCEEDED,
                    format!(
                        "maximum retries exceeded: function '{}' failed {attempt} times, last \
                         with {}: {}",
                        action.function, error.code, error.message
                    ),
                ));
            }
            self.effects
                .log(
                    inst,
                    format!(
                        "state '{}': {} failed with {}, retry {attempt} of {} in {:?}",
                        site.state, action.function, error.code, retries.max_attempts, delay
                    ),
                )
                .await;
            tokio::select! {
                _ = self.effects.sleep(delay) => {}
                _ = cancel.cancelled() => return Err(error),
            }
            delay = grown(delay, retries.multiplier);
        }
    }

    /// The call's input: the action's `input` template (the whole data without one), rendered
    /// against the data plus `.secrets`; that enriched copy is dropped right after.
    async fn action_input(
        &self,
        inst: &InstanceRef,
        action: &Action,
        data: &Value,
        cancel: &CancellationToken,
    ) -> Result<(Value, Vec<String>), FlowError> {
        if action.secrets.is_empty() {
            let input = match &action.input {
                Some(template) => self.render(template, data, cancel).await?,
                None => data.clone(),
            };
            return Ok((input, Vec::new()));
        }
        let secrets = self.effects.secrets(inst, &action.secrets).await?;
        let values: Vec<String> = secrets.iter().map(|(_, v)| v.clone()).collect();
        let mut scope = match data {
            Value::Object(map) => map.clone(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("value".to_string(), other.clone());
                map
            }
        };
        let secret_map: serde_json::Map<String, Value> = secrets
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        scope.insert("secrets".to_string(), Value::Object(secret_map));
        let scope = Value::Object(scope);
        let input = match &action.input {
            Some(template) => self
                .render(template, &scope, cancel)
                .await
                .map_err(|e| e.masked(&values))?,
            None => data.clone(),
        };
        drop(scope);
        Ok((input, values))
    }

    /// The variables the action's `files` name, with the files' names and types.
    async fn action_files(
        &self,
        inst: &InstanceRef,
        action: &Action,
    ) -> Result<Vec<FileOfCall>, FlowError> {
        let mut files = Vec::with_capacity(action.files.len());
        for file in &action.files {
            // Validation refuses unknown types; a flow stored before that rule still fails
            // clearly.
            let file_type = FileType::parse(file.file_type.as_deref()).ok_or_else(|| {
                FlowError::catchable(
                    faasbox_proto::CODE_CALL_FILES,
                    format!(
                        "file '{}' has an unknown type; use one of {}",
                        file.name(),
                        FileType::NAMES
                    ),
                )
            })?;
            files.push(FileOfCall {
                name: file.name().to_string(),
                file_type,
                value: self.effects.get_var(inst, file.scope, &file.key).await?,
            });
        }
        Ok(files)
    }

    /// Runs the action once per item of `items`, at most `foreach_concurrency` at once; the
    /// results in the items' order.
    pub(super) async fn foreach(
        &self,
        inst: &InstanceRef,
        flow: &Workflow,
        site: CallSite<'_>,
        action: &Action,
        items: Vec<Value>,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, FlowError> {
        futures_util::stream::iter(items.into_iter().enumerate())
            .map(|(i, item)| async move {
                self.call_action(inst, flow, site.branch(i), action, &item, cancel)
                    .await
            })
            .buffered(self.foreach_concurrency)
            .try_collect()
            .await
    }

    /// Runs all actions at once: `and` waits for all (the first failure fails the state),
    /// `or` for the first success (the state fails only if all fail). Calls still running
    /// when the state ends are cancelled.
    pub(super) async fn parallel(
        &self,
        inst: &InstanceRef,
        flow: &Arc<Workflow>,
        state: &State,
        step: u64,
        data: &Value,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, FlowError> {
        let StateKind::Parallel { actions, mode } = &state.kind else {
            return Ok(Vec::new());
        };
        let site = CallSite::new(&state.id, step);
        let calls = actions.iter().enumerate().map(|(i, action)| {
            Box::pin(async move {
                self.call_action(inst, flow, site.branch(i), action, data, cancel)
                    .await
                    .map(|v| (i, v))
            })
        });
        match mode {
            ParallelMode::And => {
                let results = futures_util::future::try_join_all(calls).await?;
                Ok(results.into_iter().map(|(_, v)| v).collect())
            }
            ParallelMode::Or => match futures_util::future::select_ok(calls).await {
                Ok(((index, value), _rest)) => {
                    let mut out = vec![Value::Null; actions.len()];
                    out[index] = value;
                    Ok(out)
                }
                // The last failure: a crash or cancel ends the instance as it is.
                Err(e) if !e.catchable => Err(e),
                Err(e) => Err(FlowError::catchable(
                    codes::PARALLEL_ALL_FAILED,
                    format!(
                        "all branches failed (state '{}'; the last with {}: {})",
                        state.id, e.code, e.message
                    ),
                )),
            },
        }
    }
}
