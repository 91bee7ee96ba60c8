//! [`RuncDriver`]: function instances as containers of an OCI runtime CLI (`runc`, or gVisor's
//! `runsc`).
//!
//! Starting an instance: make its directory (see [`layout`]), mount the overlay root
//! filesystem ([`overlay`]), write `agent.json`, set up the network ([`network`]) when asked
//! for, write the OCI spec ([`spec`]), `run --detach` the container ([`command`]), and poll
//! the agent's socket until `GET /v1/ready` answers. Any failure, timeout, or the caller
//! dropping the start future tears down everything made so far. Stopping runs the same
//! teardown. [`cleanup`] finds what a crashed server left behind.

mod cgroup;
mod cleanup;
mod command;
mod layout;
mod network;
mod overlay;
mod runsc;
mod spec;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use faasbox_proto::{LogLine, ReadyReport};

use self::command::{resolve_tool, RuntimeCli, SandboxNetwork};
use self::layout::{InstanceDir, InstanceMeta, Layout};
use self::network::NetworkTools;
use crate::agent_client::AgentClient;
use crate::driver::{CleanupReport, Driver, DriverConfig, Instance, InstanceSpec, OciRuntime};
use crate::error::DriverError;

/// Runs instances with runc or runsc. Cheap to share: clones of the inner state are `Arc`s.
///
/// Dropping the driver leaves running instances alone (a restarted server finds them with
/// [`Driver::cleanup_leftovers`]); call [`Driver::stop_all`] at shutdown.
pub struct RuncDriver {
    inner: Arc<Inner>,
}

/// Test hooks for [`RuncDriver::start_with`].
#[derive(Debug, Clone, Default)]
pub(crate) struct StartOptions {
    /// Replaces the agent's argv as the container process.
    pub args: Option<Vec<String>>,
    /// Wait for the agent's readiness (what [`Driver::start`] does).
    pub wait_ready: bool,
}

struct Inner {
    config: DriverConfig,
    layout: Layout,
    runc: RuntimeCli,
    /// Instances started by this driver object and not stopped yet.
    live: Mutex<HashMap<String, OciRuntime>>,
}

impl RuncDriver {
    /// Prepares the state directory and checks that runc is installed (runsc and pasta are
    /// checked when an instance needs them).
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        let layout = Layout::new(&config.state_dir)?;
        let runc_binary = resolve_tool(
            &config.runc_path,
            "runc",
            "install it with `apt-get install runc` or set the runc path in the configuration",
        )?;
        let runc = RuntimeCli::new(
            OciRuntime::Runc,
            runc_binary,
            layout.runtime_root(OciRuntime::Runc),
        );
        for dir in [
            layout.instances_dir(),
            layout.runtime_root(OciRuntime::Runc),
            layout.runtime_root(OciRuntime::Runsc),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| DriverError::io(format!("cannot create {}", dir.display()), e))?;
        }
        Ok(RuncDriver {
            inner: Arc::new(Inner {
                config,
                layout,
                runc,
                live: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The prefix of every container id, netns name and cgroup of this driver.
    pub fn prefix(&self) -> &str {
        self.inner.layout.prefix()
    }

    /// The canonical state directory.
    pub fn state_dir(&self) -> &Path {
        self.inner.layout.state_dir()
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

/// True when a host tool can be found (tests skip what needs a missing one).
#[cfg(test)]
pub(crate) fn command_available(name: &str) -> bool {
    resolve_tool(Path::new(name), "tool", "").is_ok()
}

/// Inspection for tests: what of an instance still exists anywhere.
#[cfg(test)]
impl RuncDriver {
    /// Descriptions of every trace of `id`: container, instance directory, mounts, cgroups,
    /// network namespace, pasta process. Empty when the instance is completely gone.
    pub(crate) async fn traces(&self, id: &str) -> Vec<String> {
        let inner = &self.inner;
        let mut found = Vec::new();
        for runtime in OciRuntime::ALL {
            if let Ok(cli) = inner.runtime_cli(runtime) {
                if let Ok(Some(state)) = cli.state(id).await {
                    found.push(format!("{runtime} container ({state})"));
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
        for (pid, _) in network::stray_pastas(Layout::netns_name(id)) {
            found.push(format!("pasta process {pid}"));
        }
        found
    }

    /// Descriptions of every trace of any instance of this driver.
    pub(crate) async fn all_traces(&self) -> Vec<String> {
        let inner = &self.inner;
        let mut found = Vec::new();
        for runtime in OciRuntime::ALL {
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
        for mount in overlay::mounts_under(inner.layout.state_dir()) {
            found.push(format!("mount {}", mount.display()));
        }
        for id in cgroup::list_instances(&inner.layout) {
            found.push(format!("cgroup {id}"));
        }
        let prefix = format!("{}-", inner.layout.prefix());
        for name in network::list_netns(&prefix) {
            found.push(format!("netns {name}"));
        }
        for (pid, _) in network::stray_pastas(&prefix) {
            found.push(format!("pasta process {pid}"));
        }
        found
    }

    /// The instance's cgroup directory in the hierarchy of `controller` (v1).
    pub(crate) fn cgroup_dir(&self, controller: &str, id: &str) -> Option<PathBuf> {
        cgroup::hierarchies()
            .into_iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| {
                h.mount_point
                    .join(self.inner.layout.cgroups_path(id).trim_start_matches('/'))
            })
    }
}

#[async_trait]
impl Driver for RuncDriver {
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
        self.inner.cleanup().await.map(|_| ())
    }
}

/// Tears an instance down if a start is abandoned half-way (its future dropped).
struct TeardownGuard {
    inner: Option<Arc<Inner>>,
    id: String,
}

impl TeardownGuard {
    fn disarm(mut self) {
        self.inner = None;
    }
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let id = std::mem::take(&mut self.id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = inner.teardown(&id).await {
                    tracing::warn!(instance = %id, error = %e, "teardown of an abandoned start failed");
                }
            });
        }
    }
}

/// What one teardown removed.
#[derive(Debug, Default)]
struct Removed {
    container: bool,
    mount: bool,
    cgroup: bool,
    netns: bool,
    pasta: bool,
}

impl Inner {
    async fn start(
        self: &Arc<Self>,
        spec: InstanceSpec,
        options: StartOptions,
    ) -> Result<Instance, DriverError> {
        if !self.config.agent_binary.is_file() {
            return Err(DriverError::AgentMissing(self.config.agent_binary.clone()));
        }
        let cli = self.runtime_cli(spec.runtime)?;
        let network_tools = if spec.network {
            Some(self.network_tools()?)
        } else {
            None
        };
        let id = self.layout.new_id();
        self.live_instances().insert(id.clone(), spec.runtime);
        let guard = TeardownGuard {
            inner: Some(self.clone()),
            id: id.clone(),
        };
        let deadline = Instant::now() + self.config.start_timeout;
        // The readiness loop reports its own timeout with details; this outer bound (a little
        // later) only catches a step that hangs.
        let bound = self.config.start_timeout + Duration::from_secs(5);
        let started = tokio::time::timeout(
            bound,
            self.create_and_start(&id, &spec, &options, &cli, network_tools.as_ref(), deadline),
        )
        .await;
        guard.disarm();
        let error = match started {
            Ok(Ok(instance)) => return Ok(instance),
            Ok(Err(e)) => e,
            Err(_) => DriverError::NotReady {
                function: spec.function.clone(),
                reason: format!(" within {}", seconds(self.config.start_timeout)),
                details: format!(
                    "\nagent log:\n{}",
                    tail_of_file(&self.layout.instance(&id).agent_log(), 20)
                ),
            },
        };
        if let Err(teardown_error) = self.teardown(&id).await {
            tracing::warn!(instance = %id, error = %teardown_error, "teardown after a failed start failed");
        }
        Err(error)
    }

    async fn create_and_start(
        &self,
        id: &str,
        spec: &InstanceSpec,
        options: &StartOptions,
        cli: &RuntimeCli,
        network_tools: Option<&NetworkTools>,
        deadline: Instant,
    ) -> Result<Instance, DriverError> {
        let dir = self.layout.instance(id);
        for sub in [
            dir.root().to_path_buf(),
            dir.bundle(),
            dir.rootfs(),
            dir.upper(),
            dir.work(),
            dir.ctl(),
        ] {
            std::fs::create_dir_all(&sub)
                .map_err(|e| DriverError::io(format!("cannot create {}", sub.display()), e))?;
        }
        let meta = InstanceMeta {
            function: spec.function.clone(),
            runtime: spec.runtime,
            network: spec.network,
        };
        write_json(&dir.meta(), &meta)?;

        let layers = if spec.layers.is_empty() {
            let empty = dir.empty_lower();
            std::fs::create_dir_all(&empty)
                .map_err(|e| DriverError::io(format!("cannot create {}", empty.display()), e))?;
            vec![empty]
        } else {
            spec.layers.clone()
        };
        overlay::mount(layers, dir.upper(), dir.work(), dir.rootfs()).await?;

        let mut agent = spec.agent.clone();
        if agent.function.is_empty() {
            agent.function = spec.function.clone();
        }
        write_json(&dir.agent_config(), &agent)?;
        let hostname = Layout::short_id(id).to_string();
        write_file(
            &dir.hosts(),
            &format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
            ),
        )?;

        let netns = match network_tools {
            Some(tools) => Some(network::setup(tools, Layout::netns_name(id), &dir).await?),
            None => None,
        };

        let params = spec::SpecParams {
            id: id.to_string(),
            function: spec.function.clone(),
            hostname,
            runtime: spec.runtime,
            rootfs: dir.rootfs(),
            args: options.args.clone().unwrap_or_else(spec::agent_args),
            env: spec.env.clone(),
            agent_binary: self.config.agent_binary.clone(),
            control_dir: dir.ctl(),
            hosts_file: dir.hosts(),
            resolv_conf: netns.as_ref().map(|_| dir.resolv_conf()),
            netns: netns.clone(),
            cgroups_path: self.layout.cgroups_path(id),
            limits: spec.limits,
            swap_accounting: cgroup::swap_accounting(),
            oom_score_adj: spec::agent_oom_score_adj(),
            nofile: spec::nofile_limit(),
        };
        let oci = spec::build(&params).map_err(|e| DriverError::InvalidSpec {
            function: spec.function.clone(),
            message: e.to_string(),
        })?;
        write_json(&dir.config_json(), &oci)?;

        let sandbox_network = if netns.is_some() {
            SandboxNetwork::Sandbox
        } else {
            SandboxNetwork::None
        };
        cli.run_detached(&dir.bundle(), id, &dir.agent_log(), sandbox_network)
            .await?;

        if options.wait_ready {
            self.wait_ready(id, &dir, &spec.function, cli, deadline)
                .await?;
        }
        Ok(Instance {
            id: id.to_string(),
            socket: dir.socket(),
            runtime: spec.runtime,
        })
    }

    /// Polls the agent's socket until `GET /v1/ready` answers 200, the agent reports it
    /// failed, the container stops, or the deadline passes.
    async fn wait_ready(
        &self,
        id: &str,
        dir: &InstanceDir,
        function: &str,
        cli: &RuntimeCli,
        deadline: Instant,
    ) -> Result<(), DriverError> {
        let client = AgentClient::new(dir.socket());
        let socket = dir.socket();
        let mut pause = Duration::from_millis(2);
        let mut last_state_check = Instant::now();
        let mut last_report: Option<ReadyReport> = None;
        let not_ready = |reason: String, report: Option<&ReadyReport>| DriverError::NotReady {
            function: function.to_string(),
            reason,
            details: failure_details(report, &dir.agent_log()),
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(not_ready(
                    format!(" within {}", seconds(self.config.start_timeout)),
                    last_report.as_ref(),
                ));
            }
            if socket.exists() {
                match tokio::time::timeout(deadline - now, client.ready()).await {
                    Ok(Ok(report)) if report.ready => return Ok(()),
                    Ok(Ok(report)) => {
                        if let Some(error) = report.error.clone() {
                            return Err(not_ready(format!(": {error}"), Some(&report)));
                        }
                        last_report = Some(report);
                    }
                    Ok(Err(crate::AgentError::Connect { .. } | crate::AgentError::Http(_))) => {}
                    Ok(Err(e)) => {
                        return Err(not_ready(
                            format!(": the agent answered wrongly: {e}"),
                            last_report.as_ref(),
                        ))
                    }
                    Err(_) => continue,
                }
            }
            if last_state_check.elapsed() >= Duration::from_millis(200) {
                last_state_check = Instant::now();
                match cli.state(id).await? {
                    Some(state) if state == "running" || state == "created" => {}
                    state => {
                        let state = state.unwrap_or_else(|| "gone".into());
                        return Err(not_ready(
                            format!(": the agent exited before it was ready (container {state})"),
                            last_report.as_ref(),
                        ));
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Removes everything of one instance. Every step runs even if an earlier one failed;
    /// the instance directory goes only when nothing is mounted in it any more.
    async fn teardown(&self, id: &str) -> Result<Removed, DriverError> {
        let dir = self.layout.instance(id);
        let meta = InstanceMeta::read(&dir);
        let runtimes: Vec<OciRuntime> = match (&meta, self.live_instances().get(id)) {
            (Some(meta), _) => vec![meta.runtime],
            (None, Some(runtime)) => vec![*runtime],
            (None, None) => OciRuntime::ALL.to_vec(),
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
        let tools = self.network_tools_or_defaults();
        let (pasta, netns) = network::teardown(&tools, Layout::netns_name(id), &dir).await;
        removed.pasta = pasta;
        removed.netns = netns;
        match overlay::unmount(&dir.rootfs()) {
            Ok(was_mounted) => removed.mount = was_mounted,
            Err(e) => failures.push(e.to_string()),
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

    fn live_instances(&self) -> std::sync::MutexGuard<'_, HashMap<String, OciRuntime>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn runtime_cli(&self, runtime: OciRuntime) -> Result<RuntimeCli, DriverError> {
        match runtime {
            OciRuntime::Runc => Ok(self.runc.clone()),
            OciRuntime::Runsc => {
                let binary = resolve_tool(
                    &self.config.runsc_path,
                    "runsc",
                    "install gVisor with `apt-get install runsc` or set the runsc path in the \
                     configuration",
                )?;
                Ok(RuntimeCli::new(
                    OciRuntime::Runsc,
                    binary,
                    self.layout.runtime_root(OciRuntime::Runsc),
                ))
            }
        }
    }

    fn network_tools(&self) -> Result<NetworkTools, DriverError> {
        Ok(NetworkTools {
            ip: resolve_tool(
                Path::new("ip"),
                "ip",
                "install it with `apt-get install iproute2`",
            )?,
            pasta: resolve_tool(
                &self.config.pasta_path,
                "pasta",
                "install it with `apt-get install passt`, or run functions without network",
            )?,
        })
    }

    fn network_tools_or_defaults(&self) -> NetworkTools {
        self.network_tools().unwrap_or_else(|_| NetworkTools {
            ip: PathBuf::from("ip"),
            pasta: self.config.pasta_path.clone(),
        })
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

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), DriverError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| {
        DriverError::io(
            format!("cannot encode {}", path.display()),
            std::io::Error::other(e),
        )
    })?;
    std::fs::write(path, text)
        .map_err(|e| DriverError::io(format!("cannot write {}", path.display()), e))
}

fn write_file(path: &Path, text: &str) -> Result<(), DriverError> {
    std::fs::write(path, text)
        .map_err(|e| DriverError::io(format!("cannot write {}", path.display()), e))
}

fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{secs:.1}s")
    }
}

/// The agent's report and the end of its log, for a start that failed.
fn failure_details(report: Option<&ReadyReport>, agent_log: &Path) -> String {
    let mut details = String::new();
    if let Some(report) = report {
        if !report.logs.is_empty() {
            details.push_str("\nfunction output:\n");
            let skip = report.logs.len().saturating_sub(20);
            for line in &report.logs[skip..] {
                details.push_str(&format_log_line(line));
                details.push('\n');
            }
        }
    }
    details.push_str("\nagent log:\n");
    details.push_str(&tail_of_file(agent_log, 20));
    details
}

fn format_log_line(line: &LogLine) -> String {
    let stream = match line.stream {
        faasbox_proto::LogStream::Stdout => "stdout",
        faasbox_proto::LogStream::Stderr => "stderr",
        faasbox_proto::LogStream::Function => "log",
        faasbox_proto::LogStream::Agent => "agent",
    };
    format!("  [{stream}] {}", line.line)
}

/// The last `lines` lines of a file (reading at most its last 16 KiB), indented; a note when
/// it is missing or empty.
pub(crate) fn tail_of_file(path: &Path, lines: usize) -> String {
    const MAX: u64 = 16 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return "  (no log)".to_string();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX {
        let _ = file.seek(SeekFrom::Start(len - MAX));
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return "  (unreadable log)".to_string();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if all.is_empty() {
        return "  (empty)".to_string();
    }
    let skip = all.len().saturating_sub(lines);
    all[skip..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reports_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        assert_eq!(tail_of_file(&file, 3), "  (no log)");
        std::fs::write(&file, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(tail_of_file(&file, 2), "  c\n  d");
        std::fs::write(&file, "").unwrap();
        assert_eq!(tail_of_file(&file, 2), "  (empty)");
    }

    #[test]
    fn seconds_are_human() {
        assert_eq!(seconds(Duration::from_secs(120)), "120s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
    }
}
