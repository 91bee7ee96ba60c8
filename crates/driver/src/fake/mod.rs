//! A [`Driver`] that runs no containers: each "instance" is an in-process agent stand-in
//! serving the agent protocol on a Unix socket in a temporary directory (or, made with
//! [`FakeDriver::over_tcp`], on a loopback TCP port behind a per-instance secret), so that the real
//! [`crate::AgentClient`] talks to it. For fast tests of what sits on top of a driver (the
//! server's pool and invoker) without root, runc or images.
//!
//! What a stand-in does with a call is programmed through a [`FakeBehaviour`] (shared, so a
//! test may change it while instances run), and the driver records what happened
//! ([`FakeRecord`]: instances started and stopped, calls, cancels) for assertions;
//! [`FakeDriver::wait_until`] waits for a recorded event with a deadline.

pub mod protocol;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use faasbox_proto::{
    AgentEndpoint, CancelReport, InvokeOutcome, InvokeStatus, LogStream, ReadyReport,
};
use serde_json::value::RawValue;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use self::protocol::{agent_line, now_ms, AgentHandler, InvokeRequest};
use crate::agent_client::AgentClient;
use crate::driver::{CleanupReport, Driver, ImageRef, Instance, InstanceSpec, RuntimeClass};
use crate::error::DriverError;

/// What a stand-in answers to `POST /v1/invoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FakeReply {
    /// The input back as output (a non-JSON input as a JSON string).
    #[default]
    Echo,
    /// Echo once [`FakeDriver::release`] let the call go. A cancel of the call ends it first
    /// (as a crash "cancelled"), and so does its deadline (as a timeout), like the real agent.
    Hold,
    /// Echo after this long; a cancel or the call's deadline ends it first, as for `Hold`.
    Sleep(Duration),
    /// A catchable error with this code and message.
    Fail {
        /// The error code, e.g. `app.bad_input`.
        code: String,
        /// The error message.
        message: String,
    },
    /// The agent dies: this and every later request of the instance are hung up on.
    Crash,
    /// Never answer (nor to cancels of it); only stopping the instance ends the call.
    Hang,
}

#[derive(Debug, Default)]
struct Settings {
    reply: FakeReply,
    fail_start: Option<String>,
    fail_ready: Option<String>,
}

/// How the stand-ins of a [`FakeDriver`] behave. Clones share the settings: a test keeps one
/// and changes it while the driver runs.
#[derive(Debug, Clone, Default)]
pub struct FakeBehaviour(Arc<Mutex<Settings>>);

impl FakeBehaviour {
    /// Stand-ins that echo every call.
    pub fn echo() -> Self {
        Self::default()
    }

    /// Stand-ins that answer every call with `reply`.
    pub fn replying(reply: FakeReply) -> Self {
        let behaviour = Self::default();
        behaviour.set_reply(reply);
        behaviour
    }

    /// What calls get from now on (calls already running keep theirs).
    pub fn set_reply(&self, reply: FakeReply) {
        self.lock().reply = reply;
    }

    /// From now on `start` fails with this message before any instance exists (`None`: starts
    /// succeed again).
    pub fn set_fail_start(&self, message: Option<&str>) {
        self.lock().fail_start = message.map(str::to_string);
    }

    /// From now on new instances report not ready with this error, so `start` fails with
    /// [`DriverError::NotReady`] (`None`: they become ready again).
    pub fn set_fail_ready(&self, message: Option<&str>) {
        self.lock().fail_ready = message.map(str::to_string);
    }

    fn lock(&self) -> MutexGuard<'_, Settings> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One call a stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeInvoke {
    /// The id of the instance that received it.
    pub instance: String,
    /// The call's action id.
    pub action_id: String,
    /// The deadline header as sent (`Hold` and `Sleep` calls end with a timeout there).
    pub deadline: String,
}

/// One cancel a stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCancel {
    /// The id of the instance that received it.
    pub instance: String,
    /// The action id of the call to cancel.
    pub action_id: String,
}

/// What happened so far, in order.
#[derive(Debug, Clone, Default)]
pub struct FakeRecord {
    /// Calls of [`Driver::start`], failed ones included.
    pub start_attempts: usize,
    /// Ids of the instances that started (became ready).
    pub started: Vec<String>,
    /// Ids of the instances stopped (each once, however often `stop` was called).
    pub stopped: Vec<String>,
    /// Calls received.
    pub invokes: Vec<FakeInvoke>,
    /// Calls being answered right now.
    pub in_flight: usize,
    /// Calls answered (crashed and hung-up ones not).
    pub answered: usize,
    /// Cancels received.
    pub cancels: Vec<FakeCancel>,
    /// Calls of [`Driver::cleanup_leftovers`].
    pub cleanups: usize,
}

impl FakeRecord {
    /// The instances started and not stopped, oldest first.
    pub fn running(&self) -> Vec<String> {
        self.started
            .iter()
            .filter(|id| !self.stopped.contains(id))
            .cloned()
            .collect()
    }
}

/// State shared by the driver and its stand-ins.
struct Shared {
    behaviour: FakeBehaviour,
    record: Mutex<FakeRecord>,
    /// Notified on every change of the record.
    changed: Notify,
    /// Permits for [`FakeReply::Hold`] calls.
    gate: Semaphore,
    oom: Mutex<HashSet<String>>,
}

impl Shared {
    fn update<T>(&self, change: impl FnOnce(&mut FakeRecord) -> T) -> T {
        let result = change(&mut self.record.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_waiters();
        result
    }
}

struct Running {
    task: JoinHandle<()>,
    /// `None` for a stand-in on TCP.
    socket: Option<PathBuf>,
}

/// The fake driver; see the module documentation.
pub struct FakeDriver {
    shared: Arc<Shared>,
    instances: Mutex<HashMap<String, Running>>,
    next_id: AtomicU64,
    dir: tempfile::TempDir,
    /// Serve on TCP with a secret instead of on a Unix socket.
    tcp: bool,
}

impl FakeDriver {
    /// A driver whose stand-ins behave as `behaviour` says; their sockets live in a new
    /// temporary directory, removed with the driver.
    pub fn new(behaviour: FakeBehaviour) -> Result<Self, DriverError> {
        let dir = tempfile::Builder::new()
            .prefix("faasbox-fake-")
            .tempdir()
            .map_err(|e| DriverError::io("creating the fake driver's temporary directory", e))?;
        Ok(FakeDriver {
            shared: Arc::new(Shared {
                behaviour,
                record: Mutex::default(),
                changed: Notify::new(),
                gate: Semaphore::new(0),
                oom: Mutex::default(),
            }),
            instances: Mutex::default(),
            next_id: AtomicU64::new(1),
            dir,
            tcp: false,
        })
    }

    /// A driver like [`FakeDriver::new`] whose stand-ins serve on `127.0.0.1` TCP ports, each
    /// behind its own secret (401 without it), as an agent a non-runc driver starts would.
    pub fn over_tcp(behaviour: FakeBehaviour) -> Result<Self, DriverError> {
        let mut driver = Self::new(behaviour)?;
        driver.tcp = true;
        Ok(driver)
    }

    /// The behaviour the stand-ins follow (a handle to change it).
    pub fn behaviour(&self) -> &FakeBehaviour {
        &self.shared.behaviour
    }

    /// A copy of the record as it is now.
    pub fn record(&self) -> FakeRecord {
        self.shared
            .record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until `condition` holds for the record and returns that record; panics with
    /// `what` and the last record when it did not within `within` (a test helper).
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        mut condition: impl FnMut(&FakeRecord) -> bool,
    ) -> FakeRecord {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let record = self.record();
            if condition(&record) {
                return record;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("waited {within:?} for {what}, in vain; last record: {record:#?}");
            }
        }
    }

    /// Lets `calls` held calls ([`FakeReply::Hold`]) answer, now or as soon as they arrive.
    pub fn release(&self, calls: usize) {
        self.shared.gate.add_permits(calls);
    }

    /// Makes [`Driver::oom_killed`] true for instance `id` (until it is stopped).
    pub fn mark_oom_killed(&self, id: &str) {
        self.lock_oom().insert(id.to_string());
    }

    fn lock_oom(&self) -> MutexGuard<'_, HashSet<String>> {
        self.shared.oom.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_instances(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends an instance's stand-in (and every call it was answering); whether it was running.
    fn end(&self, id: &str) -> bool {
        let Some(running) = self.lock_instances().remove(id) else {
            return false;
        };
        running.task.abort();
        if let Some(socket) = &running.socket {
            let _ = std::fs::remove_file(socket);
        }
        true
    }
}

impl Drop for FakeDriver {
    fn drop(&mut self) {
        for (_, running) in self.lock_instances().drain() {
            running.task.abort();
        }
    }
}

#[async_trait]
impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn start(&self, spec: InstanceSpec) -> Result<Instance, DriverError> {
        self.shared.update(|r| r.start_attempts += 1);
        if let Some(message) = self.shared.behaviour.lock().fail_start.clone() {
            return Err(DriverError::Runtime {
                command: "fake start".into(),
                message,
            });
        }
        let runtime = spec.runtime;
        let id = format!("fake-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let stand_in = Arc::new(StandIn {
            id: id.clone(),
            shared: self.shared.clone(),
            crashed: AtomicBool::new(false),
            cancelled: Mutex::default(),
        });
        let (endpoint, task, socket) = if self.tcp {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| DriverError::io("binding a loopback TCP port", e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| DriverError::io("reading the bound TCP address", e))?;
            let secret = faasbox_proto::AgentSecret::new(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ));
            let task = tokio::spawn(protocol::serve_tcp(listener, secret.clone(), stand_in));
            (AgentEndpoint::Tcp { addr, secret }, task, None)
        } else {
            let socket = self.dir.path().join(format!("{id}.sock"));
            let listener = tokio::net::UnixListener::bind(&socket)
                .map_err(|e| DriverError::io(format!("binding {}", socket.display()), e))?;
            let task = tokio::spawn(protocol::serve(listener, stand_in));
            (AgentEndpoint::Unix(socket.clone()), task, Some(socket))
        };
        self.lock_instances()
            .insert(id.clone(), Running { task, socket });
        let report = AgentClient::at(endpoint.clone()).ready().await;
        match report {
            Ok(report) if report.ready => {}
            other => {
                self.end(&id);
                let reason = match other {
                    Ok(report) => format!(": {}", report.error.unwrap_or_default()),
                    Err(e) => format!(": {e}"),
                };
                return Err(DriverError::NotReady {
                    function: spec.function,
                    reason,
                    details: String::new(),
                });
            }
        }
        self.shared.update(|r| r.started.push(id.clone()));
        Ok(Instance {
            id,
            endpoint,
            runtime,
        })
    }

    async fn stop(&self, id: &str) -> Result<(), DriverError> {
        if self.end(id) {
            self.lock_oom().remove(id);
            self.shared.update(|r| r.stopped.push(id.to_string()));
        }
        Ok(())
    }

    async fn oom_killed(&self, id: &str) -> bool {
        self.lock_oom().contains(id)
    }

    async fn cleanup_leftovers(&self) -> Result<CleanupReport, DriverError> {
        self.shared.update(|r| r.cleanups += 1);
        Ok(CleanupReport::default())
    }

    async fn stop_all(&self) -> Result<(), DriverError> {
        let ids: Vec<String> = self.lock_instances().keys().cloned().collect();
        for id in ids {
            self.stop(&id).await?;
        }
        Ok(())
    }
}

/// The agent stand-in of one instance.
struct StandIn {
    id: String,
    shared: Arc<Shared>,
    crashed: AtomicBool,
    /// Action ids cancelled while their call ran, each with what wakes that call.
    cancelled: Mutex<HashMap<String, Arc<Notify>>>,
}

impl StandIn {
    fn cancel_signal(&self, action_id: &str) -> Arc<Notify> {
        self.cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(action_id.to_string())
            .or_default()
            .clone()
    }
}

/// A call's `in_flight` count, taken back however the call ends (also when the stand-in is
/// stopped under it).
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.update(|r| r.in_flight -= 1);
    }
}

#[async_trait]
impl AgentHandler for StandIn {
    async fn ready(&self) -> Option<ReadyReport> {
        if self.crashed.load(Ordering::SeqCst) {
            return None;
        }
        let error = self.shared.behaviour.lock().fail_ready.clone();
        Some(ReadyReport {
            ready: error.is_none(),
            logs: match &error {
                Some(_) => vec![faasbox_proto::LogLine {
                    ts_ms: now_ms(),
                    stream: LogStream::Stderr,
                    line: "fake function: cannot start".into(),
                }],
                None => Vec::new(),
            },
            error,
        })
    }

    async fn invoke(&self, call: InvokeRequest) -> Option<InvokeOutcome> {
        if self.crashed.load(Ordering::SeqCst) {
            return None;
        }
        let reply = self.shared.behaviour.lock().reply.clone();
        let cancel = self.cancel_signal(&call.action_id);
        let cancelled = cancel.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        self.shared.update(|r| {
            r.in_flight += 1;
            r.invokes.push(FakeInvoke {
                instance: self.id.clone(),
                action_id: call.action_id.clone(),
                deadline: call.deadline.clone(),
            });
        });
        let in_flight = InFlight(&self.shared);
        let logs = vec![agent_line(format!(
            "aid={} deadline={}",
            call.action_id, call.deadline
        ))];
        let outcome = |status, output, code, message| InvokeOutcome {
            status,
            output,
            code,
            message,
            logs: logs.clone(),
        };
        let cancelled_outcome = || {
            outcome(
                InvokeStatus::Crash,
                None,
                None,
                Some("cancelled".to_string()),
            )
        };
        let timed_out = || {
            outcome(
                InvokeStatus::Timeout,
                None,
                None,
                Some("the call's deadline passed".to_string()),
            )
        };
        let deadline = until_deadline(&call.deadline);
        let answer = match reply {
            FakeReply::Echo => Some(outcome(InvokeStatus::Ok, echo(&call.input), None, None)),
            FakeReply::Hold => tokio::select! {
                permit = self.shared.gate.acquire() => {
                    if let Ok(permit) = permit {
                        permit.forget();
                    }
                    Some(outcome(InvokeStatus::Ok, echo(&call.input), None, None))
                }
                () = &mut cancelled => Some(cancelled_outcome()),
                () = deadline => Some(timed_out()),
            },
            FakeReply::Sleep(time) => tokio::select! {
                () = tokio::time::sleep(time) => {
                    Some(outcome(InvokeStatus::Ok, echo(&call.input), None, None))
                }
                () = &mut cancelled => Some(cancelled_outcome()),
                () = deadline => Some(timed_out()),
            },
            FakeReply::Fail { code, message } => Some(outcome(
                InvokeStatus::Error,
                None,
                Some(code),
                Some(message),
            )),
            FakeReply::Crash => {
                self.crashed.store(true, Ordering::SeqCst);
                None
            }
            FakeReply::Hang => std::future::pending().await,
        };
        self.cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&call.action_id);
        if answer.is_some() {
            self.shared.update(|r| r.answered += 1);
        }
        drop(in_flight);
        answer
    }

    async fn cancel(&self, action_id: &str) -> Option<CancelReport> {
        if self.crashed.load(Ordering::SeqCst) {
            return None;
        }
        self.shared.update(|r| {
            r.cancels.push(FakeCancel {
                instance: self.id.clone(),
                action_id: action_id.to_string(),
            })
        });
        let running = self
            .cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(action_id)
            .cloned();
        if let Some(signal) = running {
            signal.notify_one();
        }
        Some(CancelReport::default())
    }
}

/// Ends when the RFC 3339 `deadline` passes; never when there is none (or it does not parse).
async fn until_deadline(deadline: &str) {
    let parsed =
        time::OffsetDateTime::parse(deadline, &time::format_description::well_known::Rfc3339);
    match parsed {
        Ok(at) => {
            let left = at - time::OffsetDateTime::now_utc();
            let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
            tokio::time::sleep(left).await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// The input as the output JSON: JSON as it is, anything else as a JSON string.
pub fn echo(input: &[u8]) -> Option<Box<RawValue>> {
    match serde_json::from_slice::<&RawValue>(input) {
        Ok(raw) => Some(raw.to_owned()),
        Err(_) => RawValue::from_string(
            serde_json::Value::String(String::from_utf8_lossy(input).into_owned()).to_string(),
        )
        .ok(),
    }
}

/// A spec the fake driver accepts: function `function`, an image it does not look at, the http
/// contract.
pub fn spec(function: &str) -> InstanceSpec {
    InstanceSpec {
        function: function.to_string(),
        image: ImageRef {
            name: "fake".into(),
            digest: format!("sha256:{}", "0".repeat(64)),
        },
        env: Vec::new(),
        agent: faasbox_proto::AgentConfig {
            contract: faasbox_proto::Contract::Http,
            command: Vec::new(),
            workdir: "/".into(),
            user: None,
            ready_timeout_ms: 10_000,
            function_port: 8080,
            log_port: 8081,
            temp_root: "/tmp".into(),
            function: function.to_string(),
            function_version: 1,
            openwhisk: None,
            blocking_tcp: false,
            file: None,
            disk_limit_bytes: 0,
            tcp_listen: None,
            tcp_secret: None,
            code: None,
        },
        limits: crate::driver::Limits::default(),
        runtime: RuntimeClass::Standard,
        network: false,
        disk_bytes: 0,
        scratch: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
