//! FlowStore's "once" and "first wins" rules hold across servers: two PgStores (two pools, as
//! two servers have) on one database race for the same instance, step, variable or log, and
//! the rule of the trait still holds.

use std::collections::HashSet;
use std::sync::Arc;

use faasbox_store::{FlowStore, NewInstance, NewInstanceLog, StepEnd, StepStart};
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

/// Two stores on one fresh database, as two servers would open it.
async fn two_stores() -> (TestDatabase, Arc<PgStore>, Arc<PgStore>) {
    let database = TestDatabase::new();
    let a = PgStore::open(&database.url, 8)
        .await
        .expect("opening store a");
    let b = PgStore::open(&database.url, 8)
        .await
        .expect("opening store b");
    (database, Arc::new(a), Arc::new(b))
}

async fn create(store: &PgStore, id: &str) {
    store
        .create_instance(&NewInstance {
            id,
            namespace: "demo",
            flow: "f",
            source: "source",
            input: "{}",
            checkpoint: "cp0",
            parent: None,
            depth: 0,
            now: "t0",
            owner: None,
            lease_ms: 0,
        })
        .await
        .expect("creating an instance");
}

/// Of many ends racing for one instance, across both stores, exactly one is recorded, and the
/// instance keeps that one's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_is_finished_once_across_servers() {
    let (_database, a, b) = two_stores().await;
    for round in 0..20 {
        let id = format!("i{round}");
        create(&a, &id).await;
        let mut racers = JoinSet::new();
        for n in 0..8 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            racers.spawn(async move {
                let status = format!("failed-{n}");
                let won = store
                    .finish_instance(&id, &status, None, Some(("e", &status)), "t1", None)
                    .await
                    .expect("finishing");
                (won, status)
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = racers.join_next().await {
            let (won, status) = result.expect("a racer panicked");
            if won {
                winners.push(status);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let record = a.instance(&id).await.unwrap().unwrap();
        assert_eq!(record.status, winners[0], "round {round}");
        assert_eq!(
            record.error_message.as_deref(),
            Some(winners[0].as_str()),
            "round {round}: the winner's whole end is kept"
        );
    }
}

/// Writers on both stores append batches to one instance while a follower reads on with
/// `after_seq`, as `faasbox flow logs --follow` does: the follower sees every line (no line
/// appears below a cursor it already passed), and each writer's lines keep their order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_log_appends_keep_their_order_for_a_follower() {
    let (_database, a, b) = two_stores().await;
    create(&a, "i1").await;
    const WRITERS: usize = 8;
    const BATCHES: usize = 25;
    const LINES: usize = 4;
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        writers.spawn(async move {
            for batch in 0..BATCHES {
                let messages: Vec<String> = (0..LINES)
                    .map(|l| format!("{w}:{:04}", batch * LINES + l))
                    .collect();
                let lines: Vec<NewInstanceLog<'_>> = messages
                    .iter()
                    .map(|m| NewInstanceLog {
                        ts_ms: 1,
                        message: m,
                        state: None,
                        invocation: None,
                    })
                    .collect();
                if batch % 3 == 0 {
                    // The one-line method takes the same path.
                    for m in &messages {
                        store.append_instance_log("i1", 1, m).await.expect("append");
                    }
                } else {
                    store
                        .append_instance_logs("i1", &lines)
                        .await
                        .expect("append");
                }
            }
        });
    }
    let follower = {
        let store = b.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            loop {
                let lines = store.instance_logs("i1", after).await.expect("reading");
                if let Some(last) = lines.last() {
                    after = last.seq;
                }
                seen.extend(lines.into_iter().map(|l| l.message));
                if seen.len() >= WRITERS * BATCHES * LINES {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    while let Some(result) = writers.join_next().await {
        result.expect("a writer panicked");
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), follower)
        .await
        .expect("the follower never saw every line: a line committed below its cursor")
        .expect("the follower panicked");
    let all: Vec<String> = a
        .instance_logs("i1", 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(all.len(), WRITERS * BATCHES * LINES);
    assert_eq!(seen, all, "the follower saw the lines as stored, in order");
    for w in 0..WRITERS {
        let own: Vec<&String> = all
            .iter()
            .filter(|m| m.starts_with(&format!("{w}:")))
            .collect();
        let mut sorted = own.clone();
        sorted.sort();
        assert_eq!(own, sorted, "writer {w}'s lines keep their order");
    }
}

/// Racing starts of one step keep one (the first), racing ends of it record one end whole,
/// and racing saves of one finished state all succeed and keep one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_and_finished_states_are_kept_once_across_servers() {
    let (_database, a, b) = two_stores().await;
    for round in 0..10 {
        let id = format!("i{round}");
        create(&a, &id).await;
        let mut racers = JoinSet::new();
        for n in 0..8 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            racers.spawn(async move {
                let state = format!("s{n}");
                store
                    .start_step(&StepStart {
                        instance: &id,
                        step: 1,
                        state: &state,
                        started: "t1",
                        input: Some("{}"),
                        truncated: false,
                    })
                    .await
                    .expect("a racing start is no error");
                store
                    .save_checkpoint(&id, "running", &state, Some((1, &state)), "t2", None)
                    .await
                    .expect("a racing save is no error");
                let output = format!("{{\"n\":{n}}}");
                let finished = format!("t3-{n}");
                store
                    .end_step(
                        &id,
                        &StepEnd {
                            finished: &finished,
                            output: Some(&output),
                            error: None,
                            truncated: n == 3,
                        },
                    )
                    .await
                    .expect("a racing end is no error");
            });
        }
        while let Some(result) = racers.join_next().await {
            result.expect("a racer panicked");
        }
        let steps = b.instance_steps(&id).await.unwrap();
        assert_eq!(steps.len(), 1, "round {round}: {steps:?}");
        let finished = steps[0].finished.as_deref().expect("the step ended");
        let n = finished.strip_prefix("t3-").expect("one racer's end");
        assert_eq!(
            steps[0].output.as_deref(),
            Some(format!("{{\"n\":{n}}}").as_str()),
            "round {round}: the end is one racer's, whole"
        );
        assert_eq!(steps[0].truncated, n == "3", "round {round}");
        let states = b.finished_states(&id).await.unwrap();
        assert_eq!(states.len(), 1, "round {round}: {states:?}");
        assert!(states[0].1.starts_with('s'));
    }
}

/// Many servers setting the same variables at once: every upsert succeeds (no unique
/// violation from two inserts of one key), and each variable ends with one of the values.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_variable_sets_all_succeed_and_leave_one_value() {
    let (_database, a, b) = two_stores().await;
    let mut racers = JoinSet::new();
    for n in 0..16 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        racers.spawn(async move {
            for key in 0..10 {
                let key = format!("k{key}");
                store
                    .set_variable("demo", "namespace", "", &key, Some(&n.to_string()), "t1")
                    .await
                    .expect("a racing set is no error");
            }
        });
    }
    while let Some(result) = racers.join_next().await {
        result.expect("a racer panicked");
    }
    let values: HashSet<String> = (0..16).map(|n| n.to_string()).collect();
    for key in 0..10 {
        let value = a
            .variable("demo", "namespace", "", &format!("k{key}"))
            .await
            .unwrap()
            .expect("the variable is set");
        assert!(values.contains(&value), "k{key} = {value}");
    }
}

/// Lines and calls appended on one server while another deletes the namespace: each append
/// lands before the delete (and goes with it) or after it (and is dropped, its instance being
/// gone), never in between, where it would outlive its namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_a_namespace_deletion_leave_nothing_behind() {
    use faasbox_store::{InstanceCallRecord, NamespaceStore};
    let (_database, a, b) = two_stores().await;
    const INSTANCES: usize = 4;
    for round in 0..15 {
        a.create_namespace("demo", "t0").await.expect("namespace");
        let ids: Vec<String> = (0..INSTANCES).map(|i| format!("r{round}-{i}")).collect();
        for id in &ids {
            create(&a, id).await;
        }
        let mut appenders = JoinSet::new();
        for (n, id) in ids.iter().enumerate() {
            let id = id.clone();
            let store = if n % 2 == 0 { b.clone() } else { a.clone() };
            appenders.spawn(async move {
                for k in 0..30 {
                    if k % 2 == 0 {
                        store
                            .append_instance_log(&id, 1, "line")
                            .await
                            .expect("append");
                    } else {
                        let call = InstanceCallRecord {
                            id: format!("call{k}"),
                            kind: "invocation".into(),
                            state: "s".into(),
                            function: "f".into(),
                            started: "t1".into(),
                            status: None,
                        };
                        store
                            .record_instance_call(&id, &call)
                            .await
                            .expect("record call");
                    }
                }
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(2 * (round % 5))).await;
        assert!(a.delete_namespace("demo").await.expect("deleting"));
        while let Some(result) = appenders.join_next().await {
            result.expect("an appender panicked");
        }
        for id in &ids {
            assert!(
                b.instance_logs(id, 0).await.unwrap().is_empty(),
                "round {round}: lines of {id} outlived its namespace"
            );
            assert!(
                b.instance_calls(id).await.unwrap().is_empty(),
                "round {round}: calls of {id} outlived its namespace"
            );
        }
    }
}
