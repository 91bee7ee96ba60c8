//! Fast tests of the event dispatcher with the flow runner against the fake driver and a
//! SQLite store in a temporary directory (no root, no containers): an event that starts a
//! flow runs it once and a duplicate id is not delivered again, a `consumeEvent` wait is
//! resumed by the matching event only (also after a restart), a delayed event is released when
//! due, deleting a flow removes its listener, and a scheduled flow starts once per cron slot.

use std::time::{Duration, Instant};

use faasbox_driver::fake::FakeReply;
use faasbox_events::{AttributeValue, CloudEvent, EventData};
use faasbox_store::{EventInsert, EventStore, FlowInstanceRecord, FlowStore, ListenerKind};
use serde_json::{json, Value};

use crate::test_support::{
    delete_flow, deploy_flow, flow_harness, output, run_flow, wait_for, wait_status, Harness, NS,
    WAIT,
};

/// An event with JSON `data` and the extension attributes `extensions`.
fn event(id: &str, event_type: &str, data: Value, extensions: &[(&str, &str)]) -> CloudEvent {
    let mut event = CloudEvent::new(id, "/shop/eu", event_type);
    event.data = Some(EventData::Json(data));
    event.datacontenttype = Some("application/json".into());
    for (name, value) in extensions {
        event
            .extensions
            .insert((*name).to_string(), AttributeValue::String((*value).into()));
    }
    event
}

/// Accepts `event` into the namespace as `POST …/events` does.
async fn send(h: &Harness, event: CloudEvent) -> EventInsert {
    crate::events::emit(&h.state, NS, event).await.unwrap()
}

async fn instances_of(h: &Harness, flow: &str) -> Vec<FlowInstanceRecord> {
    FlowStore::list_instances(&*h.state.store, NS, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.flow == flow)
        .collect()
}

/// Waits until every accepted event was offered to the listeners and every delivery taken.
async fn all_dispatched(h: &Harness) {
    wait_for("every event dispatched and delivered", move || async move {
        let undispatched = EventStore::undispatched_events(&*h.state.store, 10)
            .await
            .unwrap();
        let pending = EventStore::pending_deliveries(&*h.state.store)
            .await
            .unwrap();
        if undispatched.is_empty() && pending.is_empty() {
            Ok(())
        } else {
            Err(format!("{undispatched:?}, {pending:?}"))
        }
    })
    .await
}

/// Waits until `flow` has `count` complete instances; them, oldest first.
async fn complete_instances(h: &Harness, flow: &str, count: usize) -> Vec<FlowInstanceRecord> {
    let mut done = wait_for(
        &format!("{count} complete instances of {flow}"),
        move || async move {
            let done: Vec<_> = instances_of(h, flow)
                .await
                .into_iter()
                .filter(|i| i.status == "complete")
                .collect();
            if done.len() >= count {
                Ok(done)
            } else {
                Err(format!("{done:?}"))
            }
        },
    )
    .await;
    done.sort_by(|a, b| a.created.cmp(&b.created));
    done
}

const ON_ORDER: &str = r#"functions:
- {id: f, type: knative-namespace, service: fn}
start:
  type: event
  event:
    type: order.created
    context:
      region: eu
states:
- id: a
  type: action
  action: {function: f, input: {order: 'jq(."order.created".data.order)'}}
"#;

#[tokio::test]
async fn an_event_start_runs_its_flow_once_and_a_duplicate_is_not_delivered_again() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "on-order", ON_ORDER).await;
    let listeners = EventStore::list_listeners(&*h.state.store, NS)
        .await
        .unwrap();
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    assert_eq!(listeners[0].listener.kind, ListenerKind::Start);

    // Its context filter refuses an event from elsewhere.
    let other = event(
        "e-0",
        "order.created",
        json!({"order": 0}),
        &[("region", "us")],
    );
    assert!(matches!(send(&h, other).await, EventInsert::New(_)));
    let first = event(
        "e-1",
        "order.created",
        json!({"order": 7}),
        &[("region", "eu")],
    );
    assert!(matches!(send(&h, first.clone()).await, EventInsert::New(_)));
    let done = complete_instances(&h, "on-order", 1).await;
    assert_eq!(output(&done[0])["return"], json!({"order": 7}));
    let input: Value = serde_json::from_str(&done[0].input).unwrap();
    assert_eq!(input["order.created"]["id"], "e-1", "{input}");

    // The same id again is accepted once only; the next new event is the barrier: once it
    // ran, the duplicate had its chance.
    assert!(matches!(send(&h, first).await, EventInsert::Duplicate(_)));
    let next = event(
        "e-2",
        "order.created",
        json!({"order": 8}),
        &[("region", "eu")],
    );
    assert!(matches!(send(&h, next).await, EventInsert::New(_)));
    let done = complete_instances(&h, "on-order", 2).await;
    all_dispatched(&h).await;
    assert_eq!(output(&done[1])["return"], json!({"order": 8}));
    assert_eq!(instances_of(&h, "on-order").await.len(), 2);
    assert_eq!(h.driver.record().invokes.len(), 2, "one call per instance");
}

const CONSUME: &str = r#"states:
- id: wait
  type: consumeEvent
  timeout: PT5M
  event:
    type: approval.given
    context:
      orderid: jq(.order)
  transform:
    order: jq(.order)
    approved: jq(."approval.given".data.ok)
"#;

#[tokio::test]
async fn a_consume_event_wait_is_resumed_by_its_matching_event_only() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "approve", CONSUME).await;
    let id = run_flow(&h, "approve", json!({"order": "a-1"})).await;
    wait_status(&h, &id, "waiting").await;
    let waits = EventStore::list_listeners(&*h.state.store, NS)
        .await
        .unwrap();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(waits[0].listener.kind, ListenerKind::Wait);
    assert_eq!(waits[0].listener.instance_id.as_deref(), Some(id.as_str()));

    // Another order's approval, and another type with this order: neither concerns it.
    let other_order = event(
        "x-1",
        "approval.given",
        json!({"ok": false}),
        &[("orderid", "b-2")],
    );
    send(&h, other_order).await;
    let other_type = event(
        "x-2",
        "approval.denied",
        json!({"ok": false}),
        &[("orderid", "a-1")],
    );
    send(&h, other_type).await;
    all_dispatched(&h).await;
    let record = wait_status(&h, &id, "waiting").await;
    assert!(record.output.is_none());

    let matching = event(
        "x-3",
        "approval.given",
        json!({"ok": true}),
        &[("orderid", "a-1")],
    );
    send(&h, matching).await;
    let record = wait_status(&h, &id, "complete").await;
    assert_eq!(output(&record), json!({"order": "a-1", "approved": true}));
    let left = EventStore::list_listeners(&*h.state.store, NS)
        .await
        .unwrap();
    assert!(left.is_empty(), "the wait is gone: {left:?}");
}

#[tokio::test]
async fn a_delayed_event_is_released_when_it_is_due() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "on-order", ON_ORDER).await;
    let delay = Duration::from_millis(400);
    let sent = Instant::now();
    let later = event(
        "d-1",
        "order.created",
        json!({"order": 3}),
        &[("region", "eu")],
    );
    crate::events::emit_later(&h.state, NS, later, delay)
        .await
        .unwrap();
    let accepted = EventStore::list_events(&*h.state.store, NS, 10)
        .await
        .unwrap();
    assert!(accepted.is_empty(), "held until due: {accepted:?}");
    assert!(instances_of(&h, "on-order").await.is_empty());

    let done = complete_instances(&h, "on-order", 1).await;
    assert!(
        sent.elapsed() >= delay,
        "started {:?} after the send, before the delay",
        sent.elapsed()
    );
    assert_eq!(output(&done[0])["return"], json!({"order": 3}));
    let accepted = EventStore::list_events(&*h.state.store, NS, 10)
        .await
        .unwrap();
    assert_eq!(accepted.len(), 1, "released once: {accepted:?}");
    assert!(sent.elapsed() < WAIT);
}

#[tokio::test]
async fn deleting_a_flow_removes_its_listener() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "on-order", ON_ORDER).await;
    assert_eq!(
        EventStore::list_listeners(&*h.state.store, NS)
            .await
            .unwrap()
            .len(),
        1
    );
    delete_flow(&h, "on-order").await;
    let left = EventStore::list_listeners(&*h.state.store, NS)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");

    let after = event(
        "g-1",
        "order.created",
        json!({"order": 1}),
        &[("region", "eu")],
    );
    assert!(matches!(send(&h, after).await, EventInsert::New(_)));
    all_dispatched(&h).await;
    assert!(instances_of(&h, "on-order").await.is_empty());
    assert_eq!(h.driver.record().start_attempts, 0, "nothing ran");
}

#[tokio::test]
async fn a_wait_survives_a_restart_and_is_resumed_by_its_event() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "approve", CONSUME).await;
    let id = run_flow(&h, "approve", json!({"order": "r-1"})).await;
    wait_status(&h, &id, "waiting").await;

    let h = h
        .restart(faasbox_driver::fake::FakeDriver::new(Default::default()).unwrap())
        .await;
    crate::flows::runner::resume_unfinished(&h.state)
        .await
        .unwrap();
    assert_eq!(
        crate::test_support::instance(&h, &id).await.status,
        "waiting"
    );
    let matching = event(
        "r-ok",
        "approval.given",
        json!({"ok": true}),
        &[("orderid", "r-1")],
    );
    send(&h, matching).await;
    let record = wait_status(&h, &id, "complete").await;
    assert_eq!(output(&record), json!({"order": "r-1", "approved": true}));
}

const EVERY_SECOND: &str = r#"start:
  type: scheduled
  cron: "* * * * * *"
states:
- {id: a, type: noop, transform: {ticked: true}}
"#;

#[tokio::test]
async fn a_scheduled_flow_starts_once_per_slot_and_stops_with_its_delete() {
    let h = flow_harness(FakeReply::Echo).await;
    let deployed = Instant::now();
    deploy_flow(&h, "tick", EVERY_SECOND).await;
    let schedules = EventStore::schedules(&*h.state.store).await.unwrap();
    assert_eq!(schedules.len(), 1, "{schedules:?}");

    let done = complete_instances(&h, "tick", 2).await;
    assert_eq!(output(&done[0]), json!({"ticked": true}));
    // The scheduler looks five times a second; each one-second slot starts one instance, so
    // no more start than second boundaries passed since the deploy.
    let started = instances_of(&h, "tick").await.len() as u64;
    let elapsed = deployed.elapsed();
    assert!(
        started <= elapsed.as_secs() + 1,
        "{started} instances in {elapsed:?}"
    );

    delete_flow(&h, "tick").await;
    let schedules = EventStore::schedules(&*h.state.store).await.unwrap();
    assert!(schedules.is_empty(), "{schedules:?}");
}

/// sc-leases: a server claimed a wait to resume it and stopped before the instance moved on
/// (the instance is `running`, its checkpoint still waits, its listener gone). Taken over, it
/// waits again, and the event that came meanwhile, with nobody waiting, still resumes it,
/// once.
#[tokio::test]
async fn a_wait_whose_resumer_stopped_waits_again_and_its_event_is_not_lost() {
    let h = flow_harness(FakeReply::Echo).await;
    deploy_flow(&h, "approve", CONSUME).await;
    let id = run_flow(&h, "approve", json!({"order": "a-1"})).await;
    wait_status(&h, &id, "waiting").await;
    // The other server's resume: the wait's listener taken, the instance claimed; then it
    // stops (its 1 ms lease is over at once).
    assert_eq!(
        EventStore::delete_instance_listeners(&*h.state.store, &id)
            .await
            .unwrap(),
        1
    );
    let claimed = FlowStore::claim_instance(
        &*h.state.store,
        &id,
        "feedfacefeedface",
        1,
        faasbox_store::Claim::Resume,
    )
    .await
    .unwrap();
    assert!(claimed.is_some());
    let matching = event(
        "x-3",
        "approval.given",
        json!({"ok": true}),
        &[("orderid", "a-1")],
    );
    send(&h, matching).await;
    all_dispatched(&h).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        wait_status(&h, &id, "running").await.status,
        "running",
        "nobody resumed it yet"
    );

    let taken = crate::flows::leases::tick(&h.state).await;
    assert_eq!(taken, std::slice::from_ref(&id));
    let record = wait_status(&h, &id, "complete").await;
    assert_eq!(output(&record), json!({"order": "a-1", "approved": true}));
    let states = FlowStore::finished_states(&*h.state.store, &id)
        .await
        .unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    all_dispatched(&h).await;
}
