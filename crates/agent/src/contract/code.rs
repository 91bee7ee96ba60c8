//! The code contract: functions built from code (Dispatch's function manager). The handler is
//! called as `handle(context, payload)` by faasbox's own language shim, so the base image needs
//! nothing but the interpreter. Configured by [`faasbox_proto::CodeConfig`].
//!
//! **python3 and nodejs: one warm worker.** At start the agent writes the language's shim
//! ([`SHIM_PY`], [`SHIM_JS`]) into `<temp_root>/faasbox+code/` (root's, readable by all; `+`
//! cannot occur in an action id, so no call's temp dir is ever named so) and starts one worker:
//! `python3 -u shim.py …`, or `node shim.js …` (`nodejs` when there is no `node` on the
//! `PATH`), in the code directory, as the function's user, with the container's environment
//! (see [`worker`] for its pipes). The worker imports the handler's module and checks the
//! handler's shape; ready waits for that and fails with the interpreter's own words (a syntax
//! error with its file and line, `module 'hello' has no function 'handle'`, `handler
//! hello.handle takes 3 arguments; it must take (context, payload)`), which is the platform's
//! build-time handler check. Python's handler must bind two positional arguments
//! (`inspect.signature`); a Node.js handler may declare at most two parameters (JavaScript's
//! `length` stops at a default or rest parameter, so fewer is allowed). A Node.js module may be
//! CommonJS or an ES module (`"type": "module"`; its default export, or the named one). The
//! Python shim needs nothing beyond Debian's `python3-minimal`: without the `json` module it
//! reads and writes JSON itself, and without `asyncio` it still runs a coroutine that awaits
//! no event loop.
//!
//! Per call the input is split into context and payload ([`envelope::split`]), `deadline` is
//! added to the context, and the worker runs the handler; the module stays loaded, so module
//! state lives on between calls. The worker takes **one call at a time**: later calls wait
//! their turn on a queue (a mutex), as they would in a single-threaded interpreter anyway; the
//! platform scales out with more instances. The result is the handler's return value as JSON
//! (`None`/`undefined` is `null`, a Promise or coroutine is awaited); an exception of the input
//! class (Python `ValueError`/`TypeError`, Node.js `TypeError`) is the error `InputError`, any
//! other, or a result that is not JSON, `FunctionError`, with the message `<Class>: <message>`
//! and the stack trace below it. What the handler writes to stdout and stderr are the call's
//! log lines; the shim marks the end of each call's output on both, so all of it is attributed
//! before the outcome is returned.
//!
//! At the call's deadline the worker's process group is killed, the call ends as a timeout and
//! a fresh worker is started at once (it loads while no call waits); a cancel does the same
//! and answers "cancelled". A worker that dies during a call (its own `exit`, a crash, the OOM
//! killer) ends the call as a crash and is replaced the same way; one that died between calls
//! is replaced when the next call comes.
//!
//! **shell: a process per call**, see [`shell`].
//!
//! A call's files (a flow action's `files`) are not placed; the call's log says so.

pub mod envelope;
pub mod shell;
pub mod worker;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faasbox_proto::{CodeConfig, Language, LogStream, ProcessUser, CODE_FUNCTION_ERROR};
use tokio::sync::{Mutex, OnceCell};

use super::child;
use super::deadline::Deadline;
use super::{Call, CallResult, Shared, CANCELLED};
use crate::calls::Cancelled;
use crate::logs::LogHub;
use crate::reaper::Reaper;
use worker::{Outcome, Worker, WorkerSpec};

/// The Python shim.
pub const SHIM_PY: &str = include_str!("code/shim.py");
/// The Node.js shim.
pub const SHIM_JS: &str = include_str!("code/shim.js");
/// The directory of the shims, inside `temp_root`.
pub const SHIM_DIR: &str = "faasbox+code";

/// The code contract of one instance.
#[derive(Debug)]
pub enum CodeContract {
    Warm(Box<Warm>),
    Shell(shell::ShellContract),
    /// The configuration cannot work; the reason.
    Broken(String),
}

impl CodeContract {
    /// Writes the shim and starts the worker (python3, nodejs); checks the script (shell).
    ///
    /// Must be called on the main thread (see [`crate::process::FunctionProcess::spawn`]).
    pub fn start(shared: &Shared) -> CodeContract {
        let config = &shared.config;
        let Some(code) = &config.code else {
            let reason = "the code contract needs the `code` configuration (language and handler)";
            shared.logs.agent_line(reason.to_owned());
            return CodeContract::Broken(reason.to_owned());
        };
        match code.language {
            Language::Shell => CodeContract::Shell(shell::ShellContract::start(
                Path::new(&code.dir),
                &code.handler,
                config.user.clone(),
                Arc::clone(&shared.logs),
                Arc::clone(&shared.reaper),
            )),
            Language::Python3 | Language::Nodejs => {
                CodeContract::Warm(Box::new(Warm::start(shared, code)))
            }
        }
    }

    /// Ready once the handler is loaded and has the right shape (shell: the script parses).
    pub async fn ready(&self) -> Result<(), String> {
        match self {
            CodeContract::Warm(warm) => warm.ready().await,
            CodeContract::Shell(shell) => shell.ready().await,
            CodeContract::Broken(reason) => Err(reason.clone()),
        }
    }

    /// Runs one call.
    pub async fn invoke(&self, call: &Call, cancelled: Cancelled) -> CallResult {
        match self {
            CodeContract::Warm(warm) => warm.invoke(call, cancelled).await,
            CodeContract::Shell(shell) => shell.invoke(call, cancelled).await,
            CodeContract::Broken(reason) => CallResult::crash(reason.clone()),
        }
    }
}

/// python3 and nodejs: the warm worker and the queue in front of it.
#[derive(Debug)]
pub struct Warm {
    language: Language,
    interpreter: String,
    argv: Vec<String>,
    dir: PathBuf,
    user: Option<ProcessUser>,
    logs: Arc<LogHub>,
    reaper: Arc<Reaper>,
    marker: String,
    /// The worker (none while one could not be started); its lock is the call queue.
    worker: Mutex<Option<Worker>>,
    /// Why no worker can ever run, found at start.
    problem: Option<String>,
    ready: OnceCell<Result<(), String>>,
    ready_timeout: Duration,
    ready_deadline: Instant,
}

/// How a call on the worker ended.
enum Ran {
    Done(Outcome),
    TimedOut,
    Aborted,
}

impl Warm {
    fn start(shared: &Shared, code: &CodeConfig) -> Warm {
        let config = &shared.config;
        let language = code.language;
        let dir = PathBuf::from(&code.dir);
        let interpreter = interpreter(language);
        let marker = marker();
        let ready_timeout = Duration::from_millis(config.ready_timeout_ms);
        let ready_deadline = shared
            .started
            .checked_add(ready_timeout)
            .unwrap_or_else(|| shared.started + Duration::from_secs(365 * 24 * 3600));
        let mut problem = None;
        let shim = match write_shim(Path::new(&config.temp_root), language) {
            Ok(shim) => shim,
            Err(err) => {
                problem = Some(format!(
                    "cannot write the {} shim: {err}",
                    language.as_str()
                ));
                PathBuf::new()
            }
        };
        if !dir.is_dir() {
            problem = Some(format!(
                "the code directory {} does not exist (the function's code is placed there)",
                dir.display()
            ));
        }
        let argv = worker::argv(&interpreter, &shim, &dir, &code.handler, &marker);
        let mut warm = Warm {
            language,
            interpreter,
            argv,
            dir,
            user: config.user.clone(),
            logs: Arc::clone(&shared.logs),
            reaper: Arc::clone(&shared.reaper),
            marker,
            worker: Mutex::new(None),
            problem,
            ready: OnceCell::new(),
            ready_timeout,
            ready_deadline,
        };
        if warm.problem.is_none() {
            match warm.spawn() {
                Ok(worker) => *warm.worker.get_mut() = Some(worker),
                Err(reason) => warm.problem = Some(reason),
            }
        }
        if let Some(problem) = &warm.problem {
            warm.logs.agent_line(problem.clone());
        }
        warm
    }

    fn spawn(&self) -> Result<Worker, String> {
        let spec = WorkerSpec {
            argv: &self.argv,
            env: child::container_env(),
            dir: &self.dir,
            user: self.user.as_ref(),
            marker: &self.marker,
        };
        Worker::spawn(spec, &self.reaper, &self.logs).map_err(|err| {
            let mut reason = format!(
                "cannot start the {} worker: {}",
                self.language.as_str(),
                child::spawn_error_text(&self.interpreter, &err)
            );
            if err.kind() == io::ErrorKind::NotFound {
                reason.push_str(&format!(
                    " (the base image must have {} on its PATH)",
                    match self.language {
                        Language::Nodejs => "node or nodejs",
                        _ => "python3",
                    }
                ));
            }
            reason
        })
    }

    /// Waits (once) until the first worker has loaded the handler.
    async fn ready(&self) -> Result<(), String> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }
        self.ready
            .get_or_init(|| async {
                let mut slot = self.worker.lock().await;
                let Some(worker) = slot.as_mut() else {
                    return Err(format!("the {} worker is gone", self.language.as_str()));
                };
                if worker.greeted {
                    return Ok(());
                }
                let deadline = tokio::time::Instant::from_std(self.ready_deadline);
                let greeted = tokio::select! {
                    greeted = worker.greet(self.language.as_str()) => greeted,
                    () = tokio::time::sleep_until(deadline) => Err(format!(
                        "the {} worker did not load the handler within {} ms",
                        self.language.as_str(),
                        self.ready_timeout.as_millis()
                    )),
                };
                if let Err(reason) = &greeted {
                    if let Some(worker) = slot.take() {
                        worker.end().await;
                    }
                    self.logs.agent_line(reason.clone());
                }
                greeted
            })
            .await
            .clone()
    }

    async fn invoke(&self, call: &Call, mut cancelled: Cancelled) -> CallResult {
        let language = self.language.as_str();
        note_files(&self.logs, call);
        let deadline = Deadline::parse(&call.deadline).instant();
        tokio::select! {
            biased;
            ready = self.ready() => if let Err(reason) = ready {
                return CallResult::crash(reason);
            },
            () = cancelled.aborted() => return CallResult::crash(CANCELLED),
            () = tokio::time::sleep_until(deadline) => return CallResult::timeout(format!(
                "the {language} worker had not loaded the handler yet at the call's deadline ({})",
                call.deadline
            )),
        }
        let split = envelope::split(&call.input, &call.deadline);
        let mut slot = tokio::select! {
            slot = self.worker.lock() => slot,
            () = cancelled.aborted() => return CallResult::crash(CANCELLED),
            () = tokio::time::sleep_until(deadline) => return CallResult::timeout(format!(
                "the call was still waiting for the previous call to finish at its deadline ({}); the worker takes one call at a time",
                call.deadline
            )),
        };
        if let Some(ended) = slot.as_ref().and_then(Worker::ended) {
            self.logs.agent_line(format!(
                "the {language} worker ended between calls ({}); a fresh one takes this call",
                ended.describe()
            ));
            if let Some(old) = slot.take() {
                old.end().await;
            }
        }
        if slot.is_none() {
            match self.spawn() {
                Ok(worker) => *slot = Some(worker),
                Err(reason) => return CallResult::crash(reason),
            }
        }
        let Some(worker) = slot.as_mut() else {
            return CallResult::crash(format!("the {language} worker is gone"));
        };
        if !worker.greeted {
            // A fresh worker: it may still be loading the handler (it stays if this call ends
            // first, and goes on loading for the next one).
            let greeted = tokio::select! {
                biased;
                greeted = worker.greet(language) => greeted,
                () = cancelled.aborted() => return CallResult::crash(CANCELLED),
                () = tokio::time::sleep_until(deadline) => return CallResult::timeout(format!(
                    "the fresh {language} worker had not loaded the handler yet at the call's deadline ({})",
                    call.deadline
                )),
            };
            if let Err(reason) = greeted {
                if let Some(worker) = slot.take() {
                    worker.end().await;
                }
                return CallResult::crash(reason);
            }
        }
        let ran = tokio::select! {
            // An answer that is there is taken, even at the deadline.
            biased;
            outcome = worker.call(&call.aid, |id| split.request_line(id)) => Ran::Done(outcome),
            () = cancelled.aborted() => Ran::Aborted,
            () = tokio::time::sleep_until(deadline) => Ran::TimedOut,
        };
        let result = match ran {
            Ran::Done(Outcome::Answered(answer)) => return answer.into_result(),
            Ran::Done(Outcome::Died(how)) => CallResult::crash(format!(
                "call aborted: the {language} worker died during the call ({how}); a fresh worker takes the next call"
            )),
            Ran::Done(Outcome::TooLarge(limit)) => CallResult::error(
                CODE_FUNCTION_ERROR,
                format!("the handler's result is larger than {limit} bytes"),
            ),
            Ran::Done(Outcome::Broken(reason)) => CallResult::crash(format!(
                "the {language} worker failed: {reason}; a fresh worker takes the next call"
            )),
            Ran::TimedOut => CallResult::timeout(format!(
                "the handler was still running at the call's deadline ({}); its {language} worker was killed and a fresh one takes the next call",
                call.deadline
            )),
            Ran::Aborted => CallResult::crash(CANCELLED),
        };
        // The worker is in an unknown state: it goes (its last lines still go to this call),
        // and a fresh one starts loading the handler now.
        if let Some(worker) = slot.take() {
            worker.end().await;
        }
        match self.spawn() {
            Ok(worker) => *slot = Some(worker),
            Err(reason) => self.logs.agent_line(reason),
        }
        result
    }
}

/// Says in the call's log that its files (a flow action's `files`) are not placed: a function
/// built from code takes JSON only.
fn note_files(logs: &LogHub, call: &Call) {
    if !call.files.is_empty() {
        logs.call_line(
            Some(&call.aid),
            LogStream::Agent,
            format!(
                "the call's {} file(s) are not placed: a function built from code takes its input as JSON only",
                call.files.len()
            ),
        );
    }
}

/// The interpreter of `language`: `python3`; `node`, or `nodejs` when only that is on the PATH.
fn interpreter(language: Language) -> String {
    match language {
        Language::Nodejs if !on_path("node") && on_path("nodejs") => "nodejs".to_owned(),
        Language::Nodejs => "node".to_owned(),
        _ => "python3".to_owned(),
    }
}

/// Whether an executable `name` is in one of the directories of the agent's (the container's)
/// `PATH`.
fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(name))
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// What the shim writes, followed by the call's id, to end a call's output: unlikely in any
/// output (it starts with the ASCII record separator) and different for every agent.
fn marker() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "\u{1e}faasbox-end-of-call-{:x}{:x}-",
        nanos,
        std::process::id()
    )
}

/// Writes the shim of `language` into `<temp_root>/faasbox+code/` (a directory of root's that
/// everyone may read, so the function cannot change the shim of the next worker).
fn write_shim(temp_root: &Path, language: Language) -> io::Result<PathBuf> {
    let (name, text) = match language {
        Language::Nodejs => ("shim.js", SHIM_JS),
        _ => ("shim.py", SHIM_PY),
    };
    let dir = temp_root.join(SHIM_DIR);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let path = dir.join(name);
    std::fs::write(&path, text)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(path)
}
