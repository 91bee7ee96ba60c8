//! An action's call by its function's kind: `knative-workflow`/`reusable` runs the image as an
//! implicit function of the flow (a pool keyed by the flow and the function id, not listed
//! among the namespace's functions; its image is found in the flow's namespace's images, then
//! the server-wide ones, and pinned at its first call), `knative-namespace` calls a namespace
//! function, `knative-global` goes through [`CallRequest::global`], `subflow` runs the child flow
//! through the [`Subflows`] it is handed (the runner's: this module never calls up into it).
//! An action's `files` travel with the call to the agent, whatever the function's contract
//! ([`call_files`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use faasbox_flow::engine::{FlowError, FunctionCall, InstanceRef};
use faasbox_flow::model::FunctionKind;
use faasbox_flow::Workflow;
use serde_json::{json, Value};

use super::call_files;
use super::call_log::Held;
use crate::deployments::Deployment;
use crate::failure::Failure;
use crate::image_pin::PullPolicy;
use crate::invoker::{self, CallOptions, CallRequest};
use crate::mask::Masker;
use crate::model::FunctionSpec;
use crate::owner::Owner;
use crate::state::AppState;

/// The call timeout of implicit functions; a state's `timeout` bounds it further.
const IMPLICIT_TIMEOUT: &str = "15m";

/// Runs the child flow of a `subflow` action: `super::runner`'s, handed down through the
/// effects so that calls do not depend on the runner that depends on them.
#[async_trait]
pub trait Subflows: Send + Sync {
    /// Runs (or, resumed, finds) the child instance of `parent` for flow `reference` and
    /// answers with its output.
    async fn run(
        &self,
        state: &Arc<AppState>,
        parent: &InstanceRef,
        reference: &str,
        call: &FunctionCall<'_>,
    ) -> Result<Value, FlowError>;
}

/// Calls an action's function by its kind (a flow's own function, a namespace's, a global
/// service, or a subflow) and answers with its output.
/// `held` is the run's progress not written yet: a function's call writes it with the call's
/// record (a subflow's is written by the caller before).
pub async fn call(
    state: &Arc<AppState>,
    subflows: &dyn Subflows,
    instance: &InstanceRef,
    call: FunctionCall<'_>,
    held: &Held,
) -> Result<Value, FlowError> {
    match &call.function.kind {
        FunctionKind::Workflow {
            image,
            cmd,
            envs,
            size,
        } => {
            let spec = implicit_spec(image, cmd.as_deref(), envs, size.as_deref())?;
            // Retired when the flow was deleted or changed: an instance of the old version
            // that still calls it starts it again.
            let name = implicit_name(&instance.flow, &call.function.id);
            if state
                .deployments
                .deployed(&instance.namespace, &name)
                .map(|d| *d.spec != spec)
                .unwrap_or(true)
            {
                // Its image is resolved in the flow's namespace, then the server-wide images,
                // at the first call (and pinned while this pool lives).
                state.deployments.activate(
                    &instance.namespace,
                    &name,
                    Deployment {
                        spec,
                        digest: None,
                        revision: None,
                        pull: PullPolicy::Missing,
                    },
                );
            }
            invoke(state, instance, own(instance), &name, &call, held).await
        }
        FunctionKind::Namespace { service } => {
            invoke(state, instance, own(instance), service, &call, held).await
        }
        FunctionKind::Global { service } => {
            invoke(state, instance, Owner::Global, service, &call, held).await
        }
        FunctionKind::Subflow { workflow } => subflows.run(state, instance, workflow, &call).await,
    }
}

/// The pool name of a flow's implicit function.
pub fn implicit_name(flow: &str, function: &str) -> String {
    format!("flow:{flow}:{function}")
}

/// Retires the implicit pools of flow `path` that its new version (`None`: the flow was
/// deleted) does not run with the same image, cmd, envs and size; returns how many.
pub fn retire_implicit(
    state: &AppState,
    namespace: &str,
    path: &str,
    flow: Option<&Workflow>,
) -> usize {
    let prefix = implicit_name(path, "");
    let kept: Vec<(String, FunctionSpec)> = flow
        .map(|flow| {
            flow.functions
                .iter()
                .filter_map(|def| match &def.kind {
                    FunctionKind::Workflow {
                        image,
                        cmd,
                        envs,
                        size,
                    } => implicit_spec(image, cmd.as_deref(), envs, size.as_deref())
                        .ok()
                        .map(|spec| (implicit_name(path, &def.id), spec)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    state
        .deployments
        .deactivate_matching(namespace, |name, spec| {
            name.starts_with(&prefix) && !kept.iter().any(|(n, s)| n == name && s == spec)
        })
}

fn implicit_spec(
    image: &str,
    cmd: Option<&str>,
    envs: &[(String, String)],
    size: Option<&str>,
) -> Result<FunctionSpec, FlowError> {
    let envs: BTreeMap<&str, &str> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let spec = json!({
        "image": image,
        "cmd": cmd.unwrap_or_default(),
        "envs": envs,
        "size": size.unwrap_or("small"),
        "timeout": IMPLICIT_TIMEOUT,
    });
    serde_json::from_value(spec)
        .map_err(|e| FlowError::crash(format!("function image '{image}' cannot be run: {e}")))
}

/// Calls `name` (a namespace function, or a global service when `owner` is global) on behalf
/// of the instance's namespace. The invocation is linked from the instance once it is
/// recorded, while it starts (see [`super::call_log`]), and the lines the function logged go
/// into the instance's log, attributed to the state.
async fn invoke(
    state: &Arc<AppState>,
    instance: &InstanceRef,
    owner: Owner,
    name: &str,
    call: &FunctionCall<'_>,
    held: &Held,
) -> Result<Value, FlowError> {
    let files = call_files::to_call_files(&call.files)?;
    let body = Bytes::from(
        serde_json::to_vec(&call.input).map_err(|e| FlowError::internal(e.to_string()))?,
    );
    let masker = Masker::new(call.secret_values.iter().map(|s| s.as_bytes()));
    let link = super::call_log::Link::new(state, instance, call).with_held(held.clone());
    // The link is written while the function runs rather than before it starts: one store
    // write less on an action's path. It is stored before the call's lines and before the
    // state moves on (awaited below), so the instance never records a result it does not link.
    let link_write: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>> = Arc::default();
    let slot = link_write.clone();
    let options = CallOptions {
        cancel: call.cancel.clone(),
        masker,
        files,
        permit: None,
        on_recorded: Some(Box::new(move |id| {
            let write = tokio::spawn(link.start(&id, super::call_log::Kind::Invocation));
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(write);
            Box::pin(std::future::ready(()))
        })),
        ..CallOptions::default()
    };
    let request = match owner {
        Owner::Namespace(_) => CallRequest::function(&instance.namespace, name, body),
        Owner::Global => CallRequest::global(&instance.namespace, name, body),
    };
    let done = invoker::invoke(state.clone(), request.with(options)).await;
    let linking = link_write.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(write) = linking {
        if let Err(e) = write.await {
            tracing::error!("linking a call of instance {} failed: {e}", instance.id);
        }
    }
    if let Some(id) = &done.id {
        super::call_log::function_lines(state, instance, call.state, id, &done.logs).await;
    }
    match done.result {
        Ok(output) => serde_json::from_slice(&output)
            .map_err(|e| FlowError::crash(format!("the function's output is not JSON: {e}"))),
        Err(e) => Err(flow_error(e)),
    }
}

/// A call's failure as the engine sees it: a function's own code is catchable; crashes and
/// server failures are not.
fn flow_error(e: Failure) -> FlowError {
    match e.catchable {
        Some(true) => FlowError::catchable(&e.code, e.message),
        Some(false) => FlowError::fatal(&e.code, e.message),
        None if !e.is_callers() => FlowError::fatal(&e.code, e.message),
        None => FlowError::catchable(&e.code, e.message),
    }
}

/// The owner of a namespace function called from `instance`.
fn own(instance: &InstanceRef) -> Owner {
    Owner::Namespace(instance.namespace.clone())
}
