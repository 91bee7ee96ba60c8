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

fn token(id: &str, namespace: Option<&str>, created: &str) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        name: format!("{id}-name"),
        namespace: namespace.map(str::to_string),
        role: "admin".into(),
        hash: format!("hash-of-{id}"),
        created: created.into(),
    }
}

/// Namespaces are listed by name in byte order. A namespace token needs its namespace
/// (`NoNamespace`), a second token with a hash already stored is refused, tokens are listed
/// oldest first (then by id) as stored, are deleted by id, and a namespace's tokens go with it
/// (server-wide ones stay; the namespace created again has none).
pub async fn tokens_need_their_namespace_are_listed_oldest_first_and_go_with_it(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    for name in ["beta", "Zed", "alpha"] {
        store.create_namespace(name, "t0").await.unwrap();
    }
    let names: Vec<String> = store
        .list_namespaces()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["Zed", "alpha", "beta"]);
    assert_eq!(
        store.namespace("alpha").await.unwrap(),
        Some(NamespaceRecord {
            name: "alpha".into(),
            created: "t0".into()
        })
    );
    assert!(store.namespace("gamma").await.unwrap().is_none());

    assert!(matches!(
        store.insert_token(&token("x", Some("nope"), "t1")).await,
        Err(StoreError::NoNamespace(ns)) if ns == "nope"
    ));
    store
        .insert_token(&token("b", Some("alpha"), "t2"))
        .await
        .unwrap();
    store.insert_token(&token("a", None, "t2")).await.unwrap();
    store
        .insert_token(&token("c", Some("beta"), "t1"))
        .await
        .unwrap();
    let mut same_hash = token("d", None, "t3");
    same_hash.hash = "hash-of-a".into();
    assert!(matches!(
        store.insert_token(&same_hash).await,
        Err(StoreError::Backend(_))
    ));
    drop(store);

    let store = backend.open().await;
    let listed = store.list_tokens().await.unwrap();
    assert_eq!(
        listed,
        [
            token("c", Some("beta"), "t1"),
            token("a", None, "t2"),
            token("b", Some("alpha"), "t2")
        ]
    );
    assert!(store.delete_token("c").await.unwrap());
    assert!(!store.delete_token("c").await.unwrap());
    assert!(store.delete_namespace("alpha").await.unwrap());
    store.create_namespace("alpha", "t5").await.unwrap();
    let ids: Vec<String> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        ids,
        ["a"],
        "alpha's token went with it, the server-wide one stayed"
    );
}
