//! Cases of the changes feed, and of finding a token by its hash (what a server does when a
//! peer made the token).

use super::Backend;
use crate::*;

/// Changes get growing seqs, are read after a seq in order and by pages, survive a reopen;
/// `newest_change` starts a reader past everything published; a purge keeps the newest one.
pub async fn changes_are_read_in_order_after_a_seq_and_purged_but_the_newest(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    assert_eq!(store.newest_change().await.unwrap(), 0);
    assert!(store.changes_after(0, 10).await.unwrap().is_empty());
    let mut seqs = Vec::new();
    for (kind, key) in [("token", ""), ("function", "ns/f"), ("route", "ns")] {
        seqs.push(store.publish_change(kind, key).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(store.newest_change().await.unwrap(), seqs[2]);

    let all = store.changes_after(0, 10).await.unwrap();
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|c| (c.kind.as_str(), c.key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("token", ""), ("function", "ns/f"), ("route", "ns")]
    );
    assert_eq!(all.iter().map(|c| c.seq).collect::<Vec<_>>(), seqs);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for change in &all {
        // The database's clock: within a minute of this machine's.
        assert!((change.at_ms - now).abs() < 60_000, "{change:?} vs {now}");
    }

    let page = store.changes_after(seqs[0], 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].seq, seqs[1]);
    assert!(store.changes_after(seqs[2], 10).await.unwrap().is_empty());

    // Nothing is older than an hour ago; everything is older than an hour from now, but the
    // newest stays.
    assert_eq!(store.purge_changes(now - 3_600_000).await.unwrap(), 0);
    drop(store);
    let store = backend.open().await;
    assert_eq!(store.changes_after(0, 10).await.unwrap().len(), 3);
    assert_eq!(store.purge_changes(now + 3_600_000).await.unwrap(), 2);
    let left = store.changes_after(0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].seq, seqs[2]);
    assert_eq!(store.newest_change().await.unwrap(), seqs[2]);
    let next = store.publish_change("namespace", "ns").await.unwrap();
    assert!(next > seqs[2]);
    assert_eq!(store.newest_change().await.unwrap(), next);
}

/// A token is found by its hash while it is stored, not after it was deleted.
pub async fn a_token_is_found_by_its_hash_until_it_is_deleted(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("ns", "t0").await.unwrap();
    let record = TokenRecord {
        id: "t1".into(),
        name: "ci".into(),
        namespace: Some("ns".into()),
        role: "invoke".into(),
        hash: "ab".repeat(32),
        created: "t1".into(),
    };
    store.insert_token(&record).await.unwrap();
    assert_eq!(
        store.token_by_hash(&record.hash).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.token_by_hash(&"cd".repeat(32)).await.unwrap(), None);
    assert!(store.delete_token("t1").await.unwrap());
    assert_eq!(store.token_by_hash(&record.hash).await.unwrap(), None);
}

/// The first admin token is inserted once: a second is refused while one exists, also when a
/// namespace token exists; after the admin token is deleted a new first one is accepted.
pub async fn the_first_admin_token_is_inserted_once(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("ns", "t0").await.unwrap();
    let token = |id: &str, namespace: Option<&str>| TokenRecord {
        id: id.into(),
        name: id.into(),
        namespace: namespace.map(str::to_string),
        role: "admin".into(),
        hash: id.repeat(64 / id.len()),
        created: "t1".into(),
    };
    store.insert_token(&token("ab", Some("ns"))).await.unwrap();
    assert!(store.insert_first_admin(&token("cd", None)).await.unwrap());
    assert!(!store.insert_first_admin(&token("ef", None)).await.unwrap());
    let ids: Vec<String> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["ab", "cd"]);
    assert!(store.delete_token("cd").await.unwrap());
    assert!(store.insert_first_admin(&token("ef", None)).await.unwrap());
}
