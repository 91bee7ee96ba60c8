//! The calls in flight: their log collection and their cancellation.
//!
//! [`Calls::begin`] registers a call and returns a [`CallGuard`]; the guard ends the call's log
//! collection when the call finishes normally ([`CallGuard::finish`]) or when its request is
//! dropped (the platform went away), so a dead call never keeps collecting lines.
//!
//! A cancel has two steps: [`Calls::start_cancel`] marks the call (from then on its outcome is
//! "cancelled", whatever the function answers) while the function is told; [`Calls::abort`] then
//! makes the contract drop the call. A contract that runs a process per call only hands over
//! that process's last output once the process is gone, so its cancel report is taken with
//! [`Calls::abort_for_report`]: the lines the ended call collected, all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use faasbox_proto::LogLine;
use tokio::sync::{oneshot, watch};

use crate::idle::Signals;
use crate::logs::LogHub;

/// The longest action id accepted.
pub const MAX_ACTION_ID_LEN: usize = 128;

/// Whether `aid` is acceptable: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`, not `.` or `..`
/// (it names the call's temp dir and travels in HTTP headers).
pub fn valid_action_id(aid: &str) -> bool {
    !aid.is_empty()
        && aid.len() <= MAX_ACTION_ID_LEN
        && aid != "."
        && aid != ".."
        && aid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Where a call is in being cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CancelState {
    Running,
    /// Its outcome will be "cancelled"; the function is being told.
    Cancelling,
    /// The contract should drop the call now.
    Aborted,
}

type CancelMap = Arc<Mutex<HashMap<String, CallEntry>>>;

/// A call in flight, as its cancel sees it.
#[derive(Debug)]
struct CallEntry {
    state: watch::Sender<CancelState>,
    /// A cancel waiting for the call's lines once it has ended.
    report: Option<oneshot::Sender<Vec<LogLine>>>,
}

/// A call's view of its cancellation.
#[derive(Debug, Clone)]
pub struct Cancelled(watch::Receiver<CancelState>);

impl Cancelled {
    /// A call that can never be cancelled (OpenWhisk's own `/run`, which has no action id).
    pub fn never() -> Cancelled {
        let (_tx, rx) = watch::channel(CancelState::Running);
        Cancelled(rx)
    }

    /// Resolves when the call is to be dropped (never, if it never is).
    pub async fn aborted(&mut self) {
        if self
            .0
            .wait_for(|s| *s == CancelState::Aborted)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }

    /// Whether a cancel has started: the call's outcome is "cancelled".
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow() >= CancelState::Cancelling
    }
}

/// Registry of the calls in flight.
#[derive(Debug)]
pub struct Calls {
    logs: Arc<LogHub>,
    cancels: CancelMap,
    /// Told when the last call in flight ends (the agent is idle).
    ended: Arc<Signals>,
}

impl Calls {
    pub fn new(logs: Arc<LogHub>) -> Self {
        Self {
            logs,
            cancels: Arc::default(),
            ended: Arc::default(),
        }
    }

    /// What is told each time the last call in flight ends (and each time a platform
    /// connection closes).
    pub fn idle_signals(&self) -> Arc<Signals> {
        Arc::clone(&self.ended)
    }

    fn cancels(&self) -> MutexGuard<'_, HashMap<String, CallEntry>> {
        lock(&self.cancels)
    }

    /// Registers call `aid`; `None` when a call with that id is already in flight.
    pub fn begin(&self, aid: &str) -> Option<(CallGuard, Cancelled)> {
        let mut cancels = self.cancels();
        if cancels.contains_key(aid) || !self.logs.begin_call(aid) {
            return None;
        }
        let (tx, rx) = watch::channel(CancelState::Running);
        cancels.insert(
            aid.to_owned(),
            CallEntry {
                state: tx,
                report: None,
            },
        );
        let guard = CallGuard {
            aid: aid.to_owned(),
            logs: Arc::clone(&self.logs),
            cancels: Arc::clone(&self.cancels),
            ended: Arc::clone(&self.ended),
            done: false,
        };
        Some((guard, Cancelled(rx)))
    }

    /// Whether call `aid` is in flight.
    #[cfg(test)]
    pub fn in_flight(&self, aid: &str) -> bool {
        self.cancels().contains_key(aid)
    }

    /// Marks call `aid` cancelled; `None` when it is not in flight, `Some(true)` for the first
    /// cancel of the call.
    pub fn start_cancel(&self, aid: &str) -> Option<bool> {
        let cancels = self.cancels();
        let tx = &cancels.get(aid)?.state;
        let first = *tx.borrow() == CancelState::Running;
        if first {
            tx.send_replace(CancelState::Cancelling);
        }
        Some(first)
    }

    /// Makes the contract drop call `aid` (marking it cancelled, if it was not yet).
    pub fn abort(&self, aid: &str) {
        if let Some(entry) = self.cancels().get(aid) {
            entry.state.send_replace(CancelState::Aborted);
        }
    }

    /// [`Calls::abort`], and a receiver of all the call's lines once it has ended; `None` when
    /// it is not in flight.
    pub fn abort_for_report(&self, aid: &str) -> Option<oneshot::Receiver<Vec<LogLine>>> {
        let mut cancels = self.cancels();
        let entry = cancels.get_mut(aid)?;
        let (tx, rx) = oneshot::channel();
        entry.report = Some(tx);
        entry.state.send_replace(CancelState::Aborted);
        Some(rx)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One call in flight; ends it when finished or dropped.
#[derive(Debug)]
pub struct CallGuard {
    aid: String,
    logs: Arc<LogHub>,
    cancels: CancelMap,
    ended: Arc<Signals>,
    done: bool,
}

impl CallGuard {
    /// Ends the call and returns its log lines.
    pub fn finish(mut self) -> Vec<LogLine> {
        self.done = true;
        self.end()
    }

    fn end(&self) -> Vec<LogLine> {
        // Remove the cancel entry first: once the logs end, the id may be reused.
        let entry = {
            let mut cancels = lock(&self.cancels);
            let entry = cancels.remove(&self.aid);
            if cancels.is_empty() {
                self.ended.last_call_ended();
            }
            entry
        };
        let logs = self.logs.end_call(&self.aid);
        if let Some(CallEntry {
            report: Some(report),
            ..
        }) = entry
        {
            let _ = report.send(logs.clone());
        }
        logs
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.done {
            self.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_proto::LogStream;

    #[test]
    fn action_ids() {
        assert!(valid_action_id("0b8c6f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
        assert!(valid_action_id("echo_1.2:x"));
        for bad in ["", ".", "..", "a/b", "a b", "a\nb", "é", &"x".repeat(129)] {
            assert!(!valid_action_id(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn begin_cancel_finish() {
        let logs = Arc::new(LogHub::new());
        let calls = Calls::new(Arc::clone(&logs));
        let (guard, mut cancelled) = calls.begin("a").unwrap();
        assert!(calls.begin("a").is_none());
        assert!(calls.in_flight("a"));
        logs.call_line(Some("a"), LogStream::Function, "hi".into());
        assert!(!cancelled.is_cancelled());
        assert_eq!(calls.start_cancel("a"), Some(true));
        assert_eq!(calls.start_cancel("a"), Some(false));
        assert_eq!(calls.start_cancel("b"), None);
        assert!(cancelled.is_cancelled());
        let aborted =
            tokio::time::timeout(std::time::Duration::from_millis(20), cancelled.aborted());
        assert!(aborted.await.is_err(), "not aborted yet");
        calls.abort("a");
        cancelled.aborted().await;
        assert_eq!(guard.finish()[0].line, "hi");
        assert!(!logs.in_flight("a"));
        assert!(!calls.in_flight("a"));
    }

    /// A cancel that waits for the report gets the lines the call collected up to its end,
    /// including those read after the abort (a per-call process's last output).
    #[tokio::test]
    async fn an_abort_for_report_gets_every_line_of_the_ended_call() {
        let logs = Arc::new(LogHub::new());
        let calls = Calls::new(Arc::clone(&logs));
        let (guard, mut cancelled) = calls.begin("a").unwrap();
        logs.call_line(Some("a"), LogStream::Stdout, "before".into());
        let report = calls.abort_for_report("a").expect("in flight");
        cancelled.aborted().await;
        logs.call_line(Some("a"), LogStream::Stdout, "read after the abort".into());
        let outcome_lines = guard.finish();
        let report_lines = report.await.expect("sent when the call ended");
        assert_eq!(report_lines, outcome_lines);
        let lines: Vec<&str> = report_lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(lines, ["before", "read after the abort"]);
        assert!(calls.abort_for_report("a").is_none(), "ended");
    }

    #[test]
    fn dropped_guard_ends_the_call() {
        let logs = Arc::new(LogHub::new());
        let calls = Calls::new(Arc::clone(&logs));
        let (guard, _cancelled) = calls.begin("a").unwrap();
        drop(guard);
        assert!(!logs.in_flight("a"));
        assert!(!calls.in_flight("a"));
        assert!(calls.begin("a").is_some());
    }
}
