//! TokenStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(&self, record: &TokenRecord) -> Result<()> {
        todo!("PostgreSQL: TokenStore")
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        todo!("PostgreSQL: TokenStore")
    }

    async fn delete_token(&self, id: &str) -> Result<bool> {
        todo!("PostgreSQL: TokenStore")
    }
}
