//! Dispatch's JSON shapes (`swagger/models.json` of Dispatch v0.1.24), as faasbox answers and
//! reads them. Times are Unix seconds, `reason` a list of sentences, as in Dispatch.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use faasbox_proto::{LogLine, LogStream};

/// A run's error: Dispatch's `InvocationError`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct InvocationError {
    /// `InputError`, `FunctionError` or `SystemError`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub stacktrace: Vec<String>,
}

/// The input error class, and the function error class.
pub(crate) const INPUT_ERROR: &str = faasbox_proto::CODE_INPUT_ERROR;
pub(crate) const FUNCTION_ERROR: &str = faasbox_proto::CODE_FUNCTION_ERROR;
/// Anything the platform failed at.
pub(crate) const SYSTEM_ERROR: &str = "SystemError";

impl InvocationError {
    /// The error of a failed call: its class from the failure's code (the code contract's
    /// `InputError`/`FunctionError`; a request the caller got wrong is an InputError, a function
    /// that crashed or timed out a FunctionError, the rest a SystemError); the message's first
    /// line is the message, the lines after it (a handler's stack trace) the stacktrace.
    pub(crate) fn of(failure: &faasbox_core::failure::Failure) -> Self {
        use faasbox_core::failure::FailureKind as K;
        let kind = match (failure.code.as_str(), failure.kind) {
            (INPUT_ERROR, _) => INPUT_ERROR,
            (FUNCTION_ERROR, _) => FUNCTION_ERROR,
            (_, K::Invalid | K::TooLarge) => INPUT_ERROR,
            (_, K::FunctionFailed | K::FunctionTimeout) => FUNCTION_ERROR,
            _ => SYSTEM_ERROR,
        };
        let mut lines = failure.message.lines();
        let message = lines.next().unwrap_or_default().to_owned();
        InvocationError {
            kind: kind.to_owned(),
            message,
            stacktrace: lines.map(str::to_owned).collect(),
        }
    }
}

/// A run's logs, split by stream (lines the function sent to the log endpoint and the agent's
/// own count as stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Logs {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Logs {
    pub(crate) fn of(lines: &[LogLine]) -> Self {
        let mut logs = Logs::default();
        for line in lines {
            match line.stream {
                LogStream::Stderr => logs.stderr.push(line.line.clone()),
                LogStream::Stdout | LogStream::Function | LogStream::Agent => {
                    logs.stdout.push(line.line.clone())
                }
            }
        }
        logs
    }
}

/// Dispatch's `Run`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Run {
    /// The run's id: the faasbox invocation id (`faasbox invocation get`).
    pub name: String,
    pub function_name: String,
    pub function_id: String,
    pub blocking: bool,
    pub input: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<RawValue>>,
    pub logs: Logs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<InvocationError>,
    pub status: &'static str,
    pub reason: Vec<String>,
    pub secrets: Vec<String>,
    pub services: Vec<String>,
    pub tags: Vec<Tag>,
    pub executed_time: i64,
    pub finished_time: i64,
}

/// A run as a client sends it: only what faasbox reads of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunRequest {
    #[serde(default)]
    pub blocking: bool,
    #[serde(default)]
    pub input: Option<Box<RawValue>>,
    #[serde(default)]
    pub function_name: Option<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

/// Dispatch's `Tag`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// Status words of Dispatch's `Status`.
pub(crate) mod status {
    pub const READY: &str = "READY";
    pub const ERROR: &str = "ERROR";
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_core::failure::{Failure, FailureKind};

    #[test]
    fn a_handlers_error_keeps_its_class_and_its_stack_apart() {
        let failure = Failure::new(
            FailureKind::FunctionFailed,
            INPUT_ERROR,
            "ValueError: no name\nTraceback (most recent call last):\n  File \"h.py\", line 3",
        );
        let error = InvocationError::of(&failure);
        assert_eq!(error.kind, INPUT_ERROR);
        assert_eq!(error.message, "ValueError: no name");
        assert_eq!(error.stacktrace.len(), 2);
        let crashed = Failure::new(
            FailureKind::FunctionFailed,
            faasbox_core::failure::codes::FUNCTION_CRASHED,
            "the instance died",
        );
        assert_eq!(InvocationError::of(&crashed).kind, FUNCTION_ERROR);
        assert_eq!(
            InvocationError::of(&Failure::internal("disk")).kind,
            SYSTEM_ERROR
        );
        assert_eq!(
            InvocationError::of(&Failure::invalid("not JSON")).kind,
            INPUT_ERROR
        );
    }

    #[test]
    fn logs_split_by_stream() {
        let line = |stream, text: &str| LogLine {
            ts_ms: 0,
            stream,
            line: text.to_owned(),
        };
        let logs = Logs::of(&[
            line(LogStream::Stdout, "out"),
            line(LogStream::Stderr, "err"),
            line(LogStream::Function, "log"),
        ]);
        assert_eq!(logs.stdout, ["out", "log"]);
        assert_eq!(logs.stderr, ["err"]);
    }
}
