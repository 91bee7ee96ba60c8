//! What running under gVisor's `runsc` needs beyond the shared OCI command line.
//!
//! - **Host Unix socket**: the agent creates `agent.sock` inside the sandbox, in the
//!   bind-mounted control directory. `--host-uds=all` (passed by the command module) makes
//!   that a real socket on the host that the platform connects to (`create` would suffice for
//!   that, but then stat and chmod of the socket fail with EPERM inside the sandbox).
//! - **Network**: `--network=sandbox` runs gVisor's own network stack on the interfaces of
//!   the container's network namespace (here: the tap device pasta or slirp4netns configured).
//!   Before it does, runsc refuses to run in the host's root network namespace, and releases before 2023 detect
//!   that by the mere existence of `/proc/sys/net/core/rmem_default` — which kernels since
//!   about 6.x show in every network namespace, so those runsc versions refuse every
//!   namespace. We always hand runsc a namespace of our own, so the guard is moot: the runsc
//!   process is started in a private mount namespace where `/proc/sys/net` is an empty tmpfs,
//!   which makes the check pass on old and new releases alike.
//! - **Cgroups** work in v1 and hybrid hierarchies as they do with runc. Note that the pids
//!   limit applies to the sandbox's host threads (the sentry and gofer), hence
//!   [`PIDS_ALLOWANCE`].

use tokio::process::Command;

/// Host threads of the gVisor sentry and gofer counted on top of the function's pids limit.
pub(crate) const PIDS_ALLOWANCE: i64 = 128;

/// Makes `command` (a `runsc run`) start in a private mount namespace with `/proc/sys/net`
/// covered by an empty tmpfs. See the module documentation for why.
pub(crate) fn hide_root_netns_marker(command: &mut Command) {
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // operations are allowed; `cover_proc_sys_net` makes three raw system calls with pointers
    // to static C strings: no allocation, no locks, no access to the parent's state.
    unsafe {
        command.pre_exec(cover_proc_sys_net);
    }
}

/// In a `runsc run` child before exec: a private mount namespace, mounts that do not propagate
/// back to the host, and an empty read-only tmpfs over `/proc/sys/net`.
fn cover_proc_sys_net() -> std::io::Result<()> {
    super::mount_namespace::enter_slave()?;
    // SAFETY: static NUL-terminated strings and a null data pointer.
    let covered = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c"/proc/sys/net".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if covered != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
