//! Removing everything of one instance: container, network, overlay mount, disk, cgroups and
//! directory. Shared by stop, failed starts and cleanup.

use super::layout::{InstanceDir, InstanceMeta, Layout};
use super::{cgroup, network, overlay, Inner};
use faasbox_driver::{DriverError, RuntimeClass};

/// What one teardown removed.
#[derive(Debug, Default)]
pub(super) struct Removed {
    pub container: bool,
    pub mount: bool,
    pub cgroup: bool,
    pub netns: bool,
    pub pasta: bool,
}

impl Inner {
    /// Removes everything of one instance. Every step runs even if an earlier one failed;
    /// the instance directory goes only when nothing is mounted in it any more.
    pub(super) async fn teardown(&self, id: &str) -> Result<Removed, DriverError> {
        let dir = self.layout.instance(id);
        let meta = InstanceMeta::read(&dir);
        let runtimes: Vec<RuntimeClass> = match (&meta, self.live_instances().get(id)) {
            (Some(meta), _) => vec![meta.runtime],
            (None, Some(runtime)) => vec![*runtime],
            (None, None) => RuntimeClass::ALL.to_vec(),
        };
        let mut removed = Removed {
            // The runtime's delete usually removes the cgroups itself: count what existed.
            cgroup: !cgroup::instance_dirs(&self.layout, id).is_empty(),
            ..Removed::default()
        };
        let mut failures: Vec<String> = Vec::new();
        for runtime in runtimes {
            let Ok(cli) = self.runtime_cli(runtime) else {
                continue;
            };
            match cli.force_delete(id).await {
                Ok(existed) => removed.container |= existed,
                Err(e) => failures.push(e.to_string()),
            }
        }
        // A container of the other runtime of the standard class (runc or crun), left by a
        // server that ran with the other `--oci-runtime`.
        for cli in self.other_standard_clis() {
            if cli.root().join(id).exists() {
                match cli.force_delete(id).await {
                    Ok(existed) => removed.container |= existed,
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        // Without instance.json the instance may have had network: look for it.
        if meta.as_ref().is_none_or(|m| m.network) {
            let (pasta, netns) = network::teardown(Layout::netns_name(id), &dir).await;
            removed.pasta = pasta;
            removed.netns = netns;
        }
        // The root filesystem first (it uses the disk), then the disk and any idmapped layer
        // view a failed start left.
        match overlay::unmount(&dir.rootfs()) {
            Ok(was_mounted) => removed.mount = was_mounted,
            Err(e) => failures.push(e.to_string()),
        }
        for mount_point in overlay::mounts_under(dir.root()) {
            match overlay::unmount(&mount_point) {
                Ok(was_mounted) => removed.mount |= was_mounted,
                Err(e) => failures.push(e.to_string()),
            }
        }
        match cgroup::remove_instance(&self.layout, id).await {
            Ok(existed) => removed.cgroup |= existed,
            Err(e) => failures.push(e),
        }
        if let Err(e) = remove_instance_dir(&dir) {
            failures.push(e);
        }
        self.live_instances().remove(id);
        if failures.is_empty() {
            Ok(removed)
        } else {
            Err(DriverError::Cleanup(format!(
                "instance {id}: {}",
                failures.join("; ")
            )))
        }
    }
}

/// Removes an instance directory unless something is still mounted in it (removing through a
/// mount would reach into the mounted file system).
fn remove_instance_dir(dir: &InstanceDir) -> Result<(), String> {
    if !dir.root().exists() {
        return Ok(());
    }
    let still_mounted = overlay::mounts_under(dir.root());
    if !still_mounted.is_empty() {
        return Err(format!(
            "{} is still mounted; not removing {}",
            still_mounted[0].display(),
            dir.root().display()
        ));
    }
    std::fs::remove_dir_all(dir.root())
        .map_err(|e| format!("cannot remove {}: {e}", dir.root().display()))
}
