//! FlowStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl FlowStore for PgStore {
    async fn put_flow(
        &self,
        namespace: &str,
        path: &str,
        source: &str,
        now: &str,
    ) -> Result<FlowRecord> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn flow(&self, namespace: &str, path: &str) -> Result<Option<FlowRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn list_flows(&self, namespace: &str) -> Result<Vec<FlowRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn delete_flow(&self, namespace: &str, path: &str) -> Result<bool> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn create_instance(&self, new: &NewInstance<'_>) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn set_instance_metadata(&self, id: &str, metadata: &str, now: &str) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn save_checkpoint(
        &self,
        id: &str,
        status: &str,
        checkpoint: &str,
        finished: Option<(u64, &str)>,
        now: &str,
    ) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn finish_instance(
        &self,
        id: &str,
        status: &str,
        output: Option<&str>,
        error: Option<(&str, &str)>,
        now: &str,
    ) -> Result<bool> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn instance(&self, id: &str) -> Result<Option<FlowInstanceRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn list_instances(&self, namespace: &str, limit: u32) -> Result<Vec<FlowInstanceRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn list_instances_by(&self, filter: &InstanceFilter) -> Result<Vec<FlowInstanceRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn instances_with_status(&self, status: &str) -> Result<Vec<FlowInstanceRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn unfinished_instances(&self, namespace: &str) -> Result<Vec<String>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn instance_counts(&self, namespace: &str) -> Result<Vec<(String, u64)>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn start_step(&self, start: &StepStart<'_>) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn end_step(&self, instance: &str, end: &StepEnd<'_>) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn instance_steps(&self, instance: &str) -> Result<Vec<StepRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn finished_states(&self, id: &str) -> Result<Vec<(u64, String)>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn append_instance_log(&self, id: &str, ts_ms: i64, message: &str) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn append_instance_logs(&self, id: &str, lines: &[NewInstanceLog<'_>]) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn instance_logs(&self, id: &str, after_seq: i64) -> Result<Vec<InstanceLogRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn record_instance_call(&self, id: &str, call: &InstanceCallRecord) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn instance_calls(&self, id: &str) -> Result<Vec<InstanceCallRecord>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<String>> {
        todo!("PostgreSQL: FlowStore")
    }

    async fn set_variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
        value: Option<&str>,
        now: &str,
    ) -> Result<()> {
        todo!("PostgreSQL: FlowStore")
    }
}
