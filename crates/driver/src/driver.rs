//! The [`Driver`] trait the server runs function instances through, and the plain data types it
//! takes and returns.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::DriverError;

/// Runs function instances: one implementation per way of running them (the runc/runsc
/// driver in `faasbox-driver-runc` today; a Docker, Kubernetes or microVM driver would be
/// another). Whatever the driver, an instance is the image's root filesystem with the
/// `faasbox-agent` binary as its first process, reachable at the [`Instance::endpoint`] the
/// driver returns.
#[async_trait]
pub trait Driver: Send + Sync {
    /// Create and start one instance of [`InstanceSpec::image`] (the driver turns the image
    /// reference into a root filesystem its own way); returns once the agent answered
    /// `GET /v1/ready` with 200. A [`RuntimeClass`] the driver does not provide is
    /// [`DriverError::UnsupportedClass`].
    async fn start(&self, spec: InstanceSpec) -> Result<Instance, DriverError>;
    /// The driver's name as the server info shows it (`runc`, …).
    fn name(&self) -> &'static str {
        "unknown"
    }
    /// Containers created ahead of demand and ready to be claimed now (runc's stem cells, see
    /// `--spare-containers`); 0 for a driver that makes none.
    fn spare_containers(&self) -> usize {
        0
    }
    /// Stop and remove everything of the instance (for runc: container, overlay mount, upper
    /// dir, cgroup, netns, pasta, control dir). Idempotent: stopping an unknown or already
    /// stopped instance is not an error.
    async fn stop(&self, id: &str) -> Result<(), DriverError>;
    /// True when the instance was killed for exceeding its memory limit (for runc: the memory
    /// cgroup's `oom_kill` counter). Only meaningful before [`Driver::stop`]; false for
    /// unknown ids.
    async fn oom_killed(&self, id: &str) -> bool;
    /// Remove every leftover of this driver's previous runs (after a crash or SIGKILL of the
    /// server), and say what it removed in its own words.
    async fn cleanup_leftovers(&self) -> Result<CleanupReport, DriverError>;
    /// Stop every instance of this driver (at shutdown).
    async fn stop_all(&self) -> Result<(), DriverError>;
    /// Write what the instance's processes changed in its root filesystem since it started (the
    /// files they created or changed, and whiteouts for what they removed) to `dest` as an
    /// uncompressed OCI layer tar: whiteouts as `.wh.<name>` entries, opaque directories with a
    /// `.wh..wh..opq` entry, owners as the container sees them. Paths under `exclude`
    /// (absolute container paths) and the driver's own mount points are left out. The instance
    /// keeps running; call it while nothing writes. Image builds use it.
    async fn export_changes(
        &self,
        id: &str,
        dest: &std::path::Path,
        exclude: &[String],
    ) -> Result<ExportedChanges, DriverError> {
        let _ = (id, dest, exclude);
        Err(DriverError::Unsupported {
            driver: "this",
            what: "export an instance's file system changes",
        })
    }
}

/// What [`Driver::export_changes`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportedChanges {
    /// Entries in the tar (files, directories, links, whiteouts).
    pub entries: u64,
    /// Bytes of the tar.
    pub bytes: u64,
}

/// What to start: one instance of one function.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// `"ns/fn"`: used in annotations and error messages.
    pub function: String,
    /// The image whose root filesystem the instance runs. The driver resolves it (the runc
    /// driver to the image store's extracted layer directories) and never writes to it.
    pub image: ImageRef,
    /// `KEY=VALUE` environment of the container process (the agent, which passes it on to the
    /// function). A default `PATH` is added when missing.
    pub env: Vec<String>,
    /// The agent's configuration (the runc driver writes it to `agent.json` in the instance's
    /// control directory).
    pub agent: faasbox_proto::AgentConfig,
    /// Memory, CPU and process limits.
    pub limits: Limits,
    /// How strongly the instance is isolated from the host.
    pub runtime: RuntimeClass,
    /// Outbound network; without it the instance has only a loopback interface.
    pub network: bool,
    /// The size of the instance's writable space: the root filesystem's writable layer (so
    /// `/tmp` and every file the function writes or changes), the directories of
    /// [`InstanceSpec::scratch`] and the agent's socket directory. Filling it fails writes with
    /// `ENOSPC`. For the runc driver it is a tmpfs whose pages count as memory: the memory
    /// limit is `limits.memory_bytes + disk_bytes`, so that a full disk is a full disk and not
    /// an out-of-memory kill.
    pub disk_bytes: u64,
    /// Directories of the instance's writable space mounted into the container (e.g. the file
    /// contract's `/direktiv-data`).
    pub scratch: Vec<ScratchMount>,
}

/// An image as a driver is given it: pinned by its manifest digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ImageRef {
    /// The reference the function was deployed with (e.g. `registry/app:1`), for messages.
    pub name: String,
    /// The manifest digest (`sha256:…`) every instance of the deployment starts from.
    pub digest: String,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str(&self.digest)
        } else {
            write!(f, "'{}' ({})", self.name, self.digest)
        }
    }
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
    /// to it (see [`InstanceSpec::disk_bytes`]).
    pub memory_bytes: u64,
    /// CPU time in thousandths of a core: 1000 is one full core, 250 a quarter.
    pub cpu_millis: u64,
    /// Maximum number of processes and threads.
    pub pids: i64,
}

/// How strongly a function's instances are isolated from the host: what a function spec's
/// `runtime` asks for. Every driver maps the classes it provides to its own means and answers
/// [`DriverError::UnsupportedClass`] for the others.
///
/// The wire names are those of the runc driver's runtimes: `"runc"` and `"runsc"` (also
/// accepted as `"gvisor"` when parsed from text).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
// The API's schema keeps its name and text from before runtime classes (the API is unchanged).
#[schema(as = OciRuntime, description = "Which OCI runtime runs an instance.")]
pub enum RuntimeClass {
    /// Namespaces, cgroups, seccomp and capabilities on the host's kernel, as containers under
    /// Docker and Kubernetes get (the runc driver: runc).
    #[default]
    #[serde(rename = "runc")]
    Standard,
    /// The function runs on a kernel of its own, not the host's (the runc driver: gVisor's
    /// runsc with its user-space kernel; a microVM driver: the VM's kernel).
    #[serde(rename = "runsc")]
    Sandboxed,
}

impl RuntimeClass {
    /// The wire name: `"runc"` or `"runsc"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeClass::Standard => "runc",
            RuntimeClass::Sandboxed => "runsc",
        }
    }

    /// Every class, e.g. for sweeping what each left behind.
    pub const ALL: [RuntimeClass; 2] = [RuntimeClass::Standard, RuntimeClass::Sandboxed];
}

impl fmt::Display for RuntimeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`RuntimeClass`] from text.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown OCI runtime {0:?}: expected \"runc\" or \"runsc\"")]
pub struct ParseRuntimeClassError(String);

impl FromStr for RuntimeClass {
    type Err = ParseRuntimeClassError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "runc" => Ok(RuntimeClass::Standard),
            "runsc" | "gvisor" => Ok(RuntimeClass::Sandboxed),
            _ => Err(ParseRuntimeClassError(s.to_string())),
        }
    }
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The driver's id of the instance, the key for [`Driver::stop`] and
    /// [`Driver::oom_killed`].
    pub id: String,
    /// Where the platform reaches the instance's agent (for [`crate::AgentClient::at`]): a Unix
    /// socket on the host (runc), or a TCP address with the instance's secret.
    pub endpoint: faasbox_proto::AgentEndpoint,
    /// The class the instance runs in.
    pub runtime: RuntimeClass,
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

/// What [`Driver::cleanup_leftovers`] found and removed: counts of things, named by the driver
/// in its own words (the runc driver: containers, mounts, cgroups, network namespaces,
/// processes), in the order the driver first named them.
///
/// Displayed as `"N what, N what, …"`, or `"nothing"` when the driver named nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    counts: Vec<(String, usize)>,
}

impl CleanupReport {
    /// A report that names `kinds` (plural nouns), each with a count of zero: what a driver
    /// looks for, so that its report says "0 …" for what it did not find.
    pub fn naming<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Self {
        let mut report = CleanupReport::default();
        for kind in kinds {
            report.add(kind, 0);
        }
        report
    }

    /// Adds `count` removed things of kind `what` (a plural noun, e.g. `"containers"`).
    pub fn add(&mut self, what: &str, count: usize) {
        match self.counts.iter_mut().find(|(kind, _)| kind == what) {
            Some((_, total)) => *total += count,
            None => self.counts.push((what.to_string(), count)),
        }
    }

    /// How many things of kind `what` were removed (0 for a kind the driver did not name).
    pub fn count(&self, what: &str) -> usize {
        self.counts
            .iter()
            .find(|(kind, _)| kind == what)
            .map_or(0, |(_, count)| *count)
    }

    /// Every kind with its count, in the order the driver named them.
    pub fn counts(&self) -> impl Iterator<Item = (&str, usize)> {
        self.counts
            .iter()
            .map(|(kind, count)| (kind.as_str(), *count))
    }

    /// How many things were removed in all.
    pub fn total(&self) -> usize {
        self.counts.iter().map(|(_, count)| count).sum()
    }

    /// True when nothing was left over.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.counts.is_empty() {
            return f.write_str("nothing");
        }
        for (index, (kind, count)) in self.counts.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{count} {kind}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_parses_and_serializes_lowercase() {
        assert_eq!(
            "runc".parse::<RuntimeClass>().unwrap(),
            RuntimeClass::Standard
        );
        assert_eq!(
            "RunSC".parse::<RuntimeClass>().unwrap(),
            RuntimeClass::Sandboxed
        );
        assert_eq!(
            "gvisor".parse::<RuntimeClass>().unwrap(),
            RuntimeClass::Sandboxed
        );
        assert!("crun".parse::<RuntimeClass>().is_err());
        assert_eq!(
            serde_json::to_string(&RuntimeClass::Sandboxed).unwrap(),
            "\"runsc\""
        );
        assert_eq!(
            serde_json::from_str::<RuntimeClass>("\"runc\"").unwrap(),
            RuntimeClass::Standard
        );
        assert!(serde_json::from_str::<RuntimeClass>("\"standard\"").is_err());
    }

    #[test]
    fn cleanup_report_counts_and_displays_in_the_drivers_words() {
        let mut report = CleanupReport::naming(["containers", "mounts"]);
        assert!(report.is_empty());
        assert_eq!(report.to_string(), "0 containers, 0 mounts");
        report.add("mounts", 2);
        report.add("containers", 1);
        report.add("mounts", 1);
        report.add("processes", 4);
        assert_eq!(report.count("mounts"), 3);
        assert_eq!(report.count("cgroups"), 0);
        assert_eq!(report.total(), 8);
        assert!(!report.is_empty());
        assert_eq!(report.to_string(), "1 containers, 3 mounts, 4 processes");
        assert_eq!(CleanupReport::default().to_string(), "nothing");
    }
}
