//! The function contracts the agent speaks, behind one interface the platform API uses.
//!
//! Each contract lives in its own module and is one variant of [`AgentContract`]:
//!
//! | contract | module | the function is |
//! |---|---|---|
//! | http | [`http`] | a long-running server on 127.0.0.1:8080 |
//! | cmd | [`cmd`] | the command lines each call brings (direktiv-cmd) |
//! | file | [`file`] | the image's entrypoint, run to completion per call (`/direktiv-data`) |
//! | openwhisk | [`openwhisk`] | `/action/exec`, run per call by the action proxy |
//! | code | [`code`] | a handler built from code, `handle(context, payload)`: a warm python3 or nodejs worker running faasbox's shim, or a shell script run per call |
//!
//! Shared helpers: [`child`] runs one process to completion for a call, [`deadline`] reads the
//! call's deadline, [`temp_dir`] makes the per-call directory, [`call_files`] places a call's
//! files in it, [`disk`] turns a call that filled the instance's disk into `disk_full`.

pub mod call_files;
pub mod child;
pub mod cmd;
pub mod code;
pub mod deadline;
pub mod disk;
pub mod file;
pub mod http;
pub mod openwhisk;
pub mod temp_dir;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use faasbox_proto::{
    AgentConfig, CallFile, Contract, HttpForward, InvokeOutcome, InvokeStatus, LogLine,
};
use serde_json::value::RawValue;

use crate::calls::Cancelled;
use crate::logs::LogHub;
use crate::process::FunctionProcess;
use crate::reaper::Reaper;

/// One call, as the platform sent it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The action id (validated: safe as a file name and a header value).
    pub aid: String,
    /// The deadline, RFC 3339, as the platform wrote it.
    pub deadline: String,
    /// The input bytes.
    pub input: Bytes,
    /// Files to place where the function finds them (see `faasbox_proto`'s "Files of a call").
    pub files: Vec<CallFile>,
    /// The HTTP request behind the call (a call through an HTTP route): the http contract
    /// forwards it to the function; the others ignore it.
    pub http: Option<HttpForward>,
}

/// The environment variable naming the directory of a call's files, for the contracts that run
/// a process per call (file, openwhisk).
pub const TEMP_DIR_ENV: &str = "DIREKTIV_TEMPDIR";

/// How a call ended, before its logs are attached.
#[derive(Debug)]
pub struct CallResult {
    pub status: InvokeStatus,
    pub output: Option<Box<RawValue>>,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl CallResult {
    pub fn ok(output: Box<RawValue>) -> Self {
        Self {
            status: InvokeStatus::Ok,
            output: Some(output),
            code: None,
            message: None,
        }
    }

    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: InvokeStatus::Error,
            output: None,
            code: Some(code.into()),
            message: Some(message.into()),
        }
    }

    pub fn crash(message: impl Into<String>) -> Self {
        Self {
            status: InvokeStatus::Crash,
            output: None,
            code: None,
            message: Some(message.into()),
        }
    }

    /// The call's deadline passed first and the agent stopped it; `message` says what was
    /// still running (the platform reports it as the function's timeout).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self {
            status: InvokeStatus::Timeout,
            output: None,
            code: None,
            message: Some(message.into()),
        }
    }

    pub fn into_outcome(self, logs: Vec<LogLine>) -> InvokeOutcome {
        InvokeOutcome {
            status: self.status,
            output: self.output,
            code: self.code,
            message: self.message,
            logs,
        }
    }
}

/// Turns a function's output bytes into the outcome's JSON: valid JSON passes through verbatim
/// (surrounding whitespace trimmed), an empty (or all-whitespace) output is `null`, anything else
/// becomes a JSON string holding its base64 (standard alphabet, padded).
pub fn output_json(body: &[u8]) -> Box<RawValue> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return RawValue::NULL.to_owned();
    }
    if let Ok(raw) = serde_json::from_slice::<&RawValue>(body) {
        return raw.to_owned();
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    // A string always serialises; the fallback is unreachable in practice.
    serde_json::value::to_raw_value(&encoded).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// The message of a call ended by a cancel.
pub const CANCELLED: &str = "cancelled";

/// Shared pieces every contract may use.
#[derive(Debug, Clone)]
pub struct Shared {
    pub config: Arc<AgentConfig>,
    pub logs: Arc<LogHub>,
    pub reaper: Arc<Reaper>,
    /// When the agent started (the ready timeout counts from here).
    pub started: Instant,
    /// The openwhisk contract's action directory (`/action`).
    pub action_dir: PathBuf,
}

/// The contract this agent speaks.
#[derive(Debug)]
pub enum AgentContract {
    Http(Box<http::HttpContract>),
    Cmd(cmd::CmdContract),
    File(Box<file::FileContract>),
    Openwhisk(Box<openwhisk::OpenWhiskContract>),
    Code(Box<code::CodeContract>),
}

impl AgentContract {
    /// Starts the contract (for http: the log endpoint and the function process; for openwhisk:
    /// the init of the config's code).
    ///
    /// Must be awaited on the main thread, not in a spawned task (see [`FunctionProcess::spawn`]).
    pub async fn start(shared: Shared) -> std::io::Result<AgentContract> {
        Ok(match shared.config.contract {
            Contract::Http => {
                AgentContract::Http(Box::new(http::HttpContract::start(shared).await?))
            }
            Contract::Cmd => AgentContract::Cmd(cmd::CmdContract::start(&shared)),
            Contract::File => AgentContract::File(Box::new(file::FileContract::start(&shared))),
            Contract::Openwhisk => AgentContract::Openwhisk(Box::new(
                openwhisk::OpenWhiskContract::start(&shared).await,
            )),
            Contract::Code => AgentContract::Code(Box::new(code::CodeContract::start(&shared))),
        })
    }

    /// Waits until the function can take calls; `Err` says why it never will.
    pub async fn ready(&self) -> Result<(), String> {
        match self {
            AgentContract::Http(http) => http.ready().await,
            AgentContract::Cmd(_) => Ok(()),
            AgentContract::File(file) => file.ready(),
            AgentContract::Openwhisk(openwhisk) => openwhisk.ready(),
            AgentContract::Code(code) => code.ready().await,
        }
    }

    /// Runs one call; when it is aborted, the contract drops it, cleans up and answers a crash
    /// "cancelled".
    pub async fn invoke(&self, call: &Call, cancelled: Cancelled) -> CallResult {
        match self {
            AgentContract::Http(http) => http.invoke(call, cancelled).await,
            AgentContract::Cmd(cmd) => cmd.invoke(call, cancelled).await,
            AgentContract::File(file) => file.invoke(call, cancelled).await,
            AgentContract::Openwhisk(openwhisk) => openwhisk.invoke(call, cancelled).await,
            AgentContract::Code(code) => code.invoke(call, cancelled).await,
        }
    }

    /// Tells the function a call is cancelled (best effort; the caller aborts the call). The
    /// contracts that run a process per call (and the code contract's worker) kill it when the
    /// call is aborted.
    pub async fn cancel(&self, aid: &str) {
        match self {
            AgentContract::Http(http) => http.cancel(aid).await,
            AgentContract::Cmd(_)
            | AgentContract::File(_)
            | AgentContract::Openwhisk(_)
            | AgentContract::Code(_) => {}
        }
    }

    /// Attributes all output the function wrote so far.
    pub async fn flush_output(&self) {
        if let Some(process) = self.function_process() {
            process.drain().await;
        }
    }

    /// The long-running function process, for contracts that have one.
    pub fn function_process(&self) -> Option<&FunctionProcess> {
        match self {
            AgentContract::Http(http) => Some(http.process()),
            AgentContract::Cmd(_)
            | AgentContract::File(_)
            | AgentContract::Openwhisk(_)
            | AgentContract::Code(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_passes_through_verbatim() {
        let body = "{\"b\": [1, 2.50], \"a\": \"ü\\u00fc\"}".as_bytes();
        assert_eq!(
            output_json(body).get(),
            "{\"b\": [1, 2.50], \"a\": \"ü\\u00fc\"}"
        );
        assert_eq!(output_json(b" 42\n").get(), "42");
        assert_eq!(output_json(b"\"str\"").get(), "\"str\"");
    }

    #[test]
    fn empty_output_is_null() {
        assert_eq!(output_json(b"").get(), "null");
        assert_eq!(output_json(b" \r\n").get(), "null");
    }

    #[test]
    fn other_output_is_base64() {
        assert_eq!(output_json(b"hello, world").get(), "\"aGVsbG8sIHdvcmxk\"");
        assert_eq!(output_json(b"{not json").get(), "\"e25vdCBqc29u\"");
        assert_eq!(output_json(&[0xff, 0xfe, 0x00]).get(), "\"//4A\"");
    }

    #[test]
    fn outcome_serialises_output_raw() {
        let outcome = CallResult::ok(output_json(b"{\"x\":  1}")).into_outcome(vec![]);
        assert_eq!(
            serde_json::to_string(&outcome).unwrap(),
            r#"{"status":"ok","output":{"x":  1},"logs":[]}"#
        );
        let crash = CallResult::crash("boom").into_outcome(vec![]);
        assert_eq!(
            serde_json::to_string(&crash).unwrap(),
            r#"{"status":"crash","message":"boom","logs":[]}"#
        );
    }
}
