//! A stand-in for the real agent, so the driver's start/ready/invoke path can be tested with
//! real containers while the agent is written elsewhere.
//!
//! The unit test executable is a static binary; a test bind-mounts it as the "agent" and runs
//! it with [`args`], which make libtest run only [`fake_agent_main`] (an ignored test that does
//! nothing unless `FAASBOX_FAKE_AGENT=1`). It then serves the agent protocol on
//! `/.faasbox/sock/agent.sock`:
//!
//! - `GET /v1/ready`: 200 ready, or 503 with the error in `FAKE_AGENT_FAIL_READY`.
//! - `POST /v1/invoke`: echoes the input as output; an input `{"sh": "..."}` runs that shell
//!   command in the container instead and answers `{"status": N, "stdout": "..."}`.
//! - `POST /v1/cancel`: an empty report.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use faasbox_proto::{
    AgentConfig, CancelReport, InvokeOutcome, InvokeStatus, LogLine, LogStream, ReadyReport,
    AGENT_CONFIG_NAME, AGENT_SOCKET_NAME, CONTAINER_CONTROL_DIR, CONTAINER_SOCKET_DIR,
    HEADER_ACTION_ID, HEADER_DEADLINE,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;

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
    let dir = std::path::Path::new(CONTROL_DIR_PATH);
    let config: AgentConfig = serde_json::from_slice(
        &std::fs::read(dir.join(AGENT_CONFIG_NAME)).expect("agent.json readable"),
    )
    .expect("agent.json valid");
    println!("fake agent: contract {}", config.contract.as_str());
    let socket = std::path::Path::new(CONTAINER_SOCKET_DIR).join(AGENT_SOCKET_NAME);
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind agent.sock");
    println!("fake agent: listening on {}", socket.display());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handle);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

const CONTROL_DIR_PATH: &str = CONTAINER_CONTROL_DIR;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn agent_line(text: String) -> LogLine {
    LogLine {
        ts_ms: now_ms(),
        stream: LogStream::Agent,
        line: text,
    }
}

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).expect("serializable");
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = match (method, path.as_str()) {
        (Method::GET, "/v1/ready") => match std::env::var(FAIL_READY) {
            Ok(message) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &ReadyReport {
                    ready: false,
                    error: Some(message),
                    logs: vec![LogLine {
                        ts_ms: now_ms(),
                        stream: LogStream::Stderr,
                        line: "fake function: cannot start".into(),
                    }],
                },
            ),
            Err(_) => json_response(
                StatusCode::OK,
                &ReadyReport {
                    ready: true,
                    error: None,
                    logs: vec![],
                },
            ),
        },
        (Method::POST, "/v1/invoke") => {
            let action = header(HEADER_ACTION_ID);
            let deadline = header(HEADER_DEADLINE);
            let input = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            json_response(StatusCode::OK, &invoke(&action, &deadline, &input))
        }
        (Method::POST, "/v1/cancel") => json_response(StatusCode::OK, &CancelReport::default()),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "no route"}),
        ),
    };
    Ok(response)
}

fn invoke(action: &str, deadline: &str, input: &[u8]) -> InvokeOutcome {
    let logs = vec![agent_line(format!("aid={action} deadline={deadline}"))];
    let parsed: Option<serde_json::Value> = serde_json::from_slice(input).ok();
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
        None => match parsed {
            Some(_) => RawValue::from_string(String::from_utf8_lossy(input).into_owned()).ok(),
            None => RawValue::from_string(
                serde_json::Value::String(String::from_utf8_lossy(input).into_owned()).to_string(),
            )
            .ok(),
        },
    };
    InvokeOutcome {
        status: InvokeStatus::Ok,
        output,
        code: None,
        message: None,
        logs,
    }
}
