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
use support::registry::Registry;
use support::{images, wait_for, Server, ALLOW_HOST_LOOPBACK};

/// The cluster registry's user and password (basic auth, stored as global credentials).
const REGISTRY_USER: &str = "cluster";
const REGISTRY_PASSWORD: &str = "cl-Reg1stry-pw";

/// A flow that calls `slow` (an action: its input is the instance's data), then waits 8 s.
const FLOW: &str = "direktiv_api: workflow/v1
functions:
- id: slow
  type: knative-namespace
  service: slow
states:
- id: call
  type: action
  action:
    function: slow
    input: 'jq(.)'
  transition: pause
- id: pause
  type: delay
  duration: PT8S
  transition: done
- id: done
  type: noop
  transform:
    ok: true
";

/// How long a test waits for what it expects (beyond the take-over bound).
const WITHIN: Duration = Duration::from_secs(90);

/// The function: tells the gate `enter?tag=<input's letters and digits>` (held there until
/// the test opens it), sleeps `PAUSE` seconds (0 unless given), then answers its input. The gate's record is the function's own, so
/// "once" is counted where the function ran.
const SCRIPT: &str = r#"#!/bin/sh
input_file="$HTTP_DIREKTIV_TEMPDIR/input.json"
cat > "$input_file"
tag=$(tr -cd 'a-zA-Z0-9' < "$input_file" | head -c 100)
wget -q -O /dev/null "http://$GW:$TARGET_PORT/enter?host=$HTTP_DIREKTIV_ACTIONID&tag=$tag"
sleep "${PAUSE:-0}"
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
    // A web UI session opened through one server works through the others, and signing out
    // through one ends it on all.
    let first = cluster.server(0);
    let signed_in = reqwest::Client::new()
        .post(first.url("/ui/session"))
        .header("content-type", "application/json")
        .header("origin", &first.url)
        .header("sec-fetch-site", "same-origin")
        .body(serde_json::json!({ "token": cluster.token }).to_string())
        .send()
        .await
        .expect("signing in");
    assert_eq!(signed_in.status(), 201);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let body: Value = signed_in.json().await.expect("JSON");
    let csrf = body["csrf"].as_str().expect("a CSRF token").to_string();
    let ui = |server: &Server, method: reqwest::Method, path: &str| {
        reqwest::Client::new()
            .request(method, server.url(path))
            .header("cookie", &cookie)
            .header("x-faasbox-csrf", &csrf)
            .header("origin", &server.url)
            .header("sec-fetch-site", "same-origin")
            .send()
    };
    for server in cluster.running() {
        let r = ui(server, reqwest::Method::GET, "/ui/api/v1/namespaces")
            .await
            .expect("a UI request");
        assert_eq!(r.status(), 200, "the session works on {}", server.url);
    }
    let r = ui(cluster.server(2), reqwest::Method::DELETE, "/ui/session")
        .await
        .expect("signing out");
    assert_eq!(r.status(), 204);
    let r = ui(
        cluster.server(1),
        reqwest::Method::GET,
        "/ui/api/v1/namespaces",
    )
    .await
    .expect("a UI request");
    assert_eq!(r.status(), 401, "signed out through another server");
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

/// `n` servers with namespace `demo` and the function `demo/slow` ([`SCRIPT`] at `gate`,
/// sleeping `pause` seconds, scaled as `scale` says), deployed through server 1. With a
/// registry, the servers share images through it (its credentials added once, as the global
/// ones) and the image is imported through server 0 only, into namespace demo; without one,
/// each server keeps images of its own and the archive is imported into each (the same
/// digest).
async fn cluster_with_slow(
    n: usize,
    gate: &Gate,
    pause: &str,
    scale: Value,
    registry: Option<&Registry>,
) -> (Cluster, tempfile::TempDir) {
    let mut args = vec![ALLOW_HOST_LOOPBACK.to_string()];
    if let Some(registry) = registry {
        args.push("--cluster-registry".to_string());
        args.push(format!("http://{}/faasbox", registry.addr));
    }
    let cluster = Cluster::start(
        n,
        ClusterOptions {
            args,
            ..ClusterOptions::default()
        },
    )
    .await;
    let (dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", SCRIPT, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = cluster.server(0);
    first.create_namespace("demo").await;
    match registry {
        Some(registry) => {
            first.cli_ok(&[
                "registry",
                "add",
                "--global",
                &registry.addr,
                "-u",
                REGISTRY_USER,
                "--password",
                REGISTRY_PASSWORD,
            ]);
            let r = first
                .import_as(&first.http, Some("demo"), &tar, "cluster/fn", &query)
                .await;
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        }
        None => {
            for server in cluster.running() {
                let r = server.import(&tar, "cluster/fn", &query).await;
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
            }
        }
    }
    cluster
        .server(1)
        .deploy(
            "demo",
            "slow",
            json!({
                "image": "cluster/fn",
                "envs": {
                    "TARGET_PORT": gate.port.to_string(),
                    "GW": support::flows::host_gateway(),
                    "PAUSE": pause,
                },
                "timeout": "120s",
                "scale": scale,
            }),
        )
        .await;
    (cluster, dir)
}

/// Two servers; runs submitted through both; the server running some of them is killed (the
/// executors claim runs as they have room, so either may). The other declares it dead within
/// the lease bound and runs those again (attempt 2, on the survivor, with a line naming the
/// dead node); every run succeeds once in effect; `faasbox nodes` shows the dead node and who
/// took it over; restarted, the killed server rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_servers_runs_are_taken_over_by_another_and_run_once_more() {
    let gate = Gate::start().await;
    let (mut cluster, _dir) =
        // Room for all 8 runs on each server, so every run a server claims reaches the gate.
        cluster_with_slow(2, &gate, "0", json!({"max": 2, "concurrency": 4}), None).await;
    let nodes = [cluster.node_id(0), cluster.node_id(1)];
    let mut accepted = Vec::new();
    for i in 0..8 {
        let marker = format!("k{i}");
        let id = submit(cluster.server(i % 2), &json!(marker)).await;
        accepted.push((marker, id));
    }
    // Wait until runs run and every running run is held at the gate (so each attempt the
    // kill cuts off has reached the function); the victim is the server running most.
    let running_on = wait_for(
        WITHIN,
        "runs running, each held at the gate",
        || async {
            let mut running_on: [Vec<String>; 2] = [Vec::new(), Vec::new()];
            for (marker, id) in &accepted {
                let record = run(cluster.server(1), id).await;
                if record["status"] == "running" {
                    if let Some(i) = nodes.iter().position(|n| record["node"] == n.as_str()) {
                        running_on[i].push(marker.clone());
                    }
                }
            }
            (running_on, gate.held().len())
        },
        |(running_on, held): &([Vec<String>; 2], usize)| {
            let running = running_on[0].len() + running_on[1].len();
            running > 0 && *held >= running
        },
    )
    .await
    .0;
    let victim = usize::from(running_on[1].len() > running_on[0].len());
    let other = 1 - victim;
    let on_victim = running_on[victim].clone();
    let (dead, taker) = (nodes[victim].clone(), nodes[other].clone());
    cluster.kill(victim);
    let killed = Instant::now();
    gate.open();

    let survivor = cluster.server(other);
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
        if on_victim.contains(marker) {
            assert_eq!(
                record["attempts"], 2,
                "{marker} ran on the killed server: {record}"
            );
            assert_eq!(record["node"], taker.as_str(), "{record}");
            let logs = survivor
                .get_json(&format!("/api/v1/namespaces/demo/runs/{id}/logs"))
                .await;
            let says = format!("server node {dead} stopped answering");
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
    // The function's own count: a run that was on the killed server reached it twice (the
    // attempt the kill cut off and the one on the survivor), every other run once.
    let mut entered: BTreeMap<String, usize> = BTreeMap::new();
    for arrival in gate.arrivals() {
        *entered.entry(arrival.tag).or_insert(0) += 1;
    }
    for (marker, _) in &accepted {
        let expected = if on_victim.contains(marker) { 2 } else { 1 };
        assert_eq!(
            entered.get(marker),
            Some(&expected),
            "{marker}: {entered:?}"
        );
    }

    let listed = survivor.get_json("/api/v1/nodes").await;
    let find = |nodes: &Value, id: &str| -> Value {
        nodes["nodes"]
            .as_array()
            .and_then(|list| list.iter().find(|n| n["id"] == id).cloned())
            .unwrap_or(Value::Null)
    };
    let dead_node = find(&listed, &dead);
    assert_eq!(dead_node["state"], "dead", "{listed}");
    assert_eq!(dead_node["taken_by"], taker.as_str(), "{listed}");
    assert_eq!(find(&listed, &taker)["this"], true, "{listed}");
    let table = survivor.cli_ok(&["nodes"]);
    assert!(
        table.contains(&format!("dead (taken over by {taker})")) && table.contains("(this)"),
        "{table}"
    );
    assert!(
        cluster
            .log(other)
            .contains(&format!("server node {dead} sent no heartbeat")),
        "the survivor's log says it took the killed node over"
    );

    // Back on its data directory, the killed server rejoins; its runs are not run a third
    // time.
    let restarted = cluster.restart(victim).await;
    let listed = restarted.get_json("/api/v1/nodes").await;
    assert_eq!(find(&listed, &dead)["state"], "up", "{listed}");
    assert_eq!(find(&listed, &dead)["this"], true, "{listed}");
    for (marker, id) in &accepted {
        assert_eq!(run(restarted, id).await["status"], "succeeded", "{marker}");
    }
}

/// The issue's platform: three servers, one PostgreSQL, one registry. The function's image is
/// imported through server 0, deployed and called through server 1, and a flow that calls it
/// runs through server 2. Then 500 asynchronous runs are submitted 20 at a time round-robin
/// through all three, and server 2 is killed (SIGKILL) while it runs some of them and drives
/// the flow's instances. Every stored run succeeds once: its record ends `succeeded` with its
/// own output, the function saw it at most as many times as it was attempted, and only the
/// runs the killed server was running were attempted twice; every flow instance completes on
/// a survivor with each state once. Restarted, the killed server rejoins, cleans up what its
/// instances left and runs nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_runs_over_three_servers_finish_once_when_one_is_killed() {
    const RUNS: usize = 500;
    const CLIENTS: usize = 20;
    const FLOWS: usize = 4;
    let gate = Gate::start().await;
    gate.open();
    let registry = Registry::start_htpasswd(&[(REGISTRY_USER, REGISTRY_PASSWORD)]);
    let (mut cluster, _dir) = cluster_with_slow(
        3,
        &gate,
        "0.3",
        json!({"max": 3, "concurrency": 4}),
        Some(&registry),
    )
    .await;
    let node2 = cluster.node_id(2);
    // Imported through server 0, deployed through server 1: called through server 1.
    let called = cluster
        .server(1)
        .post_json(
            "/api/v1/namespaces/demo/functions/slow/invoke",
            &json!("first"),
        )
        .await;
    assert_eq!(called.status(), 200);
    assert_eq!(called.json::<Value>().await.expect("JSON"), json!("first"));
    // A flow through server 2: its instances are driven there.
    let third = cluster.server(2);
    third.deploy_flow("calls-slow", FLOW).await;
    let mut flows = Vec::new();
    for i in 0..FLOWS {
        flows.push(third.start_flow("calls-slow", &json!({"flow": i})).await);
    }
    let targets: Vec<(String, reqwest::Client)> = cluster
        .running()
        .map(|s| (s.url(""), s.http.clone()))
        .collect();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let two_alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (targets, next, two_alive, acknowledged) = (
            targets.clone(),
            next.clone(),
            two_alive.clone(),
            acknowledged.clone(),
        );
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= RUNS {
                    return;
                }
                let alive = if two_alive.load(std::sync::atomic::Ordering::SeqCst) {
                    3
                } else {
                    2
                };
                let (url, http) = &targets[i % alive];
                let marker = format!("m{i}");
                let answer = http
                    .post(format!(
                        "{url}/api/v1/namespaces/demo/functions/slow/invoke?async=true"
                    ))
                    .header("content-type", "application/json")
                    .body(json!(marker).to_string())
                    .send()
                    .await;
                // A submission to the server being killed may be lost unanswered: not
                // acknowledged, so not promised (if it was stored, it still must succeed once).
                let Ok(answer) = answer else { continue };
                if answer.status() != 202 {
                    continue;
                }
                if let Ok(body) = answer.json::<Value>().await {
                    if let Some(id) = body["id"].as_str() {
                        acknowledged.lock().unwrap().push((marker, id.to_string()));
                    }
                }
            }
        });
    }
    // Kill server 2 once a fifth of the runs are submitted and some run on it.
    let survivor = targets[0].clone();
    wait_for(
        WITHIN,
        "runs running on server 2 after a fifth were submitted",
        || async {
            let running: Value = survivor
                .1
                .get(format!(
                    "{}/api/v1/namespaces/demo/runs?status=running&limit=1000",
                    survivor.0
                ))
                .send()
                .await
                .expect("listing runs")
                .json()
                .await
                .expect("a JSON list");
            let on_two = running.as_array().map_or(0, |l| {
                l.iter().filter(|r| r["node"] == node2.as_str()).count()
            });
            (acknowledged.lock().unwrap().len(), on_two)
        },
        |&(submitted, on_two): &(usize, usize)| submitted >= RUNS / 5 && on_two > 0,
    )
    .await;
    for id in &flows {
        let instance = cluster.server(0).instance(id).await;
        assert!(
            matches!(instance["status"].as_str(), Some("running" | "waiting")),
            "the flow instance {id} is still going at the kill: {instance}"
        );
    }
    two_alive.store(false, std::sync::atomic::Ordering::SeqCst);
    cluster.kill(2);
    let killed = Instant::now();
    let killed_at = time::OffsetDateTime::now_utc();
    while clients.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= RUNS - CLIENTS,
        "at most the submissions in flight to the killed server go unanswered: {}",
        acknowledged.len()
    );

    // Every stored run ends `succeeded`, on the survivors.
    let server = cluster.server(0);
    let runs = wait_for(
        cluster.takeover_bound() + WITHIN,
        "every run to end",
        || async {
            server
                .get_json("/api/v1/namespaces/demo/runs?function=slow&limit=1000")
                .await
        },
        |list: &Value| {
            list.as_array()
                .is_some_and(|l| l.iter().all(|r| r["ended"].is_string()))
        },
    )
    .await;
    println!(
        "{} runs; the last ended {:?} after the kill",
        runs.as_array().map_or(0, Vec::len),
        killed.elapsed()
    );
    // The asynchronous runs (the flow's calls and the first call are blocking ones).
    let runs: Vec<Value> = runs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["mode"] == "async")
        .cloned()
        .collect();
    let by_id: BTreeMap<String, Value> = runs
        .iter()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_string(), r.clone()))
        .collect();
    for (marker, id) in &acknowledged {
        assert!(
            by_id.contains_key(id),
            "acknowledged run {marker} ({id}) is stored"
        );
    }
    let mut entered: BTreeMap<String, u64> = BTreeMap::new();
    for arrival in gate.arrivals() {
        *entered.entry(arrival.tag).or_insert(0) += 1;
    }
    let mut retried = 0;
    for run in &runs {
        let marker = run["input"].as_str().unwrap_or_default().to_string();
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"], json!(marker), "{run}");
        let attempts = run["attempts"].as_u64().unwrap_or(0);
        let seen = entered.get(&marker).copied().unwrap_or(0);
        assert!(
            (1..=attempts).contains(&seen),
            "{marker}: the function saw it {seen} times in {attempts} attempts: {run}"
        );
        // Server 2 may finish runs before the kill (their records are its own); what it was
        // running at the kill ended on a survivor.
        if run["node"] == node2.as_str() {
            let ended = run["ended"]
                .as_str()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .expect("an ended run has its end time");
            assert!(
                ended <= killed_at,
                "{marker} ended on the killed server after the kill ({killed_at}): {run}"
            );
            assert_eq!(
                attempts, 1,
                "{marker} ended on server 2 at its first attempt: {run}"
            );
        }
        if attempts == 2 {
            retried += 1;
        } else {
            assert_eq!(attempts, 1, "{run}");
        }
    }
    assert!(
        retried > 0,
        "the runs on the killed server were attempted again"
    );
    let markers: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|r| r["input"].as_str()).collect();
    assert_eq!(markers.len(), runs.len(), "no run stored twice");

    // The flow's instances, driven by server 2 until the kill, complete on the survivors.
    for id in &flows {
        let done = wait_for(
            cluster.takeover_bound() + WITHIN,
            &format!("flow instance {id} to end"),
            || server.instance(id),
            |i: &Value| !matches!(i["status"].as_str(), Some("running" | "waiting")),
        )
        .await;
        assert_eq!(done["status"], "complete", "{done}");
        assert_eq!(done["output"]["ok"], true, "{done}");
        let states: Vec<&str> = done["states"]
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(states, ["call", "pause", "done"], "each state once: {done}");
        let log = server.instance_log(id).await;
        assert!(
            log.contains(&format!(
                "server node {node2} stopped driving this instance"
            )),
            "{id} was taken over from the killed server: {log}"
        );
    }

    // Back, server 2 rejoins, removes what its killed instances left; nothing runs a third
    // time.
    cluster.restart(2).await;
    // What the kill left: the instance it started, or — killed while it still pulled the
    // function's image from the cluster registry — the interrupted pull.
    let log2 = cluster.log(2);
    assert!(
        log2.contains("removed what a previous run of this server left behind")
            || log2.contains("removing leftover of an interrupted import"),
        "server 2 cleaned up at its restart: {log2}"
    );
    let restarted = cluster.server(2);
    let nodes = restarted.get_json("/api/v1/nodes").await;
    let up = nodes["nodes"]
        .as_array()
        .map_or(0, |l| l.iter().filter(|n| n["state"] == "up").count());
    assert_eq!(up, 3, "{nodes}\nserver 2's log:\n{}", cluster.log(2));
    let again = restarted
        .get_json("/api/v1/namespaces/demo/runs?function=slow&limit=1000")
        .await;
    let still: Vec<&Value> = again
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|r| r["mode"] == "async" && r["status"] != "succeeded")
                .collect()
        })
        .unwrap_or_default();
    assert!(still.is_empty(), "{still:?}");
}
