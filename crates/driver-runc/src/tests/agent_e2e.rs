//! End to end with the real agent (`faasbox-agent`, built by `cargo build -p faasbox-agent`):
//! a Direktiv HTTP function made of busybox httpd and a CGI echo script, started with
//! [`Driver::start`] and called through [`AgentClient`]. Without the agent binary built it
//! fails under `CI` and is reported skipped elsewhere.

use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::InvokeStatus;

use faasbox_test_registry::agent_binary;

use super::fixtures::{fixture_with_agent, runsc_available, spec, Fixture};
use faasbox_driver::{AgentClient, Driver, RuntimeClass};

/// A fixture whose driver runs the real agent; `None` (with a notice) when it is not built
/// or containers cannot run here.
pub(crate) fn real_agent_fixture() -> Option<Fixture> {
    let Some(agent) = agent_binary() else {
        faasbox_test_registry::cannot_run(
            "the agent binary is not built (run `cargo build -p faasbox-agent` or set \
             FAASBOX_AGENT_BINARY)",
        );
        return None;
    };
    fixture_with_agent(agent)
}

async fn echo_round_trip(runtime: RuntimeClass) {
    let Some(fx) = real_agent_fixture() else {
        return;
    };
    let mut spec = spec(&fx, runtime, false);
    spec.env = vec![];
    spec.agent.command = ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]
        .map(str::to_string)
        .to_vec();
    let instance = fx
        .driver
        .start(spec)
        .await
        .expect("start with the real agent");
    let client = AgentClient::at(instance.endpoint.clone());
    assert!(client.ready().await.unwrap().ready);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let call = client.invoke(
        "e2e-1",
        "2099-01-01T00:00:00Z",
        Bytes::from_static(br#"{"hello":"world"}"#),
    );
    let Ok(outcome) = tokio::time::timeout(Duration::from_secs(30), call).await else {
        let log = fx.driver.instance_path(&instance.id, "agent.log");
        panic!(
            "no answer to invoke within 30s; agent log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    let outcome = outcome.expect("invoke");
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    let output: serde_json::Value =
        serde_json::from_str(outcome.output.expect("output").get()).unwrap();
    assert_eq!(output, serde_json::json!({"hello": "world"}));
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(fx.driver.all_traces().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agent_http_echo_with_runc() {
    echo_round_trip(RuntimeClass::Standard).await;
}

/// Under runsc the driver tells the agent to use blocking loopback TCP (gVisor's netstack
/// loses epoll wakeups, which once made the first invoke hang); this calls after a pause, when
/// the hang was most likely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agent_http_echo_with_runsc() {
    if !runsc_available() {
        return;
    }
    echo_round_trip(RuntimeClass::Sandboxed).await;
}

/// One raw HTTP/1.1 request over the agent's Unix socket: (status, body).
fn raw_request(socket: &std::path::Path, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect to agent");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// OpenWhisk's action-proxy protocol, spoken by the real agent inside a real container: the
/// exact status codes and error strings clients depend on, the `__OW_*` environment, and one
/// sentinel per stream per activation in the container's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agent_openwhisk_proxy_in_a_container() {
    let Some(fx) = real_agent_fixture() else {
        return;
    };
    let mut spec = spec(&fx, RuntimeClass::Standard, false);
    spec.env = vec!["PATH=/bin".into()];
    spec.agent.contract = faasbox_proto::Contract::Openwhisk;
    spec.agent.command = Vec::new();
    spec.agent.function = "demo/act".into();
    // No code and no /action/exec yet: the proxy waits for its /init (and reports not ready
    // until then), so start without waiting for readiness.
    let options = crate::StartOptions {
        args: None,
        wait_ready: false,
    };
    let instance = fx.driver.start_with(spec, options).await.expect("start");
    let socket = instance
        .socket_path()
        .expect("the runc driver reaches its agent over a Unix socket")
        .to_path_buf();
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = socket.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        raw_request(&s, "POST", "/run", r#"{"value":{"a":1}}"#)
    })
    .await
    .unwrap();
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body.trim(),
        r#"{"error":"The action failed to locate a binary. See logs for details."}"#
    );
    let code = "#!/bin/sh\necho \"log before result\"\necho \"{\\\"arg\\\": $1, \\\"ns\\\": \\\"$__OW_NAMESPACE\\\", \\\"action\\\": \\\"$__OW_ACTION_NAME\\\", \\\"activation\\\": \\\"$__OW_ACTIVATION_ID\\\", \\\"tx\\\": \\\"$__OW_TRANSACTION_ID\\\", \\\"deadline\\\": \\\"$__OW_DEADLINE\\\", \\\"key\\\": \\\"$__OW_API_KEY\\\", \\\"custom\\\": \\\"$CUSTOM\\\", \\\"pwd\\\": \\\"$(pwd)\\\"}\"\n";
    let init = serde_json::json!({"value": {"code": code, "binary": false, "main": "main", "env": {"CUSTOM": "from-init"}}}).to_string();
    let s = socket.clone();
    let init2 = init.clone();
    let (status, body) =
        tokio::task::spawn_blocking(move || raw_request(&s, "POST", "/init", &init2))
            .await
            .unwrap();
    assert_eq!(status, 200, "{body}");
    let s = socket.clone();
    let (status, body) =
        tokio::task::spawn_blocking(move || raw_request(&s, "POST", "/init", &init))
            .await
            .unwrap();
    assert_eq!(status, 403);
    assert_eq!(
        body.trim(),
        r#"{"error":"Cannot initialize the action more than once."}"#
    );
    let s = socket.clone();
    let (status, body) =
        tokio::task::spawn_blocking(move || raw_request(&s, "POST", "/run", r#"{"value":5}"#))
            .await
            .unwrap();
    assert_eq!(status, 404);
    assert_eq!(
        body.trim(),
        r#"{"error":"The action did not receive a dictionary or array as an argument."}"#
    );
    let run = serde_json::json!({
        "value": {"snow": "❄ ☃ ❄"}, "namespace": "ns1", "action_name": "/ns1/act",
        "activation_id": "act-1", "transaction_id": "tx-1", "deadline": "4102444800000", "api_key": "k:v"
    })
    .to_string();
    let s = socket.clone();
    let (status, body) = tokio::task::spawn_blocking(move || raw_request(&s, "POST", "/run", &run))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let result: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(result["arg"], serde_json::json!({"snow": "❄ ☃ ❄"}));
    assert_eq!(result["ns"], "ns1");
    assert_eq!(result["action"], "/ns1/act");
    assert_eq!(result["activation"], "act-1");
    assert_eq!(result["tx"], "tx-1");
    assert_eq!(result["deadline"], "4102444800000");
    assert_eq!(result["key"], "k:v");
    assert_eq!(result["custom"], "from-init");
    assert_eq!(result["pwd"], "/action");
    // Three /run requests so far (no binary, not a dictionary, this one): as OpenWhisk's proxy
    // does, each ends with one sentinel per stream; the /init answers add none.
    // The sentinels may reach the file just after the answer: give them a moment, then make
    // sure no extra one follows.
    let log = fx.driver.instance_path(&instance.id, "agent.log");
    let count = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (
            text.matches("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX")
                .count(),
            text,
        )
    };
    for _ in 0..50 {
        if count().0 >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // No seventh sentinel may follow: watched for a stated second (each one is written
    // within milliseconds of its activation's end).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sentinels, text) = count();
    fx.driver.stop(&instance.id).await.unwrap();
    // stdout and stderr both land in agent.log.
    assert_eq!(sentinels, 6, "{text}");
}

/// The agent (one per instance) and faasbox-oci (executed per container command) are static
/// executables at a fixed position (scripts/rustc-wrapper.sh): a position-independent one
/// relocates itself at every start, which dirties each page of its relocated data (73 KiB of
/// private memory per idle agent) and costs faasbox-oci about 0.3 ms per command.
#[test]
fn the_agent_and_faasbox_oci_are_static_executables_at_a_fixed_position() {
    let binaries = [
        ("faasbox-agent", agent_binary()),
        ("faasbox-oci", faasbox_test_registry::oci_binary()),
    ];
    for (name, binary) in binaries {
        let Some(binary) = binary else {
            faasbox_test_registry::cannot_run(&format!(
                "{name} is not built (cargo build --workspace --bins)"
            ));
            return;
        };
        let elf = std::fs::read(&binary).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF", "{}", binary.display());
        let half = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
        // e_type: 2 is an executable at a fixed address, 3 a position-independent one.
        assert_eq!(half(16), 2, "{} is position-independent", binary.display());
        let table = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
        let (entry_size, entries) = (usize::from(half(54)), usize::from(half(56)));
        for index in 0..entries {
            let at = table + index * entry_size;
            let kind = u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
            // PT_DYNAMIC (2) or PT_INTERP (3): it would need a dynamic loader.
            assert!(
                kind != 2 && kind != 3,
                "{} is dynamically linked",
                binary.display()
            );
        }
    }
}
