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
            if last_state_check.elapsed() >= Duration::from_millis(200) {
                last_state_check = Instant::now();
                match cli.state(id).await? {
                    Some(state) if state.status == "running" || state.status == "created" => {}
                    state => {
                        let state = state.map_or_else(|| "gone".into(), |s| s.status);
                        return Err(not_ready(
                            format!(": the agent exited before it was ready (container {state})"),
                            last_report.as_ref(),
                        ));
                    }
                }
            }
            tokio::time::sleep(pause_after(began.elapsed())).await;
        }
    }
}

/// How long to wait before looking again, `waited` after the container started: 1 ms for the
/// first 100 ms (the usual start), then backing off to 50 ms for a slow one.
fn pause_after(waited: Duration) -> Duration {
    if waited < Duration::from_millis(100) {
        Duration::from_millis(1)
    } else {
        (waited / 10).min(Duration::from_millis(50))
    }
}
