//! The schema's migrations against a real PostgreSQL: servers that open an empty database at
//! the same time migrate it once (the advisory lock), and a database a newer faasbox migrated
//! is refused rather than written.

use faasbox_store::StoreError;
use faasbox_store_postgres::{PgStore, SCHEMA_VERSION};
use faasbox_test_registry::postgres::TestDatabase;
use tokio_postgres::NoTls;

/// A plain connection to look at the database with.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connecting to the test database");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_stores_opening_an_empty_database_at_once_migrate_it_once() {
    let database = TestDatabase::new();
    let (a, b, c) = tokio::join!(
        PgStore::open(&database.url, 2),
        PgStore::open(&database.url, 2),
        PgStore::open(&database.url, 2),
    );
    for (which, opened) in [("first", a), ("second", b), ("third", c)] {
        if let Err(e) = opened {
            panic!("the {which} open failed: {e}");
        }
    }
    let client = connect(&database.url).await;
    let versions: Vec<i64> = client
        .query("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [SCHEMA_VERSION], "one row, the newest version");
    // Made once: the events counter (a row the migration inserts) exists exactly once, and
    // each table once.
    let counters: i64 = client
        .query_one("SELECT COUNT(*) FROM counters WHERE name = 'events'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(counters, 1);
    let tables: Vec<(String, i64)> = client
        .query(
            "SELECT table_name::text, COUNT(*) FROM information_schema.tables
             WHERE table_schema = current_schema() GROUP BY table_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert!(
        tables.iter().any(|(name, _)| name == "namespaces"),
        "{tables:?}"
    );
    assert!(tables.iter().all(|(_, n)| *n == 1), "{tables:?}");
    // Opening it again later finds nothing to do.
    PgStore::open(&database.url, 2).await.expect("reopening");
    let versions: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
}

#[tokio::test]
async fn a_database_of_a_newer_faasbox_is_refused() {
    let database = TestDatabase::new();
    PgStore::open(&database.url, 2).await.expect("migrating");
    let client = connect(&database.url).await;
    client
        .execute(
            "UPDATE schema_version SET version = $1",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    match PgStore::open(&database.url, 2).await {
        Err(StoreError::TooNew { found, known }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(known, SCHEMA_VERSION);
        }
        Err(e) => panic!("refused, but not as too new: {e}"),
        Ok(_) => panic!("a database of a newer schema was opened"),
    }
    // Refused without a write: the version stays what the newer faasbox wrote.
    let version: i64 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION + 1);
}
