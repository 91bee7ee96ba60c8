//! Races of the nodes on PostgreSQL: several servers (two `PgStore`s, many connections) take
//! over dead nodes at once, and each dead node must go to exactly one of them, or its runs
//! would be requeued twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use faasbox_store::{NewNode, NodeStore};
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_dead_node_is_taken_over_by_exactly_one_server() {
    let db = TestDatabase::new();
    let a = Arc::new(PgStore::open(&db.url, 8).await.expect("opening store a"));
    let b = Arc::new(PgStore::open(&db.url, 8).await.expect("opening store b"));
    let dead: Vec<String> = (0..20).map(|i| format!("dead{i:02}")).collect();
    for id in &dead {
        let node = NewNode {
            id: id.clone(),
            addr: format!("http://{id}"),
            version: "1".into(),
            started: "2026-01-01T00:00:00.000Z".into(),
            capacity: "{}".into(),
        };
        assert_eq!(a.register_node(&node).await.unwrap(), None);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Sixteen takers (eight servers' worth on each store), each trying several times.
    let mut takers = JoinSet::new();
    for taker in 0..16 {
        let store = if taker % 2 == 0 { a.clone() } else { b.clone() };
        takers.spawn(async move {
            let me = format!("taker{taker:02}");
            let mut taken = Vec::new();
            for _ in 0..5 {
                taken.extend(store.take_over_dead(&me, 50).await.unwrap());
            }
            (me, taken)
        });
    }
    let mut taken_by: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(result) = takers.join_next().await {
        let (me, taken) = result.unwrap();
        for id in taken {
            taken_by.entry(id).or_default().push(me.clone());
        }
    }
    for id in &dead {
        let takers = taken_by.get(id).cloned().unwrap_or_default();
        assert_eq!(takers.len(), 1, "{id} was taken over by {takers:?}");
    }
    // The store agrees on who took each one.
    for node in a.nodes().await.unwrap().nodes {
        assert_eq!(node.state, "dead");
        assert_eq!(node.taken_by.as_ref(), Some(&taken_by[&node.id][0]));
    }
}
