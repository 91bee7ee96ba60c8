//! Entering a mount namespace of one's own in a child process before it executes a runtime
//! (crun's `create` on hybrid hosts, `runsc run`), so that what the child mounts stays there.

/// In a child before exec: a mount namespace of its own whose mounts do not propagate back to
/// the host (the host's still reach it). Async-signal-safe: two raw system calls with static
/// strings, no allocation.
pub(crate) fn enter_slave() -> std::io::Result<()> {
    // SAFETY: unshare takes a flag and no pointers.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: static NUL-terminated strings or null, which mount(2) accepts for the file
    // system type and data of a propagation change.
    let slave = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        )
    };
    if slave != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
