//! slirp4netns as an instance's network helper (`--network-helper slirp4netns`, the default):
//! it holds about half a MiB per instance where pasta holds about 29 MiB, and starts in a few
//! milliseconds.
//!
//! slirp4netns stays in the foreground: it is started as a child of the server in a session of
//! its own (a Ctrl-C at the server's terminal does not reach it), and announces that the
//! namespace is configured by writing to `--ready-fd`; its pid is written to the instance's
//! helper pid file by us. It runs sandboxed (`--enable-sandbox`: its own mount namespace,
//! capabilities dropped; `--enable-seccomp`), since it parses every packet a function sends.
//! Its sandbox changes mount propagation, and `/run/netns` is a shared mount (see
//! `network::create_netns`): without a private mount namespace of its own, started here, the
//! sandbox's changes would reach the host's view of the namespace files and make them unusable.
//!
//! Addresses are slirp's fixed ones: the instance is 10.0.2.100 on `eth0`, the gateway
//! 10.0.2.2 (the host's loopback unless `--disable-host-loopback`, which is on unless the
//! driver allows host loopback), the DNS forwarder [`DNS_ADDRESS`].
//!
//! IPv6 (`--enable-ipv6`) is on where the host has an IPv6 default route ([`host_has_ipv6`]),
//! as pasta carries IPv6 only then: slirp's network is `fd00::/64` (slirp4netns 1.2 has no
//! option to change it), its gateway `fd00::2` (the host's `::1` when host loopback is
//! allowed; refused otherwise, by the same `--disable-host-loopback`), its DNS forwarder
//! [`DNS_ADDRESS6`] (answered only where the host's resolv.conf names an IPv6 nameserver).
//! slirp announces the prefix by router advertisements, which arrive after a duplicate
//! address check of a second or more; the instance would start without IPv6 and get it
//! later. So the driver configures it itself once slirp is ready ([`configure_ipv6`]): the
//! address [`GUEST_ADDRESS6`] and a default route through [`GATEWAY6`], with duplicate
//! address detection and router advertisements off in the namespace (see
//! `network::create_netns`), so that IPv6 works from the function's first instruction.

use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::layout::InstanceDir;
use faasbox_driver::DriverError;

/// slirp4netns's DNS forwarder (the third address of its default 10.0.2.0/24 network).
pub(crate) const DNS_ADDRESS: &str = "10.0.2.3";

/// slirp4netns's IPv6 DNS forwarder (the third address of its fd00::/64 network).
pub(crate) const DNS_ADDRESS6: &str = "fd00::3";

/// The instance's IPv6 address in slirp's network (the counterpart of 10.0.2.100).
pub(crate) const GUEST_ADDRESS6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);

/// slirp's own IPv6 address, the instance's IPv6 gateway.
pub(crate) const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// The length of slirp's IPv6 prefix.
const PREFIX_LEN6: u32 = 64;

/// The file descriptor slirp4netns writes its readiness to.
const READY_FD: libc::c_int = 3;

/// Starts `binary` (slirp4netns) for the namespace file `netns` and waits, at most `timeout`,
/// until it has configured it. `host_loopback` keeps the gateway mapped to the host's loopback;
/// `ipv6` turns slirp's IPv6 on and configures the instance's IPv6 address and route.
pub(crate) async fn start(
    binary: &Path,
    host_loopback: bool,
    ipv6: bool,
    netns: &Path,
    dir: &InstanceDir,
    timeout: Duration,
) -> Result<(), DriverError> {
    let log = dir.pasta_log();
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| DriverError::io(format!("cannot open {}", log.display()), e))
    };
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| DriverError::Network(format!("cannot make a pipe for slirp4netns: {e}")))?;
    let mut command = Command::new(binary);
    command
        .args([
            "--configure",
            "--mtu=65520",
            "--enable-sandbox",
            "--enable-seccomp",
        ])
        .arg(format!("--ready-fd={READY_FD}"))
        // glib's slice allocator keeps magazines of its own next to malloc's free memory
        // (about 20 KiB of an idle slirp4netns's heap); plain malloc instead.
        .env("G_SLICE", "always-malloc");
    if !host_loopback {
        // Both families: 10.0.2.2 and fd00::2 (and the DNS addresses when the host has no
        // resolver of that family) would otherwise reach the host's 127.0.0.1 and ::1.
        command.arg("--disable-host-loopback");
    }
    if ipv6 {
        command.arg("--enable-ipv6");
    }
    command
        .arg("--netns-type=path")
        .arg(netns)
        .arg("eth0")
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?);
    let write_fd = ready_write.as_raw_fd();
    let prepare = move || prepare_child(write_fd);
    // SAFETY: `prepare_child` makes only raw system calls (setsid, unshare, mount, dup2,
    // fcntl, prctl) with constant arguments, the pipe's descriptor or a static C string:
    // async-signal-safe, no allocation, no locks, no access to the parent's state.
    unsafe {
        command.pre_exec(prepare);
    }
    let child = command.spawn().map_err(|e| {
        DriverError::Network(format!(
            "slirp4netns failed to start ({}): {e}",
            binary.display()
        ))
    })?;
    // Our copy of the write end goes, so that the pipe ends (EOF) when slirp4netns does.
    drop(ready_write);
    let pid = child.id();
    // The child is not waited for here: it runs as long as the instance, and tokio reaps it
    // once it exits (stop kills it by the pid written here).
    drop(child);
    // Written before anything is awaited, so that a teardown of a start cut short finds the
    // helper by its pid file rather than by searching every process.
    if let Some(pid) = pid {
        if let Err(e) = std::fs::write(dir.pasta_pid(), format!("{pid}\n")) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(DriverError::io(
                format!("cannot write {}", dir.pasta_pid().display()),
                e,
            ));
        }
    }
    let ready = tokio::time::timeout(timeout, read_ready(ready_read)).await;
    let failed = |what: String| {
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        Err(DriverError::Network(format!(
            "{what}: {}",
            super::tail_of_file(&log, 5)
        )))
    };
    match ready {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return failed("slirp4netns exited before configuring the network".into()),
        Ok(Err(e)) => return failed(format!("cannot read slirp4netns's readiness: {e}")),
        Err(_) => {
            return failed(format!(
                "slirp4netns did not configure the network namespace within {}s",
                timeout.as_secs()
            ))
        }
    }
    if pid.is_none() {
        return failed("slirp4netns exited right after configuring the network".into());
    }
    if ipv6 {
        let configured = {
            let netns = netns.to_path_buf();
            tokio::task::spawn_blocking(move || configure_ipv6(&netns))
                .await
                .unwrap_or_else(|e| Err(format!("the task failed: {e}")))
        };
        if let Err(e) = configured {
            return failed(format!(
                "cannot configure IPv6 in the network namespace: {e}"
            ));
        }
    }
    Ok(())
}

/// True when the host has an IPv6 default route (a usable one: not the kernel's `unreachable`
/// route on `lo`), read from `/proc/net/ipv6_route`. slirp's IPv6 is turned on only then, as
/// pasta configures IPv6 only then: without it, a function would get an IPv6 route that leads
/// nowhere and try IPv6 addresses first.
pub(crate) fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/ipv6_route")
        .map(|table| has_ipv6_default_route(&table))
        .unwrap_or(false)
}

/// Whether the kernel's IPv6 routing table `table` (the text of `/proc/net/ipv6_route`) holds
/// a default route that is not a reject route.
fn has_ipv6_default_route(table: &str) -> bool {
    /// `RTF_REJECT`: the route refuses what is sent through it.
    const REJECT: u32 = 0x0200;
    table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [destination, length, .., flags, device] = fields.as_slice() else {
            return false;
        };
        fields.len() == 10
            && destination.bytes().all(|b| b == b'0')
            && *length == "00"
            && *device != "lo"
            && u32::from_str_radix(flags, 16).is_ok_and(|f| f & REJECT == 0)
    })
}

/// Whether the host's resolv.conf text `resolv` names an IPv6 nameserver: slirp answers DNS on
/// [`DNS_ADDRESS6`] only then (it forwards to the host's first IPv6 nameserver).
pub(crate) fn names_ipv6_nameserver(resolv: &str) -> bool {
    resolv.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some("nameserver")
            && words.next().is_some_and(|address| {
                let address = address.split('%').next().unwrap_or(address);
                address.parse::<Ipv6Addr>().is_ok()
            })
    })
}

/// The kernel's `struct in6_rtmsg` (`linux/ipv6_route.h`), the argument of `SIOCADDRT` on an
/// IPv6 socket (the `libc` crate's has private fields).
#[repr(C)]
struct RouteRequest6 {
    destination: libc::in6_addr,
    source: libc::in6_addr,
    gateway: libc::in6_addr,
    kind: u32,
    destination_len: u16,
    source_len: u16,
    metric: u32,
    info: libc::c_ulong,
    flags: u32,
    interface: libc::c_int,
}

/// Gives `eth0` in the namespace file `netns` the address [`GUEST_ADDRESS6`]/64 and a default
/// route through [`GATEWAY6`], from a thread of its own that enters the namespace (a thread's
/// network namespace is its own; the thread ends right after). Two ioctls, no `ip` process.
/// The address is usable at once: the namespace was made without duplicate address detection.
/// Blocking.
fn configure_ipv6(netns: &Path) -> Result<(), String> {
    let namespace =
        std::fs::File::open(netns).map_err(|e| format!("cannot open {}: {e}", netns.display()))?;
    std::thread::Builder::new()
        .name("netns-ipv6".into())
        .spawn(move || -> Result<(), String> {
            nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot enter the network namespace: {e}"))?;
            // SAFETY: socket with constant arguments; the descriptor it returns is owned below.
            let raw =
                unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            if raw < 0 {
                return Err(format!(
                    "cannot open an IPv6 socket: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: `raw` is a descriptor just opened here and owned by nothing else.
            let socket = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: a static C string; the call only reads it.
            let index = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
            if index == 0 {
                return Err(format!(
                    "no interface eth0: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let index = libc::c_int::try_from(index)
                .map_err(|_| format!("interface index {index} out of range"))?;
            let address = libc::in6_ifreq {
                ifr6_addr: libc::in6_addr {
                    s6_addr: GUEST_ADDRESS6.octets(),
                },
                ifr6_prefixlen: PREFIX_LEN6,
                ifr6_ifindex: index,
            };
            // SAFETY: SIOCSIFADDR on an IPv6 socket reads one `struct in6_ifreq`, which
            // `address` is (libc's definition) and outlives the call.
            let added = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFADDR, &address) };
            if added < 0 {
                return Err(format!(
                    "cannot add {GUEST_ADDRESS6}/{PREFIX_LEN6}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let unspecified = libc::in6_addr { s6_addr: [0; 16] };
            let route = RouteRequest6 {
                destination: unspecified,
                source: unspecified,
                gateway: libc::in6_addr {
                    s6_addr: GATEWAY6.octets(),
                },
                kind: u32::from(libc::RTN_UNICAST),
                destination_len: 0,
                source_len: 0,
                // 0: the kernel's default metric for routes added by hand (1024).
                metric: 0,
                info: 0,
                flags: u32::from(libc::RTF_UP | libc::RTF_GATEWAY),
                interface: index,
            };
            // SAFETY: SIOCADDRT on an IPv6 socket reads one `struct in6_rtmsg`, which
            // `RouteRequest6` mirrors field for field (repr(C)); it outlives the call.
            let routed = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCADDRT, &route) };
            if routed < 0 {
                return Err(format!(
                    "cannot add the default route through {GATEWAY6}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(())
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("the thread panicked".into()))
}

/// True once slirp4netns wrote its readiness byte; false when the pipe ended without it.
async fn read_ready(fd: OwnedFd) -> std::io::Result<bool> {
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
    let mut byte = [0u8; 1];
    Ok(pipe.read(&mut byte).await? == 1 && byte[0] == b'1')
}

/// In the child between fork and exec: its own session (no terminal signals from the
/// server's terminal), a private mount namespace (see the module's doc), the readiness pipe
/// as [`READY_FD`], and its pages offered to same-page merging (as pasta's are).
fn prepare_child(write_fd: libc::c_int) -> std::io::Result<()> {
    let check = |result: libc::c_int| {
        if result < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: setsid takes no arguments and only changes this (child) process.
    check(unsafe { libc::setsid() })?;
    // SAFETY: unshare with a constant flag; affects only this (child) process.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
    // SAFETY: mount with null pointers where no source, type or data is wanted and a static
    // C string as target; it changes only the propagation in the private namespace made above.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    if write_fd == READY_FD {
        // dup2 onto itself would keep close-on-exec set.
        // SAFETY: fcntl on a descriptor this process holds (the pipe's write end).
        check(unsafe { libc::fcntl(READY_FD, libc::F_SETFD, 0) })?;
    } else {
        // SAFETY: dup2 of a descriptor this process holds onto a fixed number.
        check(unsafe { libc::dup2(write_fd, READY_FD) })?;
    }
    super::memory_merge::offer_own_pages();
    Ok(())
}

/// The namespace path of a slirp4netns command line (`… --netns-type=path PATH TAP`).
pub(crate) fn netns_of(args: &[String]) -> Option<&str> {
    if !args.iter().any(|a| a == "--netns-type=path") {
        return None;
    }
    let path = args.len().checked_sub(2).and_then(|i| args.get(i))?;
    path.starts_with('/').then_some(path.as_str())
}

#[cfg(test)]
mod tests {
    use super::{has_ipv6_default_route, names_ipv6_nameserver, netns_of};

    #[test]
    fn ipv6_is_on_with_a_usable_default_route_only() {
        let zeros = "00000000000000000000000000000000";
        let via_eth0 = format!(
            "{zeros} 00 {zeros} 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n"
        );
        let unreachable =
            format!("{zeros} 00 {zeros} 00 {zeros} ffffffff 00000001 00000000 00200200       lo\n");
        let link_local = format!(
            "fe800000000000000000000000000000 40 {zeros} 00 {zeros} 00000100 00000001 00000000 00000001     eth0\n"
        );
        assert!(has_ipv6_default_route(&format!(
            "{link_local}{via_eth0}{unreachable}"
        )));
        assert!(!has_ipv6_default_route(&format!(
            "{link_local}{unreachable}"
        )));
        assert!(!has_ipv6_default_route(""));
        assert!(!has_ipv6_default_route("garbage\n"));
    }

    #[test]
    fn an_ipv6_nameserver_is_recognised() {
        assert!(names_ipv6_nameserver(
            "search x\nnameserver 10.0.0.1\nnameserver 2001:db8::53\n"
        ));
        assert!(names_ipv6_nameserver("nameserver fe80::1%eth0\n"));
        assert!(!names_ipv6_nameserver(
            "nameserver 127.0.0.53\noptions edns0\n"
        ));
        assert!(!names_ipv6_nameserver("# nameserver ::1\n"));
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_namespace_is_read_from_a_path_typed_command_line_only() {
        let ours = args(&[
            "--configure",
            "--ready-fd=3",
            "--netns-type=path",
            "/run/netns/fbx-1",
            "eth0",
        ]);
        assert_eq!(netns_of(&ours), Some("/run/netns/fbx-1"));
        assert_eq!(netns_of(&args(&["--configure", "1234", "tap0"])), None);
        assert_eq!(netns_of(&args(&["--netns-type=path"])), None);
        assert_eq!(netns_of(&args(&["--netns-type=path", "x", "tap0"])), None);
    }
}
