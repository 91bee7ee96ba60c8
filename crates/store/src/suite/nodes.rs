//! Cases of the nodes (servers sharing a store): register and rejoin, heartbeats, one taker
//! per dead node, leaving.

use std::time::Duration;

use super::Backend;
use crate::nodes::{NODE_DEAD, NODE_LEFT, NODE_UP};
use crate::*;

fn node(id: &str, addr: &str) -> NewNode {
    NewNode {
        id: id.into(),
        addr: addr.into(),
        version: "1.0.0".into(),
        started: "2026-01-01T00:00:00.000Z".into(),
        capacity: r#"{"cores":2}"#.into(),
    }
}

fn state_of(list: &NodeList, id: &str) -> (String, Option<String>) {
    let found = list
        .nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("node {id} is listed: {list:?}"));
    (found.state.clone(), found.taken_by.clone())
}

/// A node registers up (`None` before), beats with its load, and is listed with the
/// database's clock; a node silent for longer than the lease is declared dead by exactly one
/// other (never by itself), after which its heartbeat fails until it registers again (learning
/// it was `dead`); a node that leaves is `left` and stops beating.
pub async fn nodes_beat_are_taken_over_once_rejoin_and_leave(backend: &impl Backend) {
    let store = backend.open().await;
    assert_eq!(
        store.register_node(&node("a", "http://a")).await.unwrap(),
        None
    );
    assert_eq!(
        store.register_node(&node("b", "http://b")).await.unwrap(),
        None
    );
    let load = NodeLoad {
        capacity: r#"{"cores":4}"#.into(),
        instances: 3,
        runs: 7,
    };
    assert!(store.heartbeat("a", &load).await.unwrap());
    assert!(!store.heartbeat("nobody", &load).await.unwrap());
    let list = store.nodes().await.unwrap();
    assert_eq!(
        list.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let a = &list.nodes[0];
    assert_eq!(
        (
            a.addr.as_str(),
            a.state.as_str(),
            a.capacity.as_str(),
            a.instances,
            a.runs
        ),
        ("http://a", NODE_UP, r#"{"cores":4}"#, 3, 7)
    );
    assert!(
        (0..60_000).contains(&(list.now_ms - a.heartbeat_ms)),
        "the heartbeat is the database's now: {list:?}"
    );

    // Nobody is older than a long lease; after a pause both are older than a short one, but
    // a node never declares itself dead, and each dead node has one taker.
    assert!(store.take_over_dead("a", 600_000).await.unwrap().is_empty());
    // (The store crate has no timer of its own; a short pause blocks this case only.)
    std::thread::sleep(Duration::from_millis(60));
    assert!(store.heartbeat("a", &load).await.unwrap());
    assert_eq!(store.take_over_dead("a", 30).await.unwrap(), ["b"]);
    assert!(store.take_over_dead("a", 30).await.unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(store.take_over_dead("c", 5).await.unwrap(), ["a"]);
    let list = store.nodes().await.unwrap();
    assert_eq!(state_of(&list, "b"), (NODE_DEAD.into(), Some("a".into())));
    assert_eq!(state_of(&list, "a"), (NODE_DEAD.into(), Some("c".into())));
    assert!(
        !store.heartbeat("b", &load).await.unwrap(),
        "b was declared dead"
    );

    // Rejoining says what it was; the node is up again and beats.
    assert_eq!(
        store.register_node(&node("b", "http://b2")).await.unwrap(),
        Some(NODE_DEAD.to_string())
    );
    assert!(store.heartbeat("b", &load).await.unwrap());
    let list = store.nodes().await.unwrap();
    assert_eq!(state_of(&list, "b"), (NODE_UP.into(), None));
    assert_eq!(list.nodes[1].addr, "http://b2");

    store.leave("b").await.unwrap();
    assert_eq!(state_of(&store.nodes().await.unwrap(), "b").0, NODE_LEFT);
    assert!(!store.heartbeat("b", &load).await.unwrap());
    // (The store crate has no timer of its own; a short pause blocks this case only.)
    std::thread::sleep(Duration::from_millis(40));
    assert!(
        store.take_over_dead("x", 10).await.unwrap().is_empty(),
        "a node that left is not taken over"
    );
    assert_eq!(
        store.register_node(&node("b", "http://b")).await.unwrap(),
        Some(NODE_LEFT.to_string())
    );
}
