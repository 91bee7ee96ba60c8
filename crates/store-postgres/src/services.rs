//! ServiceStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;
use std::collections::BTreeMap;

use crate::PgStore;

#[async_trait]
impl ServiceStore for PgStore {
    async fn put_service(&self, record: &ServiceRecord) -> Result<ServiceRecord> {
        todo!("PostgreSQL: ServiceStore")
    }

    async fn service(&self, namespace: &str, name: &str) -> Result<Option<ServiceRecord>> {
        todo!("PostgreSQL: ServiceStore")
    }

    async fn list_services(&self, namespace: &str) -> Result<Vec<ServiceRecord>> {
        todo!("PostgreSQL: ServiceStore")
    }

    async fn delete_service(&self, namespace: &str, name: &str) -> Result<bool> {
        todo!("PostgreSQL: ServiceStore")
    }
}
