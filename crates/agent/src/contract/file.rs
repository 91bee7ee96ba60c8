//! The file contract (Direktiv isolates): the image's entrypoint runs to completion once per
//! call, reading its input from and writing its results to a data directory.
//!
//! The data directory is `file.data_dir` of the config (`/direktiv-data`; the platform mounts a
//! size-bounded tmpfs there). The instance is ready once the directory is usable. Per call, one
//! at a time (later calls wait their turn):
//!
//! 1. the directory is emptied completely, so nothing of an earlier call is left;
//! 2. `data.in` is written with the call's input bytes, and the call's files (a flow action's
//!    `files`), if it has any, are placed in `files/` (the process gets its path as
//!    `DIREKTIV_TEMPDIR`);
//! 3. the command runs in the configured working directory, as the function's user, with the
//!    container's environment; its stdout and stderr are the call's log lines as it runs;
//! 4. the outcome is read from the directory ([`results`] says how), and `log.log` and
//!    `error.log` are attached to the call's log;
//! 5. the directory is emptied again, so the input and output do not stay in memory.
//!
//! A full directory (writing `data.in` failed for lack of space, or no space is left after the
//! run) fails the call with the catchable [`faasbox_proto::CODE_DISK_FULL`], naming the bound
//! (`file.disk_limit_bytes`). The directory is on the instance's one bounded disk, so a
//! function that filled `/tmp` instead gets the same error. When the call's deadline passes, the
//! process group is killed and the call ends as a timeout ([`CallResult::timeout`]); a cancel
//! kills it the same way (a crash "cancelled").

mod data_dir;
mod results;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use faasbox_proto::{LogStream, ProcessUser};
use tokio::sync::Mutex;

use super::child::{self, ChildSpec, Ended, LineSink};
use super::deadline::Deadline;
use super::{call_files, disk, temp_dir, Call, CallResult, Shared, CANCELLED, TEMP_DIR_ENV};
use crate::calls::Cancelled;
use crate::logs::LogHub;
use crate::reaper::{Exit, Reaper};

/// The directory of a call's files, inside the data directory.
const FILES_DIR: &str = "files";

/// Where the data directory is when the config does not say.
const DEFAULT_DATA_DIR: &str = "/direktiv-data";

/// The file contract of one instance.
#[derive(Debug)]
pub struct FileContract {
    data_dir: PathBuf,
    disk_limit_bytes: u64,
    command: Vec<String>,
    workdir: PathBuf,
    user: Option<ProcessUser>,
    logs: Arc<LogHub>,
    reaper: Arc<Reaper>,
    /// Why the instance cannot take calls, if it cannot.
    unusable: Option<String>,
    /// One call at a time: they share the data directory.
    turn: Mutex<()>,
}

impl FileContract {
    /// Makes the data directory usable.
    pub fn start(shared: &Shared) -> FileContract {
        let config = &shared.config;
        let (data_dir, disk_limit_bytes) = match &config.file {
            Some(file) => (PathBuf::from(&file.data_dir), file.disk_limit_bytes),
            None => (PathBuf::from(DEFAULT_DATA_DIR), 0),
        };
        let unusable = if config.command.is_empty() {
            Some("no command is configured for the file contract".to_owned())
        } else {
            data_dir::prepare(&data_dir)
                .and_then(|()| data_dir::empty(&data_dir))
                .err()
                .map(|e| {
                    format!(
                        "the data directory {} is not usable: {e}",
                        data_dir.display()
                    )
                })
        };
        if let Some(reason) = &unusable {
            shared.logs.agent_line(reason.clone());
        }
        FileContract {
            data_dir,
            disk_limit_bytes,
            command: config.command.clone(),
            workdir: PathBuf::from(&config.workdir),
            user: config.user.clone(),
            logs: Arc::clone(&shared.logs),
            reaper: Arc::clone(&shared.reaper),
            unusable,
            turn: Mutex::new(()),
        }
    }

    pub fn ready(&self) -> Result<(), String> {
        match &self.unusable {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Runs the command once for this call.
    pub async fn invoke(&self, call: &Call, mut cancelled: Cancelled) -> CallResult {
        if let Err(reason) = self.ready() {
            return CallResult::crash(reason);
        }
        let deadline = Deadline::parse(&call.deadline);
        let _turn = tokio::select! {
            turn = self.turn.lock() => turn,
            () = cancelled.aborted() => return CallResult::crash(CANCELLED),
            () = tokio::time::sleep_until(deadline.instant()) => {
                return CallResult::timeout(format!(
                    "the call was still waiting for the previous call to finish at its deadline ({})",
                    call.deadline
                ))
            }
        };
        let result = self.run_in_clean_dir(call, deadline, cancelled).await;
        let dir = self.data_dir.clone();
        let emptied = tokio::task::spawn_blocking(move || data_dir::empty(&dir)).await;
        if let Ok(Err(err)) = emptied {
            self.log(
                call,
                LogStream::Agent,
                format!("cannot empty the data directory: {err}"),
            );
        }
        result
    }

    async fn run_in_clean_dir(
        &self,
        call: &Call,
        deadline: Deadline,
        cancelled: Cancelled,
    ) -> CallResult {
        let dir = self.data_dir.clone();
        let input = call.input.clone();
        let user = self.user.clone();
        let prepared = tokio::task::spawn_blocking(move || -> Result<(), PrepareError> {
            data_dir::empty(&dir).map_err(PrepareError::Empty)?;
            data_dir::write_input(&dir, &input, user.as_ref()).map_err(PrepareError::Input)
        })
        .await
        .unwrap_or_else(|e| Err(PrepareError::Empty(std::io::Error::other(e.to_string()))));
        match prepared {
            Ok(()) => {}
            Err(PrepareError::Input(err)) if disk::is_no_space(&err) => {
                return results::disk_full(&self.data_dir, self.disk_limit_bytes)
            }
            Err(PrepareError::Input(err)) => {
                return CallResult::crash(format!("cannot write {}: {err}", data_dir::DATA_IN))
            }
            Err(PrepareError::Empty(err)) => {
                return CallResult::crash(format!("cannot empty the data directory: {err}"))
            }
        }
        let files_dir = self.data_dir.join(FILES_DIR);
        if !call.files.is_empty() {
            if let Err(err) = std::fs::create_dir(&files_dir)
                .and_then(|()| call_files::chown(&files_dir, self.user.as_ref()))
            {
                return CallResult::crash(format!("cannot create {}: {err}", files_dir.display()));
            }
            if let Err(failed) =
                temp_dir::place_files(&files_dir, &call.files, self.user.as_ref()).await
            {
                // Files larger than the bounded data dir: the same code as a full disk at run.
                if disk::is_full(&self.data_dir) {
                    return results::disk_full(&self.data_dir, self.disk_limit_bytes);
                }
                return failed;
            }
        }

        let files_dir = (!call.files.is_empty()).then_some(files_dir.as_path());
        let exit = match self.run_command(call, files_dir, deadline, cancelled).await {
            Ok(exit) => exit,
            Err(result) => return result,
        };
        let dir = self.data_dir.clone();
        let limit = self.disk_limit_bytes;
        let collected =
            tokio::task::spawn_blocking(move || results::collect(&dir, exit, limit)).await;
        match collected {
            Ok(collected) => {
                for (stream, line) in collected.lines {
                    self.log(call, stream, line);
                }
                collected.result
            }
            Err(err) => CallResult::crash(format!("reading the call's results failed: {err}")),
        }
    }

    /// Runs the command to its end; `Err` is the call's result when it did not end by itself.
    async fn run_command(
        &self,
        call: &Call,
        files_dir: Option<&Path>,
        deadline: Deadline,
        cancelled: Cancelled,
    ) -> Result<Exit, CallResult> {
        let logs = Arc::clone(&self.logs);
        let aid = call.aid.clone();
        let sink: LineSink = Arc::new(move |stream, line| logs.call_line(Some(&aid), stream, line));
        let files_env = files_dir.map(|dir| (TEMP_DIR_ENV.into(), dir.as_os_str().to_owned()));
        let spec = ChildSpec {
            argv: &self.command,
            env: child::merge_env(child::container_env(), files_env),
            cwd: Path::new(&self.workdir),
            user: self.user.as_ref(),
            stdin: None,
            merge_output: false,
        };
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
                return Err(CallResult::crash(format!(
                    "cannot start the function process: {}",
                    child::spawn_error_text(self.command.first().map_or("", String::as_str), &err)
                )))
            }
        };
        match finished.ended {
            Ended::Exited(exit) => Ok(exit),
            Ended::TimedOut => Err(CallResult::timeout(format!(
                "the function was still running at the call's deadline ({}); it was killed",
                call.deadline
            ))),
            Ended::Aborted => Err(CallResult::crash(CANCELLED)),
            Ended::Lost => Err(CallResult::crash(
                "function process ended (its exit status was lost)",
            )),
        }
    }

    fn log(&self, call: &Call, stream: LogStream, line: String) {
        self.logs.call_line(Some(&call.aid), stream, line);
    }
}

enum PrepareError {
    Empty(std::io::Error),
    Input(std::io::Error),
}
