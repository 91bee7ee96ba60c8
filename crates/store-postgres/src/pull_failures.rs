//! PullFailureStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl PullFailureStore for PgStore {
    async fn record_pull_failure(
        &self,
        owner: &str,
        function: &str,
        message: &str,
        now: &str,
    ) -> Result<()> {
        todo!("PostgreSQL: PullFailureStore")
    }

    async fn clear_pull_failure(&self, owner: &str, function: &str) -> Result<()> {
        todo!("PostgreSQL: PullFailureStore")
    }

    async fn pull_failures(&self) -> Result<Vec<PullFailure>> {
        todo!("PostgreSQL: PullFailureStore")
    }
}
