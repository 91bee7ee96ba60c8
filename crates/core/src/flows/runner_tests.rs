//! Fast tests of the flow runner against the fake driver and a SQLite store in a temporary
//! directory (no root, no containers): an action's call and its record, errors caught by
//! pattern or failing the instance, retries, a state's timeout and a cancel reaching the
//! agent, `foreach` and `parallel` calls running at once within the bound, a subflow, subflow
//! recursion bounded (also through `async` actions), and an instance resumed by a new server
//! on the same data directory.

use faasbox_driver::fake::{FakeBehaviour, FakeDriver, FakeReply};
use faasbox_store::FlowStore;
use serde_json::json;

use crate::test_support::{
    deploy_flow, flow_harness, instance, log_lines, output, run_flow, wait_ended, wait_status,
    Harness, NS, WAIT,
};

/// A flow calling namespace function `ns/fn` (as `f`) in state `a`, with more `states`.
fn calling(action_state: &str, more_states: &str) -> String {
    format!(
        "functions:\n- {{id: f, type: knative-namespace, service: fn}}\nstates:\n{action_state}{more_states}"
    )
}

fn failing() -> FakeReply {
    FakeReply::Fail {
        code: "myapp.input".into(),
        message: "customerId is missing".into(),
    }
}

/// The calls instance `id` made, as a reader sees them: after the record writer has written
/// what it holds (a call's record is written just behind its answer, like the server's
/// instance view, which settles first too).
async fn calls_of(h: &Harness, id: &str) -> Vec<faasbox_store::InstanceCallRecord> {
    h.state.runs.records.settle().await;
    FlowStore::instance_calls(&*h.state.store, id)
        .await
        .unwrap()
}

/// The states an instance finished, in order.
async fn finished(h: &Harness, id: &str) -> Vec<String> {
    FlowStore::finished_states(&*h.state.store, id)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, state)| state)
        .collect()
}

#[tokio::test]
async fn an_action_calls_its_function_and_the_instance_completes_with_its_output() {
    let h = flow_harness(FakeReply::Echo).await;
    let flow = calling(
        "- {id: a, type: action, action: {function: f, input: {x: 'jq(.n * 2)'}}}\n",
        "",
    );
    deploy_flow(&h, "calls", &flow).await;
    let id = run_flow(&h, "calls", json!({"n": 21})).await;
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    assert_eq!(output(&record)["return"], json!({"x": 42}), "{record:?}");

    let calls = calls_of(&h, &id).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].kind.as_str(), calls[0].state.as_str()),
        ("invocation", "a")
    );
    assert_eq!(calls[0].function, "f");
    assert_eq!(calls[0].status.as_deref(), Some("succeeded"));
    let record = h.driver.record();
    assert_eq!(record.invokes.len(), 1);
    assert_eq!(
        record.invokes[0].action_id, calls[0].id,
        "the call record names the invocation the agent got"
    );
    // The function's own log line is copied into the instance's log.
    let lines = log_lines(&h, &id).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("aid={}", calls[0].id))),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_function_error_is_caught_by_the_first_matching_pattern() {
    let h = flow_harness(failing()).await;
    let flow = calling(
        "- id: a\n  type: action\n  action: {function: f}\n  catch:\n  - {error: 'other.*', transition: wrong}\n  - {error: 'myapp.*', transition: handled}\n",
        "- {id: wrong, type: noop}\n- {id: handled, type: noop}\n",
    );
    deploy_flow(&h, "catches", &flow).await;
    let id = run_flow(&h, "catches", json!({})).await;
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    let out = output(&record);
    assert_eq!(out["error"]["code"], "myapp.input", "{out}");
    assert_eq!(finished(&h, &id).await, ["a", "handled"]);
}

#[tokio::test]
async fn an_uncaught_function_error_fails_the_instance_with_its_code() {
    let h = flow_harness(failing()).await;
    let flow = calling(
        "- id: a\n  type: action\n  action: {function: f}\n  catch: [{error: 'other.*', transition: b}]\n",
        "- {id: b, type: noop}\n",
    );
    deploy_flow(&h, "fails", &flow).await;
    let id = run_flow(&h, "fails", json!({})).await;
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "failed", "{record:?}");
    assert_eq!(record.error_code.as_deref(), Some("myapp.input"));
    assert!(
        record
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("customerId")),
        "{record:?}"
    );
    assert!(record.output.is_none());
}

#[tokio::test]
async fn a_retry_policy_calls_again_until_the_function_succeeds() {
    let h = flow_harness(failing()).await;
    let flow = calling(
        "- id: a\n  type: action\n  action:\n    function: f\n    input: {x: 1}\n    retries: {max_attempts: 3, delay: PT0.2S, codes: ['myapp.*']}\n",
        "",
    );
    deploy_flow(&h, "retries", &flow).await;
    let id = run_flow(&h, "retries", json!({})).await;
    // The first two calls fail; the function answers from the third on (the retry delay
    // leaves time to change the reply).
    h.driver
        .wait_until(WAIT, "two failed calls", |r| r.answered == 2)
        .await;
    h.driver.behaviour().set_reply(FakeReply::Echo);
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    assert_eq!(output(&record)["return"], json!({"x": 1}));
    assert_eq!(
        h.driver.record().invokes.len(),
        3,
        "one call and two retries"
    );
    let calls = calls_of(&h, &id).await;
    let statuses: Vec<_> = calls.iter().map(|c| c.status.as_deref()).collect();
    assert_eq!(
        statuses,
        [Some("failed"), Some("failed"), Some("succeeded")],
        "{calls:?}"
    );
    let lines = log_lines(&h, &id).await;
    assert!(
        lines.iter().any(|l| l.contains("retry 2 of 3")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_state_timeout_cancels_the_call_at_the_agent_and_is_catchable() {
    let h = flow_harness(FakeReply::Hold).await;
    let flow = calling(
        "- id: a\n  type: action\n  timeout: PT0.5S\n  action: {function: f}\n  catch: [{error: direktiv.cancels.timeout.soft, transition: late}]\n",
        "- {id: late, type: noop}\n",
    );
    deploy_flow(&h, "slow", &flow).await;
    let id = run_flow(&h, "slow", json!({})).await;
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    assert_eq!(
        output(&record)["error"]["code"],
        "direktiv.cancels.timeout.soft"
    );
    assert_eq!(finished(&h, &id).await, ["a", "late"]);
    let calls = calls_of(&h, &id).await;
    let record = h
        .driver
        .wait_until(WAIT, "the timed-out call cancelled", |r| {
            r.cancels.len() == 1 && r.in_flight == 0
        })
        .await;
    assert_eq!(record.cancels[0].action_id, calls[0].id);
}

#[tokio::test]
async fn cancelling_a_running_instance_cancels_its_call_at_the_agent() {
    let h = flow_harness(FakeReply::Hold).await;
    let flow = calling("- {id: a, type: action, action: {function: f}}\n", "");
    deploy_flow(&h, "held", &flow).await;
    let id = run_flow(&h, "held", json!({})).await;
    h.driver
        .wait_until(WAIT, "the call reached the agent", |r| r.in_flight == 1)
        .await;
    assert!(crate::flows::runner::cancel_instance(&h.state, &id)
        .await
        .unwrap());
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "cancelled", "{record:?}");
    assert_eq!(
        record.error_code.as_deref(),
        Some(faasbox_flow::engine::codes::CANCELLED)
    );
    let calls = calls_of(&h, &id).await;
    let record = h
        .driver
        .wait_until(WAIT, "the cancel at the agent", |r| {
            r.cancels.len() == 1 && r.in_flight == 0
        })
        .await;
    assert_eq!(record.cancels[0].action_id, calls[0].id);
}

#[tokio::test]
async fn foreach_runs_its_calls_at_once_within_the_bound() {
    let h = flow_harness(FakeReply::Hold).await;
    let flow = calling(
        "- id: each\n  type: foreach\n  array: 'jq([range(12) | {i: .}])'\n  action: {function: f, input: {item: 'jq(.i)'}}\n",
        "",
    );
    deploy_flow(&h, "each", &flow).await;
    let id = run_flow(&h, "each", json!({})).await;
    // At most 10 calls of one foreach run at once (the engine's bound).
    h.driver
        .wait_until(WAIT, "10 calls at once", |r| r.in_flight == 10)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        h.driver.record().invokes.len(),
        10,
        "no call beyond the bound started"
    );
    h.driver.release(12);
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    let items: Vec<_> = (0..12).map(|i| json!({"item": i})).collect();
    assert_eq!(
        output(&record)["return"],
        json!(items),
        "in the array's order"
    );
    assert_eq!(h.driver.record().invokes.len(), 12);
}

#[tokio::test]
async fn parallel_runs_its_actions_at_once() {
    let h = flow_harness(FakeReply::Hold).await;
    let flow = calling(
        "- id: all\n  type: parallel\n  mode: and\n  actions:\n  - {function: f, input: {a: 1}}\n  - {function: f, input: {b: 2}}\n  - {function: f, input: {c: 3}}\n",
        "",
    );
    deploy_flow(&h, "all", &flow).await;
    let id = run_flow(&h, "all", json!({})).await;
    h.driver
        .wait_until(WAIT, "the three calls at once", |r| r.in_flight == 3)
        .await;
    h.driver.release(3);
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    assert_eq!(
        output(&record)["return"],
        json!([{"a": 1}, {"b": 2}, {"c": 3}])
    );
}

#[tokio::test]
async fn a_subflow_runs_as_a_child_instance_and_returns_its_output() {
    let h = flow_harness(FakeReply::Echo).await;
    let child = calling(
        "- {id: c, type: action, action: {function: f, input: {doubled: 'jq(.n * 2)'}}, transform: {child: 'jq(.return.doubled)'}}\n",
        "",
    );
    deploy_flow(&h, "child", &child).await;
    let parent = "functions:\n- {id: sub, type: subflow, workflow: child}\nstates:\n- {id: p, type: action, action: {function: sub, input: {n: 'jq(.n)'}}}\n";
    deploy_flow(&h, "parent", parent).await;
    let id = run_flow(&h, "parent", json!({"n": 4})).await;
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    assert_eq!(output(&record)["return"], json!({"child": 8}));

    let calls = calls_of(&h, &id).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].kind, "instance");
    assert_eq!(calls[0].status.as_deref(), Some("complete"));
    let child = instance(&h, &calls[0].id).await;
    assert_eq!(child.flow, "child");
    assert_eq!(child.parent.as_deref(), Some(id.as_str()));
    assert_eq!(output(&child)["child"], 8);
}

/// Every instance of `flow` in the test namespace, each with its depth and status, waiting
/// until `count` of them ended.
async fn ended_instances_of(
    h: &Harness,
    flow: &str,
    count: usize,
) -> Vec<(u32, String, Option<String>)> {
    crate::test_support::wait_for("the recursion's instances to end", || async {
        let all = FlowStore::list_instances(&*h.state.store, NS, 100)
            .await
            .unwrap();
        let ended: Vec<_> = all
            .iter()
            .filter(|r| r.flow == flow && r.status != "running" && r.status != "waiting")
            .map(|r| (r.depth, r.status.clone(), r.error_code.clone()))
            .collect();
        if ended.len() >= count {
            Ok(ended)
        } else {
            Err(format!("{} of {count} ended: {ended:?}", ended.len()))
        }
    })
    .await
}

#[tokio::test]
async fn a_flow_that_calls_itself_stops_at_the_subflow_depth_bound() {
    let h = flow_harness(FakeReply::Echo).await;
    let flow = "functions:\n- {id: again, type: subflow, workflow: again}\nstates:\n- {id: a, type: action, action: {function: again}}\n";
    deploy_flow(&h, "again", flow).await;
    let id = run_flow(&h, "again", json!({})).await;
    let top = wait_ended(&h, &id).await;
    assert_eq!(top.status, "failed", "{top:?}");
    assert_eq!(
        top.error_code.as_deref(),
        Some(crate::flows::runner::SUBFLOW_TOO_DEEP)
    );
    let message = top.error_message.unwrap_or_default();
    assert!(message.contains("maximum subflow depth (5)"), "{message}");
    let mut all = ended_instances_of(&h, "again", 6).await;
    all.sort();
    let depths: Vec<u32> = all.iter().map(|(d, _, _)| *d).collect();
    assert_eq!(
        depths,
        [0, 1, 2, 3, 4, 5],
        "one instance per level, no deeper: {all:?}"
    );
    assert!(
        all.iter().all(|(_, status, _)| status == "failed"),
        "{all:?}"
    );
}

#[tokio::test]
async fn async_recursion_is_bounded_too() {
    let h = flow_harness(FakeReply::Echo).await;
    // Each instance starts another without waiting for it: nobody is its parent, and without
    // a depth each would start one more for ever.
    let flow = "functions:\n- {id: again, type: subflow, workflow: spawn}\nstates:\n- {id: a, type: action, async: true, action: {function: again}}\n";
    deploy_flow(&h, "spawn", flow).await;
    run_flow(&h, "spawn", json!({})).await;
    let all = ended_instances_of(&h, "spawn", 6).await;
    // Give a seventh time to appear if the bound did not hold.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stored = FlowStore::list_instances(&*h.state.store, NS, 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 6, "{stored:?}");
    assert!(
        all.iter().all(|(_, status, _)| status == "complete"),
        "{all:?}"
    );
    // The deepest one's action could not start its subflow: an async action's failure is
    // logged in its instance, as any async action's is.
    let deepest = stored
        .iter()
        .find(|r| r.depth == 5)
        .expect("an instance at depth 5");
    let logs = crate::test_support::wait_for("the refused start in the log", || async {
        let lines = log_lines(&h, &deepest.id).await;
        if lines
            .iter()
            .any(|l| l.contains(crate::flows::runner::SUBFLOW_TOO_DEEP))
        {
            Ok(lines)
        } else {
            Err(format!("{lines:?}"))
        }
    })
    .await;
    assert!(
        logs.iter().any(|l| l.contains("maximum subflow depth (5)")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn a_new_server_on_the_same_data_resumes_a_running_instance_to_its_end() {
    let h = flow_harness(FakeReply::Hold).await;
    let flow = calling(
        "- {id: first, type: noop, transform: {n: 1}, transition: a}\n- {id: a, type: action, action: {function: f, input: {x: 'jq(.n)'}}, transition: last}\n",
        "- {id: last, type: noop, transform: {got: 'jq(.return.x)'}}\n",
    );
    deploy_flow(&h, "resumed", &flow).await;
    let id = run_flow(&h, "resumed", json!({})).await;
    h.driver
        .wait_until(WAIT, "the call reached the agent", |r| r.in_flight == 1)
        .await;
    let old_driver = h.driver.clone();

    let h = h
        .restart(FakeDriver::new(FakeBehaviour::echo()).unwrap())
        .await;
    assert!(
        old_driver.record().running().is_empty(),
        "the old server's instances stopped"
    );
    assert_eq!(
        instance(&h, &id).await.status,
        "running",
        "a stopped server leaves its instance running"
    );
    let resumed = crate::flows::runner::resume_unfinished(&h.state)
        .await
        .unwrap();
    assert_eq!(resumed, 1);
    let record = wait_status(&h, &id, "complete").await;
    assert_eq!(output(&record)["got"], 1, "{record:?}");
    assert_eq!(
        finished(&h, &id).await,
        ["first", "a", "last"],
        "the finished state did not run again"
    );
    assert_eq!(
        h.driver.record().invokes.len(),
        1,
        "the new server made the call"
    );
    let listed = FlowStore::list_instances(&*h.state.store, NS, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "resumed, not started again: {listed:?}");
}

/// sc-flows: a wait whose deadline has come is timed out by the store sweep, with no timer on
/// this server (as for a wait saved by a server that is gone): the instance fails with the
/// wait's timeout. Its timer here is an hour away, so only the sweep can fire it.
#[tokio::test]
async fn a_due_wait_is_timed_out_by_the_store_sweep_without_a_timer() {
    use faasbox_store::{EventStore, ListenerAction};
    let h = flow_harness(FakeReply::Echo).await;
    let flow = "states:\n- {id: w, type: consumeEvent, timeout: PT1H, event: {type: never.sent}}\n";
    deploy_flow(&h, "waits", flow).await;
    let id = run_flow(&h, "waits", json!({})).await;
    let record = wait_status(&h, &id, "waiting").await;
    assert_eq!(
        crate::flows::runner::sweep_due_waits(&h.state)
            .await
            .unwrap(),
        0,
        "nothing is due yet"
    );
    // Move the wait's deadline (checkpoint and listener) into the past, as if its hour had
    // passed while its server was gone.
    let past = crate::clock::now_ms() - 1_000;
    let mut cp: serde_json::Value = serde_json::from_str(&record.checkpoint).unwrap();
    cp["wait"]["deadline_ms"] = json!(past);
    h.state
        .store
        .save_checkpoint(&id, "waiting", &cp.to_string(), None, "t", None)
        .await
        .unwrap();
    let mut listeners = EventStore::list_listeners(&*h.state.store, NS)
        .await
        .unwrap();
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    let mut wait = listeners.remove(0).listener;
    wait.deadline_ms = Some(past as i64);
    h.state.store.delete_instance_listeners(&id).await.unwrap();
    h.state
        .store
        .add_listener(&wait, Box::new(|_, _| ListenerAction::Ignore))
        .await
        .unwrap();

    assert_eq!(
        crate::flows::runner::sweep_due_waits(&h.state)
            .await
            .unwrap(),
        1
    );
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "failed", "{record:?}");
    assert!(
        record
            .error_code
            .as_deref()
            .is_some_and(|c| c.contains("timeout")),
        "{record:?}"
    );
    assert_eq!(
        crate::flows::runner::sweep_due_waits(&h.state)
            .await
            .unwrap(),
        0,
        "a fired wait is not fired again"
    );
}

/// sc-leases: another server's node id, for instances it holds.
const OTHER_NODE: &str = "feedfacefeedface";

/// Stores an instance of `ns/path` (input `{}`) held by `owner` (`None`: no owner, as before
/// leases) with a lease of `lease_ms`, without running it; its id.
async fn stored_instance(h: &Harness, path: &str, owner: Option<&str>, lease_ms: i64) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let prepared = crate::flows::runner::prepare(
        &h.state,
        &id,
        NS,
        path,
        json!({}),
        crate::flows::runner::Lineage::TOP,
        crate::flows::runner::StartedBy::Api,
    )
    .await
    .unwrap();
    let now = crate::clock::now_rfc3339();
    let mut record = prepared.record(&now);
    assert_eq!(
        record.owner,
        Some(h.state.node.as_str()),
        "this server owns the instances it creates"
    );
    record.owner = owner;
    record.lease_ms = lease_ms;
    FlowStore::create_instance(&*h.state.store, &record)
        .await
        .unwrap();
    id
}

/// A flow of two quick states.
const QUICK: &str = "states:\n- {id: one, type: noop, transform: {n: 1}, transition: two}\n- {id: two, type: noop, transform: {n: 2}}\n";

/// sc-leases: a run whose instance another server claimed meanwhile (this server's lease had
/// expired) stops at its next write without recording anything: the other server's hold
/// stands, the state it was in is not recorded as finished and no end is logged.
#[tokio::test]
async fn a_run_whose_instance_was_taken_over_stops_without_recording() {
    let h = flow_harness(FakeReply::Hold).await;
    let flow = calling(
        "- {id: first, type: noop, transform: {n: 1}, transition: a}\n- {id: a, type: action, action: {function: f}, transition: last}\n",
        "- {id: last, type: noop}\n",
    );
    deploy_flow(&h, "taken", &flow).await;
    // Created by this server with a lease that is over at once (nothing renews it here).
    let own = Some(h.state.node.as_str());
    let id = stored_instance(&h, "taken", own, 1).await;
    let run = crate::flows::runner::spawn(&h.state, id.clone());
    h.driver
        .wait_until(WAIT, "the call reached the agent", |r| r.in_flight == 1)
        .await;
    // Past the 1 ms lease by the store's millisecond clock (on a fast machine the call can
    // reach the agent within the same millisecond).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let epoch = FlowStore::claim_instance(
        &*h.state.store,
        &id,
        OTHER_NODE,
        60_000,
        faasbox_store::Claim::TakeOver,
    )
    .await
    .unwrap();
    assert_eq!(epoch, Some(1), "the expired lease is taken over");
    let lines_before = log_lines(&h, &id).await;
    assert!(!lines_before.is_empty());
    h.driver.release(1);
    let outcome = tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    match &outcome {
        faasbox_flow::engine::Outcome::Failed(e) => {
            assert_eq!(e.code, crate::flows::effects::LEASE_LOST, "{e:?}")
        }
        other => panic!("the run went on: {other:?}"),
    }
    let record = instance(&h, &id).await;
    assert_eq!(record.status, "running", "{record:?}");
    assert_eq!(
        finished(&h, &id).await,
        ["first"],
        "state a is not recorded"
    );
    let cp: serde_json::Value = serde_json::from_str(&record.checkpoint).unwrap();
    assert_eq!(cp["state"], "a", "the checkpoint stays where it was: {cp}");
    // The call's own lines are copied when it ends; the run logs nothing after them.
    let lines = log_lines(&h, &id).await;
    assert_eq!(lines[..lines_before.len()], lines_before[..]);
    assert!(
        lines[lines_before.len()..]
            .iter()
            .all(|l| l.starts_with("aid=")),
        "nothing more is logged: {lines:?}"
    );
    assert!(!h.state.flow_runs.is_running(&id));
    // The other server's hold stands: its fenced write goes through.
    FlowStore::save_checkpoint(
        &*h.state.store,
        &id,
        "running",
        &record.checkpoint,
        None,
        "t",
        Some((OTHER_NODE, 1)),
    )
    .await
    .unwrap();
}

/// sc-leases: at start, a server resumes its own running instances and those without an
/// owner (stored before leases), never one another server holds.
#[tokio::test]
async fn resume_at_start_leaves_another_servers_instance_and_takes_an_unowned_one() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "quick", QUICK).await;
    let others = stored_instance(&h, "quick", Some(OTHER_NODE), 60_000).await;
    let unowned = stored_instance(&h, "quick", None, 0).await;
    let own = Some(h.state.node.as_str());
    // Its own, with its lease expired meanwhile (as after a long stop): resumed still.
    let mine = stored_instance(&h, "quick", own, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let resumed = crate::flows::runner::resume_unfinished(&h.state)
        .await
        .unwrap();
    assert_eq!(resumed, 2);
    for id in [&unowned, &mine] {
        let record = wait_status(&h, id, "complete").await;
        assert_eq!(output(&record)["n"], 2, "{record:?}");
        assert_eq!(finished(&h, id).await, ["one", "two"]);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let record = instance(&h, &others).await;
    assert_eq!(record.status, "running", "{record:?}");
    assert!(finished(&h, &others).await.is_empty(), "not run here");
    assert!(
        FlowStore::claim_instance(
            &*h.state.store,
            &others,
            OTHER_NODE,
            60_000,
            faasbox_store::Claim::Mine
        )
        .await
        .unwrap()
        .is_some(),
        "still the other server's"
    );
}

/// sc-leases: a tick takes over an instance whose server let its lease expire, drives it to
/// its end and logs who took it over from whom; a live server's instance is left alone.
#[tokio::test]
async fn a_tick_takes_over_an_expired_instance_and_finishes_it() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "quick", QUICK).await;
    let dead = stored_instance(&h, "quick", Some(OTHER_NODE), 1).await;
    let live = stored_instance(&h, "quick", Some("0123456789abcdef"), 60_000).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let taken = crate::flows::leases::tick(&h.state).await;
    assert_eq!(taken, std::slice::from_ref(&dead));
    let record = wait_status(&h, &dead, "complete").await;
    assert_eq!(output(&record)["n"], 2, "{record:?}");
    assert_eq!(finished(&h, &dead).await, ["one", "two"]);
    let lines = log_lines(&h, &dead).await;
    let expected = format!(
        "server node {OTHER_NODE} stopped driving this instance (its lease expired); node {} takes it over and resumes it at state 'one'",
        h.state.node
    );
    assert!(lines.contains(&expected), "{lines:?}");

    assert!(
        crate::flows::leases::tick(&h.state).await.is_empty(),
        "nothing more to take over"
    );
    assert_eq!(instance(&h, &live).await.status, "running");
    assert!(finished(&h, &live).await.is_empty());
}

/// sc-leases: of two resumptions of one wait (two servers, or an event and a timeout), one
/// claims the instance and drives it; the other does nothing.
#[tokio::test]
async fn a_wait_is_resumed_by_one_of_two_resumers() {
    use faasbox_flow::engine::WaitResolution;
    let h = flow_harness(FakeReply::Echo).await;
    let flow = "states:\n- {id: w, type: consumeEvent, timeout: PT1H, event: {type: never.sent}, catch: [{error: 'direktiv.cancels.timeout.soft', transition: after}]}\n- {id: after, type: noop, transform: {timed_out: true}}\n";
    deploy_flow(&h, "waits", flow).await;
    let id = run_flow(&h, "waits", json!({})).await;
    wait_status(&h, &id, "waiting").await;
    let resume =
        || crate::flows::runner::resume_waiting(&h.state, id.clone(), WaitResolution::TimedOut);
    let (a, b) = tokio::join!(resume(), resume());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "one resumed it: {a:?} / {b:?}");
    let record = wait_ended(&h, &id).await;
    assert_eq!(record.status, "complete", "{record:?}");
    assert_eq!(output(&record)["timed_out"], true, "{record:?}");
    assert_eq!(finished(&h, &id).await, ["w", "after"]);
}
