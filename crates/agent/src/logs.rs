//! Attribution of log lines to calls.
//!
//! A line from the function process's stdout or stderr belongs to every call in flight when the
//! agent reads it; a line sent to the log endpoint belongs to the call it names. A line that
//! belongs to no call in flight is kept in a bounded instance buffer and attached to the next call
//! that begins (and shown in the ready report).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use faasbox_proto::{LogLine, LogStream};

/// Lines kept while no call is in flight (the oldest are dropped first).
pub const MAX_BUFFERED_LINES: usize = 1000;
/// Lines kept per call (later ones are counted and dropped).
pub const MAX_CALL_LINES: usize = 10_000;

/// All log lines of the instance, sorted by call.
#[derive(Debug, Default)]
pub struct LogHub {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    calls: HashMap<String, CallLog>,
    buffer: VecDeque<LogLine>,
    buffer_dropped: u64,
}

#[derive(Debug, Default)]
struct CallLog {
    lines: Vec<LogLine>,
    dropped: u64,
}

impl CallLog {
    fn push(&mut self, line: LogLine) {
        if self.lines.len() < MAX_CALL_LINES {
            self.lines.push(line);
        } else {
            self.dropped += 1;
        }
    }

    fn snapshot(&self) -> Vec<LogLine> {
        let mut lines = self.lines.clone();
        if self.dropped > 0 {
            lines.push(agent_note(format!(
                "{} more log lines of this call were dropped (limit {MAX_CALL_LINES})",
                self.dropped
            )));
        }
        lines
    }
}

impl Inner {
    fn buffer_push(&mut self, line: LogLine) {
        if self.buffer.len() == MAX_BUFFERED_LINES {
            self.buffer.pop_front();
            self.buffer_dropped += 1;
        }
        self.buffer.push_back(line);
    }

    fn buffer_snapshot(&self) -> Vec<LogLine> {
        let mut lines = Vec::with_capacity(self.buffer.len() + 1);
        if self.buffer_dropped > 0 {
            lines.push(agent_note(format!(
                "{} earlier log lines were dropped (only the last {MAX_BUFFERED_LINES} are kept between calls)",
                self.buffer_dropped
            )));
        }
        lines.extend(self.buffer.iter().cloned());
        lines
    }
}

impl LogHub {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data behind (plain pushes), so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts collecting lines for `aid`, moving the instance buffer into it. Returns false when
    /// a call with that id is already in flight.
    pub fn begin_call(&self, aid: &str) -> bool {
        let mut inner = self.lock();
        if inner.calls.contains_key(aid) {
            return false;
        }
        let mut call = CallLog::default();
        for line in inner.buffer_snapshot() {
            call.push(line);
        }
        inner.buffer.clear();
        inner.buffer_dropped = 0;
        inner.calls.insert(aid.to_owned(), call);
        true
    }

    /// Stops collecting for `aid` and returns its lines (empty for an unknown id).
    pub fn end_call(&self, aid: &str) -> Vec<LogLine> {
        self.lock()
            .calls
            .remove(aid)
            .map(|call| call.snapshot())
            .unwrap_or_default()
    }

    /// The lines of a call in flight so far.
    pub fn call_logs(&self, aid: &str) -> Option<Vec<LogLine>> {
        self.lock().calls.get(aid).map(CallLog::snapshot)
    }

    /// The lines of call `aid` in flight after its first `after`, at most `max` of them, and
    /// how many it has once those are read; `None` when no such call is in flight. The lines
    /// are numbered as [`LogHub::end_call`] returns them (a note about dropped lines, which
    /// only the end has, comes after all of them).
    pub fn call_lines_after(
        &self,
        aid: &str,
        after: usize,
        max: usize,
    ) -> Option<(Vec<LogLine>, usize)> {
        let inner = self.lock();
        let lines = &inner.calls.get(aid)?.lines;
        let start = after.min(lines.len());
        let end = start.saturating_add(max).min(lines.len());
        Some((lines[start..end].to_vec(), end))
    }

    /// Whether a call with this id is in flight.
    #[cfg(test)]
    pub fn in_flight(&self, aid: &str) -> bool {
        self.lock().calls.contains_key(aid)
    }

    /// A copy of the instance buffer (it stays buffered for the next call).
    pub fn buffered(&self) -> Vec<LogLine> {
        self.lock().buffer_snapshot()
    }

    /// A line of the function process (or the agent): every call in flight gets it, or the
    /// buffer when there is none.
    pub fn instance_line(&self, stream: LogStream, line: String) {
        let line = LogLine {
            ts_ms: now_ms(),
            stream,
            line,
        };
        let mut inner = self.lock();
        if inner.calls.is_empty() {
            inner.buffer_push(line);
            return;
        }
        let count = inner.calls.len();
        for (i, call) in inner.calls.values_mut().enumerate() {
            if i + 1 == count {
                call.push(line);
                break;
            }
            call.push(line.clone());
        }
    }

    /// A line the agent writes about the instance (e.g. the function process exited).
    pub fn agent_line(&self, line: String) {
        self.instance_line(LogStream::Agent, line);
    }

    /// A line for one call; an unknown (or finished) call's line goes to the buffer.
    pub fn call_line(&self, aid: Option<&str>, stream: LogStream, line: String) {
        let line = LogLine {
            ts_ms: now_ms(),
            stream,
            line,
        };
        let mut inner = self.lock();
        match aid.and_then(|aid| inner.calls.get_mut(aid)) {
            Some(call) => call.push(line),
            None => inner.buffer_push(line),
        }
    }
}

fn agent_note(line: String) -> LogLine {
    LogLine {
        ts_ms: now_ms(),
        stream: LogStream::Agent,
        line,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.line.as_str()).collect()
    }

    #[test]
    fn lines_without_calls_go_to_the_next_call() {
        let hub = LogHub::new();
        hub.instance_line(LogStream::Stdout, "boot".into());
        hub.call_line(Some("nobody"), LogStream::Function, "stray".into());
        assert_eq!(texts(&hub.buffered()), ["boot", "stray"]);
        assert!(hub.begin_call("a"));
        assert!(hub.buffered().is_empty());
        hub.instance_line(LogStream::Stderr, "during".into());
        assert_eq!(texts(&hub.end_call("a")), ["boot", "stray", "during"]);
    }

    #[test]
    fn process_lines_go_to_all_calls_function_lines_to_one() {
        let hub = LogHub::new();
        assert!(hub.begin_call("a"));
        assert!(hub.begin_call("b"));
        assert!(!hub.begin_call("a"));
        hub.instance_line(LogStream::Stdout, "both".into());
        hub.call_line(Some("a"), LogStream::Function, "only a".into());
        hub.call_line(Some("b"), LogStream::Function, "only b".into());
        assert_eq!(texts(&hub.call_logs("a").unwrap()), ["both", "only a"]);
        assert_eq!(texts(&hub.end_call("b")), ["both", "only b"]);
        hub.call_line(Some("b"), LogStream::Function, "late b".into());
        assert_eq!(texts(&hub.end_call("a")), ["both", "only a"]);
        assert_eq!(texts(&hub.buffered()), ["late b"]);
        assert!(hub.end_call("a").is_empty());
    }

    #[test]
    fn buffer_is_bounded_and_says_so() {
        let hub = LogHub::new();
        for i in 0..MAX_BUFFERED_LINES + 5 {
            hub.instance_line(LogStream::Stdout, i.to_string());
        }
        let lines = hub.buffered();
        assert_eq!(lines.len(), MAX_BUFFERED_LINES + 1);
        assert_eq!(lines[0].stream, LogStream::Agent);
        assert!(lines[0]
            .line
            .starts_with("5 earlier log lines were dropped"));
        assert_eq!(lines[1].line, "5");
    }

    #[test]
    fn a_running_call_s_lines_are_read_in_bounded_steps() {
        let hub = LogHub::new();
        assert!(hub.call_lines_after("a", 0, 10).is_none());
        hub.instance_line(LogStream::Stdout, "boot".into());
        assert!(hub.begin_call("a"));
        for i in 0..5 {
            hub.call_line(Some("a"), LogStream::Function, i.to_string());
        }
        let (lines, next) = hub.call_lines_after("a", 0, 3).unwrap();
        assert_eq!((texts(&lines), next), (vec!["boot", "0", "1"], 3));
        let (lines, next) = hub.call_lines_after("a", next, 3).unwrap();
        assert_eq!((texts(&lines), next), (vec!["2", "3", "4"], 6));
        let (lines, next) = hub.call_lines_after("a", 99, 3).unwrap();
        assert_eq!((lines.len(), next), (0, 6));
        // The end holds the same lines in the same places.
        assert_eq!(texts(&hub.end_call("a")[3..]), ["2", "3", "4"]);
        assert!(hub.call_lines_after("a", 0, 3).is_none());
    }

    #[test]
    fn call_logs_are_bounded() {
        let hub = LogHub::new();
        assert!(hub.begin_call("a"));
        for _ in 0..MAX_CALL_LINES + 3 {
            hub.call_line(Some("a"), LogStream::Function, "x".into());
        }
        let lines = hub.end_call("a");
        assert_eq!(lines.len(), MAX_CALL_LINES + 1);
        assert!(lines[MAX_CALL_LINES].line.starts_with("3 more log lines"));
    }
}
