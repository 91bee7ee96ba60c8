//! The worker's side: `faasbox expr-worker --memory BYTES --cpu-ms MS --max-output BYTES`,
//! started by the server's [pool](super::pool) with an empty environment and pipes for stdin,
//! stdout and stderr. It runs jobs one at a time on a thread with a large stack, after
//! limiting itself:
//!
//! - its address space to what it holds now plus `--memory` (a job that allocates more
//!   aborts the worker with Rust's "memory allocation … failed", which the server reads),
//! - no core files, no files written,
//! - before each job, its CPU time to the job's bound twice over (rounded up to seconds), a
//!   backstop that ends the worker even if the server is gone,
//! - a lower scheduling priority than the server's, so the server stays responsive.
//!
//! It answers each job (see [`super::protocol`]) and exits when stdin closes or its server
//! is gone.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::resource::{getrusage, setrlimit, Resource, UsageWho, RLIM_INFINITY};
use serde_json::Value;
use zeroize::Zeroizing;

use super::protocol::{self, Header, Op};
use crate::{Programs, TemplateError};

/// The subcommand that makes `faasbox` a worker.
pub const SUBCOMMAND: &str = "expr-worker";

/// The stack a job runs on: deep enough for any bounded expression and for jq-level
/// recursion of ordinary depth; deeper recursion overflows it, which ends the worker.
pub const EVAL_STACK: usize = 64 * 1024 * 1024;

/// How a worker ends when it cannot go on (the server reads only the pipe closing).
const EXIT_SETUP: i32 = 2;
const EXIT_PROTOCOL: i32 = 3;

/// The worker's limits, as given on its command line.
#[derive(Debug, Clone, Copy)]
pub struct WorkerArgs {
    /// The memory a job may allocate beyond what the idle worker holds (`--memory`).
    pub memory: u64,
    /// The CPU time a job may use (`--cpu-ms`); the worker's own backstop is twice this.
    pub cpu_time: Duration,
    /// The largest result in bytes (`--max-output`).
    pub max_output: usize,
}

impl WorkerArgs {
    /// The arguments after [`SUBCOMMAND`] that give these limits.
    pub fn to_args(self) -> Vec<String> {
        vec![
            "--memory".into(),
            self.memory.to_string(),
            "--cpu-ms".into(),
            self.cpu_time.as_millis().max(1).to_string(),
            "--max-output".into(),
            self.max_output.to_string(),
        ]
    }
}

/// Runs the worker until stdin closes; the process's exit code.
pub fn run(args: WorkerArgs) -> i32 {
    watch_parent();
    let thread = std::thread::Builder::new()
        .name("faasbox-expr".into())
        .stack_size(EVAL_STACK)
        .spawn(move || serve(args));
    match thread.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => EXIT_PROTOCOL,
        Err(e) => {
            eprintln!("faasbox expr-worker: cannot start its thread: {e}");
            EXIT_SETUP
        }
    }
}

/// Ends the worker as soon as the server that started it is gone (killed, say, while a job
/// runs: stdin closing is only seen between jobs). A small thread polls the parent pid.
fn watch_parent() {
    let parent = nix::unistd::getppid();
    let watcher = std::thread::Builder::new()
        .name("faasbox-expr-parent".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            if nix::unistd::getppid() != parent {
                std::process::exit(0);
            }
        });
    if watcher.is_err() {
        eprintln!("faasbox expr-worker: cannot watch its server; it ends when its stdin closes");
    }
}

fn serve(args: WorkerArgs) -> i32 {
    let (input, output) = match (
        std::io::stdin().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
    ) {
        (Ok(input), Ok(output)) => (File::from(input), File::from(output)),
        _ => return EXIT_SETUP,
    };
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut output = output;
    if let Err(e) = limit_self(args.memory) {
        eprintln!("faasbox expr-worker: {e}");
        return EXIT_SETUP;
    }
    if send(&mut output, protocol::READY, b"").is_err() {
        return EXIT_PROTOCOL;
    }
    let mut programs = Programs::default();
    loop {
        let request = match read_request(&mut input) {
            Ok(Some(request)) => request,
            Ok(None) => return 0,
            Err(_) => return EXIT_PROTOCOL,
        };
        cpu_backstop(args.cpu_time);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            job(&request, &mut programs, args.max_output)
        }));
        drop(request);
        let sent = match outcome {
            Ok(Ok(json)) => send(&mut output, protocol::OK, &json),
            Ok(Err(e)) => send(&mut output, protocol::FAILED, shortened(&e.0).as_bytes()),
            Err(_) => send(
                &mut output,
                protocol::FAILED,
                b"jq failed inside (a panic in the evaluator)",
            ),
        };
        if sent.is_err() {
            return EXIT_PROTOCOL;
        }
    }
}

/// A job as read: the header's and the data's text, wiped when dropped (they may hold
/// secrets).
struct Request {
    header: Zeroizing<Vec<u8>>,
    data: Zeroizing<Vec<u8>>,
}

/// The next request; `None` at the end of input.
fn read_request(input: &mut impl Read) -> std::io::Result<Option<Request>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let header = read_exact_vec(input, u32::from_le_bytes(len) as usize)?;
    input.read_exact(&mut len)?;
    let data = read_exact_vec(input, u32::from_le_bytes(len) as usize)?;
    Ok(Some(Request { header, data }))
}

fn read_exact_vec(input: &mut impl Read, len: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; len]);
    input.read_exact(&mut buf)?;
    Ok(buf)
}

/// Runs one job; its result as JSON text, at most `max_output` bytes.
fn job(
    request: &Request,
    programs: &mut Programs,
    max_output: usize,
) -> Result<Vec<u8>, TemplateError> {
    let header: Header = serde_json::from_slice(&request.header)
        .map_err(|e| TemplateError(format!("the evaluator got a bad request: {e}")))?;
    let data = jaq_json::read::parse_single(&request.data)
        .map_err(|e| TemplateError(format!("bad template data: {e:?}")))?;
    let result = match header.op {
        Op::Render => crate::render_val(&header.template, &data, programs),
        Op::Evaluate => crate::evaluate_val(&header.template, &data, programs),
    }?;
    drop(data);
    to_json_bounded(&result, max_output)
}

/// `value` as JSON text, refused past `max` bytes (without writing more than that).
pub fn to_json_bounded(value: &Value, max: usize) -> Result<Vec<u8>, TemplateError> {
    struct Bounded {
        out: Vec<u8>,
        max: usize,
    }
    impl Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.out.len() + buf.len() > self.max {
                return Err(std::io::Error::other("over the output bound"));
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = Bounded {
        out: Vec::new(),
        max,
    };
    serde_json::to_writer(&mut writer, value).map_err(|_| {
        TemplateError(format!(
            "the result is larger than the output bound of {}; make the expression give less",
            super::describe_bytes(max as u64)
        ))
    })?;
    Ok(writer.out)
}

/// The longest error message sent (a failing expression may quote a lot of data).
pub const MAX_MESSAGE: usize = 64 * 1024;

fn shortened(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE {
        return message.into();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end]).into()
}

fn send(output: &mut File, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let (cpu_ns, rss) = usage();
    output.write_all(&protocol::answer(kind, cpu_ns, rss, payload))
}

/// This process's CPU time (ns) and peak resident memory (bytes).
fn usage() -> (u64, u64) {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let ns = |t: nix::sys::time::TimeVal| {
                (t.tv_sec().max(0) as u64) * 1_000_000_000 + (t.tv_usec().max(0) as u64) * 1000
            };
            let cpu = ns(usage.user_time()) + ns(usage.system_time());
            (cpu, (usage.max_rss().max(0) as u64) * 1024)
        }
        Err(_) => (0, 0),
    }
}

/// Limits the address space to what the process holds now plus `memory`; no core files (a
/// worker killed by a signal must not write its memory to disk), no files written.
fn limit_self(memory: u64) -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let size_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmSize in /proc/self/status")?;
    let limit = (size_kib * 1024).saturating_add(memory);
    setrlimit(Resource::RLIMIT_AS, limit, limit)
        .map_err(|e| format!("cannot limit its memory: {e}"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("cannot turn off cores: {e}"))?;
    setrlimit(Resource::RLIMIT_FSIZE, 0, 0)
        .map_err(|e| format!("cannot forbid writing files: {e}"))?;
    lower_priority();
    Ok(())
}

/// Nice 5: the server and functions come first when CPUs are busy.
fn lower_priority() {
    // SAFETY: `nice` only changes this process's scheduling priority; it takes no pointers
    // and its failure (reported as -1 with errno) changes nothing, so ignoring it is sound.
    unsafe {
        libc::nice(5);
    }
}

/// Sets the CPU-time limit to the time used so far plus twice the job's bound (rounded up
/// to whole seconds): past it the kernel ends the worker (SIGXCPU). The server stops a job at its bound long before; this holds even without it.
fn cpu_backstop(cpu_time: Duration) {
    let (used_ns, _) = usage();
    let used = Duration::from_nanos(used_ns);
    let soft = (used + cpu_time * 2).as_secs() + 1;
    // Only the soft limit: an unprivileged process could not raise a lowered hard limit for
    // its next job.
    let _ = setrlimit(Resource::RLIMIT_CPU, soft, RLIM_INFINITY);
}
