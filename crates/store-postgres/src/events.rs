//! EventStore on PostgreSQL: accepted CloudEvents, event listeners (flow starts, waiting
//! instances, subscriptions) with eventsAnd progress, the outbox of fired listeners, the last
//! fired slot of each cron schedule, and events held back until a time. The SQL mirrors
//! faasbox-store-sqlite's `events.rs` and `delayed_events.rs` statement by statement.
//!
//! What PostgreSQL needs beyond SQLite's single connection, and how it gets it:
//! - seqs come from the `counters` row 'events', bumped in the inserting transaction: its row
//!   lock makes the order of seqs the order events become visible in (see schema.rs);
//! - everything that reads or changes a namespace's listeners against its events (dispatching
//!   an event, adding or replacing listeners, removing an instance's waits, putting or deleting
//!   a subscription) first takes a per-namespace advisory lock ([`lock_namespace`]), so a
//!   listener cannot be missed by both an event's dispatch and its own registration, and a
//!   wait fires once however many servers dispatch that namespace's events;
//! - a schedule's slot is claimed by a conditional `UPDATE` (a second concurrent one waits for
//!   the first's row lock, re-checks its `WHERE` and changes nothing);
//! - held events are taken `FOR UPDATE SKIP LOCKED`, so each is released by one server;
//! - a transaction that writes rows of a namespace holds the namespace's row `FOR KEY SHARE`
//!   before any of them (`namespace_exists`), as `delete_namespace` locks that row before it
//!   deletes the rest: the two never wait for each other's rows (a deadlock), and nothing of a
//!   namespace being deleted is left behind.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use faasbox_store::{
    Decide, DelayedEvent, Delivery, EventInsert, EventStore, GatheredRecord, Listener,
    ListenerAction, ListenerKind, ListenerRecord, NewInstance, Result, ScheduleRecord, StoreError,
    StoredEvent, SubscriptionRecord,
};
use tokio_postgres::Row;

use crate::{db, is_foreign_key_violation, PgStore};

const EVENT_COLUMNS: &str = "seq, namespace, id, source, type, event, received_ms";
const LISTENER_COLUMNS: &str = "id, namespace, kind, flow, instance_id, mode, filters, \
     lifespan_ms, deadline_ms, after_seq, created_ms";
const DELIVERY_COLUMNS: &str =
    "id, namespace, listener_id, kind, flow, instance_id, events, created_ms";

#[async_trait]
impl EventStore for PgStore {
    // --- events -----------------------------------------------------------------------------

    async fn insert_event(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        event_type: &str,
        event: &str,
        received_ms: i64,
    ) -> Result<EventInsert> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        if !namespace_exists(&tx, namespace).await? {
            return Err(StoreError::NoNamespace(namespace.to_string()));
        }
        let inserted =
            insert_event_row(&tx, namespace, id, source, event_type, event, received_ms).await?;
        tx.commit()
            .await
            .map_err(|e| no_namespace_or_db(e, namespace))?;
        Ok(inserted)
    }

    async fn undispatched_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE dispatched = 0 ORDER BY seq LIMIT $1"
                ),
                &[&to_limit(limit)],
            )
            .await
            .map_err(db)?;
        rows.iter().map(event_row).collect()
    }

    async fn list_events(&self, namespace: &str, limit: usize) -> Result<Vec<StoredEvent>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE namespace = $1
                     ORDER BY seq DESC LIMIT $2"
                ),
                &[&namespace, &to_limit(limit)],
            )
            .await
            .map_err(db)?;
        rows.iter().map(event_row).collect()
    }

    async fn list_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> Result<Option<Vec<StoredEvent>>> {
        let c = self.client().await?;
        let known: bool = c
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM events WHERE seq = $1 AND namespace = $2)",
                &[&before, &namespace],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db)?;
        if !known {
            return Ok(None);
        }
        let rows = c
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE namespace = $1 AND seq < $2
                     ORDER BY seq DESC LIMIT $3"
                ),
                &[&namespace, &before, &to_limit(limit)],
            )
            .await
            .map_err(db)?;
        Ok(Some(rows.iter().map(event_row).collect::<Result<_>>()?))
    }

    async fn event_watermark(&self) -> Result<i64> {
        let c = self.client().await?;
        watermark(&c).await
    }

    async fn event_watermark_before(&self, received_ms: i64) -> Result<i64> {
        let c = self.client().await?;
        c.query_one(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE received_ms < $1",
            &[&received_ms],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(db)
    }

    async fn dispatch_event(&self, seq: i64, mut decide: Decide) -> Result<Vec<Delivery>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The namespace first (it never changes), to take its lock before the event's row.
        let namespace: Option<String> = tx
            .query_opt("SELECT namespace FROM events WHERE seq = $1", &[&seq])
            .await
            .map_err(db)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)?;
        let Some(namespace) = namespace else {
            return Ok(Vec::new());
        };
        lock_namespace(&tx, &namespace).await?;
        // The namespace's row before the event's (see `namespace_exists`); a namespace deleted
        // meanwhile took its events along.
        if !namespace_exists(&tx, &namespace).await? {
            return Ok(Vec::new());
        }
        // FOR UPDATE: a second dispatcher of the same event waits here, then finds it
        // dispatched (its row re-checked against `dispatched = 0`) and does nothing.
        let event = tx
            .query_opt(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE seq = $1 AND dispatched = 0
                     FOR UPDATE"
                ),
                &[&seq],
            )
            .await
            .map_err(db)?;
        let Some(event) = event.as_ref().map(event_row).transpose()? else {
            return Ok(Vec::new());
        };
        let listeners = listeners_where(
            &tx,
            "namespace = $1 AND after_seq < $2",
            &[&event.namespace, &seq],
        )
        .await?;
        let mut deliveries = Vec::new();
        for listener in &listeners {
            let action = decide(&event, listener);
            if let Some(delivery) = apply(&tx, &listener.listener, &event, action).await? {
                deliveries.push(delivery);
            }
        }
        tx.execute("UPDATE events SET dispatched = 1 WHERE seq = $1", &[&seq])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(deliveries)
    }

    async fn add_listener(
        &self,
        listener: &Listener,
        mut decide: Decide,
    ) -> Result<Option<Delivery>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Under the namespace's lock, an event of it is either dispatched already (and is
        // offered here) or dispatched after this commits (and sees the listener).
        lock_namespace(&tx, &listener.namespace).await?;
        insert_listener(&tx, listener).await?;
        let missed = tx
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE namespace = $1 AND seq > $2 AND dispatched = 1 ORDER BY seq"
                ),
                &[&listener.namespace, &listener.after_seq],
            )
            .await
            .map_err(db)?;
        let mut fired = None;
        for event in &missed {
            let event = event_row(event)?;
            let Some(record) = listeners_where(&tx, "id = $1", &[&listener.id])
                .await?
                .pop()
            else {
                break;
            };
            let action = decide(&event, &record);
            if let Some(delivery) = apply(&tx, &record.listener, &event, action).await? {
                fired = Some(delivery);
                if record.listener.kind == ListenerKind::Wait {
                    break;
                }
            }
        }
        tx.commit()
            .await
            .map_err(|e| no_namespace_or_db(e, &listener.namespace))?;
        Ok(fired)
    }

    async fn replace_start_listeners(
        &self,
        namespace: &str,
        flow: &str,
        listeners: &[Listener],
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock_namespace(&tx, namespace).await?;
        // The namespace's row before its listeners' rows (see `namespace_exists`); whether it
        // exists is each new listener's check, as on SQLite (none to add is no error).
        namespace_exists(&tx, namespace).await?;
        tx.execute(
            "DELETE FROM event_listeners WHERE namespace = $1 AND flow = $2 AND kind = 'start'",
            &[&namespace, &flow],
        )
        .await
        .map_err(db)?;
        for listener in listeners {
            insert_listener(&tx, listener).await?;
        }
        tx.commit()
            .await
            .map_err(|e| no_namespace_or_db(e, namespace))?;
        Ok(())
    }

    async fn delete_instance_listeners(&self, instance_id: &str) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The namespaces' locks (an instance's waits are all in its own), in name order: a
        // dispatch that is firing one of these waits finishes first, and then the wait is gone
        // here (0 removed), so exactly one of the two takes it.
        let namespaces = tx
            .query(
                "SELECT DISTINCT namespace FROM event_listeners WHERE instance_id = $1
                 ORDER BY namespace",
                &[&instance_id],
            )
            .await
            .map_err(db)?;
        for row in &namespaces {
            let namespace: String = row.try_get(0).map_err(db)?;
            lock_namespace(&tx, &namespace).await?;
            // The namespace's row before its listeners' rows (see `namespace_exists`).
            namespace_exists(&tx, &namespace).await?;
        }
        let removed = tx
            .execute(
                "DELETE FROM event_listeners WHERE instance_id = $1",
                &[&instance_id],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(to_count(removed))
    }

    async fn wait_listeners(&self) -> Result<Vec<Listener>> {
        let c = self.client().await?;
        Ok(listeners_where(&c, "kind = 'wait'", &[])
            .await?
            .into_iter()
            .map(|r| r.listener)
            .collect())
    }

    async fn list_listeners(&self, namespace: &str) -> Result<Vec<ListenerRecord>> {
        let c = self.client().await?;
        listeners_where(&c, "namespace = $1", &[&namespace]).await
    }

    async fn pending_deliveries(&self) -> Result<Vec<Delivery>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {DELIVERY_COLUMNS} FROM event_deliveries ORDER BY id"),
                &[],
            )
            .await
            .map_err(db)?;
        rows.iter().map(delivery_row).collect()
    }

    async fn claim_deliveries(
        &self,
        node: &str,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        // SKIP LOCKED: servers claiming at once take different rows instead of waiting for each
        // other; a row another claim holds is re-checked by nobody and claimed by one.
        const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "UPDATE event_deliveries SET claimed_by = $1, claimed_until_ms = {NOW_MS} + $2
                     WHERE id IN (SELECT id FROM event_deliveries
                                  WHERE claimed_by = $1 OR claimed_until_ms IS NULL OR claimed_until_ms < {NOW_MS}
                                  ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING {DELIVERY_COLUMNS}"
                ),
                &[&node, &lease_ms, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        let mut claimed = rows.iter().map(delivery_row).collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    async fn due_waits(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, i64)>> {
        let c = self.client().await?;
        c.query(
            "SELECT instance_id, deadline_ms FROM event_listeners
             WHERE kind = 'wait' AND instance_id IS NOT NULL AND deadline_ms IS NOT NULL
               AND deadline_ms <= $1
             ORDER BY deadline_ms, id LIMIT $2",
            &[&now_ms, &i64::from(limit)],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?)))
        .collect()
    }

    async fn finish_delivery(&self, id: i64) -> Result<()> {
        let c = self.client().await?;
        c.execute("DELETE FROM event_deliveries WHERE id = $1", &[&id])
            .await
            .map_err(db)?;
        Ok(())
    }

    // --- subscriptions ----------------------------------------------------------------------

    async fn put_subscription(
        &self,
        sub: &SubscriptionRecord,
        filters: &str,
        created_ms: i64,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The lock also keeps two puts of one subscription from both finding none and both
        // adding a listener (the loser's would be left behind).
        lock_namespace(&tx, &sub.namespace).await?;
        // The namespace's row before its listeners' rows (see `namespace_exists`).
        if !namespace_exists(&tx, &sub.namespace).await? {
            return Err(StoreError::NoNamespace(sub.namespace.clone()));
        }
        let old: Option<String> = tx
            .query_opt(
                "SELECT listener_id FROM subscriptions WHERE namespace = $1 AND name = $2",
                &[&sub.namespace, &sub.name],
            )
            .await
            .map_err(db)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)?;
        if let Some(old) = &old {
            tx.execute("DELETE FROM event_listeners WHERE id = $1", &[old])
                .await
                .map_err(db)?;
        }
        // Taken inside the transaction: every event accepted after it is dispatched after the
        // listener exists.
        let after_seq = watermark(&tx).await?;
        insert_listener(
            &tx,
            &Listener {
                id: sub.listener_id.clone(),
                namespace: sub.namespace.clone(),
                kind: ListenerKind::Subscription,
                flow: sub.name.clone(),
                instance_id: None,
                mode: "one".to_string(),
                filters: filters.to_string(),
                lifespan_ms: None,
                deadline_ms: None,
                after_seq,
                created_ms,
            },
        )
        .await?;
        tx.execute(
            "INSERT INTO subscriptions
               (namespace, name, function, type, source, context, listener_id, created, modified)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (namespace, name) DO UPDATE SET
               function = excluded.function, type = excluded.type,
               source = excluded.source, context = excluded.context,
               listener_id = excluded.listener_id, modified = excluded.modified",
            &[
                &sub.namespace,
                &sub.name,
                &sub.function,
                &sub.event_type,
                &sub.source,
                &sub.context,
                &sub.listener_id,
                &sub.created,
                &sub.modified,
            ],
        )
        .await
        .map_err(|e| no_namespace_or_db(e, &sub.namespace))?;
        tx.commit()
            .await
            .map_err(|e| no_namespace_or_db(e, &sub.namespace))?;
        Ok(old.is_none())
    }

    async fn get_subscription(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SubscriptionRecord>> {
        let c = self.client().await?;
        Ok(
            subscriptions_where(&c, "namespace = $1 AND name = $2", &[&namespace, &name])
                .await?
                .pop(),
        )
    }

    async fn list_subscriptions(&self, namespace: &str) -> Result<Vec<SubscriptionRecord>> {
        let c = self.client().await?;
        subscriptions_where(&c, "namespace = $1", &[&namespace]).await
    }

    async fn delete_subscription(&self, namespace: &str, name: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock_namespace(&tx, namespace).await?;
        // The namespace's row before its subscriptions', listeners' and deliveries' rows (see
        // `namespace_exists`); a deleted namespace took its subscriptions along.
        if !namespace_exists(&tx, namespace).await? {
            return Ok(false);
        }
        let removed = tx
            .execute(
                "DELETE FROM subscriptions WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )
            .await
            .map_err(db)?
            > 0;
        if removed {
            tx.execute(
                "DELETE FROM event_listeners WHERE namespace = $1 AND flow = $2
                   AND kind = 'subscription'",
                &[&namespace, &name],
            )
            .await
            .map_err(db)?;
            tx.execute(
                "DELETE FROM event_deliveries WHERE namespace = $1 AND flow = $2
                   AND kind = 'subscription'",
                &[&namespace, &name],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(removed)
    }

    // --- schedules --------------------------------------------------------------------------

    async fn put_schedule(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        now_ms: i64,
    ) -> Result<()> {
        let c = self.client().await?;
        if !namespace_exists(&c, namespace).await? {
            return Err(StoreError::NoNamespace(namespace.to_string()));
        }
        // The existing row's columns are qualified: PostgreSQL names them by the table.
        c.execute(
            "INSERT INTO schedules (namespace, flow, cron, last_fired_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (namespace, flow) DO UPDATE SET
               last_fired_ms = CASE WHEN schedules.cron = excluded.cron
                                    THEN schedules.last_fired_ms
                                    ELSE excluded.last_fired_ms END,
               cron = excluded.cron",
            &[&namespace, &flow, &cron, &now_ms],
        )
        .await
        .map_err(|e| no_namespace_or_db(e, namespace))?;
        Ok(())
    }

    async fn delete_schedule(&self, namespace: &str, flow: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM schedules WHERE namespace = $1 AND flow = $2",
            &[&namespace, &flow],
        )
        .await
        .map_err(db)?
            > 0)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT namespace, flow, cron, last_fired_ms FROM schedules
                 ORDER BY namespace, flow",
                &[],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRecord {
                    namespace: r.try_get(0)?,
                    flow: r.try_get(1)?,
                    cron: r.try_get(2)?,
                    last_fired_ms: r.try_get(3)?,
                })
            })
            .collect::<std::result::Result<_, tokio_postgres::Error>>()
            .map_err(db)
    }

    async fn claim_schedule_slot(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        slot_ms: i64,
        instance: Option<&NewInstance<'_>>,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The namespace's row first: a namespace deletion waits for the claim and then removes
        // its instance too (and a deleted namespace has no schedule to claim).
        if !namespace_exists(&tx, namespace).await? {
            return Ok(false);
        }
        // Once across servers with no further lock: a concurrent claim of the slot waits for
        // this row lock, then re-checks `last_fired_ms < $4` against the committed row and
        // updates nothing.
        let claimed = tx
            .execute(
                "UPDATE schedules SET last_fired_ms = $4
                 WHERE namespace = $1 AND flow = $2 AND cron = $3 AND last_fired_ms < $4",
                &[&namespace, &flow, &cron, &slot_ms],
            )
            .await
            .map_err(db)?
            > 0;
        if claimed {
            if let Some(instance) = instance {
                // FlowStore's statement, in this transaction.
                crate::flows::insert_instance(&*tx, instance).await?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(claimed)
    }

    // --- delayed events ---------------------------------------------------------------------

    async fn insert_delayed_event(&self, e: &DelayedEvent) -> Result<()> {
        let c = self.client().await?;
        if !namespace_exists(&c, &e.namespace).await? {
            return Err(StoreError::NoNamespace(e.namespace.clone()));
        }
        c.execute(
            "INSERT INTO delayed_events (namespace, event_id, source, type, event, due_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &e.namespace,
                &e.id,
                &e.source,
                &e.event_type,
                &e.event,
                &e.due_ms,
            ],
        )
        .await
        .map_err(|err| no_namespace_or_db(err, &e.namespace))?;
        Ok(())
    }

    async fn release_due_events(&self, now_ms: i64) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The namespaces' rows first, in name order (see `namespace_exists`): a namespace
        // deletion then waits for this release, or this release finds its held events gone.
        // Only these namespaces' held events are taken (one held meanwhile in another waits
        // for the next release).
        let namespaces = tx
            .query(
                "SELECT name FROM namespaces
                 WHERE name IN (SELECT namespace FROM delayed_events WHERE due_ms <= $1)
                 ORDER BY name FOR KEY SHARE",
                &[&now_ms],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db)?;
        // SKIP LOCKED: held events another server is releasing right now are its own; each is
        // moved once.
        let due = tx
            .query(
                "SELECT id, namespace, event_id, source, type, event FROM delayed_events
                 WHERE due_ms <= $1 AND namespace = ANY($2)
                 ORDER BY due_ms, id FOR UPDATE SKIP LOCKED",
                &[&now_ms, &namespaces],
            )
            .await
            .map_err(db)?;
        let mut accepted = 0;
        for row in &due {
            let held = (|| {
                Ok::<_, tokio_postgres::Error>((
                    row.try_get::<_, i64>(0)?,
                    row.try_get::<_, String>(1)?,
                    row.try_get::<_, String>(2)?,
                    row.try_get::<_, String>(3)?,
                    row.try_get::<_, String>(4)?,
                    row.try_get::<_, String>(5)?,
                ))
            })();
            let (id, namespace, event_id, source, event_type, event) = held.map_err(db)?;
            let inserted = insert_event_row(
                &tx,
                &namespace,
                &event_id,
                &source,
                &event_type,
                &event,
                now_ms,
            )
            .await?;
            if matches!(inserted, EventInsert::New(_)) {
                accepted += 1;
            }
            tx.execute("DELETE FROM delayed_events WHERE id = $1", &[&id])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(accepted)
    }

    async fn next_delayed_event_due(&self) -> Result<Option<i64>> {
        let c = self.client().await?;
        c.query_one("SELECT MIN(due_ms) FROM delayed_events", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db)
    }
}

/// Takes the transaction-long advisory lock of `namespace`'s listeners and events (see the
/// file's doc). Two namespaces whose keys collide only wait for each other.
async fn lock_namespace(client: &impl GenericClient, namespace: &str) -> Result<()> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('events:' || $1))",
            &[&namespace],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// Whether the namespace exists. `FOR KEY SHARE`: inside a transaction it stays until the
/// transaction ends, and a namespace deletion (which locks its row first) waits for it; taken
/// before any row of the namespace, so the two never wait for each other's rows.
async fn namespace_exists(client: &impl GenericClient, namespace: &str) -> Result<bool> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM namespaces WHERE name = $1 FOR KEY SHARE",
            &[&namespace],
        )
        .await
        .map_err(db)?
        .is_some())
}

/// `NoNamespace` when the namespace went away between its check and the write (its foreign
/// key refused the row), else the database's error.
fn no_namespace_or_db(e: tokio_postgres::Error, namespace: &str) -> StoreError {
    if is_foreign_key_violation(&e) {
        StoreError::NoNamespace(namespace.to_string())
    } else {
        db(e)
    }
}

/// The newest accepted event's seq (0 when none).
async fn watermark(client: &impl GenericClient) -> Result<i64> {
    client
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM events", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(db)
}

/// Inserts an event of an existing namespace; a resent one (same source and id) is a
/// duplicate. Its seq is the `counters` row's next value, taken in the caller's transaction.
async fn insert_event_row(
    tx: &impl GenericClient,
    namespace: &str,
    id: &str,
    source: &str,
    event_type: &str,
    event: &str,
    received_ms: i64,
) -> Result<EventInsert> {
    // A known event leaves the counter alone.
    if let Some(seq) = event_seq(tx, namespace, source, id).await? {
        return Ok(EventInsert::Duplicate(seq));
    }
    let seq: i64 = tx
        .query_one(
            "UPDATE counters SET value = value + 1 WHERE name = 'events' RETURNING value",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(db)?;
    // The same event accepted by another connection since the check above (it held the
    // counter row until it committed) is a conflict here: then this seq is left unused.
    let inserted = tx
        .execute(
            "INSERT INTO events (seq, namespace, id, source, type, event, received_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (namespace, source, id) DO NOTHING",
            &[
                &seq,
                &namespace,
                &id,
                &source,
                &event_type,
                &event,
                &received_ms,
            ],
        )
        .await
        .map_err(|e| no_namespace_or_db(e, namespace))?;
    if inserted > 0 {
        return Ok(EventInsert::New(seq));
    }
    match event_seq(tx, namespace, source, id).await? {
        Some(seq) => Ok(EventInsert::Duplicate(seq)),
        None => Err(StoreError::backend(format!(
            "event {id} from {source} in namespace {namespace} was neither inserted nor found"
        ))),
    }
}

async fn event_seq(
    client: &impl GenericClient,
    namespace: &str,
    source: &str,
    id: &str,
) -> Result<Option<i64>> {
    client
        .query_opt(
            "SELECT seq FROM events WHERE namespace = $1 AND source = $2 AND id = $3",
            &[&namespace, &source, &id],
        )
        .await
        .map_err(db)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(db)
}

fn event_row(r: &Row) -> Result<StoredEvent> {
    (|| {
        Ok(StoredEvent {
            seq: r.try_get(0)?,
            namespace: r.try_get(1)?,
            id: r.try_get(2)?,
            source: r.try_get(3)?,
            event_type: r.try_get(4)?,
            event: r.try_get(5)?,
            received_ms: r.try_get(6)?,
        })
    })()
    .map_err(db)
}

fn delivery_row(r: &Row) -> Result<Delivery> {
    (|| {
        Ok(Delivery {
            id: r.try_get(0)?,
            namespace: r.try_get(1)?,
            listener_id: r.try_get(2)?,
            kind: ListenerKind::parse(r.try_get::<_, &str>(3)?),
            flow: r.try_get(4)?,
            instance_id: r.try_get(5)?,
            events: r.try_get(6)?,
            created_ms: r.try_get(7)?,
        })
    })()
    .map_err(db)
}

async fn insert_listener(tx: &impl GenericClient, l: &Listener) -> Result<()> {
    if !namespace_exists(tx, &l.namespace).await? {
        return Err(StoreError::NoNamespace(l.namespace.clone()));
    }
    tx.execute(
        &format!(
            "INSERT INTO event_listeners ({LISTENER_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ),
        &[
            &l.id,
            &l.namespace,
            &l.kind.as_str(),
            &l.flow,
            &l.instance_id,
            &l.mode,
            &l.filters,
            &l.lifespan_ms,
            &l.deadline_ms,
            &l.after_seq,
            &l.created_ms,
        ],
    )
    .await
    .map_err(|e| no_namespace_or_db(e, &l.namespace))?;
    Ok(())
}

async fn subscriptions_where(
    client: &impl GenericClient,
    condition: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<SubscriptionRecord>> {
    let rows = client
        .query(
            &format!(
                "SELECT namespace, name, function, type, source, context, listener_id, created,
                        modified
                 FROM subscriptions WHERE {condition} ORDER BY name"
            ),
            params,
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(SubscriptionRecord {
                namespace: r.try_get(0)?,
                name: r.try_get(1)?,
                function: r.try_get(2)?,
                event_type: r.try_get(3)?,
                source: r.try_get(4)?,
                context: r.try_get(5)?,
                listener_id: r.try_get(6)?,
                created: r.try_get(7)?,
                modified: r.try_get(8)?,
            })
        })
        .collect::<std::result::Result<_, tokio_postgres::Error>>()
        .map_err(db)
}

async fn listeners_where(
    client: &impl GenericClient,
    condition: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<ListenerRecord>> {
    let rows = client
        .query(
            &format!(
                "SELECT {LISTENER_COLUMNS} FROM event_listeners WHERE {condition}
                 ORDER BY created_ms, id"
            ),
            params,
        )
        .await
        .map_err(db)?;
    let mut listeners = rows
        .iter()
        .map(|r| {
            Ok(ListenerRecord {
                listener: Listener {
                    id: r.try_get(0)?,
                    namespace: r.try_get(1)?,
                    kind: ListenerKind::parse(r.try_get::<_, &str>(2)?),
                    flow: r.try_get(3)?,
                    instance_id: r.try_get(4)?,
                    mode: r.try_get(5)?,
                    filters: r.try_get(6)?,
                    lifespan_ms: r.try_get(7)?,
                    deadline_ms: r.try_get(8)?,
                    after_seq: r.try_get(9)?,
                    created_ms: r.try_get(10)?,
                },
                gathered: Vec::new(),
            })
        })
        .collect::<std::result::Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(db)?;
    if listeners.is_empty() {
        return Ok(listeners);
    }
    // One query for every listener's progress (SQLite asks once per listener; here each
    // query is a round trip, made while dispatch holds the namespace's lock).
    let ids: Vec<&str> = listeners.iter().map(|l| l.listener.id.as_str()).collect();
    let rows = client
        .query(
            "SELECT g.listener_id, g.filter_index, g.event_seq, g.received_ms, e.event
             FROM event_gathered g JOIN events e ON e.seq = g.event_seq
             WHERE g.listener_id = ANY($1) ORDER BY g.listener_id, g.filter_index",
            &[&ids],
        )
        .await
        .map_err(db)?;
    let mut gathered: HashMap<String, Vec<GatheredRecord>> = HashMap::new();
    for r in &rows {
        let (listener_id, record) = (|| {
            Ok::<_, tokio_postgres::Error>((
                r.try_get::<_, String>(0)?,
                GatheredRecord {
                    filter_index: r.try_get(1)?,
                    event_seq: r.try_get(2)?,
                    received_ms: r.try_get(3)?,
                    event: r.try_get(4)?,
                },
            ))
        })()
        .map_err(db)?;
        gathered.entry(listener_id).or_default().push(record);
    }
    for listener in &mut listeners {
        listener.gathered = gathered.remove(&listener.listener.id).unwrap_or_default();
    }
    Ok(listeners)
}

/// Applies one answer of `decide` inside the dispatch transaction.
async fn apply(
    tx: &impl GenericClient,
    listener: &Listener,
    event: &StoredEvent,
    action: ListenerAction,
) -> Result<Option<Delivery>> {
    match action {
        ListenerAction::Ignore => Ok(None),
        ListenerAction::Keep {
            filter_index,
            expired,
        } => {
            for index in expired {
                tx.execute(
                    "DELETE FROM event_gathered WHERE listener_id = $1 AND filter_index = $2",
                    &[&listener.id, &index],
                )
                .await
                .map_err(db)?;
            }
            // SQLite's INSERT OR REPLACE.
            tx.execute(
                "INSERT INTO event_gathered (listener_id, filter_index, event_seq, received_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (listener_id, filter_index) DO UPDATE SET
                   event_seq = excluded.event_seq, received_ms = excluded.received_ms",
                &[&listener.id, &filter_index, &event.seq, &event.received_ms],
            )
            .await
            .map_err(db)?;
            Ok(None)
        }
        ListenerAction::Fire {
            instance_id,
            events,
        } => {
            match listener.kind {
                // A wait fires once; its row (and progress) goes.
                ListenerKind::Wait => tx
                    .execute("DELETE FROM event_listeners WHERE id = $1", &[&listener.id])
                    .await
                    .map_err(db)?,
                // A start or a subscription listens on; its eventsAnd progress starts over.
                ListenerKind::Start | ListenerKind::Subscription => tx
                    .execute(
                        "DELETE FROM event_gathered WHERE listener_id = $1",
                        &[&listener.id],
                    )
                    .await
                    .map_err(db)?,
            };
            let id: i64 = tx
                .query_one(
                    "INSERT INTO event_deliveries
                       (namespace, listener_id, kind, flow, instance_id, events, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        &listener.namespace,
                        &listener.id,
                        &listener.kind.as_str(),
                        &listener.flow,
                        &instance_id,
                        &events,
                        &event.received_ms,
                    ],
                )
                .await
                .and_then(|r| r.try_get(0))
                .map_err(db)?;
            Ok(Some(Delivery {
                id,
                namespace: listener.namespace.clone(),
                listener_id: listener.id.clone(),
                kind: listener.kind,
                flow: listener.flow.clone(),
                instance_id,
                events,
                created_ms: event.received_ms,
            }))
        }
    }
}

/// A `LIMIT` parameter: PostgreSQL's is a BIGINT (a limit beyond it is no limit).
fn to_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A row count as the traits answer it.
fn to_count(rows: u64) -> usize {
    usize::try_from(rows).unwrap_or(usize::MAX)
}
