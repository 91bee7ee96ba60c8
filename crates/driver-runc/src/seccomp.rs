//! The seccomp filter of runc instances: an allowlist equivalent to the default profile of
//! Docker and containerd, written for the capability set this driver keeps.
//!
//! Every system call not named here fails with `EPERM` (`defaultErrnoRet` 1). What that denies,
//! as the runtime default does, and why:
//!
//! - namespaces and mounts: `unshare`, `setns`, `clone`/`clone3` with namespace flags, `mount`,
//!   `umount2`, `pivot_root`, the new mount API (`fsopen`, `fsmount`, `fsconfig`, `fspick`,
//!   `open_tree`, `move_mount`, `mount_setattr`) — a user namespace created inside would
//!   give back the capabilities the container dropped, and these are the kernel's largest
//!   attack surface for container escapes;
//! - the kernel keyring (`add_key`, `keyctl`, `request_key`): not namespaced;
//! - kernel modules, kexec, reboot, swap, accounting, quotas, the clock (`settimeofday`,
//!   `clock_settime`), `syslog`, `iopl`/`ioperm`, `vhangup`, `sethostname`: all need a
//!   capability the container does not have;
//! - `bpf`, `perf_event_open`, `userfaultfd`, `io_uring_*`, `open_by_handle_at`, `kcmp`,
//!   `pidfd_getfd`, `process_madvise`, NUMA policy (`mbind`, `set_mempolicy`…), `lookup_dcookie`,
//!   obsolete calls (`uselib`, `ustat`, `sysfs`, `_sysctl`, `vm86`, `nfsservctl`);
//! - `socket` for `AF_VSOCK` (40), which would reach the host of a virtual machine.
//!
//! Conditional entries: `clone` is allowed only without namespace flags, `personality` only
//! with the values programs use ([`PERSONALITIES`]), and `clone3` answers `ENOSYS`, so the C library
//! falls back to `clone`, whose flags the filter can see (`clone3` passes them in memory).
//! `chroot` is allowed because the container keeps `CAP_SYS_CHROOT`; `ptrace` and
//! `process_vm_*` as in the runtime default (the kernel's own checks apply).
//!
//! runc ignores names its libseccomp does not know (or that the native architecture lacks:
//! the 32-bit names are for 32-bit hosts), and answers `ENOSYS` (not `EPERM`) for system
//! calls newer than every call in the filter, so a C library falls back to an older call
//! instead of failing. Only the native ABI is admitted ([`architectures`]).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// `EPERM`: what a denied call returns.
const EPERM: u32 = 1;
/// `ENOSYS`: what `clone3` returns.
const ENOSYS: u32 = 38;
/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET`: none of these may be set in `clone`'s flags.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// `AF_VSOCK`.
const AF_VSOCK: u64 = 40;
/// `personality` values allowed: `PER_LINUX` (0), `PER_LINUX32` (0x8), `UNAME26` (0x20000),
/// `PER_LINUX32 | UNAME26`, and `0xffffffff`, which only asks for the current one.
const PERSONALITIES: [u64; 5] = [0x0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Allowed whatever their arguments.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "chroot",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_llseek",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Allowed on x86 (64- and 32-bit) only.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const ALLOWED_ARCH: &[&str] = &["arch_prctl", "modify_ldt"];
/// Allowed on ARM (64- and 32-bit) only.
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const ALLOWED_ARCH: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "sync_file_range2",
];
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm"
)))]
const ALLOWED_ARCH: &[&str] = &[];

/// The architectures the filter covers: the native one only. A 32-bit program (i386, x32,
/// arm32) is stopped at its first system call. The runtime default admits those ABIs too; they
/// are left out because the kernel's compat paths are a classic attack surface, and because
/// runc builds the filter at every container start: each architecture costs about 5 ms of CPU
/// there (measured on the CI machine; a start is about 25 ms of runc CPU without a filter).
fn architectures() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64],
        "aarch64" => vec![Arch::ScmpArchAarch64],
        _ => vec![Arch::ScmpArchNative],
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| name.to_string()).collect()
}

fn rule(
    names: Vec<String>,
    action: LinuxSeccompAction,
    args: Vec<oci_spec::runtime::LinuxSeccompArg>,
) -> Result<LinuxSyscall, oci_spec::OciSpecError> {
    let mut builder = LinuxSyscallBuilder::default().names(names).action(action);
    if !args.is_empty() {
        builder = builder.args(args);
    }
    builder.build()
}

fn arg0(
    op: LinuxSeccompOperator,
    value: u64,
) -> Result<oci_spec::runtime::LinuxSeccompArg, oci_spec::OciSpecError> {
    LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(value)
        .op(op)
        .build()
}

/// The filter.
pub(crate) fn profile() -> Result<LinuxSeccomp, oci_spec::OciSpecError> {
    use LinuxSeccompAction::{ScmpActAllow as Allow, ScmpActErrno as Errno};
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpMaskedEq, ScmpCmpNe};

    let mut syscalls = vec![rule(names(ALLOWED), Allow, Vec::new())?];
    if !ALLOWED_ARCH.is_empty() {
        syscalls.push(rule(names(ALLOWED_ARCH), Allow, Vec::new())?);
    }
    // clone(flags, …) without namespace flags: `flags & CLONE_NAMESPACE_FLAGS == 0`.
    let clone_flags = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(CLONE_NAMESPACE_FLAGS)
        .value_two(0u64)
        .op(ScmpCmpMaskedEq)
        .build()?;
    syscalls.push(rule(names(&["clone"]), Allow, vec![clone_flags])?);
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(names(&["clone3"]))
            .action(Errno)
            .errno_ret(ENOSYS)
            .build()?,
    );
    syscalls.push(rule(
        names(&["socket"]),
        Allow,
        vec![arg0(ScmpCmpNe, AF_VSOCK)?],
    )?);
    for persona in PERSONALITIES {
        syscalls.push(rule(
            names(&["personality"]),
            Allow,
            vec![arg0(ScmpCmpEq, persona)?],
        )?);
    }
    LinuxSeccompBuilder::default()
        .default_action(Errno)
        .default_errno_ret(EPERM)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denies_what_the_runtime_default_denies() {
        let profile = profile().unwrap();
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        let allowed: Vec<&str> = ALLOWED.iter().chain(ALLOWED_ARCH).copied().collect();
        for denied in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "io_uring_setup",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "reboot",
            "swapon",
            "settimeofday",
            "clock_settime",
            "syslog",
            "open_by_handle_at",
            "fsopen",
            "open_tree",
            "move_mount",
            "mount_setattr",
            "iopl",
            "ioperm",
            "acct",
            "quotactl",
            "sethostname",
            "vhangup",
            "lookup_dcookie",
            "kcmp",
            "pidfd_getfd",
            "mbind",
            "set_mempolicy",
        ] {
            assert!(!allowed.contains(&denied), "{denied} must not be allowed");
        }
        let syscalls = json["syscalls"].as_array().unwrap();
        let clone = syscalls
            .iter()
            .find(|s| s["names"] == serde_json::json!(["clone"]))
            .unwrap();
        assert_eq!(clone["args"][0]["value"], CLONE_NAMESPACE_FLAGS);
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        let clone3 = syscalls
            .iter()
            .find(|s| s["names"] == serde_json::json!(["clone3"]))
            .unwrap();
        assert_eq!(clone3["errnoRet"], ENOSYS);
        assert_eq!(
            syscalls
                .iter()
                .filter(|s| s["names"] == serde_json::json!(["personality"]))
                .count(),
            PERSONALITIES.len()
        );
        // No name twice (a duplicate would be a sign of a list gone wrong).
        let mut sorted = allowed.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), allowed.len());
    }
}
