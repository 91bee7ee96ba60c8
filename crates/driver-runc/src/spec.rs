//! The OCI runtime spec (`config.json`) of an instance.
//!
//! The container process is the agent (bind-mounted read-only from the host), root in the
//! container with a reduced capability set, no new privileges, and under runc a seccomp filter
//! equivalent to the runtime default ([`super::seccomp`]) and, when the driver has one, a user
//! namespace mapping container root to an unprivileged host range ([`super::userns`]). gVisor
//! (runsc) gets neither: its own kernel answers the function's system calls and its sandbox
//! runs the function without host root's privileges.
//!
//! OOM order: the agent starts the function at `oom_score_adj` 1000, the most, so the kernel
//! kills a function process before the agent. The agent itself asks for -999 when this
//! process may lower scores (`CAP_SYS_RESOURCE`, which runc uses before it enters the user
//! namespace); a server without it leaves the agent at the server's own score (a runtime asked
//! for -999 without the capability would refuse to start the container).
//!
//! Mounts: the control directory read-only at `/.faasbox` (the agent's configuration), the
//! agent's socket directory at `/.faasbox/sock` and the scratch directories, both from the
//! instance's bounded disk ([`super::disk`]); under runsc also the root filesystem's `/tmp`
//! over `/tmp`, where gVisor would otherwise mount a tmpfs of its own. The memory cgroup's limit is the spec's memory
//! plus its disk, whose tmpfs pages it is charged with. The other mounts, masked and read-only
//! paths follow `runc spec`'s defaults, except that `/sys` is a read-only bind of the host's
//! (as rootless containers have it) when the container has a user namespace and joins a
//! network namespace made outside it: the kernel mounts sysfs only for the owner of the
//! network namespace. The container then sees the host's network interfaces in
//! `/sys/class/net`, read-only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use faasbox_proto::{
    CONTAINER_AGENT_PATH, CONTAINER_CONTROL_DIR, CONTAINER_SOCKET_DIR, DEFAULT_TEMP_ROOT,
    DIREKTIV_CMD_PATH,
};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::runsc::PIDS_ALLOWANCE;
use crate::IdMap;
use faasbox_driver::{Limits, RuntimeClass};

/// The CFS period the CPU quota is expressed in (100 ms, the kernel default).
const CPU_PERIOD_US: u64 = 100_000;
/// Open files of the container process (soft and hard), at most.
const NOFILE_LIMIT: u64 = 65_536;
/// Added to an image environment that has no `PATH`.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Capabilities of the container process (bounding, effective and permitted; inheritable and
/// ambient stay empty so nothing passes through an exec by capability inheritance).
///
/// Docker's default set minus `MKNOD` (no device nodes needed), `NET_RAW` (raw sockets allow
/// spoofing on the instance's network), `AUDIT_WRITE` and `SETFCAP` (neither is needed to run
/// a function). What is kept, and why:
/// - `CHOWN`, `DAC_OVERRIDE`, `FOWNER`, `FSETID`: the agent prepares per-call directories and
///   files for a function that may run as another user; root-run images expect them.
/// - `SETUID`, `SETGID`: the agent starts the function as the image's user.
/// - `KILL`: the agent signals the function's processes, whatever user they run as.
/// - `NET_BIND_SERVICE`: functions listening on ports below 1024.
/// - `SYS_CHROOT`: some images' entrypoints chroot.
/// - `SETPCAP`: lets the agent (or a root function) drop capabilities from its bounding set
///   before exec; it can only reduce privileges.
pub(crate) const CAPABILITIES: [Capability; 10] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Setpcap,
];

/// The annotation that names the instance's function.
pub(crate) const FUNCTION_ANNOTATION: &str = "io.faasbox.function";

/// Everything the spec is made from.
#[derive(Debug, Clone)]
pub(crate) struct SpecParams {
    pub id: String,
    pub function: String,
    pub hostname: String,
    pub runtime: RuntimeClass,
    pub rootfs: PathBuf,
    /// The container process's argv (normally the agent's `serve` command).
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub agent_binary: PathBuf,
    /// Mounted read-only at `/.faasbox`.
    pub control_dir: PathBuf,
    /// Mounted writable at `/.faasbox/sock`.
    pub socket_dir: PathBuf,
    pub hosts_file: PathBuf,
    /// Bound over `/etc/resolv.conf` when the instance has network.
    pub resolv_conf: Option<PathBuf>,
    /// The network namespace to join; `None` gives a fresh one with loopback only.
    pub netns: Option<PathBuf>,
    pub cgroups_path: String,
    pub limits: Limits,
    /// The size of the instance's disk (added to the memory limit).
    pub disk_bytes: u64,
    /// The user namespace's mapping (runc only).
    pub id_map: Option<IdMap>,
    /// Whether the host accounts swap (only then is `memory.swap` set).
    pub swap_accounting: bool,
    /// `oomScoreAdj` of the agent ([`agent_oom_score_adj`]).
    pub oom_score_adj: Option<i32>,
    /// `RLIMIT_NOFILE` of the agent ([`nofile_limit`]).
    pub nofile: u64,
    /// Directories of the instance's disk: (path in the container, host directory).
    pub scratch: Vec<(String, PathBuf)>,
    /// runc and crun: the disk's directory for the calls' temp dirs, bound at
    /// [`DEFAULT_TEMP_ROOT`]: a call's `mkdir` and `rmdir` there are the tmpfs's own, not the
    /// overlay's (which looks the name up in every image layer first).
    pub calls_dir: Option<PathBuf>,
    /// runsc: the root filesystem's own `/tmp` (a real directory on the host), bound over
    /// `/tmp` so that gVisor does not put a tmpfs of its own, unbounded but by memory, there.
    pub sandbox_tmp: Option<PathBuf>,
}

/// 65536 open files, or this process's own hard limit when that is lower: raising a hard
/// limit needs `CAP_SYS_RESOURCE`, without which the runtime would fail to start the
/// container.
pub(crate) fn nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => hard.min(NOFILE_LIMIT),
        Err(_) => NOFILE_LIMIT,
    }
}

/// The agent's wanted OOM score adjustment.
const AGENT_OOM_SCORE_ADJ: i32 = -999;
/// `CAP_SYS_RESOURCE`: needed to lower an OOM score adjustment.
const CAP_SYS_RESOURCE: u32 = 24;

/// -999 when this process may lower OOM scores (it has `CAP_SYS_RESOURCE`), else `None`.
pub(crate) fn agent_oom_score_adj() -> Option<i32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    (effective & (1 << CAP_SYS_RESOURCE) != 0).then_some(AGENT_OOM_SCORE_ADJ)
}

/// The agent's argv inside the container.
pub(crate) fn agent_args() -> Vec<String> {
    vec![
        CONTAINER_AGENT_PATH.to_string(),
        "serve".to_string(),
        "--config".to_string(),
        format!(
            "{CONTAINER_CONTROL_DIR}/{}",
            faasbox_proto::AGENT_CONFIG_NAME
        ),
    ]
}

pub(crate) fn build(params: &SpecParams) -> Result<Spec, oci_spec::OciSpecError> {
    let capabilities = CAPABILITIES
        .into_iter()
        .collect::<oci_spec::runtime::Capabilities>();
    let mut env = params.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_string());
    }
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(params.args.clone())
        .env(env)
        .cwd("/")
        .no_new_privileges(true)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(capabilities.clone())
                .effective(capabilities.clone())
                .permitted(capabilities)
                .inheritable(oci_spec::runtime::Capabilities::new())
                .ambient(oci_spec::runtime::Capabilities::new())
                .build()?,
        )
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(params.nofile)
            .hard(params.nofile)
            .build()?]);
    if let Some(adj) = params.oom_score_adj {
        process = process.oom_score_adj(adj);
    }
    let process = process.build()?;

    if params.runtime == RuntimeClass::Sandboxed && params.id_map.is_some() {
        return Err(oci_spec::OciSpecError::Other(
            "gVisor (runsc) instances get no user namespace".into(),
        ));
    }
    let mut annotations = HashMap::new();
    // None for a stem cell, which may serve any function of its image and settings.
    if !params.function.is_empty() {
        annotations.insert(FUNCTION_ANNOTATION.to_string(), params.function.clone());
    }
    annotations.insert("io.faasbox.instance".to_string(), params.id.clone());

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(params.rootfs.clone())
                .readonly(false)
                .build()?,
        )
        .hostname(params.hostname.clone())
        .process(process)
        .mounts(mounts(params)?)
        .annotations(annotations)
        .linux(linux(params)?)
        .build()
}

fn mount(
    destination: &str,
    typ: &str,
    source: impl AsRef<Path>,
    options: &[&str],
) -> Result<Mount, oci_spec::OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source.as_ref())
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
}

fn mounts(params: &SpecParams) -> Result<Vec<Mount>, oci_spec::OciSpecError> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    if params.id_map.is_some() && params.netns.is_some() {
        // Not the network namespace's owner: sysfs cannot be mounted fresh. Recursive, as the
        // kernel binds a tree with mounts locked in it only whole; what is below the read-only
        // top belongs to host root, whom the container's root is not. Private: crun binds it
        // as a copy that stays a peer of the host's /sys, so the cgroup mount made on top of
        // it next would otherwise appear in the host's mount namespace (and keep the
        // instance's cgroup from being removed).
        mounts.push(mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "rprivate", "nosuid", "noexec", "nodev", "ro"],
        )?);
    } else {
        mounts.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?);
    }
    if params.runtime == RuntimeClass::Standard {
        // gVisor brings its own cgroupfs; runc mounts the container's (namespaced) view.
        mounts.push(mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?);
    }
    let agent = params.agent_binary.as_path();
    mounts.push(mount(
        CONTAINER_AGENT_PATH,
        "bind",
        agent,
        &["bind", "ro", "nosuid", "nodev"],
    )?);
    mounts.push(mount(
        DIREKTIV_CMD_PATH,
        "bind",
        agent,
        &["bind", "ro", "nosuid", "nodev"],
    )?);
    mounts.push(mount(
        CONTAINER_CONTROL_DIR,
        "bind",
        &params.control_dir,
        &["bind", "ro", "nosuid", "nodev", "noexec"],
    )?);
    mounts.push(mount(
        CONTAINER_SOCKET_DIR,
        "bind",
        &params.socket_dir,
        &["bind", "rw", "nosuid", "nodev", "noexec"],
    )?);
    mounts.push(mount(
        "/etc/hosts",
        "bind",
        &params.hosts_file,
        &["bind", "ro", "nosuid", "nodev", "noexec"],
    )?);
    if let Some(resolv_conf) = &params.resolv_conf {
        mounts.push(mount(
            "/etc/resolv.conf",
            "bind",
            resolv_conf,
            &["bind", "ro", "nosuid", "nodev", "noexec"],
        )?);
    }
    if let Some(tmp) = &params.sandbox_tmp {
        mounts.push(mount(
            "/tmp",
            "bind",
            tmp,
            &["bind", "rw", "nosuid", "nodev"],
        )?);
    }
    if let Some(calls) = &params.calls_dir {
        mounts.push(mount(
            DEFAULT_TEMP_ROOT,
            "bind",
            calls,
            &["bind", "rw", "nosuid", "nodev"],
        )?);
    }
    for (path, source) in &params.scratch {
        mounts.push(mount(
            path,
            "bind",
            source,
            &["bind", "rw", "nosuid", "nodev"],
        )?);
    }
    Ok(mounts)
}

fn linux(params: &SpecParams) -> Result<oci_spec::runtime::Linux, oci_spec::OciSpecError> {
    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }
    if params.runtime == RuntimeClass::Standard {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()?,
        );
    }
    if params.id_map.is_some() {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()?,
        );
    }
    let mut network = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    if let Some(path) = &params.netns {
        network = network.path(path.clone());
    }
    namespaces.push(network.build()?);

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&params.cgroups_path))
        .resources(resources(params)?)
        .masked_paths(oci_spec::runtime::get_default_maskedpaths())
        .readonly_paths(oci_spec::runtime::get_default_readonly_paths());
    if let Some(map) = params.id_map {
        let mapping = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(map.host_base)
            .size(map.size)
            .build()?;
        linux = linux
            .uid_mappings(vec![mapping])
            .gid_mappings(vec![mapping]);
    }
    if params.runtime == RuntimeClass::Standard {
        linux = linux.seccomp(super::seccomp::profile()?);
    }
    linux.build()
}

fn resources(
    params: &SpecParams,
) -> Result<oci_spec::runtime::LinuxResources, oci_spec::OciSpecError> {
    let limits = params.limits;
    // Deny all devices but the defaults the runtime adds itself (null, zero, random, tty, …).
    let mut builder =
        LinuxResourcesBuilder::default().devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?]);
    if limits.memory_bytes > 0 {
        // The disk's tmpfs pages are charged here too.
        let total = limits.memory_bytes.saturating_add(params.disk_bytes);
        let bytes = i64::try_from(total).unwrap_or(i64::MAX);
        let mut memory = LinuxMemoryBuilder::default().limit(bytes);
        if params.swap_accounting {
            // memory+swap = memory: no swap on top of the limit.
            memory = memory.swap(bytes);
        }
        builder = builder.memory(memory.build()?);
    }
    if limits.cpu_millis > 0 {
        let quota = limits.cpu_millis.saturating_mul(CPU_PERIOD_US) / 1000;
        // The kernel refuses quotas below 1 ms.
        let quota = i64::try_from(quota.max(1000)).unwrap_or(i64::MAX);
        builder = builder.cpu(
            LinuxCpuBuilder::default()
                .quota(quota)
                .period(CPU_PERIOD_US)
                .build()?,
        );
    }
    if limits.pids > 0 {
        let pids = match params.runtime {
            RuntimeClass::Standard => limits.pids,
            RuntimeClass::Sandboxed => limits.pids.saturating_add(PIDS_ALLOWANCE),
        };
        builder = builder.pids(LinuxPidsBuilder::default().limit(pids).build()?);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(runtime: RuntimeClass, network: bool) -> SpecParams {
        SpecParams {
            id: "fbx00000000-0123456789ab".into(),
            function: "ns/fn".into(),
            hostname: "0123456789ab".into(),
            runtime,
            rootfs: "/state/instances/x/rootfs".into(),
            args: agent_args(),
            env: vec!["A=1".into()],
            agent_binary: "/usr/lib/faasbox/faasbox-agent".into(),
            control_dir: "/state/instances/x/ctl".into(),
            socket_dir: "/state/instances/x/disk/sock".into(),
            hosts_file: "/state/instances/x/hosts".into(),
            resolv_conf: network.then(|| "/state/instances/x/resolv.conf".into()),
            netns: network.then(|| "/run/netns/fbx00000000-0123456789ab".into()),
            cgroups_path: "/faasbox/fbx00000000/fbx00000000-0123456789ab".into(),
            limits: Limits {
                memory_bytes: 128 << 20,
                cpu_millis: 500,
                pids: 64,
            },
            disk_bytes: 32 << 20,
            id_map: (runtime == RuntimeClass::Standard).then_some(IdMap::DEFAULT),
            swap_accounting: true,
            oom_score_adj: Some(-999),
            nofile: 65_536,
            scratch: vec![(
                "/direktiv-data".into(),
                "/state/instances/x/disk/scratch/0".into(),
            )],
            calls_dir: (runtime == RuntimeClass::Standard)
                .then(|| "/state/instances/x/disk/calls".into()),
            sandbox_tmp: (runtime == RuntimeClass::Sandboxed)
                .then(|| "/state/instances/x/rootfs/tmp".into()),
        }
    }

    #[test]
    fn spec_has_agent_limits_and_mounts() {
        let spec = build(&params(RuntimeClass::Standard, true)).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let process = &json["process"];
        assert_eq!(
            process["args"],
            serde_json::json!([
                "/.faasbox-agent",
                "serve",
                "--config",
                "/.faasbox/agent.json"
            ])
        );
        assert_eq!(process["oomScoreAdj"], -999);
        assert_eq!(process["noNewPrivileges"], true);
        assert_eq!(process["user"]["uid"], 0);
        assert!(process["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("PATH=")));
        let bounding = process["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(bounding.len(), CAPABILITIES.len());
        assert!(bounding.iter().any(|c| c == "CAP_SETUID"));
        assert!(!bounding.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert_eq!(process["capabilities"]["ambient"], serde_json::json!([]));
        assert_eq!(process["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(process["rlimits"][0]["hard"], 65536);

        let resources = &json["linux"]["resources"];
        // Memory plus the disk's tmpfs pages.
        assert_eq!(resources["memory"]["limit"], 160 << 20);
        assert_eq!(resources["memory"]["swap"], 160 << 20);
        assert_eq!(resources["cpu"]["quota"], 50_000);
        assert_eq!(resources["cpu"]["period"], 100_000);
        assert_eq!(resources["pids"]["limit"], 64);
        assert_eq!(
            json["linux"]["cgroupsPath"],
            "/faasbox/fbx00000000/fbx00000000-0123456789ab"
        );
        let net = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/run/netns/fbx00000000-0123456789ab");

        let mounts = json["mounts"].as_array().unwrap();
        let dest = |d: &str| mounts.iter().find(|m| m["destination"] == d).cloned();
        let has = |m: &serde_json::Value, option: &str| {
            m["options"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(option))
        };
        let scratch = dest("/direktiv-data").expect("scratch directory");
        assert_eq!(scratch["type"], "bind");
        assert_eq!(scratch["source"], "/state/instances/x/disk/scratch/0");
        assert!(has(&scratch, "rw"));
        let agent = dest("/.faasbox-agent").unwrap();
        assert_eq!(agent["source"], "/usr/lib/faasbox/faasbox-agent");
        assert!(agent["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "ro"));
        assert!(dest("/usr/share/direktiv/direktiv-cmd").is_some());
        let control = dest("/.faasbox").unwrap();
        assert_eq!(control["source"], "/state/instances/x/ctl");
        assert!(has(&control, "ro"), "the control mount is read-only");
        let socket = dest("/.faasbox/sock").unwrap();
        assert_eq!(socket["source"], "/state/instances/x/disk/sock");
        assert!(has(&socket, "rw") && has(&socket, "noexec"));
        let calls = dest(DEFAULT_TEMP_ROOT).expect("the calls' temp dirs");
        assert_eq!(calls["source"], "/state/instances/x/disk/calls");
        assert!(has(&calls, "rw") && has(&calls, "nosuid") && has(&calls, "nodev"));
        assert!(dest("/etc/resolv.conf").is_some());
        assert!(dest("/sys/fs/cgroup").is_some());
        // A user namespace joining an outside network namespace: /sys is the host's, read-only.
        let sys = dest("/sys").unwrap();
        assert_eq!(
            (&sys["type"], &sys["source"]),
            (&"bind".into(), &"/sys".into())
        );
        assert!(has(&sys, "ro"));
        assert!(
            has(&sys, "rprivate"),
            "nothing mounted on it may reach the host"
        );
        assert_eq!(json["hostname"], "0123456789ab");
        assert_eq!(json["annotations"]["io.faasbox.function"], "ns/fn");

        let linux = &json["linux"];
        assert!(linux["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user"));
        let mapping = serde_json::json!([{
            "containerID": 0, "hostID": IdMap::DEFAULT.host_base, "size": 65536
        }]);
        assert_eq!(linux["uidMappings"], mapping);
        assert_eq!(linux["gidMappings"], mapping);
        assert_eq!(linux["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");

        // Without network the container owns its network namespace: a fresh sysfs.
        let json =
            serde_json::to_value(build(&params(RuntimeClass::Standard, false)).unwrap()).unwrap();
        let sys = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap()
            .clone();
        assert_eq!(sys["type"], "sysfs");
    }

    #[test]
    fn runsc_and_no_network_variants() {
        let mut p = params(RuntimeClass::Sandboxed, false);
        p.limits = Limits::default();
        let json = serde_json::to_value(build(&p).unwrap()).unwrap();
        let namespaces = json["linux"]["namespaces"].as_array().unwrap();
        let net = namespaces.iter().find(|n| n["type"] == "network").unwrap();
        assert!(net.get("path").is_none());
        assert!(!namespaces.iter().any(|n| n["type"] == "cgroup"));
        let mounts = json["mounts"].as_array().unwrap();
        assert!(!mounts
            .iter()
            .any(|m| m["destination"] == "/etc/resolv.conf"));
        assert!(!mounts.iter().any(|m| m["destination"] == "/sys/fs/cgroup"));
        // gVisor: the calls' temp dirs stay in its root filesystem.
        assert!(!mounts.iter().any(|m| m["destination"] == DEFAULT_TEMP_ROOT));
        // gVisor: /tmp is the root filesystem's (on the bounded disk), not gVisor's own tmpfs.
        let tmp = mounts.iter().find(|m| m["destination"] == "/tmp").unwrap();
        assert_eq!(tmp["source"], "/state/instances/x/rootfs/tmp");
        // gVisor: no user namespace, no seccomp filter in the spec.
        assert!(json["linux"].get("seccomp").is_none());
        assert!(json["linux"].get("uidMappings").is_none());
        assert!(!namespaces.iter().any(|n| n["type"] == "user"));
        let mut mapped = p.clone();
        mapped.id_map = Some(IdMap::DEFAULT);
        assert!(build(&mapped).is_err());
        let resources = &json["linux"]["resources"];
        assert!(resources.get("memory").is_none());
        assert!(resources.get("cpu").is_none());
        assert!(resources.get("pids").is_none());

        let mut p = params(RuntimeClass::Sandboxed, false);
        p.swap_accounting = false;
        p.oom_score_adj = None;
        let json = serde_json::to_value(build(&p).unwrap()).unwrap();
        assert_eq!(
            json["linux"]["resources"]["pids"]["limit"],
            64 + PIDS_ALLOWANCE
        );
        assert!(json["linux"]["resources"]["memory"].get("swap").is_none());
        assert!(json["process"].get("oomScoreAdj").is_none());
    }
}
