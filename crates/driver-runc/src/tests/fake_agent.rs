//! A stand-in for the real agent, so the driver's start/ready/invoke path can be tested with
//! real containers while the agent is written elsewhere.
//!
//! The unit test executable is a static binary; a test bind-mounts it as the "agent" and runs
//! it with [`args`], which make libtest run only [`fake_agent_main`] (an ignored test that does
//! nothing unless `FAASBOX_FAKE_AGENT=1`). It then serves the agent protocol on
//! `/.faasbox/sock/agent.sock`, through the protocol serving it shares with the fake driver
//! ([`faasbox_driver::fake::protocol`]):
//!
//! - `GET /v1/ready`: 200 ready, or 503 with the error in `FAKE_AGENT_FAIL_READY`.
//! - `POST /v1/invoke`: echoes the input as output; an input `{"sh": "..."}` runs that shell
//!   command in the container instead and answers `{"status": N, "stdout": "..."}`.
//! - `POST /v1/cancel`: an empty report.

use std::sync::Arc;

use async_trait::async_trait;
use faasbox_proto::{
    AgentConfig, CancelReport, InvokeOutcome, InvokeStatus, LogLine, LogStream, ReadyReport,
    AGENT_CONFIG_NAME, AGENT_SOCKET_NAME, CONTAINER_CONTROL_DIR, CONTAINER_SOCKET_DIR,
};
use serde_json::value::RawValue;

use faasbox_driver::fake::echo;
use faasbox_driver::fake::protocol::{self, agent_line, now_ms, AgentHandler, InvokeRequest};

const ENABLE: &str = "FAASBOX_FAKE_AGENT";
const FAIL_READY: &str = "FAKE_AGENT_FAIL_READY";

/// argv of the container process that runs the fake agent (the test binary is mounted at the
/// agent's path).
pub(crate) fn args() -> Vec<String> {
    [
        faasbox_proto::CONTAINER_AGENT_PATH,
        "tests::fake_agent::fake_agent_main",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]
    .map(str::to_string)
    .to_vec()
}

/// Environment that switches the fake agent on.
pub(crate) fn env() -> Vec<String> {
    vec![format!("{ENABLE}=1")]
}

/// Environment that makes the fake agent report a failed start.
pub(crate) fn fail_ready_env(message: &str) -> String {
    format!("{FAIL_READY}={message}")
}

#[test]
#[ignore = "the fake agent inside test containers, not a test"]
fn fake_agent_main() {
    if std::env::var(ENABLE).as_deref() != Ok("1") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(serve());
}

async fn serve() {
    let dir = std::path::Path::new(CONTAINER_CONTROL_DIR);
    let config: AgentConfig = serde_json::from_slice(
        &std::fs::read(dir.join(AGENT_CONFIG_NAME)).expect("agent.json readable"),
    )
    .expect("agent.json valid");
    println!("fake agent: contract {}", config.contract.as_str());
    let socket = std::path::Path::new(CONTAINER_SOCKET_DIR).join(AGENT_SOCKET_NAME);
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind agent.sock");
    println!("fake agent: listening on {}", socket.display());
    protocol::serve(listener, Arc::new(InContainer)).await;
}

/// The answers of the fake agent inside a container.
struct InContainer;

#[async_trait]
impl AgentHandler for InContainer {
    async fn ready(&self) -> Option<ReadyReport> {
        Some(match std::env::var(FAIL_READY) {
            Ok(message) => ReadyReport {
                ready: false,
                error: Some(message),
                logs: vec![LogLine {
                    ts_ms: now_ms(),
                    stream: LogStream::Stderr,
                    line: "fake function: cannot start".into(),
                }],
            },
            Err(_) => ReadyReport {
                ready: true,
                error: None,
                logs: vec![],
            },
        })
    }

    async fn invoke(&self, call: InvokeRequest) -> Option<InvokeOutcome> {
        Some(invoke(&call))
    }

    async fn cancel(&self, _action_id: &str) -> Option<CancelReport> {
        Some(CancelReport::default())
    }
}

fn invoke(call: &InvokeRequest) -> InvokeOutcome {
    let logs = vec![agent_line(format!(
        "aid={} deadline={}",
        call.action_id, call.deadline
    ))];
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&call.input).ok();
    let output = match parsed
        .as_ref()
        .and_then(|v| v.get("sh"))
        .and_then(|v| v.as_str())
    {
        Some(command) => {
            let result = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .output();
            let value = match result {
                Ok(out) => serde_json::json!({
                    "status": out.status.code(),
                    "stdout": String::from_utf8_lossy(&out.stdout),
                    "stderr": String::from_utf8_lossy(&out.stderr),
                }),
                Err(e) => serde_json::json!({"status": null, "stderr": e.to_string()}),
            };
            RawValue::from_string(value.to_string()).ok()
        }
        None => echo(&call.input),
    };
    InvokeOutcome {
        status: InvokeStatus::Ok,
        output,
        code: None,
        message: None,
        logs,
    }
}
