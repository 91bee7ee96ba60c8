//! Reaping child processes, as PID 1 must.
//!
//! On every `SIGCHLD` the reaper collects all exited children with `waitpid(-1, WNOHANG)` and
//! hands each exit to the waiter registered for that pid; orphans nobody waits for are just
//! reaped. Children are spawned through [`Reaper::spawn`], which holds the waiter lock across the
//! fork so a child cannot be reaped before its waiter exists (the reaper takes the same lock
//! before calling `waitpid`). That also keeps the reaper away from the child `std` itself waits
//! for when `exec` fails. Nothing else in the agent may call `waitpid`, which is why
//! `tokio::process` is not used.
//!
//! When the agent is not PID 1 (tests, or a runtime with its own init), it makes itself a child
//! subreaper so orphans of the function are still reparented to it.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::libc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

/// Collects exited children and notifies their waiters.
#[derive(Debug, Default)]
pub struct Reaper {
    waiters: Mutex<HashMap<i32, oneshot::Sender<Exit>>>,
}

impl Reaper {
    /// Installs the `SIGCHLD` handler and starts reaping. Must run inside the Tokio runtime.
    pub fn start() -> io::Result<Arc<Reaper>> {
        if std::process::id() != 1 {
            nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
        }
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Arc::new(Reaper::default());
        let task_reaper = Arc::clone(&reaper);
        tokio::spawn(async move {
            loop {
                // Also reaps whatever exited before the handler was installed.
                task_reaper.reap();
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(reaper)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, oneshot::Sender<Exit>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns `command` and registers a waiter for it before it can be reaped.
    pub fn spawn(&self, command: &mut Command) -> io::Result<(Child, oneshot::Receiver<Exit>)> {
        let mut waiters = self.lock();
        let child = command.spawn()?;
        let (tx, rx) = oneshot::channel();
        let pid = i32::try_from(child.id())
            .map_err(|_| io::Error::other("child pid does not fit in pid_t"))?;
        waiters.insert(pid, tx);
        Ok((child, rx))
    }

    /// Reaps every child that has exited, without blocking.
    fn reap(&self) {
        let mut waiters = self.lock();
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid only writes the status to the valid, exclusively borrowed local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid == 0 {
                break; // children exist, none has exited
            }
            if pid < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => break,
                    _ => {
                        eprintln!("faasbox-agent: waitpid failed: {err}");
                        break;
                    }
                }
            }
            let exit = if libc::WIFEXITED(status) {
                Exit::Code(libc::WEXITSTATUS(status))
            } else if libc::WIFSIGNALED(status) {
                Exit::Signal(libc::WTERMSIG(status))
            } else {
                continue; // stopped or continued: not reported without WUNTRACED/WCONTINUED
            };
            if let Some(waiter) = waiters.remove(&pid) {
                let _ = waiter.send(exit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaps_registered_children_and_orphans() {
        crate::test_support::with_reaper(|reaper| async move { reaps(&reaper).await });
    }

    async fn reaps(reaper: &Reaper) {
        let (_child, rx) = reaper
            .spawn(Command::new("/bin/busybox").args(["sh", "-c", "exit 7"]))
            .unwrap();
        assert_eq!(rx.await.unwrap(), Exit::Code(7));
        let (_child, rx) = reaper
            .spawn(Command::new("/bin/busybox").args(["sh", "-c", "kill -9 $$"]))
            .unwrap();
        assert_eq!(rx.await.unwrap(), Exit::Signal(9));
        // A failed exec is reported by spawn, and std's own wait is not disturbed.
        let err = reaper
            .spawn(&mut Command::new("/nonexistent/program"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
