//! One call of a function: record it, build its input (secrets and template, see
//! `call_input`), lease an instance, send the input through the agent, turn the outcome into
//! an answer, mask secret values in its logs and error, store the logs, give the instance back.
//!
//! Memory: the input is held once (the caller's buffer goes to the agent as it is) and the
//! output is a slice of the agent's answer; both count against the server's body budget
//! (`crate::bodies`) until the caller has sent the output on ([`Invocation::held`]).
//!
//! Store writes: a blocking call is written by the record writer (`crate::run_writer`) once,
//! with its end, just after its answer, many calls per transaction (a call that runs longer
//! than `RECORD_RUNNING_AFTER` is written as `running` then too); an asynchronous run was
//! stored before it was accepted, and its end is written over it before its executor goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faasbox_proto::{
    CallFile, Contract, HttpForward, InvokeOutcome, InvokeStatus, LogLine, LogStream,
};
use faasbox_store::InvocationEnd;
use tokio_util::sync::CancellationToken;

use crate::bodies::BodyPermit;
use crate::call_input::CallInput;
use crate::clock;
use crate::failure::{codes, Failure, FailureKind};
use crate::image_pin;
use crate::mask::Masker;
use crate::model::FunctionSpec;
use crate::owner::Owner;
use crate::pool::{AcquireError, Lease, Running};
use crate::state::AppState;

/// How long a cancelled call's agent gets to hand over the logs.
const CANCEL_GRACE: Duration = Duration::from_secs(2);
/// How long past the call's deadline the server waits for the agent's answer. The agent owns
/// the deadline (it stops the call then and answers `timeout` with the call's logs); the
/// server's own timer is only the backstop for an agent that does not answer at all. Were the
/// two timers equal, whichever fired first would decide how the call is reported.
const AGENT_DEADLINE_GRACE: Duration = Duration::from_secs(5);

/// How a call of a global service is named in its namespace's invocation records.
pub const GLOBAL_CALL_PREFIX: &str = "global:";

/// The result of one call: its id, the output JSON or the error, and the log lines the call
/// stored (secret values masked).
pub struct Invocation {
    /// `None` when the request was refused before it became a call (not JSON, no such
    /// function or namespace): nothing was recorded, so there is no id to show or look up.
    pub id: Option<String>,
    /// The function's output (JSON), or why the call failed.
    pub result: Result<Bytes, Failure>,
    /// The call's input and output in the body budget: keep it until the output is sent.
    pub held: Option<BodyPermit>,
    /// The log lines the call stored (secret values masked).
    pub logs: Vec<LogLine>,
}

/// What a caller inside the platform (the workflow engine) adds to a call.
#[derive(Default)]
pub struct CallOptions {
    /// Cancelling it stops the call: the function gets its cancel (`DELETE`).
    pub cancel: CancellationToken,
    /// Masks values the caller put into the input (a flow's secrets) in what is stored.
    pub masker: Masker,
    /// Files the agent places where the function finds them (a flow action's `files`).
    pub files: Vec<CallFile>,
    /// The input's place in the body budget, when the caller read it (else the call takes
    /// its own).
    pub permit: Option<BodyPermit>,
    /// Run with the invocation's id once the call is recorded, before it starts (a flow links
    /// the invocation from its instance); not run for a call refused before that.
    pub on_recorded: Option<OnRecorded>,
    /// A code function's further context fields (Dispatch's `event`, `httpContext`), put into
    /// the envelope's `context` beside `secrets` and `serviceBindings` (which they cannot
    /// replace); other contracts ignore them.
    pub code_context: serde_json::Map<String, serde_json::Value>,
    /// Secrets this call gets on top of those its function's spec names (a Dispatch run's own
    /// `secrets`), by name; read and masked like the spec's.
    pub secrets: Vec<String>,
    /// Service instances this call gets on top of those its function's spec names (a Dispatch
    /// run's own `services`), by name.
    pub services: Vec<String>,
    /// The CloudEvent (without its `data`) that caused this call (a subscription's run),
    /// kept in the call's run record.
    pub event: Option<serde_json::Value>,
    /// The HTTP request that caused this call (an HTTP route's), kept in its run record.
    pub http_context: Option<serde_json::Value>,
    /// The HTTP request a Direktiv HTTP function sees on its `POST /` (a route's call: the
    /// caller's headers and `Faasbox-Http-*`; see `routes::context::call_input_for`); other
    /// contracts ignore it.
    pub http_forward: Option<HttpForward>,
}

/// See [`CallOptions::on_recorded`].
pub type OnRecorded =
    Box<dyn FnOnce(String) -> futures_util::future::BoxFuture<'static, ()> + Send>;

/// One call to make: whose function, on whose behalf, with what input and options.
pub struct CallRequest {
    /// The namespace the call belongs to: its record, its logs and the secrets it reads.
    pub namespace: String,
    /// Whose function it is: the namespace's own, or a global service.
    pub owner: Owner,
    /// The function's name.
    pub function: String,
    /// The request body (JSON; empty or blank is `{}`).
    pub input: Bytes,
    /// What a caller inside the platform adds (cancel, masking, files, budget, a hook).
    pub options: CallOptions,
}

impl CallRequest {
    /// A call of `namespace`'s own function `function`.
    pub fn function(namespace: &str, function: &str, input: Bytes) -> Self {
        CallRequest {
            namespace: namespace.to_string(),
            owner: Owner::Namespace(namespace.to_string()),
            function: function.to_string(),
            input,
            options: CallOptions::default(),
        }
    }

    /// A call of global service `service` on behalf of `namespace` (flows' `knative-global`
    /// functions too): the call, its record and its logs belong to `namespace`, and the
    /// secrets the service's spec lists are read from `namespace`.
    pub fn global(namespace: &str, service: &str, input: Bytes) -> Self {
        CallRequest {
            owner: Owner::Global,
            ..CallRequest::function(namespace, service, input)
        }
    }

    /// The same call with `options`.
    pub fn with(self, options: CallOptions) -> Self {
        CallRequest { options, ..self }
    }
}

/// Makes the call `request` describes. Runs to the end even if the caller goes away.
pub async fn invoke(state: Arc<AppState>, request: CallRequest) -> Invocation {
    spawn(state, request).await
}

/// [`invoke`], started now in a task of its own: the future only waits for its end, so a
/// caller that bounds the wait needs no task of its own (the call goes on when it is dropped).
pub fn spawn(
    state: Arc<AppState>,
    request: CallRequest,
) -> impl std::future::Future<Output = Invocation> + Send + 'static {
    let CallRequest {
        namespace,
        owner,
        function,
        input,
        options,
    } = request;
    invoke_as(state, namespace, owner, function, input, options, None)
}

/// A run stored already (an asynchronous run the executor claimed): what
/// [`invoke_stored`] runs.
pub struct StoredRun {
    /// Its id (its record exists and is `running`).
    pub id: String,
    /// Its namespace.
    pub namespace: String,
    /// The function as its record names it (`global:NAME` for a global service).
    pub function: String,
    /// Its input as stored.
    pub input: Bytes,
    /// What the run adds (its cancel, secrets, services, event, HTTP context).
    pub options: CallOptions,
}

/// Makes the call of a run that is stored already, without recording it again: every way it
/// ends (also a refusal: its function is gone, the body budget is exhausted) is recorded as
/// its end.
pub async fn invoke_stored(state: Arc<AppState>, run: StoredRun) -> Invocation {
    let StoredRun {
        id,
        namespace,
        function,
        input,
        options,
    } = run;
    let (owner, name) = match function.strip_prefix(GLOBAL_CALL_PREFIX) {
        Some(name) => (Owner::Global, name.to_string()),
        None => (Owner::Namespace(namespace.clone()), function),
    };
    invoke_as(state, namespace, owner, name, input, options, Some(id)).await
}

/// Starts the call's task now; the future returned waits for its end.
fn invoke_as(
    state: Arc<AppState>,
    caller: String,
    owner: Owner,
    name: String,
    input: Bytes,
    options: CallOptions,
    stored: Option<String>,
) -> impl std::future::Future<Output = Invocation> + Send + 'static {
    crate::activity::call_began();
    let is_stored = stored.is_some();
    let id = stored.unwrap_or_else(crate::record_id::run);
    let task_id = id.clone();
    let handle = tokio::spawn(async move {
        let mut options = options;
        let held = match options.permit.take() {
            Some(permit) => permit,
            None => {
                let wait = state.config.queue_timeout;
                match state.bodies.reserve(input.len() as u64, wait).await {
                    Ok(permit) => permit,
                    Err(e) if is_stored => {
                        let mut record = CallRecord::new(task_id, caller, &owner, &name, input);
                        record.stored = true;
                        let result = Err(e);
                        record_end(&state, &record, &result, &[]).await;
                        return (result, Vec::new(), None, true);
                    }
                    // Refused before it became a call: nothing was recorded.
                    Err(e) => return (Err(e), Vec::new(), None, false),
                }
            }
        };
        let mut held = Some(held);
        let mut recorded = is_stored;
        let (result, logs) = run(
            state,
            task_id,
            caller,
            owner,
            name,
            input,
            options,
            &mut recorded,
        )
        .await
        .unwrap_or_else(|refused| (Err(refused), Vec::new()));
        if let (Ok(output), Some(held)) = (&result, held.as_mut()) {
            held.hold(output.len() as u64);
        }
        (result, logs, held.take(), recorded)
    });
    async move {
        // A task that died cannot say whether it recorded the call: no id rather than a wrong
        // one.
        let (result, logs, held, recorded) = handle
            .await
            .unwrap_or_else(|e| (Err(Failure::from(e)), Vec::new(), None, false));
        Invocation {
            id: recorded.then_some(id),
            result,
            held,
            logs,
        }
    }
}

/// Runs one call: `Err` for a call refused before it was recorded; once recorded, the call's
/// end and its logs. Sets `recorded` once the call is in the store.
#[allow(clippy::too_many_arguments)]
async fn run(
    state: Arc<AppState>,
    id: String,
    namespace: String,
    owner: Owner,
    name: String,
    input: Bytes,
    options: CallOptions,
    recorded: &mut bool,
) -> Result<(Result<Bytes, Failure>, Vec<LogLine>), Failure> {
    let stored = *recorded;
    let input = if input.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        input
    };
    let mut record = CallRecord::new(id, namespace.clone(), &owner, &name, input.clone());
    record.stored = stored;
    if let Err(refused) = callable(&state, &owner, &name, &namespace, &input).await {
        // A stored run was a call already: its refusal is how it ended.
        if stored {
            let result = Err(refused);
            record_end(&state, &record, &result, &[]).await;
            return Ok((result, Vec::new()));
        }
        return Err(refused);
    }
    let Some(mut deployed) = state.deployments.deployed(owner.key(), &name) else {
        let refused = missing_function(&state, &owner, &name).await;
        if stored {
            let result = Err(refused);
            record_end(&state, &record, &result, &[]).await;
            return Ok((result, Vec::new()));
        }
        return Err(refused);
    };
    record.revision = deployed.revision;
    if !stored {
        let run = faasbox_store::NewRun {
            id: record.id.clone(),
            namespace: record.namespace.clone(),
            function: record.function.clone(),
            mode: "sync".into(),
            status: "running".into(),
            accepted: crate::run_record::now(),
            input: Some(crate::run_record::kept(
                record.kept_bytes(&state),
                &options.masker,
                &input,
            )),
            event: options.event.as_ref().map(|e| e.to_string()),
            http_context: options.http_context.as_ref().map(|c| c.to_string()),
            callback_url: None,
            secrets: options.secrets.clone(),
            services: options.services.clone(),
            node: Some(state.node.to_string()),
        };
        state.runs.records.started(&state.store, run).await;
        record.through_writer = true;
        *recorded = true;
    }
    let cancel = options.cancel.clone();
    let _running = state.runs.running(&record.id, cancel);
    let mut options = options;
    if let Some(on_recorded) = options.on_recorded.take() {
        on_recorded(record.id.clone()).await;
    }
    // An image the deploy could not get is pulled now, with the credentials stored at this
    // moment, and pinned.
    if deployed.digest.is_none() {
        match image_pin::pin_at_call(&state, &owner, &name).await {
            Ok(pinned) => deployed = pinned,
            Err(e) => {
                let result = Err(e);
                record_end(&state, &record, &result, &[]).await;
                return Ok((result, Vec::new()));
            }
        }
    }
    // A pinned image shared through another server of the cluster, not here yet.
    if let Some(digest) = deployed.digest.as_deref() {
        crate::shared_images::fetch_digest(&state, &owner, digest).await;
    }
    // The input is checked against the function's schema before anything else runs.
    if let Some(schemas) = &deployed.schemas {
        if let Err(e) = schemas.check_input(&input).await {
            // The input may hold values the caller masks (a flow's secrets).
            let (result, _) = mask(&options.masker, Err(e), Vec::new());
            record_end(&state, &record, &result, &[]).await;
            return Ok((result, Vec::new()));
        }
    }
    let code_context = std::mem::take(&mut options.code_context);
    let prepared = crate::call_input::prepare(
        &state,
        &namespace,
        &name,
        &deployed.spec,
        input,
        code_context,
        crate::call_input::Extra {
            secrets: &options.secrets,
            services: &options.services,
        },
    )
    .await;
    let CallInput { input, masker } = match prepared {
        Ok(prepared) => {
            let masker = prepared.masker.merged(options.masker);
            record.input_masked = Some(crate::run_record::kept(
                record.kept_bytes(&state),
                &masker,
                &record.input,
            ));
            CallInput {
                input: prepared.input,
                masker,
            }
        }
        Err(e) => {
            let result = Err(e);
            record_end(&state, &record, &result, &[]).await;
            return Ok((result, Vec::new()));
        }
    };
    let mut attempts = 0;
    let waiting = Instant::now();
    let lease = loop {
        match deployed.pool.acquire().await {
            Ok(lease) => break Ok(lease),
            Err(AcquireError::Retired) if attempts < 3 => {
                attempts += 1;
                match state.deployments.deployed(owner.key(), &name) {
                    Some(next) => deployed = next,
                    None => break Err(missing_function(&state, &owner, &name).await),
                }
            }
            Err(AcquireError::Retired) => {
                break Err(Failure::conflict(format!(
                    "{} keeps being redeployed; retry the call",
                    owner.describe(&name)
                )))
            }
            Err(AcquireError::Failed(e)) => break Err(e),
        }
    };
    let (result, logs) = match lease {
        Ok(lease) => {
            let init = lease.started_new.unwrap_or_default();
            record.cold_start = Some(lease.started_new.is_some());
            let wait = waiting.elapsed().saturating_sub(init);
            let running = Instant::now();
            let answer = followed_call(
                &state,
                &record,
                &masker,
                lease,
                &deployed.spec,
                Sent {
                    input,
                    files: options.files,
                    // Only the http contract forwards a request; the others need no envelope.
                    http: options
                        .http_forward
                        .filter(|_| deployed.spec.effective_contract() == Contract::Http),
                },
                &options.cancel,
            )
            .await;
            record.phases = Some(faasbox_store::RunPhases {
                wait_ms: wait.as_millis() as u64,
                init_ms: init.as_millis() as u64,
                run_ms: running.elapsed().as_millis() as u64,
            });
            answer
        }
        Err(e) => (Err(e), Vec::new()),
    };
    let result = match (result, &deployed.schemas) {
        (Ok(output), Some(schemas)) => schemas.check_output(&output).await.map(|()| output),
        (result, _) => result,
    };
    let (result, logs) = mask(&masker, result, logs);
    // The record keeps no secret value, the output's included (the caller gets it as it is).
    if let Ok(output) = &result {
        record.output_masked = Some(crate::run_record::kept(
            record.kept_bytes(&state),
            &masker,
            output,
        ));
    }
    record_end(&state, &record, &result, &logs).await;
    Ok((result, logs))
}

/// Masks secret values in the error and the log lines (not in the function's output).
fn mask(
    masker: &Masker,
    result: Result<Bytes, Failure>,
    mut logs: Vec<LogLine>,
) -> (Result<Bytes, Failure>, Vec<LogLine>) {
    if masker.is_empty() {
        return (result, logs);
    }
    for line in &mut logs {
        line.line = masker.mask(&line.line);
    }
    let result = result.map_err(|mut e| {
        e.message = masker.mask(&e.message);
        for detail in &mut e.details {
            detail.message = masker.mask(&detail.message);
            detail.pointer = masker.mask(&detail.pointer);
        }
        e
    });
    (result, logs)
}

/// [`call`], with its log lines sent to whoever follows its function's logs as they come
/// (masked with `masker`; read from the agent only while someone follows: `crate::live_logs`).
async fn followed_call(
    state: &Arc<AppState>,
    record: &CallRecord,
    masker: &Masker,
    lease: Lease,
    spec: &FunctionSpec,
    sent: Sent,
    cancel: &CancellationToken,
) -> (Result<Bytes, Failure>, Vec<LogLine>) {
    let running = lease.running.clone();
    let call = call(state, &record.id, lease, spec, sent, cancel);
    state
        .live_logs
        .relay(
            &record.namespace,
            &record.function,
            &record.id,
            &running.client,
            masker,
            call,
        )
        .await
}

/// What a call sends its agent: the input, files to place, the HTTP request behind it.
struct Sent {
    input: Bytes,
    files: Vec<CallFile>,
    http: Option<HttpForward>,
}

/// Sends the input through the leased instance and maps every way it can end.
async fn call(
    state: &Arc<AppState>,
    id: &str,
    lease: Lease,
    spec: &FunctionSpec,
    sent: Sent,
    cancel: &CancellationToken,
) -> (Result<Bytes, Failure>, Vec<LogLine>) {
    let Sent { input, files, http } = sent;
    let (timeout, size) = (spec.timeout.0, spec.size.as_str());
    let running = lease.running.clone();
    let deadline = clock::deadline_rfc3339(timeout);
    let backstop = timeout + AGENT_DEADLINE_GRACE;
    let call = tokio::time::timeout(
        backstop,
        running
            .client
            .call_with_http(id, &deadline, input, files, http),
    );
    tokio::pin!(call);
    let answer = tokio::select! {
        answer = &mut call => answer,
        _ = cancel.cancelled() => {
            // The call's request (`call`, dropped when this returns) stays open until the
            // agent has the cancel: were it dropped first, the agent could see its caller go,
            // end the call, and then find no call to send the function's DELETE for.
            let logs = cancel_call(&running, id).await;
            let error = Failure::function(
                FailureKind::Cancelled,
                codes::FUNCTION_CANCELLED,
                "the call was cancelled by its caller; the function got its cancel",
                false,
            );
            lease.release(true);
            return (Err(error), logs);
        }
    };
    let instance_id = running.instance.id.clone();
    let (result, logs, broken) = match answer {
        Ok(Ok(outcome)) => map_outcome(state, &running, outcome, spec).await,
        Ok(Err(agent_error)) => {
            let error = if state.driver.oom_killed(&instance_id).await {
                out_of_memory(size)
            } else {
                Failure::function(
                    FailureKind::FunctionFailed,
                    codes::FUNCTION_CRASHED,
                    format!("the function's instance failed during the call: {agent_error}"),
                    false,
                )
            };
            (Err(error), Vec::new(), true)
        }
        Err(_elapsed) => {
            let logs = cancel_call(&running, id).await;
            let error = timed_out(
                timeout,
                "the agent did not stop it; it was cancelled and its instance replaced",
            );
            (Err(error), logs, true)
        }
    };
    lease.release(broken);
    (result, logs)
}

/// Delivers the cancel to the function (its `DELETE`) and collects the call's logs.
async fn cancel_call(running: &Running, id: &str) -> Vec<LogLine> {
    match tokio::time::timeout(CANCEL_GRACE, running.client.cancel(id)).await {
        Ok(Ok(report)) => report.logs,
        _ => Vec::new(),
    }
}

/// The failure of a call that ran past the function's timeout (504 over HTTP); `how` says how
/// it was stopped.
fn timed_out(timeout: Duration, how: &str) -> Failure {
    Failure::function(
        FailureKind::FunctionTimeout,
        codes::FUNCTION_TIMEOUT,
        format!(
            "the call ran longer than the function's timeout of {}: {how} \
             (raise the timeout with `faasbox fn deploy … --timeout`)",
            humantime::format_duration(timeout)
        ),
        true,
    )
}

async fn map_outcome(
    state: &Arc<AppState>,
    running: &Running,
    outcome: InvokeOutcome<Bytes>,
    spec: &FunctionSpec,
) -> (Result<Bytes, Failure>, Vec<LogLine>, bool) {
    let size = spec.size.as_str();
    let InvokeOutcome {
        status,
        output,
        code,
        message,
        logs,
    } = outcome;
    if status == InvokeStatus::Ok {
        let body = output.unwrap_or_else(|| Bytes::from_static(b"null"));
        return (Ok(body), logs, false);
    }
    if state.driver.oom_killed(&running.instance.id).await {
        return (Err(out_of_memory(size)), logs, true);
    }
    let message = message.unwrap_or_default();
    if status == InvokeStatus::Timeout {
        // The agent stopped the call at its deadline. A per-call process (cmd, file, openwhisk)
        // is gone with its process group and the instance is as good as new; an http function
        // may still be working on the abandoned request, so its instance is replaced.
        let replaced = spec.effective_contract() == Contract::Http;
        let how = if replaced {
            format!("{message}; its instance is replaced")
        } else {
            message
        };
        return (Err(timed_out(spec.timeout.0, &how)), logs, replaced);
    }
    match (status, code) {
        (InvokeStatus::Error, Some(code)) if !code.is_empty() => {
            // A full disk stays full for the instance's next calls: replace it.
            let broken = code == faasbox_proto::CODE_DISK_FULL;
            (
                Err(Failure::function(
                    FailureKind::FunctionFailed,
                    &code,
                    message,
                    true,
                )),
                logs,
                broken,
            )
        }
        _ => {
            let message = if message.is_empty() {
                "the function crashed".to_string()
            } else {
                message
            };
            // A crash may mean the function's process died: keep the instance only if its
            // agent still says it is ready.
            let broken = !still_ready(running).await;
            (
                Err(Failure::function(
                    FailureKind::FunctionFailed,
                    codes::FUNCTION_CRASHED,
                    message,
                    false,
                )),
                logs,
                broken,
            )
        }
    }
}

async fn still_ready(running: &Running) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), running.client.ready()).await,
        Ok(Ok(report)) if report.ready
    )
}

fn out_of_memory(size: &str) -> Failure {
    Failure::function(
        FailureKind::FunctionFailed,
        codes::FUNCTION_OOM,
        format!(
            "the function ran out of memory (size {size}) and was killed; deploy it with a larger --size"
        ),
        true,
    )
}

async fn namespace_exists(state: &Arc<AppState>, namespace: &str) -> bool {
    state
        .store
        .namespace(namespace)
        .await
        .map(|found| found.is_some())
        .unwrap_or(true)
}

async fn missing_function(state: &Arc<AppState>, owner: &Owner, name: &str) -> Failure {
    match owner {
        Owner::Namespace(ns) if !namespace_exists(state, ns).await => {
            Failure::no_such_namespace(ns)
        }
        _ => owner.missing(name),
    }
}

/// Whether `owner`'s function `name` can be called with `input` now, as a call checks before
/// it is recorded (and an asynchronous run before it is accepted): the input is JSON, the
/// namespace exists, the function is in service (a code function once its build is READY).
pub(crate) async fn callable(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    namespace: &str,
    input: &[u8],
) -> Result<(), Failure> {
    if !input.iter().all(u8::is_ascii_whitespace) {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(input) {
            return Err(Failure::invalid(format!(
                "the request body is not JSON: {e}"
            )));
        }
    }
    if *owner == Owner::Global && !namespace_exists(state, namespace).await {
        return Err(Failure::no_such_namespace(namespace));
    }
    // Deployed through another server a moment ago: in service here from now on.
    if !crate::follow::activate_if_stored(state, owner, name).await {
        // A function built from code is in service once its build is READY.
        if let Owner::Namespace(ns) = owner {
            if let Some(not_ready) = crate::code::functions::not_ready(state, ns, name).await {
                return Err(not_ready);
            }
        }
        return Err(missing_function(state, owner, name).await);
    }
    Ok(())
}

/// A call once it is recorded: what its end is stored and counted under.
struct CallRecord {
    id: String,
    namespace: String,
    /// The function as the invocation record names it (`global:NAME` for a global service).
    function: String,
    started: Instant,
    /// The request's input as the caller sent it.
    input: Bytes,
    /// The input as it is kept (secret values masked), once the call's secrets are known.
    input_masked: Option<String>,
    /// The output as the record keeps it (secret values masked, bounded by `kept_bytes`).
    output_masked: Option<String>,
    /// An asynchronous run, stored before it started (not a call recorded here).
    stored: bool,
    revision: Option<u32>,
    cold_start: Option<bool>,
    phases: Option<faasbox_store::RunPhases>,
    /// A blocking call whose record the record writer writes (told of its start).
    through_writer: bool,
}

impl CallRecord {
    /// How much of the input and output the record keeps: an asynchronous run's output is
    /// read from its record, a blocking call's caller got it already.
    fn kept_bytes(&self, state: &AppState) -> usize {
        if self.stored {
            state.config.max_input_bytes
        } else {
            crate::run_record::SYNC_RECORD_BYTES.min(state.config.max_input_bytes)
        }
    }

    fn new(id: String, namespace: String, owner: &Owner, name: &str, input: Bytes) -> Self {
        CallRecord {
            id,
            namespace,
            function: match owner {
                Owner::Namespace(_) => name.to_string(),
                Owner::Global => format!("{GLOBAL_CALL_PREFIX}{name}"),
            },
            started: Instant::now(),
            input,
            input_masked: None,
            output_masked: None,
            stored: false,
            revision: None,
            cold_start: None,
            phases: None,
            through_writer: false,
        }
    }
}

/// The status a call's end is recorded with.
pub(crate) fn status_of(result: &Result<Bytes, Failure>) -> &'static str {
    match result {
        Ok(_) => "succeeded",
        Err(e) => match (e.code.as_str(), e.catchable) {
            (codes::FUNCTION_TIMEOUT, _) => "timeout",
            (codes::FUNCTION_CANCELLED, _) => "cancelled",
            (_, Some(false)) => "crashed",
            _ => "failed",
        },
    }
}

async fn record_end(
    state: &Arc<AppState>,
    record: &CallRecord,
    result: &Result<Bytes, Failure>,
    logs: &[LogLine],
) {
    if record.stored && state.runs.stopping() {
        // Cut short by the server's stop (its instances are going): left `running`, so the
        // next start runs it again rather than recording how the stop ended it.
        tracing::info!(run = %record.id, "the server stops: the run is left to run again at the next start");
        return;
    }
    crate::metrics::call_ended(
        &record.namespace,
        &record.function,
        crate::metrics::outcome_of(result),
        record.started.elapsed(),
    );
    let status = status_of(result);
    let (code, message, kind) = match result {
        Ok(_) => (None, None, None),
        Err(e) => (
            Some(e.code.clone()),
            Some(e.message.clone()),
            Some(crate::run_record::error_type(e)),
        ),
    };
    let output = match (result, &record.output_masked) {
        (Ok(_), Some(kept)) => Some(kept.as_str()),
        // An output the call never got to keep (it ended before): none is stored.
        (Ok(_), None) | (Err(_), _) => None,
    };
    let mut logs = logs.to_vec();
    if let Err(e) = result {
        logs.push(LogLine {
            ts_ms: unix_ms(),
            stream: LogStream::Agent,
            line: format!("call failed: {}: {}", e.code, e.message),
        });
    }
    let ended = crate::run_record::now();
    let end = InvocationEnd {
        status,
        ended: &ended,
        error_code: code.as_deref(),
        error_message: message.as_deref(),
        error_type: kind,
        output,
        input: record.input_masked.as_deref(),
        revision: record.revision.map(i64::from),
        cold_start: record.cold_start,
        phases: record.phases,
        node: Some(state.node.as_str()),
    };
    if record.through_writer {
        // Written just after the answer, with other calls' records.
        state
            .runs
            .records
            .ended(&state.store, &record.id, &end, logs)
            .await;
        return;
    }
    match state.store.finish_invocation(&record.id, &end, &logs).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            run = %record.id,
            "the run was taken over by another server while this one ran it (this server \
             was declared dead); its end here is not recorded"
        ),
        Err(e) => tracing::error!("recording the end of a call failed: {e}"),
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "invoker_tests.rs"]
mod tests;
