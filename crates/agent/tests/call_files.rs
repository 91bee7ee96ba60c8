//! The agent binary placing a call's files (`faasbox-call-files: 1` and a `CallEnvelope` body)
//! before a direktiv-cmd call runs: plain files and archives, owned by the function's user,
//! gone with the call's directory; bad names and malformed envelopes refused.

mod support;

use std::io::Write;

use base64::Engine as _;
use bytes::Bytes;
use faasbox_proto::{InvokeOutcome, InvokeStatus, CODE_CALL_FILES, HEADER_CALL_FILES};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use support::{assert_path_gone, Options, TestAgent, DEADLINE};

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A tar.gz holding `run.sh` (0755).
fn script_archive() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let script = b"#!/bin/sh\necho -n from-the-archive\n";
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o755);
    header.set_size(script.len() as u64);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "run.sh", &script[..])
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// Sends `body` as a call envelope; (status, body).
async fn invoke_envelope(
    agent: &TestAgent,
    aid: &str,
    header: &str,
    body: Value,
) -> (StatusCode, Bytes) {
    let request = Request::post("http://agent/v1/invoke")
        .header("faasbox-action-id", aid)
        .header("faasbox-deadline", DEADLINE)
        .header(HEADER_CALL_FILES, header)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    agent.request(request).await
}

async fn invoke_with_files(agent: &TestAgent, aid: &str, body: Value) -> InvokeOutcome {
    let (status, body) = invoke_envelope(agent, aid, "1", body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_placed_for_the_commands_and_belong_to_the_user() {
    let root = nix::unistd::Uid::effective().is_root();
    let agent = TestAgent::start_with(Options {
        contract: "cmd",
        command: Some(vec![]),
        user: root.then(|| json!({"uid": 65534, "gid": 65534})),
        ..Options::default()
    })
    .await;
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let envelope = json!({
        "files": [
            {"name": "in/plain.txt", "kind": "file", "data": encode(b"plain-content")},
            {"name": "tools", "kind": "tar.gz", "data": encode(&script_archive())},
        ],
        "input": {"commands": [
            {"command": "cat in/plain.txt"},
            {"command": "./tools/run.sh"},
            {"command": "stat -c %u:%a in/plain.txt"},
        ]},
    });
    let outcome = invoke_with_files(&agent, "files-1", envelope).await;
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    let output: Value = serde_json::from_str(outcome.output.unwrap().get()).unwrap();
    let owner = if root {
        "65534:644"
    } else {
        &format!("{}:644", nix::unistd::getuid())
    };
    assert_eq!(
        output,
        json!([
            {"Error": "", "Output": "plain-content"},
            {"Error": "", "Output": "from-the-archive"},
            {"Error": "", "Output": format!("{owner}\n")},
        ])
    );
    assert_path_gone(&agent.temp_root.join("files-1"));

    // A name leaving the directory: the catchable files error, nothing run.
    let envelope = json!({
        "files": [{"name": "../escape", "kind": "file", "data": encode(b"x")}],
        "input": {"commands": [{"command": "touch ran"}]},
    });
    let outcome = invoke_with_files(&agent, "files-2", envelope).await;
    assert_eq!(outcome.status, InvokeStatus::Error, "{outcome:?}");
    assert_eq!(outcome.code.as_deref(), Some(CODE_CALL_FILES));
    let message = outcome.message.unwrap();
    assert!(message.contains("file '../escape'"), "{message}");
    assert!(!agent.temp_root.join("escape").exists());
    assert_path_gone(&agent.temp_root.join("files-2"));

    // Malformed: a body that is no envelope, a header that is not 1.
    let (status, body) = invoke_envelope(&agent, "files-3", "1", json!({"commands": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("not a call envelope"));
    let envelope = json!({"files": [], "input": {"commands": []}});
    let (status, _) = invoke_envelope(&agent, "files-4", "yes", envelope).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
