//! The follower applies each kind of change another server publishes: the changes are made
//! here straight in the store (as a peer's API would make them, on the shared database) and
//! published, and this server's caches must show them after one read of the feed — and not
//! before (so each case shows the feed, not something else, brought them).

use faasbox_driver::fake::FakeReply;
use faasbox_store::{NewRevision, RouteRecord};

use super::*;
use crate::auth::tokens::{issue, Role};
use crate::routes::table::Lookup;
use crate::test_support::{harness, NS};

fn spec() -> serde_json::Value {
    serde_json::json!({"image": "hello", "timeout": "5s", "network": false})
}

/// Stores revision `n` of `ns/name` the way a peer's deploy does.
async fn peer_deploys(state: &AppState, name: &str, digest: &str, timeout: &str) {
    let spec = serde_json::json!({"image": "hello", "timeout": timeout, "network": false});
    state
        .store
        .add_revision(
            NS,
            name,
            &NewRevision {
                spec: &spec.to_string(),
                digest: Some(digest),
                image_namespace: Some(NS),
                pull: "never",
                created: &crate::clock::now_rfc3339(),
                created_by: "peer",
            },
            crate::deploy::REVISIONS_KEPT,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn each_kind_of_change_reaches_this_server_s_caches() {
    let h = harness(FakeReply::Echo, spec()).await;
    let state = &*h.state;
    let mut cursor = state.store.newest_change().await.unwrap();

    // A token made by a peer works here after the feed is read; deleted, it stops working.
    let issued = issue("ci", Some(NS.into()), Role::Invoke).unwrap();
    state.store.insert_token(&issued.record).await.unwrap();
    publish(&*state.store, Kind::Token, "").await;
    assert!(state.tokens.check(&issued.token).is_none());
    cursor = follow_once(state, cursor).await;
    assert!(state.tokens.check(&issued.token).is_some());
    state.store.delete_token(&issued.record.id).await.unwrap();
    publish(&*state.store, Kind::Token, "").await;
    cursor = follow_once(state, cursor).await;
    assert!(state.tokens.check(&issued.token).is_none());

    // A function deployed by a peer is put into service; updated, its new revision; deleted,
    // it leaves service.
    peer_deploys(state, "peer", &h.digest, "5s").await;
    publish_function(&*state.store, &Owner::Namespace(NS.into()), "peer").await;
    assert!(state.deployments.deployed(NS, "peer").is_none());
    cursor = follow_once(state, cursor).await;
    let deployed = state.deployments.deployed(NS, "peer").expect("in service");
    assert_eq!(deployed.revision, Some(1));
    peer_deploys(state, "peer", &h.digest, "7s").await;
    publish_function(&*state.store, &Owner::Namespace(NS.into()), "peer").await;
    cursor = follow_once(state, cursor).await;
    let deployed = state.deployments.deployed(NS, "peer").expect("in service");
    assert_eq!(deployed.revision, Some(2));
    assert_eq!(deployed.spec.timeout.0, std::time::Duration::from_secs(7));
    // Read again (this server's own change comes back too): the pool in service stays.
    publish_function(&*state.store, &Owner::Namespace(NS.into()), "peer").await;
    cursor = follow_once(state, cursor).await;
    let again = state.deployments.deployed(NS, "peer").expect("in service");
    assert!(Arc::ptr_eq(&deployed.pool, &again.pool));
    state.store.delete_function(NS, "peer").await.unwrap();
    publish_function(&*state.store, &Owner::Namespace(NS.into()), "peer").await;
    cursor = follow_once(state, cursor).await;
    assert!(state.deployments.deployed(NS, "peer").is_none());

    // A call finds a function a peer deployed before the feed is read.
    peer_deploys(state, "early", &h.digest, "5s").await;
    assert!(state.deployments.deployed(NS, "early").is_none());
    assert!(activate_if_stored(state, &Owner::Namespace(NS.into()), "early").await);
    assert!(!activate_if_stored(state, &Owner::Namespace(NS.into()), "never-made").await);

    // A route a peer stored is served here after the feed is read.
    let route = serde_json::json!({"path": "/hello", "target": {"function": "fn"}});
    state
        .store
        .put_route(&RouteRecord {
            namespace: NS.into(),
            name: "hello".into(),
            spec: route.to_string(),
            created: "t".into(),
            modified: "t".into(),
        })
        .await
        .unwrap();
    publish(&*state.store, Kind::Route, NS).await;
    assert!(matches!(
        state.routes.lookup_namespace(NS, "/hello", "GET"),
        Lookup::NotFound
    ));
    cursor = follow_once(state, cursor).await;
    assert!(matches!(
        state.routes.lookup_namespace(NS, "/hello", "GET"),
        Lookup::Found(_)
    ));

    // A namespace a peer deleted: its functions leave service, its tokens and routes go.
    let issued = issue("ci2", Some(NS.into()), Role::Invoke).unwrap();
    state.store.insert_token(&issued.record).await.unwrap();
    state.tokens.reload(&*state.store).await.unwrap();
    assert!(state.tokens.check(&issued.token).is_some());
    assert!(state.store.delete_namespace(NS).await.unwrap());
    publish(&*state.store, Kind::NamespaceDeleted, NS).await;
    assert!(state.deployments.deployed(NS, "fn").is_some());
    let last = follow_once(state, cursor).await;
    assert!(last > cursor);
    assert!(state.deployments.deployed(NS, "fn").is_none());
    assert!(state.deployments.deployed(NS, "early").is_none());
    assert!(state.tokens.check(&issued.token).is_none());
    assert!(matches!(
        state.routes.lookup_namespace(NS, "/hello", "GET"),
        Lookup::NotFound
    ));
    // Nothing new: the cursor stays.
    assert_eq!(follow_once(state, last).await, last);
}
