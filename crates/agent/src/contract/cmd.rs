//! The direktiv-cmd contract (Direktiv's generic containers): the agent itself runs the commands
//! a call asks for; there is no long-running function process, so the instance is ready at once.
//!
//! Per call ([`input`] describes the input):
//!
//! 1. the call's directory `<temp_root>/<aid>` is created (owned by the function's user), the
//!    call's own files (a flow action's `files`, see `call_files`) are placed in it, and the
//!    input's `files` are written into it ([`files`]);
//! 2. each command line is split into words as Direktiv's command server splits it ([`words`]:
//!    quotes, `$VAR` from the container's environment, `` `…` `` and `$(…)` run by the
//!    container's `$SHELL` or `/bin/sh`; no shell runs the command itself, so pipes and
//!    redirections need `sh -c '…'`) and run in that directory, as the function's user, with the
//!    container's environment plus `HOME=<the directory>` plus the command's own `envs`; stdout
//!    and stderr are one stream;
//! 3. the output is a JSON array with one `{"Error": "", "Output": …}` per command that ran:
//!    `Output` is the command's output embedded as JSON when it is valid JSON, else as a string
//!    (also with `suppress_output`, which keeps it out of the log only, as Direktiv v0.9 and
//!    later do); `Error` is empty on success, else Go's wording of the failure as Direktiv
//!    reported it (`exit status 1`, `exec: "x": executable file not found in $PATH`,
//!    `invalid command line string`, …);
//! 4. a failed command does not stop the next one, unless it has `stop: true`: then the call fails
//!    with the catchable [`CODE_CMD_EXECUTION`] and Direktiv's message
//!    `handler function error: stopped because command N failed`;
//! 5. the directory is removed.
//!
//! Commands are numbered from 0, as Direktiv numbers them. With `suppress_command` the command
//! text appears nowhere (logs, messages): it is "command N" instead. The call's log gets, as
//! Direktiv's does, `running N commands`, `running command '<text>'` (or `running command N`),
//! the command's output lines (stream stdout; left out with `suppress_output`), its error, if
//! any, and `stopping execution due to error in command N` before a stop.
//!
//! Substitutions (`$(…)`, backticks) run as Direktiv's do: with the container's environment
//! (not the command's `envs`, not the call's `HOME`), in the function's working directory, as
//! the function's user; only their stdout is used, trimmed; a failing one is the command's
//! `Error` (`<its stderr>: exit status N`) and the command does not run. `$VAR` likewise reads
//! the container's environment only: a command's own `envs` reach the command's process, not
//! its command line (use `sh -c 'echo $X'` for that).
//!
//! An input that is not the expected JSON, or a file that cannot be written, fails the call with
//! [`CODE_CMD_EXECUTION`] too, as Direktiv's command server answered. When the call's deadline
//! passes, the running command's process group is killed and the call ends as a timeout
//! ([`CallResult::timeout`]); a cancel kills it the same way (a crash "cancelled").

mod files;
pub mod input;
pub mod words;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use faasbox_proto::{LogStream, ProcessUser, CODE_CMD_EXECUTION};
use serde::Serialize;
use serde_json::value::RawValue;

use super::child::{self, ChildSpec, Ended, LineSink};
use super::deadline::Deadline;
use super::disk::Disk;
use super::temp_dir::{CallDir, CallRoot};
use super::{Call, CallResult, Shared, CANCELLED};
use crate::calls::Cancelled;
use crate::lines::lossy;
use crate::logs::LogHub;
use crate::reaper::{Exit, Reaper};
use input::CommandSpec;
use words::{Splitter, Step, Words};

/// The shell for `$(…)` and backticks when the container's environment has no `SHELL`.
const DEFAULT_SHELL: &str = "/bin/sh";

/// The cmd contract of one instance.
#[derive(Debug)]
pub struct CmdContract {
    temp_root: CallRoot,
    /// Where command substitutions run (the function's working directory).
    workdir: PathBuf,
    user: Option<ProcessUser>,
    logs: Arc<LogHub>,
    reaper: Arc<Reaper>,
    /// The instance's disk (the temp dirs are on it).
    disk: Disk,
}

/// One element of the output array (Direktiv's field names and order).
#[derive(Debug, Serialize)]
struct CommandResult {
    #[serde(rename = "Error")]
    error: String,
    #[serde(rename = "Output")]
    output: Box<RawValue>,
}

/// How one command went.
enum Ran {
    Done(CommandResult),
    TimedOut,
    Aborted,
}

/// Why a command line gave no words to run.
enum NoWords {
    /// The command's `Error`.
    Failed(String),
    TimedOut,
    Aborted,
}

impl CmdContract {
    pub fn start(shared: &Shared) -> CmdContract {
        let temp_root = CallRoot::new(&shared.config.temp_root);
        CmdContract {
            temp_root: temp_root.clone(),
            workdir: PathBuf::from(&shared.config.workdir),
            user: shared.config.user.clone(),
            logs: Arc::clone(&shared.logs),
            reaper: Arc::clone(&shared.reaper),
            disk: Disk::new(&temp_root, shared.config.disk_limit_bytes),
        }
    }

    /// Runs one call's commands.
    pub async fn invoke(&self, call: &Call, cancelled: Cancelled) -> CallResult {
        let request = match input::parse(&call.input) {
            Ok(request) => request,
            Err(err) => {
                return CallResult::error(
                    CODE_CMD_EXECUTION,
                    format!("failed to unmarshal request payload: {err}"),
                )
            }
        };
        let dir =
            match CallDir::prepare(&self.temp_root, &call.aid, &call.files, self.user.as_ref())
                .await
            {
                Ok(dir) => dir,
                Err(failed) => return self.disk.verdict(failed),
            };
        if let Err(err) = files::chown(dir.path(), self.user.as_ref()) {
            return CallResult::crash(format!(
                "cannot give the call's temp dir to its user: {err}"
            ));
        }
        let dir_path = dir.path().to_path_buf();
        let user = self.user.clone();
        let written = tokio::task::spawn_blocking(move || {
            files::write_all(&dir_path, &request.files, user.as_ref())
        })
        .await
        .unwrap_or_else(|e| Err(format!("writing the files failed: {e}")));
        let result = match written {
            Ok(()) => {
                self.run_commands(dir.path(), call, &request.commands, cancelled)
                    .await
            }
            Err(err) => {
                CallResult::error(CODE_CMD_EXECUTION, format!("failed to prepare file: {err}"))
            }
        };
        // Before the temp dir goes: what filled the disk may be in it.
        let result = self.disk.verdict(result);
        dir.remove().await;
        result
    }

    async fn run_commands(
        &self,
        dir: &Path,
        call: &Call,
        commands: &[CommandSpec],
        cancelled: Cancelled,
    ) -> CallResult {
        let deadline = Deadline::parse(&call.deadline);
        let log = |line: String| self.logs.call_line(Some(&call.aid), LogStream::Agent, line);
        log(format!("running {} commands", commands.len()));
        let mut results = Vec::with_capacity(commands.len());
        for (index, command) in commands.iter().enumerate() {
            let label = label(index, command);
            log(format!("running {label}"));
            let result = match self
                .run_one(dir, call, index, command, deadline, cancelled.clone())
                .await
            {
                Ran::Done(result) => result,
                Ran::TimedOut => {
                    return CallResult::timeout(format!(
                        "{label} was still running at the call's deadline ({}); it was killed",
                        call.deadline
                    ))
                }
                Ran::Aborted => return CallResult::crash(CANCELLED),
            };
            let failed = (!result.error.is_empty()).then(|| result.error.clone());
            results.push(result);
            if let Some(error) = failed {
                log(error);
                if command.stop {
                    // Direktiv's words, numbered from 0 whether the text is suppressed or not.
                    log(format!(
                        "stopping execution due to error in command {index}"
                    ));
                    return CallResult::error(
                        CODE_CMD_EXECUTION,
                        format!("handler function error: stopped because command {index} failed"),
                    );
                }
            }
        }
        match serde_json::value::to_raw_value(&results) {
            Ok(output) => CallResult::ok(output),
            Err(err) => CallResult::crash(format!("cannot encode the commands' output: {err}")),
        }
    }

    async fn run_one(
        &self,
        dir: &Path,
        call: &Call,
        index: usize,
        command: &CommandSpec,
        deadline: Deadline,
        cancelled: Cancelled,
    ) -> Ran {
        let failed = |error: String| {
            Ran::Done(CommandResult {
                error,
                output: output_value(b""),
            })
        };
        let words = match self
            .split(&command.command, deadline, cancelled.clone())
            .await
        {
            Ok(words) => words,
            Err(NoWords::Failed(error)) => return failed(error),
            Err(NoWords::TimedOut) => return Ran::TimedOut,
            Err(NoWords::Aborted) => return Ran::Aborted,
        };
        if let Some(at) = words.cut_at {
            // Direktiv drops the rest silently; saying so costs one line.
            self.logs.call_line(
                Some(&call.aid),
                LogStream::Agent,
                format!(
                    "{}: the command line ends at its first unquoted '{at}'; the rest was not run \
                     (no shell runs the command: use sh -c '…' for pipes, lists and redirections)",
                    label(index, command)
                ),
            );
        }
        let argv = words.args;
        if argv.is_empty() {
            return failed("no binary provided".into());
        }
        let overrides = std::iter::once((OsString::from("HOME"), dir.as_os_str().to_owned()))
            .chain(
                command
                    .envs
                    .iter()
                    .map(|(name, value)| (name.into(), value.into())),
            );
        let sink: Option<LineSink> = (!command.suppress_output).then(|| {
            let logs = Arc::clone(&self.logs);
            let aid = call.aid.clone();
            Arc::new(move |stream, line| logs.call_line(Some(&aid), stream, line)) as LineSink
        });
        let spec = ChildSpec {
            argv: &argv,
            env: child::merge_env(child::container_env(), overrides),
            cwd: dir,
            user: self.user.as_ref(),
            stdin: None,
            merge_output: true,
        };
        let finished =
            match child::run(spec, &self.reaper, deadline.instant(), cancelled, sink).await {
                Ok(finished) => finished,
                Err(err) => return failed(child::spawn_error_text(&argv[0], &err)),
            };
        let error = match finished.ended {
            Ended::Exited(Exit::Code(0)) => String::new(),
            Ended::Exited(exit) => child::exit_text(exit),
            Ended::Lost => "the command's exit status was lost".into(),
            Ended::TimedOut => return Ran::TimedOut,
            Ended::Aborted => return Ran::Aborted,
        };
        // `suppress_output` kept the output out of the log only: Direktiv v0.9 and later (what
        // its users run and its current tests assert: "suppress does not log but adds to
        // result"). v0.8 dropped it from the result too, so a v0.8 flow that used it to keep a
        // secret out of the result must now drop that from the output itself.
        Ran::Done(CommandResult {
            error,
            output: output_value(&finished.stdout.bytes),
        })
    }

    /// The words of a command line, running its substitutions (bounded by the call's deadline
    /// and its cancel).
    async fn split(
        &self,
        line: &str,
        deadline: Deadline,
        cancelled: Cancelled,
    ) -> Result<Words, NoWords> {
        let getenv = |name: &str| {
            std::env::var_os(name).map_or_else(String::new, |v| v.to_string_lossy().into_owned())
        };
        let mut splitter = Splitter::new(line, &getenv);
        loop {
            let step = splitter
                .step()
                .map_err(|e| NoWords::Failed(e.to_string()))?;
            match step {
                Step::Done(words) => return Ok(words),
                Step::Substitute(text) => {
                    let output = self.substitute(&text, deadline, cancelled.clone()).await?;
                    splitter
                        .substituted(&output)
                        .map_err(|e| NoWords::Failed(e.to_string()))?;
                }
            }
        }
    }

    /// Runs one `$(…)` or backtick text with the container's shell: its stdout, trimmed.
    async fn substitute(
        &self,
        text: &str,
        deadline: Deadline,
        cancelled: Cancelled,
    ) -> Result<String, NoWords> {
        let env = child::container_env();
        let shell = env
            .iter()
            .find(|(name, value)| name == "SHELL" && !value.is_empty())
            .map_or_else(
                || DEFAULT_SHELL.to_owned(),
                |(_, value)| value.to_string_lossy().into_owned(),
            );
        let argv = [shell.clone(), "-c".to_owned(), text.to_owned()];
        let spec = ChildSpec {
            argv: &argv,
            env,
            cwd: &self.workdir,
            user: self.user.as_ref(),
            stdin: None,
            merge_output: false,
        };
        let finished = match child::run(spec, &self.reaper, deadline.instant(), cancelled, None)
            .await
        {
            Ok(finished) => finished,
            Err(err) => {
                let reason = child::spawn_error_text(&shell, &err);
                return Err(NoWords::Failed(
                    if err.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "{reason}: $(…) and backticks run {shell}, which this image does not have; \
                             drop them from the command or use an image with a shell"
                        )
                    } else {
                        // Go's wording: the (empty) output, then the error.
                        format!(": {reason}")
                    },
                ));
            }
        };
        match finished.ended {
            Ended::Exited(Exit::Code(0)) => Ok(lossy(finished.stdout.bytes).trim().to_owned()),
            // As Direktiv reports it: the substitution's stderr, then how it ended.
            Ended::Exited(exit) => Err(NoWords::Failed(format!(
                "{}: {}",
                lossy(finished.stderr.bytes),
                child::exit_text(exit)
            ))),
            Ended::Lost => Err(NoWords::Failed(
                "the command substitution's exit status was lost".into(),
            )),
            Ended::TimedOut => Err(NoWords::TimedOut),
            Ended::Aborted => Err(NoWords::Aborted),
        }
    }
}

/// "command '<text>'", or "command N" when the text is suppressed.
fn label(index: usize, command: &CommandSpec) -> String {
    if command.suppress_command {
        format!("command {index}")
    } else {
        format!("command '{}'", command.command)
    }
}

/// A command's `Output`: its output as JSON when it is JSON, else as a string.
fn output_value(bytes: &[u8]) -> Box<RawValue> {
    let text = lossy(bytes.to_vec());
    if let Ok(raw) = serde_json::from_str::<&RawValue>(&text) {
        return raw.to_owned();
    }
    // A string always serialises; the fallback is unreachable in practice.
    serde_json::value::to_raw_value(&text).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_embed_json_or_keep_text() {
        assert_eq!(output_value(b"hello").get(), "\"hello\"");
        assert_eq!(output_value(b"{\"a\": [1, 2]}\n").get(), "{\"a\": [1, 2]}");
        assert_eq!(output_value(b"42\n").get(), "42");
        assert_eq!(output_value(b"").get(), "\"\"");
        assert_eq!(output_value(b"a\xffb").get(), "\"a\u{fffd}b\"");
    }

    #[test]
    fn labels() {
        let mut command = CommandSpec {
            command: "echo secret".into(),
            ..CommandSpec::default()
        };
        assert_eq!(label(2, &command), "command 'echo secret'");
        command.suppress_command = true;
        assert_eq!(label(2, &command), "command 2");
    }

    #[test]
    fn results_serialise_in_direktiv_shape() {
        let results = vec![CommandResult {
            error: String::new(),
            output: output_value(b"hello"),
        }];
        assert_eq!(
            serde_json::to_string(&results).unwrap(),
            r#"[{"Error":"","Output":"hello"}]"#
        );
    }
}
