//! The function's long-running process: spawning it, reading its stdout and stderr as log lines,
//! and noticing when it exits.
//!
//! The process gets the agent's environment unchanged, runs in its working directory as the
//! configured user, and starts with `oom_score_adj` 1000, the most, so the memory cgroup's OOM
//! killer picks a function process before the agent whatever their sizes (the agent keeps its
//! own: -999 where the server may lower it, else the server's). Its stdout and stderr are
//! pipes read by [`crate::pipes`].

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use faasbox_proto::{LogStream, ProcessUser};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Pid, Uid};
use tokio::sync::watch;

use crate::logs::LogHub;
use crate::pipes::Drainer;
use crate::reaper::{Exit, Reaper};

/// The function's `oom_score_adj`: the most there is. The kernel adds `adj / 1000` of the
/// cgroup's limit to a process's size when it picks a victim, so any function process (at least
/// the whole limit) outranks the agent (at most its own size, as long as its score is below
/// 1000), and an out-of-memory kill in the instance's memory cgroup takes the function and
/// leaves the agent to report it. Raising one's own score needs no privilege.
const FUNCTION_OOM_SCORE_ADJ: &[u8] = b"1000";

/// How to start the function process.
#[derive(Debug, Clone, Copy)]
pub struct SpawnSpec<'a> {
    pub command: &'a [String],
    pub workdir: &'a str,
    pub user: Option<&'a ProcessUser>,
}

/// Why the function process is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// `None` when it never started.
    pub exit: Option<Exit>,
    /// For people: "function process exited with status 1", …
    pub description: String,
}

impl ExitInfo {
    fn from_exit(exit: Exit) -> Self {
        Self {
            exit: Some(exit),
            description: describe_exit(exit),
        }
    }

    /// The exit status the agent itself should end with after the function did.
    pub fn agent_exit_code(&self) -> i32 {
        match self.exit {
            Some(Exit::Code(code)) => code,
            Some(Exit::Signal(sig)) => 128 + sig,
            None => 1,
        }
    }
}

/// "function process exited with status N" / "… was killed by signal S (NAME)".
pub fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => format!("function process exited with status {code}"),
        Exit::Signal(sig) => {
            let name = Signal::try_from(sig)
                .map(Signal::as_str)
                .unwrap_or("unknown");
            let mut text = format!("function process was killed by signal {sig} ({name})");
            if sig == Signal::SIGKILL as i32 {
                text.push_str("; it may have run out of memory");
            }
            text
        }
    }
}

/// The running (or finished) function process.
#[derive(Debug)]
pub struct FunctionProcess {
    pid: Option<Pid>,
    exit: watch::Receiver<Option<Arc<ExitInfo>>>,
    drainer: Drainer,
}

impl FunctionProcess {
    /// Starts the process. A process that cannot start is reported as one that exited at once
    /// (the reason is logged and answered to ready and invoke).
    ///
    /// Must be called on the thread that lives as long as the agent (the main thread): the child
    /// asks for `SIGKILL` when its parent *thread* dies, so a function never outlives an agent
    /// that was killed (matters outside a container, e.g. in tests).
    pub fn spawn(spec: SpawnSpec<'_>, reaper: &Reaper, logs: Arc<LogHub>) -> FunctionProcess {
        match start(spec, reaper, &logs) {
            Ok(process) => process,
            Err(err) => {
                let info = ExitInfo {
                    exit: None,
                    description: format!("cannot start the function process: {err}"),
                };
                Self::never_started(info, &logs)
            }
        }
    }

    /// A process that did not start, for `info`'s reason.
    pub fn never_started(info: ExitInfo, logs: &LogHub) -> FunctionProcess {
        logs.agent_line(info.description.clone());
        let (_tx, exit) = watch::channel(Some(Arc::new(info)));
        FunctionProcess {
            pid: None,
            exit,
            drainer: Drainer::default(),
        }
    }

    /// Why it is gone, once it is.
    pub fn exited(&self) -> Option<Arc<ExitInfo>> {
        self.exit.borrow().clone()
    }

    /// Waits until it is gone.
    pub async fn wait_exit(&self) -> Arc<ExitInfo> {
        let mut exit = self.exit.clone();
        let info = match exit.wait_for(Option::is_some).await {
            Ok(info) => info.clone(),
            Err(_) => None,
        };
        info.unwrap_or_else(|| Arc::new(unknown_exit()))
    }

    /// Attributes all output written so far.
    pub async fn drain(&self) {
        self.drainer.drain().await;
    }

    /// Whether the process has died, even if the reaper has not reported it yet (it may be a
    /// zombie still). Peeks without reaping.
    pub fn is_dead_now(&self) -> bool {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        let Some(pid) = self.pid else { return true };
        if self.exited().is_some() {
            return true;
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        // StillAlive: running. Anything else: a zombie, or already reaped (ECHILD).
        !matches!(waitid(Id::Pid(pid), flags), Ok(WaitStatus::StillAlive))
    }

    /// Kills what is left of the function's process group (its helpers and orphans). As PID 1
    /// the kernel does this when the agent exits; outside a container this does.
    pub fn kill_group(&self) {
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
        }
    }

    /// Sends `signal` to the process, if it is still running.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid {
            if self.exited().is_none() {
                let _ = nix::sys::signal::kill(pid, signal);
            }
        }
    }
}

fn unknown_exit() -> ExitInfo {
    ExitInfo {
        exit: None,
        description: "function process ended (its exit status was lost)".into(),
    }
}

fn start(spec: SpawnSpec<'_>, reaper: &Reaper, logs: &Arc<LogHub>) -> io::Result<FunctionProcess> {
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| io::Error::other("no command is configured"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so whatever it leaves behind can be stopped with it.
        .process_group(0);
    prepare_child(&mut command, Path::new(spec.workdir), spec.user)?;

    let (mut child, exited) = reaper
        .spawn(&mut command)
        .map_err(|e| io::Error::new(e.kind(), format!("{:?}: {e}", spec.command)))?;
    let pid = Pid::from_raw(
        i32::try_from(child.id()).map_err(|_| io::Error::other("pid does not fit in pid_t"))?,
    );
    let stdout: OwnedFd = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("stdout pipe missing"))?
        .into();
    let stderr: OwnedFd = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("stderr pipe missing"))?
        .into();
    // `child` is dropped without waiting: the reaper owns the exit status.
    drop(child);

    let drainer = Drainer::start(
        vec![(stdout, LogStream::Stdout), (stderr, LogStream::Stderr)],
        logs,
    )?;

    let (exit_tx, exit_rx) = watch::channel(None);
    let exit_logs = Arc::clone(logs);
    let exit_drainer = drainer.clone();
    tokio::spawn(async move {
        let info = match exited.await {
            Ok(exit) => ExitInfo::from_exit(exit),
            Err(_) => unknown_exit(),
        };
        // Its last words belong to the calls that were in flight when it died.
        exit_drainer.drain().await;
        exit_logs.agent_line(info.description.clone());
        let _ = exit_tx.send(Some(Arc::new(info)));
    });

    Ok(FunctionProcess {
        pid: Some(pid),
        exit: exit_rx,
        drainer,
    })
}

/// Sets up what happens in the child between fork and exec: it gives up the agent's OOM
/// protection, becomes `user` (when given), asks for `SIGKILL` when the spawning thread dies, and
/// changes to `workdir`. Used for the long-running function process and for the per-call
/// processes of the cmd, file and openwhisk contracts.
pub fn prepare_child(
    command: &mut Command,
    workdir: &Path,
    user: Option<&ProcessUser>,
) -> io::Result<()> {
    // Everything the child needs is prepared here: after fork it must not allocate.
    let workdir = CString::new(workdir.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("the working directory contains a NUL byte"))?;
    let user = user.map(|user| {
        let groups: Vec<Gid> = std::iter::once(user.gid)
            .chain(user.additional_gids.iter().copied())
            .map(Gid::from_raw)
            .collect();
        (Uid::from_raw(user.uid), Gid::from_raw(user.gid), groups)
    });
    let child_setup = move || -> io::Result<()> {
        // Make the function the OOM killer's choice over the agent (raising one's own score
        // needs no privilege; best effort: fails only without /proc).
        if let Ok(fd) = nix::fcntl::open(
            "/proc/self/oom_score_adj",
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            let _ = nix::unistd::write(&fd, FUNCTION_OOM_SCORE_ADJ);
        }
        if let Some((uid, gid, groups)) = &user {
            nix::unistd::setgroups(groups)?;
            nix::unistd::setgid(*gid)?;
            nix::unistd::setuid(*uid)?;
        }
        // After the uid change, which clears it.
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        // After the uid change, so the directory must be reachable by the function's user.
        nix::unistd::chdir(workdir.as_c_str())?;
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec. It only makes async-signal-safe
    // system calls (open, write, close, setgroups, setgid, setuid, prctl, chdir) on data
    // prepared before the fork, takes no locks and does not allocate (nix converts the short
    // literal path on the stack; its errors are plain errno values).
    unsafe {
        command.pre_exec(child_setup);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_descriptions() {
        assert_eq!(
            describe_exit(Exit::Code(3)),
            "function process exited with status 3"
        );
        assert_eq!(
            describe_exit(Exit::Signal(15)),
            "function process was killed by signal 15 (SIGTERM)"
        );
        assert_eq!(
            describe_exit(Exit::Signal(9)),
            "function process was killed by signal 9 (SIGKILL); it may have run out of memory"
        );
        let info = ExitInfo::from_exit(Exit::Signal(15));
        assert_eq!(info.agent_exit_code(), 143);
    }
}
