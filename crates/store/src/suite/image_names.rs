//! Cases of the cluster's image catalog.

use super::Backend;

/// Catalog names survive a reopen, a second put replaces the digest, they are listed by owner
/// and name (all, or one owner's), deleted one by one, and go with their namespace (global
/// ones stay).
pub async fn image_names_are_replaced_listed_deleted_and_go_with_their_namespace(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .put_image_name("demo", "hello:v1", "sha256:aaa", "t1")
        .await
        .unwrap();
    store
        .put_image_name("demo", "hello:v1", "sha256:bbb", "t2")
        .await
        .unwrap();
    store
        .put_image_name("demo", "echo:latest", "sha256:ccc", "t2")
        .await
        .unwrap();
    store
        .put_image_name("*global", "base:1", "sha256:ddd", "t3")
        .await
        .unwrap();
    drop(store);

    let store = backend.open().await;
    let all = store.image_names(None).await.unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = all
        .iter()
        .map(|r| {
            (
                r.owner.as_str(),
                r.name.as_str(),
                r.digest.as_str(),
                r.updated.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("*global", "base:1", "sha256:ddd", "t3"),
            ("demo", "echo:latest", "sha256:ccc", "t2"),
            ("demo", "hello:v1", "sha256:bbb", "t2"),
        ]
    );
    let demo = store.image_names(Some("demo")).await.unwrap();
    assert_eq!(demo.len(), 2);
    assert!(demo.iter().all(|r| r.owner == "demo"));
    let one = store.image_name("demo", "hello:v1").await.unwrap().unwrap();
    assert_eq!(one.digest, "sha256:bbb");
    assert!(store.image_name("demo", "nope:1").await.unwrap().is_none());

    assert!(store
        .delete_image_name("demo", "echo:latest")
        .await
        .unwrap());
    assert!(!store
        .delete_image_name("demo", "echo:latest")
        .await
        .unwrap());
    assert_eq!(store.image_names(Some("demo")).await.unwrap().len(), 1);

    assert!(store.delete_namespace("demo").await.unwrap());
    let left = store.image_names(None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].owner, "*global");
}
