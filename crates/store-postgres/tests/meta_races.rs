//! Races of the metadata parts on PostgreSQL that SQLite's single connection never has: two
//! stores (two servers' pools) on one database, many callers at once. Each test asserts what
//! the trait promises holds however the calls interleave.

use std::sync::Arc;

use faasbox_store::{FunctionStore, NamespaceStore, NewRevision, StoreError, GLOBAL_OWNER};
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

fn new_revision(spec: &str) -> NewRevision<'_> {
    NewRevision {
        spec,
        digest: None,
        image_namespace: None,
        pull: "missing",
        created: "t1",
        created_by: "admin",
    }
}

/// Many deploys of one function at once through two servers number their revisions 1, 2, …
/// without a gap or a collision; each saw the one before it as previous, and the function
/// points at the highest. For a namespace's function and for a global service.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deploys_of_one_function_get_consecutive_revisions() {
    const DEPLOYS: u32 = 24;
    let database = TestDatabase::new();
    let stores = two_servers(&database).await;
    stores[0].create_namespace("demo", "t0").await.unwrap();
    for owner in ["demo", GLOBAL_OWNER] {
        let mut deploys = JoinSet::new();
        for deploy in 0..DEPLOYS {
            let store = stores[deploy as usize % 2].clone();
            deploys.spawn(async move {
                let spec = format!("{{\"deploy\":{deploy}}}");
                store
                    .add_revision(owner, "f", &new_revision(&spec), 100)
                    .await
            });
        }
        let mut numbers = Vec::new();
        while let Some(joined) = deploys.join_next().await {
            let revised = joined
                .expect("a deploy panicked")
                .unwrap_or_else(|e| panic!("a deploy of {owner}/f failed: {e}"));
            let number = revised.revision.revision;
            assert_eq!(
                revised.previous.map(|p| p.revision),
                (number > 1).then(|| number - 1),
                "{owner}: revision {number}'s previous"
            );
            assert_eq!(revised.function.revision, Some(number));
            numbers.push(number);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=DEPLOYS).collect::<Vec<_>>(), "{owner}");
        let kept: Vec<u32> = stores[1]
            .revisions(owner, "f")
            .await
            .unwrap()
            .iter()
            .map(|r| r.revision)
            .collect();
        assert_eq!(kept, numbers, "{owner}: every revision is kept");
        let function = if owner == GLOBAL_OWNER {
            stores[1].global_function("f").await.unwrap()
        } else {
            stores[1].function(owner, "f").await.unwrap()
        };
        assert_eq!(function.expect("the function").revision, Some(DEPLOYS));
    }
}

/// Deploys racing the deletion of their namespace either happen before it (and go with it) or
/// fail with `NoNamespace`; no revision of the deleted namespace is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploys_racing_a_namespace_deletion_leave_nothing_behind() {
    let database = TestDatabase::new();
    let stores = two_servers(&database).await;
    for round in 0..5 {
        stores[0].create_namespace("demo", "t0").await.unwrap();
        let mut callers = JoinSet::new();
        for deploy in 0..16usize {
            let store = stores[deploy % 2].clone();
            callers.spawn(async move {
                let function = format!("f{}", deploy % 4);
                store
                    .add_revision("demo", &function, &new_revision("{}"), 10)
                    .await
                    .map(|_| ())
            });
            if deploy == 8 {
                let store = stores[1].clone();
                callers.spawn(async move { store.delete_namespace("demo").await.map(|_| ()) });
            }
        }
        while let Some(joined) = callers.join_next().await {
            match joined.expect("a caller panicked") {
                Ok(()) | Err(StoreError::NoNamespace(_)) => {}
                Err(other) => panic!("round {round}: a caller failed otherwise: {other}"),
            }
        }
        // Whatever ran after the deletion found no namespace; what ran before went with it.
        assert!(stores[0].namespace("demo").await.unwrap().is_none());
        for f in 0..4 {
            let function = format!("f{f}");
            assert!(
                stores[0]
                    .revisions("demo", &function)
                    .await
                    .unwrap()
                    .is_empty(),
                "round {round}: {function} kept revisions of a deleted namespace"
            );
            assert!(stores[0]
                .function("demo", &function)
                .await
                .unwrap()
                .is_none());
        }
    }
}

/// Rollbacks racing deploys that prune old revisions: a rollback either finds its revision
/// and makes it current, or finds it gone (`None`); the function never points at a revision
/// that is no longer kept (every deploy finds the one current before it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollbacks_racing_deploys_never_point_at_a_pruned_revision() {
    let database = TestDatabase::new();
    let stores = two_servers(&database).await;
    stores[0].create_namespace("demo", "t0").await.unwrap();
    for _ in 0..2 {
        stores[0]
            .add_revision("demo", "f", &new_revision("{}"), 2)
            .await
            .unwrap();
    }
    for round in 0..40 {
        let mut callers = JoinSet::new();
        for caller in 0..16usize {
            let store = stores[caller % 2].clone();
            callers.spawn(async move {
                if caller % 2 == 0 {
                    // What was current when this deploy ran is kept, so the deploy finds it.
                    let revised = store
                        .add_revision("demo", "f", &new_revision("{}"), 2)
                        .await?;
                    assert!(
                        revised.previous.is_some(),
                        "revision {} found the current revision gone",
                        revised.revision.revision
                    );
                    Ok::<(), StoreError>(())
                } else {
                    // Roll back to the oldest kept revision, which the next deploy prunes.
                    let kept = store.revisions("demo", "f").await?;
                    let Some(oldest) = kept.first() else {
                        return Ok(());
                    };
                    if let Some((function, revision)) = store
                        .make_current("demo", "f", oldest.revision, "t2")
                        .await?
                    {
                        assert_eq!(function.revision, Some(revision.revision));
                        assert_eq!(revision.revision, oldest.revision);
                    }
                    Ok(())
                }
            });
        }
        while let Some(joined) = callers.join_next().await {
            joined
                .expect("a caller panicked")
                .unwrap_or_else(|e| panic!("round {round}: a caller failed: {e}"));
        }
        let current = stores[0]
            .function("demo", "f")
            .await
            .unwrap()
            .and_then(|f| f.revision)
            .expect("the function has a current revision");
        assert!(
            stores[1]
                .revision("demo", "f", current)
                .await
                .unwrap()
                .is_some(),
            "round {round}: the current revision {current} is not kept"
        );
    }
}

/// Many servers starting at once on an empty store each try to make the admin token: exactly
/// one inserts it. (Checked to fail without the advisory lock: a plain `NOT EXISTS` lets
/// several concurrent transactions each see no admin token.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_servers_starting_at_once_one_makes_the_admin_token() {
    let database = TestDatabase::new();
    let stores = two_servers(&database).await;
    for round in 0..5 {
        let mut callers = JoinSet::new();
        for caller in 0..12 {
            let store = stores[caller % 2].clone();
            callers.spawn(async move {
                let id = format!("r{round}c{caller}");
                let record = faasbox_store::TokenRecord {
                    id: id.clone(),
                    name: "admin".into(),
                    namespace: None,
                    role: "admin".into(),
                    hash: format!("{id:0>64}"),
                    created: "t0".into(),
                };
                faasbox_store::TokenStore::insert_first_admin(&*store, &record)
                    .await
                    .expect("inserting the first admin token")
            });
        }
        let inserted = callers
            .join_all()
            .await
            .into_iter()
            .filter(|&won| won)
            .count();
        assert_eq!(inserted, 1, "round {round}: one admin token");
        let admins: Vec<_> = faasbox_store::TokenStore::list_tokens(&*stores[0])
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.namespace.is_none())
            .collect();
        assert_eq!(admins.len(), 1);
        assert!(
            faasbox_store::TokenStore::delete_token(&*stores[1], &admins[0].id)
                .await
                .unwrap()
        );
    }
}
