//! The platform's [`AgentClient`] and the real agent binary (`cargo build -p faasbox-agent`)
//! over TCP, outside any container: the client presents the instance's secret and gets served;
//! a client with another secret gets 401, and neither secret shows in an error. Needs no root.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::{AgentEndpoint, AgentSecret, InvokeStatus};

use faasbox_test_registry::agent_binary;

use crate::agent_client::AgentClient;
use crate::error::AgentError;

const SECRET: &str = "runtime-tcp-secret-1f6c2a9e";

/// Kills the agent when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_client_reaches_the_real_agent_over_tcp() {
    let Some(binary) = agent_binary() else {
        faasbox_test_registry::cannot_run(
            "the agent binary is not built (run `cargo build -p faasbox-agent` or set \
             FAASBOX_AGENT_BINARY)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("agent.json");
    let text = serde_json::json!({
        "contract": "cmd",
        "command": [],
        "temp_root": dir.path().join("calls"),
        "tcp_listen": addr,
        "tcp_secret": SECRET,
    });
    std::fs::write(&config, text.to_string()).unwrap();
    let _agent = Running(
        Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(dir.path().join("agent.sock"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start the agent"),
    );

    let client = AgentClient::at(AgentEndpoint::Tcp {
        addr,
        secret: AgentSecret::new(SECRET),
    });
    let mut ready = client.ready().await;
    for _ in 0..400 {
        if !matches!(&ready, Err(e) if e.is_connect()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        ready = client.ready().await;
    }
    assert!(ready.expect("ready over TCP").ready);
    let input = serde_json::json!({"data": {"commands": [{"command": "echo -n over-tcp"}]}});
    let outcome = client
        .invoke(
            "tcp-1",
            "2099-01-01T00:00:00Z",
            Bytes::from(input.to_string()),
        )
        .await
        .expect("invoke over TCP");
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    assert!(
        outcome.output.as_ref().unwrap().get().contains("over-tcp"),
        "{outcome:?}"
    );

    let intruder = AgentClient::at(AgentEndpoint::Tcp {
        addr,
        secret: AgentSecret::new("some-other-secret-entirely"),
    });
    for err in [
        intruder.ready().await.unwrap_err(),
        intruder
            .invoke(
                "tcp-2",
                "2099-01-01T00:00:00Z",
                Bytes::from(input.to_string()),
            )
            .await
            .unwrap_err(),
        intruder.cancel("tcp-1").await.unwrap_err(),
    ] {
        let message = err.to_string();
        assert!(
            matches!(&err, AgentError::Status { status, .. } if *status == 401),
            "{message}"
        );
        assert!(!message.contains(SECRET), "{message}");
        assert!(!message.contains("some-other-secret"), "{message}");
    }
}
