//! Deploying and removing a flow: checked as a new flow, stored together with its start (event
//! listeners, schedule), and the implicit functions it no longer runs retired. The HTTP layer
//! and the tests both call these; neither repeats the steps.

use std::sync::Arc;

use faasbox_store::FlowRecord;

use crate::failure::Failure;
use crate::state::AppState;

/// A flow that was deployed.
#[derive(Debug)]
pub struct Deployed {
    /// The flow as stored now.
    pub record: FlowRecord,
    /// Whether it replaced a flow of the same path.
    pub existed: bool,
    /// What the deploy accepted but reports (states no transition reaches).
    pub warnings: Vec<faasbox_flow::Problem>,
}

/// Why a flow was not deployed.
#[derive(Debug)]
pub enum DeployError {
    /// The flow does not load: its problems, with line and column.
    Invalid(Vec<faasbox_flow::Problem>),
    /// Anything else (its start cannot take effect, the store refused).
    Refused(Failure),
}

impl From<Failure> for DeployError {
    fn from(failure: Failure) -> Self {
        DeployError::Refused(failure)
    }
}

/// Checks `path` as a flow path: segments of a-z, 0-9, '-', '_' and '.', separated by '/'.
pub fn check_path(path: &str) -> Result<(), Failure> {
    let valid = !path.is_empty()
        && path.len() <= 255
        && path
            .split('/')
            .all(|seg| crate::model::check_name("flow path segment", seg).is_ok());
    if valid {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "flow path '{}' is invalid: use segments of a-z, 0-9, '-', '_' and '.' (each starting with a letter or digit) separated by '/'",
            path.escape_debug()
        )))
    }
}

/// A flow that passed [`check`]: what deploying it stores and puts into effect.
#[derive(Debug)]
pub struct CheckedFlow {
    /// The flow.
    pub flow: faasbox_flow::Workflow,
    /// What a deploy accepts but reports (states no transition reaches).
    pub warnings: Vec<faasbox_flow::Problem>,
    /// Its start as the events machinery keeps it.
    pub start: crate::events::FlowStart,
}

/// Everything a deploy checks of `source` before storing it, and nothing else: the flow
/// loads as a new flow, and its start can take effect. Deploy and validate both call it, so
/// they refuse exactly the same flows. On failure, every problem with line and column.
pub async fn check(source: &str) -> Result<CheckedFlow, Vec<faasbox_flow::Problem>> {
    let faasbox_flow::Checked { flow, warnings } = super::check_new(source).await?;
    let start = super::event_waits::flow_start(&flow);
    if let Err(e) = crate::events::check_flow_start(&start) {
        // The start has no position of its own in the model: the flow's first line.
        return Err(vec![faasbox_flow::Problem {
            pos: faasbox_flow::Pos { line: 1, column: 1 },
            message: format!("the flow's start cannot take effect: {e}"),
        }]);
    }
    Ok(CheckedFlow {
        flow,
        warnings,
        start,
    })
}

/// Deploys `source` as flow `ns/path` (the namespace exists; the path is checked).
pub async fn deploy(
    state: &Arc<AppState>,
    ns: &str,
    path: &str,
    source: String,
) -> Result<Deployed, DeployError> {
    let CheckedFlow {
        flow,
        warnings,
        start,
    } = check(&source).await.map_err(DeployError::Invalid)?;
    // The flow and its start (listeners, schedule) are stored together, to the end.
    let (ns2, path2) = (ns.to_string(), path.to_string());
    let (record, existed) = state
        .to_completion(move |s| async move {
            let existed = s.store.flow(&ns2, &path2).await?.is_some();
            let record = s
                .store
                .put_flow(&ns2, &path2, &source, &crate::clock::now_rfc3339())
                .await?;
            crate::events::set_flow_start(&*s.store, &ns2, &path2, &start, crate::events::now_ms())
                .await?;
            Ok((record, existed))
        })
        .await?;
    super::functions::retire_implicit(state, ns, path, Some(&flow));
    Ok(Deployed {
        record,
        existed,
        warnings,
    })
}

/// Removes flow `ns/path` (it exists) with its start. Its running instances go on with the
/// source they started with (their implicit functions start again if they call them); idle
/// implicit instances stop now.
pub async fn remove(state: &Arc<AppState>, ns: &str, path: &str) -> Result<(), Failure> {
    let (ns2, path2) = (ns.to_string(), path.to_string());
    state
        .to_completion(move |s| async move {
            s.store.delete_flow(&ns2, &path2).await?;
            crate::events::on_flow_removed(&*s.store, &ns2, &path2).await
        })
        .await?;
    super::functions::retire_implicit(state, ns, path, None);
    Ok(())
}
