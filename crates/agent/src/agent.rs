//! Wiring the agent together and living as PID 1: start the reaper, the contract (and with it
//! the function process), the platform socket (and TCP listener, when configured); forward `SIGTERM`/`SIGINT` to the function and
//! exit once it has.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use faasbox_proto::AgentConfig;
use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};

use crate::calls::Calls;
use crate::contract::{AgentContract, Shared};
use crate::idle;
use crate::logs::LogHub;
use crate::platform_api::{self, PlatformApi};
use crate::reaper::Reaper;

/// Runs the agent; returns the exit status once asked to stop.
///
/// Must be the future the runtime blocks on (it runs on the main thread; see
/// [`crate::process::FunctionProcess::spawn`]).
pub async fn run(
    config: AgentConfig,
    socket: &Path,
    action_dir: PathBuf,
    started: Instant,
) -> io::Result<i32> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let reaper = Reaper::start()?;
    let logs = Arc::new(LogHub::new());
    let listener = platform_api::bind(socket)?;
    let tcp = match (config.tcp_listen, config.tcp_secret.clone()) {
        (Some(addr), Some(secret)) => Some((platform_api::bind_tcp(addr).await?, secret)),
        _ => None,
    };

    let contract = AgentContract::start(Shared {
        config: Arc::new(config),
        logs: Arc::clone(&logs),
        reaper,
        started,
        action_dir,
    })
    .await?;
    let api = Arc::new(PlatformApi {
        contract,
        calls: Calls::new(Arc::clone(&logs)),
        logs,
    });
    tokio::spawn(idle::run(api.calls.idle_signals()));
    tokio::spawn(platform_api::serve(listener, Arc::clone(&api)));
    if let Some((listener, secret)) = tcp {
        tokio::spawn(platform_api::serve_tcp(listener, secret, Arc::clone(&api)));
    }

    // Wait for the first stop signal, then pass every stop signal on until the function is gone.
    let mut received = tokio::select! {
        _ = sigterm.recv() => Signal::SIGTERM,
        _ = sigint.recv() => Signal::SIGINT,
    };
    let Some(process) = api.contract.function_process() else {
        return Ok(0);
    };
    loop {
        process.signal(received);
        received = tokio::select! {
            exit = process.wait_exit() => {
                process.kill_group();
                return Ok(exit.agent_exit_code());
            }
            _ = sigterm.recv() => Signal::SIGTERM,
            _ = sigint.recv() => Signal::SIGINT,
        };
    }
}
