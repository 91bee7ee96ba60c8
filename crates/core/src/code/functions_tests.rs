//! Builds of functions from code against the fake driver (its ready check stands in for the
//! agent's import of the handler) and a real image store: the status machine, the answers of
//! calls while a function is not READY, a rebuild and a restart's resume.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use faasbox_driver::fake::FakeReply;
use faasbox_proto::Language;
use faasbox_store::CodeKind;

use super::{get, not_ready, put, CodeFunctionBody, NOT_READY};
use crate::code::base_images::{self, BaseImageBody};
use crate::failure::FailureKind;
use crate::invoker::{invoke, CallRequest};
use crate::state::AppState;
use crate::test_support::{harness, wait_for, Harness};

/// base64 of a tar.gz holding `run.sh`.
fn source(dir: &std::path::Path) -> String {
    let tree = dir.join("src");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("run.sh"), "cat\n").unwrap();
    let archive = dir.join("src.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(archive).unwrap())
}

fn body(source: &str) -> CodeFunctionBody {
    serde_json::from_value(serde_json::json!({
        "image": "sh-base", "handler": "run.sh", "source": source, "timeout": 5000
    }))
    .unwrap()
}

async fn with_base_image(reply: FakeReply) -> Harness {
    let h = harness(
        reply,
        serde_json::json!({"image": "hello", "network": false}),
    )
    .await;
    let base = base_images::create(
        &h.state,
        "ns",
        BaseImageBody {
            name: "sh-base".into(),
            image: "hello".into(),
            language: Language::Shell,
        },
    )
    .await
    .unwrap();
    assert_eq!(base.status, "READY");
    assert_eq!(base.digest.as_deref(), Some(h.digest.as_str()));
    h
}

async fn wait_status(state: &Arc<AppState>, status: &'static str) -> super::CodeFunctionView {
    wait_for(&format!("function coded to be {status}"), || async {
        let view = get(state, "ns", "coded").await.map_err(|e| e.message)?;
        if view.status == status {
            Ok(view)
        } else {
            Err(format!("{} {}", view.status, view.reason))
        }
    })
    .await
}

async fn call(state: &Arc<AppState>, input: &'static [u8]) -> crate::invoker::Invocation {
    invoke(
        state.clone(),
        CallRequest::function("ns", "coded", Bytes::from_static(input)),
    )
    .await
}

#[tokio::test]
async fn a_handler_that_does_not_load_is_error_then_a_fixed_one_is_ready_and_answers() {
    let h = with_base_image(FakeReply::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let source = source(dir.path());
    h.driver
        .behaviour()
        .set_fail_ready(Some("SyntaxError: invalid syntax (run.sh, line 1)"));
    let view = put(&h.state, "ns", "coded", body(&source)).await.unwrap();
    assert_eq!(view.status, "INITIALIZED");
    let failed = wait_status(&h.state, "ERROR").await;
    assert!(failed.reason.contains("SyntaxError"), "{}", failed.reason);
    assert_eq!(failed.language, Some(Language::Shell));
    // A call answers 503 with the reason, and is not recorded.
    let invocation = call(&h.state, b"{}").await;
    let error = invocation.result.unwrap_err();
    assert_eq!(
        (error.kind, error.code.as_str()),
        (FailureKind::Unavailable, NOT_READY)
    );
    assert!(
        error.message.starts_with("function 'ns/coded' is ERROR: ")
            && error.message.contains("SyntaxError"),
        "{}",
        error.message
    );
    assert!(invocation.id.is_none());
    let log = h
        .state
        .store
        .build_log("ns", CodeKind::Function, "coded", 0, 100)
        .await
        .unwrap();
    assert!(log.iter().any(|l| l.text.starts_with("ERROR: ")), "{log:?}");

    // Fixed: the rebuild is READY, deployed (its secrets need no input template: the
    // handler gets them in its context), and its calls get the envelope.
    h.driver.behaviour().set_fail_ready(None);
    h.state
        .vault
        .put_secret("ns", "token", b"tok-abcdef")
        .await
        .unwrap();
    let mut with_secret = body(&source);
    with_secret.secrets = vec!["token".into()];
    put(&h.state, "ns", "coded", with_secret).await.unwrap();
    let ready = wait_status(&h.state, "READY").await;
    let digest = ready.digest.expect("the built image's digest");
    assert_ne!(
        digest, h.digest,
        "a new image, the base plus the code layer"
    );
    let images = h
        .state
        .images
        .list(&faasbox_images::Scope::of(Some("ns")))
        .unwrap();
    assert!(
        images
            .iter()
            .any(|i| i.name.contains("code/coded:") && i.digest == digest),
        "{images:?}"
    );
    assert!(not_ready(&h.state, "ns", "coded").await.is_none());
    let listed = super::list(&h.state, "ns").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].status.as_str()),
        ("coded", "READY")
    );
    let output = call(&h.state, br#"{"x":1}"#).await.result.unwrap();
    let output: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(output["payload"], serde_json::json!({"x": 1}));
    assert_eq!(
        output["context"]["secrets"],
        serde_json::json!({"token": "tok-abcdef"})
    );
    let deployed = h.state.deployments.deployed("ns", "coded").unwrap();
    assert_eq!(deployed.spec.handler.as_deref(), Some("run.sh"));
    assert_eq!(
        deployed.spec.timeout.0,
        std::time::Duration::from_millis(5000)
    );
}

#[tokio::test]
async fn an_unfinished_build_is_built_again_by_resume() {
    let h = with_base_image(FakeReply::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let stored = serde_json::json!({"body": body(&source(dir.path()))});
    h.state
        .store
        .put_code(
            "ns",
            CodeKind::Function,
            "coded",
            &stored.to_string(),
            "CREATING",
            "t0",
        )
        .await
        .unwrap();
    let error = call(&h.state, b"{}").await.result.unwrap_err();
    assert!(
        error.message.starts_with("function 'ns/coded' is CREATING"),
        "{}",
        error.message
    );
    assert_eq!(crate::code::resume(&h.state).await, 1);
    wait_status(&h.state, "READY").await;
    assert!(call(&h.state, b"{}").await.result.is_ok());
}

#[tokio::test]
async fn a_request_with_a_bad_schema_or_source_or_image_is_refused() {
    let h = with_base_image(FakeReply::Echo).await;
    let mut bad = body("not base64!");
    bad.schema = Some(crate::model::CodeSchema {
        input: Some(serde_json::json!({"type": 12})),
        output: None,
    });
    let error = put(&h.state, "ns", "coded", bad).await.unwrap_err();
    assert_eq!(error.kind, FailureKind::Invalid);
    assert!(error.message.contains("schema.in"), "{}", error.message);
    assert!(error.message.contains("base64"), "{}", error.message);
    // A base image whose image is neither local nor a registry reference is not stored.
    let error = base_images::create(
        &h.state,
        "ns",
        BaseImageBody {
            name: "missing".into(),
            image: "nope".into(),
            language: Language::Python3,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, FailureKind::NotFound);
    assert!(error.message.contains("nope"), "{}", error.message);
    let bases = base_images::list(&h.state, "ns").await.unwrap();
    assert_eq!(bases.len(), 1, "{bases:?}");
    let mut elsewhere = body("c291cmNl");
    elsewhere.image = "no-such-base".into();
    let error = put(&h.state, "ns", "coded", elsewhere).await.unwrap_err();
    assert_eq!(error.kind, FailureKind::NotFound);
    assert!(h
        .state
        .store
        .code("ns", CodeKind::Function, "coded")
        .await
        .unwrap()
        .is_none());
}
