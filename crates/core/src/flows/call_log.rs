//! What an instance's actions called, kept with the instance: each call is linked (its
//! invocation's id, or its subflow instance's id) with the state that made it as it starts
//! (a subflow's before it starts; an invocation's while it runs, stored before its lines and
//! before the state moves on), and the lines a function logged (its stdout and stderr, what
//! it sent to the log endpoint, direktiv-cmd's command output) are copied into the
//! instance's log attributed to the state and the invocation, as Direktiv's instance log
//! holds what its actions logged. The lines arrive when the call ends; `faasbox logs
//! INVOCATION` has the whole call.

use std::sync::{Arc, Mutex};

use faasbox_flow::engine::{FunctionCall, InstanceRef};
use faasbox_proto::LogLine;
use faasbox_store::{InstanceCallRecord, NewInstanceLog, ProgressWrite};

use crate::clock;
use crate::state::AppState;

/// The most lines of one call copied into the instance's log; the rest stay in the
/// invocation's own log.
pub const MAX_LINES_PER_CALL: usize = 1000;
/// The longest line copied; longer ones are cut.
const MAX_LINE: usize = 16 * 1024;

/// What a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A function's invocation (`faasbox logs ID`).
    Invocation,
    /// A subflow's instance (`faasbox flow instance ID`).
    Subflow,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Invocation => "invocation",
            Kind::Subflow => "instance",
        }
    }
}

/// An instance run's progress not written yet (see `super::effects`): a call's link takes it
/// into its own write.
pub type Held = Arc<Mutex<Vec<ProgressWrite>>>;

/// Who makes a call: the instance, its state and the flow's function id.
pub struct Link {
    state: Arc<AppState>,
    instance: String,
    state_id: String,
    function: String,
    held: Option<Held>,
}

impl Link {
    /// The link of `call`, made by `instance` in the call's state.
    pub fn new(state: &Arc<AppState>, instance: &InstanceRef, call: &FunctionCall<'_>) -> Link {
        Link {
            state: state.clone(),
            instance: instance.id.clone(),
            state_id: call.state.to_string(),
            function: call.function.id.clone(),
            held: None,
        }
    }

    /// The same link, writing the run's `held` progress (the state's start, the lines before
    /// the call) with the call's record, before it.
    pub fn with_held(mut self, held: Held) -> Link {
        self.held = Some(held);
        self
    }

    /// Links call `id` from the instance and logs that the state made it.
    pub async fn started(self, id: &str, kind: Kind) {
        self.start(id, kind).await;
    }

    /// [`Link::started`] with what it writes (its times included) taken now, when the call
    /// starts, and written by the returned future.
    pub fn start(self, id: &str, kind: Kind) -> impl std::future::Future<Output = ()> + Send {
        let message = match kind {
            Kind::Invocation => format!(
                "state '{}' calls function '{}': invocation {id}",
                self.state_id, self.function
            ),
            Kind::Subflow => format!(
                "state '{}' runs subflow '{}': instance {id}",
                self.state_id, self.function
            ),
        };
        let Link {
            state,
            instance,
            state_id,
            function,
            held,
        } = self;
        let mut writes = held
            .map(|h| std::mem::take(&mut *h.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default();
        writes.push(ProgressWrite::Call(InstanceCallRecord {
            id: id.to_string(),
            kind: kind.as_str().to_string(),
            state: state_id.clone(),
            function,
            started: clock::now_rfc3339(),
            status: None,
        }));
        writes.push(ProgressWrite::Log {
            ts_ms: clock::now_ms() as i64,
            message,
            invocation: (kind == Kind::Invocation).then(|| id.to_string()),
            state: Some(state_id),
        });
        // The call's record and its log line are one write, with what the run held.
        async move {
            if let Err(e) = state.store.record_progress(&instance, writes, None).await {
                tracing::error!("linking a call of instance {instance} failed: {e}");
            }
        }
    }
}

/// Copies the lines invocation `id` logged into the instance's log (at most
/// [`MAX_LINES_PER_CALL`], each cut to 16 KiB), attributed to state `state_id`.
pub async fn function_lines(
    state: &Arc<AppState>,
    instance: &InstanceRef,
    state_id: &str,
    id: &str,
    logs: &[LogLine],
) {
    if logs.is_empty() {
        return;
    }
    let mut lines: Vec<(i64, String)> = logs
        .iter()
        .take(MAX_LINES_PER_CALL)
        .map(|l| (l.ts_ms as i64, cut(&l.line)))
        .collect();
    if logs.len() > MAX_LINES_PER_CALL {
        let ts = lines.last().map_or(0, |(ts, _)| *ts);
        lines.push((
            ts,
            format!(
                "{} more lines of invocation {id} are not copied here; see them with \
                 `faasbox logs {id}`",
                logs.len() - MAX_LINES_PER_CALL
            ),
        ));
    }
    let rows: Vec<NewInstanceLog<'_>> = lines
        .iter()
        .map(|(ts_ms, message)| NewInstanceLog {
            ts_ms: *ts_ms,
            message,
            state: Some(state_id),
            invocation: Some(id),
        })
        .collect();
    let stored = state.store.append_instance_logs(&instance.id, &rows).await;
    if let Err(e) = stored {
        tracing::error!(
            "copying a call's log into instance {} failed: {e}",
            instance.id
        );
    }
}

/// `line` cut to [`MAX_LINE`] bytes (at a character boundary).
fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE {
        return line.to_string();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} of {} bytes shown)", &line[..end], end, line.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_LINE);
        let shown = cut(&long);
        assert!(shown.len() < MAX_LINE + 64);
        assert!(shown.ends_with(&format!("of {} bytes shown)", long.len())));
    }
}
