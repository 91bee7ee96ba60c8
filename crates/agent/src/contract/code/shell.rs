//! The code contract for `shell`: `/bin/sh <dir>/<handler>` runs once per call.
//!
//! There is no warm worker: a POSIX shell keeps no loaded module or state worth keeping between
//! calls, and starting `sh` costs about a millisecond, so a process per call is as fast and
//! needs nothing of the script (a warm shell worker would make every script a request loop).
//! Calls therefore run side by side.
//!
//! The payload JSON (one line, then `\n`) is the script's stdin, and the context (with
//! `deadline`) is in the environment variable [`CONTEXT_ENV`]. The last non-blank line the
//! script writes to stdout is the result and must be JSON (no such line: `null`); earlier
//! stdout lines and all of stderr are the call's log lines, as the script runs. A non-zero exit
//! is a `FunctionError` with the exit status and the end of stderr; a result line that is not
//! JSON is a `FunctionError` naming it. Ready checks the script parses (`sh -n`).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use faasbox_proto::{LogStream, ProcessUser, CODE_FUNCTION_ERROR};
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use super::super::child::{self, ChildSpec, Ended, LineSink};
use super::super::deadline::Deadline;
use super::super::{Call, CallResult, CANCELLED};
use super::envelope;
use crate::calls::Cancelled;
use crate::lines::lossy;
use crate::logs::LogHub;
use crate::reaper::{Exit, Reaper};

/// The environment variable holding the call's context (JSON).
pub const CONTEXT_ENV: &str = "FAASBOX_CONTEXT";
/// The shell that runs the script.
const SHELL: &str = "/bin/sh";
/// How much of stderr's end goes into a failed call's message.
const STDERR_TAIL_BYTES: usize = 2048;
/// How long the syntax check of ready may take.
const CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The shell flavour of the code contract.
#[derive(Debug)]
pub struct ShellContract {
    script: PathBuf,
    dir: PathBuf,
    handler: String,
    user: Option<ProcessUser>,
    logs: Arc<LogHub>,
    reaper: Arc<Reaper>,
    /// Why the script cannot run, found at start.
    problem: Option<String>,
    checked: OnceCell<Result<(), String>>,
}

impl ShellContract {
    pub fn start(
        dir: &Path,
        handler: &str,
        user: Option<ProcessUser>,
        logs: Arc<LogHub>,
        reaper: Arc<Reaper>,
    ) -> ShellContract {
        let relative = Path::new(handler);
        let problem = if handler.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            Some(format!(
                "the shell handler '{handler}' must be a path relative to {} without '..'",
                dir.display()
            ))
        } else if !dir.join(relative).is_file() {
            Some(format!(
                "the shell handler script {} does not exist",
                dir.join(relative).display()
            ))
        } else {
            None
        };
        ShellContract {
            script: dir.join(relative),
            dir: dir.to_owned(),
            handler: handler.to_owned(),
            user,
            logs,
            reaper,
            problem,
            checked: OnceCell::new(),
        }
    }

    /// Ready once the script exists and `sh -n` finds no syntax error in it.
    pub async fn ready(&self) -> Result<(), String> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }
        self.checked
            .get_or_init(|| self.syntax_check())
            .await
            .clone()
    }

    async fn syntax_check(&self) -> Result<(), String> {
        let argv = [
            SHELL.to_owned(),
            "-n".to_owned(),
            self.script.display().to_string(),
        ];
        let deadline = tokio::time::Instant::now() + CHECK_WAIT;
        let spec = ChildSpec {
            argv: &argv,
            env: child::container_env(),
            cwd: &self.dir,
            user: self.user.as_ref(),
            stdin: None,
            merge_output: true,
        };
        let finished = child::run(spec, &self.reaper, deadline, Cancelled::never(), None)
            .await
            .map_err(|e| {
                format!(
                    "cannot check the script: {}",
                    child::spawn_error_text(SHELL, &e)
                )
            })?;
        match finished.ended {
            Ended::Exited(Exit::Code(0)) => Ok(()),
            Ended::Exited(exit) => {
                let said = lossy(finished.stdout.bytes);
                let said = said.trim();
                Err(if said.is_empty() {
                    format!(
                        "{SHELL} -n {} failed: {}",
                        self.script.display(),
                        child::exit_text(exit)
                    )
                } else {
                    said.to_owned()
                })
            }
            Ended::TimedOut | Ended::Aborted | Ended::Lost => Err(format!(
                "{SHELL} -n {} did not finish",
                self.script.display()
            )),
        }
    }

    /// Runs the script for one call.
    pub async fn invoke(&self, call: &Call, cancelled: Cancelled) -> CallResult {
        super::note_files(&self.logs, call);
        if let Err(reason) = self.ready().await {
            return CallResult::crash(reason);
        }
        let split = envelope::split(&call.input, &call.deadline);
        let mut stdin = split.payload.clone().into_bytes();
        stdin.push(b'\n');
        let env = child::merge_env(
            child::container_env(),
            [(
                OsString::from(CONTEXT_ENV),
                OsString::from(split.context_json()),
            )],
        );
        let argv = [SHELL.to_owned(), self.script.display().to_string()];
        let spec = ChildSpec {
            argv: &argv,
            env,
            cwd: &self.dir,
            user: self.user.as_ref(),
            stdin: Some(stdin.into()),
            merge_output: false,
        };
        // The newest non-blank stdout line is held back: it may be the result.
        let held: Arc<Mutex<Option<String>>> = Arc::default();
        let sink: LineSink = {
            let logs = Arc::clone(&self.logs);
            let aid = call.aid.clone();
            let held = Arc::clone(&held);
            Arc::new(move |stream, line: String| {
                if stream == LogStream::Stdout && !line.trim().is_empty() {
                    let earlier = held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .replace(line);
                    if let Some(earlier) = earlier {
                        logs.call_line(Some(&aid), stream, earlier);
                    }
                } else {
                    logs.call_line(Some(&aid), stream, line);
                }
            })
        };
        let deadline = Deadline::parse(&call.deadline);
        let finished = match child::run(
            spec,
            &self.reaper,
            deadline.instant(),
            cancelled,
            Some(sink),
        )
        .await
        {
            Ok(finished) => finished,
            Err(err) => {
                return CallResult::crash(format!(
                    "cannot start the script: {}",
                    child::spawn_error_text(SHELL, &err)
                ))
            }
        };
        let held = held.lock().unwrap_or_else(PoisonError::into_inner).take();
        let log_held = || {
            if let Some(line) = &held {
                self.logs
                    .call_line(Some(&call.aid), LogStream::Stdout, line.clone());
            }
        };
        match finished.ended {
            Ended::Exited(Exit::Code(0)) => {
                if finished.stdout.truncated {
                    log_held();
                    return CallResult::error(
                        CODE_FUNCTION_ERROR,
                        format!(
                            "the script wrote more than {} bytes to stdout",
                            child::MAX_CAPTURE_BYTES
                        ),
                    );
                }
                let result = last_line(&finished.stdout.bytes);
                if result.is_empty() {
                    return CallResult::ok(RawValue::NULL.to_owned());
                }
                match serde_json::from_slice::<Box<RawValue>>(result) {
                    Ok(output) => CallResult::ok(output),
                    Err(err) => {
                        log_held();
                        let shown = lossy(result[..result.len().min(200)].to_vec());
                        CallResult::error(
                            CODE_FUNCTION_ERROR,
                            format!(
                                "the last line the script {} wrote to stdout is not JSON ({err}): {shown}",
                                self.handler
                            ),
                        )
                    }
                }
            }
            Ended::Exited(exit) => {
                log_held();
                let mut message = format!(
                    "the script {} failed: {}",
                    self.handler,
                    child::exit_text(exit)
                );
                let tail = stderr_tail(&finished.stderr.bytes);
                if !tail.is_empty() {
                    message.push('\n');
                    message.push_str(&tail);
                }
                CallResult::error(CODE_FUNCTION_ERROR, message)
            }
            Ended::TimedOut => {
                log_held();
                CallResult::timeout(format!(
                    "the script {} was still running at the call's deadline ({}); it was killed",
                    self.handler, call.deadline
                ))
            }
            Ended::Aborted => {
                log_held();
                CallResult::crash(CANCELLED)
            }
            Ended::Lost => {
                log_held();
                CallResult::crash("the script's process ended (its exit status was lost)")
            }
        }
    }
}

/// The last non-blank line of `bytes`, trimmed.
fn last_line(bytes: &[u8]) -> &[u8] {
    bytes
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .rfind(|line| !line.is_empty())
        .unwrap_or_default()
}

/// The end of stderr, at most [`STDERR_TAIL_BYTES`], starting at a line.
fn stderr_tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.len() <= STDERR_TAIL_BYTES {
        return text.to_owned();
    }
    let mut start = text.len() - STDERR_TAIL_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    match tail.find('\n') {
        Some(at) => format!("…\n{}", &tail[at + 1..]),
        None => format!("…{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_skips_blank_ones() {
        assert_eq!(last_line(b"log\n{\"a\":1}\n\n  \n"), b"{\"a\":1}");
        assert_eq!(last_line(b"  42  "), b"42");
        assert_eq!(last_line(b"\n \n"), b"");
    }

    #[test]
    fn stderr_tail_is_bounded_at_a_line() {
        assert_eq!(stderr_tail(b"one\ntwo\n"), "one\ntwo");
        let long = format!("{}\nlast line\n", "x".repeat(5000));
        assert_eq!(stderr_tail(long.as_bytes()), "…\nlast line");
        let one_line = "y".repeat(5000);
        assert_eq!(
            stderr_tail(one_line.as_bytes()).len(),
            "…".len() + STDERR_TAIL_BYTES
        );
    }
}
