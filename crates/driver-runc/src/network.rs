//! Outbound network for an instance: a named network namespace (made in-process the way
//! `ip netns add` makes it, so it is a file in `/run/netns` that survives us, can be found
//! after a crash and is seen by `ip netns`) connected by a user-mode network helper:
//! `slirp4netns` (the default; the `slirp` module: about half a MiB where pasta holds about
//! 29 MiB, quicker to start) or `pasta` (package `passt`). What follows describes pasta;
//! slirp4netns is set up to the same rules (no port forwarding, the host's loopback out of
//! reach unless allowed, for IPv4 and IPv6; DNS through the helper). Either way the helper's
//! pid is in the instance's `pasta.pid`.
//!
//! pasta is started without `--foreground`: it configures the namespace (`--config-net`:
//! address, routes, the tap device `eth0`), then forks into the background and its foreground
//! process exits 0. That exit is the readiness signal; the daemon's pid lands in
//! `pasta.pid` (`-P`) so stop and cleanup can kill it, after checking `/proc/<pid>/cmdline`.
//! pasta also quits by itself once its namespace file is deleted.
//!
//! Port forwarding is off in both directions (`-t none -u none -T none -U none`): pasta's
//! default "auto" would bind every port a function listens on also on the host (clashing
//! between instances), and bind the host's listening ports into the namespace's loopback
//! (taking ports such as 8080 from the function).
//!
//! The host's loopback is out of reach (`--no-map-gw`): pasta would otherwise map connections
//! to the namespace's gateway address to the host's `127.0.0.1`/`::1`, where databases,
//! registries and the faasbox API itself listen without expecting strangers. The driver's
//! `allow_host_loopback` setting keeps that mapping, for development and tests. The outside
//! world (any address that is not the host's loopback) is reachable either way.
//!
//! Ports below 1024 are open to every user of the namespace
//! (`net.ipv4.ip_unprivileged_port_start = 0`, as Docker sets it): the namespace belongs to the
//! host's user namespace, where container root of a user-namespaced instance has no
//! `CAP_NET_BIND_SERVICE`.
//!
//! DNS: queries to [`DNS_ADDRESS`] are forwarded by pasta to the host's resolver
//! (`--dns-forward`), which works whatever the host's resolv.conf names, a loopback resolver
//! such as systemd-resolved's included; the instance's `/etc/resolv.conf` names that address.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Command;

use super::layout::InstanceDir;
use super::slirp;
use faasbox_driver::{DriverError, NetworkHelper};

/// Where `ip netns` keeps its namespace files.
pub(crate) const NETNS_DIR: &str = "/run/netns";

/// The address the instance's resolv.conf points at; pasta answers it with the host resolver.
pub(crate) const DNS_ADDRESS: &str = "169.254.0.53";

/// Bound for the helper's setup.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The tools network setup needs.
#[derive(Debug, Clone)]
pub(crate) struct NetworkTools {
    /// Which helper connects the namespaces.
    pub helper: NetworkHelper,
    pub pasta: PathBuf,
    pub slirp4netns: PathBuf,
    /// Map the gateway address to the host's loopback.
    pub host_loopback: bool,
}

/// Creates the namespace `name`, starts its network helper and writes the instance's
/// resolv.conf.
/// Returns the namespace path. Leaves nothing behind when it fails.
pub(crate) async fn setup(
    tools: &NetworkTools,
    name: &str,
    dir: &InstanceDir,
) -> Result<PathBuf, DriverError> {
    let path = netns_path(name);
    let slirp = tools.helper == NetworkHelper::Slirp4netns;
    // slirp's IPv6 follows the host's, as pasta's does (see the `slirp` module).
    let slirp_ipv6 = slirp && slirp::host_has_ipv6();
    let created = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || create_netns(&path, slirp))
            .await
            .unwrap_or_else(|e| Err(format!("the task failed: {e}")))
    };
    if let Err(e) = created {
        teardown(name, dir).await;
        return Err(DriverError::Network(format!(
            "cannot create network namespace {name}: {e}"
        )));
    }
    let started = match tools.helper {
        NetworkHelper::Pasta => start_pasta(tools, &path, dir).await,
        NetworkHelper::Slirp4netns => {
            slirp::start(
                &tools.slirp4netns,
                tools.host_loopback,
                slirp_ipv6,
                &path,
                dir,
                SETUP_TIMEOUT,
            )
            .await
        }
    };
    if let Err(e) = started {
        teardown(name, dir).await;
        return Err(e);
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let nameservers: &[&str] = match tools.helper {
        NetworkHelper::Pasta => &[DNS_ADDRESS],
        // The IPv6 forwarder second: slirp answers it only where the host has an IPv6
        // resolver, and the IPv4 one answers AAAA queries as well.
        NetworkHelper::Slirp4netns if slirp_ipv6 && slirp::names_ipv6_nameserver(&host_resolv) => {
            &[slirp::DNS_ADDRESS, slirp::DNS_ADDRESS6]
        }
        NetworkHelper::Slirp4netns => &[slirp::DNS_ADDRESS],
    };
    if let Err(e) = write_resolv_conf(&dir.resolv_conf(), &host_resolv, nameservers) {
        teardown(name, dir).await;
        return Err(e);
    }
    Ok(path)
}

/// Creates a network namespace held by the file `path`, as `ip netns add` does (the file is
/// a bind mount of the namespace in `/run/netns`, which is made a shared mount so that the
/// namespace files propagate to other mount namespaces), without running `ip`: from a thread
/// of its own that unshares its network namespace (a thread's network namespace is its own;
/// the thread ends right after). In the new namespace, every user may bind ports below 1024
/// (`net.ipv4.ip_unprivileged_port_start = 0`, as Docker sets it for its containers): the
/// namespace belongs to the host's user namespace, in which container root of a
/// user-namespaced instance has no `CAP_NET_BIND_SERVICE`. For slirp4netns (`static_ipv6`),
/// interfaces made later in it skip duplicate address detection and ignore router
/// advertisements: the driver gives `eth0` its IPv6 address and route itself, usable at once
/// (see the `slirp` module). Blocking. Leaves no file behind when it fails.
fn create_netns(path: &Path, static_ipv6: bool) -> Result<(), String> {
    share_netns_dir()?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let target = path.to_path_buf();
    let made = std::thread::Builder::new()
        .name("netns-create".into())
        .spawn(move || -> Result<(), String> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot create a network namespace: {e}"))?;
            std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
                .map_err(|e| format!("cannot set net.ipv4.ip_unprivileged_port_start: {e}"))?;
            if static_ipv6 {
                for setting in ["accept_dad", "accept_ra"] {
                    let file = format!("/proc/sys/net/ipv6/conf/default/{setting}");
                    // A kernel without IPv6 has no such file, and nothing to configure.
                    if Path::new(&file).exists() {
                        std::fs::write(&file, "0").map_err(|e| {
                            format!("cannot set net.ipv6.conf.default.{setting}: {e}")
                        })?;
                    }
                }
            }
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("cannot bind the namespace to {}: {e}", target.display()))
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("the thread panicked".into()));
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Makes `/run/netns` exist and be a shared mount (a bind mount of itself if it is no mount
/// point yet), as `ip netns add` leaves it. Once per process.
fn share_netns_dir() -> Result<(), String> {
    static SHARED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            use nix::mount::{mount, MsFlags};
            let dir = Path::new(NETNS_DIR);
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {NETNS_DIR}: {e}"))?;
            let share = || {
                mount(
                    None::<&str>,
                    dir,
                    None::<&str>,
                    MsFlags::MS_SHARED | MsFlags::MS_REC,
                    None::<&str>,
                )
            };
            match share() {
                Ok(()) => Ok(()),
                Err(nix::errno::Errno::EINVAL) => {
                    mount(
                        Some(dir),
                        dir,
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None::<&str>,
                    )
                    .map_err(|e| format!("cannot bind-mount {NETNS_DIR} on itself: {e}"))?;
                    share().map_err(|e| format!("cannot make {NETNS_DIR} a shared mount: {e}"))
                }
                Err(e) => Err(format!("cannot make {NETNS_DIR} a shared mount: {e}")),
            }
        })
        .clone()
}

async fn start_pasta(
    tools: &NetworkTools,
    netns: &Path,
    dir: &InstanceDir,
) -> Result<(), DriverError> {
    let log = dir.pasta_log();
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| DriverError::io(format!("cannot open {}", log.display()), e))?;
    let mut command = Command::new(avx2_build(&tools.pasta).unwrap_or_else(|| tools.pasta.clone()));
    // pasta tells its mode from its name; the avx2 build keeps it too.
    command.arg0(&tools.pasta);
    command
        .arg("--config-net")
        .arg("--netns")
        .arg(netns)
        // As root, pasta otherwise drops to `nobody` and then cannot open the namespace.
        .args(["--runas", "0", "--quiet"])
        .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
        .args(["--dns-forward", DNS_ADDRESS]);
    if !tools.host_loopback {
        command.arg("--no-map-gw");
    }
    command
        .arg("--pid")
        .arg(dir.pasta_pid())
        .arg("--log-file")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true);
    // pasta's static buffers (about 27 MiB, the same in every pasta) are offered to the
    // kernel's same-page merging, which shares them between instances where the host runs it
    // (`/sys/kernel/mm/ksm/run`); elsewhere this changes nothing.
    let merge_pages = || {
        super::memory_merge::offer_own_pages();
        Ok(())
    };
    // SAFETY: the closure only makes one system call, which is async-signal-safe.
    unsafe {
        command.pre_exec(merge_pages);
    }
    let status = match tokio::time::timeout(SETUP_TIMEOUT, command.status()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            return Err(DriverError::Network(format!(
                "pasta failed to start ({}): {e}",
                tools.pasta.display()
            )))
        }
        Err(_) => {
            return Err(DriverError::Network(format!(
                "pasta did not configure the network namespace within {}s: {}",
                SETUP_TIMEOUT.as_secs(),
                super::tail_of_file(&log, 5)
            )))
        }
    };
    if !status.success() {
        return Err(DriverError::Network(format!(
            "pasta failed to start ({status}): {}",
            super::tail_of_file(&log, 5)
        )));
    }
    match read_pid(&dir.pasta_pid()) {
        Some(pid) if is_helper_for(pid, netns) => Ok(()),
        _ => Err(DriverError::Network(format!(
            "pasta exited right after configuring the network namespace: {}",
            super::tail_of_file(&log, 5)
        ))),
    }
}

/// passt's build for CPUs with AVX2 (`passt.avx2` next to the binary `pasta` links to), when
/// it exists and this CPU has AVX2. passt's first act is to re-execute itself as that build in
/// this case; starting it directly saves one `execve` and dynamic loading per start.
fn avx2_build(pasta: &Path) -> Option<PathBuf> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return None;
        }
        let binary = std::fs::canonicalize(pasta).ok()?;
        let mut name = binary.file_name()?.to_os_string();
        if name.to_string_lossy().ends_with(".avx2") {
            return None;
        }
        name.push(".avx2");
        let avx2 = binary.with_file_name(name);
        avx2.is_file().then_some(avx2)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = pasta;
        None
    }
}

/// The host's search domains and options (from `host`, the host's resolv.conf), with the
/// helper's DNS forwarders as the nameservers.
fn write_resolv_conf(target: &Path, host: &str, nameservers: &[&str]) -> Result<(), DriverError> {
    let mut text = String::new();
    for nameserver in nameservers {
        text.push_str(&format!("nameserver {nameserver}\n"));
    }
    for line in host.lines() {
        let line = line.trim();
        if line.starts_with("search ")
            || line.starts_with("domain ")
            || line.starts_with("options ")
        {
            text.push_str(line);
            text.push('\n');
        }
    }
    std::fs::write(target, text)
        .map_err(|e| DriverError::io(format!("cannot write {}", target.display()), e))?;
    super::layout::make_container_readable(target)
}

/// Kills the instance's network helper and deletes its namespace. Best effort, never fails.
/// Returns (helper killed, namespace deleted).
pub(crate) async fn teardown(name: &str, dir: &InstanceDir) -> (bool, bool) {
    let path = netns_path(name);
    let killed = match read_pid(&dir.pasta_pid()) {
        Some(pid) => kill_helper(pid, &path),
        // A start cut short may have left a helper without its pid file: find it by its argv.
        // Only then: this reads every process's command line, which made tearing many
        // instances down cost the square of their number.
        None => stray_helpers(name)
            .into_iter()
            .filter(|stray| stray.netns == path)
            .fold(false, |killed, stray| {
                kill_helper(stray.pid, &path) | killed
            }),
    };
    let deleted = delete_netns(name);
    (killed, deleted)
}

/// Deletes the namespace `name` if it exists, as `ip netns delete` does, without running
/// `ip`: detaches the bind mount that holds it (the namespace goes with its last process) and
/// removes the file. Returns whether it existed.
pub(crate) fn delete_netns(name: &str) -> bool {
    let path = netns_path(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return false;
    }
    // Not mounted (a failed creation's file, or a concurrent teardown got there first): the
    // removal below is all there is to do.
    let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
    match std::fs::remove_file(&path) {
        // NotFound: removed meanwhile by a concurrent teardown of the same instance.
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(netns = name, error = %e, "cannot remove the network namespace's file");
        }
    }
    true
}

/// Names in `/run/netns` starting with `prefix`.
pub(crate) fn list_netns(prefix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// A network helper process found by its command line.
pub(crate) struct StrayHelper {
    pub pid: i32,
    /// `pasta` or `slirp4netns`.
    pub program: &'static str,
    /// The namespace file it serves.
    pub netns: PathBuf,
}

/// Network helper processes serving a namespace file whose name starts with `prefix`.
pub(crate) fn stray_helpers(prefix: &str) -> Vec<StrayHelper> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let wanted = netns_path(prefix);
    let wanted = wanted.to_string_lossy();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (program, netns) = helper_netns(pid)?;
            Some(StrayHelper {
                pid,
                program,
                netns,
            })
        })
        .filter(|stray| stray.netns.to_string_lossy().starts_with(wanted.as_ref()))
        .collect()
}

/// SIGKILLs `pid` if it is a network helper for `netns`. Returns whether it was killed.
pub(crate) fn kill_helper(pid: i32, netns: &Path) -> bool {
    if !is_helper_for(pid, netns) {
        return false;
    }
    kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
}

/// True when the network helper of the instance in `dir` (namespace `name`) still runs.
pub(crate) fn helper_alive(dir: &InstanceDir, name: &str) -> bool {
    read_pid(&dir.pasta_pid()).is_some_and(|pid| is_helper_for(pid, &netns_path(name)))
}

fn is_helper_for(pid: i32, netns: &Path) -> bool {
    helper_netns(pid).is_some_and(|(_, p)| p == netns)
}

/// The program (`pasta` or `slirp4netns`) and namespace file of process `pid` if it is a
/// network helper.
fn helper_netns(pid: i32) -> Option<(&'static str, PathBuf)> {
    if pid <= 1 {
        return None;
    }
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.last().is_some_and(String::is_empty) {
        args.pop(); // the NUL that ends the last argument
    }
    let program = Path::new(args.first()?).file_name()?.to_str()?.to_string();
    let args = &args[1..];
    if program.starts_with("slirp4netns") {
        return Some(("slirp4netns", PathBuf::from(slirp::netns_of(args)?)));
    }
    if !(program.starts_with("pasta") || program.starts_with("passt")) {
        return None;
    }
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--netns" {
            return iter.next().map(|p| ("pasta", PathBuf::from(p)));
        }
        if let Some(path) = arg.strip_prefix("--netns=") {
            return Some(("pasta", PathBuf::from(path)));
        }
    }
    None
}

fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}
