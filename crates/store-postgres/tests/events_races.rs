//! EventStore's "once" rules across servers: two PgStores (two pools, as two servers have) on
//! one database race for the same schedule slot, event, wait and held events, and exactly one
//! of them wins each.

use std::sync::Arc;

use faasbox_store::{
    Decide, DelayedEvent, EventInsert, EventStore, Listener, ListenerAction, ListenerKind,
    NamespaceStore, NewInstance, StoreError, SubscriptionRecord,
};
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

/// Two stores on one fresh database with the namespace `demo`, and a plain connection to it.
struct Servers {
    _database: TestDatabase,
    a: Arc<PgStore>,
    b: Arc<PgStore>,
    sql: tokio_postgres::Client,
}

impl Servers {
    async fn start() -> Servers {
        let database = TestDatabase::new();
        let a = Arc::new(PgStore::open(&database.url, 8).await.expect("store a"));
        let b = Arc::new(PgStore::open(&database.url, 8).await.expect("store b"));
        let (sql, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
            .await
            .expect("a plain connection");
        tokio::spawn(connection);
        // Written directly: namespaces are another part's trait.
        sql.execute(
            "INSERT INTO namespaces (name, created) VALUES ('demo', 't0')",
            &[],
        )
        .await
        .expect("namespace demo");
        Servers {
            _database: database,
            a,
            b,
            sql,
        }
    }

    /// Store a for even `i`, b for odd.
    fn store(&self, i: usize) -> Arc<PgStore> {
        if i.is_multiple_of(2) {
            self.a.clone()
        } else {
            self.b.clone()
        }
    }

    async fn count(&self, query: &str) -> i64 {
        self.sql
            .query_one(query, &[])
            .await
            .expect(query)
            .get::<_, i64>(0)
    }
}

/// A subscription of `namespace` named `sub` with the listener `listener_id`.
fn subscription(namespace: &str, listener_id: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        namespace: namespace.into(),
        name: "sub".into(),
        function: "f".into(),
        event_type: "a".into(),
        source: None,
        context: "{}".into(),
        listener_id: format!("{listener_id}-{namespace}"),
        created: "t0".into(),
        modified: "t0".into(),
    }
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

/// Fires every listener on every event.
fn fire() -> Decide {
    Box::new(|event, listener| ListenerAction::Fire {
        instance_id: listener
            .listener
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("new-{}", event.seq)),
        events: format!("[{}]", event.event),
    })
}

async fn insert(store: &PgStore, id: &str) -> i64 {
    match store
        .insert_event("demo", id, "/src", "a", "{}", 100)
        .await
        .expect("insert")
    {
        EventInsert::New(seq) => seq,
        EventInsert::Duplicate(seq) => panic!("event {id} is new, not a duplicate of {seq}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_slot_is_claimed_once_with_one_instance() {
    let servers = Servers::start().await;
    servers
        .a
        .put_schedule("demo", "/cron", "* * * * *", 0)
        .await
        .unwrap();
    for slot in 1..=10i64 {
        let mut claims = JoinSet::new();
        for attempt in 0..8usize {
            let store = servers.store(attempt);
            claims.spawn(async move {
                let id = format!("i-{slot}-{attempt}");
                let instance = NewInstance {
                    id: &id,
                    namespace: "demo",
                    flow: "/cron",
                    source: "states: []",
                    input: "{}",
                    checkpoint: "{}",
                    parent: None,
                    depth: 0,
                    now: "2026-01-01T00:00:00.000Z",
                    owner: None,
                    lease_ms: 0,
                };
                store
                    .claim_schedule_slot(
                        "demo",
                        "/cron",
                        "* * * * *",
                        slot * 60_000,
                        Some(&instance),
                    )
                    .await
                    .unwrap()
            });
        }
        let won = claims.join_all().await.into_iter().filter(|c| *c).count();
        assert_eq!(won, 1, "slot {slot} was claimed {won} times");
    }
    assert_eq!(
        servers.count("SELECT COUNT(*) FROM flow_instances").await,
        10,
        "one instance per claimed slot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_dispatched_by_both_servers_is_delivered_once() {
    let servers = Servers::start().await;
    servers
        .a
        .replace_start_listeners("demo", "/listen", &[listener("s", ListenerKind::Start, 0)])
        .await
        .unwrap();
    servers
        .a
        .add_listener(&listener("w", ListenerKind::Wait, 0), fire())
        .await
        .unwrap();
    let mut delivered = 0;
    for n in 0..10 {
        let seq = insert(&servers.a, &n.to_string()).await;
        let mut dispatches = JoinSet::new();
        for attempt in 0..6usize {
            let store = servers.store(attempt);
            dispatches.spawn(async move { store.dispatch_event(seq, fire()).await.unwrap() });
        }
        let got: usize = dispatches.join_all().await.iter().map(Vec::len).sum();
        // The start fires on every event; the wait on the first only.
        assert_eq!(got, if n == 0 { 2 } else { 1 }, "event {n}");
        delivered += got;
    }
    assert_eq!(
        servers.a.pending_deliveries().await.unwrap().len(),
        delivered
    );
    assert!(servers.b.undispatched_events(100).await.unwrap().is_empty());
}

/// Rounds of each race below: a lost race shows in some of them, not in every one.
const ROUNDS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_fires_once_when_events_of_its_namespace_are_dispatched_at_once() {
    let servers = Servers::start().await;
    for round in 0..ROUNDS {
        let watermark = servers.a.event_watermark().await.unwrap();
        let wait = listener(&format!("w{round}"), ListenerKind::Wait, watermark);
        servers.a.add_listener(&wait, fire()).await.unwrap();
        let mut seqs = Vec::new();
        for n in 0..4 {
            seqs.push(insert(&servers.store(n), &format!("{round}-{n}")).await);
        }
        let mut dispatches = JoinSet::new();
        for (n, seq) in seqs.into_iter().enumerate() {
            let store = servers.store(n);
            dispatches.spawn(async move { store.dispatch_event(seq, fire()).await.unwrap() });
        }
        let fired: usize = dispatches.join_all().await.iter().map(Vec::len).sum();
        assert_eq!(fired, 1, "round {round}: the wait fired {fired} times");
    }
    assert_eq!(servers.a.pending_deliveries().await.unwrap().len(), ROUNDS);
    assert!(servers.a.list_listeners("demo").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_added_while_its_event_is_dispatched_fires_once() {
    let servers = Servers::start().await;
    for round in 0..ROUNDS {
        let watermark = servers.a.event_watermark().await.unwrap();
        let seq = insert(&servers.a, &round.to_string()).await;
        let wait = listener(&format!("w{round}"), ListenerKind::Wait, watermark);
        let (a, b) = (servers.a.clone(), servers.b.clone());
        let dispatched = tokio::spawn(async move { a.dispatch_event(seq, fire()).await.unwrap() });
        let added = tokio::spawn(async move { b.add_listener(&wait, fire()).await.unwrap() });
        let fired = dispatched.await.unwrap().len() + usize::from(added.await.unwrap().is_some());
        assert_eq!(
            fired, 1,
            "round {round}: the wait fired {fired} times (0: missed)"
        );
    }
    assert_eq!(servers.a.pending_deliveries().await.unwrap().len(), ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_is_taken_by_its_event_or_by_its_removal_never_both() {
    let servers = Servers::start().await;
    for round in 0..ROUNDS {
        let watermark = servers.a.event_watermark().await.unwrap();
        let wait = listener(&format!("w{round}"), ListenerKind::Wait, watermark);
        servers.a.add_listener(&wait, fire()).await.unwrap();
        let seq = insert(&servers.a, &round.to_string()).await;
        let instance = wait.instance_id.clone().unwrap();
        let (a, b) = (servers.a.clone(), servers.b.clone());
        let dispatched = tokio::spawn(async move { a.dispatch_event(seq, fire()).await.unwrap() });
        let removed =
            tokio::spawn(async move { b.delete_instance_listeners(&instance).await.unwrap() });
        let taken = dispatched.await.unwrap().len() + removed.await.unwrap();
        assert_eq!(taken, 1, "round {round}: the wait was taken {taken} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_event_sent_to_both_servers_at_once_is_accepted_once() {
    let servers = Servers::start().await;
    for n in 0..10 {
        let mut inserts = JoinSet::new();
        for attempt in 0..6usize {
            let store = servers.store(attempt);
            inserts.spawn(async move {
                store
                    .insert_event("demo", &format!("e{n}"), "/src", "a", "{}", 1)
                    .await
                    .unwrap()
            });
        }
        let answers = inserts.join_all().await;
        let new: Vec<i64> = answers
            .iter()
            .filter_map(|a| match a {
                EventInsert::New(seq) => Some(*seq),
                EventInsert::Duplicate(_) => None,
            })
            .collect();
        assert_eq!(new.len(), 1, "event {n}: {answers:?}");
        assert!(
            answers.iter().all(
                |a| matches!(a, EventInsert::New(s) | EventInsert::Duplicate(s) if *s == new[0])
            ),
            "every answer names the one seq: {answers:?}"
        );
    }
    assert_eq!(servers.count("SELECT COUNT(*) FROM events").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_events_are_released_once_by_concurrent_servers() {
    let servers = Servers::start().await;
    for n in 0..40 {
        servers
            .a
            .insert_delayed_event(&DelayedEvent {
                namespace: "demo".into(),
                id: format!("held-{n}"),
                source: "/flow".into(),
                event_type: "a".into(),
                event: "{}".into(),
                due_ms: 1_000 + n,
            })
            .await
            .unwrap();
    }
    let mut releases = JoinSet::new();
    for attempt in 0..8usize {
        let store = servers.store(attempt);
        releases.spawn(async move {
            let mut released = 0;
            for now in [1_010, 1_020, 1_030, 2_000] {
                released += store.release_due_events(now).await.unwrap();
            }
            released
        });
    }
    let released: usize = releases.join_all().await.into_iter().sum();
    assert_eq!(released, 40, "each held event became one event");
    assert_eq!(servers.count("SELECT COUNT(*) FROM events").await, 40);
    assert_eq!(
        servers.count("SELECT COUNT(*) FROM delayed_events").await,
        0
    );
    // Each held event was taken by one releaser: a second copy of one would have spent a seq
    // on an insert that turned out a duplicate.
    assert_eq!(
        servers
            .count("SELECT value FROM counters WHERE name = 'events'")
            .await,
        40,
        "no seq was spent on a held event another releaser had taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_deleted_while_its_events_are_dispatched_leaves_nothing_behind() {
    let servers = Servers::start().await;
    for round in 0..ROUNDS {
        let ns = format!("ns{round}");
        servers.a.create_namespace(&ns, "t0").await.unwrap();
        let start = Listener {
            namespace: ns.clone(),
            ..listener(&format!("s{round}"), ListenerKind::Start, 0)
        };
        servers
            .a
            .replace_start_listeners(&ns, "/listen", &[start])
            .await
            .unwrap();
        servers
            .a
            .put_schedule(&ns, "/cron", "* * * * *", 0)
            .await
            .unwrap();
        servers
            .a
            .put_subscription(&subscription(&ns, "l1"), "[]", 1)
            .await
            .unwrap();
        let wait = Listener {
            namespace: ns.clone(),
            ..listener(&format!("w-{ns}"), ListenerKind::Wait, 0)
        };
        servers.a.add_listener(&wait, fire()).await.unwrap();
        let EventInsert::New(seq) = servers
            .a
            .insert_event(&ns, "e", "/src", "a", "{}", 1)
            .await
            .unwrap()
        else {
            panic!("a new event")
        };
        servers
            .a
            .insert_delayed_event(&DelayedEvent {
                namespace: ns.clone(),
                id: "held".into(),
                source: "/flow".into(),
                event_type: "a".into(),
                event: "{}".into(),
                due_ms: 1,
            })
            .await
            .unwrap();
        let (a, b, c, d) = (
            servers.a.clone(),
            servers.a.clone(),
            servers.b.clone(),
            servers.b.clone(),
        );
        let dispatched = tokio::spawn(async move { a.dispatch_event(seq, fire()).await });
        let released = tokio::spawn(async move { b.release_due_events(10).await });
        let claim_ns = ns.clone();
        let claimed = tokio::spawn(async move {
            let id = format!("i-{claim_ns}");
            let instance = NewInstance {
                id: &id,
                namespace: &claim_ns,
                flow: "/cron",
                source: "states: []",
                input: "{}",
                checkpoint: "{}",
                parent: None,
                depth: 0,
                now: "2026-01-01T00:00:00.000Z",
                owner: None,
                lease_ms: 0,
            };
            c.claim_schedule_slot(&claim_ns, "/cron", "* * * * *", 60_000, Some(&instance))
                .await
        });
        let (e, f) = (servers.b.clone(), servers.a.clone());
        let redeploy_ns = ns.clone();
        let redeployed = tokio::spawn(async move {
            let start = Listener {
                namespace: redeploy_ns.clone(),
                ..listener(&format!("s2-{redeploy_ns}"), ListenerKind::Start, 0)
            };
            e.replace_start_listeners(&redeploy_ns, "/listen", &[start])
                .await
        });
        let subscribe_ns = ns.clone();
        let resubscribed = tokio::spawn(async move {
            f.put_subscription(&subscription(&subscribe_ns, "l2"), "[]", 2)
                .await
        });
        let (g, h) = (servers.a.clone(), servers.b.clone());
        let unsubscribe_ns = ns.clone();
        let unsubscribed =
            tokio::spawn(async move { g.delete_subscription(&unsubscribe_ns, "sub").await });
        let wait_instance = format!("inst-w-{ns}");
        let unwaited =
            tokio::spawn(async move { h.delete_instance_listeners(&wait_instance).await });
        let delete_ns = ns.clone();
        let deleted = tokio::spawn(async move { d.delete_namespace(&delete_ns).await });
        // A deadlock between the two would fail one of them (SQLSTATE 40P01).
        dispatched.await.unwrap().expect("dispatch");
        released.await.unwrap().expect("release");
        claimed.await.unwrap().expect("claim");
        unsubscribed.await.unwrap().expect("delete_subscription");
        unwaited.await.unwrap().expect("delete_instance_listeners");
        // These two write rows of the namespace: they may come after the deletion.
        for (what, result) in [
            ("redeploy", redeployed.await.unwrap().map(|_| ())),
            ("subscription", resubscribed.await.unwrap().map(|_| ())),
        ] {
            assert!(
                matches!(result, Ok(()) | Err(StoreError::NoNamespace(_))),
                "{what}: {result:?}"
            );
        }
        assert!(deleted.await.unwrap().expect("delete"));
        for table in [
            "events",
            "event_listeners",
            "event_deliveries",
            "delayed_events",
            "schedules",
            "flow_instances",
            "subscriptions",
        ] {
            let left = servers
                .sql
                .query_one(
                    &format!("SELECT COUNT(*) FROM {table} WHERE namespace = $1"),
                    &[&ns],
                )
                .await
                .unwrap()
                .get::<_, i64>(0);
            assert_eq!(
                left, 0,
                "round {round}: {left} rows of {ns} left in {table}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_visible_seq_never_has_an_earlier_seq_still_to_come() {
    let servers = Servers::start().await;
    let mut inserts = JoinSet::new();
    for writer in 0..6usize {
        let store = servers.store(writer);
        inserts.spawn(async move {
            for n in 0..40 {
                insert(&store, &format!("{writer}-{n}")).await;
            }
        });
    }
    // While they insert: every snapshot holds every seq up to the newest it sees (no insert
    // here is a duplicate, so no seq goes unused), so a watermark never skips an event that
    // becomes visible after it.
    let mut looks = 0;
    while !inserts.is_empty() {
        let row = servers
            .sql
            .query_one("SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM events", &[])
            .await
            .unwrap();
        let (newest, count): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(newest, count, "seqs up to {newest} visible: {count}");
        looks += 1;
        while let Some(done) = inserts.try_join_next() {
            done.unwrap();
        }
    }
    assert!(looks > 1, "the reader looked while the writers wrote");
    assert_eq!(servers.count("SELECT COUNT(*) FROM events").await, 240);
}

/// sc-flows: deliveries claimed by many racers on both servers at once go to one claimer
/// each (SKIP LOCKED takes other rows instead of the same one twice), and all are claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_delivery_is_claimed_by_one_server() {
    let servers = Servers::start().await;
    servers
        .a
        .replace_start_listeners("demo", "/listen", &[listener("s", ListenerKind::Start, 0)])
        .await
        .expect("start listener");
    for n in 0..40 {
        let seq = insert(&servers.a, &n.to_string()).await;
        servers
            .a
            .dispatch_event(seq, fire())
            .await
            .expect("dispatch");
    }
    let mut racers = JoinSet::new();
    for i in 0..8 {
        let store = servers.store(i);
        racers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim_deliveries(&format!("node-{i}"), 60_000, 3)
                    .await
                    .expect("claiming");
                if claimed.is_empty() {
                    return mine;
                }
                // Handled and finished, as the dispatcher does (a node's own unfinished
                // claims are handed to it again).
                for delivery in claimed {
                    store.finish_delivery(delivery.id).await.expect("finishing");
                    mine.push(delivery.id);
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(result) = racers.join_next().await {
        all.extend(result.expect("a racer panicked"));
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a delivery was claimed twice");
    assert_eq!(all.len(), 40, "every delivery is claimed");
}
