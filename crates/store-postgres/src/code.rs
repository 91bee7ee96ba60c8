//! CodeStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl CodeStore for PgStore {
    async fn put_code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
        status: &str,
        now: &str,
    ) -> Result<CodeRecord> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn set_code_status(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        status: &CodeStatus<'_>,
        now: &str,
    ) -> Result<bool> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn set_code_spec(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
    ) -> Result<bool> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
    ) -> Result<Option<CodeRecord>> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn codes(&self, namespace: &str, kind: CodeKind) -> Result<Vec<CodeRecord>> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn codes_with_status(&self, statuses: &[&str]) -> Result<Vec<CodeRecord>> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn delete_code(&self, namespace: &str, kind: CodeKind, name: &str) -> Result<bool> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn append_build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        lines: &[NewBuildLogLine],
    ) -> Result<()> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<BuildLogLine>> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn build_cache(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        todo!("PostgreSQL: CodeStore")
    }

    async fn put_build_cache(
        &self,
        namespace: &str,
        key: &str,
        digest: &str,
        now: &str,
    ) -> Result<()> {
        todo!("PostgreSQL: CodeStore")
    }
}
