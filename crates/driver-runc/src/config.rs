//! How the runc driver is set up ([`DriverConfig`]): its state directory, the agent binary, the
//! OCI runtime binary of each [`RuntimeClass`] (runc, crun or faasbox-oci for the standard class), the
//! network helper (pasta or slirp4netns), and the user namespace's id range.

use std::path::{Path, PathBuf};
use std::time::Duration;

use faasbox_driver::{NetworkHelper, OciRuntime, RuntimeClass};

/// How a [`crate::RuncDriver`] is set up.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The driver's own directory, e.g. `<data-dir>/run`. Everything the driver creates on disk
    /// lives below it, and its canonical path names the driver's resources elsewhere (cgroups,
    /// network namespaces) so that several servers on one machine never touch each other's.
    pub state_dir: PathBuf,
    /// The static `faasbox-agent` binary on the host, bind-mounted read-only into every instance.
    pub agent_binary: PathBuf,
    /// Which OCI runtime runs instances of [`RuntimeClass::Standard`] (runc unless set).
    pub oci_runtime: OciRuntime,
    /// The `runc` binary (a bare name is looked up in `PATH`): runs instances of
    /// [`RuntimeClass::Standard`] when [`DriverConfig::oci_runtime`] is runc.
    pub runc_path: PathBuf,
    /// The `crun` binary (package `crun`; a bare name is looked up in `PATH`): runs instances
    /// of [`RuntimeClass::Standard`] when [`DriverConfig::oci_runtime`] is crun.
    pub crun_path: PathBuf,
    /// The `faasbox-oci` binary (built with faasbox, on youki's libcontainer): runs instances
    /// of [`RuntimeClass::Standard`] when [`DriverConfig::oci_runtime`] is libcontainer.
    pub libcontainer_path: PathBuf,
    /// The `runsc` (gVisor) binary (a bare name is looked up in `PATH`): runs instances of
    /// [`RuntimeClass::Sandboxed`]. `None`: this driver does not offer that class, and starts of
    /// it fail with [`faasbox_driver::DriverError::UnsupportedClass`].
    pub runsc_path: Option<PathBuf>,
    /// Which helper gives instances with network their outbound network (slirp4netns unless
    /// set).
    pub network_helper: NetworkHelper,
    /// The `pasta` binary (package `passt`; a bare name is looked up in `PATH`).
    pub pasta_path: PathBuf,
    /// The `slirp4netns` binary (package `slirp4netns`; a bare name is looked up in `PATH`).
    pub slirp4netns_path: PathBuf,
    /// Overall bound for [`Driver::start`], readiness included. The agent has its own
    /// `ready_timeout_ms` for the function; this one also covers the container start.
    pub start_timeout: Duration,
    /// Let functions reach the host's loopback services through the network namespace's
    /// gateway address (slirp4netns maps `10.0.2.2`/`fd00::2`, pasta the host's gateway, to
    /// the host's `127.0.0.1`/`::1`). Off by default: with
    /// it, every function can talk to whatever listens on the host's loopback (databases,
    /// registries, the faasbox API itself). For development and tests only.
    pub allow_host_loopback: bool,
    /// Map container root to an unprivileged host uid/gid range through a user namespace
    /// (runc only; gVisor isolates with its own kernel). `None` runs container root as host
    /// root. When the kernel refuses (no user namespaces, no idmapped mounts), the driver runs
    /// without and says so in its log at start.
    pub id_map: Option<IdMap>,
    /// Network namespaces with their network helper kept ready ahead of demand (see the
    /// `spare` module): an instance with network takes one instead of waiting for the helper.
    /// 0 keeps none
    /// (the default); the pool fills after the first start with network.
    pub spare_networks: usize,
    /// Containers created ahead of demand per function spec ("stem cells", see the `stem`
    /// module): after a start of a runc function, this many instances of exactly its spec are
    /// kept created (`runc create` done, nothing of the function run yet), and the next start
    /// only writes the agent's configuration and runs `runc start`. 0 keeps none (the
    /// default).
    pub spare_containers: usize,
    /// At most this many stem cells in all (ready and being made).
    pub spare_containers_total: usize,
    /// A stem cell not claimed for this long is torn down.
    pub spare_container_idle: Duration,
}

/// Container ids `0..size` appear on the host as `host_base..host_base + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// The host id container id 0 maps to.
    pub host_base: u32,
    /// How many ids are mapped.
    pub size: u32,
}

impl IdMap {
    /// Host uids and gids 1879048192 (`0x70000000`) to 1879113727: above the ranges
    /// `useradd` hands out in `/etc/subuid` (100000 up to 600100000 by default) and
    /// systemd-nspawn picks from (524288 up to 1879048191), below 2^31 (tools that treat ids as
    /// signed). 65536 ids: container uids and gids 0 to 65535.
    pub const DEFAULT: IdMap = IdMap {
        host_base: 0x7000_0000,
        size: 65_536,
    };

    /// The host id of container id `id`, if it is mapped.
    pub fn host_id(&self, id: u32) -> Option<u32> {
        (id < self.size).then(|| self.host_base + id)
    }
}

impl DriverConfig {
    /// A configuration with the default tool names (`faasbox-oci` next to the agent) and a
    /// start timeout of 130 s (the agent's default readiness bound of 120 s plus room for the
    /// container start).
    pub fn new(state_dir: impl Into<PathBuf>, agent_binary: impl Into<PathBuf>) -> Self {
        let agent_binary: PathBuf = agent_binary.into();
        let libcontainer_path = agent_binary.with_file_name(OciRuntime::Libcontainer.program());
        DriverConfig {
            state_dir: state_dir.into(),
            agent_binary,
            libcontainer_path,
            oci_runtime: OciRuntime::Runc,
            runc_path: PathBuf::from("runc"),
            crun_path: PathBuf::from("crun"),
            runsc_path: Some(PathBuf::from("runsc")),
            network_helper: NetworkHelper::Slirp4netns,
            pasta_path: PathBuf::from("pasta"),
            slirp4netns_path: PathBuf::from("slirp4netns"),
            start_timeout: Duration::from_secs(130),
            allow_host_loopback: false,
            id_map: Some(IdMap::DEFAULT),
            spare_networks: 0,
            spare_containers: 0,
            spare_containers_total: 0,
            spare_container_idle: Duration::from_secs(60),
        }
    }

    /// The OCI runtime binary that runs instances of `class`; `None` when this driver is
    /// configured without it.
    pub fn runtime_binary(&self, class: RuntimeClass) -> Option<&Path> {
        match class {
            RuntimeClass::Standard => Some(self.oci_binary(self.oci_runtime)),
            RuntimeClass::Sandboxed => self.runsc_path.as_deref(),
        }
    }

    /// The binary of OCI runtime `oci`.
    pub fn oci_binary(&self, oci: OciRuntime) -> &Path {
        match oci {
            OciRuntime::Runc => &self.runc_path,
            OciRuntime::Crun => &self.crun_path,
            OciRuntime::Libcontainer => &self.libcontainer_path,
        }
    }
}
