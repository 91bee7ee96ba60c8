//! One warm worker of the code contract: the language's interpreter running faasbox's shim.
//!
//! The worker gets its own process group, the container's environment, the code directory as
//! working directory and the function's user, as the other contracts' processes do. Two more
//! pipes become its file descriptors 3 (requests, written by the agent) and 4 (answers, read by
//! the agent), one JSON object per line, so stdout and stderr carry nothing but the handler's
//! own output. Those two are read line by line and given to the call the worker is running
//! (its id and the call's action id are set before its request is sent); a line that ends with
//! the worker's marker and a call id says that stream has nothing more of that call, and lines
//! after it belong to no call (they wait in the instance buffer for the next call). Dropping a
//! worker kills its process group.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use faasbox_proto::{LogStream, ProcessUser};
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::envelope::{Answer, Hello};
use crate::lines::LineSplitter;
use crate::logs::LogHub;
use crate::process::{describe_exit, prepare_child};
use crate::reaper::{Exit, Reaper};

/// The worker's descriptor for requests.
const REQUESTS_FD: i32 = 3;
/// The worker's descriptor for answers.
const ANSWERS_FD: i32 = 4;
/// The longest answer line taken from a worker (the output limit of every contract).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// After an answer, how long its output markers may take to arrive (they were written before
/// the answer, so this is only the readers' delay; a handler that closed its stdout never
/// writes one).
const MARKER_WAIT: Duration = Duration::from_secs(2);
/// After a kill, how long to wait for the reaper's report and for the pipes to close.
const END_WAIT: Duration = Duration::from_secs(5);

/// How a worker ended, once it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exit(Exit),
    /// The reaper lost track of it (should not happen).
    Lost,
}

impl Ended {
    pub fn describe(self) -> String {
        match self {
            Ended::Exit(exit) => describe_exit(exit),
            Ended::Lost => "function process ended (its exit status was lost)".to_owned(),
        }
    }
}

/// Where the worker's output lines go.
#[derive(Debug)]
struct Route {
    /// The call the worker runs (or ran last): its id and action id.
    current: Mutex<Option<(u64, String)>>,
    /// Per stream (stdout, stderr): the id of the last call whose end marker was read
    /// (`u64::MAX` once the stream is closed).
    ended: [watch::Sender<u64>; 2],
    marker: String,
    logs: Arc<LogHub>,
}

impl Route {
    fn line(&self, index: usize, stream: LogStream, line: String) {
        if let Some(at) = line.find(&self.marker) {
            if let Ok(id) = line[at + self.marker.len()..].trim().parse::<u64>() {
                if at > 0 {
                    self.deliver(index, stream, line[..at].to_owned());
                }
                self.ended[index].send_replace(id);
                return;
            }
        }
        self.deliver(index, stream, line);
    }

    fn deliver(&self, index: usize, stream: LogStream, line: String) {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let ended = *self.ended[index].borrow();
        match current.as_ref() {
            Some((id, aid)) if *id > ended => self.logs.call_line(Some(aid), stream, line),
            _ => self.logs.call_line(None, stream, line),
        }
    }

    /// Waits (bounded) until both streams have ended call `id`'s output.
    async fn wait_ended(&self, id: u64) {
        let wait = async {
            for ended in &self.ended {
                let mut ended = ended.subscribe();
                let _ = ended.wait_for(|last| *last >= id).await;
            }
        };
        let _ = tokio::time::timeout(MARKER_WAIT, wait).await;
    }
}

/// How one call on a worker went.
#[derive(Debug)]
pub enum Outcome {
    Answered(Answer),
    /// The worker died (or closed its answers) before answering.
    Died(String),
    /// The answer (the handler's result) is larger than this many bytes.
    TooLarge(usize),
    /// The worker broke the protocol (an answer that is no answer, or for another call).
    Broken(String),
}

/// A running worker.
#[derive(Debug)]
pub struct Worker {
    pid: Pid,
    requests: pipe::Sender,
    answers: pipe::Receiver,
    /// Answer bytes read past the last line.
    pending: Vec<u8>,
    exit: watch::Receiver<Option<Ended>>,
    route: Arc<Route>,
    readers: Vec<JoinHandle<()>>,
    next_id: u64,
    /// Whether its `ready` line was read (and said ready).
    pub greeted: bool,
}

/// What to start.
#[derive(Debug)]
pub struct WorkerSpec<'a> {
    pub argv: &'a [String],
    pub env: Vec<(OsString, OsString)>,
    pub dir: &'a Path,
    pub user: Option<&'a ProcessUser>,
    /// What the shim writes (followed by the call id) to end a call's output.
    pub marker: &'a str,
}

impl Worker {
    /// Starts a worker; it loads the handler while the agent goes on (see [`Worker::greet`]).
    pub fn spawn(spec: WorkerSpec<'_>, reaper: &Reaper, logs: &Arc<LogHub>) -> io::Result<Worker> {
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| io::Error::other("no program to run"))?;
        let (requests_read, requests_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (answers_read, answers_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env("PWD", spec.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        prepare_child(&mut command, spec.dir, spec.user)?;
        let child_requests = requests_read.as_raw_fd();
        let child_answers = answers_write.as_raw_fd();
        let place_pipes = move || -> io::Result<()> {
            // First above the target numbers, so placing one cannot close the other.
            let requests = dup_above(child_requests)?;
            let answers = dup_above(child_answers)?;
            place(requests, REQUESTS_FD)?;
            place(answers, ANSWERS_FD)
        };
        // SAFETY: the closure only makes async-signal-safe system calls on plain integers.
        unsafe {
            command.pre_exec(place_pipes);
        }
        let spawned = reaper.spawn(&mut command);
        drop(command);
        drop(requests_read);
        drop(answers_write);
        let (mut child, exited) = spawned?;
        let pid = i32::try_from(child.id())
            .map(Pid::from_raw)
            .map_err(|_| io::Error::other("pid does not fit in pid_t"))?;
        // From here on a failure must not leave the process running.
        let mut kill = KillOnError(Some(pid));
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        drop(child);

        let route = Arc::new(Route {
            current: Mutex::new(None),
            ended: [watch::Sender::new(0), watch::Sender::new(0)],
            marker: spec.marker.to_owned(),
            logs: Arc::clone(logs),
        });
        let mut readers = Vec::with_capacity(2);
        for (index, (fd, stream)) in [(stdout, LogStream::Stdout), (stderr, LogStream::Stderr)]
            .into_iter()
            .enumerate()
        {
            if let Some(fd) = fd {
                readers.push(spawn_reader(fd, index, stream, Arc::clone(&route))?);
            }
        }
        let requests = pipe::Sender::from_owned_fd(requests_write)?;
        let answers = pipe::Receiver::from_owned_fd(answers_read)?;
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let ended = match exited.await {
                Ok(exit) => Ended::Exit(exit),
                Err(_) => Ended::Lost,
            };
            let _ = exit_tx.send(Some(ended));
        });
        kill.0 = None;
        Ok(Worker {
            pid,
            requests,
            answers,
            pending: Vec::new(),
            exit,
            route,
            readers,
            next_id: 1,
            greeted: false,
        })
    }

    /// How it ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        *self.exit.borrow()
    }

    async fn wait_ended(exit: &watch::Receiver<Option<Ended>>) -> Ended {
        let mut exit = exit.clone();
        let ended = match exit.wait_for(Option::is_some).await {
            Ok(ended) => *ended,
            Err(_) => None,
        };
        ended.unwrap_or(Ended::Lost)
    }

    /// Reads the worker's first line: `Ok` when the handler loaded, else the shim's (the
    /// interpreter's) reason, or how the worker ended before it said.
    pub async fn greet(&mut self, language: &str) -> Result<(), String> {
        let line = {
            let read = read_line(&mut self.answers, &mut self.pending, MAX_ANSWER_BYTES);
            tokio::pin!(read);
            tokio::select! {
                line = &mut read => line.map_err(|e| e.to_string()),
                ended = Self::wait_ended(&self.exit) => {
                    // What it wrote before it exited may still be in the pipe.
                    match tokio::time::timeout(Duration::from_millis(500), &mut read).await {
                        Ok(line) => line.map_err(|e| e.to_string()),
                        Err(_) => Err(format!("the {language} worker ended before it loaded the handler: {}", ended.describe())),
                    }
                }
            }
        };
        let line = match line {
            Ok(line) => line,
            Err(reason) => {
                let ended = tokio::time::timeout(END_WAIT, Self::wait_ended(&self.exit)).await;
                return Err(match ended {
                    Ok(ended) => format!(
                        "the {language} worker ended before it loaded the handler: {}",
                        ended.describe()
                    ),
                    Err(_) => reason,
                });
            }
        };
        match serde_json::from_slice::<Hello>(&line) {
            Ok(Hello { ready: true, .. }) => {
                self.greeted = true;
                Ok(())
            }
            Ok(Hello { error, .. }) => Err(error
                .unwrap_or_else(|| format!("the {language} worker could not load the handler"))),
            Err(err) => Err(format!(
                "the {language} worker's first answer is not the shim's: {err}"
            )),
        }
    }

    /// Sends the request line `request` makes from the call's id (for call `aid`) and waits for
    /// the answer; the call's output lines have all been attributed when this returns an
    /// answer. The caller bounds it in time (dropping it abandons the worker, which must then
    /// be ended).
    pub async fn call(&mut self, aid: &str, request: impl FnOnce(u64) -> Vec<u8>) -> Outcome {
        let id = self.next_id;
        self.next_id += 1;
        *self
            .route
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((id, aid.to_owned()));
        let line = request(id);
        let requests = &mut self.requests;
        let answers = &mut self.answers;
        let pending = &mut self.pending;
        let exit = &self.exit;
        let exchange = async move {
            requests.write_all(&line).await.map_err(ReadError::Send)?;
            read_line(answers, pending, MAX_ANSWER_BYTES).await
        };
        tokio::pin!(exchange);
        let answered = tokio::select! {
            answered = &mut exchange => answered,
            ended = Self::wait_ended(exit) => {
                // An answer written just before it exited still counts.
                match tokio::time::timeout(Duration::from_millis(200), &mut exchange).await {
                    Ok(Ok(line)) => Ok(line),
                    _ => return Outcome::Died(ended.describe()),
                }
            }
        };
        let line = match answered {
            Ok(line) => line,
            Err(ReadError::TooLarge(limit)) => return Outcome::TooLarge(limit),
            Err(err) => {
                // A worker that closed its answers or stopped reading is dying.
                return match tokio::time::timeout(END_WAIT, Self::wait_ended(&self.exit)).await {
                    Ok(ended) => Outcome::Died(ended.describe()),
                    Err(_) => Outcome::Broken(err.to_string()),
                };
            }
        };
        let answer = match serde_json::from_slice::<Answer>(&line) {
            Ok(answer) if answer.id == id => answer,
            Ok(answer) => {
                return Outcome::Broken(format!(
                    "the worker answered call {} while running call {id}",
                    answer.id
                ))
            }
            Err(err) => {
                return Outcome::Broken(format!("the worker's answer is not the shim's: {err}"))
            }
        };
        self.route.wait_ended(id).await;
        Outcome::Answered(answer)
    }

    /// Kills the worker's process group and waits (bounded) until it is gone and its last
    /// output lines have been given to the call it was running.
    pub async fn end(mut self) {
        self.kill();
        let _ = tokio::time::timeout(END_WAIT, Self::wait_ended(&self.exit)).await;
        let readers = std::mem::take(&mut self.readers);
        let _ = tokio::time::timeout(END_WAIT, async {
            for reader in readers {
                let _ = reader.await;
            }
        })
        .await;
    }

    fn kill(&self) {
        let _ = nix::sys::signal::killpg(self.pid, Signal::SIGKILL);
    }
}

impl Drop for Worker {
    /// Kills the process group. [`Worker::end`] is the orderly way; a worker dropped without
    /// it (the agent stopping) loses the output still in its pipes.
    fn drop(&mut self) {
        self.kill();
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// A copy of `fd` numbered 10 or more (closed at exec). For the child between fork and exec:
/// async-signal-safe, no allocation.
fn dup_above(fd: i32) -> io::Result<i32> {
    // SAFETY: fcntl on a descriptor number; an invalid one is an error, not undefined behaviour.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(copy)
}

/// Makes `target` a copy of `fd` that stays open across exec. As [`dup_above`].
fn place(fd: i32, target: i32) -> io::Result<()> {
    // SAFETY: dup2 on descriptor numbers; `target` is one of the worker's own numbers, which
    // nothing else in the child uses after exec.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kills a process group unless disarmed.
struct KillOnError(Option<Pid>);

impl Drop for KillOnError {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
        }
    }
}

/// Why no answer line could be read.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("the worker closed its answers")]
    Closed,
    #[error("the worker's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the worker's answer failed: {0}")]
    Io(io::Error),
    #[error("cannot send the request: {0}")]
    Send(io::Error),
}

/// Reads one line (without its `\n`) of at most `limit` bytes.
async fn read_line(
    answers: &mut pipe::Receiver,
    pending: &mut Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut scanned = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(at) = pending[scanned..].iter().position(|&b| b == b'\n') {
            let end = scanned + at;
            let mut line: Vec<u8> = pending.drain(..=end).collect();
            line.pop();
            // A large answer's buffer is not kept for the worker's life.
            pending.shrink_to(64 * 1024);
            return Ok(line);
        }
        scanned = pending.len();
        if pending.len() > limit {
            return Err(ReadError::TooLarge(limit));
        }
        let n = match answers.read(&mut buf).await {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ReadError::Io(err)),
        };
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Reads one output stream of the worker to its end, routing its lines.
fn spawn_reader(
    fd: OwnedFd,
    index: usize,
    stream: LogStream,
    route: Arc<Route>,
) -> io::Result<JoinHandle<()>> {
    let mut pipe = pipe::Receiver::from_owned_fd(fd)?;
    Ok(tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut splitter = LineSplitter::default();
        loop {
            let n = match pipe.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            for line in splitter.push(&buf[..n]) {
                route.line(index, stream, line);
            }
        }
        if let Some(rest) = splitter.finish() {
            route.line(index, stream, rest);
        }
        route.ended[index].send_replace(u64::MAX);
    }))
}

/// The argument list of a worker: the interpreter, the shim and what the shim takes.
pub fn argv(
    interpreter: &str,
    shim: &Path,
    dir: &Path,
    handler: &str,
    marker: &str,
) -> Vec<String> {
    let mut argv = vec![interpreter.to_owned()];
    if interpreter.ends_with("python3") {
        argv.push("-u".to_owned());
    }
    argv.extend([
        shim.display().to_string(),
        dir.display().to_string(),
        handler.to_owned(),
        marker.to_owned(),
    ]);
    argv
}
