//! An instance's persisted progress: the next state to run, the instance data, and what a
//! state in progress needs to resume (a delay's end, an event wait).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FlowError;

/// What is saved after each state: enough to continue the instance after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The state to run next; `None` once the flow has ended.
    pub state: Option<String>,
    /// The instance data (a JSON object).
    pub data: Value,
    /// How many states have finished.
    pub step: u64,
    /// When the instance started (ms since the epoch), for the flow-wide timeouts.
    pub started_ms: u64,
    /// A `delay` state in progress ends at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at_ms: Option<u64>,
    /// The state waits for events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    /// An `error` state's error, raised when the flow ends (after its cleanup transition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_error: Option<FlowError>,
}

impl Checkpoint {
    /// The checkpoint of a new instance. Input that is not an object is put at `.input`.
    pub fn start(first_state: Option<&str>, input: Value, now_ms: u64) -> Checkpoint {
        let data = match input {
            Value::Object(_) => input,
            Value::Null => Value::Object(Default::default()),
            other => serde_json::json!({ "input": other }),
        };
        Checkpoint {
            state: first_state.map(str::to_string),
            data,
            step: 0,
            started_ms: now_ms,
            wake_at_ms: None,
            wait: None,
            pending_error: None,
        }
    }
}

/// What a waiting state waits for. Its event filters' context values are already evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    /// Which of the events end the wait.
    pub mode: WaitMode,
    /// The events waited for, in the state's order.
    pub events: Vec<WaitEvent>,
    /// When the wait times out (ms since the epoch): the state fails with a soft timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// The event watermark taken when the state started (`Effects::event_watermark`): only
    /// events accepted after it count, also for a wait restored after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
}

/// Which of a wait's events end it, after the state type that waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaitMode {
    /// `consumeEvent`: the one event.
    Consume,
    /// `eventsAnd`: every event.
    And,
    /// `eventsXor`: the first of the events.
    Xor,
}

/// One event a wait is for: a filter with its context values evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitEvent {
    /// The event `type`, matched exactly.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Context attribute patterns, each of which must match.
    #[serde(default)]
    pub context: serde_json::Map<String, Value>,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitResolution {
    /// The events received, each with the index of the wait's event it matched.
    Events(Vec<(usize, Value)>),
    /// The deadline passed.
    TimedOut,
}
