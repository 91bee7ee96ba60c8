//! Races of the metadata parts on PostgreSQL that SQLite's single connection never has: two
//! stores (two servers' pools) on one database, many callers at once. Each test asserts what
//! the trait promises holds however the calls interleave.

use std::sync::Arc;

use faasbox_store::{NamespaceStore, StoreError};
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

/// Two stores on one fresh database, as two servers would have.
async fn two_servers(database: &TestDatabase) -> [Arc<PgStore>; 2] {
    let first = PgStore::open(&database.url, 8)
        .await
        .expect("opening store 1");
    let second = PgStore::open(&database.url, 8)
        .await
        .expect("opening store 2");
    [Arc::new(first), Arc::new(second)]
}

/// Of many callers creating one namespace at once through two servers, exactly one gets `Ok`;
/// every other gets `NamespaceExists`, and the stored record is the winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_racing_creators_makes_a_namespace() {
    let database = TestDatabase::new();
    let stores = two_servers(&database).await;
    for round in 0..10 {
        let name = format!("race{round}");
        let mut callers = JoinSet::new();
        for caller in 0..16 {
            let store = stores[caller % 2].clone();
            let name = name.clone();
            callers.spawn(async move {
                let created = format!("t{caller}");
                (
                    created.clone(),
                    store.create_namespace(&name, &created).await,
                )
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = callers.join_next().await {
            let (created, result) = joined.expect("a creator panicked");
            match result {
                Ok(record) => {
                    assert_eq!(record.created, created);
                    winners.push(created);
                }
                Err(StoreError::NamespaceExists(n)) => assert_eq!(n, name),
                Err(other) => panic!("a creator of {name} failed otherwise: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "{name}: winners {winners:?}");
        let stored = stores[0]
            .namespace(&name)
            .await
            .unwrap()
            .expect("the namespace exists");
        assert_eq!(stored.created, winners[0]);
    }
}
