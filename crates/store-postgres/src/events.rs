//! EventStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl EventStore for PgStore {
    async fn insert_event(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        event_type: &str,
        event: &str,
        received_ms: i64,
    ) -> Result<EventInsert> {
        todo!("PostgreSQL: EventStore")
    }

    async fn undispatched_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn list_events(&self, namespace: &str, limit: usize) -> Result<Vec<StoredEvent>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn list_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> Result<Option<Vec<StoredEvent>>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn event_watermark(&self) -> Result<i64> {
        todo!("PostgreSQL: EventStore")
    }

    async fn event_watermark_before(&self, received_ms: i64) -> Result<i64> {
        todo!("PostgreSQL: EventStore")
    }

    async fn dispatch_event(&self, seq: i64, decide: Decide) -> Result<Vec<Delivery>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn add_listener(&self, listener: &Listener, decide: Decide) -> Result<Option<Delivery>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn replace_start_listeners(
        &self,
        namespace: &str,
        flow: &str,
        listeners: &[Listener],
    ) -> Result<()> {
        todo!("PostgreSQL: EventStore")
    }

    async fn delete_instance_listeners(&self, instance_id: &str) -> Result<usize> {
        todo!("PostgreSQL: EventStore")
    }

    async fn wait_listeners(&self) -> Result<Vec<Listener>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn list_listeners(&self, namespace: &str) -> Result<Vec<ListenerRecord>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn pending_deliveries(&self) -> Result<Vec<Delivery>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn finish_delivery(&self, id: i64) -> Result<()> {
        todo!("PostgreSQL: EventStore")
    }

    async fn put_subscription(
        &self,
        subscription: &SubscriptionRecord,
        filters: &str,
        created_ms: i64,
    ) -> Result<bool> {
        todo!("PostgreSQL: EventStore")
    }

    async fn get_subscription(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SubscriptionRecord>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn list_subscriptions(&self, namespace: &str) -> Result<Vec<SubscriptionRecord>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn delete_subscription(&self, namespace: &str, name: &str) -> Result<bool> {
        todo!("PostgreSQL: EventStore")
    }

    async fn put_schedule(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        now_ms: i64,
    ) -> Result<()> {
        todo!("PostgreSQL: EventStore")
    }

    async fn delete_schedule(&self, namespace: &str, flow: &str) -> Result<bool> {
        todo!("PostgreSQL: EventStore")
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        todo!("PostgreSQL: EventStore")
    }

    async fn claim_schedule_slot(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        slot_ms: i64,
        instance: Option<&NewInstance<'_>>,
    ) -> Result<bool> {
        todo!("PostgreSQL: EventStore")
    }

    async fn insert_delayed_event(&self, event: &DelayedEvent) -> Result<()> {
        todo!("PostgreSQL: EventStore")
    }

    async fn release_due_events(&self, now_ms: i64) -> Result<usize> {
        todo!("PostgreSQL: EventStore")
    }

    async fn next_delayed_event_due(&self) -> Result<Option<i64>> {
        todo!("PostgreSQL: EventStore")
    }
}
