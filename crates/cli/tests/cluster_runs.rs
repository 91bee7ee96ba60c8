//! Several servers on one PostgreSQL database (issue 19): they start together on an empty
//! database, each with its own node id, and one admin token works on every one of them; a
//! server killed with SIGKILL is declared dead by another, which runs its asynchronous runs
//! again (once) and says so. (Group `cluster` in .config/nextest.toml: one such test at a
//! time.)

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cluster::{Cluster, ClusterOptions};
use support::gate::Gate;
use support::{images, wait_for, Server, ALLOW_HOST_LOOPBACK};

/// How long a test waits for what it expects (beyond the take-over bound).
const WITHIN: Duration = Duration::from_secs(90);

/// The function: tells the gate `enter?tag=<input's letters and digits>` (held there until
/// the test opens it), then answers its input. The gate's record is the function's own, so
/// "once" is counted where the function ran.
const SCRIPT: &str = r#"#!/bin/sh
input_file="$HTTP_DIREKTIV_TEMPDIR/input.json"
cat > "$input_file"
tag=$(tr -cd 'a-zA-Z0-9' < "$input_file" | head -c 100)
wget -q -O /dev/null "http://$GW:$TARGET_PORT/enter?host=$HTTP_DIREKTIV_ACTIONID&tag=$tag"
printf 'Content-Type: application/json\r\n\r\n'
cat "$input_file"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_start_at_once_on_an_empty_database() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let ids: std::collections::BTreeSet<String> = (0..3).map(|i| cluster.node_id(i)).collect();
    assert_eq!(
        ids.len(),
        3,
        "each server has a node id of its own: {ids:?}"
    );
    assert_eq!(
        cluster.admin_token_files().len(),
        1,
        "exactly one of the servers starting together made the admin token"
    );
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

/// The run `id` as `server` shows it.
async fn run(server: &Server, id: &str) -> Value {
    server.get_json(&format!("/api/v1/runs/{id}")).await
}

/// Submits an asynchronous run of `demo/slow` with `input` through `server`; its id.
async fn submit(server: &Server, input: &Value) -> String {
    let r = server
        .post_json(
            "/api/v1/namespaces/demo/functions/slow/invoke?async=true",
            input,
        )
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.expect("a JSON answer");
    body["id"].as_str().expect("a run id").to_string()
}

/// Two servers; runs submitted through both; server 0 is killed while some of them run on it.
/// Server 1 declares it dead within the lease bound and runs those again (attempt 2, on node
/// 1, with a line naming the dead node); every run succeeds once in effect; `faasbox nodes`
/// shows the dead node and who took it over; restarted, server 0 rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_servers_runs_are_taken_over_by_another_and_run_once_more() {
    let gate = Gate::start().await;
    let mut cluster = Cluster::start(
        2,
        ClusterOptions {
            args: vec![ALLOW_HOST_LOOPBACK.to_string()],
            ..ClusterOptions::default()
        },
    )
    .await;
    let (_dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", SCRIPT, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cluster.server(0).create_namespace("demo").await;
    // Each server keeps images of its own (for now): the same archive gives the same digest.
    for server in cluster.running() {
        let r = server.import(&tar, "cluster/fn", &query).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }
    cluster
        .server(1)
        .deploy(
            "demo",
            "slow",
            json!({
                "image": "cluster/fn",
                "envs": {"TARGET_PORT": gate.port.to_string(), "GW": support::flows::host_gateway()},
                "timeout": "120s",
                "scale": {"max": 2, "concurrency": 2},
            }),
        )
        .await;
    let (node0, node1) = (cluster.node_id(0), cluster.node_id(1));
    let mut accepted = Vec::new();
    for i in 0..8 {
        let marker = format!("k{i}");
        let id = submit(cluster.server(i % 2), &json!(marker)).await;
        accepted.push((marker, id));
    }
    // Both servers' executors claim runs; wait until server 0 runs some and every running
    // run is held at the gate (so each attempt the kill cuts off has reached the function).
    let on_node0 = wait_for(
        WITHIN,
        "runs running on server 0, each held at the gate",
        || async {
            let (mut on_node0, mut running) = (Vec::new(), 0);
            for (marker, id) in &accepted {
                let record = run(cluster.server(1), id).await;
                if record["status"] == "running" {
                    running += 1;
                    if record["node"] == node0.as_str() {
                        on_node0.push(marker.clone());
                    }
                }
            }
            (on_node0, running, gate.held().len())
        },
        |(on_node0, running, held): &(Vec<String>, usize, usize)| {
            !on_node0.is_empty() && held >= running
        },
    )
    .await
    .0;
    cluster.kill(0);
    let killed = Instant::now();
    gate.open();

    let survivor = cluster.server(1);
    for (marker, id) in &accepted {
        let record = wait_for(
            cluster.takeover_bound() + WITHIN,
            &format!("run {marker} to end"),
            || run(survivor, id),
            |r: &Value| r["ended"].is_string(),
        )
        .await;
        assert_eq!(record["status"], "succeeded", "{marker}: {record}");
        assert_eq!(record["output"], json!(marker), "{record}");
        if on_node0.contains(marker) {
            assert_eq!(
                record["attempts"], 2,
                "{marker} ran on the killed server: {record}"
            );
            assert_eq!(record["node"], node1.as_str(), "{record}");
            let logs = survivor
                .get_json(&format!("/api/v1/namespaces/demo/runs/{id}/logs"))
                .await;
            let says = format!("server node {node0} stopped answering");
            assert!(
                logs["logs"]
                    .as_array()
                    .is_some_and(|lines| lines.iter().any(|l| l["line"]
                        .as_str()
                        .is_some_and(|line| line.starts_with(&says)))),
                "{marker}'s log names the dead node: {logs}"
            );
        }
    }
    let took = killed.elapsed();
    assert!(
        took < cluster.takeover_bound() + Duration::from_secs(30),
        "the killed server's runs ended {took:?} after the kill (bound: the lease and a run)"
    );
    println!("the killed server's runs finished elsewhere {took:?} after the kill");
    // The function's own count: a run that was on server 0 reached it twice (the attempt the
    // kill cut off and the one on server 1), every other run once.
    let mut entered: BTreeMap<String, usize> = BTreeMap::new();
    for arrival in gate.arrivals() {
        *entered.entry(arrival.tag).or_insert(0) += 1;
    }
    for (marker, _) in &accepted {
        let expected = if on_node0.contains(marker) { 2 } else { 1 };
        assert_eq!(
            entered.get(marker),
            Some(&expected),
            "{marker}: {entered:?}"
        );
    }

    let nodes = survivor.get_json("/api/v1/nodes").await;
    let find = |nodes: &Value, id: &str| -> Value {
        nodes["nodes"]
            .as_array()
            .and_then(|list| list.iter().find(|n| n["id"] == id).cloned())
            .unwrap_or(Value::Null)
    };
    let dead = find(&nodes, &node0);
    assert_eq!(dead["state"], "dead", "{nodes}");
    assert_eq!(dead["taken_by"], node1.as_str(), "{nodes}");
    assert_eq!(find(&nodes, &node1)["this"], true, "{nodes}");
    let table = survivor.cli_ok(&["nodes"]);
    assert!(
        table.contains(&format!("dead (taken over by {node1})")) && table.contains("(this)"),
        "{table}"
    );
    assert!(
        cluster
            .log(1)
            .contains(&format!("server node {node0} sent no heartbeat")),
        "server 1's log says it took node 0 over"
    );

    // Back on its data directory, server 0 rejoins; its runs are not run a third time.
    let restarted = cluster.restart(0).await;
    let nodes = restarted.get_json("/api/v1/nodes").await;
    assert_eq!(find(&nodes, &node0)["state"], "up", "{nodes}");
    assert_eq!(find(&nodes, &node0)["this"], true, "{nodes}");
    for (marker, id) in &accepted {
        assert_eq!(run(restarted, id).await["status"], "succeeded", "{marker}");
    }
}
