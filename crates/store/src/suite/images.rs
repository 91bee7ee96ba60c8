//! Cases of image pull failures.

use super::Backend;

/// Pull failures survive a reopen, the newest per function wins, they are listed by owner and
/// function, cleared one by one, and go with their namespace (global ones stay).
pub async fn failures_are_kept_replaced_cleared_and_go_with_their_namespace(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .record_pull_failure("demo", "a", "first", "t1")
        .await
        .unwrap();
    store
        .record_pull_failure("demo", "a", "second", "t2")
        .await
        .unwrap();
    store
        .record_pull_failure("demo", "b", "b failed", "t2")
        .await
        .unwrap();
    store
        .record_pull_failure("*global", "g", "g failed", "t2")
        .await
        .unwrap();
    drop(store);

    let store = backend.open().await;
    let all = store.pull_failures().await.unwrap();
    let seen: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|f| (f.owner.as_str(), f.function.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("*global", "g", "g failed"),
            ("demo", "a", "second"),
            ("demo", "b", "b failed")
        ]
    );
    store.clear_pull_failure("demo", "a").await.unwrap();
    assert!(store.delete_namespace("demo").await.unwrap());
    let left = store.pull_failures().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].owner, "*global");
}
