//! Races of the secrets, services and code parts on PostgreSQL: what SQLite's single connection
//! makes atomic must hold with two stores (two pools, as two servers) writing one database at
//! once. Each test makes many concurrent attempts and checks the one outcome the traits allow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use faasbox_store::{
    CodeKind, CodeStore, DataKeyRecord, NamespaceStore, NewBuildLogLine, RegistryRecord,
    SecretStore, ServiceRecord, ServiceStore, BUILD_LOG_CUT, MAX_BUILD_LOG_LINES,
};
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;
use tokio::task::JoinSet;

/// Two stores on one fresh database, as two servers sharing it.
async fn two_stores(db: &TestDatabase) -> (Arc<PgStore>, Arc<PgStore>) {
    let a = PgStore::open(&db.url, 8).await.expect("opening store a");
    let b = PgStore::open(&db.url, 8).await.expect("opening store b");
    (Arc::new(a), Arc::new(b))
}

fn data_key(namespace: &str, key_id: &str, wrapped: &[u8]) -> DataKeyRecord {
    DataKeyRecord {
        namespace: namespace.into(),
        key_id: key_id.into(),
        wrapped: wrapped.to_vec(),
        created: "t0".into(),
        updated: "t0".into(),
    }
}

fn line(text: String) -> NewBuildLogLine {
    NewBuildLogLine {
        time: "t".into(),
        stream: "stdout".into(),
        text,
    }
}

/// Many callers on two stores insert different keys for one namespace at once: every caller
/// gets the same key back, and that is the stored one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_data_key_wins_across_two_stores() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    for round in 0..5 {
        let namespace = format!("ns{round}");
        let mut tasks = JoinSet::new();
        for i in 0..16u8 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let namespace = namespace.clone();
            tasks.spawn(async move {
                store
                    .insert_data_key(&data_key(&namespace, &format!("k{i}"), &[i]))
                    .await
                    .expect("insert_data_key")
            });
        }
        let got: Vec<DataKeyRecord> = tasks.join_all().await;
        let stored = a.data_key(&namespace).await.unwrap().expect("a stored key");
        assert!(
            got.iter().all(|k| *k == stored),
            "callers got different keys: {got:?}, stored {stored:?}"
        );
    }
}

/// A re-wrap holds off every other writer of data keys until it commits: a key inserted by
/// another store while the re-wrap runs is stored only after it, unchanged by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rewrap_holds_off_new_data_keys_until_it_commits() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    a.insert_data_key(&data_key("a", "old", b"1"))
        .await
        .unwrap();
    a.insert_data_key(&data_key("b", "old", b"2"))
        .await
        .unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    let rewrap = tokio::spawn({
        let a = a.clone();
        async move {
            a.rewrap_data_keys(
                "t1",
                Box::new(move |r: &DataKeyRecord| {
                    seen.store(true, Ordering::SeqCst);
                    // Slow enough for the insert below to try while the re-wrap is running.
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(("new".into(), r.wrapped.clone()))
                }),
            )
            .await
        }
    });
    while !started.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let insert = tokio::spawn({
        let b = b.clone();
        async move { b.insert_data_key(&data_key("c", "old", b"3")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !insert.is_finished(),
        "a data key was inserted while a re-wrap was running"
    );
    assert_eq!(rewrap.await.unwrap().unwrap(), 2);
    insert.await.unwrap().unwrap();
    let keys: Vec<(String, String)> = a
        .list_data_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.namespace, k.key_id))
        .collect();
    let expected =
        [("a", "new"), ("b", "new"), ("c", "old")].map(|(n, k)| (n.to_string(), k.to_string()));
    assert_eq!(keys, expected);
}

/// Concurrent appends to one build log (from two stores) keep the bound exactly and number
/// the lines 1, 2, 3, … without gaps or repeats; each append's lines stay in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_build_log_appends_keep_the_bound_and_consecutive_seqs() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    a.create_namespace("demo", "t0").await.unwrap();
    for name in ["small", "big"] {
        a.put_code("demo", CodeKind::Function, name, "{}", "CREATING", "t1")
            .await
            .unwrap();
    }
    // "small": 8 writers × 10 batches × 10 lines stay under the bound; "big": 8 × 10 × 100
    // lines cross it.
    for (name, per_batch) in [("small", 10usize), ("big", 100)] {
        let mut tasks = JoinSet::new();
        for writer in 0..8 {
            let store = if writer % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            tasks.spawn(async move {
                for batch in 0..10 {
                    let lines: Vec<NewBuildLogLine> = (0..per_batch)
                        .map(|i| line(format!("w{writer} b{batch} l{i}")))
                        .collect();
                    store
                        .append_build_log("demo", CodeKind::Function, name, &lines)
                        .await
                        .expect("append_build_log");
                }
            });
        }
        tasks.join_all().await;
        let log = a
            .build_log("demo", CodeKind::Function, name, 0, 100_000)
            .await
            .unwrap();
        let seqs: Vec<u64> = log.iter().map(|l| l.seq).collect();
        let expected_len = if name == "small" {
            800
        } else {
            MAX_BUILD_LOG_LINES
        };
        assert_eq!(seqs, (1..=expected_len).collect::<Vec<u64>>(), "{name}");
        let cuts = log.iter().filter(|l| l.text == BUILD_LOG_CUT).count();
        if name == "small" {
            assert_eq!(cuts, 0);
        } else {
            assert_eq!(cuts, 1);
            assert_eq!(log.last().map(|l| l.text.as_str()), Some(BUILD_LOG_CUT));
        }
        // Each writer's lines are in the order it wrote them.
        for writer in 0..8 {
            let prefix = format!("w{writer} ");
            let mine: Vec<(usize, usize)> = log
                .iter()
                .filter_map(|l| l.text.strip_prefix(&prefix))
                .map(|rest| {
                    let (batch, i) = rest.split_once(' ').expect("a line of the test");
                    (
                        batch[1..].parse().expect("a batch number"),
                        i[1..].parse().expect("a line number"),
                    )
                })
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{name}: w{writer}");
        }
    }
    // The bound holds after it was reached: later appends keep nothing.
    b.append_build_log("demo", CodeKind::Function, "big", &[line("late".into())])
        .await
        .unwrap();
    let after = a
        .build_log("demo", CodeKind::Function, "big", MAX_BUILD_LOG_LINES, 10)
        .await
        .unwrap();
    assert!(after.is_empty());
}

/// Appends racing a delete of their record leave no log behind: the record created again
/// under the name starts with an empty log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_a_delete_leave_no_log_behind() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    a.create_namespace("demo", "t0").await.unwrap();
    for round in 0..10 {
        a.put_code("demo", CodeKind::Function, "f", "{}", "CREATING", "t1")
            .await
            .unwrap();
        let mut tasks = JoinSet::new();
        for writer in 0..4 {
            let store = b.clone();
            tasks.spawn(async move {
                for i in 0..5 {
                    store
                        .append_build_log(
                            "demo",
                            CodeKind::Function,
                            "f",
                            &[line(format!("r{round} w{writer} l{i}"))],
                        )
                        .await
                        .expect("append_build_log");
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(round * 2)).await;
        assert!(a
            .delete_code("demo", CodeKind::Function, "f")
            .await
            .unwrap());
        tasks.join_all().await;
        assert!(a
            .build_log("demo", CodeKind::Function, "f", 0, 1000)
            .await
            .unwrap()
            .is_empty());
    }
}

/// Registry credentials written while their namespace is being deleted do not outlive it
/// (registries have no foreign key: the write holds the namespace row until it commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registries_written_during_a_namespace_delete_go_with_it() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    for round in 0..10u64 {
        a.create_namespace("demo", "t0").await.unwrap();
        a.insert_data_key(&data_key("demo", "k", b"w"))
            .await
            .unwrap();
        let mut tasks = JoinSet::new();
        for writer in 0..4 {
            let store = b.clone();
            tasks.spawn(async move {
                for i in 0..5 {
                    let host = format!("r{writer}-{i}.example");
                    // Refused once the namespace is gone; what matters is what stays.
                    let _ = store
                        .put_registry(&RegistryRecord {
                            id: format!("{round}-{host}"),
                            namespace: "demo".into(),
                            url: format!("https://{host}/v2/"),
                            host,
                            username: "u".into(),
                            ciphertext: vec![1],
                            created: "t1".into(),
                            updated: "t1".into(),
                        })
                        .await;
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(round * 2)).await;
        assert!(a.delete_namespace("demo").await.unwrap());
        tasks.join_all().await;
        assert!(
            a.list_registries("demo").await.unwrap().is_empty(),
            "round {round}: registries outlived their namespace"
        );
    }
}

/// Concurrent replaces of one service (from two stores) leave exactly one writer's parameters,
/// never a mix of several writers' secret parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_service_replaces_leave_one_writers_parameters() {
    let db = TestDatabase::new();
    let (a, b) = two_stores(&db).await;
    a.create_namespace("demo", "t0").await.unwrap();
    a.insert_data_key(&data_key("demo", "k", b"w"))
        .await
        .unwrap();
    let written = |writer: u8| ServiceRecord {
        namespace: "demo".into(),
        name: "db".into(),
        params: BTreeMap::from([("writer".to_string(), writer.to_string())]),
        // Each writer its own keys: a mix would show keys of two writers.
        secret_params: (0..3)
            .map(|i| (format!("w{writer}-{i}"), vec![writer, i]))
            .collect(),
        created: "t1".into(),
        modified: format!("t{writer}"),
    };
    for _round in 0..5 {
        let mut tasks = JoinSet::new();
        for writer in 0..16u8 {
            let store = if writer % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            let record = written(writer);
            tasks.spawn(async move { store.put_service(&record).await.expect("put_service") });
        }
        tasks.join_all().await;
        let stored = a.service("demo", "db").await.unwrap().expect("the service");
        let writer: u8 = stored.params["writer"].parse().unwrap();
        let expected = written(writer);
        assert_eq!(stored.secret_params, expected.secret_params);
        assert_eq!(stored.modified, expected.modified);
    }
}
