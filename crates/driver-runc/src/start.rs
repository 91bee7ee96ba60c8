//! Starting an instance: its directory, root filesystem and network (at once; the network
//! possibly a spare made ahead), agent configuration, OCI spec and container, in that order;
//! torn down again on any failure, on timeout, and when the caller drops the start half-way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::command::{RuntimeCli, SandboxNetwork};
use super::disk::{self, Owner};
use super::layout::{self, make_container_readable, InstanceDir, InstanceMeta, Layout};
use super::network::NetworkTools;
use super::report::{seconds, tail_of_file};
use super::userns::{self, Userns};
use super::{cgroup, network, overlay, spec, Inner};
use faasbox_driver::{DriverError, Instance, InstanceSpec, RuntimeClass};

/// Test hooks for `RuncDriver::start_with`.
#[derive(Debug, Clone, Default)]
pub(crate) struct StartOptions {
    /// Replaces the agent's argv as the container process.
    pub args: Option<Vec<String>>,
    /// Wait for the agent's readiness (what `Driver::start` does).
    pub wait_ready: bool,
}

/// How far [`Inner::create_and_start`] takes the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Launch {
    /// `run --detach`: the container process runs.
    Run,
    /// `create` only: a stem cell ([`super::stem`]), its init waiting for `start`.
    Create,
}

/// Where an instance's network comes from.
pub(super) enum NetworkPlan {
    /// Made now with these tools.
    Make(NetworkTools),
    /// A spare's, ready under the instance's id.
    Spare,
}

/// Tears an instance down if a start is abandoned half-way (its future dropped).
pub(super) struct TeardownGuard {
    pub(super) inner: Option<Arc<Inner>>,
    pub(super) id: String,
}

impl TeardownGuard {
    pub(super) fn disarm(mut self) {
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

impl Inner {
    /// A new instance's id and where its network comes from: a spare network namespace (which
    /// brings its instance id along) when there is one, else one made with the helper's tools;
    /// none for a spec without network.
    pub(super) fn plan_network(
        self: &Arc<Self>,
        spec: &InstanceSpec,
    ) -> Result<(String, Option<NetworkPlan>), DriverError> {
        if !spec.network {
            return Ok((self.layout.new_id(), None));
        }
        let tools = self.network_tools()?;
        Ok(match self.take_spare_network(&tools) {
            Some(id) => (id, Some(NetworkPlan::Spare)),
            None => (self.layout.new_id(), Some(NetworkPlan::Make(tools))),
        })
    }

    pub(super) async fn start(
        self: &Arc<Self>,
        spec: InstanceSpec,
        options: StartOptions,
    ) -> Result<Instance, DriverError> {
        if !self.config.agent_binary.is_file() {
            return Err(DriverError::AgentMissing(self.config.agent_binary.clone()));
        }
        if spec.runtime == RuntimeClass::Standard && self.userns.is_some() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.config.agent_binary)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o005 != 0o005 {
                return Err(DriverError::AgentNotExecutable(
                    self.config.agent_binary.clone(),
                ));
            }
        }
        let cli = self.runtime_cli(spec.runtime)?;
        // A container created ahead for exactly this spec, when there is one; recent demand
        // (this start) refills them either way.
        let stem_key = self.stem_key(&spec, &options);
        let claimed = match &stem_key {
            Some(key) => self.start_from_stem(key, &spec, &cli).await,
            None => None,
        };
        let started = match claimed {
            Some(started) => started,
            None => self.start_fresh(&spec, &options, &cli).await,
        };
        // After the start, so that making them does not slow it down; not for a function
        // that does not start.
        if let (Some(key), Ok(_)) = (&stem_key, &started) {
            self.refill_stems(key, &spec);
        }
        started
    }

    /// A start without a stem cell: everything made now.
    async fn start_fresh(
        self: &Arc<Self>,
        spec: &InstanceSpec,
        options: &StartOptions,
        cli: &RuntimeCli,
    ) -> Result<Instance, DriverError> {
        let (id, network) = self.plan_network(spec)?;
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
            self.create_and_start(&id, spec, options, cli, network, deadline, Launch::Run),
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

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_and_start(
        &self,
        id: &str,
        spec: &InstanceSpec,
        options: &StartOptions,
        cli: &RuntimeCli,
        network: Option<NetworkPlan>,
        deadline: Instant,
        launch: Launch,
    ) -> Result<Instance, DriverError> {
        let mut steps = Steps::new();
        let dir = self.layout.instance(id);
        for sub in [
            dir.root().to_path_buf(),
            dir.bundle(),
            dir.rootfs(),
            dir.socket_mount_point(),
        ] {
            std::fs::create_dir_all(&sub)
                .map_err(|e| DriverError::io(format!("cannot create {}", sub.display()), e))?;
        }
        layout::make_traversable(dir.root())?;
        for shared in [dir.ctl(), dir.socket_mount_point()] {
            make_container_readable(&shared)?;
        }
        // A stem cell may serve another function of the same image and settings: it names
        // its function when claimed.
        let stem = launch == Launch::Create;
        let meta = InstanceMeta {
            function: if stem {
                String::new()
            } else {
                spec.function.clone()
            },
            runtime: spec.runtime,
            network: spec.network,
            stem,
        };
        write_json(&dir.meta(), &meta)?;
        steps.done("dir");

        let layers = self
            .layers
            .layer_dirs(&spec.image)
            .map_err(|message| DriverError::Image {
                function: spec.function.clone(),
                image: spec.image.to_string(),
                message,
            })?;
        let layers = if layers.is_empty() {
            let empty = dir.empty_lower();
            std::fs::create_dir_all(&empty)
                .map_err(|e| DriverError::io(format!("cannot create {}", empty.display()), e))?;
            vec![empty]
        } else {
            layers
        };
        // User namespaces are runc's; gVisor runs the function on its own kernel.
        let userns = match spec.runtime {
            RuntimeClass::Standard => self.userns.clone(),
            RuntimeClass::Sandboxed => None,
        };
        let rootfs = RootfsPlan {
            dir: dir.clone(),
            layers,
            disk_bytes: spec.disk_bytes,
            scratch: spec.scratch.len(),
            userns: userns.clone(),
        };
        // The root filesystem (mounts, blocking) and the network (namespace, helper) are
        // independent: both run at once. On failure of either, the caller's teardown removes both.
        let began = Instant::now();
        let composed = async {
            let result = tokio::task::spawn_blocking(move || rootfs.compose())
                .await
                .map_err(|e| DriverError::Mount {
                    target: PathBuf::new(),
                    message: format!("the root filesystem task failed: {e}"),
                })
                .and_then(|composed| composed);
            (result, began.elapsed())
        };
        let networked = async {
            let result = match network {
                Some(NetworkPlan::Spare) => Ok(Some(network::netns_path(Layout::netns_name(id)))),
                Some(NetworkPlan::Make(tools)) => {
                    network::setup(&tools, Layout::netns_name(id), &dir)
                        .await
                        .map(Some)
                }
                None => Ok(None),
            };
            (result, began.elapsed())
        };
        let ((composed, rootfs_took), (networked, network_took)) =
            tokio::join!(composed, networked);
        steps.took("rootfs", rootfs_took);
        steps.took("network", network_took);
        steps.done("rootfs+network");
        composed?;
        let netns = networked?;

        // A stem cell gets its agent configuration when it is claimed (the agent reads it
        // when it starts, after `runc start`).
        if launch == Launch::Run {
            write_agent_config(&dir, spec)?;
        }
        let hostname = Layout::short_id(id).to_string();
        write_file(
            &dir.hosts(),
            &format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
            ),
        )?;
        make_container_readable(&dir.hosts())?;

        let sandbox_tmp = match spec.runtime {
            RuntimeClass::Sandboxed => sandbox_tmp(&dir.rootfs()),
            RuntimeClass::Standard => None,
        };
        steps.done("agent config");

        let params = spec::SpecParams {
            id: id.to_string(),
            function: meta.function.clone(),
            hostname,
            runtime: spec.runtime,
            rootfs: dir.rootfs(),
            args: options.args.clone().unwrap_or_else(spec::agent_args),
            env: spec.env.clone(),
            agent_binary: self.config.agent_binary.clone(),
            control_dir: dir.ctl(),
            socket_dir: dir.socket_dir(),
            hosts_file: dir.hosts(),
            resolv_conf: netns.as_ref().map(|_| dir.resolv_conf()),
            netns: netns.clone(),
            cgroups_path: self.layout.cgroups_path(id),
            limits: spec.limits,
            disk_bytes: spec.disk_bytes.max(disk::MIN_DISK_BYTES),
            id_map: userns.as_ref().map(|u| u.map()),
            swap_accounting: cgroup::swap_accounting(),
            oom_score_adj: spec::agent_oom_score_adj(),
            nofile: spec::nofile_limit(),
            scratch: spec
                .scratch
                .iter()
                .enumerate()
                .map(|(index, mount)| (mount.path.clone(), dir.scratch(index)))
                .collect(),
            calls_dir: (spec.runtime == RuntimeClass::Standard).then(|| dir.calls_dir()),
            sandbox_tmp,
        };
        let oci = spec::build(&params).map_err(|e| DriverError::InvalidSpec {
            function: spec.function.clone(),
            message: e.to_string(),
        })?;
        write_json(&dir.config_json(), &oci)?;
        steps.done("spec");

        let sandbox_network = if netns.is_some() {
            SandboxNetwork::Sandbox
        } else {
            SandboxNetwork::None
        };
        match launch {
            Launch::Run => {
                cli.run_detached(
                    &dir.bundle(),
                    id,
                    &dir.agent_log(),
                    &dir.init_pid(),
                    sandbox_network,
                )
                .await?;
                steps.done("runtime run");
            }
            Launch::Create => {
                cli.create(
                    &dir.bundle(),
                    id,
                    &dir.agent_log(),
                    &dir.init_pid(),
                    sandbox_network,
                )
                .await?;
                steps.done("runtime create");
                steps.report(id, &spec.function);
                return Ok(Instance {
                    id: id.to_string(),
                    endpoint: faasbox_proto::AgentEndpoint::Unix(dir.socket()),
                    runtime: spec.runtime,
                });
            }
        }

        if options.wait_ready {
            self.wait_ready(id, &dir, &spec.function, cli, deadline)
                .await?;
            steps.done("wait ready");
        }
        steps.report(id, &spec.function);
        Ok(Instance {
            id: id.to_string(),
            endpoint: faasbox_proto::AgentEndpoint::Unix(dir.socket()),
            runtime: spec.runtime,
        })
    }
}

/// Writes the agent's configuration (`ctl/agent.json`) for `spec`: the spec's, with the
/// function's name, the disk limit and gVisor's blocking TCP filled in.
pub(super) fn write_agent_config(
    dir: &InstanceDir,
    spec: &InstanceSpec,
) -> Result<(), DriverError> {
    let mut agent = spec.agent.clone();
    if agent.function.is_empty() {
        agent.function = spec.function.clone();
    }
    if agent.disk_limit_bytes == 0 {
        agent.disk_limit_bytes = spec.disk_bytes.max(disk::MIN_DISK_BYTES);
    }
    // gVisor's netstack (the release Debian ships) loses wakeups on loopback TCP.
    agent.blocking_tcp |= spec.runtime == RuntimeClass::Sandboxed;
    write_json(&dir.agent_config(), &agent)?;
    make_container_readable(&dir.agent_config())
}

/// Adds the function's annotation to a claimed stem cell's bundle `config.json` (runc read it
/// at `create` and does not again; tools that look for a function's containers by it do),
/// replacing the file at once.
pub(super) fn annotate_bundle(dir: &InstanceDir, function: &str) -> Result<(), DriverError> {
    let path = dir.config_json();
    let text = std::fs::read(&path)
        .map_err(|e| DriverError::io(format!("cannot read {}", path.display()), e))?;
    let mut config: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        DriverError::io(
            format!("cannot parse {}", path.display()),
            std::io::Error::other(e),
        )
    })?;
    if let Some(annotations) = config
        .get_mut("annotations")
        .and_then(serde_json::Value::as_object_mut)
    {
        annotations.insert(
            spec::FUNCTION_ANNOTATION.to_string(),
            serde_json::Value::String(function.to_string()),
        );
    }
    let fresh = path.with_extension("json.new");
    write_json(&fresh, &config)?;
    std::fs::rename(&fresh, &path)
        .map_err(|e| DriverError::io(format!("cannot replace {}", path.display()), e))
}

/// Writes `instance.json` for `spec` (a claimed stem cell's names its function now).
pub(super) fn write_meta(dir: &InstanceDir, spec: &InstanceSpec) -> Result<(), DriverError> {
    let meta = InstanceMeta {
        function: spec.function.clone(),
        runtime: spec.runtime,
        network: spec.network,
        stem: false,
    };
    write_json(&dir.meta(), &meta)
}

/// The root filesystem's `/tmp` for gVisor to use as it is (made, mode 1777, when the image
/// has none). `None` when it is not a plain directory: a symbolic link would be followed on
/// the host, so gVisor keeps its own `/tmp` then.
fn sandbox_tmp(rootfs: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = rootfs.join("tmp");
    match std::fs::symlink_metadata(&tmp) {
        Ok(meta) if meta.is_dir() => Some(tmp),
        Ok(_) => {
            tracing::warn!(
                path = %tmp.display(),
                "the image's /tmp is not a directory; gVisor keeps its own /tmp (bounded by memory only)"
            );
            None
        }
        Err(_) => {
            std::fs::create_dir(&tmp).ok()?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).ok()?;
            Some(tmp)
        }
    }
}

/// How long each step of one start took, reported at debug level (target
/// `faasbox_driver_runc::start`) once the instance is up.
pub(super) struct Steps {
    began: Instant,
    last: Instant,
    took: Vec<(&'static str, Duration)>,
}

impl Steps {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Steps {
            began: now,
            last: now,
            took: Vec::with_capacity(8),
        }
    }

    /// The step `name` ended now (it began when the previous one ended).
    pub(super) fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        self.took.push((name, now - self.last));
        self.last = now;
    }

    /// A step that ran alongside others took `took`.
    fn took(&mut self, name: &'static str, took: Duration) {
        self.took.push((name, took));
    }

    pub(super) fn report(&self, id: &str, function: &str) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let steps: Vec<String> = self
            .took
            .iter()
            .map(|(name, took)| format!("{name} {:.2} ms", took.as_secs_f64() * 1e3))
            .collect();
        tracing::debug!(
            instance = id,
            function,
            total_ms = self.began.elapsed().as_secs_f64() * 1e3,
            steps = %steps.join(", "),
            "instance started"
        );
    }
}

/// What the root filesystem is made of: the disk, the layers, and the id mapping.
struct RootfsPlan {
    dir: InstanceDir,
    layers: Vec<PathBuf>,
    disk_bytes: u64,
    scratch: usize,
    userns: Option<Arc<Userns>>,
}

impl RootfsPlan {
    /// Mounts the instance's disk, then the overlay of the layers (through idmapped views of
    /// them with a user namespace) with its upper directory on that disk. Blocking.
    fn compose(self) -> Result<(), DriverError> {
        let owner = match &self.userns {
            Some(userns) => Owner {
                uid: userns.map().host_base,
                gid: userns.map().host_base,
            },
            None => Owner { uid: 0, gid: 0 },
        };
        disk::prepare_log(&self.dir)?;
        disk::prepare(&self.dir, self.disk_bytes, owner, self.scratch)?;
        let Some(userns) = &self.userns else {
            return overlay::mount_blocking(
                &self.layers,
                &self.dir.upper(),
                &self.dir.work(),
                &self.dir.rootfs(),
            );
        };
        let views = self.dir.lower_mounts();
        let mounted = userns
            .attach_layers(&self.layers, &views)
            .and_then(|lower| {
                overlay::mount_blocking(
                    &lower,
                    &self.dir.upper(),
                    &self.dir.work(),
                    &self.dir.rootfs(),
                )
            });
        userns::detach_layers(&views);
        mounted
    }
}

/// Writes `value` as compact JSON: these files sit on the state directory's tmpfs for as long
/// as their instance runs (the OCI spec takes 3 pages so, 5 pretty-printed).
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), DriverError> {
    let text = serde_json::to_vec(value).map_err(|e| {
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
