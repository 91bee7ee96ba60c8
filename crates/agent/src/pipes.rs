//! Reading the function process's stdout and stderr pipes as log lines.
//!
//! One task per pipe waits for it to become readable, reads until it would block, splits lines
//! and attributes them through the [`LogHub`]. [`Drainer::drain`] reads everything currently in
//! the pipes *now*, itself, so output written before some event (the function's HTTP answer) is
//! attributed before the agent reacts to it. A pipe's reads (the task's and the drains') take
//! turns under one lock, which keeps its lines in order; a drain costs two `read(2)`s and no
//! task switch (it used to ask the tasks and wait for their answers: four wake-ups per call).
//!
//! The reads are plain `read(2)` calls on the non-blocking descriptor. Tokio's own `try_read`
//! would not do: it answers `WouldBlock` without reading while the reactor has not yet seen the
//! pipe's readiness event, which is exactly the moment a drain happens.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use faasbox_proto::LogStream;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::lines::LineSplitter;
use crate::logs::LogHub;

/// Attributes everything written to the pipes so far, on demand.
#[derive(Debug, Clone, Default)]
pub struct Drainer {
    readers: Vec<Arc<Reader>>,
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

    /// Returns once every pipe has been read until it would block (or has ended).
    pub async fn drain(&self) {
        for reader in &self.readers {
            reader.read_now();
        }
    }
}

/// How much of a pipe one read takes. Small on purpose: the buffer lives as long as the
/// function, in every idle instance; reads loop until the pipe is empty, and lines longer
/// than a chunk are joined by the splitter.
const READ_CHUNK: usize = 8 * 1024;

thread_local! {
    /// The buffer reads go through: one per thread that reads (the runtime's), not one per
    /// pipe. Reads copy what they got into the splitter before the next read.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One pipe, read by its task and by drains in turn.
struct Reader {
    pipe: AsyncFd<OwnedFd>,
    stream: LogStream,
    logs: Arc<LogHub>,
    state: Mutex<ReadState>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// What the reads of one pipe share.
struct ReadState {
    splitter: LineSplitter,
    /// The pipe has ended (or failed): nothing more is read.
    ended: bool,
}

impl Reader {
    /// Reads what the pipe holds now, attributing its lines; true once the pipe has ended
    /// (its unfinished last line is attributed then).
    fn read_now(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.ended {
            return true;
        }
        let ReadState { splitter, ended } = &mut *state;
        let done = READ_BUF.with_borrow_mut(|buf| {
            if buf.is_empty() {
                buf.resize(READ_CHUNK, 0);
            }
            read_available(self.pipe.get_ref(), buf, splitter, self.stream, &self.logs)
        });
        if done {
            *ended = true;
            if let Some(rest) = splitter.finish() {
                self.logs.instance_line(self.stream, rest);
            }
        }
        *ended
    }

    /// Stops reading (the pipe cannot be waited for), attributing the unfinished last line.
    fn give_up(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !std::mem::replace(&mut state.ended, true) {
            if let Some(rest) = state.splitter.finish() {
                self.logs.instance_line(self.stream, rest);
            }
        }
    }
}

/// Reads one pipe until its end in a task, attributing lines; drains read it in between.
fn spawn_reader(fd: OwnedFd, stream: LogStream, logs: Arc<LogHub>) -> io::Result<Arc<Reader>> {
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // SAFETY: an `OwnedFd` is an open descriptor that stays open, and keeps returning the same
    // number, until the `AsyncFd` that owns it is dropped.
    let pipe = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
    let reader = Arc::new(Reader {
        pipe,
        stream,
        logs,
        state: Mutex::new(ReadState {
            splitter: LineSplitter::default(),
            ended: false,
        }),
    });
    let task_reader = Arc::clone(&reader);
    tokio::spawn(async move {
        let reader = task_reader;
        loop {
            let mut guard = match reader.pipe.readable().await {
                Ok(guard) => guard,
                Err(err) => {
                    eprintln!("faasbox-agent: waiting for the function's {stream:?} failed: {err}");
                    reader.give_up();
                    break;
                }
            };
            if reader.read_now() {
                break;
            }
            // Read until EAGAIN: wait for the next readiness event.
            guard.clear_ready();
        }
    });
    Ok(reader)
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
