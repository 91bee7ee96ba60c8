//! The [`Driver`] trait the server runs function instances through, and the plain data types it
//! takes and returns.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::DriverError;

/// Runs function instances. One implementation per way of running containers (runc/runsc today).
#[async_trait]
pub trait Driver: Send + Sync {
    /// Create and start one instance; returns once the agent answered `GET /v1/ready` with 200.
    async fn start(&self, spec: InstanceSpec) -> Result<Instance, DriverError>;
    /// Stop and remove everything of the instance (container, overlay mount, upper dir, cgroup,
    /// netns, pasta, control dir). Idempotent: stopping an unknown or already stopped instance
    /// is not an error.
    async fn stop(&self, id: &str) -> Result<(), DriverError>;
    /// True when the instance's memory cgroup recorded an out-of-memory kill (the cgroup's
    /// `oom_kill` counter: `memory.oom_control` on cgroup v1, `memory.events` on v2). Only
    /// meaningful before [`Driver::stop`] removed the cgroup; false for unknown ids.
    async fn oom_killed(&self, id: &str) -> bool;
    /// Remove every leftover of this driver's previous runs (after a crash or SIGKILL of the
    /// server): containers, overlay mounts, cgroups, network namespaces, pasta processes and
    /// instance directories.
    async fn cleanup_leftovers(&self) -> Result<CleanupReport, DriverError>;
    /// Stop every instance of this driver (at shutdown).
    async fn stop_all(&self) -> Result<(), DriverError>;
}

/// How a [`crate::RuncDriver`] is set up.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The driver's own directory, e.g. `<data-dir>/run`. Everything the driver creates on disk
    /// lives below it, and its canonical path names the driver's resources elsewhere (cgroups,
    /// network namespaces) so that several servers on one machine never touch each other's.
    pub state_dir: PathBuf,
    /// The static `faasbox-agent` binary on the host, bind-mounted read-only into every instance.
    pub agent_binary: PathBuf,
    /// The `runc` binary (a bare name is looked up in `PATH`).
    pub runc_path: PathBuf,
    /// The `runsc` (gVisor) binary (a bare name is looked up in `PATH`).
    pub runsc_path: PathBuf,
    /// The `pasta` binary (package `passt`; a bare name is looked up in `PATH`).
    pub pasta_path: PathBuf,
    /// Overall bound for [`Driver::start`], readiness included. The agent has its own
    /// `ready_timeout_ms` for the function; this one also covers the container start.
    pub start_timeout: Duration,
    /// Let functions reach the host's loopback services through the network namespace's
    /// gateway address (pasta maps it to the host's `127.0.0.1`/`::1`). Off by default: with
    /// it, every function can talk to whatever listens on the host's loopback (databases,
    /// registries, the faasbox API itself). For development and tests only.
    pub allow_host_loopback: bool,
    /// Map container root to an unprivileged host uid/gid range through a user namespace
    /// (runc only; gVisor isolates with its own kernel). `None` runs container root as host
    /// root. When the kernel refuses (no user namespaces, no idmapped mounts), the driver runs
    /// without and says so in its log at start.
    pub id_map: Option<IdMap>,
}

/// Container ids `0..size` appear on the host as `host_base..host_base + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub host_base: u32,
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
    /// A configuration with the default tool names and a start timeout of 130 s (the agent's
    /// default readiness bound of 120 s plus room for the container start).
    pub fn new(state_dir: impl Into<PathBuf>, agent_binary: impl Into<PathBuf>) -> Self {
        DriverConfig {
            state_dir: state_dir.into(),
            agent_binary: agent_binary.into(),
            runc_path: PathBuf::from("runc"),
            runsc_path: PathBuf::from("runsc"),
            pasta_path: PathBuf::from("pasta"),
            start_timeout: Duration::from_secs(130),
            allow_host_loopback: false,
            id_map: Some(IdMap::DEFAULT),
        }
    }
}

/// What to start: one instance of one function.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// `"ns/fn"`: used in annotations and error messages.
    pub function: String,
    /// Extracted image layer directories, bottom first. They become the overlayfs lower
    /// directories and are never written to.
    pub layers: Vec<PathBuf>,
    /// `KEY=VALUE` environment of the container process (the agent, which passes it on to the
    /// function). A default `PATH` is added when missing.
    pub env: Vec<String>,
    /// Written to `agent.json` in the instance's control directory.
    pub agent: faasbox_proto::AgentConfig,
    pub limits: Limits,
    pub runtime: OciRuntime,
    /// Outbound network through pasta; without it the instance has only a loopback interface.
    pub network: bool,
    /// The size of the instance's writable space: a tmpfs holding the root filesystem's
    /// writable layer (so `/tmp` and every file the function writes or changes), the
    /// directories of [`InstanceSpec::scratch`] and the agent's socket directory. Filling it
    /// fails writes with `ENOSPC`; it also bounds its number of files (one per 4 KiB). Its
    /// pages are memory: the memory cgroup's limit is `limits.memory_bytes + disk_bytes`, so
    /// that a full disk is a full disk and not an out-of-memory kill.
    pub disk_bytes: u64,
    /// Directories of the instance's writable space mounted into the container (e.g. the file
    /// contract's `/direktiv-data`).
    pub scratch: Vec<ScratchMount>,
}

/// A directory of the instance's bounded writable space, mounted into the container at `path`
/// (writable, `nosuid,nodev`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchMount {
    /// Absolute path inside the container.
    pub path: String,
}

/// Resource limits of one instance. Zero (or a negative pid count) means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (swap is not granted on top of it). The instance's disk is added
    /// to it in the memory cgroup (see [`InstanceSpec::disk_bytes`]).
    pub memory_bytes: u64,
    /// CPU time in thousandths of a core: 1000 is one full core, 250 a quarter.
    pub cpu_millis: u64,
    /// Maximum number of processes and threads.
    pub pids: i64,
}

/// Which OCI runtime runs an instance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OciRuntime {
    /// runc: namespaces + cgroups, the runtime under Docker and Kubernetes.
    #[default]
    Runc,
    /// gVisor's runsc: the function runs on a user-space kernel (stronger isolation).
    Runsc,
}

impl OciRuntime {
    pub fn as_str(self) -> &'static str {
        match self {
            OciRuntime::Runc => "runc",
            OciRuntime::Runsc => "runsc",
        }
    }

    /// Every runtime, for sweeping all runtime roots.
    pub const ALL: [OciRuntime; 2] = [OciRuntime::Runc, OciRuntime::Runsc];
}

impl fmt::Display for OciRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`OciRuntime`] from text.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown OCI runtime {0:?}: expected \"runc\" or \"runsc\"")]
pub struct ParseOciRuntimeError(String);

impl FromStr for OciRuntime {
    type Err = ParseOciRuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "runc" => Ok(OciRuntime::Runc),
            "runsc" | "gvisor" => Ok(OciRuntime::Runsc),
            _ => Err(ParseOciRuntimeError(s.to_string())),
        }
    }
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The container id, also the key for [`Driver::stop`] and [`Driver::oom_killed`].
    pub id: String,
    /// Where the platform reaches the instance's agent (for [`crate::AgentClient::at`]): a Unix
    /// socket on the host (runc), or a TCP address with the instance's secret.
    pub endpoint: faasbox_proto::AgentEndpoint,
    pub runtime: OciRuntime,
}

impl Instance {
    /// The host path of the agent's Unix socket, when it is reached through one.
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        match &self.endpoint {
            faasbox_proto::AgentEndpoint::Unix(path) => Some(path),
            faasbox_proto::AgentEndpoint::Tcp { .. } => None,
        }
    }
}

/// What [`Driver::cleanup_leftovers`] found and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Containers deleted from the runtime roots.
    pub containers: usize,
    /// Overlay mounts unmounted.
    pub mounts: usize,
    /// Instance cgroups removed (one per instance, whatever the number of controllers).
    pub cgroups: usize,
    /// Network namespaces deleted.
    pub netns: usize,
    /// Stray processes (pasta) killed.
    pub processes: usize,
}

impl CleanupReport {
    /// True when nothing was left over.
    pub fn is_empty(&self) -> bool {
        *self == CleanupReport::default()
    }
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} containers, {} mounts, {} cgroups, {} network namespaces, {} processes",
            self.containers, self.mounts, self.cgroups, self.netns, self.processes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_parses_and_serializes_lowercase() {
        assert_eq!("runc".parse::<OciRuntime>().unwrap(), OciRuntime::Runc);
        assert_eq!("RunSC".parse::<OciRuntime>().unwrap(), OciRuntime::Runsc);
        assert!("crun".parse::<OciRuntime>().is_err());
        assert_eq!(
            serde_json::to_string(&OciRuntime::Runsc).unwrap(),
            "\"runsc\""
        );
        assert_eq!(
            serde_json::from_str::<OciRuntime>("\"runc\"").unwrap(),
            OciRuntime::Runc
        );
    }
}
