//! NamespaceStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl NamespaceStore for PgStore {
    async fn create_namespace(&self, name: &str, created: &str) -> Result<NamespaceRecord> {
        todo!("PostgreSQL: NamespaceStore")
    }

    async fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>> {
        todo!("PostgreSQL: NamespaceStore")
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        todo!("PostgreSQL: NamespaceStore")
    }

    async fn delete_namespace(&self, name: &str) -> Result<bool> {
        todo!("PostgreSQL: NamespaceStore")
    }
}
