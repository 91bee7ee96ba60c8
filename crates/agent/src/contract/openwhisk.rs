//! The OpenWhisk contract: the agent is the docker skeleton's action proxy.
//!
//! Besides `/v1/*`, the agent's socket serves OpenWhisk's own `POST /init` and `POST /run`
//! ([`routes`]) with the statuses, bodies and stdout/stderr of OpenWhisk's Python proxy
//! (`core/actionProxy/actionproxy.py` of openwhisk-runtime-docker):
//!
//! | request | answer |
//! |---|---|
//! | `/init`, already initialised | 403 `{"error":"Cannot initialize the action more than once."}` (the message on stderr too; `PROXY_ALLOW_REINIT=1` allows it) |
//! | `/init` or `/run` whose body (or `value`) has the wrong type | 404 (`/run`: `{"error":"The action did not receive a dictionary or array as an argument."}`) |
//! | `/init`, nothing executable afterwards | 502 `{"error":"The action failed to generate or locate a binary. See logs for details."}` |
//! | `/init`, fine | 200 `OK` |
//! | `/run`, nothing to run | 502 `{"error":"The action failed to locate a binary. See logs for details."}` |
//! | `/run`, last stdout line not an object or array | 502 `{"error":"The action did not return a dictionary or array."}` |
//! | `/run`, fine | 200 with the action's result |
//!
//! [`install`] and [`action`] describe what `/init` and `/run` do. Every answer to `/run` (and a
//! failed `/init`) is followed by the line [`SENTINEL`] on the agent's own stdout and on its
//! stderr, after the action's log lines, exactly as OpenWhisk's proxy prints them; the platform
//! keeps the agent's stdio as the instance's log.
//!
//! When the config has `openwhisk` code, the agent runs that `/init` itself at start, as
//! OpenWhisk's invoker does before an action's first run; ready fails (with the init's error)
//! while there is no executable `<action dir>/exec`. With no code and no `exec` there is nothing
//! an init could install: ready fails with the proxy's init error [`ERR_INIT_FAILED`] ("The
//! action failed to generate or locate a binary. See logs for details."), while the proxy's own
//! routes stay uninitialised. A blackbox image that ships its own `exec` needs no init (and may
//! still get one through `/init`).
//!
//! `/v1/invoke` is a `/run` with the input as `value` and the keys OpenWhisk's invoker sends:
//! `namespace`, `action_name` (`/<namespace>/<function>`), `action_version` (`0.0.<deploys>`:
//! OpenWhisk creates an action as 0.0.1 and bumps the patch on each update), `activation_id`
//! and `transaction_id` (the action id, 32 hex digits), `deadline` (milliseconds since the
//! epoch). No `api_key`: OpenWhisk sends one only to actions annotated `provide-api-key`, and
//! faasbox has no OpenWhisk API to give a key for, so `__OW_API_KEY` is not set (nor
//! `__OW_API_HOST`, a container variable OpenWhisk points at its API). A result is the output; any other
//! answer is the catchable [`CODE_CONTAINER_FAILED`] with the message
//! `action answered HTTP <status>: <OpenWhisk's error>`. The action's log lines and the sentinels
//! are attached to the call too. A call that brings files (a flow action's `files`) gets them
//! in its own directory `<temp_root>/<aid>`, named by the activation's `DIREKTIV_TEMPDIR`, and
//! removed after the run. Past the call's deadline the action's process group is killed
//! and the call ends as a timeout ([`CallResult::timeout`]); a cancel kills it the same way (a
//! crash "cancelled").
//!
//! Like OpenWhisk's proxy, one thing happens at a time: inits and runs wait for each other.

pub mod action;
pub mod install;
pub mod message;
pub mod routes;
mod unzip;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use faasbox_proto::{LogStream, ProcessUser, CODE_CONTAINER_FAILED};
use hyper::StatusCode;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

use super::child;
use super::deadline::Deadline;
use super::disk::Disk;
use super::temp_dir::{CallDir, CallRoot};
use super::{Call, CallResult, Shared, CANCELLED, TEMP_DIR_ENV};
use crate::calls::Cancelled;
use crate::logs::LogHub;
use crate::reaper::Reaper;
use action::{Activation, Interrupted};
use message::RunRequest;

/// Ends every activation on the proxy's stdout and stderr.
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
/// A second `/init` (403).
pub const ERR_REINIT: &str = "Cannot initialize the action more than once.";
/// An `/init` after which there is nothing to run (502).
pub const ERR_INIT_FAILED: &str =
    "The action failed to generate or locate a binary. See logs for details.";
/// A `/run` with nothing to run (502).
pub const ERR_NO_BINARY: &str = "The action failed to locate a binary. See logs for details.";
/// A result that is not a JSON object or array (502).
pub const ERR_NOT_DICT_RESULT: &str = "The action did not return a dictionary or array.";
/// A `/run` argument that is not a JSON object or array (404).
pub const ERR_NOT_DICT_ARG: &str =
    "The action did not receive a dictionary or array as an argument.";

/// The environment variable that allows a second `/init`, as in OpenWhisk.
const ALLOW_REINIT_ENV: &str = "PROXY_ALLOW_REINIT";

/// An answer of the proxy, with what it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    /// JSON, except the `OK` of a successful init.
    pub body: String,
    pub json: bool,
    /// Lines for the proxy's stdout (stream stdout) and stderr (any other stream).
    pub lines: Vec<(LogStream, String)>,
    /// Whether [`SENTINEL`] ends stdout and stderr after this answer.
    pub sentinel: bool,
}

impl Answer {
    /// A JSON answer ending an activation.
    pub fn json(status: StatusCode, body: String, lines: Vec<(LogStream, String)>) -> Answer {
        Answer {
            status,
            body,
            json: true,
            lines,
            sentinel: true,
        }
    }

    /// `{"error": message}`, ending an activation.
    pub fn error(status: StatusCode, message: &str, lines: Vec<(LogStream, String)>) -> Answer {
        let body = serde_json::json!({ "error": message }).to_string();
        Answer::json(status, body, lines)
    }

    fn without_sentinel(mut self) -> Answer {
        self.sentinel = false;
        self
    }

    fn init_ok(lines: Vec<(LogStream, String)>) -> Answer {
        Answer {
            status: StatusCode::OK,
            body: "OK".into(),
            json: false,
            lines,
            sentinel: false,
        }
    }

    /// The `error` of a JSON error answer.
    fn error_text(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| self.body.clone())
    }
}

/// What the proxy remembers between requests.
#[derive(Debug, Default)]
struct ProxyState {
    initialized: bool,
    /// The init's `env`.
    env: Vec<(String, String)>,
}

/// The openwhisk contract of one instance.
#[derive(Debug)]
pub struct OpenWhiskContract {
    action_dir: PathBuf,
    /// Parent of the directories of calls that bring files.
    temp_root: CallRoot,
    user: Option<ProcessUser>,
    function: String,
    /// OpenWhisk's `action_version` of this function.
    action_version: String,
    logs: Arc<LogHub>,
    reaper: Arc<Reaper>,
    reject_reinit: bool,
    /// The error of the init the agent ran at start, when it failed.
    startup_failure: Option<String>,
    /// One init or run at a time.
    proxy: Mutex<ProxyState>,
    /// The instance's disk (the action and the temp dirs are on it).
    disk: Disk,
}

impl OpenWhiskContract {
    /// Runs the config's init, if it has one.
    pub async fn start(shared: &Shared) -> OpenWhiskContract {
        let temp_root = CallRoot::new(&shared.config.temp_root);
        let mut contract = OpenWhiskContract {
            action_dir: shared.action_dir.clone(),
            temp_root: temp_root.clone(),
            user: shared.config.user.clone(),
            function: shared.config.function.clone(),
            action_version: format!("0.0.{}", shared.config.function_version),
            logs: Arc::clone(&shared.logs),
            reaper: Arc::clone(&shared.reaper),
            reject_reinit: std::env::var(ALLOW_REINIT_ENV).map_or(true, |v| v != "1"),
            startup_failure: None,
            proxy: Mutex::new(ProxyState::default()),
            disk: Disk::new(&temp_root, shared.config.disk_limit_bytes),
        };
        let Some(init) = &shared.config.openwhisk else {
            if !install::verify(&contract.action_dir) {
                // OpenWhisk's invoker initialises every action before its first run; with no
                // code and no executable the proxy fails that init with these words. The
                // proxy's own routes stay uninitialised (an `/init` with code still works).
                contract.logs.agent_line(format!(
                    "no OpenWhisk code was given and {} is not an executable file: {ERR_INIT_FAILED}",
                    contract.action_dir.join(install::EXEC).display()
                ));
                contract.startup_failure = Some(ERR_INIT_FAILED.to_owned());
            }
            return contract;
        };
        let value = match serde_json::to_value(init) {
            Ok(Value::Object(value)) => value,
            _ => Map::new(),
        };
        let answer = {
            let mut state = contract.proxy.lock().await;
            contract.init_value(&mut state, value).await
        };
        print(&answer);
        for (stream, line) in &answer.lines {
            contract.logs.instance_line(*stream, line.clone());
        }
        if answer.status != StatusCode::OK {
            let error = answer.error_text();
            contract
                .logs
                .agent_line(format!("the OpenWhisk init at start failed: {error}"));
            contract.startup_failure = Some(error);
        }
        contract
    }

    /// Ready while there is an action to run.
    pub fn ready(&self) -> Result<(), String> {
        if install::verify(&self.action_dir) {
            Ok(())
        } else {
            Err(self
                .startup_failure
                .clone()
                .unwrap_or_else(|| ERR_NO_BINARY.to_owned()))
        }
    }

    /// OpenWhisk's `POST /init`.
    pub async fn init(&self, body: &[u8]) -> Answer {
        let mut state = self.proxy.lock().await;
        let answer = if self.reject_reinit && state.initialized {
            Answer::error(
                StatusCode::FORBIDDEN,
                ERR_REINIT,
                vec![(LogStream::Stderr, ERR_REINIT.to_owned())],
            )
            .without_sentinel()
        } else {
            match message::init_value(body) {
                Some(value) => self.init_value(&mut state, value).await,
                None => {
                    Answer::error(StatusCode::NOT_FOUND, "Not Found", Vec::new()).without_sentinel()
                }
            }
        };
        print(&answer);
        answer
    }

    /// OpenWhisk's `POST /run`.
    pub async fn run(&self, body: &[u8]) -> Answer {
        let state = self.proxy.lock().await;
        let answer = match message::run_request(body) {
            Some(request) => {
                self.activate(
                    &state,
                    &request,
                    Deadline::none().instant(),
                    Cancelled::never(),
                )
                .await
                .answer
            }
            None => Answer::error(StatusCode::NOT_FOUND, ERR_NOT_DICT_ARG, Vec::new()),
        };
        print(&answer);
        answer
    }

    /// A platform call: a `/run` with the input as its value.
    pub async fn invoke(&self, call: &Call, mut cancelled: Cancelled) -> CallResult {
        let deadline = Deadline::parse(&call.deadline);
        let state: MutexGuard<'_, ProxyState> = tokio::select! {
            state = self.proxy.lock() => state,
            () = cancelled.aborted() => return CallResult::crash(CANCELLED),
            () = tokio::time::sleep_until(deadline.instant()) => {
                return CallResult::timeout(format!(
                    "the call was still waiting for the previous activation to finish at its deadline ({})",
                    call.deadline
                ))
            }
        };
        let files_dir = if call.files.is_empty() {
            None
        } else {
            match CallDir::prepare(&self.temp_root, &call.aid, &call.files, self.user.as_ref())
                .await
            {
                Ok(dir) => Some(dir),
                Err(failed) => return self.disk.verdict(failed),
            }
        };
        let (answer, interrupted) = match self.platform_request(call, deadline) {
            Some(mut request) => {
                if let Some(dir) = &files_dir {
                    let path = dir.path().to_string_lossy().into_owned();
                    request.env.push((TEMP_DIR_ENV.to_owned(), path));
                }
                let ran = self
                    .activate(&state, &request, deadline.instant(), cancelled)
                    .await;
                (ran.answer, ran.interrupted)
            }
            None => (
                Answer::error(StatusCode::NOT_FOUND, ERR_NOT_DICT_ARG, Vec::new()),
                None,
            ),
        };
        print(&answer);
        for (stream, line) in &answer.lines {
            self.logs.call_line(Some(&call.aid), *stream, line.clone());
        }
        if answer.sentinel {
            for stream in [LogStream::Stdout, LogStream::Stderr] {
                self.logs
                    .call_line(Some(&call.aid), stream, SENTINEL.to_owned());
            }
        }
        drop(state);
        // Before the temp dir goes: what filled the disk may be in it.
        let full = self.disk.is_full();
        if let Some(dir) = files_dir {
            dir.remove().await;
        }
        if full && !matches!(interrupted, Some(Interrupted::Aborted)) {
            return self.disk.full_error();
        }
        match interrupted {
            Some(Interrupted::TimedOut) => CallResult::timeout(format!(
                "the action was still running at the call's deadline ({}); it was killed",
                call.deadline
            )),
            Some(Interrupted::Aborted) => CallResult::crash(CANCELLED),
            None if answer.status == StatusCode::OK => match RawValue::from_string(answer.body) {
                Ok(output) => CallResult::ok(output),
                Err(err) => CallResult::crash(format!("the action's result is not JSON: {err}")),
            },
            None => CallResult::error(
                CODE_CONTAINER_FAILED,
                format!(
                    "action answered HTTP {}: {}",
                    answer.status.as_u16(),
                    answer.error_text()
                ),
            ),
        }
    }

    /// The `/run` a platform call stands for; `None` when its input is not an object or array.
    fn platform_request(&self, call: &Call, deadline: Deadline) -> Option<RunRequest> {
        let args = if call.input.iter().all(u8::is_ascii_whitespace) {
            "{}".to_owned()
        } else {
            let raw: &RawValue = serde_json::from_slice(&call.input).ok()?;
            if !message::is_object_or_array(raw) {
                return None;
            }
            message::compact(raw.get())
        };
        let namespace = self
            .function
            .split_once('/')
            .map_or("", |(namespace, _)| namespace);
        let action_name = if self.function.is_empty() {
            String::new()
        } else {
            format!("/{}", self.function)
        };
        let env = [
            ("namespace", namespace.to_owned()),
            ("action_name", action_name),
            ("action_version", self.action_version.clone()),
            ("activation_id", call.aid.clone()),
            ("transaction_id", call.aid.clone()),
            ("deadline", deadline.epoch_ms().to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (format!("__OW_{}", key.to_uppercase()), value))
        .collect();
        Some(RunRequest { args, env })
    }

    /// Installs an init's code and checks there is something to run.
    async fn init_value(&self, state: &mut ProxyState, value: Map<String, Value>) -> Answer {
        let dir = self.action_dir.clone();
        let env = install::init_env(&value);
        let installed = tokio::task::spawn_blocking(move || install::install(&dir, &value))
            .await
            .unwrap_or_else(|e| Err(format!("installing the code failed: {e}")));
        let (prepared, mut lines) = match installed {
            Ok(installed) => (installed.prepared, installed.lines),
            Err(reason) => {
                return Answer::error(
                    StatusCode::BAD_GATEWAY,
                    ERR_INIT_FAILED,
                    vec![(LogStream::Agent, reason)],
                )
            }
        };
        if install::verify(&self.action_dir) {
            state.initialized = true;
            state.env = env;
            return Answer::init_ok(lines);
        }
        let exec = self.action_dir.join(install::EXEC);
        let why = if prepared {
            format!("{} is not an executable file", exec.display())
        } else {
            format!(
                "no code was installed and {} is not an executable file",
                exec.display()
            )
        };
        lines.push((LogStream::Agent, why));
        Answer::error(StatusCode::BAD_GATEWAY, ERR_INIT_FAILED, lines)
    }

    /// Runs the action for one activation.
    async fn activate(
        &self,
        state: &ProxyState,
        request: &RunRequest,
        deadline: tokio::time::Instant,
        cancelled: Cancelled,
    ) -> action::Ran {
        if !install::verify(&self.action_dir) {
            return action::Ran {
                answer: Answer::error(StatusCode::BAD_GATEWAY, ERR_NO_BINARY, Vec::new()),
                interrupted: None,
            };
        }
        let variables = state
            .env
            .iter()
            .chain(request.env.iter())
            .filter(|(name, value)| usable_variable(name, value))
            .map(|(name, value)| (OsString::from(name), OsString::from(value)));
        let activation = Activation {
            dir: &self.action_dir,
            user: self.user.as_ref(),
            args: &request.args,
            env: child::merge_env(child::container_env(), variables),
        };
        action::run(activation, &self.reaper, deadline, cancelled).await
    }
}

/// Whether a name and value can be an environment variable.
fn usable_variable(name: &str, value: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0']) && !value.contains('\0')
}

/// Prints an answer's lines (and the sentinels) on the agent's stdout and stderr.
fn print(answer: &Answer) {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    for (stream, line) in &answer.lines {
        let _ = match stream {
            LogStream::Stdout | LogStream::Function => writeln!(out, "{line}"),
            LogStream::Stderr | LogStream::Agent => writeln!(err, "{line}"),
        };
    }
    if answer.sentinel {
        let _ = writeln!(out, "{SENTINEL}");
        let _ = writeln!(err, "{SENTINEL}");
    }
    let _ = out.flush();
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers() {
        let answer = Answer::error(StatusCode::BAD_GATEWAY, ERR_NOT_DICT_RESULT, Vec::new());
        assert_eq!(
            answer.body,
            r#"{"error":"The action did not return a dictionary or array."}"#
        );
        assert_eq!(answer.error_text(), ERR_NOT_DICT_RESULT);
        assert!(answer.sentinel && answer.json);
    }

    #[test]
    fn variables() {
        assert!(usable_variable("__OW_X", "a b"));
        assert!(!usable_variable("", "x"));
        assert!(!usable_variable("A=B", "x"));
        assert!(!usable_variable("A", "x\0y"));
    }
}
