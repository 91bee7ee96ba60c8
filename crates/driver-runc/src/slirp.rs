//! slirp4netns as an instance's network helper (`--network-helper slirp4netns`), the
//! alternative to pasta that holds about a tenth of a MiB of its own per instance where pasta
//! holds about 29 MiB.
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

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::layout::InstanceDir;
use faasbox_driver::DriverError;

/// slirp4netns's DNS forwarder (the third address of its default 10.0.2.0/24 network).
pub(crate) const DNS_ADDRESS: &str = "10.0.2.3";

/// The file descriptor slirp4netns writes its readiness to.
const READY_FD: libc::c_int = 3;

/// Starts `binary` (slirp4netns) for the namespace file `netns` and waits, at most `timeout`,
/// until it has configured it. `host_loopback` keeps the gateway mapped to the host's loopback.
pub(crate) async fn start(
    binary: &Path,
    host_loopback: bool,
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
        .arg(format!("--ready-fd={READY_FD}"));
    if !host_loopback {
        command.arg("--disable-host-loopback");
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
    // once it exits (stop kills it by the pid written below).
    drop(child);
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
    let Some(pid) = pid else {
        return failed("slirp4netns exited right after configuring the network".into());
    };
    std::fs::write(dir.pasta_pid(), format!("{pid}\n"))
        .map_err(|e| DriverError::io(format!("cannot write {}", dir.pasta_pid().display()), e))
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
    use super::netns_of;

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
