//! The changes feed across servers: two PgStores (two pools, as two servers have) publish at
//! once while a third follows with `changes_after` from its cursor; the follower must see
//! every change exactly once, which it would not if a seq could become visible after a larger
//! one (it would move its cursor past the late one and never read it).

use std::collections::BTreeSet;
use std::sync::Arc;

use faasbox_store::ChangeStore;
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

const PER_TASK: usize = 40;
const TASKS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_sees_every_change_of_concurrent_publishers_once() {
    let database = TestDatabase::new();
    let a = Arc::new(PgStore::open(&database.url, 8).await.expect("store a"));
    let b = Arc::new(PgStore::open(&database.url, 8).await.expect("store b"));
    let follower = PgStore::open(&database.url, 2).await.expect("follower");

    let mut cursor = follower.newest_change().await.expect("newest");
    assert_eq!(cursor, 0);
    let mut publishers = JoinSet::new();
    for task in 0..TASKS {
        let store = if task % 2 == 0 { a.clone() } else { b.clone() };
        publishers.spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..PER_TASK {
                let key = format!("{task}/{n}");
                seqs.push(
                    store
                        .publish_change("function", &key)
                        .await
                        .expect("publish"),
                );
            }
            seqs
        });
    }

    let mut seen = Vec::new();
    let total = PER_TASK * TASKS;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower saw {} of {total} changes in 60 s",
            seen.len()
        );
        for change in follower.changes_after(cursor, 7).await.expect("read") {
            assert!(change.seq > cursor);
            cursor = change.seq;
            seen.push(change.key);
        }
    }
    let mut published = BTreeSet::new();
    while let Some(seqs) = publishers.join_next().await {
        published.extend(seqs.expect("publisher"));
    }
    assert_eq!(published.len(), total, "seqs are unique");
    let keys: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(keys.len(), total, "every change is seen once: {seen:?}");
    assert!(follower
        .changes_after(cursor, 10)
        .await
        .expect("read")
        .is_empty());
}

/// Rows copied in without the counter (as `faasbox admin migrate-store` copies a SQLite
/// database's tables) do not make the next publish collide with them.
#[tokio::test]
async fn publishing_goes_past_rows_copied_in_without_the_counter() {
    let database = TestDatabase::new();
    let store = PgStore::open(&database.url, 2).await.expect("store");
    let (sql, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .expect("a plain connection");
    tokio::spawn(connection);
    sql.execute(
        "INSERT INTO changes (seq, kind, key, at_ms) VALUES (41, 'token', '', 0)",
        &[],
    )
    .await
    .expect("a copied row");
    let seq = store.publish_change("token", "").await.expect("publish");
    assert_eq!(seq, 42);
    assert_eq!(store.newest_change().await.expect("newest"), 42);
}
