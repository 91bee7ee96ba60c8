//! Flow instances on several servers sharing one PostgreSQL database (issue 19): an instance
//! whose server is killed (SIGKILL) mid-way is taken over by another server once its lease
//! expired and finishes there, each of its states recorded once; a schedule fires each slot
//! once whichever servers run. (Group `cluster` in .config/nextest.toml: one such test at a
//! time.)

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::cluster::{Cluster, ClusterOptions};
use support::wait_for;

/// Five states, two of them delays (an instance that runs for ~5 s without a container).
const SLOW_FLOW: &str = "direktiv_api: workflow/v1
states:
- id: a
  type: noop
  transform:
    n: 1
  transition: d1
- id: d1
  type: delay
  duration: PT3S
  transition: b
- id: b
  type: noop
  transform:
    n: 2
  transition: d2
- id: d2
  type: delay
  duration: PT2S
  transition: c
- id: c
  type: noop
  transform:
    n: 3
";

/// The states an instance view lists as finished.
fn states(instance: &Value) -> Vec<String> {
    instance["states"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_of_a_killed_server_finishes_on_another_within_the_lease_bound() {
    let mut cluster = Cluster::start(2, ClusterOptions::default()).await;
    let first = cluster.server(0);
    first.create_namespace("demo").await;
    first.deploy_flow("slow", SLOW_FLOW).await;
    let id = first.start_flow("slow", &json!({})).await;
    // Killed in its first delay: the instance stays `running`, held by server 0.
    let second = cluster.server(1);
    wait_for(
        Duration::from_secs(20),
        "the instance to be in its first delay",
        || second.instance(&id),
        |i| states(i) == ["a"],
    )
    .await;
    let (dead, taker) = (cluster.node_id(0), cluster.node_id(1));
    cluster.kill(0);
    let killed_at = std::time::Instant::now();

    let second = cluster.server(1);
    let bound = cluster.takeover_bound() + Duration::from_secs(5);
    let done = wait_for(
        bound,
        "the instance to end on server 1",
        || second.instance(&id),
        |i| !matches!(i["status"].as_str(), Some("running" | "waiting")),
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["output"]["n"], 3, "{done}");
    assert_eq!(
        states(&done),
        ["a", "d1", "b", "d2", "c"],
        "each state finished once: {done}"
    );
    let timeline: Vec<&str> = done["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(timeline, ["a", "d1", "b", "d2", "c"], "{done}");
    let log = second.instance_log(&id).await;
    let took_over = format!(
        "server node {dead} stopped driving this instance (its lease expired); node {taker} takes it over and resumes it at state 'd1'"
    );
    assert!(log.contains(&took_over), "{log}");
    assert_eq!(log.matches("takes it over").count(), 1, "{log}");
    eprintln!(
        "taken over and finished {:?} after the kill",
        killed_at.elapsed()
    );
}

/// A parent whose server is killed while its subflow child sleeps: the other server takes
/// the parent over, its action finds the same child and claims it once the child's lease
/// expired too, and both finish there, each state once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_and_its_subflow_of_a_killed_server_finish_on_another() {
    let mut cluster = Cluster::start(2, ClusterOptions::default()).await;
    let first = cluster.server(0);
    first.create_namespace("demo").await;
    first
        .deploy_flow(
            "inner",
            "states:\n- {id: one, type: noop, transform: {n: 'jq(.n)'}, transition: nap}\n- {id: nap, type: delay, duration: PT3S, transition: done}\n- {id: done, type: noop, transform: {n: 'jq(.n)', done: true}}\n",
        )
        .await;
    first
        .deploy_flow(
            "outer",
            "functions:\n- {id: inner, type: subflow, workflow: inner}\nstates:\n- {id: call, type: action, action: {function: inner, input: {n: 7}}, transform: {child: 'jq(.return)'}}\n",
        )
        .await;
    let id = first.start_flow("outer", &json!({})).await;
    let second = cluster.server(1);
    let child = wait_for(
        Duration::from_secs(20),
        "the child to be in its delay",
        move || async move {
            let all = second
                .get_json("/api/v1/namespaces/demo/instances?flow=inner")
                .await;
            let child = all
                .as_array()
                .and_then(|a| a.first())
                .and_then(|c| c["id"].as_str())
                .map(str::to_string);
            match child {
                Some(child) => Some((child.clone(), states(&second.instance(&child).await))),
                None => None,
            }
        },
        |c| c.as_ref().is_some_and(|(_, states)| states == &["one"]),
    )
    .await
    .map(|(child, _)| child)
    .expect("a child");
    cluster.kill(0);

    let second = cluster.server(1);
    let bound = cluster.takeover_bound() + Duration::from_secs(5);
    let done = wait_for(
        bound,
        "the parent to end on server 1",
        || second.instance(&id),
        |i| !matches!(i["status"].as_str(), Some("running" | "waiting")),
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["output"], json!({"child": {"n": 7, "done": true}}));
    assert_eq!(states(&done), ["call"]);
    let child_done = second.instance(&child).await;
    assert_eq!(child_done["status"], "complete", "{child_done}");
    assert_eq!(states(&child_done), ["one", "nap", "done"], "{child_done}");
    let inner = second
        .get_json("/api/v1/namespaces/demo/instances?flow=inner")
        .await;
    assert_eq!(
        inner.as_array().map(Vec::len),
        Some(1),
        "the same child: {inner}"
    );
    let log = second.instance_log(&id).await;
    assert!(log.contains("takes it over"), "{log}");
    assert!(
        log.contains(&format!("continuing subflow instance {child}")),
        "{log}"
    );
}

/// An instance waiting for an event when its server is killed is resumed by the event on
/// another server (it claims the wait), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_resumes_a_killed_servers_waiting_instance_on_another() {
    let mut cluster = Cluster::start(2, ClusterOptions::default()).await;
    let first = cluster.server(0);
    first.create_namespace("demo").await;
    first
        .deploy_flow(
            "approve",
            "states:\n- {id: w, type: consumeEvent, timeout: PT5M, event: {type: approval.given}, transform: {ok: 'jq(.\"approval.given\".data.ok)'}}\n",
        )
        .await;
    let id = first.start_flow("approve", &json!({})).await;
    wait_for(
        Duration::from_secs(20),
        "the instance to wait",
        || first.instance(&id),
        |i| i["status"] == "waiting",
    )
    .await;
    cluster.kill(0);

    let second = cluster.server(1);
    let event = json!({
        "specversion": "1.0", "id": "e-1", "source": "/test", "type": "approval.given",
        "datacontenttype": "application/json", "data": {"ok": true}
    });
    let r = second
        .http
        .post(second.url("/api/v1/namespaces/demo/events"))
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await
        .expect("POST event");
    assert_eq!(r.status(), 202);
    // The wait is the dead server's until server 1 takes its work over (within the takeover
    // bound); 20 s past it, for a machine busy with other work.
    let done = wait_for(
        cluster.takeover_bound() + Duration::from_secs(20),
        "the instance to end on server 1",
        || second.instance(&id),
        |i| !matches!(i["status"].as_str(), Some("running" | "waiting")),
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["output"]["ok"], true, "{done}");
    assert_eq!(states(&done), ["w"], "{done}");
}

/// Every second's slot of a schedule fires once with two servers (at most one instance per
/// second passed: a slot fired by both would about double it), also after the server that
/// fired the last slots is killed (the other goes on firing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_fires_each_slot_once_on_two_servers() {
    let mut cluster = Cluster::start(2, ClusterOptions::default()).await;
    let first = cluster.server(0);
    first.create_namespace("demo").await;
    let deployed = std::time::Instant::now();
    first
        .deploy_flow(
            "tick",
            "direktiv_api: workflow/v1\nstart:\n  type: scheduled\n  cron: \"* * * * * *\"\nstates:\n- id: a\n  type: noop\n  transform:\n    ticked: true\n",
        )
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let fired = instances(cluster.server(1)).await;
    let seconds = deployed.elapsed().as_secs() as usize;
    assert!(fired.len() >= 3, "it fired: {fired:?}");
    assert!(
        fired.len() <= seconds + 1,
        "one instance per slot: {} in {seconds} s",
        fired.len()
    );

    // Kill one server (the other fires on, one instance per slot still).
    cluster.kill(0);
    let killed = std::time::Instant::now();
    let before = fired.len();
    let second = cluster.server(1);
    let fired = wait_for(
        Duration::from_secs(20),
        "the schedule to go on firing on server 1",
        || instances(second),
        |seen| seen.len() >= before + 4,
    )
    .await;
    let seconds = deployed.elapsed().as_secs() as usize;
    assert!(
        fired.len() <= seconds + 1,
        "one instance per slot: {} in {seconds} s ({:?} after the kill)",
        fired.len(),
        killed.elapsed()
    );
    // Each instance runs to its end: one left by the killed server is taken over.
    wait_for(
        cluster.takeover_bound(),
        "every scheduled instance but the newest to end",
        || instances(second),
        |all| all.iter().skip(2).all(|i| i["status"] == "complete"),
    )
    .await;
}

/// The namespace's instances, newest first.
async fn instances(server: &support::Server) -> Vec<Value> {
    let page = server
        .get_json("/api/v1/namespaces/demo/instances?limit=500")
        .await;
    page.as_array().cloned().unwrap_or_default()
}
