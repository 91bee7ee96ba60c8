//! Running expressions where they cannot hurt the server. jaq cannot be interrupted from
//! outside and Rust cannot recover from a failed allocation, so an expression that loops
//! (`def f: f; f`), allocates without end (`[range(1e12)]`) or recurses too deeply would
//! take the thread, the memory or the whole process running it. Expressions therefore run in
//! worker processes (the `faasbox` binary started again as `faasbox expr-worker`): each
//! worker sets its own memory limit before it reads a job, the server measures each job's
//! CPU time and kills the worker past the bound, and a cancelled job kills its worker too.
//! A killed or dead worker is replaced by a new one; the failure is the job's
//! `direktiv.jq.badCommand` error naming the bound.
//!
//! [`Evaluator`] is the front: plain paths are resolved in place ([`crate::fast`]); the rest
//! goes to [`pool::Pool`] (or, in tests of the engine, runs in this process without bounds).
//! [`protocol`] is what the server and a worker exchange, [`worker`] the worker's side.

pub mod pool;
pub mod protocol;
pub mod worker;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::TemplateError;
use protocol::Op;

/// The bounds of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU time one job may use (a template's expressions together).
    pub cpu_time: Duration,
    /// Memory a worker may allocate beyond what it holds when idle (the job's data included).
    pub memory: u64,
    /// The largest result, as JSON text.
    pub max_output: usize,
    /// Workers running at once (jobs beyond wait for one).
    pub workers: usize,
}

/// The default CPU time per evaluation.
pub const DEFAULT_CPU_TIME: Duration = Duration::from_secs(1);
/// The default memory per worker.
pub const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;
/// The default largest result.
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            cpu_time: DEFAULT_CPU_TIME,
            memory: DEFAULT_MEMORY,
            max_output: DEFAULT_MAX_OUTPUT,
            workers: default_workers(),
        }
    }
}

/// One worker per CPU, at least two.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// How to start a worker: a program and the arguments that make it one (the limits are
/// added by the pool). The server uses its own binary: `/proc/self/exe expr-worker`.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// The arguments that make it a worker (`expr-worker`).
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// This process's own executable, started as `faasbox expr-worker`.
    pub fn this_executable() -> WorkerCommand {
        WorkerCommand {
            program: PathBuf::from("/proc/self/exe"),
            args: vec![worker::SUBCOMMAND.into()],
        }
    }
}

/// Why an evaluation gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The expression failed, or went past a bound: `direktiv.jq.badCommand`.
    #[error("{0}")]
    Expr(TemplateError),
    /// The caller cancelled it (its worker was stopped).
    #[error("the evaluation was cancelled")]
    Cancelled,
    /// No worker could run it: the platform's failure, not the expression's.
    #[error("expressions cannot be evaluated now: {0}")]
    Unavailable(String),
}

impl From<TemplateError> for EvalError {
    fn from(e: TemplateError) -> EvalError {
        EvalError::Expr(e)
    }
}

/// Evaluates templates and expressions, bounded (see the module documentation). Cheap to
/// clone; clones share the workers.
#[derive(Clone)]
pub struct Evaluator {
    mode: Arc<Mode>,
}

enum Mode {
    InProcess,
    Sandboxed(pool::Pool),
}

impl Evaluator {
    /// Evaluates in this process on tokio's blocking threads, bounded only in parsing: for
    /// tests and tools that run trusted expressions, never for the server.
    pub fn in_process() -> Evaluator {
        Evaluator {
            mode: Arc::new(Mode::InProcess),
        }
    }

    /// Evaluates in worker processes started with `command`, within `limits`. Workers start
    /// when first needed; [`Evaluator::warm_up`] starts one ahead.
    pub fn sandboxed(command: WorkerCommand, limits: Limits) -> Evaluator {
        Evaluator {
            mode: Arc::new(Mode::Sandboxed(pool::Pool::new(command, limits))),
        }
    }

    /// Starts a worker now, so the first evaluation does not wait for one.
    pub async fn warm_up(&self) -> Result<(), EvalError> {
        match &*self.mode {
            Mode::InProcess => Ok(()),
            Mode::Sandboxed(pool) => pool.warm_up().await,
        }
    }

    /// The bounds, if sandboxed.
    pub fn limits(&self) -> Option<Limits> {
        match &*self.mode {
            Mode::InProcess => None,
            Mode::Sandboxed(pool) => Some(pool.limits()),
        }
    }

    /// Renders a template (see [`crate::render`]). `cancel` stops it at once.
    pub async fn render(
        &self,
        template: &Value,
        data: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, EvalError> {
        if let Some(value) = crate::fast::render(template, data) {
            return Ok(value);
        }
        self.run(Op::Render, template, Data::Value(data), cancel)
            .await
    }

    /// Evaluates a bare expression or a template (see [`crate::evaluate`]).
    pub async fn evaluate(
        &self,
        value: &Value,
        data: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, EvalError> {
        if let Some(value) = crate::fast::evaluate(value, data) {
            return Ok(value);
        }
        self.run(Op::Evaluate, value, Data::Value(data), cancel)
            .await
    }

    /// Renders a template against data given as JSON text (a request body, say, spliced
    /// into a larger object without parsing it again). Callers have checked the text is JSON.
    pub async fn render_text(
        &self,
        template: &Value,
        data: &[u8],
        cancel: &CancellationToken,
    ) -> Result<Value, EvalError> {
        self.run(Op::Render, template, Data::Text(data), cancel)
            .await
    }

    async fn run(
        &self,
        op: Op,
        template: &Value,
        data: Data<'_>,
        cancel: &CancellationToken,
    ) -> Result<Value, EvalError> {
        match &*self.mode {
            Mode::Sandboxed(pool) => {
                let text;
                let data = match data {
                    Data::Text(text) => text,
                    Data::Value(value) => {
                        text = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(|e| {
                            EvalError::Expr(TemplateError(format!("bad template data: {e}")))
                        })?);
                        text.as_slice()
                    }
                };
                pool.run(op, template, data, cancel).await
            }
            Mode::InProcess => {
                let data = match data {
                    Data::Value(value) => value.clone(),
                    Data::Text(text) => serde_json::from_slice(text).map_err(|e| {
                        EvalError::Expr(TemplateError(format!("bad template data: {e}")))
                    })?,
                };
                let template = template.clone();
                let job = tokio::task::spawn_blocking(move || {
                    crate::on_compile_stack(|| match op {
                        Op::Render => crate::render(&template, &data),
                        Op::Evaluate => crate::evaluate(&template, &data),
                    })
                });
                tokio::select! {
                    done = job => match done {
                        Ok(result) => result.map_err(EvalError::Expr),
                        Err(e) => Err(EvalError::Unavailable(format!("the evaluation failed: {e}"))),
                    },
                    () = cancel.cancelled() => Err(EvalError::Cancelled),
                }
            }
        }
    }
}

enum Data<'a> {
    Value(&'a Value),
    Text(&'a [u8]),
}

/// A size for messages: "512 MiB", "16 KiB", "100 bytes" (shared by the pool and the worker,
/// so neither reaches into the other).
pub fn describe_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n & (size - 1) == 0 {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}
