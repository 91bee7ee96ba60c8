//! [`RuncDriver`]: the [`faasbox_driver::Driver`] that runs function instances as containers
//! of an OCI runtime CLI on this host: `runc` (or `crun`, [`DriverConfig::oci_runtime`]) for
//! [`RuntimeClass::Standard`], gVisor's `runsc` for [`RuntimeClass::Sandboxed`]
//! ([`DriverConfig`] names the binaries). Root filesystems are
//! overlayfs mounts of the image's extracted layers, which a [`LayerSource`] (the server's
//! image store) gives for the spec's image reference; the agent is reached on a Unix socket.
//! One module per job:
//!
//! - [`start`]: make the instance directory ([`layout`]), mount its bounded disk ([`disk`])
//!   and the overlay root filesystem ([`overlay`], through idmapped layer views with a user
//!   namespace: [`userns`]), write `agent.json`, set up the network ([`network`]) when asked
//!   for, write the OCI spec ([`spec`], with the seccomp filter of [`seccomp`]), `run --detach`
//!   the container ([`command`], [`runsc`] for what gVisor needs on top), then wait for the
//!   agent ([`ready`]). The root filesystem and the network are made at once; the network
//!   may come ready-made from [`spare`]; after a start, [`stem`] keeps containers of the same
//!   spec created ahead (`runc create`), and the next start of that spec only runs `runc
//!   start` on one. Any failure, timeout, or the caller dropping the start future tears
//!   down everything made so far.
//! - [`teardown`]: what stop, failed starts and cleanup share; [`cgroup`] finds and removes
//!   the instance's cgroups and reads its OOM counter.
//! - [`cleanup`]: finds what a crashed server left behind.
//! - [`report`]: log tails and durations for error messages.
//! - [`export`]: an instance's file system changes (its overlay upper directory) as an OCI
//!   layer tar, for image builds ([`Driver::export_changes`]).

mod cgroup;
mod cleanup;
mod command;
mod config;
mod disk;
mod export;
mod image;
#[cfg(test)]
mod inspect;
mod layout;
mod memory_merge;
mod mount_namespace;
mod network;
mod overlay;
mod ready;
mod report;
mod runsc;
mod seccomp;
mod slirp;
mod spare;
mod spec;
mod start;
mod state_tmpfs;
mod stem;
mod teardown;
mod userns;

#[cfg(test)]
mod tests;

pub use config::{DriverConfig, IdMap};
pub use image::LayerSource;

/// The kinds of leftovers the runc driver's [`CleanupReport`] counts (its
/// [`CleanupReport::count`] keys).
pub mod leftovers {
    pub use crate::cleanup::{CGROUPS, CONTAINERS, MOUNTS, NETNS, PROCESSES};
}

#[cfg(test)]
pub(crate) use inspect::command_available;
pub(crate) use report::tail_of_file;
pub(crate) use start::StartOptions;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use self::command::{resolve_tool, HybridCgroups, RuntimeCli};
use self::layout::Layout;
use self::network::NetworkTools;
use self::userns::Userns;
use faasbox_driver::{
    CleanupReport, Driver, DriverError, ExportedChanges, Instance, InstanceSpec, NetworkHelper,
    OciRuntime, RuntimeClass,
};

/// Runs instances with runc or runsc. Cheap to share: clones of the inner state are `Arc`s.
///
/// Dropping the driver leaves running instances alone (a restarted server finds them with
/// [`Driver::cleanup_leftovers`]); call [`Driver::stop_all`] at shutdown.
pub struct RuncDriver {
    inner: Arc<Inner>,
}

struct Inner {
    config: DriverConfig,
    /// Where images' layer directories come from.
    layers: Arc<dyn LayerSource>,
    layout: Layout,
    /// The configured runtime of the standard class: runc or crun.
    standard: RuntimeCli,
    /// How the host's cgroups are mounted (for crun).
    cgroups: HybridCgroups,
    /// The user namespace runc instances' layers are idmapped with; `None`: container root is
    /// host root (not configured, or the kernel refused).
    userns: Option<Arc<Userns>>,
    /// Why runc instances get no user namespace, when they do not.
    userns_problem: Option<String>,
    /// Instances started by this driver object and not stopped yet.
    live: Mutex<HashMap<String, RuntimeClass>>,
    /// Network namespaces with their network helper made ahead of demand.
    spares: spare::SpareNetworks,
    /// Containers created ahead of demand for functions that started recently.
    stems: stem::StemCells,
    /// The sealed copy of runc or crun that `standard` executes (kept open for as long as the
    /// driver).
    _standard_copy: Option<command::SealedCopy>,
}

impl RuncDriver {
    /// Prepares the state directory and checks that runc (or crun, when configured) is
    /// installed (runsc and pasta are checked when an instance needs them). Logs whether runc instances get a user namespace
    /// and, when they cannot, why. Instances' images are resolved through `layers`.
    pub fn new(config: DriverConfig, layers: Arc<dyn LayerSource>) -> Result<Self, DriverError> {
        let layout = Layout::new(&config.state_dir)?;
        let oci = config.oci_runtime;
        let standard_binary = resolve_oci_runtime(&config, oci)?;
        let standard_copy = match command::SealedCopy::of(&standard_binary) {
            Ok(copy) => Some(copy),
            Err(e) => {
                tracing::info!(error = %e, binary = %standard_binary.display(), "cannot make a sealed copy of {oci}; it copies itself at each start");
                None
            }
        };
        let cgroups = HybridCgroups::of_host();
        if oci == OciRuntime::Crun && cgroups == HybridCgroups::UnifiedControllers {
            tracing::info!(
                "hybrid cgroups with controllers on the unified hierarchy: crun creates \
                 containers in a private mount namespace where that hierarchy shows none \
                 (the limits are set in the v1 hierarchies, as runc does)"
            );
        }
        let mut standard =
            RuntimeCli::standard(oci, standard_binary, layout.oci_root(oci), cgroups);
        if let Some(copy) = &standard_copy {
            standard = standard.executing(copy);
        }
        let state_dirs = [
            layout.instances_dir(),
            layout.oci_root(oci),
            layout.runtime_root(RuntimeClass::Sandboxed),
        ];
        // Made on the disk too, so that they are there when the tmpfs is gone after a stop.
        create_dirs(&state_dirs)?;
        match state_tmpfs::prepare(layout.state_dir()) {
            state_tmpfs::StateFs::Tmpfs | state_tmpfs::StateFs::HostTmpfs => {}
            state_tmpfs::StateFs::LeftOnDisk => tracing::info!(
                dir = %layout.state_dir().display(),
                "the state directory holds instances of an earlier run: it stays on disk until \
                 the next start finds it empty (the cleanup at this start empties it)"
            ),
            state_tmpfs::StateFs::MountFailed(errno) => tracing::warn!(
                dir = %layout.state_dir().display(),
                %errno,
                "cannot mount a tmpfs on the state directory: the instances' state stays on \
                 disk, where each start and stop costs more (the server needs CAP_SYS_ADMIN, \
                 as for its other mounts)"
            ),
        }
        create_dirs(&state_dirs)?;
        for dir in [layout.state_dir().to_path_buf(), layout.instances_dir()] {
            layout::make_traversable(&dir)?;
        }
        let (userns, userns_problem) = match user_namespace(&config, &layout) {
            Ok(userns) => (Some(userns), None),
            Err(problem) => (None, Some(problem)),
        };
        let spares = spare::SpareNetworks::new(config.spare_networks);
        let stems = stem::StemCells::new(
            config.spare_containers,
            config.spare_containers_total,
            config.spare_container_idle,
        );
        Ok(RuncDriver {
            inner: Arc::new(Inner {
                spares,
                stems,
                _standard_copy: standard_copy,
                config,
                layers,
                layout,
                standard,
                cgroups,
                userns,
                userns_problem,
                live: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The id mapping of runc instances' user namespaces; `None` when container root is host
    /// root.
    pub fn id_map(&self) -> Option<IdMap> {
        self.inner.userns.as_ref().map(|u| u.map())
    }

    /// Why runc instances get no user namespace (`None` when they get one).
    pub fn user_namespace_problem(&self) -> Option<&str> {
        self.inner.userns_problem.as_deref()
    }

    /// The prefix of every container id, netns name and cgroup of this driver.
    pub fn prefix(&self) -> &str {
        self.inner.layout.prefix()
    }

    /// The canonical state directory.
    pub fn state_dir(&self) -> &Path {
        self.inner.layout.state_dir()
    }

    /// Containers created ahead of demand ("stem cells") ready now.
    pub fn spare_containers(&self) -> usize {
        self.inner.stems.ready()
    }

    /// [`Driver::start`] with test hooks: another container process, and optionally not
    /// waiting for readiness.
    #[cfg(test)]
    pub(crate) async fn start_with(
        &self,
        spec: InstanceSpec,
        options: StartOptions,
    ) -> Result<Instance, DriverError> {
        Inner::start(&self.inner, spec, options).await
    }
}

#[async_trait]
impl Driver for RuncDriver {
    fn name(&self) -> &'static str {
        "runc"
    }

    fn spare_containers(&self) -> usize {
        self.inner.stems.ready()
    }

    async fn start(&self, spec: InstanceSpec) -> Result<Instance, DriverError> {
        let options = StartOptions {
            args: None,
            wait_ready: true,
        };
        Inner::start(&self.inner, spec, options).await
    }

    async fn stop(&self, id: &str) -> Result<(), DriverError> {
        if !self.inner.layout.owns(id) {
            return Err(DriverError::InvalidId(id.to_string()));
        }
        self.inner.teardown(id).await.map(|_| ())
    }

    async fn oom_killed(&self, id: &str) -> bool {
        if !self.inner.layout.owns(id) {
            return false;
        }
        cgroup::memory_dir(&self.inner.layout, id).is_some_and(|dir| cgroup::oom_killed(&dir))
    }

    async fn cleanup_leftovers(&self) -> Result<CleanupReport, DriverError> {
        self.inner.cleanup().await
    }

    async fn stop_all(&self) -> Result<(), DriverError> {
        // The cleanup finds the spares (by prefix) with everything else.
        self.inner.spares.close();
        self.inner.stems.close();
        self.inner.cleanup().await?;
        state_tmpfs::release(self.inner.layout.state_dir());
        Ok(())
    }

    async fn export_changes(
        &self,
        id: &str,
        dest: &Path,
        exclude: &[String],
    ) -> Result<ExportedChanges, DriverError> {
        self.inner.export_changes(id, dest, exclude).await
    }
}

fn create_dirs(dirs: &[PathBuf]) -> Result<(), DriverError> {
    for dir in dirs {
        std::fs::create_dir_all(dir)
            .map_err(|e| DriverError::io(format!("cannot create {}", dir.display()), e))?;
    }
    Ok(())
}

/// The binary of the configured OCI runtime of the standard class, or an error naming its
/// package.
fn resolve_oci_runtime(config: &DriverConfig, oci: OciRuntime) -> Result<PathBuf, DriverError> {
    let path = config.oci_binary(oci);
    match oci {
        OciRuntime::Runc => resolve_tool(
            path,
            "runc",
            "install it with `apt-get install runc` or set the runc path in the configuration",
        ),
        OciRuntime::Crun => resolve_tool(
            path,
            "crun",
            "install it with `apt-get install crun`, set the crun path in the configuration, \
             or use the default OCI runtime runc",
        ),
        OciRuntime::Libcontainer => resolve_tool(
            path,
            "faasbox-oci",
            "it is built with faasbox (`cargo build` puts it next to the faasbox binary); set \
             its path with --faasbox-oci, or use the default OCI runtime runc",
        ),
    }
}

/// The user namespace for runc instances, if configured and the kernel allows it, else why
/// not; says which in the log.
fn user_namespace(config: &DriverConfig, layout: &Layout) -> Result<Arc<Userns>, String> {
    let Some(map) = config.id_map else {
        let problem = "user namespaces are off in the configuration".to_string();
        tracing::warn!("{problem}: container root of runc instances is host root");
        return Err(problem);
    };
    let made = Userns::create(map).and_then(|userns| {
        if let Some(dir) = layout::untraversable_ancestor(layout.state_dir()) {
            return Err(format!(
                "container root (host uid {}) may not pass through {} to the instances' root \
                 filesystems; `chmod 0711` it (others may pass, not list)",
                map.host_base,
                dir.display()
            ));
        }
        // Where the image layers are (the data directory, which holds the state directory),
        // not the state directory's own tmpfs: whether overlayfs takes idmapped layers depends
        // on their file system (a tmpfs takes them only from Linux 6.3 on).
        userns.probe(layout.state_dir().parent().unwrap_or(layout.state_dir()))?;
        Ok(userns)
    });
    match made {
        Ok(userns) => {
            tracing::info!(
                host_uids = %format!("{}-{}", map.host_base, map.host_base + (map.size - 1)),
                "user namespaces in use: container root of runc instances is host uid {} \
                 (gVisor instances run on gVisor's own kernel instead)",
                map.host_base
            );
            Ok(Arc::new(userns))
        }
        Err(reason) => {
            tracing::warn!(
                "user namespaces are not in use: {reason}; container root of runc instances \
                 is host root (seccomp, capabilities and no-new-privileges still apply)"
            );
            Err(reason)
        }
    }
}

impl Inner {
    fn live_instances(&self) -> std::sync::MutexGuard<'_, HashMap<String, RuntimeClass>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn runtime_cli(&self, runtime: RuntimeClass) -> Result<RuntimeCli, DriverError> {
        match runtime {
            RuntimeClass::Standard => Ok(self.standard.clone()),
            RuntimeClass::Sandboxed => {
                let Some(runsc) = self.config.runtime_binary(runtime) else {
                    return Err(DriverError::UnsupportedClass {
                        class: runtime.to_string(),
                        driver: "runc",
                        hint: "this server runs no gVisor: set the runsc path in its \
                               configuration, or deploy the function with runtime runc"
                            .to_string(),
                    });
                };
                let binary = resolve_tool(
                    runsc,
                    "runsc",
                    "install gVisor with `apt-get install runsc` or set the runsc path in the \
                     configuration",
                )?;
                Ok(RuntimeCli::new(
                    RuntimeClass::Sandboxed,
                    binary,
                    self.layout.runtime_root(RuntimeClass::Sandboxed),
                ))
            }
        }
    }

    /// The runtimes of the standard class other than the configured one that have containers
    /// in their root (left by a server that ran with the other `--oci-runtime`) and whose
    /// binary is installed: cleanup and teardown look there too.
    fn other_standard_clis(&self) -> Vec<RuntimeCli> {
        OciRuntime::ALL
            .into_iter()
            .filter(|oci| *oci != self.config.oci_runtime)
            .filter_map(|oci| {
                let root = self.layout.oci_root(oci);
                let used = std::fs::read_dir(&root).is_ok_and(|mut e| e.next().is_some());
                let binary = resolve_tool(self.config.oci_binary(oci), "runtime", "").ok()?;
                used.then(|| RuntimeCli::standard(oci, binary, root, self.cgroups))
            })
            .collect()
    }

    fn network_tools(&self) -> Result<NetworkTools, DriverError> {
        Ok(NetworkTools {
            helper: self.config.network_helper,
            pasta: match self.config.network_helper {
                NetworkHelper::Pasta => resolve_tool(
                    &self.config.pasta_path,
                    "pasta",
                    "install it (package passt) with `apt-get install passt`, use the default \
                     network helper slirp4netns, or run functions without network",
                )?,
                NetworkHelper::Slirp4netns => self.config.pasta_path.clone(),
            },
            slirp4netns: match self.config.network_helper {
                NetworkHelper::Slirp4netns => resolve_tool(
                    &self.config.slirp4netns_path,
                    "slirp4netns",
                    "install it (package slirp4netns) with `apt-get install slirp4netns`, use \
                     the network helper pasta, or run functions without network",
                )?,
                NetworkHelper::Pasta => self.config.slirp4netns_path.clone(),
            },
            host_loopback: self.config.allow_host_loopback,
        })
    }
}
