//! What a file-contract call produced, read from the data directory after the function exited.
//!
//! The outcome, first match wins:
//!
//! 1. the directory's filesystem is full: the catchable [`CODE_DISK_FULL`] (nothing the function
//!    wrote can be trusted to be complete, `error.json` included);
//! 2. `error.json` holds `{"errorCode", "errorMessage"}`: with a non-empty code, a catchable error
//!    with that code and message; with only a message, an uncatchable crash with it; with neither
//!    (or an empty file), no error. A file that is not such an object is a crash saying so;
//! 3. the process did not exit with status 0: the catchable [`CODE_CONTAINER_FAILED`] with the
//!    exit described (Direktiv's isolates looked only at the files; a failed process whose output
//!    would be silently returned hides errors, so faasbox treats it as the http contract treats a
//!    non-2xx answer without an error code);
//! 4. success: the output is `data.out` — verbatim when it is JSON, a base64 JSON string when it
//!    is not, `null` when it is absent or empty.
//!
//! `log.log` and `error.log` become log lines of the call (streams `function` and `stderr`),
//! whatever the outcome.

use std::path::Path;

use faasbox_proto::{LogStream, CODE_CONTAINER_FAILED, CODE_DISK_FULL};
use serde::Deserialize;
use serde_json::Value;

use super::data_dir::{self, Content, DATA_OUT, ERROR_JSON, ERROR_LOG, LOG_LOG};
use crate::contract::disk::{self, human_bytes};
use crate::contract::http::MAX_OUTPUT_BYTES;
use crate::contract::{output_json, CallResult};
use crate::lines::{char_boundary_before, lossy, split_all};
use crate::process::describe_exit;
use crate::reaper::Exit;

/// The largest `log.log` / `error.log` attached to a call.
const MAX_LOG_FILE_BYTES: usize = 16 * 1024 * 1024;
/// The largest `error.json` read.
const MAX_ERROR_FILE_BYTES: usize = 1024 * 1024;
/// How much of a malformed `error.json` the message quotes.
const QUOTE_BYTES: usize = 512;

/// A call's outcome and the lines of its log files.
#[derive(Debug)]
pub struct Collected {
    pub result: CallResult,
    pub lines: Vec<(LogStream, String)>,
}

/// Reads the outcome of a call whose process ended with `exit`.
pub fn collect(dir: &Path, exit: Exit, disk_limit_bytes: u64) -> Collected {
    let mut lines = Vec::new();
    log_file(dir, LOG_LOG, LogStream::Function, &mut lines);
    log_file(dir, ERROR_LOG, LogStream::Stderr, &mut lines);
    let result = outcome(dir, exit, disk_limit_bytes);
    Collected { result, lines }
}

fn outcome(dir: &Path, exit: Exit, disk_limit_bytes: u64) -> CallResult {
    if disk::is_full(dir) {
        return disk_full(dir, disk_limit_bytes);
    }
    if let Some(result) = error_file(dir) {
        return result;
    }
    if exit != Exit::Code(0) {
        return CallResult::error(CODE_CONTAINER_FAILED, describe_exit(exit));
    }
    match data_dir::read_file(dir, DATA_OUT, MAX_OUTPUT_BYTES) {
        Ok(Content::Absent) => CallResult::ok(output_json(b"")),
        Ok(Content::Bytes(bytes)) => CallResult::ok(output_json(&bytes)),
        Ok(Content::TooLarge) => CallResult::error(
            CODE_CONTAINER_FAILED,
            format!(
                "{DATA_OUT} is larger than {}",
                human_bytes(MAX_OUTPUT_BYTES as u64)
            ),
        ),
        Err(err) => CallResult::crash(format!("cannot read {DATA_OUT}: {err}")),
    }
}

/// The error of a call that filled its disk (the data directory is on it).
pub fn disk_full(dir: &Path, disk_limit_bytes: u64) -> CallResult {
    CallResult::error(
        CODE_DISK_FULL,
        format!(
            "the function filled its disk ({}), which holds its data directory {} and everything \
             else it writes; write less, or deploy it with a larger disk (--disk, `disk` in the spec)",
            disk::bound(disk_limit_bytes),
            dir.display()
        ),
    )
}

#[derive(Deserialize)]
struct ErrorFile {
    #[serde(rename = "errorCode")]
    code: Option<Value>,
    #[serde(rename = "errorMessage")]
    message: Option<Value>,
}

/// The outcome `error.json` asks for, if any.
fn error_file(dir: &Path) -> Option<CallResult> {
    let bytes = match data_dir::read_file(dir, ERROR_JSON, MAX_ERROR_FILE_BYTES) {
        Ok(Content::Absent) => return None,
        Ok(Content::Bytes(bytes)) => bytes,
        Ok(Content::TooLarge) => {
            return Some(CallResult::crash(format!(
                "the function wrote an {ERROR_JSON} larger than {}",
                human_bytes(MAX_ERROR_FILE_BYTES as u64)
            )))
        }
        Err(err) => {
            return Some(CallResult::crash(format!(
                "cannot read {ERROR_JSON}: {err}"
            )))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let parsed: ErrorFile = match serde_json::from_slice(&bytes) {
        Ok(parsed) => parsed,
        Err(_) => {
            let quoted = lossy(bytes[..char_boundary_before(&bytes, QUOTE_BYTES)].to_vec());
            return Some(CallResult::crash(format!(
                "the function wrote an {ERROR_JSON} that is not {{\"errorCode\", \"errorMessage\"}}: {}",
                quoted.trim()
            )));
        }
    };
    let code = text(parsed.code);
    let message = text(parsed.message);
    match (code.is_empty(), message.is_empty()) {
        (false, _) => Some(CallResult::error(code, message)),
        (true, false) => Some(CallResult::crash(message)),
        (true, true) => None,
    }
}

fn text(value: Option<Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.trim().to_owned(),
        Some(other) => other.to_string(),
    }
}

/// Appends the lines of a log file the function wrote.
fn log_file(dir: &Path, name: &str, stream: LogStream, lines: &mut Vec<(LogStream, String)>) {
    match data_dir::read_file(dir, name, MAX_LOG_FILE_BYTES) {
        Ok(Content::Absent) => {}
        Ok(Content::Bytes(bytes)) => {
            lines.extend(split_all(&bytes).into_iter().map(|line| (stream, line)));
        }
        Ok(Content::TooLarge) => lines.push((
            LogStream::Agent,
            format!(
                "{name} is larger than {} and was not attached",
                human_bytes(MAX_LOG_FILE_BYTES as u64)
            ),
        )),
        Err(err) => lines.push((LogStream::Agent, format!("cannot read {name}: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_proto::InvokeStatus;
    use std::fs;

    fn collect_with(files: &[(&str, &str)], exit: Exit) -> Collected {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            fs::write(dir.path().join(name), content).unwrap();
        }
        collect(dir.path(), exit, 0)
    }

    #[test]
    fn output_verbatim_base64_or_null() {
        let c = collect_with(&[("data.out", "{\"a\": \"ü\"}\n")], Exit::Code(0));
        assert_eq!(c.result.output.unwrap().get(), "{\"a\": \"ü\"}");
        let c = collect_with(&[("data.out", "plain")], Exit::Code(0));
        assert_eq!(c.result.output.unwrap().get(), "\"cGxhaW4=\"");
        let c = collect_with(&[], Exit::Code(0));
        assert_eq!(c.result.output.unwrap().get(), "null");
        let c = collect_with(&[("data.out", "")], Exit::Code(0));
        assert_eq!(c.result.output.unwrap().get(), "null");
    }

    #[test]
    fn error_json_wins_over_output_and_exit() {
        let c = collect_with(
            &[
                ("data.out", "{}"),
                (
                    "error.json",
                    r#"{"errorCode":"app.bad","errorMessage":"it broke"}"#,
                ),
            ],
            Exit::Code(1),
        );
        assert_eq!(c.result.status, InvokeStatus::Error);
        assert_eq!(c.result.code.as_deref(), Some("app.bad"));
        assert_eq!(c.result.message.as_deref(), Some("it broke"));
        let c = collect_with(
            &[("error.json", r#"{"errorMessage":"only"}"#)],
            Exit::Code(0),
        );
        assert_eq!(c.result.status, InvokeStatus::Crash);
        assert_eq!(c.result.message.as_deref(), Some("only"));
        let c = collect_with(
            &[
                ("error.json", r#"{"errorCode":"","errorMessage":""}"#),
                ("data.out", "1"),
            ],
            Exit::Code(0),
        );
        assert_eq!(c.result.status, InvokeStatus::Ok);
        let c = collect_with(&[("error.json", "oops")], Exit::Code(0));
        assert_eq!(c.result.status, InvokeStatus::Crash);
        assert!(c.result.message.unwrap().ends_with(": oops"));
    }

    #[test]
    fn failed_exit_is_container_failed() {
        let c = collect_with(&[("data.out", "{}")], Exit::Code(3));
        assert_eq!(c.result.status, InvokeStatus::Error);
        assert_eq!(c.result.code.as_deref(), Some(CODE_CONTAINER_FAILED));
        assert_eq!(
            c.result.message.as_deref(),
            Some("function process exited with status 3")
        );
    }

    #[test]
    fn log_files_become_lines() {
        let c = collect_with(
            &[("log.log", "one\ntwo\n"), ("error.log", "bad\n")],
            Exit::Code(0),
        );
        assert_eq!(
            c.lines,
            [
                (LogStream::Function, "one".to_string()),
                (LogStream::Function, "two".to_string()),
                (LogStream::Stderr, "bad".to_string())
            ]
        );
    }
}
