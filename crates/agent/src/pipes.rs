//! Reading the function process's stdout and stderr pipes as log lines.
//!
//! One task per pipe waits for it to become readable, reads until it would block, splits lines
//! and attributes them through the [`LogHub`]. [`Drainer::drain`] asks those tasks to read
//! everything currently in the pipes *now*, so output written before some event (the function's
//! HTTP answer) is attributed before the agent reacts to it.
//!
//! The reads are plain `read(2)` calls on the non-blocking descriptor. Tokio's own `try_read`
//! would not do: it answers `WouldBlock` without reading while the reactor has not yet seen the
//! pipe's readiness event, which is exactly the moment a drain happens.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use faasbox_proto::LogStream;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};

use crate::lines::LineSplitter;
use crate::logs::LogHub;

/// Asks the pipe readers to attribute everything written so far.
#[derive(Debug, Clone, Default)]
pub struct Drainer {
    readers: Vec<mpsc::Sender<oneshot::Sender<()>>>,
}

impl Drainer {
    /// Starts a reader for each pipe.
    pub fn start(pipes: Vec<(OwnedFd, LogStream)>, logs: &Arc<LogHub>) -> io::Result<Drainer> {
        let readers = pipes
            .into_iter()
            .map(|(fd, stream)| spawn_reader(fd, stream, Arc::clone(logs)))
            .collect::<io::Result<_>>()?;
        Ok(Drainer { readers })
    }

    /// Returns once every reader has read its pipe until it would block (or is gone).
    pub async fn drain(&self) {
        let mut acks = Vec::with_capacity(self.readers.len());
        for reader in &self.readers {
            let (tx, rx) = oneshot::channel();
            if reader.send(tx).await.is_ok() {
                acks.push((reader, rx));
            }
        }
        for (reader, ack) in acks {
            // A reader that ends (at the pipe's end) closes its channel. A request sent just
            // as it ended may stay in the channel, never answered nor dropped (the senders
            // keep the channel alive), so the channel's closing ends the wait too.
            tokio::select! {
                _ = ack => {}
                () = reader.closed() => {}
            }
        }
    }
}

/// How much of a pipe one read takes. Small on purpose: the buffer lives as long as the
/// function, in every idle instance; reads loop until the pipe is empty, and lines longer
/// than a chunk are joined by the splitter.
const READ_CHUNK: usize = 8 * 1024;

/// Reads one pipe until its end, attributing lines; answers drain requests in between.
fn spawn_reader(
    fd: OwnedFd,
    stream: LogStream,
    logs: Arc<LogHub>,
) -> io::Result<mpsc::Sender<oneshot::Sender<()>>> {
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // SAFETY: an `OwnedFd` is an open descriptor that stays open, and keeps returning the same
    // number, until the `AsyncFd` that owns it is dropped.
    let pipe = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
    let (tx, mut requests) = mpsc::channel::<oneshot::Sender<()>>(64);
    tokio::spawn(async move {
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut requests_open = true;
        loop {
            tokio::select! {
                biased;
                request = requests.recv(), if requests_open => {
                    let ended = read_available(pipe.get_ref(), &mut buf, &mut splitter, stream, &logs);
                    match request {
                        Some(ack) => drop(ack.send(())),
                        None => requests_open = false,
                    }
                    if ended {
                        break;
                    }
                }
                ready = pipe.readable() => {
                    let mut guard = match ready {
                        Ok(guard) => guard,
                        Err(err) => {
                            eprintln!("faasbox-agent: waiting for the function's {stream:?} failed: {err}");
                            break;
                        }
                    };
                    if read_available(pipe.get_ref(), &mut buf, &mut splitter, stream, &logs) {
                        break;
                    }
                    // Read until EAGAIN: wait for the next readiness event.
                    guard.clear_ready();
                }
            }
        }
        if let Some(rest) = splitter.finish() {
            logs.instance_line(stream, rest);
        }
    });
    Ok(tx)
}

/// Reads until the pipe would block; returns true at its end (or on an error).
fn read_available(
    fd: &OwnedFd,
    buf: &mut [u8],
    splitter: &mut LineSplitter,
    stream: LogStream,
    logs: &LogHub,
) -> bool {
    loop {
        match nix::unistd::read(fd.as_fd(), buf) {
            Ok(0) => return true,
            Ok(n) => {
                for line in splitter.push(&buf[..n]) {
                    logs.instance_line(stream, line);
                }
            }
            Err(Errno::EAGAIN) => return false,
            Err(Errno::EINTR) => {}
            Err(err) => {
                eprintln!("faasbox-agent: reading the function's {stream:?} failed: {err}");
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Data written to a pipe is attributed by a drain right away, even before the reactor has
    /// seen the pipe become readable.
    #[tokio::test]
    async fn drain_reads_what_was_just_written() {
        let logs = Arc::new(LogHub::new());
        let (rx, tx) = std::io::pipe().unwrap();
        let drainer = Drainer::start(vec![(rx.into(), LogStream::Stdout)], &logs).unwrap();
        let mut tx = std::fs::File::from(OwnedFd::from(tx));
        for i in 0..200 {
            assert!(logs.begin_call("c"));
            writeln!(tx, "line {i}").unwrap();
            drainer.drain().await;
            let lines = logs.end_call("c");
            assert_eq!(lines.len(), 1, "round {i}: {lines:?}");
            assert_eq!(lines[0].line, format!("line {i}"));
        }
        drop(tx);
        drainer.drain().await;
    }

    /// A drain asked for just as the pipe ends (the function exited) returns: the request may
    /// reach the channel after the reader's last look at it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drain_racing_the_pipes_end_returns() {
        let logs = Arc::new(LogHub::new());
        for round in 0..20_000u32 {
            let (rx, tx) = std::io::pipe().unwrap();
            let drainer = Drainer::start(vec![(rx.into(), LogStream::Stdout)], &logs).unwrap();
            drop(tx);
            // Vary the moment of the drain around the reader's end.
            for _ in 0..(round % 4000) {
                std::hint::spin_loop();
            }
            let drained =
                tokio::time::timeout(std::time::Duration::from_secs(20), drainer.drain()).await;
            assert!(drained.is_ok(), "round {round}: the drain never returned");
        }
    }
}
