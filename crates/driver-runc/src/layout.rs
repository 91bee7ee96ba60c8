//! Names and places: the driver's prefix, instance ids, and the on-disk layout of the state
//! directory.
//!
//! ```text
//! <state_dir>/                    a tmpfs of its own while the driver runs (`state_tmpfs`)
//!   runc/  crun/  runsc/          --root of each OCI runtime (its container state)
//!   instances/<id>/
//!     instance.json               what was started (function, runtime, network)
//!     bundle/config.json          the OCI runtime spec
//!     rootfs/                     overlay mountpoint (lower = image layers)
//!     disk/                       a tmpfs of the instance's `disk` size: all it may write
//!       upper/  work/             overlay upper and work directories
//!       sock/agent.sock           the agent's socket; bind-mounted at /.faasbox/sock
//!       scratch/<n>/              the spec's scratch directories (e.g. /direktiv-data)
//!     lower/<n>/                  idmapped views of the image layers (only while starting)
//!     empty/                      lower directory for an image without layers
//!     ctl/agent.json  ctl/sock/   the control directory, bind-mounted read-only at /.faasbox
//!     log/agent.log               stdout/stderr of the agent (and of the runtime's start), on a
//!                                 tmpfs of its own (1 MiB: the container can write to it)
//!     hosts  resolv.conf          bind-mounted over /etc/hosts and /etc/resolv.conf
//!     pasta.pid  pasta.log        its network helper (pasta or slirp4netns; network only)
//! ```
//!
//! The prefix (`fbx` + 8 hex digits of the SHA-256 of the canonical state directory) starts
//! every container id, and so every network namespace name (`/run/netns/<id>`) and cgroup path
//! (`/faasbox/<prefix>/<id>`): servers with different state directories never touch each
//! other's resources.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use faasbox_driver::{DriverError, OciRuntime, RuntimeClass};

/// Hex digits of the random part of an instance id.
const ID_RANDOM_LEN: usize = 12;

/// Where everything of one driver lives, and how its resources are named.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    state_dir: PathBuf,
    prefix: String,
}

impl Layout {
    /// Creates the state directory if needed and derives the prefix from its canonical path.
    pub(crate) fn new(state_dir: &Path) -> Result<Self, DriverError> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            DriverError::io(
                format!("cannot create state directory {}", state_dir.display()),
                e,
            )
        })?;
        let state_dir = state_dir.canonicalize().map_err(|e| {
            DriverError::io(
                format!("cannot resolve state directory {}", state_dir.display()),
                e,
            )
        })?;
        let digest = Sha256::digest(state_dir.as_os_str().as_encoded_bytes());
        let prefix = format!("fbx{}", &hex::encode(digest)[..8]);
        Ok(Layout { state_dir, prefix })
    }

    pub(crate) fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A fresh instance id: `<prefix>-<12 hex digits>`.
    pub(crate) fn new_id(&self) -> String {
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{}-{}", self.prefix, &random[..ID_RANDOM_LEN])
    }

    /// True when `id` has exactly the shape of an id this driver makes. Everything that builds
    /// paths or names from an id checks this first (no `..`, no slashes).
    pub(crate) fn owns(&self, id: &str) -> bool {
        let Some(rest) = id
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('-'))
        else {
            return false;
        };
        rest.len() == ID_RANDOM_LEN
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// The short, per-instance part of an id (used as the container's hostname).
    pub(crate) fn short_id(id: &str) -> &str {
        id.rsplit('-').next().unwrap_or(id)
    }

    /// `--root` of an OCI runtime: `runc` for runc, `runsc` for gVisor (see
    /// [`Layout::oci_root`] for crun).
    pub(crate) fn runtime_root(&self, runtime: RuntimeClass) -> PathBuf {
        self.state_dir.join(runtime.as_str())
    }

    /// `--root` of the OCI runtime `oci` of the standard class: each has its own (their state
    /// files differ), named like the runtime.
    pub(crate) fn oci_root(&self, oci: OciRuntime) -> PathBuf {
        self.state_dir.join(oci.as_str())
    }

    pub(crate) fn instances_dir(&self) -> PathBuf {
        self.state_dir.join("instances")
    }

    pub(crate) fn instance(&self, id: &str) -> InstanceDir {
        InstanceDir {
            root: self.instances_dir().join(id),
        }
    }

    /// The OCI `cgroupsPath`: absolute, so it is the same for every controller hierarchy.
    pub(crate) fn cgroups_path(&self, id: &str) -> String {
        format!("/{}/{id}", self.cgroup_parent())
    }

    /// The cgroup directory (relative to a hierarchy's root) holding all of this driver's
    /// instance cgroups.
    pub(crate) fn cgroup_parent(&self) -> String {
        format!("{CGROUP_ROOT}/{}", self.prefix)
    }

    /// Network namespace name (a file in `/run/netns`): the id itself, already prefixed.
    pub(crate) fn netns_name(id: &str) -> &str {
        id
    }
}

/// Top cgroup directory shared by all faasbox servers of a machine.
const CGROUP_ROOT: &str = "faasbox";

/// The directory of one instance and the files in it.
#[derive(Debug, Clone)]
pub(crate) struct InstanceDir {
    root: PathBuf,
}

impl InstanceDir {
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
    pub(crate) fn meta(&self) -> PathBuf {
        self.root.join("instance.json")
    }
    pub(crate) fn bundle(&self) -> PathBuf {
        self.root.join("bundle")
    }
    pub(crate) fn config_json(&self) -> PathBuf {
        self.bundle().join("config.json")
    }
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.root.join("rootfs")
    }
    /// The mount point of the instance's bounded writable space (a tmpfs).
    pub(crate) fn disk(&self) -> PathBuf {
        self.root.join("disk")
    }
    pub(crate) fn upper(&self) -> PathBuf {
        self.disk().join("upper")
    }
    pub(crate) fn work(&self) -> PathBuf {
        self.disk().join("work")
    }
    /// The directory holding the agent's socket, mounted at [`CONTAINER_SOCKET_DIR`].
    ///
    /// [`CONTAINER_SOCKET_DIR`]: faasbox_proto::CONTAINER_SOCKET_DIR
    pub(crate) fn socket_dir(&self) -> PathBuf {
        self.disk().join("sock")
    }
    /// The directory of the calls' temp dirs, mounted at [`DEFAULT_TEMP_ROOT`] (runc, crun).
    ///
    /// [`DEFAULT_TEMP_ROOT`]: faasbox_proto::DEFAULT_TEMP_ROOT
    pub(crate) fn calls_dir(&self) -> PathBuf {
        self.disk().join("calls")
    }
    /// The `index`-th scratch directory of the spec.
    pub(crate) fn scratch(&self, index: usize) -> PathBuf {
        self.disk().join("scratch").join(index.to_string())
    }
    /// Where the idmapped views of the image layers are mounted while the overlay is made.
    pub(crate) fn lower_mounts(&self) -> PathBuf {
        self.root.join("lower")
    }
    pub(crate) fn empty_lower(&self) -> PathBuf {
        self.root.join("empty")
    }
    pub(crate) fn ctl(&self) -> PathBuf {
        self.root.join("ctl")
    }
    /// The (empty) directory in the control directory the socket directory is mounted on.
    pub(crate) fn socket_mount_point(&self) -> PathBuf {
        self.ctl().join("sock")
    }
    pub(crate) fn agent_config(&self) -> PathBuf {
        self.ctl().join(faasbox_proto::AGENT_CONFIG_NAME)
    }
    pub(crate) fn socket(&self) -> PathBuf {
        self.socket_dir().join(faasbox_proto::AGENT_SOCKET_NAME)
    }
    /// The mount point of the small tmpfs holding the agent's log.
    pub(crate) fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }
    pub(crate) fn agent_log(&self) -> PathBuf {
        self.log_dir().join("agent.log")
    }
    pub(crate) fn hosts(&self) -> PathBuf {
        self.root.join("hosts")
    }
    pub(crate) fn resolv_conf(&self) -> PathBuf {
        self.root.join("resolv.conf")
    }
    /// Where the runtime writes the host pid of the container's init (the agent) at `run`.
    pub(crate) fn init_pid(&self) -> PathBuf {
        self.root.join("init.pid")
    }
    pub(crate) fn pasta_pid(&self) -> PathBuf {
        self.root.join("pasta.pid")
    }
    pub(crate) fn pasta_log(&self) -> PathBuf {
        self.root.join("pasta.log")
    }
}

/// Sets a directory of the driver's to 0711: others may pass through it to a path they know,
/// not list it. runc sets a user-namespaced container up as its (unprivileged) root, which
/// must reach the instance's root filesystem by its path.
pub(crate) fn make_traversable(dir: &Path) -> Result<(), DriverError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| DriverError::io(format!("cannot set the mode of {}", dir.display()), e))
}

/// The first directory above `dir` that others may not pass through, if any.
pub(crate) fn untraversable_ancestor(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors()
        .skip(1)
        .find(|a| {
            std::fs::metadata(a)
                .map(|m| m.permissions().mode() & 0o001 == 0)
                .unwrap_or(true)
        })
        .map(Path::to_path_buf)
}

/// Makes a file or directory the container reads through a bind mount (the control directory,
/// `agent.json`, `hosts`, `resolv.conf`) readable by everyone (0644, directories 0755),
/// whatever the umask: container root of a user namespace is not its owner (host root). The
/// instance directory's own mode keeps other host users from listing it.
pub(crate) fn make_container_readable(path: &Path) -> Result<(), DriverError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| DriverError::io(format!("cannot make {} readable", path.display()), e))
}

/// `instance.json`: what the driver needs to know about an instance after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstanceMeta {
    /// The function it runs; empty for a stem cell not claimed yet.
    pub function: String,
    pub runtime: RuntimeClass,
    pub network: bool,
    /// A stem cell not claimed yet (see the `stem` module): created, nothing run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stem: bool,
}

impl InstanceMeta {
    pub(crate) fn read(dir: &InstanceDir) -> Option<InstanceMeta> {
        let text = std::fs::read(dir.meta()).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_stable_and_ids_are_owned() {
        let dir = tempfile::tempdir().unwrap();
        let a = Layout::new(dir.path()).unwrap();
        let b = Layout::new(&dir.path().join(".")).unwrap();
        assert_eq!(a.prefix(), b.prefix());
        assert_eq!(a.prefix().len(), 11);
        let id = a.new_id();
        assert!(a.owns(&id), "{id}");
        assert_eq!(Layout::short_id(&id).len(), ID_RANDOM_LEN);
        assert!(!a.owns("../../etc"));
        assert!(!a.owns(&format!("{}-../../etc/x", a.prefix())));
        assert!(!a.owns(&format!("{}-ABCDEF012345", a.prefix())));
        let other = tempfile::tempdir().unwrap();
        let c = Layout::new(other.path()).unwrap();
        assert_ne!(a.prefix(), c.prefix());
        assert!(!c.owns(&id));
        assert_eq!(a.cgroups_path(&id), format!("/faasbox/{}/{id}", a.prefix()));
    }
}
