//! faasbox-store's backend suite against the PostgreSQL store: each case gets a fresh database
//! (in the cluster `scripts/test.sh` started, or one of the case's own); opening it again is a
//! restart.

use std::sync::Arc;

use async_trait::async_trait;
use faasbox_store::suite::Backend;
use faasbox_store::Store;
use faasbox_store_postgres::PgStore;
use faasbox_test_registry::postgres::TestDatabase;

/// One case's database.
struct PgDatabase(TestDatabase);

#[async_trait]
impl Backend for PgDatabase {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            PgStore::open(&self.0.url, 4)
                .await
                .expect("opening the PostgreSQL store"),
        )
    }
}

faasbox_store::backend_suite!(PgDatabase(TestDatabase::new()));
