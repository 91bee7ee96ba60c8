//! Cases of events, listeners, deliveries, schedules and delayed events.

use std::sync::Arc;

use super::Backend;
use crate::*;

/// The backend's store with the namespace `demo`.
async fn store(backend: &impl Backend) -> Arc<dyn Store> {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
}

fn listener(id: &str, kind: ListenerKind, after_seq: i64) -> Listener {
    Listener {
        id: id.into(),
        namespace: "demo".into(),
        kind,
        flow: "/listen".into(),
        instance_id: (kind == ListenerKind::Wait).then(|| format!("inst-{id}")),
        mode: "one".into(),
        filters: r#"[{"type":"a"}]"#.into(),
        lifespan_ms: None,
        deadline_ms: None,
        after_seq,
        created_ms: 1,
    }
}

/// Fires on events of type `a`, keeps `k` for an eventsAnd, ignores the rest.
fn by_type(event: &StoredEvent, listener: &ListenerRecord) -> ListenerAction {
    match event.event_type.as_str() {
        "a" => ListenerAction::Fire {
            instance_id: listener
                .listener
                .instance_id
                .clone()
                .unwrap_or_else(|| format!("new-{}", event.seq)),
            events: format!("[{}]", event.event),
        },
        "k" => ListenerAction::Keep {
            filter_index: 0,
            expired: vec![],
        },
        _ => ListenerAction::Ignore,
    }
}

async fn insert(store: &dyn Store, id: &str, event_type: &str) -> EventInsert {
    store
        .insert_event("demo", id, "/src", event_type, r#"{"x":1}"#, 100)
        .await
        .unwrap()
}

/// An event with the namespace, source and id of an accepted one is a duplicate with the first
/// one's seq; an unknown namespace is `NoNamespace`; the watermark is the newest seq.
pub async fn duplicate_events_are_accepted_once(backend: &impl Backend) {
    let store = store(backend).await;
    let EventInsert::New(seq) = insert(&*store, "1", "a").await else {
        panic!("first insert is new")
    };
    assert_eq!(insert(&*store, "1", "a").await, EventInsert::Duplicate(seq));
    assert!(matches!(
        store
            .insert_event("demo", "1", "/other", "a", "{}", 1)
            .await
            .unwrap(),
        EventInsert::New(_)
    ));
    assert!(matches!(
        store.insert_event("nope", "1", "/src", "a", "{}", 1).await,
        Err(StoreError::NoNamespace(_))
    ));
    let listed = store.list_events("demo", 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(store.event_watermark().await.unwrap(), listed[0].seq);
}

/// Dispatching fires a wait once and a start every time, queues deliveries in listener order,
/// does nothing the second time, and a finished delivery is gone.
pub async fn dispatch_fires_waits_once_and_starts_every_time(backend: &impl Backend) {
    let store = store(backend).await;
    store
        .replace_start_listeners("demo", "/listen", &[listener("s", ListenerKind::Start, 0)])
        .await
        .unwrap();
    store
        .add_listener(&listener("w", ListenerKind::Wait, 0), Box::new(by_type))
        .await
        .unwrap();
    for id in ["1", "2"] {
        let EventInsert::New(seq) = insert(&*store, id, "a").await else {
            panic!()
        };
        let deliveries = store.dispatch_event(seq, Box::new(by_type)).await.unwrap();
        let kinds: Vec<_> = deliveries.iter().map(|d| d.kind).collect();
        if id == "1" {
            assert_eq!(kinds, [ListenerKind::Start, ListenerKind::Wait]);
        } else {
            assert_eq!(kinds, [ListenerKind::Start]);
        }
        // Dispatching again does nothing.
        assert!(store
            .dispatch_event(seq, Box::new(by_type))
            .await
            .unwrap()
            .is_empty());
    }
    assert!(store.undispatched_events(10).await.unwrap().is_empty());
    let pending = store.pending_deliveries().await.unwrap();
    assert_eq!(pending.len(), 3);
    assert_eq!(pending[1].instance_id, "inst-w");
    store.finish_delivery(pending[0].id).await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 2);
}

fn subscription(name: &str, function: &str, listener_id: &str, time: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        namespace: "demo".into(),
        name: name.into(),
        function: function.into(),
        event_type: "a".into(),
        source: Some("/src*".into()),
        context: r#"{"region":"eu"}"#.into(),
        listener_id: listener_id.into(),
        created: time.into(),
        modified: time.into(),
    }
}

/// A subscription is stored with its listener (kind subscription, named after it), sees only
/// events accepted after it was put, fires on every matching one; replacing it keeps
/// `created` and swaps the listener; deleting it removes its listener and its deliveries not
/// finished yet; a missing namespace is `NoNamespace`.
pub async fn subscriptions_fire_for_later_events_and_their_delete_drops_their_deliveries(
    backend: &impl Backend,
) {
    let store = store(backend).await;
    let EventInsert::New(early) = insert(&*store, "0", "a").await else {
        panic!()
    };
    let filters = r#"[{"type":"a"}]"#;
    let first = subscription("sub", "f", "l1", "t1");
    assert!(store.put_subscription(&first, filters, 5).await.unwrap());
    let missing = SubscriptionRecord {
        namespace: "nope".into(),
        ..first.clone()
    };
    assert!(matches!(
        store.put_subscription(&missing, filters, 5).await,
        Err(StoreError::NoNamespace(_))
    ));
    assert_eq!(
        store.get_subscription("demo", "sub").await.unwrap(),
        Some(first.clone())
    );
    let listeners = store.list_listeners("demo").await.unwrap();
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    let listener = &listeners[0].listener;
    assert_eq!(
        (listener.id.as_str(), listener.kind, listener.flow.as_str()),
        ("l1", ListenerKind::Subscription, "sub")
    );
    assert_eq!(listener.after_seq, early, "only later events count");
    assert_eq!(listener.filters, filters);

    // The event from before it is not offered; every later one fires it.
    assert!(store
        .dispatch_event(early, Box::new(by_type))
        .await
        .unwrap()
        .is_empty());
    for id in ["1", "2"] {
        let EventInsert::New(seq) = insert(&*store, id, "a").await else {
            panic!()
        };
        let fired = store.dispatch_event(seq, Box::new(by_type)).await.unwrap();
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].kind, ListenerKind::Subscription);
        assert_eq!(fired[0].flow, "sub");
    }
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 2);

    // Replaced: created kept, the new listener only.
    let second = SubscriptionRecord {
        function: "g".into(),
        ..subscription("sub", "g", "l2", "t2")
    };
    assert!(!store.put_subscription(&second, filters, 6).await.unwrap());
    let stored = store
        .get_subscription("demo", "sub")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.function.as_str(),
            stored.created.as_str(),
            stored.modified.as_str()
        ),
        ("g", "t1", "t2")
    );
    let ids: Vec<String> = store
        .list_listeners("demo")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.listener.id)
        .collect();
    assert_eq!(ids, ["l2"]);
    store
        .put_subscription(&subscription("other", "f", "l3", "t3"), filters, 7)
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_subscriptions("demo")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["other", "sub"]);

    // Deleted: its listener and undelivered deliveries go; the other one stays.
    assert!(store.delete_subscription("demo", "sub").await.unwrap());
    assert!(!store.delete_subscription("demo", "sub").await.unwrap());
    assert!(store
        .get_subscription("demo", "sub")
        .await
        .unwrap()
        .is_none());
    assert!(store.pending_deliveries().await.unwrap().is_empty());
    let ids: Vec<String> = store
        .list_listeners("demo")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.listener.id)
        .collect();
    assert_eq!(ids, ["l3"]);
    // They go with the namespace.
    store.delete_namespace("demo").await.unwrap();
    assert!(store.list_subscriptions("demo").await.unwrap().is_empty());
}

/// Events not dispatched yet are found again after a reopen.
pub async fn undispatched_events_survive_a_reopen(backend: &impl Backend) {
    {
        let store = backend.open().await;
        store.create_namespace("demo", "t0").await.unwrap();
        insert(&*store, "1", "a").await;
    }
    let store = backend.open().await;
    let pending = store.undispatched_events(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event, r#"{"x":1}"#);
}

/// A wait registered late is offered the events dispatched after its `after_seq`, not before,
/// and fires at once.
pub async fn a_late_wait_sees_events_dispatched_after_its_watermark(backend: &impl Backend) {
    let store = store(backend).await;
    let EventInsert::New(before) = insert(&*store, "0", "a").await else {
        panic!()
    };
    store
        .dispatch_event(before, Box::new(by_type))
        .await
        .unwrap();
    let watermark = store.event_watermark().await.unwrap();
    let EventInsert::New(during) = insert(&*store, "1", "a").await else {
        panic!()
    };
    store
        .dispatch_event(during, Box::new(by_type))
        .await
        .unwrap();
    // The wait registers after event 1 was dispatched to nobody: it still gets it, not 0.
    let fired = store
        .add_listener(
            &listener("w", ListenerKind::Wait, watermark),
            Box::new(by_type),
        )
        .await
        .unwrap()
        .expect("fired at once");
    assert!(fired.events.contains(r#"{"x":1}"#));
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 1);
    assert!(store.list_listeners("demo").await.unwrap().is_empty());
}

/// An eventsAnd listener's gathered events are kept across dispatches and cleared when it fires.
pub async fn gathered_progress_is_kept_and_cleared_on_fire(backend: &impl Backend) {
    let store = store(backend).await;
    store
        .replace_start_listeners("demo", "/listen", &[listener("s", ListenerKind::Start, 0)])
        .await
        .unwrap();
    let EventInsert::New(k) = insert(&*store, "1", "k").await else {
        panic!()
    };
    store.dispatch_event(k, Box::new(by_type)).await.unwrap();
    let listeners = store.list_listeners("demo").await.unwrap();
    assert_eq!(listeners[0].gathered.len(), 1);
    assert_eq!(listeners[0].gathered[0].event_seq, k);
    let EventInsert::New(a) = insert(&*store, "2", "a").await else {
        panic!()
    };
    store.dispatch_event(a, Box::new(by_type)).await.unwrap();
    assert!(store.list_listeners("demo").await.unwrap()[0]
        .gathered
        .is_empty());
}

/// Replacing a flow's start listeners removes the old ones; an instance's waits can be
/// removed; deleting the namespace removes its events and schedules.
pub async fn redeploy_replaces_start_listeners_and_namespace_deletion_removes_everything(
    backend: &impl Backend,
) {
    let store = store(backend).await;
    store
        .replace_start_listeners("demo", "/listen", &[listener("s1", ListenerKind::Start, 0)])
        .await
        .unwrap();
    store
        .replace_start_listeners("demo", "/listen", &[listener("s2", ListenerKind::Start, 0)])
        .await
        .unwrap();
    let ids: Vec<_> = store
        .list_listeners("demo")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.listener.id)
        .collect();
    assert_eq!(ids, ["s2"]);
    store
        .add_listener(&listener("w", ListenerKind::Wait, 0), Box::new(by_type))
        .await
        .unwrap();
    assert_eq!(store.delete_instance_listeners("inst-w").await.unwrap(), 1);
    insert(&*store, "1", "a").await;
    store
        .put_schedule("demo", "/cron", "* * * * *", 0)
        .await
        .unwrap();
    assert!(store.delete_namespace("demo").await.unwrap());
    assert!(store.undispatched_events(10).await.unwrap().is_empty());
    assert!(store.schedules().await.unwrap().is_empty());
}

/// A slot is claimed once; resetting the same cron keeps the last slot, a new cron counts from
/// its time, and a changed or deleted schedule claims nothing.
pub async fn schedule_slots_are_claimed_once(backend: &impl Backend) {
    let store = store(backend).await;
    store
        .put_schedule("demo", "/cron", "* * * * *", 1_000)
        .await
        .unwrap();
    assert!(store
        .claim_schedule_slot("demo", "/cron", "* * * * *", 60_000, None)
        .await
        .unwrap());
    assert!(!store
        .claim_schedule_slot("demo", "/cron", "* * * * *", 60_000, None)
        .await
        .unwrap());
    // Redeploying the same cron keeps the last slot; a new cron restarts from now.
    store
        .put_schedule("demo", "/cron", "* * * * *", 90_000)
        .await
        .unwrap();
    assert_eq!(store.schedules().await.unwrap()[0].last_fired_ms, 60_000);
    assert!(!store
        .claim_schedule_slot("demo", "/cron", "*/5 * * * *", 120_000, None)
        .await
        .unwrap());
    store
        .put_schedule("demo", "/cron", "*/5 * * * *", 90_000)
        .await
        .unwrap();
    assert_eq!(store.schedules().await.unwrap()[0].last_fired_ms, 90_000);
    assert!(store.delete_schedule("demo", "/cron").await.unwrap());
    assert!(!store
        .claim_schedule_slot("demo", "/cron", "*/5 * * * *", 300_000, None)
        .await
        .unwrap());
}

fn cron_instance<'a>(id: &'a str) -> NewInstance<'a> {
    NewInstance {
        id,
        namespace: "demo",
        flow: "/cron",
        source: "states: []",
        input: "{}",
        checkpoint: "{}",
        parent: None,
        depth: 0,
        now: "2026-01-01T00:00:00Z",
        owner: None,
        lease_ms: 0,
    }
}

/// A claimed slot's instance is stored with the claim (a refused claim stores none) and is
/// found `running` after a reopen.
pub async fn a_claimed_slot_s_instance_is_stored_with_the_claim_and_survives_a_crash(
    backend: &impl Backend,
) {
    {
        let store = backend.open().await;
        store.create_namespace("demo", "t0").await.unwrap();
        store
            .put_schedule("demo", "/cron", "* * * * *", 1_000)
            .await
            .unwrap();
        assert!(store
            .claim_schedule_slot(
                "demo",
                "/cron",
                "* * * * *",
                60_000,
                Some(&cron_instance("i-1"))
            )
            .await
            .unwrap());
        // A slot claimed already makes no second instance.
        assert!(!store
            .claim_schedule_slot(
                "demo",
                "/cron",
                "* * * * *",
                60_000,
                Some(&cron_instance("i-2"))
            )
            .await
            .unwrap());
        assert!(store.instance("i-2").await.unwrap().is_none());
        // The server "dies" here, before it started the instance.
    }
    let store = backend.open().await;
    let running: Vec<String> = store
        .instances_with_status("running")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        running,
        ["i-1"],
        "the start-up resume finds the slot's instance"
    );
    assert_eq!(store.schedules().await.unwrap()[0].last_fired_ms, 60_000);
}

/// Held events survive a reopen, are accepted only when due (received then, after the
/// watermark), in order, once.
pub async fn delayed_events_are_accepted_when_due_and_survive_a_reopen(backend: &impl Backend) {
    let held = |id: &str, due_ms| DelayedEvent {
        namespace: "demo".into(),
        id: id.into(),
        source: "/flow".into(),
        event_type: "a".into(),
        event: format!(r#"{{"id":"{id}"}}"#),
        due_ms,
    };
    {
        let store = backend.open().await;
        store.create_namespace("demo", "t0").await.unwrap();
        store
            .insert_delayed_event(&held("late", 5_000))
            .await
            .unwrap();
        store
            .insert_delayed_event(&held("soon", 2_000))
            .await
            .unwrap();
        assert_eq!(store.next_delayed_event_due().await.unwrap(), Some(2_000));
        assert_eq!(store.release_due_events(1_999).await.unwrap(), 0);
        assert!(store.undispatched_events(10).await.unwrap().is_empty());
    }
    let store = backend.open().await;
    let watermark = store.event_watermark().await.unwrap();
    assert_eq!(store.release_due_events(2_500).await.unwrap(), 1);
    let accepted = store.undispatched_events(10).await.unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].id, "soon");
    assert_eq!(accepted[0].received_ms, 2_500, "received when it was due");
    assert!(
        accepted[0].seq > watermark,
        "a wait begun before it counts it"
    );
    assert_eq!(store.next_delayed_event_due().await.unwrap(), Some(5_000));
    assert_eq!(store.release_due_events(9_000).await.unwrap(), 1);
    assert_eq!(store.next_delayed_event_due().await.unwrap(), None);
    assert_eq!(store.release_due_events(9_000).await.unwrap(), 0);
    assert_eq!(store.undispatched_events(10).await.unwrap().len(), 2);
}

/// Listeners (added or in a replacement), schedules and held events of a missing namespace are
/// `NoNamespace`, and a refused replacement changes nothing.
pub async fn listeners_schedules_and_held_events_need_their_namespace(backend: &impl Backend) {
    let store = store(backend).await;
    let stray = Listener {
        namespace: "nope".into(),
        ..listener("x", ListenerKind::Start, 0)
    };
    assert!(matches!(
        store.add_listener(&stray, Box::new(by_type)).await,
        Err(StoreError::NoNamespace(_))
    ));
    store
        .replace_start_listeners("demo", "/listen", &[listener("s", ListenerKind::Start, 0)])
        .await
        .unwrap();
    assert!(matches!(
        store
            .replace_start_listeners(
                "demo",
                "/listen",
                &[listener("s2", ListenerKind::Start, 0), stray.clone()]
            )
            .await,
        Err(StoreError::NoNamespace(_))
    ));
    let ids: Vec<String> = store
        .list_listeners("demo")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.listener.id)
        .collect();
    assert_eq!(ids, ["s"], "the refused replacement changed nothing");
    assert!(matches!(
        store.put_schedule("nope", "/cron", "* * * * *", 0).await,
        Err(StoreError::NoNamespace(_))
    ));
    assert!(store.schedules().await.unwrap().is_empty());
    let held = DelayedEvent {
        namespace: "nope".into(),
        id: "1".into(),
        source: "/flow".into(),
        event_type: "a".into(),
        event: "{}".into(),
        due_ms: 1,
    };
    assert!(matches!(
        store.insert_delayed_event(&held).await,
        Err(StoreError::NoNamespace(_))
    ));
    assert_eq!(store.next_delayed_event_due().await.unwrap(), None);
}

/// Every namespace's waits (not starts) are listed by `created_ms`, then id, with their
/// deadlines; an instance's waits are removed once; the watermark before a time is the newest
/// event received before it.
pub async fn waits_are_listed_with_their_deadlines_and_watermarks_follow_reception(
    backend: &impl Backend,
) {
    let store = store(backend).await;
    store
        .replace_start_listeners("demo", "/listen", &[listener("s", ListenerKind::Start, 0)])
        .await
        .unwrap();
    let waits = [
        Listener {
            created_ms: 2,
            deadline_ms: Some(50),
            ..listener("w2", ListenerKind::Wait, 0)
        },
        Listener {
            created_ms: 2,
            ..listener("w1", ListenerKind::Wait, 0)
        },
        listener("w0", ListenerKind::Wait, 0),
    ];
    for wait in &waits {
        store.add_listener(wait, Box::new(by_type)).await.unwrap();
    }
    let listed = store.wait_listeners().await.unwrap();
    assert_eq!(
        listed,
        [waits[2].clone(), waits[1].clone(), waits[0].clone()]
    );
    assert_eq!(store.delete_instance_listeners("inst-w1").await.unwrap(), 1);
    assert_eq!(store.delete_instance_listeners("inst-w1").await.unwrap(), 0);
    let ids: Vec<String> = store
        .wait_listeners()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, ["w0", "w2"]);

    assert_eq!(store.event_watermark_before(1_000).await.unwrap(), 0);
    let EventInsert::New(first) = insert(&*store, "1", "b").await else {
        panic!()
    };
    let EventInsert::New(second) = store
        .insert_event("demo", "2", "/src", "b", "{}", 200)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(store.event_watermark_before(100).await.unwrap(), 0);
    assert_eq!(store.event_watermark_before(101).await.unwrap(), first);
    assert_eq!(store.event_watermark_before(1_000).await.unwrap(), second);
}

/// A held event that repeats an accepted one (namespace, source, id) is dropped when released
/// and not counted.
pub async fn a_held_event_repeating_an_accepted_one_is_dropped(backend: &impl Backend) {
    let store = store(backend).await;
    store
        .insert_event("demo", "1", "/flow", "a", "{}", 10)
        .await
        .unwrap();
    for id in ["1", "2"] {
        store
            .insert_delayed_event(&DelayedEvent {
                namespace: "demo".into(),
                id: id.into(),
                source: "/flow".into(),
                event_type: "a".into(),
                event: "{}".into(),
                due_ms: 100,
            })
            .await
            .unwrap();
    }
    assert_eq!(store.release_due_events(100).await.unwrap(), 1);
    let events = store.list_events("demo", 10).await.unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["2", "1"]);
    assert_eq!(
        events[1].received_ms, 10,
        "the accepted one is kept as it was"
    );
    assert_eq!(store.next_delayed_event_due().await.unwrap(), None);
}

/// An eventsAnd listener's filter keeps the latest event it matched, and expired filters are
/// forgotten; a start registered late fires once for each event it missed and returns the
/// last delivery.
pub async fn gathered_events_are_replaced_and_expire_and_a_late_start_fires_for_each_missed(
    backend: &impl Backend,
) {
    let store = store(backend).await;
    store
        .replace_start_listeners(
            "demo",
            "/listen",
            &[
                listener("s", ListenerKind::Start, 0),
                listener("t", ListenerKind::Start, 0),
            ],
        )
        .await
        .unwrap();
    // `k0` is kept for filter 0, `k1` for filter 1 (and filter 0 has expired by then); `t`
    // ignores `k1`, so each listener's progress is its own.
    let gather = || -> Decide {
        Box::new(|event, listener| match event.event_type.as_str() {
            "k1" if listener.listener.id == "t" => ListenerAction::Ignore,
            "k0" => ListenerAction::Keep {
                filter_index: 0,
                expired: vec![],
            },
            "k1" => ListenerAction::Keep {
                filter_index: 1,
                expired: vec![0],
            },
            _ => ListenerAction::Ignore,
        })
    };
    let gathered = |listeners: Vec<ListenerRecord>| -> Vec<Vec<(i64, i64)>> {
        listeners
            .iter()
            .map(|l| {
                l.gathered
                    .iter()
                    .map(|g| (g.filter_index, g.event_seq))
                    .collect()
            })
            .collect()
    };
    let mut seqs = Vec::new();
    for (id, event_type) in [("1", "k0"), ("2", "k0"), ("3", "k1")] {
        let EventInsert::New(seq) = insert(&*store, id, event_type).await else {
            panic!()
        };
        store.dispatch_event(seq, gather()).await.unwrap();
        seqs.push(seq);
        let now = gathered(store.list_listeners("demo").await.unwrap());
        match id {
            // A second event for the same filter replaces the first.
            "1" | "2" => assert_eq!(now, [[(0, seq)], [(0, seq)]]),
            _ => assert_eq!(now, [[(1, seq)], [(0, seqs[1])]], "s: filter 0 expired"),
        }
    }

    // A late start: both `a` events were dispatched before it was added.
    let mut last = 0;
    for id in ["4", "5"] {
        let EventInsert::New(seq) = insert(&*store, id, "a").await else {
            panic!()
        };
        store.dispatch_event(seq, gather()).await.unwrap();
        last = seq;
    }
    let late = Listener {
        flow: "/late".into(),
        ..listener("late", ListenerKind::Start, seqs[2])
    };
    let fired = store
        .add_listener(&late, Box::new(by_type))
        .await
        .unwrap()
        .expect("fired");
    assert_eq!(
        fired.instance_id,
        format!("new-{last}"),
        "the last delivery"
    );
    let late_deliveries = store
        .pending_deliveries()
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.listener_id == "late")
        .count();
    assert_eq!(late_deliveries, 2, "one per missed event");
}

/// Deliveries are claimed once each, oldest first, up to the limit; a claim that expired (its
/// server died) is claimable again, a finished delivery is gone. Waits come due by their
/// deadline, earliest first; a wait without a deadline, and a start listener, never do.
pub async fn deliveries_are_claimed_once_until_their_claim_expires_and_waits_come_due(
    backend: &impl Backend,
) {
    let store = store(backend).await;
    store
        .replace_start_listeners("demo", "/listen", &[listener("s", ListenerKind::Start, 0)])
        .await
        .unwrap();
    for id in ["1", "2", "3"] {
        let EventInsert::New(seq) = insert(&*store, id, "a").await else {
            panic!("a new event")
        };
        store.dispatch_event(seq, Box::new(by_type)).await.unwrap();
    }
    let all: Vec<i64> = store
        .pending_deliveries()
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(all.len(), 3);
    let first: Vec<i64> = store
        .claim_deliveries("a", 60_000, 2)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(first, all[..2], "oldest first, up to the limit");
    let short: Vec<i64> = store
        .claim_deliveries("b", 1, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(short, all[2..], "the ones held are left out");
    // Past b's 1 ms claim (a blocking pause: the suite has no runtime of its own).
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again: Vec<i64> = store
        .claim_deliveries("c", 60_000, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(again, all[2..], "an expired claim is claimable again");
    let own: Vec<i64> = store
        .claim_deliveries("a", 60_000, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        own,
        all[..2],
        "a server's own claims are its own again (restarted, or handed over in vain)"
    );
    store.finish_delivery(all[0]).await.unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 2);
    assert!(store
        .claim_deliveries("d", 60_000, 10)
        .await
        .unwrap()
        .is_empty());

    // After the events above, so that none of them fires the waits.
    let mark = store.event_watermark().await.unwrap();
    let wait = |id: &str, deadline: Option<i64>| {
        let mut l = listener(id, ListenerKind::Wait, mark);
        l.deadline_ms = deadline;
        l
    };
    for l in [
        wait("late", Some(5_000)),
        wait("early", Some(1_000)),
        wait("never", None),
    ] {
        store.add_listener(&l, Box::new(by_type)).await.unwrap();
    }
    assert!(store.due_waits(999, 10).await.unwrap().is_empty());
    assert_eq!(
        store.due_waits(5_000, 10).await.unwrap(),
        [
            ("inst-early".to_string(), 1_000),
            ("inst-late".to_string(), 5_000)
        ]
    );
    assert_eq!(store.due_waits(i64::MAX, 1).await.unwrap().len(), 1);
    store.delete_instance_listeners("inst-early").await.unwrap();
    assert_eq!(
        store.due_waits(5_000, 10).await.unwrap(),
        [("inst-late".to_string(), 5_000)],
        "a fired or cancelled wait is no longer due"
    );
}
