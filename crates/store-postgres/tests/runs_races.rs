//! Races of the run methods on PostgreSQL, where many connections (and servers) write at once:
//! two `PgStore`s on one database, many concurrent attempts, and what SQLite's one connection
//! gave for free must still hold: a queued run is claimed once, a claim and a cancel never both
//! win, concurrent appends to one call's log keep every line and each append's order, runs
//! left running are queued again once, and two purgers count each removed run once.

use std::collections::HashMap;
use std::sync::Arc;

use faasbox_proto::{LogLine, LogStream};
use faasbox_store::{InvocationStore, NewRun};
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

/// How many runs each race is run over.
const RUNS: usize = 40;

async fn two_stores(db: &TestDatabase) -> (Arc<PgStore>, Arc<PgStore>) {
    let a = PgStore::open(&db.url, 8).await.expect("opening store a");
    let b = PgStore::open(&db.url, 8).await.expect("opening store b");
    (Arc::new(a), Arc::new(b))
}

fn queued(id: &str) -> NewRun {
    NewRun {
        id: id.into(),
        namespace: "demo".into(),
        function: "f".into(),
        mode: "async".into(),
        status: "queued".into(),
        accepted: "2026-01-01T00:00:00.000Z".into(),
        ..Default::default()
    }
}

async fn insert_queued(store: &PgStore, ids: &[String]) {
    for id in ids {
        assert!(store.insert_run(&queued(id)).await.unwrap());
    }
}

fn run_ids(prefix: &str) -> Vec<String> {
    (0..RUNS).map(|i| format!("{prefix}{i:03}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_queued_run_is_claimed_exactly_once_across_two_stores() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    let ids = run_ids("r");
    insert_queued(&a, &ids).await;

    // Eight claimers per store, each going through every run (half of them backwards, so
    // claimers meet on the same rows from both ends).
    let mut claimers = JoinSet::new();
    for claimer in 0..16 {
        let store = if claimer % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let mut order = ids.clone();
        if claimer % 4 >= 2 {
            order.reverse();
        }
        claimers.spawn(async move {
            let mut won = Vec::new();
            for id in order {
                if store
                    .claim_run(&id, "2026-01-01T00:00:01.000Z", "n1")
                    .await
                    .unwrap()
                {
                    won.push(id);
                }
            }
            won
        });
    }
    let mut wins: HashMap<String, usize> = HashMap::new();
    while let Some(won) = claimers.join_next().await {
        for id in won.expect("a claimer panicked") {
            *wins.entry(id).or_default() += 1;
        }
    }
    for id in &ids {
        assert_eq!(
            wins.get(id),
            Some(&1),
            "run {id} claimed {:?} times",
            wins.get(id)
        );
        let run = b.invocation(id).await.unwrap().unwrap();
        assert_eq!((run.status.as_str(), run.attempts), ("running", 1), "{id}");
    }
    assert!(a.queued_runs(100, &[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_and_a_cancel_of_one_run_never_both_win() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    let ids = run_ids("c");
    insert_queued(&a, &ids).await;

    let mut races = JoinSet::new();
    for (n, id) in ids.iter().cloned().enumerate() {
        let (a, b) = (a.clone(), b.clone());
        races.spawn(async move {
            // Alternate which store claims and which cancels.
            let (claimer, canceller) = if n % 2 == 0 { (a, b) } else { (b, a) };
            let (claimed, cancelled) = tokio::join!(
                claimer.claim_run(&id, "2026-01-01T00:00:01.000Z", "n1"),
                canceller.cancel_queued_run(&id, "2026-01-01T00:00:01.000Z"),
            );
            (id, claimed.unwrap(), cancelled.unwrap())
        });
    }
    while let Some(race) = races.join_next().await {
        let (id, claimed, cancelled) = race.expect("a race panicked");
        assert!(
            claimed != cancelled,
            "run {id}: claimed {claimed}, cancelled {cancelled}: exactly one must win"
        );
        let run = a.invocation(&id).await.unwrap().unwrap();
        let expected = if claimed { "running" } else { "cancelled" };
        assert_eq!(run.status, expected, "{id}");
    }
}

fn lines(prefix: &str, count: usize) -> Vec<LogLine> {
    (0..count)
        .map(|i| LogLine {
            ts_ms: 1,
            stream: LogStream::Stdout,
            line: format!("{prefix}{i}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_to_one_call_keep_every_line_in_each_append_s_order() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    a.start_invocation("i1", "demo", "f", "2026-01-01T00:00:00.000Z")
        .await
        .unwrap();

    let mut appenders = JoinSet::new();
    for appender in 0..12 {
        let store = if appender % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        appenders.spawn(async move {
            let batch = lines(&format!("w{appender:02}-"), 5);
            store.append_logs("i1", &batch).await.unwrap();
        });
    }
    while let Some(done) = appenders.join_next().await {
        done.expect("an appender panicked");
    }
    let stored: Vec<String> = a
        .logs("i1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(stored.len(), 12 * 5, "{stored:?}");
    // Each append's five lines are stored together and in their order.
    for chunk in stored.chunks(5) {
        let writer = &chunk[0][..4];
        let expected: Vec<String> = (0..5).map(|i| format!("{writer}{i}")).collect();
        assert_eq!(chunk, expected.as_slice(), "{stored:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_left_running_are_requeued_once_by_two_stores_at_once() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    let ids = run_ids("q");
    insert_queued(&a, &ids).await;
    for id in &ids {
        assert!(a
            .claim_run(id, "2026-01-01T00:00:01.000Z", "n1")
            .await
            .unwrap());
    }

    let gone = faasbox_store::Interruption {
        ended: "2026-01-01T00:00:02.000Z",
        node: "n1",
        cause: "server node n1 stopped answering",
    };
    let (by_a, by_b) = tokio::join!(
        a.requeue_interrupted_runs(&gone),
        b.requeue_interrupted_runs(&gone),
    );
    let (by_a, by_b) = (by_a.unwrap(), by_b.unwrap());
    let mut requeued = [by_a.requeued, by_b.requeued].concat();
    requeued.sort();
    assert_eq!(
        requeued, ids,
        "each run is queued again by exactly one store"
    );
    assert!(by_a.crashed.is_empty() && by_b.crashed.is_empty());
    for id in &ids {
        let run = b.invocation(id).await.unwrap().unwrap();
        assert_eq!(run.status, "queued", "{id}");
        assert_eq!(
            a.logs(id).await.unwrap().len(),
            1,
            "one \"runs again\" line: {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_purging_at_once_count_each_run_once() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    // More runs than one purge batch (1000), so both purgers go through several batches.
    let ended = 1500;
    let mut writers = JoinSet::new();
    for writer in 0..8 {
        let store = if writer % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        writers.spawn(async move {
            for n in (writer..ended).step_by(8) {
                let id = format!("p{n:04}");
                assert!(store.insert_run(&queued(&id)).await.unwrap());
                assert!(store
                    .cancel_queued_run(&id, "2026-01-01T00:00:01.000Z")
                    .await
                    .unwrap());
                store.append_logs(&id, &lines("x", 1)).await.unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer panicked");
    }
    insert_queued(&a, &["still-queued".to_string()]).await;

    let (by_a, by_b) = tokio::join!(
        a.purge_runs("2026-01-02T00:00:00.000Z", 0),
        b.purge_runs("2026-01-02T00:00:00.000Z", 0),
    );
    let (by_a, by_b) = (by_a.unwrap(), by_b.unwrap());
    assert_eq!(by_a + by_b, ended, "a: {by_a}, b: {by_b}");
    let left = a
        .list_invocations("demo", None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect::<Vec<_>>();
    assert_eq!(left, ["still-queued"]);
    assert!(b.logs("p0000").await.unwrap().is_empty());
}
