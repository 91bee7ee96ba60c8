//! Finding and removing what earlier runs of this driver left behind (after a crash or a
//! SIGKILL of the server), and stopping everything at shutdown.
//!
//! An instance can leave traces in six places; each is searched independently, so a trace is
//! found even when the others are gone:
//!
//! | where | how it is recognised as ours |
//! |---|---|
//! | `<state_dir>/instances/<id>` | the directory itself |
//! | containers in `<state_dir>/runc`, `crun`, `runsc` | `runc/crun/runsc list` of our own roots |
//! | overlay mounts | mount points below `<state_dir>/instances` in `/proc/self/mountinfo` |
//! | cgroups | directories in `<hierarchy>/faasbox/<prefix>/` |
//! | network namespaces | `/run/netns/<prefix>-*` |
//! | network helpers | `/proc/*/cmdline` of a pasta or slirp4netns serving `/run/netns/<prefix>-*` |
//!
//! The ids found are united, and each gets the same teardown as a normal stop.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::{cgroup, network, overlay, Inner};
use faasbox_driver::{CleanupReport, DriverError, RuntimeClass};

/// What the cleanup report counts, in its words: containers deleted from the runtime roots,
/// overlay mounts unmounted, instance cgroups removed (one per instance, whatever the number
/// of controllers), network namespaces deleted, stray processes (pasta) killed.
pub const CONTAINERS: &str = "containers";
/// See [`CONTAINERS`].
pub const MOUNTS: &str = "mounts";
/// See [`CONTAINERS`].
pub const CGROUPS: &str = "cgroups";
/// See [`CONTAINERS`].
pub const NETNS: &str = "network namespaces";
/// See [`CONTAINERS`].
pub const PROCESSES: &str = "processes";
/// Every kind, in the order the report names them.
const REPORTED: [&str; 5] = [CONTAINERS, MOUNTS, CGROUPS, NETNS, PROCESSES];

impl Inner {
    /// Tears down every instance of this driver, live or left over.
    pub(super) async fn cleanup(self: &Arc<Self>) -> Result<CleanupReport, DriverError> {
        let mut failures: Vec<String> = Vec::new();
        let ids = self.find_instances(&mut failures).await;

        let mut report = CleanupReport::naming(REPORTED);
        let mut tasks = JoinSet::new();
        for id in ids {
            let inner = Arc::clone(self);
            tasks.spawn(async move { (inner.teardown(&id).await, id) });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((Ok(removed), _)) => {
                    report.add(CONTAINERS, usize::from(removed.container));
                    report.add(MOUNTS, usize::from(removed.mount));
                    report.add(CGROUPS, usize::from(removed.cgroup));
                    report.add(NETNS, usize::from(removed.netns));
                    report.add(PROCESSES, usize::from(removed.pasta));
                }
                Ok((Err(e), id)) => failures.push(format!("{id}: {e}")),
                Err(e) => failures.push(format!("teardown task failed: {e}")),
            }
        }

        // Whatever is still mounted below the instances directory (not named like an id).
        for mount_point in overlay::mounts_under(&self.layout.instances_dir()) {
            match overlay::unmount(&mount_point) {
                Ok(true) => report.add(MOUNTS, 1),
                Ok(false) => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        // Network helpers (pasta, slirp4netns) of namespaces that are already gone.
        let prefix = format!("{}-", self.layout.prefix());
        for stray in network::stray_helpers(&prefix) {
            if network::kill_helper(stray.pid, &stray.netns) {
                tracing::debug!(pid = stray.pid, program = stray.program, netns = %stray.netns.display(), "killed a stray network helper");
                report.add(PROCESSES, 1);
            }
        }
        cgroup::remove_parents(&self.layout);

        if !report.is_empty() {
            tracing::info!(%report, prefix = self.layout.prefix(), "removed leftovers of earlier runs");
        }
        if failures.is_empty() {
            Ok(report)
        } else {
            Err(DriverError::Cleanup(failures.join("; ")))
        }
    }

    /// Every id of this driver with a trace anywhere.
    async fn find_instances(&self, failures: &mut Vec<String>) -> BTreeSet<String> {
        let mut ids: BTreeSet<String> = self.live_instances().keys().cloned().collect();
        if let Ok(entries) = std::fs::read_dir(self.layout.instances_dir()) {
            ids.extend(
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string)),
            );
        }
        let configured = RuntimeClass::ALL
            .into_iter()
            .filter_map(|runtime| self.runtime_cli(runtime).ok());
        for cli in configured.chain(self.other_standard_clis()) {
            if !cli.root().exists() {
                continue;
            }
            match cli.list().await {
                Ok(listed) => ids.extend(listed),
                Err(e) => failures.push(e.to_string()),
            }
        }
        ids.extend(cgroup::list_instances(&self.layout));
        let prefix = format!("{}-", self.layout.prefix());
        ids.extend(network::list_netns(&prefix));
        ids.extend(
            network::stray_helpers(&prefix)
                .into_iter()
                .filter_map(|stray| Some(stray.netns.file_name()?.to_str()?.to_string())),
        );
        ids.retain(|id| self.layout.owns(id));
        ids
    }
}
