//! This server's membership among the servers sharing the store: it registers at start
//! ([`join`]), beats every third of the lease with its load ([`start`]), declares dead the
//! servers whose heartbeat is older than the lease and takes their work over, and leaves at a
//! graceful stop ([`leave`]). A dead server's synchronous calls end `crashed` and its
//! asynchronous runs are queued again once, as after a restart (`crate::runs::recovery`), for
//! any server's executor to claim; its flow instances' leases run out and
//! `crate::flows::leases::tick` takes them over. On one server with SQLite this is the same
//! code with one node: its heartbeat finds no one else.

use std::sync::Arc;

use faasbox_store::nodes::NODE_DEAD;
use faasbox_store::{NewNode, NodeLoad, StoreError};

use crate::state::AppState;

/// Registers this server as up (a new node, or this node starting again) and says in the log
/// what it finds: whether its work was taken over by another server while it was down.
pub async fn join(state: &Arc<AppState>) -> Result<(), StoreError> {
    let me = state.node.as_str();
    let before = state
        .store
        .register_node(&NewNode {
            id: me.to_string(),
            addr: advertised(state),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started: crate::clock::format_rfc3339(state.started),
            capacity: capacity(state),
        })
        .await?;
    match before.as_deref() {
        Some(NODE_DEAD) => tracing::warn!(
            node = me,
            "this server (node {me}) was declared dead while it was down; another server took \
             its runs over, and it rejoins now"
        ),
        Some(_) => tracing::info!(node = me, "node {me} rejoins the servers of this store"),
        None => tracing::info!(node = me, "node {me} joins the servers of this store"),
    }
    Ok(())
}

/// Starts the heartbeat in the background; it runs as long as the server.
pub fn start(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.cluster.heartbeat_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = beat(&state).await {
                tracing::warn!("the cluster heartbeat failed (retried at the next beat): {e}");
            }
        }
    })
}

/// One heartbeat: this server's own, then the others' (a dead one's work is taken over),
/// then the flow instances' leases.
pub async fn beat(state: &Arc<AppState>) -> Result<(), StoreError> {
    let me = state.node.as_str();
    if !state.store.heartbeat(me, &load(state)).await? {
        // Another server saw no heartbeat of this one for a whole lease (a pause, a lost
        // database connection) and took its runs over; what runs here now ends fenced.
        tracing::error!(
            node = me,
            "this server (node {me}) missed its heartbeats for longer than the lease ({} s) and \
             was declared dead; another server took its runs over. Rejoining. (Raise \
             --cluster-lease-seconds if the database or this machine pauses this long.)",
            state.cluster.lease.as_secs()
        );
        join(state).await?;
    }
    for dead in state
        .store
        .take_over_dead(me, state.cluster.lease_ms())
        .await?
    {
        take_over(state, &dead).await?;
    }
    crate::flows::leases::tick(state).await;
    Ok(())
}

/// Takes the runs of `dead` (declared dead by this server) over.
async fn take_over(state: &Arc<AppState>, dead: &str) -> Result<(), StoreError> {
    let me = state.node.as_str();
    let lease = state.cluster.lease.as_secs();
    tracing::warn!(
        node = me,
        dead,
        "server node {dead} sent no heartbeat for {lease} s: declared dead; node {me} takes its \
         work over"
    );
    let cause = format!(
        "server node {dead} stopped answering (no heartbeat for {lease} s) and node {me} took \
         its work over"
    );
    let recovered = crate::runs::recovery::recover_node(&*state.store, dead, &cause).await?;
    crate::runs::recovery::send_callbacks(state, recovered.requeued.crashed);
    state.runs.wake();
    Ok(())
}

/// At a graceful stop, once no run is claimed any more and every instance stopped: the runs
/// this server was running are queued again for the other servers (or its own next start),
/// and it is marked as left, so nobody waits a lease for it.
pub async fn leave(state: &Arc<AppState>) -> Result<(), StoreError> {
    let me = state.node.as_str();
    let recovered = crate::runs::recovery::recover_node(
        &*state.store,
        me,
        &format!("the server (node {me}) stopped"),
    )
    .await?;
    // Sent by this process before it exits only if it gets to; the receivers of runs that
    // ended `crashed` learn it from the run's record otherwise.
    crate::runs::recovery::send_callbacks(state, recovered.requeued.crashed);
    // Its flow instances' leases end now: another server takes them over at its next beat
    // instead of a lease later (this server, restarted, resumes those still its own).
    state.store.renew_leases(me, 0).await?;
    state.store.leave(me).await
}

/// What this server reports with each heartbeat.
fn load(state: &AppState) -> NodeLoad {
    let instances = state
        .deployments
        .all_pools()
        .iter()
        .map(|pool| pool.stats().instances as u64)
        .sum();
    let runs = state
        .runs
        .in_flight
        .lock()
        .map(|in_flight| in_flight.total as u64)
        .unwrap_or(0);
    NodeLoad {
        capacity: capacity(state),
        instances,
        runs,
    }
}

/// What this server can run, as `faasbox nodes` shows it (JSON text).
fn capacity(state: &AppState) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    serde_json::json!({
        "cores": cores,
        "memory_bytes": memory_bytes(),
        "runs_in_flight": state.config.runs_in_flight,
    })
    .to_string()
}

/// The machine's memory (`MemTotal` of /proc/meminfo), if it can be read.
fn memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The API address this server advertises.
fn advertised(state: &AppState) -> String {
    state
        .cluster
        .advertise
        .clone()
        .unwrap_or_else(|| state.cluster.advertised(state.config.listen))
}
