//! Flow instances under leases, for several servers on one store. The server driving an
//! instance holds a lease on it (made when it created or claimed the instance); [`tick`],
//! called after each heartbeat of this server (`crate::membership`), renews this
//! server's leases and takes over the `running` instances whose server let its lease expire
//! (it stopped, or lost the store): each is claimed ([`Claim::TakeOver`]) by one server,
//! which drives it on from its last checkpoint, as a restart would. The claim moves the
//! instance's epoch on, so the old server's writes (if it still runs) are refused.

use std::sync::Arc;

use faasbox_flow::engine::Checkpoint;
use faasbox_store::{Claim, ExpiredInstance};

use super::runner;
use crate::state::AppState;

/// How many expired instances one tick looks at.
const TAKEOVERS_PER_TICK: u32 = 100;

/// Called once per heartbeat of this server (every third of the lease), after the heartbeat
/// was stored: renews this server's leases, then takes over the instances left by servers
/// whose leases expired. Returns the ids of the instances this call took over (each driven
/// in a task of its own).
pub async fn tick(state: &Arc<AppState>) -> Vec<String> {
    if state.flow_runs.is_shutting_down() {
        return Vec::new();
    }
    let node = state.node.as_str();
    let lease_ms = state.config.cluster.lease_ms();
    if let Err(e) = state.store.renew_leases(node, lease_ms).await {
        tracing::warn!("renewing this server's leases on its flow instances failed: {e}");
    }
    let expired = match state.store.expired_instances(TAKEOVERS_PER_TICK).await {
        Ok(expired) => expired,
        Err(e) => {
            tracing::warn!("looking for flow instances to take over failed: {e}");
            return Vec::new();
        }
    };
    let mut taken = Vec::new();
    for instance in expired {
        // Driven here already (its lease could not be renewed in time): it goes on.
        if state.flow_runs.is_running(&instance.id) {
            continue;
        }
        match take_over(state, &instance).await {
            Ok(true) => taken.push(instance.id),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(instance = %instance.id, "taking over a flow instance failed: {e}")
            }
        }
    }
    taken
}

/// Takes over one expired instance: a top-level one is claimed and driven; a subflow whose
/// parent still runs (or waits) is left to the parent, whose action finds it again when the
/// parent is driven on; one whose parent ended (or is gone) is cancelled. True when this
/// server claimed a top-level one.
async fn take_over(
    state: &Arc<AppState>,
    instance: &ExpiredInstance,
) -> Result<bool, crate::failure::Failure> {
    if let Some(parent) = &instance.parent {
        let parent_unfinished = state
            .store
            .instance(parent)
            .await?
            .is_some_and(|p| matches!(p.status.as_str(), "running" | "waiting"));
        if !parent_unfinished
            && runner::claim(state, &instance.id, Claim::TakeOver)
                .await?
                .is_some()
        {
            runner::cancel_instance(state, &instance.id).await?;
        }
        return Ok(false);
    }
    let Some(epoch) = runner::claim(state, &instance.id, Claim::TakeOver).await? else {
        // Another server took it first (or it ended meanwhile).
        return Ok(false);
    };
    let at = state
        .store
        .instance(&instance.id)
        .await?
        .and_then(|r| serde_json::from_str::<Checkpoint>(&r.checkpoint).ok())
        .and_then(|cp| cp.state)
        .map_or_else(|| "its end".to_string(), |s| format!("state '{s}'"));
    let line = match &instance.owner {
        Some(old) => format!(
            "server node {old} stopped driving this instance (its lease expired); node {} takes it over and resumes it at {at}",
            state.node
        ),
        None => format!(
            "this instance had no server driving it; node {} takes it over and resumes it at {at}",
            state.node
        ),
    };
    let stored = state
        .store
        .append_instance_log(&instance.id, crate::clock::now_ms() as i64, &line)
        .await;
    if let Err(e) = stored {
        tracing::warn!(instance = %instance.id, "storing a log line failed: {e}");
    }
    tracing::info!(instance = %instance.id, "{line}");
    runner::spawn_claimed(state, instance.id.clone(), epoch);
    Ok(true)
}
