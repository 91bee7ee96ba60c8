//! Cases of namespaces.

use faasbox_proto::{LogLine, LogStream};

use super::Backend;
use crate::*;

fn log(line: &str) -> LogLine {
    LogLine {
        ts_ms: 1,
        stream: LogStream::Function,
        line: line.into(),
    }
}

/// A second namespace of one name is `NamespaceExists`; deleting a namespace deletes its
/// functions, invocations and logs, and deleting it again gives false.
pub async fn namespaces_are_unique_and_deletion_cascades(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    assert!(matches!(
        store.create_namespace("demo", "t1").await,
        Err(StoreError::NamespaceExists(_))
    ));
    store
        .put_function("demo", "echo", "{}", "t0")
        .await
        .unwrap();
    store
        .start_invocation("i1", "demo", "echo", "t0")
        .await
        .unwrap();
    store.append_logs("i1", &[log("a")]).await.unwrap();
    assert!(store.delete_namespace("demo").await.unwrap());
    assert!(store.function("demo", "echo").await.unwrap().is_none());
    assert!(store.invocation("i1").await.unwrap().is_none());
    assert!(store.logs("i1").await.unwrap().is_empty());
    assert!(!store.delete_namespace("demo").await.unwrap());
}
