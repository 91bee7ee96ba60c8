//! RouteStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl RouteStore for PgStore {
    async fn put_route(&self, record: &RouteRecord) -> Result<RouteRecord> {
        todo!("PostgreSQL: RouteStore")
    }

    async fn route(&self, namespace: &str, name: &str) -> Result<Option<RouteRecord>> {
        todo!("PostgreSQL: RouteStore")
    }

    async fn list_routes(&self, namespace: &str) -> Result<Vec<RouteRecord>> {
        todo!("PostgreSQL: RouteStore")
    }

    async fn all_routes(&self) -> Result<Vec<RouteRecord>> {
        todo!("PostgreSQL: RouteStore")
    }

    async fn delete_route(&self, namespace: &str, name: &str) -> Result<bool> {
        todo!("PostgreSQL: RouteStore")
    }
}
