//! FunctionStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;
use std::collections::HashSet;

use crate::PgStore;

#[async_trait]
impl FunctionStore for PgStore {
    async fn put_function(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn function(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn all_functions(&self) -> Result<Vec<FunctionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn delete_function(&self, namespace: &str, name: &str) -> Result<bool> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn put_global_function(
        &self,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn global_function(&self, name: &str) -> Result<Option<FunctionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn list_global_functions(&self) -> Result<Vec<FunctionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn delete_global_function(&self, name: &str) -> Result<bool> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn add_revision(
        &self,
        owner: &str,
        function: &str,
        new: &NewRevision<'_>,
        keep: u32,
    ) -> Result<Revised> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn revisions(&self, owner: &str, function: &str) -> Result<Vec<RevisionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
    ) -> Result<Option<RevisionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn make_current(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        now: &str,
    ) -> Result<Option<(FunctionRecord, RevisionRecord)>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn pin_revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        digest: &str,
        image_namespace: Option<&str>,
    ) -> Result<bool> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn revision_digests(&self) -> Result<HashSet<String>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn digests_pinned_from(&self, image_namespace: Option<&str>) -> Result<HashSet<String>> {
        todo!("PostgreSQL: FunctionStore")
    }

    async fn revisions_pinning(&self, digest: &str) -> Result<Vec<RevisionRecord>> {
        todo!("PostgreSQL: FunctionStore")
    }
}
