//! Removing everything of one instance: container, network, overlay mount, disk, cgroups and
//! directory. Shared by stop, failed starts and cleanup.

use std::path::PathBuf;

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
        // The mount table is read once: it grows with every instance's mounts, and reading it
        // twice per teardown was about a tenth of the server's CPU when many instances stopped
        // at once. Nothing mounts into a directory being torn down, so what it lists is all
        // there is.
        let mut unmounted_all = true;
        let mounted = overlay::read_mounts_under(dir.root()).unwrap_or_else(|e| {
            unmounted_all = false;
            failures.push(format!("cannot read the mount table: {e}"));
            Vec::new()
        });
        for mount_point in teardown_order(&dir, mounted) {
            match overlay::unmount(&mount_point) {
                Ok(was_mounted) => removed.mount |= was_mounted,
                Err(e) => {
                    unmounted_all = false;
                    failures.push(e.to_string());
                }
            }
        }
        match cgroup::remove_instance(&self.layout, id).await {
            Ok(existed) => removed.cgroup |= existed,
            Err(e) => failures.push(e),
        }
        // Removing through a mount would reach into the mounted file system.
        if unmounted_all {
            if let Err(e) = remove_instance_dir(&dir) {
                failures.push(e);
            }
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

/// The order to unmount an instance's mounts in: the root filesystem first (its overlay uses
/// the disk and any idmapped layer view), then the deepest first (`mounts` is in that order).
/// A path mounted more than once is listed as often, so each mount on it is undone.
fn teardown_order(dir: &InstanceDir, mounts: Vec<PathBuf>) -> Vec<PathBuf> {
    let rootfs = dir.rootfs();
    let (first, rest): (Vec<PathBuf>, Vec<PathBuf>) =
        mounts.into_iter().partition(|m| *m == rootfs);
    first.into_iter().chain(rest).collect()
}

/// Removes an instance directory (nothing is mounted in it any more).
fn remove_instance_dir(dir: &InstanceDir) -> Result<(), String> {
    match std::fs::remove_dir_all(dir.root()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", dir.root().display())),
    }
}
