//! The OCI runtime command line (`runc`, `crun` and `runsc` share it: `run --detach`,
//! `create`, `start`, `state`, `kill`, `delete --force`, `list`) and looking up host tools.
//!
//! What differs between runc and crun (checked with crun 1.8.1): the exec fifo of a created
//! container goes the other way (crun's init reads from it and `crun start` writes), so a
//! created crun container is released by writing to it; crun refuses to create a cgroup on a
//! hybrid host whose unified hierarchy offers any controller ([`HybridCgroups`]); `list`
//! prints `[]` rather than `null` for an empty root; crun's init gives the container's user
//! its stdout and stderr files (`fchown`), which would let container root reopen and rewrite
//! the agent's log, so the driver takes the log back after `create` (crun does it before
//! `create` returns) and always creates and starts a crun container rather than `run` it. `state`, `kill`, `delete --force`, the pid file and the "does not
//! exist" errors are alike.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

use faasbox_driver::{DriverError, OciRuntime, RuntimeClass};

/// Bound for one runtime command that is not `run` (those are quick; a hang is a bug).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds a tool: a path with a slash is taken as is; a bare name is looked up in `PATH` and
/// then in the sbin directories (Debian installs runc in `/usr/sbin`, which the `PATH` of a
/// service or a non-login shell often lacks).
pub(crate) fn resolve_tool(
    path: &Path,
    tool: &'static str,
    hint: &'static str,
) -> Result<PathBuf, DriverError> {
    let missing = || DriverError::ToolMissing {
        tool,
        path: path.to_path_buf(),
        hint,
    };
    if path.as_os_str().is_empty() {
        return Err(missing());
    }
    if path.components().count() > 1 || path.is_absolute() {
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(missing())
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(path))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(missing)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// How a runsc sandbox gets its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SandboxNetwork {
    /// gVisor's own network stack on the interfaces of the container's network namespace.
    Sandbox,
    /// Loopback only.
    None,
}

/// One OCI runtime binary with its state root.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeCli {
    kind: RuntimeClass,
    /// Which command line runs [`RuntimeClass::Standard`] (ignored for runsc).
    oci: OciRuntime,
    /// crun on a hybrid host whose unified hierarchy offers controllers: `create` and `run`
    /// see an empty controller list ([`HybridCgroups`]).
    hide_unified_controllers: bool,
    binary: PathBuf,
    /// What is executed: `binary`, or a sealed in-memory copy of it ([`SealedCopy`]).
    exec: PathBuf,
    root: PathBuf,
}

#[derive(Debug, Deserialize)]
struct StateJson {
    status: String,
    #[serde(default)]
    pid: i32,
}

/// What `state` tells about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerState {
    /// `created`, `running`, `paused`, `stopped`.
    pub status: String,
    /// Host pid of the container's init (runc) or sandbox (runsc); 0 when stopped.
    pub pid: i32,
}

#[derive(Debug, Deserialize)]
struct ListEntry {
    id: String,
}

impl RuntimeCli {
    pub(crate) fn new(kind: RuntimeClass, binary: PathBuf, root: PathBuf) -> Self {
        RuntimeCli {
            kind,
            oci: OciRuntime::Runc,
            hide_unified_controllers: false,
            exec: binary.clone(),
            binary,
            root,
        }
    }

    /// A [`RuntimeClass::Standard`] runtime: runc or crun. `cgroups` tells whether crun must
    /// be shown an empty controller list of the unified hierarchy.
    pub(crate) fn standard(
        oci: OciRuntime,
        binary: PathBuf,
        root: PathBuf,
        cgroups: HybridCgroups,
    ) -> Self {
        RuntimeCli {
            oci,
            hide_unified_controllers: oci == OciRuntime::Crun
                && cgroups == HybridCgroups::UnifiedControllers,
            ..RuntimeCli::new(RuntimeClass::Standard, binary, root)
        }
    }

    /// Runs the sealed in-memory copy `copy` of the binary instead of the binary itself.
    pub(crate) fn executing(mut self, copy: &SealedCopy) -> Self {
        self.exec = copy.path();
        self
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.exec);
        command.arg("--root").arg(&self.root);
        if self.kind == RuntimeClass::Sandboxed {
            // Lets the agent inside the sandbox create its Unix socket in the bind-mounted
            // control directory as a real host socket the platform can connect to. `all`
            // rather than `create`: with `create` alone, this runsc refuses stat and chmod of
            // the socket inside the sandbox (EPERM). The "open" half only lets the sandbox
            // connect to sockets in its own mounts (the overlay root and the control
            // directory); no host service socket is mounted in.
            command.arg("--host-uds=all");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    fn name(&self) -> &'static str {
        match self.kind {
            RuntimeClass::Standard => self.oci.as_str(),
            RuntimeClass::Sandboxed => self.kind.as_str(),
        }
    }

    /// `run --detach`: creates and starts the container. The container process inherits the
    /// runtime's stdout and stderr, so both go to `log` (and so does the runtime's own error
    /// message, which is why a failure reports the end of that file). The host pid of the
    /// container's init goes to `pid_file`.
    ///
    /// With crun, `create` then `start` instead: crun's init gives the log to the container's
    /// user, and after `run` the container's process would already be running when the
    /// driver takes the log back, free to reopen it through `/proc/1/fd/1` first. Between
    /// `create` and `start` nothing of the container runs yet.
    pub(crate) async fn run_detached(
        &self,
        bundle: &Path,
        id: &str,
        log: &Path,
        pid_file: &Path,
        network: SandboxNetwork,
    ) -> Result<(), DriverError> {
        if self.chowns_log() {
            self.create(bundle, id, log, pid_file, network).await?;
            return self.start(id).await;
        }
        self.launch(&["run", "--detach"], bundle, id, log, pid_file, network)
            .await
    }

    /// `create`: creates the container and leaves its init waiting (on runc's exec fifo)
    /// before the container process; [`RuntimeCli::start`] lets it go on. Output and pid file
    /// as for [`RuntimeCli::run_detached`]: the container process keeps the log as its stdout
    /// and stderr.
    pub(crate) async fn create(
        &self,
        bundle: &Path,
        id: &str,
        log: &Path,
        pid_file: &Path,
        network: SandboxNetwork,
    ) -> Result<(), DriverError> {
        self.launch(&["create"], bundle, id, log, pid_file, network)
            .await
    }

    /// What the init of a container made by [`RuntimeCli::create`] waits on until `start`, in
    /// the container's state directory: runc's and crun's exec fifo, libcontainer's notify
    /// socket.
    pub(crate) fn start_handle(&self, id: &str) -> PathBuf {
        let name = match self.oci {
            OciRuntime::Libcontainer => "notify.sock",
            OciRuntime::Runc | OciRuntime::Crun => "exec.fifo",
        };
        self.root.join(id).join(name)
    }

    /// `start`: runs the process of a container made by [`RuntimeCli::create`].
    pub(crate) async fn start(&self, id: &str) -> Result<(), DriverError> {
        let display = format!("{} start {id}", self.name());
        let output = self.output(&display, &["start", id]).await?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failure(&display, &output))
        }
    }

    /// Lets the init of a container made by [`RuntimeCli::create`] go on without a runtime
    /// process, the way runc's own `start` does it: opens the exec fifo the init waits on
    /// (`<root>/<id>/exec.fifo`; the init's blocked open for writing then returns and it
    /// writes one byte), reads that byte and removes the fifo, after which runc's `state`
    /// says `running` and `kill` and `delete` work as after `start`. The spec has no hooks,
    /// which is all runc's `start` does besides. Saves executing runc (about 25 ms at load,
    /// 1-2 ms this way). crun's init waits the other way, reading from the fifo:
    /// [`RuntimeCli::release_created_crun`]. Runs `start` when there is no fifo (runsc, or a
    /// runtime that does it differently); an error when the init does not answer within
    /// `bound`.
    pub(crate) async fn release_created(
        &self,
        id: &str,
        bound: Duration,
    ) -> Result<(), DriverError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        if self.kind != RuntimeClass::Standard {
            return self.start(id).await;
        }
        match self.oci {
            OciRuntime::Crun => return self.release_created_crun(id, bound).await,
            // libcontainer's init waits on a socket of its own; `faasbox-oci start` is a
            // small static program (no runtime to start), so executing it costs little.
            OciRuntime::Libcontainer => return self.start(id).await,
            OciRuntime::Runc => {}
        }
        let fifo = self.root.join(id).join("exec.fifo");
        let display = format!("open {}", fifo.display());
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags::O_NONBLOCK | libc_flags::O_NOFOLLOW)
            .open(&fifo)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.start(id).await,
            Err(e) => return Err(DriverError::io(display, e)),
        };
        ensure_fifo(&file, &display)?;
        let deadline = std::time::Instant::now() + bound;
        let mut byte = [0u8; 1];
        loop {
            match file.read(&mut byte) {
                Ok(1) => break,
                // No writer yet (the init's open has not returned), or nothing written yet.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DriverError::io(display, e)),
            }
            if std::time::Instant::now() >= deadline {
                return Err(DriverError::Runtime {
                    command: display,
                    message: format!("the container's init did not answer within {bound:?}"),
                });
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        drop(file);
        std::fs::remove_file(&fifo)
            .map_err(|e| DriverError::io(format!("cannot remove {}", fifo.display()), e))
    }

    /// crun's `start` without executing crun: its init blocks reading the exec fifo
    /// (`<root>/<id>/exec.fifo`), and `crun start` opens it for writing, removes it (crun's
    /// `state` says `running` from then on) and writes one byte; with no hooks in the spec
    /// (ours has none) that is all it does. The fifo is opened without blocking: no reader
    /// means the init has gone (or has not opened it yet, retried until `bound`).
    async fn release_created_crun(&self, id: &str, bound: Duration) -> Result<(), DriverError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let fifo = self.root.join(id).join("exec.fifo");
        let display = format!("open {}", fifo.display());
        let deadline = std::time::Instant::now() + bound;
        let mut file = loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc_flags::O_NONBLOCK | libc_flags::O_NOFOLLOW)
                .open(&fifo)
            {
                Ok(file) => break file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.start(id).await,
                // ENXIO: no reader (yet).
                Err(e) if e.raw_os_error() == Some(libc_flags::ENXIO) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(DriverError::Runtime {
                            command: display,
                            message: format!(
                                "the container's init did not wait on it within {bound:?}"
                            ),
                        });
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Err(e) => return Err(DriverError::io(display, e)),
            }
        };
        ensure_fifo(&file, &display)?;
        std::fs::remove_file(&fifo)
            .map_err(|e| DriverError::io(format!("cannot remove {}", fifo.display()), e))?;
        file.write_all(&[0])
            .map_err(|e| DriverError::io(format!("write to {}", fifo.display()), e))
    }

    async fn launch(
        &self,
        verb: &[&str],
        bundle: &Path,
        id: &str,
        log: &Path,
        pid_file: &Path,
        network: SandboxNetwork,
    ) -> Result<(), DriverError> {
        let open_log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| DriverError::io(format!("cannot open {}", log.display()), e))
        };
        let mut command = self.command();
        if self.kind == RuntimeClass::Sandboxed {
            match network {
                SandboxNetwork::Sandbox => {
                    command.arg("--network=sandbox");
                    super::runsc::hide_root_netns_marker(&mut command);
                }
                SandboxNetwork::None => {
                    command.arg("--network=none");
                }
            }
        }
        command
            .args(verb)
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .stdout(open_log()?)
            .stderr(open_log()?);
        if self.hide_unified_controllers {
            hide_unified_controllers(&mut command);
        }
        let display = format!("{} {} {id}", self.name(), verb.join(" "));
        let status = command
            .status()
            .await
            .map_err(|e| spawn_error(&self.binary, &display, e))?;
        if status.success() {
            return self.take_back_log(log);
        }
        Err(DriverError::Runtime {
            command: display,
            message: format!("{status}; {}", super::tail_of_file(log, 15)),
        })
    }

    /// Whether the runtime's init gives the container's user the files of its stdout and
    /// stderr (crun does, runc does not).
    fn chowns_log(&self) -> bool {
        self.kind == RuntimeClass::Standard && self.oci == OciRuntime::Crun
    }

    /// crun's init hands the files of the container's stdout and stderr to the container's
    /// user before it waits for `start` (and so before `create` returns): they go back to
    /// this process's user, as with runc, so that container root cannot reopen the agent's
    /// log through `/proc/1/fd/1`. The agent keeps writing to what it has open. crun never
    /// `run`s ([`RuntimeCli::run_detached`]), so this happens before the container's process
    /// starts.
    fn take_back_log(&self, log: &Path) -> Result<(), DriverError> {
        if !self.chowns_log() {
            return Ok(());
        }
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        std::os::unix::fs::chown(log, Some(uid), Some(gid))
            .map_err(|e| DriverError::io(format!("cannot chown {}", log.display()), e))
    }

    /// The container's status (`created`, `running`, `stopped`, …), `None` when it does not
    /// exist.
    pub(crate) async fn state(&self, id: &str) -> Result<Option<ContainerState>, DriverError> {
        let display = format!("{} state {id}", self.name());
        let output = self.output(&display, &["state", id]).await?;
        if !output.status.success() {
            return if not_found(&output) {
                Ok(None)
            } else {
                Err(failure(&display, &output))
            };
        }
        let state: StateJson =
            serde_json::from_slice(&output.stdout).map_err(|e| DriverError::Runtime {
                command: display,
                message: format!("unexpected output: {e}"),
            })?;
        Ok(Some(ContainerState {
            status: state.status,
            pid: state.pid,
        }))
    }

    /// `pause` (`paused`) or `resume`: freezes or thaws every process of the container.
    pub(crate) async fn set_paused(&self, id: &str, paused: bool) -> Result<(), DriverError> {
        let verb = if paused { "pause" } else { "resume" };
        let display = format!("{} {verb} {id}", self.name());
        let output = self.output(&display, &[verb, id]).await?;
        if !output.status.success() {
            return Err(failure(&display, &output));
        }
        Ok(())
    }

    /// Kills (SIGKILL) and deletes the container. Returns whether it existed.
    ///
    /// `delete --force` of a running container sleeps 100 ms after its SIGKILL before it looks
    /// again (runc 1.1), so the container is killed first and awaited here, which makes a stop
    /// take tens of milliseconds instead of over a hundred.
    pub(crate) async fn force_delete(&self, id: &str) -> Result<bool, DriverError> {
        match self.state(id).await {
            Ok(None) => return Ok(false),
            // A created container's init waits on its exec fifo: killed and awaited the same
            // way (`delete --force` would sleep 100 ms after its own SIGKILL).
            Ok(Some(state))
                if (state.status == "running" || state.status == "created") && state.pid > 0 =>
            {
                let kill = format!("{} kill {id} KILL", self.name());
                if let Ok(output) = self.output(&kill, &["kill", id, "KILL"]).await {
                    if output.status.success() {
                        wait_for_exit(state.pid, Duration::from_secs(2)).await;
                    }
                }
            }
            _ => {}
        }
        let display = format!("{} delete --force {id}", self.name());
        let output = self.output(&display, &["delete", "--force", id]).await?;
        if output.status.success() {
            return Ok(true);
        }
        if not_found(&output) {
            return Ok(false);
        }
        // A container stuck between states: kill it explicitly, then delete once more.
        let kill = format!("{} kill {id} KILL", self.name());
        let _ = self.output(&kill, &["kill", id, "KILL"]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let retry = self.output(&display, &["delete", "--force", id]).await?;
        if retry.status.success() {
            Ok(true)
        } else if not_found(&retry) {
            Ok(false)
        } else {
            Err(failure(&display, &retry))
        }
    }

    /// Ids of all containers in this runtime's root.
    pub(crate) async fn list(&self) -> Result<Vec<String>, DriverError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        let display = format!("{} list", self.name());
        let mut attempts = 0;
        let output = loop {
            let output = self.output(&display, &["list", "--format", "json"]).await?;
            attempts += 1;
            if output.status.success() {
                break output;
            }
            // runc reads the root's entries, then each container's state: a container deleted
            // in between (an instance stopping while the server stops) fails the whole list
            // with "no such file or directory". Listed again, it is simply not there.
            if !not_found(&output) || attempts == LIST_ATTEMPTS {
                return Err(failure(&display, &output));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // runc prints `null` for an empty root, crun `[]`.
        let entries: Option<Vec<ListEntry>> =
            serde_json::from_slice(&output.stdout).map_err(|e| DriverError::Runtime {
                command: display,
                message: format!("unexpected output: {e}"),
            })?;
        Ok(entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.id)
            .collect())
    }

    async fn output(&self, display: &str, args: &[&str]) -> Result<Output, DriverError> {
        let mut command = self.command();
        command.args(args);
        match tokio::time::timeout(COMMAND_TIMEOUT, command.output()).await {
            Ok(result) => result.map_err(|e| spawn_error(&self.binary, display, e)),
            Err(_) => Err(DriverError::Runtime {
                command: display.to_string(),
                message: format!("no answer within {}s", COMMAND_TIMEOUT.as_secs()),
            }),
        }
    }
}

/// Waits until process `pid` is gone or a zombie, at most `bound`.
async fn wait_for_exit(pid: i32, bound: Duration) {
    let deadline = std::time::Instant::now() + bound;
    let stat = format!("/proc/{pid}/stat");
    while std::time::Instant::now() < deadline {
        let Ok(text) = std::fs::read_to_string(&stat) else {
            return;
        };
        // The state letter follows the parenthesised command name.
        let state = text
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, Some('Z') | Some('X') | None) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How the host's cgroups are mounted, as far as crun cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HybridCgroups {
    /// cgroup v1 only, cgroup v2 only, or hybrid with no controller on the unified hierarchy.
    Acceptable,
    /// Hybrid (v1 controllers under `/sys/fs/cgroup/<controller>`, cgroup2 at
    /// `/sys/fs/cgroup/unified`) with a controller that no v1 hierarchy took left on the
    /// unified one (typically `hugetlb` or `misc`). crun 1.8 refuses to create any cgroup
    /// there ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2")
    /// even though it does not use the unified controllers in hybrid mode: it puts the
    /// container in the v1 hierarchies, as runc does. So crun's `create` and `run` run in a
    /// private mount namespace where the unified hierarchy's `cgroup.controllers` reads
    /// empty (`/dev/null` bound over it); the limits are set in the v1 hierarchies as usual.
    UnifiedControllers,
}

impl HybridCgroups {
    /// Looks at this host's `/sys/fs/cgroup`.
    pub(crate) fn of_host() -> HybridCgroups {
        let root_is_v2 = super::cgroup::hierarchies()
            .iter()
            .any(|h| h.unified && h.mount_point == Path::new("/sys/fs/cgroup"));
        let controllers = std::fs::read_to_string(UNIFIED_CONTROLLERS).unwrap_or_default();
        if !root_is_v2 && !controllers.trim().is_empty() {
            HybridCgroups::UnifiedControllers
        } else {
            HybridCgroups::Acceptable
        }
    }
}

/// The controller list of the unified hierarchy on a hybrid host.
const UNIFIED_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";

/// Makes `command` (a crun `create` or `run`) start in a private mount namespace where
/// [`UNIFIED_CONTROLLERS`] reads empty. See [`HybridCgroups::UnifiedControllers`].
fn hide_unified_controllers(command: &mut Command) {
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // operations are allowed; `bind_empty_controllers` makes three raw system calls with
    // pointers to static C strings: no allocation, no locks, no access to the parent's state.
    unsafe {
        command.pre_exec(bind_empty_controllers);
    }
}

/// In a crun child before exec: a private mount namespace whose mounts do not propagate back
/// to the host, and `/dev/null` bound over the unified hierarchy's controller list.
fn bind_empty_controllers() -> std::io::Result<()> {
    super::mount_namespace::enter_slave()?;
    // SAFETY: static NUL-terminated strings or null; a bind mount ignores the file system
    // type and data.
    let bound = unsafe {
        libc::mount(
            c"/dev/null".as_ptr(),
            c"/sys/fs/cgroup/unified/cgroup.controllers".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if bound != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `open(2)` flags (values of Linux on every architecture Rust targets here).
mod libc_flags {
    pub(super) const O_NONBLOCK: i32 = nix::fcntl::OFlag::O_NONBLOCK.bits();
    pub(super) const O_NOFOLLOW: i32 = nix::fcntl::OFlag::O_NOFOLLOW.bits();
    pub(super) const ENXIO: i32 = nix::errno::Errno::ENXIO as i32;
}

/// An error unless `file` (a container's exec fifo, opened as `display`) is a fifo.
fn ensure_fifo(file: &std::fs::File, display: &str) -> Result<(), DriverError> {
    use std::os::unix::fs::FileTypeExt;
    let is_fifo = file
        .metadata()
        .map(|m| m.file_type().is_fifo())
        .map_err(|e| DriverError::io(display.to_string(), e))?;
    if is_fifo {
        Ok(())
    } else {
        Err(DriverError::Runtime {
            command: display.to_string(),
            message: "not a fifo".to_string(),
        })
    }
}

fn spawn_error(binary: &Path, display: &str, e: std::io::Error) -> DriverError {
    DriverError::io(format!("cannot run `{display}` ({})", binary.display()), e)
}

/// How often `list` is tried when a container vanished while the runtime listed.
const LIST_ATTEMPTS: usize = 5;

fn not_found(output: &Output) -> bool {
    let text = String::from_utf8_lossy(&output.stderr).to_ascii_lowercase();
    text.contains("does not exist") || text.contains("not exist") || text.contains("no such")
}

fn failure(display: &str, output: &Output) -> DriverError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    DriverError::Runtime {
        command: display.to_string(),
        message: format!("{}; {}", output.status, stderr.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_in_path_and_sbin() {
        assert!(resolve_tool(Path::new("sh"), "sh", "").is_ok());
        let err = resolve_tool(Path::new("no-such-tool-xyz"), "xyz", "install xyz").unwrap_err();
        assert_eq!(
            err.to_string(),
            "xyz not found (no-such-tool-xyz): install xyz"
        );
        assert!(resolve_tool(Path::new("/nonexistent/runc"), "runc", "").is_err());
    }

    /// A runtime whose `list` fails `failures` times with `message`, then lists one container;
    /// it counts its calls in `calls`.
    fn flaky_list_runtime(dir: &Path, failures: usize, message: &str) -> RuntimeCli {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("runtime");
        let calls = dir.join("calls");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho x >> {calls}\n\
                 if [ \"$(wc -l < {calls})\" -le {failures} ]; then echo '{message}' >&2; exit 1; fi\n\
                 echo '[{{\"id\":\"fbx-1\",\"status\":\"running\",\"pid\":1}}]'\n",
                calls = calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        RuntimeCli::new(RuntimeClass::Standard, script, root)
    }

    fn calls(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap()
            .lines()
            .count()
    }

    #[tokio::test]
    async fn a_container_vanishing_while_listed_is_listed_again() {
        let vanished = "stat /run/runc/fbx-2: no such file or directory";
        let dir = tempfile::tempdir().unwrap();
        let cli = flaky_list_runtime(dir.path(), 2, vanished);
        assert_eq!(cli.list().await.unwrap(), vec!["fbx-1".to_string()]);
        assert_eq!(calls(dir.path()), 3);

        // Always vanishing: given up after LIST_ATTEMPTS, with the runtime's words.
        let dir = tempfile::tempdir().unwrap();
        let cli = flaky_list_runtime(dir.path(), usize::MAX >> 1, vanished);
        let err = cli.list().await.unwrap_err().to_string();
        assert!(err.contains("no such file or directory"), "{err}");
        assert_eq!(calls(dir.path()), LIST_ATTEMPTS);

        // Any other failure is not retried.
        let dir = tempfile::tempdir().unwrap();
        let cli = flaky_list_runtime(dir.path(), 1, "permission denied");
        let err = cli.list().await.unwrap_err().to_string();
        assert!(err.contains("permission denied"), "{err}");
        assert_eq!(calls(dir.path()), 1);
    }
}

/// A sealed in-memory copy of runc (or crun), made once per driver and executed for every
/// command.
///
/// runc 1.1 protects its binary from a container that could overwrite it through
/// `/proc/self/exe` (CVE-2019-5736): at every start, `runc init` makes a read-only bind mount
/// of itself in the container's state directory (two mounts and an unmount, which take the
/// kernel's mount lock that concurrent starts share), or a sealed memfd copy when that fails,
/// unless it already runs from a sealed memfd: runc accepts a shared sealed copy as safe,
/// since nothing can write to it. So the driver makes that copy once and runs runc from it,
/// through `/proc/<pid>/fd/<n>` (the descriptor stays close-on-exec, so no other child
/// inherits it).
#[derive(Debug)]
pub(crate) struct SealedCopy {
    fd: std::os::fd::OwnedFd,
}

impl SealedCopy {
    /// Copies `binary` into a memfd with the seals runc checks for (seal, shrink, grow, write;
    /// crun, which copies itself the same way, checks the same seals).
    pub(crate) fn of(binary: &Path) -> std::io::Result<SealedCopy> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let name = c"oci-runtime";
        // SAFETY: a valid NUL-terminated name and flags; the result is checked.
        let raw = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let mut file = std::fs::File::from(fd);
        std::io::copy(&mut std::fs::File::open(binary)?, &mut file)?;
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: fcntl on a descriptor we own with an integer argument.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SealedCopy { fd: file.into() })
    }

    fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}
