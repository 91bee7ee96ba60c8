//! The server's side of the workers: at most [`Limits::workers`] of them, started when
//! needed and kept while they are healthy. A job takes an idle worker (or starts one), sends
//! its request and waits for the answer while watching the worker's CPU time in
//! `/proc/<pid>/stat`; past the CPU bound, past a wall-clock bound, or on cancel the worker
//! is killed (SIGKILL) and forgotten. A worker that dies by itself is asked nothing more:
//! what its stderr says tells which bound it hit. Nothing here blocks a thread: the pipes are
//! tokio's, and a job waiting for a worker waits on a semaphore.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use super::describe_bytes;
use super::protocol::{self, Answer, Op};
use super::worker::{WorkerArgs, EVAL_STACK, MAX_MESSAGE};
use super::{EvalError, Limits, WorkerCommand};
use crate::scan::{split, Piece};
use crate::TemplateError;

/// How often a running job's CPU time is looked at.
const CHECK_EVERY: Duration = Duration::from_millis(25);
/// How long a new worker may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// A worker is replaced after this many jobs,
const MAX_JOBS: u32 = 10_000;
/// or once its peak memory grew this much past what it held when it started.
const MAX_GROWTH: u64 = 64 * 1024 * 1024;
/// The stderr a worker leaves that is kept (the end, which says why it died).
const STDERR_TAIL: usize = 4096;
/// /proc reports CPU time in clock ticks of 1/100 s on Linux (USER_HZ, the same on every
/// architecture the kernel exports it for).
const TICK_NS: u64 = 10_000_000;

/// At most [`Limits::workers`] worker processes, started on demand and kept while idle, that
/// run jobs one at a time each within the limits.
pub struct Pool {
    command: WorkerCommand,
    limits: Limits,
    idle: Mutex<Vec<Worker>>,
    permits: Semaphore,
}

struct Worker {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Reads stderr to its end; gives its last [`STDERR_TAIL`] bytes.
    stderr: JoinHandle<Vec<u8>>,
    /// CPU time (ns) as of its last answer: a job's CPU time is counted from it.
    cpu_ns: u64,
    /// Peak memory when it started.
    start_rss: u64,
    jobs: u32,
}

/// How a job's exchange with its worker ended.
enum Exchange {
    Answer(Answer),
    /// The pipe broke or closed: the worker died.
    Died,
    /// The worker answered something that is not an answer.
    Garbled(String),
    Cancelled,
    OverCpu,
    OverWallClock,
}

impl Pool {
    /// A pool starting `command` as its workers (none started yet).
    pub fn new(command: WorkerCommand, limits: Limits) -> Pool {
        let limits = Limits {
            workers: limits.workers.max(1),
            ..limits
        };
        Pool {
            command,
            limits,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(limits.workers),
        }
    }

    /// The limits every job runs within.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Starts a worker (if none is idle) and keeps it idle.
    pub async fn warm_up(&self) -> Result<(), EvalError> {
        let _permit = self.permits.acquire().await.map_err(closed)?;
        if self.lock().is_empty() {
            let worker = self.start(&CancellationToken::new()).await?;
            self.lock().push(worker);
        }
        Ok(())
    }

    /// Runs one job: `op` with `template` on `data` (JSON text).
    pub async fn run(
        &self,
        op: Op,
        template: &Value,
        data: &[u8],
        cancel: &CancellationToken,
    ) -> Result<Value, EvalError> {
        let prefix = request_prefix(op, template, data)?;
        let _permit = tokio::select! {
            permit = self.permits.acquire() => permit.map_err(closed)?,
            () = cancel.cancelled() => return Err(EvalError::Cancelled),
        };
        let mut worker = match self.idle_worker() {
            Some(worker) => worker,
            None => self.start(cancel).await?,
        };
        match worker.exchange(&prefix, data, cancel, &self.limits).await {
            Exchange::Answer(answer) => {
                worker.cpu_ns = answer.cpu_ns;
                worker.jobs += 1;
                if worker.jobs < MAX_JOBS
                    && answer.rss <= worker.start_rss.saturating_add(MAX_GROWTH)
                {
                    self.lock().push(worker);
                }
                decode(answer)
            }
            Exchange::Cancelled => Err(EvalError::Cancelled),
            Exchange::OverCpu => Err(EvalError::Expr(TemplateError(format!(
                "{} used more than its CPU time bound of {} and was stopped; make it do less \
                 work (the bound is the server's jq-cpu-time setting)",
                describe(op, template),
                humantime(self.limits.cpu_time)
            )))),
            Exchange::OverWallClock => Err(EvalError::Expr(TemplateError(format!(
                "{} ran longer than {} of wall-clock time and was stopped",
                describe(op, template),
                humantime(wall_bound(&self.limits))
            )))),
            Exchange::Garbled(what) => Err(EvalError::Unavailable(format!(
                "an expression worker answered wrongly ({what}); it was replaced"
            ))),
            Exchange::Died => Err(worker.death(describe(op, template), &self.limits).await),
        }
    }

    /// An idle worker that is still alive (one that ended meanwhile is dropped, so a job is
    /// never sent to a dead worker and blamed for it).
    fn idle_worker(&self) -> Option<Worker> {
        loop {
            let mut worker = self.lock().pop()?;
            if matches!(worker.child.try_wait(), Ok(None)) {
                return Some(worker);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a worker and waits until it is ready.
    async fn start(&self, cancel: &CancellationToken) -> Result<Worker, EvalError> {
        let args = WorkerArgs {
            memory: self.limits.memory,
            cpu_time: self.limits.cpu_time,
            max_output: self.limits.max_output,
        };
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            .args(args.to_args())
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                EvalError::Unavailable(format!(
                    "cannot start an expression worker ({}): {e}",
                    self.command.program.display()
                ))
            })?;
        let (Some(pid), Some(stdin), Some(stdout), Some(stderr)) = (
            child.id(),
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
        ) else {
            return Err(EvalError::Unavailable(
                "an expression worker has no pipes".into(),
            ));
        };
        let stderr = tokio::spawn(tail(stderr));
        let mut worker = Worker {
            child,
            pid,
            stdin,
            stdout,
            stderr,
            cpu_ns: 0,
            start_rss: 0,
            jobs: 0,
        };
        let ready = tokio::select! {
            ready = tokio::time::timeout(START_TIMEOUT, read_answer(&mut worker.stdout, 0)) => ready,
            () = cancel.cancelled() => return Err(EvalError::Cancelled),
        };
        match ready {
            Ok(Ok(answer)) if answer.kind == protocol::READY => {
                worker.cpu_ns = answer.cpu_ns;
                worker.start_rss = answer.rss;
                Ok(worker)
            }
            Ok(_) => {
                let stderr = worker.stderr_text().await;
                Err(EvalError::Unavailable(format!(
                    "an expression worker did not start: {}",
                    stderr.trim()
                )))
            }
            Err(_) => Err(EvalError::Unavailable(format!(
                "an expression worker did not start within {}",
                humantime(START_TIMEOUT)
            ))),
        }
    }
}

impl Worker {
    /// Sends the request and waits for the answer, watching the CPU time and the clock.
    async fn exchange(
        &mut self,
        prefix: &[u8],
        data: &[u8],
        cancel: &CancellationToken,
        limits: &Limits,
    ) -> Exchange {
        let started = Instant::now();
        let (stdin, stdout) = (&mut self.stdin, &mut self.stdout);
        let io = async {
            stdin.write_all(prefix).await?;
            stdin.write_all(data).await?;
            stdin.flush().await?;
            read_answer(stdout, limits.max_output.max(MAX_MESSAGE)).await
        };
        tokio::pin!(io);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + CHECK_EVERY, CHECK_EVERY);
        let cpu_bound = limits.cpu_time.as_nanos() as u64;
        loop {
            tokio::select! {
                answer = &mut io => return match answer {
                    Ok(answer) if matches!(answer.kind, protocol::OK | protocol::FAILED) => {
                        Exchange::Answer(answer)
                    }
                    Ok(answer) => Exchange::Garbled(format!("an answer of kind {}", answer.kind)),
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        Exchange::Garbled(e.to_string())
                    }
                    Err(_) => Exchange::Died,
                },
                () = cancel.cancelled() => return Exchange::Cancelled,
                _ = tick.tick() => {
                    if let Some(cpu) = cpu_ns_of(self.pid) {
                        if cpu.saturating_sub(self.cpu_ns) >= cpu_bound {
                            return Exchange::OverCpu;
                        }
                    }
                    if started.elapsed() > wall_bound(limits) {
                        return Exchange::OverWallClock;
                    }
                }
            }
        }
    }

    /// Why the worker died during the job of `what`, from its stderr and exit status.
    async fn death(mut self, what: String, limits: &Limits) -> EvalError {
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let stderr = self.stderr_text().await;
        let message = if stderr.contains("memory allocation of") {
            format!(
                "{what} needed more than its memory bound of {} and was stopped; make it work \
                 on less data (the bound is the server's jq-memory setting)",
                describe_bytes(limits.memory)
            )
        } else if stderr.contains("has overflowed its stack") {
            format!(
                "{what} recursed too deeply (past the evaluator's {} stack) and was stopped",
                describe_bytes(EVAL_STACK as u64)
            )
        } else {
            use std::os::unix::process::ExitStatusExt;
            match status.ok().and_then(Result::ok) {
                Some(s) if s.signal() == Some(libc::SIGXCPU) => format!(
                    "{what} used more than its CPU time bound of {} and was stopped",
                    humantime(limits.cpu_time)
                ),
                Some(s) => format!("{what} stopped its evaluator ({s}); it was replaced"),
                None => format!("{what} stopped its evaluator; it was replaced"),
            }
        };
        EvalError::Expr(TemplateError(message))
    }

    /// What the (dead) worker wrote to stderr, waiting briefly for the pipe's end.
    async fn stderr_text(&mut self) -> String {
        let _ = self.child.start_kill();
        match tokio::time::timeout(Duration::from_secs(2), &mut self.stderr).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // `kill_on_drop` kills the process; the stderr reader ends with its pipe.
        self.stderr.abort();
    }
}

/// The request's header part (everything before the data).
fn request_prefix(op: Op, template: &Value, data: &[u8]) -> Result<Vec<u8>, EvalError> {
    if u32::try_from(data.len()).is_err() {
        return Err(EvalError::Expr(TemplateError(format!(
            "the data is {} long; expressions take at most 4 GiB",
            describe_bytes(data.len() as u64)
        ))));
    }
    let mut prefix = protocol::request(op, template, b"")
        .map_err(|e| EvalError::Expr(TemplateError(format!("bad template: {e}"))))?;
    // The encoded empty data's length is the last four bytes: put the real one there.
    let at = prefix.len() - 4;
    prefix[at..].copy_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(prefix)
}

/// Reads one answer; refuses one longer than `max_payload`.
async fn read_answer(stdout: &mut ChildStdout, max_payload: usize) -> std::io::Result<Answer> {
    let mut len = [0u8; 4];
    stdout.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > protocol::ANSWER_HEAD + max_payload || len < protocol::ANSWER_HEAD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("an answer of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    stdout.read_exact(&mut body).await?;
    protocol::decode_answer(body)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "a short answer"))
}

/// An answer's result or error.
fn decode(answer: Answer) -> Result<Value, EvalError> {
    match answer.kind {
        protocol::OK => serde_json::from_slice(&answer.payload).map_err(|e| {
            EvalError::Unavailable(format!("an expression worker gave bad JSON: {e}"))
        }),
        _ => Err(EvalError::Expr(TemplateError(
            String::from_utf8_lossy(&answer.payload).into_owned(),
        ))),
    }
}

/// Keeps reading `stderr` to its end; its last [`STDERR_TAIL`] bytes.
async fn tail(mut stderr: tokio::process::ChildStderr) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > STDERR_TAIL {
                    kept.drain(..kept.len() - STDERR_TAIL);
                }
            }
        }
    }
}

/// A process's CPU time (user + system, ns) from `/proc/<pid>/stat`.
fn cpu_ns_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * TICK_NS)
}

/// How long a job may take by the clock: thirty times its CPU bound and thirty seconds more
/// (a worker waiting for a busy CPU is not using its CPU time, and workers run at a lower
/// priority than the server; one that takes far longer is stuck).
fn wall_bound(limits: &Limits) -> Duration {
    limits.cpu_time * 30 + Duration::from_secs(30)
}

/// Names a job's expression in messages: `jq(…)` when it has one, else "the template's
/// expressions".
fn describe(op: Op, template: &Value) -> String {
    let mut found = Vec::new();
    match template {
        Value::String(bare) if op == Op::Evaluate && !bare.contains("jq(") => {
            found.push(bare.clone())
        }
        _ => collect_expressions(template, &mut found),
    }
    match found.as_slice() {
        [one] => {
            let shown: String = one.chars().take(60).collect();
            let more = if shown.len() < one.len() { "…" } else { "" };
            format!("jq({shown}{more})")
        }
        _ => "the template's expressions".to_string(),
    }
}

fn collect_expressions(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            for piece in split(text).unwrap_or_default() {
                if let Piece::Expr(expr) = piece {
                    found.push(expr.to_string());
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_expressions(v, found)),
        Value::Object(map) => map.values().for_each(|v| collect_expressions(v, found)),
        _ => {}
    }
}

fn closed(_: tokio::sync::AcquireError) -> EvalError {
    EvalError::Unavailable("the expression workers are shut down".into())
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
