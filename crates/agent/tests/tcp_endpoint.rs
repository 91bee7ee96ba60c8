//! The agent binary serving the platform on TCP as well as on its socket: every route needs the
//! instance's secret as a bearer token (401 with a JSON error otherwise), the secret comes from
//! the config file only, and it shows up in no answer and no line the agent prints.

mod support;

use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::{InvokeOutcome, InvokeStatus, ReadyReport};
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use support::{free_port, Options, TestAgent, DEADLINE};

const SECRET: &str = "tcp-secret-7d1f0c9a-44be-4b8e";

async fn tcp_agent(port: u16) -> TestAgent {
    let agent = TestAgent::start_with(Options {
        config: json!({
            "tcp_listen": format!("127.0.0.1:{port}"),
            "tcp_secret": SECRET,
        }),
        capture_stdio: true,
        ..Options::default()
    })
    .await;
    wait_for_port(port).await;
    agent
}

async fn wait_for_port(port: u16) {
    for _ in 0..2000 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the agent never listened on TCP port {port}");
}

/// Every platform route, with `authorization` as its header (if any).
fn routes(authorization: Option<&str>) -> Vec<(&'static str, Request<Full<Bytes>>)> {
    let build = |method: Method, uri: &str| {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder
    };
    vec![
        (
            "ready",
            build(Method::GET, "http://agent/v1/ready")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        ),
        (
            "invoke",
            build(Method::POST, "http://agent/v1/invoke")
                .header("faasbox-action-id", "echo-unauth")
                .header("faasbox-deadline", DEADLINE)
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        ),
        (
            "cancel",
            build(Method::POST, "http://agent/v1/cancel?aid=echo-unauth")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        ),
        (
            "unknown path",
            build(Method::GET, "http://agent/nothing-here")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_needs_the_secret_on_every_route() {
    let port = free_port();
    let agent = tcp_agent(port).await;

    let wrong_length = format!("Bearer {SECRET}x");
    let one_byte_off = format!("Bearer {}X", &SECRET[..SECRET.len() - 1]);
    let bare = SECRET.to_string();
    let refused: [Option<&str>; 6] = [
        None,
        Some("Bearer "),
        Some(&wrong_length),
        Some(&one_byte_off),
        Some(&bare),
        Some("Basic dXNlcjpwYXNz"),
    ];
    for authorization in refused {
        for (route, request) in routes(authorization) {
            let (status, body) = agent.request_tcp(port, request).await;
            let text = String::from_utf8_lossy(&body);
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{route} with {authorization:?}: {text}"
            );
            let error: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{route}: not JSON ({e}): {text}"));
            assert_eq!(error["error"], "unauthorized", "{text}");
            assert!(!text.contains(&SECRET[..8]), "{route}: {text}");
        }
    }
    // Nothing got through: the refused invoke never reached the function.
    assert!(agent.state_lines("started").is_empty());

    // With the secret: ready, invoke and cancel work over TCP.
    let bearer = format!("Bearer {SECRET}");
    let mut requests = routes(Some(&bearer)).into_iter();
    let (_, ready) = requests.next().unwrap();
    let (status, body) = agent.request_tcp(port, ready).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let report: ReadyReport = serde_json::from_slice(&body).unwrap();
    assert!(report.ready, "{report:?}");

    let invoke = Request::post("http://agent/v1/invoke")
        .header("authorization", &bearer)
        .header("faasbox-action-id", "echo-tcp")
        .header("faasbox-deadline", DEADLINE)
        .body(Full::new(Bytes::from_static(br#"{"over":"tcp"}"#)))
        .unwrap();
    let (status, body) = agent.request_tcp(port, invoke).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let outcome: InvokeOutcome = serde_json::from_slice(&body).unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    assert_eq!(outcome.output.unwrap().get(), r#"{"over":"tcp"}"#);

    let (_, cancel) = requests.nth(1).unwrap();
    let (status, _) = agent.request_tcp(port, cancel).await;
    assert_eq!(status, StatusCode::OK);
    let (_, unknown) = requests.next().unwrap();
    assert_eq!(
        agent.request_tcp(port, unknown).await.0,
        StatusCode::NOT_FOUND
    );

    // The socket still needs no secret.
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    assert_eq!(
        agent.invoke("echo-socket", "[1]").await.status,
        InvokeStatus::Ok
    );

    let mut agent = agent;
    agent.stop();
    for stream in ["stdout", "stderr"] {
        let printed = agent.stdio(stream);
        assert!(!printed.contains(SECRET), "{stream}: {printed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_without_a_secret_in_the_config_refuses_to_start() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.json");
    for (secret, problem) in [
        (None, "needs `tcp_secret`"),
        (Some("tiny-secret"), "too short"),
    ] {
        let mut text = json!({"contract": "cmd", "command": []});
        if let Some(secret) = secret {
            text["tcp_secret"] = json!(secret);
        }
        std::fs::write(&config, text.to_string()).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_faasbox-agent"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(dir.path().join("agent.sock"))
            .arg("--tcp")
            .arg(format!("127.0.0.1:{port}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(problem), "{stderr}");
        assert!(!stderr.contains("tiny-secret"), "{stderr}");
    }
}
