//! The direktiv-cmd contract (Direktiv's generic containers): the agent itself runs the commands
//! a call asks for; there is no long-running function process, so the instance is ready at once.
//!
//! Per call ([`input`] describes the input):
//!
//! 1. the call's directory `<temp_root>/<aid>` is created (owned by the function's user), the
//!    call's own files (a flow action's `files`, see `call_files`) are placed in it, and the
//!    input's `files` are written into it ([`files`]);
//! 2. each command line is split into words as a shell would (quotes and backslashes respected;
//!    no shell runs, so no pipes, globs or `$VAR` expansion — use `sh -c '…'` for those) and run
//!    in that directory, as the function's user, with the container's environment plus
//!    `HOME=<the directory>` plus the command's own `envs`; stdout and stderr are one stream;
//! 3. the output is a JSON array with one `{"Error": "", "Output": …}` per command that ran:
//!    `Output` is the command's output embedded as JSON when it is valid JSON, else as a string,
//!    and `""` when `suppress_output`; `Error` is empty on success, else Go's wording of the
//!    failure as Direktiv reported it (`exit status 1`,
//!    `exec: "x": executable file not found in $PATH`, …);
//! 4. a failed command does not stop the next one, unless it has `stop: true`: then the call fails
//!    with the catchable [`CODE_CMD_EXECUTION`] and the message
//!    `stopped because command '<text>' failed: <error>`;
//! 5. the directory is removed.
//!
//! Commands are numbered from 0, as Direktiv numbered them. With `suppress_command` the command
//! text appears nowhere (logs, messages): it is "command N" instead. The call's log gets
//! `running N commands`, `running command '<text>'` (or `running command N`), the command's output
//! lines (stream stdout; left out with `suppress_output`) and its error, if any.
//!
//! An input that is not the expected JSON, or a file that cannot be written, fails the call with
//! [`CODE_CMD_EXECUTION`] too, as Direktiv's command server answered. When the call's deadline
//! passes, the running command's process group is killed and the call crashes ("timed out"); a
//! cancel kills it the same way.

mod files;
pub mod input;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use faasbox_proto::{LogStream, ProcessUser, CODE_CMD_EXECUTION};
use serde::Serialize;
use serde_json::value::RawValue;

use super::child::{self, ChildSpec, Ended, LineSink};
use super::deadline::Deadline;
use super::disk::Disk;
use super::temp_dir::CallDir;
use super::{Call, CallResult, Shared, CANCELLED};
use crate::calls::Cancelled;
use crate::lines::lossy;
use crate::logs::LogHub;
use crate::reaper::{Exit, Reaper};
use input::CommandSpec;

/// The cmd contract of one instance.
#[derive(Debug)]
pub struct CmdContract {
    temp_root: PathBuf,
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

impl CmdContract {
    pub fn start(shared: &Shared) -> CmdContract {
        CmdContract {
            temp_root: PathBuf::from(&shared.config.temp_root),
            user: shared.config.user.clone(),
            logs: Arc::clone(&shared.logs),
            reaper: Arc::clone(&shared.reaper),
            disk: Disk::new(&shared.config.temp_root, shared.config.disk_limit_bytes),
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
                .run_one(dir, call, command, deadline, cancelled.clone())
                .await
            {
                Ran::Done(result) => result,
                Ran::TimedOut => {
                    return CallResult::crash(format!(
                        "timed out: {label} was still running at the call's deadline ({}); it was killed",
                        call.deadline
                    ))
                }
                Ran::Aborted => return CallResult::crash(CANCELLED),
            };
            let failed = (!result.error.is_empty()).then(|| result.error.clone());
            results.push(result);
            if let Some(error) = failed {
                log(error.clone());
                if command.stop {
                    log(format!("stopping execution due to error in {label}"));
                    return CallResult::error(
                        CODE_CMD_EXECUTION,
                        format!("stopped because {label} failed: {error}"),
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
        command: &CommandSpec,
        deadline: Deadline,
        cancelled: Cancelled,
    ) -> Ran {
        let failed = |error: String| {
            Ran::Done(CommandResult {
                error,
                output: output_value(b"", command.suppress_output),
            })
        };
        let argv = match shlex::split(&command.command) {
            None => return failed("invalid command line: unbalanced quotes".into()),
            Some(argv) if argv.is_empty() => return failed("no binary provided".into()),
            Some(argv) => argv,
        };
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
        Ran::Done(CommandResult {
            error,
            output: output_value(&finished.stdout.bytes, command.suppress_output),
        })
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

/// A command's `Output`: its output as JSON when it is JSON, else as a string; `""` when
/// suppressed.
fn output_value(bytes: &[u8], suppressed: bool) -> Box<RawValue> {
    let text = if suppressed {
        String::new()
    } else {
        lossy(bytes.to_vec())
    };
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
        assert_eq!(output_value(b"hello", false).get(), "\"hello\"");
        assert_eq!(
            output_value(b"{\"a\": [1, 2]}\n", false).get(),
            "{\"a\": [1, 2]}"
        );
        assert_eq!(output_value(b"42\n", false).get(), "42");
        assert_eq!(output_value(b"", false).get(), "\"\"");
        assert_eq!(output_value(b"{\"a\":1}", true).get(), "\"\"");
        assert_eq!(output_value(b"a\xffb", false).get(), "\"a\u{fffd}b\"");
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
            output: output_value(b"hello", false),
        }];
        assert_eq!(
            serde_json::to_string(&results).unwrap(),
            r#"[{"Error":"","Output":"hello"}]"#
        );
    }
}
