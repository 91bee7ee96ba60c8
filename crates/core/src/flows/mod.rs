//! Workflows in the server: the engine of faasbox-flow over the store, the vault and the
//! invoker. [`runner`] starts, drives, resumes and cancels instances; [`effects`] is the
//! engine's view of the server; [`functions`] calls an action's function by its kind, and
//! [`call_log`] links each call from its instance and copies the function's log lines there;
//! [`deployment`] deploys and removes flows.

pub mod call_files;
pub mod call_log;
pub mod deployment;
pub mod effects;
pub mod event_waits;
pub mod events;
pub mod functions;
pub mod leases;
pub mod runner;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use crate::flow_runs::{DeletingGuard, RunGuard, Runs};

/// How many parsed flows [`load_cached`] keeps (each a distinct source text).
const LOADED_FLOWS: usize = 256;

/// Flows parsed by [`load_cached`], by their source text: a stored source never changes (a
/// new revision is a new text), so a parse is kept for as long as it is in here. Cleared
/// whole once full.
static LOADED: Mutex<Option<HashMap<String, Arc<faasbox_flow::Workflow>>>> = Mutex::new(None);

/// [`load`] of a stored flow, parsed once per source text: an instance's run and the runs
/// after it find the flow parsed already (a flow that does not load is not kept).
pub async fn load_cached(
    source: &str,
) -> Result<Arc<faasbox_flow::Workflow>, Vec<faasbox_flow::Problem>> {
    {
        let loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flow) = loaded.as_ref().and_then(|m| m.get(source)) {
            return Ok(flow.clone());
        }
    }
    let flow = Arc::new(load(source).await?);
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    let map = loaded.get_or_insert_with(HashMap::new);
    if map.len() >= LOADED_FLOWS {
        map.clear();
    }
    map.insert(source.to_string(), flow.clone());
    Ok(flow)
}

/// Parses and checks a stored flow (YAML and every jq expression in it) on a blocking thread
/// with the stack compiling expressions gets, never on an async worker.
pub async fn load(source: &str) -> Result<faasbox_flow::Workflow, Vec<faasbox_flow::Problem>> {
    off_async(source, faasbox_flow::load).await
}

/// [`load`] for a flow being deployed: also refuses what only new flows are held to, and
/// gives the warnings ([`faasbox_flow::check_new`]).
pub async fn check_new(source: &str) -> Result<faasbox_flow::Checked, Vec<faasbox_flow::Problem>> {
    off_async(source, faasbox_flow::check_new).await
}

async fn off_async<T: Send + 'static>(
    source: &str,
    read: fn(&str) -> Result<T, Vec<faasbox_flow::Problem>>,
) -> Result<T, Vec<faasbox_flow::Problem>> {
    let source = source.to_string();
    tokio::task::spawn_blocking(move || faasbox_expr::on_compile_stack(|| read(&source)))
        .await
        .unwrap_or_else(|e| {
            Err(vec![faasbox_flow::Problem {
                pos: faasbox_flow::Pos { line: 1, column: 1 },
                message: format!("the flow could not be checked: {e}"),
            }])
        })
}
