//! InvocationStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_proto::LogLine;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl InvocationStore for PgStore {
    async fn start_invocation(
        &self,
        id: &str,
        namespace: &str,
        function: &str,
        started: &str,
    ) -> Result<()> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<()> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn list_invocations(
        &self,
        namespace: &str,
        function: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn append_logs(&self, invocation_id: &str, logs: &[LogLine]) -> Result<()> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn logs(&self, invocation_id: &str) -> Result<Vec<LogLine>> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn fail_interrupted_invocations(&self, ended: &str) -> Result<usize> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn insert_run(&self, run: &NewRun) -> Result<bool> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn queued_runs(&self, limit: u32, skip: &[String]) -> Result<Vec<InvocationRecord>> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn claim_run(&self, id: &str, started: &str) -> Result<bool> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn cancel_queued_run(&self, id: &str, ended: &str) -> Result<bool> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn requeue_interrupted_runs(&self, ended: &str) -> Result<Requeued> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<InvocationRecord>> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn run_counts(&self, namespace: &str, since: &str) -> Result<Vec<RunCount>> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn set_callback_status(&self, id: &str, status: &str) -> Result<()> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn purge_runs(&self, before: &str, keep: u32) -> Result<usize> {
        todo!("PostgreSQL: InvocationStore")
    }

    async fn function_logs(
        &self,
        namespace: &str,
        function: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<FunctionLogs> {
        todo!("PostgreSQL: InvocationStore")
    }
}
