//! Waiting for a started instance's agent to report ready.

use std::time::{Duration, Instant};

use faasbox_proto::ReadyReport;

use super::command::RuntimeCli;
use super::layout::InstanceDir;
use super::report::{failure_details, seconds};
use super::Inner;
use faasbox_driver::{AgentClient, AgentError, DriverError};

impl Inner {
    /// Polls the agent's socket (a `stat` each millisecond at first: the agent binds it a few
    /// milliseconds after the runtime returns) until `GET /v1/ready` answers 200, the agent reports it
    /// failed, the container stops, or the deadline passes.
    pub(super) async fn wait_ready(
        &self,
        id: &str,
        dir: &InstanceDir,
        function: &str,
        cli: &RuntimeCli,
        deadline: Instant,
    ) -> Result<(), DriverError> {
        let client = AgentClient::new(dir.socket());
        let socket = dir.socket();
        let began = Instant::now();
        let mut last_state_check = Instant::now();
        let mut last_report: Option<ReadyReport> = None;
        let not_ready = |reason: String, report: Option<&ReadyReport>| DriverError::NotReady {
            function: function.to_string(),
            reason,
            details: failure_details(report, &dir.agent_log()),
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(not_ready(
                    format!(" within {}", seconds(self.config.start_timeout)),
                    last_report.as_ref(),
                ));
            }
            if socket.exists() {
                match tokio::time::timeout(deadline - now, client.ready()).await {
                    Ok(Ok(report)) if report.ready => return Ok(()),
                    Ok(Ok(report)) => {
                        if let Some(error) = report.error.clone() {
                            return Err(not_ready(format!(": {error}"), Some(&report)));
                        }
                        last_report = Some(report);
                    }
                    Ok(Err(AgentError::Connect { .. } | AgentError::Http(_))) => {}
                    Ok(Err(e)) => {
                        return Err(not_ready(
                            format!(": the agent answered wrongly: {e}"),
                            last_report.as_ref(),
                        ))
                    }
                    Err(_) => continue,
                }
            }
            // Whether the container still runs: its init's pid (from the runtime's pid file)
            // is looked up in /proc, which costs no process; the runtime is only asked
            // (`state`, a process of its own) when that does not show it alive, to name
            // the container's state.
            if last_state_check.elapsed() >= Duration::from_millis(200) {
                last_state_check = Instant::now();
                if !init_alive(&dir.init_pid()) {
                    match cli.state(id).await? {
                        Some(state) if state.status == "running" || state.status == "created" => {}
                        state => {
                            let state = state.map_or_else(|| "gone".into(), |s| s.status);
                            return Err(not_ready(
                                format!(
                                    ": the agent exited before it was ready (container {state})"
                                ),
                                last_report.as_ref(),
                            ));
                        }
                    }
                }
            }
            tokio::time::sleep(pause_after(began.elapsed())).await;
        }
    }
}

/// Whether the process whose pid `pid_file` holds exists and is no zombie (`false` also when
/// the file cannot be read).
pub(super) fn init_alive(pid_file: &std::path::Path) -> bool {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
    else {
        return false;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// How long to wait before looking again, `waited` after the container started: 1 ms for the
/// first 100 ms (the usual start), 5 ms up to 2 s (starts slowed down by many others at once:
/// a longer pause would add to each of them, and a look costs one `stat`), then backing off to
/// 50 ms for a slow one.
fn pause_after(waited: Duration) -> Duration {
    if waited < Duration::from_millis(100) {
        Duration::from_millis(1)
    } else if waited < Duration::from_secs(2) {
        Duration::from_millis(5)
    } else {
        (waited / 40).min(Duration::from_millis(50))
    }
}
