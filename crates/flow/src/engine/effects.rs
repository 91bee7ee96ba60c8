//! What the engine needs from the world, as traits: calling functions (and subflows), secrets,
//! variables, persistence, logs, events and time. The server implements them over its store
//! and invoker; tests implement them in memory.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Checkpoint, FlowError};
use crate::model::{FileType, FunctionDef, VarScope};

/// Which instance an effect is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRef {
    /// The instance's id.
    pub id: String,
    /// Its namespace.
    pub namespace: String,
    /// The flow's path in its namespace.
    pub flow: String,
}

/// One function call an action makes.
pub struct FunctionCall<'a> {
    /// What is called.
    pub function: &'a FunctionDef,
    /// The call's input, rendered (secrets included).
    pub input: Value,
    /// Variables placed as files in the call's temp dir.
    pub files: Vec<FileOfCall>,
    /// Secret values the call's input may hold: masked in whatever is stored about the call.
    pub secret_values: Vec<String>,
    /// The state's id and the call's attempt (from 1), for logs and call ids.
    pub state: &'a str,
    /// See `state`.
    pub attempt: u32,
    /// The step of the state's run (`Checkpoint::step`) and the call's branch (the item of a
    /// `foreach`, the action of a `parallel`; 0 otherwise). See [`FunctionCall::key`].
    pub step: u64,
    /// See `step`.
    pub branch: usize,
    /// The call of an `async` action: nobody waits for its result, so a subflow it starts is
    /// an instance of its own (resumed on its own after a restart), not a child.
    pub detached: bool,
    /// Cancelled when the call must stop (instance cancel, timeout): the callee's function
    /// must get its cancel and the call return soon after.
    pub cancel: CancellationToken,
}

impl FunctionCall<'_> {
    /// Names the call within its instance: a resumed instance that makes the same call again
    /// (the state that was running when the server stopped) gives it the same key, so an
    /// effect that must not happen twice (a subflow) can find what the first one started.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.step, self.state, self.branch, self.attempt
        )
    }
}

/// A variable an action places as a file in the call's temp dir.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOfCall {
    /// The file's name (a relative path, checked when the flow was validated).
    pub name: String,
    /// How the value becomes the file.
    pub file_type: FileType,
    /// The variable's value; `None` when it does not exist.
    pub value: Option<Value>,
}

/// Everything an instance does outside the engine: calls, secrets, variables, checkpoints,
/// logs, events and time. The server implements it; the engine's tests fake it.
#[async_trait]
pub trait Effects: Send + Sync + 'static {
    /// Calls a function (of any of the four kinds; `subflow` runs the child flow to its end
    /// and gives its output). A function's error with a code is catchable, without one a crash.
    async fn call(
        &self,
        instance: &InstanceRef,
        call: FunctionCall<'_>,
    ) -> Result<Value, FlowError>;

    /// The values of the namespace's secrets `names`; a missing one is an error naming it.
    async fn secrets(
        &self,
        instance: &InstanceRef,
        names: &[String],
    ) -> Result<Vec<(String, String)>, FlowError>;

    /// A variable's value; `None` when it does not exist.
    async fn get_var(
        &self,
        instance: &InstanceRef,
        scope: VarScope,
        key: &str,
    ) -> Result<Option<Value>, FlowError>;

    /// Sets a variable; `None` deletes it.
    async fn set_var(
        &self,
        instance: &InstanceRef,
        scope: VarScope,
        key: &str,
        value: Option<Value>,
    ) -> Result<(), FlowError>;

    /// Persists the instance's progress. The engine calls it before a state starts waiting
    /// and after every state that finished, so a restarted server resumes where it was.
    async fn save(&self, instance: &InstanceRef, checkpoint: &Checkpoint) -> Result<(), FlowError>;

    /// Appends a line to the instance's log.
    async fn log(&self, instance: &InstanceRef, message: String);

    /// Sets the instance's metadata (a state's `metadata`), shown with the instance.
    async fn set_metadata(&self, instance: &InstanceRef, metadata: Value) -> Result<(), FlowError>;

    /// Emits a CloudEvent (`generateEvent`), at once or `delay` from now. A delayed event must
    /// be sent even if the process dies in between; the instance does not wait for it.
    async fn generate_event(
        &self,
        instance: &InstanceRef,
        event: Value,
        delay: Option<Duration>,
    ) -> Result<(), FlowError> {
        let _ = (instance, event, delay);
        Err(FlowError::catchable(
            "direktiv.events.unavailable",
            "generating events is not available on this server",
        ))
    }

    /// A mark of the events accepted so far: a state that starts waiting keeps it in its
    /// [`super::Wait`], and only events accepted after it count for that wait. `None` where
    /// events are not counted that way.
    async fn event_watermark(&self) -> Result<Option<i64>, FlowError> {
        Ok(None)
    }

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// Waits `duration` (`delay` states, retry delays); a test's clock may skip it.
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}
