//! faasbox-agent: PID 1 inside every faasbox function container.
//!
//! It starts the function, reaps zombies, speaks the function's contract, attributes the
//! function's output to calls, and serves the platform over a Unix socket, and on TCP with a per-instance secret when configured
//! (see `faasbox-proto`).

mod agent;
mod calls;
mod cli;
mod contract;
mod http_util;
mod idle;
mod lines;
mod log_endpoint;
mod logs;
mod pipes;
mod platform_api;
mod process;
mod query;
mod reaper;
mod tcp_bridge;
#[cfg(test)]
mod test_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use faasbox_proto::{AgentConfig, MIN_AGENT_SECRET_LEN};

use crate::cli::Cli;

fn main() -> ExitCode {
    let started = Instant::now();
    let args: Vec<_> = std::env::args_os().collect();
    match cli::parse(&args) {
        Ok(Cli::Serve {
            config,
            socket,
            tcp,
            action_dir,
        }) => serve(&config, &socket, tcp, action_dir, started),
        Ok(Cli::DirektivCmd) => {
            eprintln!(
                "direktiv-cmd runs under faasbox's agent: set `cmd: /usr/share/direktiv/direktiv-cmd` \
                 on the function and faasbox's agent runs the commands of each call itself"
            );
            ExitCode::from(2)
        }
        Ok(Cli::Help) => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("faasbox-agent: {err}\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

/// Makes every thread allocate from the main malloc arena. glibc otherwise gives threads that
/// allocate arenas of their own (each a separate mapping with its own dirty pages), and an
/// idle agent's memory is multiplied by every warm instance on the host; the agent allocates
/// little and rarely at once from several threads.
fn one_malloc_arena() {
    // SAFETY: mallopt changes an allocator setting; called before the runtime starts any
    // thread, so no allocation runs concurrently.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

fn serve(
    config_path: &Path,
    socket: &Path,
    tcp: Option<SocketAddr>,
    action_dir: PathBuf,
    started: Instant,
) -> ExitCode {
    let config = match read_config(config_path).and_then(|config| with_tcp(config, tcp)) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("faasbox-agent: {err}");
            return ExitCode::from(1);
        }
    };
    one_malloc_arena();
    // One thread runs every task: an idle agent is multiplied by every warm instance on the
    // host, and worker threads cost their stacks and the runtime's per-worker state (about
    // 40 KiB of an idle agent's private memory) for no gain in throughput here (measured with
    // the perf bench's throughput section). Blocking work still goes to blocking threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(16)
        // The buffer of readiness events lives as long as the agent (12 bytes an event; the
        // default of 1024 is 12 KiB): 64 a turn is more than an instance's connections at once
        // in the benchmarks (32), and more are taken on the next turn.
        .max_io_events_per_tick(64)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("faasbox-agent: cannot start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    // `block_on` runs `agent::run` on this (the main) thread, which the function process relies
    // on for its parent-death signal.
    let status = match runtime.block_on(agent::run(config, socket, action_dir, started)) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("faasbox-agent: {err}");
            1
        }
    };
    // Do not wait for connections still open; the function is gone.
    runtime.shutdown_background();
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

fn read_config(path: &Path) -> Result<AgentConfig, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("invalid config {}: {e}", path.display()))
}

/// `config` listening on `tcp` if given (overriding its `tcp_listen`), checked: TCP needs a
/// secret of at least [`MIN_AGENT_SECRET_LEN`] bytes in the config file.
fn with_tcp(mut config: AgentConfig, tcp: Option<SocketAddr>) -> Result<AgentConfig, String> {
    if tcp.is_some() {
        config.tcp_listen = tcp;
    }
    if let Some(addr) = config.tcp_listen {
        match &config.tcp_secret {
            None => {
                return Err(format!(
                    "listening on TCP ({addr}) needs `tcp_secret` in the config file: \
                     put a random secret of at least {MIN_AGENT_SECRET_LEN} bytes there"
                ))
            }
            Some(secret) if secret.expose().len() < MIN_AGENT_SECRET_LEN => {
                return Err(format!(
                    "`tcp_secret` in the config file is too short: use a random secret of at \
                     least {MIN_AGENT_SECRET_LEN} bytes"
                ))
            }
            Some(_) => {}
        }
    }
    Ok(config)
}
