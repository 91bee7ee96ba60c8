//! Flow instance leases across servers: two PgStores (two pools, as two servers have) on one
//! database race to take over one expired instance, or to resume one wait; exactly one claims
//! it, and every write fenced with another claim (the loser's, the old owner's) is refused.

use std::sync::Arc;
use std::time::Duration;

use faasbox_store::{Claim, FlowStore, NewInstance, StoreError};
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

async fn two_stores() -> (TestDatabase, Arc<PgStore>, Arc<PgStore>) {
    let database = TestDatabase::new();
    let a = PgStore::open(&database.url, 8)
        .await
        .expect("opening store a");
    let b = PgStore::open(&database.url, 8)
        .await
        .expect("opening store b");
    (database, Arc::new(a), Arc::new(b))
}

async fn create(store: &PgStore, id: &str, owner: &str, lease_ms: i64) {
    store
        .create_instance(&NewInstance {
            id,
            namespace: "demo",
            flow: "f",
            source: "source",
            input: "{}",
            checkpoint: "cp0",
            parent: None,
            depth: 0,
            now: "t0",
            owner: Some(owner),
            lease_ms,
        })
        .await
        .expect("creating an instance");
}

/// Runs `claim` for eight racers, alternately on each store, each as its own node; the nodes
/// that got the instance, with the epoch they got.
async fn race(a: &Arc<PgStore>, b: &Arc<PgStore>, id: &str, want: Claim) -> Vec<(String, i64)> {
    let mut racers = JoinSet::new();
    for n in 0..8 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let (id, node) = (id.to_string(), format!("node-{n}"));
        racers.spawn(async move {
            let epoch = store
                .claim_instance(&id, &node, 60_000, want)
                .await
                .expect("claiming");
            epoch.map(|e| (node, e))
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = racers.join_next().await {
        if let Some(won) = result.expect("a racer panicked") {
            winners.push(won);
        }
    }
    winners
}

fn assert_lease_lost(result: Result<(), StoreError>, round: usize, who: &str) {
    assert!(
        matches!(result, Err(StoreError::LeaseLost { .. })),
        "round {round}: {who}'s fenced write was not refused: {result:?}"
    );
}

/// An expired instance is taken over by exactly one server; the old owner (still saving its
/// checkpoints meanwhile, as a paused server would) and every loser are refused, the winner's
/// checkpoint is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_instance_is_taken_over_once_and_the_others_are_fenced() {
    let (_database, a, b) = two_stores().await;
    for round in 0..20 {
        let id = format!("i{round}");
        create(&a, &id, "old", 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        // The old owner keeps saving while the others take over.
        let old = {
            let (store, id) = (b.clone(), id.clone());
            tokio::spawn(async move {
                let mut refused = false;
                for step in 1..=20u64 {
                    let saved = store
                        .save_checkpoint(
                            &id,
                            "running",
                            "old",
                            Some((step, "s")),
                            "t1",
                            Some(("old", 0)),
                        )
                        .await;
                    match saved {
                        Ok(()) => {}
                        Err(StoreError::LeaseLost { .. }) => {
                            refused = true;
                            break;
                        }
                        Err(e) => panic!("saving: {e}"),
                    }
                }
                refused
            })
        };
        let winners = race(&a, &b, &id, Claim::TakeOver).await;
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (winner, epoch) = winners[0].clone();
        assert_eq!(epoch, 1, "round {round}");
        old.await.expect("the old owner panicked");
        assert_lease_lost(
            b.save_checkpoint(&id, "running", "old", None, "t2", Some(("old", 0)))
                .await,
            round,
            "the old owner",
        );
        let loser = if winner == "node-0" {
            "node-1"
        } else {
            "node-0"
        };
        assert_lease_lost(
            a.save_checkpoint(&id, "running", "loser", None, "t2", Some((loser, 1)))
                .await,
            round,
            "a loser",
        );
        b.save_checkpoint(&id, "running", "winner", None, "t3", Some((&winner, epoch)))
            .await
            .expect("the winner's save");
        let record = a.instance(&id).await.unwrap().unwrap();
        assert_eq!(record.checkpoint, "winner", "round {round}");
    }
}

/// Of many servers resuming one waiting instance at once (a delivery and a timeout, say),
/// exactly one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_is_resumed_once_across_servers() {
    let (_database, a, b) = two_stores().await;
    for round in 0..20 {
        let id = format!("w{round}");
        create(&a, &id, "saver", 60_000).await;
        a.save_checkpoint(&id, "waiting", "cpw", None, "t1", Some(("saver", 0)))
            .await
            .expect("saving the wait");
        let winners = race(&a, &b, &id, Claim::Resume).await;
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let record = b.instance(&id).await.unwrap().unwrap();
        assert_eq!(record.status, "running", "round {round}");
    }
}
