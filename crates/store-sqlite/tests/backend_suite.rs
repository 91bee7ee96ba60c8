//! faasbox-store's backend suite against the SQLite store: each case gets a database file of
//! its own in a temporary directory; opening it again is a restart.

use std::sync::Arc;

use async_trait::async_trait;
use faasbox_store::suite::Backend;
use faasbox_store::Store;
use faasbox_store_sqlite::SqliteStore;

/// A temporary directory holding one case's database.
struct TempDatabase {
    dir: tempfile::TempDir,
}

impl TempDatabase {
    fn new() -> TempDatabase {
        TempDatabase {
            dir: tempfile::tempdir().expect("creating a temporary directory"),
        }
    }
}

#[async_trait]
impl Backend for TempDatabase {
    async fn open(&self) -> Arc<dyn Store> {
        let path = self.dir.path().join("faasbox.db");
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
            .await
            .expect("the open did not panic")
            .expect("opening the database");
        Arc::new(store)
    }
}

faasbox_store::backend_suite!(TempDatabase::new());
