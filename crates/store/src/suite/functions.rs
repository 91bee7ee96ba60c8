//! Cases of functions, global services and revisions.

use std::collections::HashSet;

use super::Backend;
use crate::*;

/// A function needs its namespace (`NoNamespace`); replacing its spec keeps `created` and
/// sets `updated`.
pub async fn function_needs_namespace_and_update_keeps_created(backend: &impl Backend) {
    let store = backend.open().await;
    assert!(matches!(
        store.put_function("nope", "f", "{}", "t0").await,
        Err(StoreError::NoNamespace(_))
    ));
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .put_function("demo", "f", r#"{"v":1}"#, "t1")
        .await
        .unwrap();
    let updated = store
        .put_function("demo", "f", r#"{"v":2}"#, "t2")
        .await
        .unwrap();
    assert_eq!(updated.created, "t1");
    assert_eq!(updated.updated, "t2");
    assert_eq!(updated.spec, r#"{"v":2}"#);
    assert_eq!(store.list_functions("demo").await.unwrap().len(), 1);
}

fn new<'a>(spec: &'a str, digest: Option<&'a str>) -> NewRevision<'a> {
    NewRevision {
        spec,
        digest,
        image_namespace: Some("demo"),
        pull: "missing",
        created: "t1",
        created_by: "admin",
    }
}

/// Revisions are numbered per function, the `keep` newest and the current one stay, a
/// rollback makes an older one current, digests are pinned once, global services have
/// revisions too, and revisions go with their function and namespace.
pub async fn revisions_are_numbered_kept_rolled_back_and_deleted_with_their_function(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    assert!(matches!(
        store.add_revision("demo", "f", &new("{}", None), 3).await,
        Err(StoreError::NoNamespace(_))
    ));
    store.create_namespace("demo", "t0").await.unwrap();
    let first = store
        .add_revision("demo", "f", &new(r#"{"v":1}"#, Some("sha256:1")), 3)
        .await
        .unwrap();
    assert_eq!(first.revision.revision, 1);
    assert!(first.previous.is_none());
    assert_eq!(first.function.revision, Some(1));
    for v in 2..=5 {
        let spec = format!(r#"{{"v":{v}}}"#);
        let revised = store
            .add_revision("demo", "f", &new(&spec, Some("sha256:2")), 3)
            .await
            .unwrap();
        assert_eq!(revised.revision.revision, v);
        assert_eq!(revised.previous.unwrap().revision, v - 1);
        assert_eq!(revised.function.spec, spec);
    }
    let kept: Vec<u32> = store
        .revisions("demo", "f")
        .await
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    assert_eq!(kept, [3, 4, 5], "the newest three are kept");
    assert_eq!(
        store.revision_digests().await.unwrap(),
        HashSet::from(["sha256:2".to_string()])
    );

    // A rollback points at an older revision; the next deploy numbers on.
    let (function, back) = store
        .make_current("demo", "f", 3, "t9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (function.revision, function.spec.as_str()),
        (Some(3), r#"{"v":3}"#)
    );
    assert_eq!(function.updated, "t9");
    assert_eq!(back.revision, 3);
    assert!(store
        .make_current("demo", "f", 1, "t9")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .make_current("demo", "g", 3, "t9")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.digests_pinned_from(Some("demo")).await.unwrap(),
        HashSet::from(["sha256:2".to_string()])
    );
    assert!(store.digests_pinned_from(None).await.unwrap().is_empty());
    // Keeping one: the new revision (current now) is all that stays.
    let six = store
        .add_revision("demo", "f", &new("{}", None), 1)
        .await
        .unwrap();
    assert_eq!(six.revision.revision, 6);
    assert_eq!(six.previous.unwrap().revision, 3);
    assert!(store
        .pin_revision("demo", "f", 6, "sha256:6", None)
        .await
        .unwrap());
    assert!(!store
        .pin_revision("demo", "f", 6, "sha256:7", None)
        .await
        .unwrap());
    let pinned = store.revision("demo", "f", 6).await.unwrap().unwrap();
    assert_eq!(pinned.digest.as_deref(), Some("sha256:6"));
    assert_eq!(pinned.image_namespace, None);
    assert_eq!(store.revisions_pinning("sha256:6").await.unwrap().len(), 1);
    assert_eq!(
        store.digests_pinned_from(None).await.unwrap(),
        HashSet::from(["sha256:6".to_string()])
    );
    assert!(
        store
            .digests_pinned_from(Some("demo"))
            .await
            .unwrap()
            .is_empty(),
        "keeping one, revision 3 went"
    );

    // Global services have revisions too.
    let g = store
        .add_revision(GLOBAL_OWNER, "svc", &new("{}", Some("sha256:g")), 10)
        .await
        .unwrap();
    assert_eq!(g.function.namespace, GLOBAL_OWNER);
    assert_eq!(
        store
            .global_function("svc")
            .await
            .unwrap()
            .unwrap()
            .revision,
        Some(1)
    );
    assert!(store.delete_global_function("svc").await.unwrap());
    assert!(store
        .revisions(GLOBAL_OWNER, "svc")
        .await
        .unwrap()
        .is_empty());

    assert!(store.delete_function("demo", "f").await.unwrap());
    assert!(store.revisions("demo", "f").await.unwrap().is_empty());
    store
        .add_revision("demo", "f", &new("{}", None), 3)
        .await
        .unwrap();
    assert!(store.delete_namespace("demo").await.unwrap());
    assert!(store.revision_digests().await.unwrap().is_empty());
    assert!(store.revisions("demo", "f").await.unwrap().is_empty());
}

/// Global services keep `created` when replaced, are listed by name with the namespace
/// [`GLOBAL_OWNER`], and are not among any namespace's functions; `all_functions` lists every
/// namespace's functions by namespace, then name; deleting what is not there gives false.
pub async fn global_services_keep_created_and_stay_out_of_namespaces(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("b", "t0").await.unwrap();
    store.create_namespace("a", "t0").await.unwrap();
    store.put_function("b", "f", "{}", "t1").await.unwrap();
    store.put_function("a", "g", "{}", "t1").await.unwrap();
    let new = store.put_function("a", "f", "{}", "t1").await.unwrap();
    assert_eq!(new.revision, None, "put_function leaves the revision alone");

    assert!(store.global_function("svc").await.unwrap().is_none());
    store
        .put_global_function("svc", r#"{"v":1}"#, "t1")
        .await
        .unwrap();
    store
        .put_global_function("db", r#"{"v":1}"#, "t1")
        .await
        .unwrap();
    let replaced = store
        .put_global_function("svc", r#"{"v":2}"#, "t2")
        .await
        .unwrap();
    assert_eq!(
        replaced,
        FunctionRecord {
            namespace: GLOBAL_OWNER.into(),
            name: "svc".into(),
            spec: r#"{"v":2}"#.into(),
            created: "t1".into(),
            updated: "t2".into(),
            revision: None,
        }
    );
    drop(store);

    let store = backend.open().await;
    assert_eq!(
        store.global_function("svc").await.unwrap(),
        Some(replaced.clone())
    );
    let globals: Vec<(String, String)> = store
        .list_global_functions()
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.namespace, f.name))
        .collect();
    assert_eq!(
        globals,
        [
            (GLOBAL_OWNER.to_string(), "db".to_string()),
            (GLOBAL_OWNER.to_string(), "svc".to_string())
        ]
    );
    let all: Vec<(String, String)> = store
        .all_functions()
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.namespace, f.name))
        .collect();
    assert_eq!(
        all,
        [
            ("a".to_string(), "f".to_string()),
            ("a".to_string(), "g".to_string()),
            ("b".to_string(), "f".to_string())
        ]
    );
    assert!(store.function(GLOBAL_OWNER, "svc").await.unwrap().is_none());
    assert!(store.delete_global_function("db").await.unwrap());
    assert!(!store.delete_global_function("db").await.unwrap());
    assert!(!store.delete_function("a", "nope").await.unwrap());
    assert_eq!(store.list_global_functions().await.unwrap().len(), 1);
}
