//! Offering a helper process's memory to the kernel's same-page merging (KSM): the network
//! helpers' buffers are the same in every instance, and where the host runs KSM
//! (`/sys/kernel/mm/ksm/run`) identical pages are shared between them; elsewhere this changes
//! nothing.

/// `prctl` option (Linux 6.4) that opts a process's memory into same-page merging; kept
/// across `exec`.
const PR_SET_MEMORY_MERGE: libc::c_int = 67;

/// Opts the calling process into same-page merging. Meant for a child between fork and exec:
/// one raw system call, async-signal-safe; a kernel without the option refuses it, which is
/// ignored.
pub(crate) fn offer_own_pages() {
    // SAFETY: prctl with integer arguments; no memory is passed.
    unsafe {
        libc::prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
    }
}
