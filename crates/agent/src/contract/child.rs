//! Running one process to completion for a call (the cmd, file and openwhisk contracts).
//!
//! The process gets its own process group, a complete environment (with `PWD` set to its working
//! directory), the call's working directory and user (see [`crate::process::prepare_child`]), optional bytes on stdin, and pipes for stdout
//! and stderr (one shared pipe when the output is merged). Both are kept as bytes (up to
//! [`MAX_CAPTURE_BYTES`] each) and, when a [`LineSink`] is given, handed out as log lines while
//! the process runs.
//!
//! The run ends when the process exits, when the deadline passes or when the call is aborted;
//! then the whole process group is killed (`SIGKILL`), so helpers it left in the background do not
//! outlive the call and cannot hold its pipes open. Dropping the run's future kills the group too.
//!
//! Spawning happens on the calling Tokio worker thread, which lives as long as the runtime: the
//! child's parent-death signal is tied to that thread.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::{LogStream, ProcessUser};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

use crate::calls::Cancelled;
use crate::lines::LineSplitter;
use crate::process::prepare_child;
use crate::reaper::{Exit, Reaper};

/// How much of each stream is kept (the rest is read and dropped).
pub const MAX_CAPTURE_BYTES: usize = 64 * 1024 * 1024;
/// After the process ended and its group was killed, how long its pipes may take to close.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// After a kill, how long to wait for the reaper to report the process gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Receives log lines while the process runs.
pub type LineSink = Arc<dyn Fn(LogStream, String) + Send + Sync>;

/// What to run.
#[derive(Debug)]
pub struct ChildSpec<'a> {
    /// Program and arguments; a program without `/` is looked up in the `PATH` of `env`.
    pub argv: &'a [String],
    /// The complete environment.
    pub env: Vec<(OsString, OsString)>,
    pub cwd: &'a Path,
    pub user: Option<&'a ProcessUser>,
    /// Written to stdin, which is then closed; `None`: stdin is `/dev/null`.
    pub stdin: Option<Bytes>,
    /// Stdout and stderr share one pipe (their order is kept); all output is in `stdout`.
    pub merge_output: bool,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(Exit),
    /// The deadline passed; the process group was killed.
    TimedOut,
    /// The call was aborted (cancelled); the process group was killed.
    Aborted,
    /// The reaper lost track of the process (should not happen).
    Lost,
}

/// The bytes of one stream.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    /// More than [`MAX_CAPTURE_BYTES`] were written.
    pub truncated: bool,
}

impl Captured {
    fn push(&mut self, data: &[u8]) {
        let room = MAX_CAPTURE_BYTES.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Runs `spec` to its end; `Err` when it could not be started.
pub async fn run(
    spec: ChildSpec<'_>,
    reaper: &Reaper,
    deadline: tokio::time::Instant,
    mut cancelled: Cancelled,
    sink: Option<LineSink>,
) -> io::Result<Finished> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| io::Error::other("no program to run"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        // The working directory changes, so the inherited `PWD` would be wrong.
        .env("PWD", spec.cwd)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let merged = if spec.merge_output {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        command
            .stdout(Stdio::from(write.try_clone()?))
            .stderr(Stdio::from(write));
        Some(read)
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        None
    };
    prepare_child(&mut command, spec.cwd, spec.user)?;
    let spawned = reaper.spawn(&mut command);
    // Closes the agent's copies of the merged pipe's write end, so its reader sees the end.
    drop(command);
    let (mut child, mut exited) = spawned?;
    let pid = i32::try_from(child.id())
        .map(Pid::from_raw)
        .map_err(|_| io::Error::other("pid does not fit in pid_t"))?;
    let mut group = GroupKill(Some(pid));

    let stdout_store = Arc::new(Mutex::new(Captured::default()));
    let stderr_store = Arc::new(Mutex::new(Captured::default()));
    let mut readers = Vec::with_capacity(2);
    let pipes: Vec<(OwnedFd, LogStream, &Arc<Mutex<Captured>>)> = match merged {
        Some(read) => vec![(read, LogStream::Stdout, &stdout_store)],
        None => {
            let stdout = child.stdout.take().map(OwnedFd::from);
            let stderr = child.stderr.take().map(OwnedFd::from);
            let mut pipes = Vec::with_capacity(2);
            if let Some(fd) = stdout {
                pipes.push((fd, LogStream::Stdout, &stdout_store));
            }
            if let Some(fd) = stderr {
                pipes.push((fd, LogStream::Stderr, &stderr_store));
            }
            pipes
        }
    };
    for (fd, stream, store) in pipes {
        readers.push(spawn_reader(fd, stream, sink.clone(), Arc::clone(store))?);
    }
    let writer = match (spec.stdin, child.stdin.take()) {
        (Some(data), Some(stdin)) => Some(spawn_writer(OwnedFd::from(stdin), data)?),
        _ => None,
    };
    // `child` is dropped without waiting: the reaper owns the exit status.
    drop(child);

    let ended = tokio::select! {
        exit = &mut exited => exit.map_or(Ended::Lost, Ended::Exited),
        () = tokio::time::sleep_until(deadline) => Ended::TimedOut,
        () = cancelled.aborted() => Ended::Aborted,
    };
    // Whatever is left of the group goes now (all of it, on a timeout or an abort).
    group.kill();
    if !matches!(ended, Ended::Exited(_) | Ended::Lost) {
        let _ = tokio::time::timeout(KILL_WAIT, exited).await;
    }
    if let Some(writer) = writer {
        writer.abort();
    }
    let all_read = join_readers(readers);
    if tokio::time::timeout(PIPE_GRACE, all_read).await.is_err() {
        // Something outside the group still holds a pipe: keep what was read.
    }
    Ok(Finished {
        ended,
        stdout: take(&stdout_store),
        stderr: take(&stderr_store),
    })
}

/// Waits for every reader; aborts the ones still running when dropped.
async fn join_readers(readers: Vec<JoinHandle<()>>) {
    let mut guard = AbortAll(readers);
    for reader in &mut guard.0 {
        let _ = reader.await;
    }
}

struct AbortAll(Vec<JoinHandle<()>>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for reader in &self.0 {
            reader.abort();
        }
    }
}

fn take(store: &Mutex<Captured>) -> Captured {
    std::mem::take(&mut *store.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Reads one pipe to its end, keeping the bytes and handing out lines.
fn spawn_reader(
    fd: OwnedFd,
    stream: LogStream,
    sink: Option<LineSink>,
    store: Arc<Mutex<Captured>>,
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
            store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(&buf[..n]);
            if let Some(sink) = &sink {
                for line in splitter.push(&buf[..n]) {
                    sink(stream, line);
                }
            }
        }
        if let (Some(sink), Some(rest)) = (&sink, splitter.finish()) {
            sink(stream, rest);
        }
    }))
}

/// Writes `data` to the child's stdin and closes it (a child that does not read it is fine).
fn spawn_writer(fd: OwnedFd, data: Bytes) -> io::Result<JoinHandle<()>> {
    let mut pipe = pipe::Sender::from_owned_fd(fd)?;
    Ok(tokio::spawn(async move {
        let _ = pipe.write_all(&data).await;
    }))
}

/// Kills the process group when asked, or when dropped before that.
struct GroupKill(Option<Pid>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The agent's own environment (the container's), which every per-call process starts from.
pub fn container_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// `base` with `overrides` applied in order (a later value for the same name wins).
pub fn merge_env(
    base: Vec<(OsString, OsString)>,
    overrides: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = base;
    for (name, value) in overrides {
        match env.iter_mut().find(|(existing, _)| *existing == name) {
            Some(slot) => slot.1 = value,
            None => env.push((name, value)),
        }
    }
    env
}

/// How a process ended, as Go's `os/exec` says it ("exit status 1", "signal: killed"), which is
/// what Direktiv's command runner reported.
pub fn exit_text(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exit status {code}"),
        Exit::Signal(sig) => {
            let name = match Signal::try_from(sig) {
                Ok(Signal::SIGKILL) => "killed".to_owned(),
                Ok(Signal::SIGTERM) => "terminated".to_owned(),
                Ok(Signal::SIGINT) => "interrupt".to_owned(),
                Ok(Signal::SIGSEGV) => "segmentation fault".to_owned(),
                Ok(Signal::SIGABRT) => "aborted".to_owned(),
                Ok(Signal::SIGPIPE) => "broken pipe".to_owned(),
                Ok(other) => other.as_str().to_owned(),
                Err(_) => format!("signal {sig}"),
            };
            format!("signal: {name}")
        }
    }
}

/// Why `program` could not be started, as Go's `os/exec` says it.
pub fn spawn_error_text(program: &str, err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::NotFound && !program.contains('/') {
        return format!("exec: \"{program}\": executable file not found in $PATH");
    }
    let reason = match err.raw_os_error() {
        Some(code) => lower_first(nix::errno::Errno::from_raw(code).desc()),
        None => err.to_string(),
    };
    format!("fork/exec {program}: {reason}")
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::with_reaper;
    use faasbox_proto::LogStream;
    use std::time::Instant;

    fn argv(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn spec<'a>(args: &'a [String], cwd: &'a Path) -> ChildSpec<'a> {
        ChildSpec {
            argv: args,
            env: vec![("PATH".into(), "/bin:/usr/bin".into())],
            cwd,
            user: None,
            stdin: None,
            merge_output: false,
        }
    }

    fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn captures_streams_stdin_and_lines() {
        with_reaper(|reaper| async move { captures(&reaper).await });
    }

    async fn captures(reaper: &Reaper) {
        let dir = tempfile::tempdir().unwrap();
        let args = argv(&[
            "/bin/busybox",
            "sh",
            "-c",
            "echo out1; echo err1 >&2; cat; pwd >&2; exit 3",
        ]);
        let mut spec = spec(&args, dir.path());
        spec.stdin = Some(Bytes::from_static(b"in\npartial"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&lines);
        let sink: LineSink =
            Arc::new(move |stream, line| seen.lock().unwrap().push((stream, line)));
        let done = run(spec, reaper, far(), Cancelled::never(), Some(sink))
            .await
            .unwrap();
        assert_eq!(done.ended, Ended::Exited(Exit::Code(3)));
        assert_eq!(done.stdout.bytes, b"out1\nin\npartial");
        let cwd = dir.path().display().to_string();
        assert_eq!(
            String::from_utf8(done.stderr.bytes).unwrap(),
            format!("err1\n{cwd}\n")
        );
        let lines = lines.lock().unwrap();
        let stdout: Vec<_> = lines
            .iter()
            .filter(|(s, _)| *s == LogStream::Stdout)
            .map(|(_, l)| l.as_str())
            .collect();
        assert_eq!(stdout, ["out1", "in", "partial"]);
    }

    #[test]
    fn merged_output_keeps_order() {
        with_reaper(|reaper| async move { merged(&reaper).await });
    }

    async fn merged(reaper: &Reaper) {
        let dir = tempfile::tempdir().unwrap();
        let args = argv(&["/bin/busybox", "sh", "-c", "echo a; echo b >&2; echo c"]);
        let mut spec = spec(&args, dir.path());
        spec.merge_output = true;
        let done = run(spec, reaper, far(), Cancelled::never(), None)
            .await
            .unwrap();
        assert_eq!(done.stdout.bytes, b"a\nb\nc\n");
        assert!(done.stderr.bytes.is_empty());
    }

    #[test]
    fn deadline_kills_the_group_background_included() {
        with_reaper(|reaper| async move { deadline_kills(&reaper).await });
    }

    async fn deadline_kills(reaper: &Reaper) {
        let dir = tempfile::tempdir().unwrap();
        let args = argv(&[
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox sleep 30 & echo started; /bin/busybox sleep 30",
        ]);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        let done = run(
            spec(&args, dir.path()),
            reaper,
            deadline,
            Cancelled::never(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(done.ended, Ended::TimedOut);
        assert_eq!(done.stdout.bytes, b"started\n");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn background_helpers_do_not_hold_the_call() {
        with_reaper(|reaper| async move { background(&reaper).await });
    }

    async fn background(reaper: &Reaper) {
        let dir = tempfile::tempdir().unwrap();
        let args = argv(&[
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox sleep 30 & echo done",
        ]);
        let started = Instant::now();
        let done = run(
            spec(&args, dir.path()),
            reaper,
            far(),
            Cancelled::never(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(done.ended, Ended::Exited(Exit::Code(0)));
        assert_eq!(done.stdout.bytes, b"done\n");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn spawn_failures_and_texts() {
        with_reaper(|reaper| async move { spawn_failures(&reaper).await });
    }

    async fn spawn_failures(reaper: &Reaper) {
        let dir = tempfile::tempdir().unwrap();
        let args = argv(&["no-such-program-here"]);
        let err = run(
            spec(&args, dir.path()),
            reaper,
            far(),
            Cancelled::never(),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            spawn_error_text("no-such-program-here", &err),
            "exec: \"no-such-program-here\": executable file not found in $PATH"
        );
        let denied = io::Error::from_raw_os_error(nix::libc::EACCES);
        assert_eq!(
            spawn_error_text("./x.sh", &denied),
            "fork/exec ./x.sh: permission denied"
        );
        assert_eq!(exit_text(Exit::Code(1)), "exit status 1");
        assert_eq!(exit_text(Exit::Signal(9)), "signal: killed");
        assert_eq!(exit_text(Exit::Signal(10)), "signal: SIGUSR1");
    }

    #[test]
    fn env_overrides_replace_and_append() {
        let env = merge_env(
            vec![("A".into(), "1".into()), ("HOME".into(), "/root".into())],
            [
                ("HOME".into(), "/tmp/x".into()),
                ("B".into(), "2".into()),
                ("B".into(), "3".into()),
            ],
        );
        assert_eq!(
            env,
            vec![
                ("A".into(), "1".into()),
                ("HOME".into(), "/tmp/x".into()),
                ("B".into(), "3".into())
            ]
        );
    }
}
