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

pub use crate::flow_runs::{DeletingGuard, RunGuard, Runs};

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
