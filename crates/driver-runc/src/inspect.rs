//! Test-only inspection of the driver: every trace an instance (or the whole driver) left
//! anywhere, and where the cgroups are.

use std::path::{Path, PathBuf};

use super::command::resolve_tool;
use super::layout::Layout;
use super::{cgroup, network, overlay, RuncDriver};
use faasbox_driver::RuntimeClass;

/// True when a host tool can be found (tests skip what needs a missing one).
pub(crate) fn command_available(name: &str) -> bool {
    resolve_tool(Path::new(name), "tool", "").is_ok()
}

impl RuncDriver {
    /// Descriptions of every trace of `id`: container, instance directory, mounts, cgroups,
    /// network namespace, pasta process. Empty when the instance is completely gone.
    pub(crate) async fn traces(&self, id: &str) -> Vec<String> {
        let inner = &self.inner;
        let mut found = Vec::new();
        for runtime in RuntimeClass::ALL {
            if let Ok(cli) = inner.runtime_cli(runtime) {
                if let Ok(Some(state)) = cli.state(id).await {
                    found.push(format!("{runtime} container ({})", state.status));
                }
            }
        }
        let dir = inner.layout.instance(id);
        if dir.root().exists() {
            found.push(format!("directory {}", dir.root().display()));
        }
        for mount in overlay::mounts_under(dir.root()) {
            found.push(format!("mount {}", mount.display()));
        }
        for cgroup in cgroup::instance_dirs(&inner.layout, id) {
            found.push(format!("cgroup {}", cgroup.display()));
        }
        if network::netns_path(Layout::netns_name(id)).exists() {
            found.push(format!("netns {id}"));
        }
        for stray in network::stray_helpers(Layout::netns_name(id)) {
            found.push(format!("{} process {}", stray.program, stray.pid));
        }
        found
    }

    /// Descriptions of every trace of any instance of this driver.
    pub(crate) async fn all_traces(&self) -> Vec<String> {
        let inner = &self.inner;
        let mut found = Vec::new();
        for runtime in RuntimeClass::ALL {
            if let Ok(cli) = inner.runtime_cli(runtime) {
                for id in cli.list().await.unwrap_or_default() {
                    found.push(format!("{runtime} container {id}"));
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(inner.layout.instances_dir()) {
            for entry in entries.flatten() {
                found.push(format!("directory {}", entry.path().display()));
            }
        }
        // Below the state directory: its own tmpfs is not an instance's.
        let state_dir = inner.layout.state_dir();
        for mount in overlay::mounts_under(state_dir) {
            if mount != state_dir {
                found.push(format!("mount {}", mount.display()));
            }
        }
        for id in cgroup::list_instances(&inner.layout) {
            found.push(format!("cgroup {id}"));
        }
        let prefix = format!("{}-", inner.layout.prefix());
        for name in network::list_netns(&prefix) {
            found.push(format!("netns {name}"));
        }
        for stray in network::stray_helpers(&prefix) {
            found.push(format!("{} process {}", stray.program, stray.pid));
        }
        found
    }

    /// The host pid of the instance's container process (the agent under runc), if it runs.
    pub(crate) async fn container_pid(&self, id: &str, runtime: RuntimeClass) -> Option<i32> {
        let cli = self.inner.runtime_cli(runtime).ok()?;
        let state = cli.state(id).await.ok()??;
        (state.pid > 0).then_some(state.pid)
    }

    /// The instance's directory of one kind: `upper` (the overlay's upper directory), `disk`
    /// (the mount point of its bounded disk), `ctl` (the control directory), `agent.log`,
    /// `init.pid` (the runtime's pid file), `agent.json`.
    pub(crate) fn instance_path(&self, id: &str, kind: &str) -> PathBuf {
        let dir = self.inner.layout.instance(id);
        match kind {
            "upper" => dir.upper(),
            "disk" => dir.disk(),
            "ctl" => dir.ctl(),
            "agent.log" => dir.agent_log(),
            "init.pid" => dir.init_pid(),
            "agent.json" => dir.agent_config(),
            other => panic!("no instance path {other}"),
        }
    }

    /// The instance's cgroup directory that holds `controller`: the v1 hierarchy with it,
    /// else the unified one (a cgroup v2 host). `true` with it when it is the unified one.
    pub(crate) fn cgroup_dir(&self, controller: &str, id: &str) -> Option<(PathBuf, bool)> {
        let all = cgroup::hierarchies();
        let hierarchy = all
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .or_else(|| all.iter().find(|h| h.unified))?;
        let dir = hierarchy
            .mount_point
            .join(self.inner.layout.cgroups_path(id).trim_start_matches('/'));
        Some((dir, hierarchy.unified))
    }
}
