//! Persistence for flow events and schedules: accepted CloudEvents, event listeners (flow
//! starts and waiting instances) with eventsAnd progress, the outbox of fired listeners, and
//! the last fired slot of each cron schedule.
//!
//! The store knows no event semantics: dispatching an event and registering a listener take a
//! `decide` closure (the server passes faasbox-events' logic) and apply its answers in the
//! same transaction, so an event is either fully dispatched (progress kept, deliveries queued,
//! fired waits removed, event marked) or not at all, and is dispatched again after a crash.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use faasbox_store::{
    Delivery, EventInsert, GatheredRecord, Listener, ListenerAction, ListenerKind, ListenerRecord,
    NewInstance, Result, ScheduleRecord, StoreError, StoredEvent, SubscriptionRecord,
};

use crate::{namespace_exists, sql, Sql, SqliteStore};

const EVENT_COLUMNS: &str = "seq, namespace, id, source, type, event, received_ms";
const LISTENER_COLUMNS: &str = "id, namespace, kind, flow, instance_id, mode, filters, \
     lifespan_ms, deadline_ms, after_seq, created_ms";

impl SqliteStore {
    // --- events -------------------------------------------------------------------------

    /// Accepts an event. A second event with the same namespace, source and id is a duplicate:
    /// nothing changes and the first one's seq is returned.
    pub fn insert_event(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        event_type: &str,
        event: &str,
        received_ms: i64,
    ) -> Result<EventInsert> {
        sql(|| {
            let conn = self.conn();
            if !namespace_exists(&conn, namespace)? {
                return Err(StoreError::NoNamespace(namespace.to_string()).into());
            }
            insert_event_row(&conn, namespace, id, source, event_type, event, received_ms)
        })
    }

    /// Events not dispatched yet, oldest first.
    pub fn undispatched_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE dispatched = 0 ORDER BY seq LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], event_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// A namespace's latest events, newest first.
    pub fn list_events(&self, namespace: &str, limit: usize) -> Result<Vec<StoredEvent>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE namespace = ?1 ORDER BY seq DESC LIMIT ?2"
        ))?;
            let rows = stmt.query_map(params![namespace, limit as i64], event_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// A namespace's latest `limit` events before seq `before` (`None`: not its event).
    pub fn list_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> Result<Option<Vec<StoredEvent>>> {
        sql(|| {
            let conn = self.conn();
            let known: bool = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM events WHERE seq = ?1 AND namespace = ?2)",
                params![before, namespace],
                |r| r.get(0),
            )?;
            if !known {
                return Ok(None);
            }
            let mut stmt = conn.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE namespace = ?1 AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![namespace, before, limit as i64], event_row)?;
            Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
        })
    }

    /// The seq of the newest accepted event (0 when none): a listener registered with it as
    /// `after_seq` sees every event accepted from now on.
    pub fn event_watermark(&self) -> Result<i64> {
        sql(|| {
            Ok(self
                .conn()
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?)
        })
    }

    /// The seq of the newest event accepted before `received_ms` (0 when none).
    pub fn event_watermark_before(&self, received_ms: i64) -> Result<i64> {
        sql(|| {
            Ok(self.conn().query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE received_ms < ?1",
                [received_ms],
                |r| r.get(0),
            )?)
        })
    }

    /// Dispatches one event to its namespace's listeners in one transaction: `decide` answers
    /// for each listener that may see it; then the event is marked dispatched. Returns the
    /// deliveries queued. An event already dispatched (or gone) gives none.
    pub fn dispatch_event(
        &self,
        seq: i64,
        mut decide: impl FnMut(&StoredEvent, &ListenerRecord) -> ListenerAction,
    ) -> Result<Vec<Delivery>> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let event = tx
                .query_row(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1 AND dispatched = 0"
                    ),
                    [seq],
                    event_row,
                )
                .optional()?;
            let Some(event) = event else {
                return Ok(Vec::new());
            };
            let listeners = listeners_where(
                &tx,
                "namespace = ?1 AND after_seq < ?2",
                params![event.namespace, seq],
            )?;
            let mut deliveries = Vec::new();
            for listener in &listeners {
                let action = decide(&event, listener);
                if let Some(delivery) = apply(&tx, &listener.listener, &event, action)? {
                    deliveries.push(delivery);
                }
            }
            tx.execute("UPDATE events SET dispatched = 1 WHERE seq = ?1", [seq])?;
            tx.commit()?;
            Ok(deliveries)
        })
    }

    /// Adds a listener. Events of its namespace accepted after `after_seq` and dispatched
    /// already (they arrived while the listener was being set up) are offered to it at once,
    /// oldest first, through `decide`; the delivery is returned if it fired.
    pub fn add_listener(
        &self,
        listener: &Listener,
        mut decide: impl FnMut(&StoredEvent, &ListenerRecord) -> ListenerAction,
    ) -> Result<Option<Delivery>> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            insert_listener(&tx, listener)?;
            let missed = {
                let mut stmt = tx.prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                 WHERE namespace = ?1 AND seq > ?2 AND dispatched = 1 ORDER BY seq"
                ))?;
                let rows =
                    stmt.query_map(params![listener.namespace, listener.after_seq], event_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut fired = None;
            for event in missed {
                let Some(record) = listeners_where(&tx, "id = ?1", params![listener.id])?.pop()
                else {
                    break;
                };
                let action = decide(&event, &record);
                if let Some(delivery) = apply(&tx, &record.listener, &event, action)? {
                    fired = Some(delivery);
                    if record.listener.kind == ListenerKind::Wait {
                        break;
                    }
                }
            }
            tx.commit()?;
            Ok(fired)
        })
    }

    /// Replaces a flow's event-start listeners (on deploy; none to remove them).
    pub fn replace_start_listeners(
        &self,
        namespace: &str,
        flow: &str,
        listeners: &[Listener],
    ) -> Result<()> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM event_listeners WHERE namespace = ?1 AND flow = ?2 AND kind = 'start'",
                params![namespace, flow],
            )?;
            for listener in listeners {
                insert_listener(&tx, listener)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Removes an instance's waits (it was cancelled, timed out or moved on).
    pub fn delete_instance_listeners(&self, instance_id: &str) -> Result<usize> {
        sql(|| {
            Ok(self.conn().execute(
                "DELETE FROM event_listeners WHERE instance_id = ?1",
                [instance_id],
            )?)
        })
    }

    /// Every stored instance wait.
    pub fn wait_listeners(&self) -> Result<Vec<Listener>> {
        sql(|| {
            let conn = self.conn();
            Ok(listeners_where(&conn, "kind = 'wait'", [])?
                .into_iter()
                .map(|r| r.listener)
                .collect())
        })
    }

    /// All listeners of a namespace (starts and waits), with their progress.
    pub fn list_listeners(&self, namespace: &str) -> Result<Vec<ListenerRecord>> {
        sql(|| {
            let conn = self.conn();
            listeners_where(&conn, "namespace = ?1", params![namespace])
        })
    }

    /// Deliveries not taken yet, oldest first.
    pub fn pending_deliveries(&self) -> Result<Vec<Delivery>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id, namespace, listener_id, kind, flow, instance_id, events, created_ms
             FROM event_deliveries ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    namespace: r.get(1)?,
                    listener_id: r.get(2)?,
                    kind: ListenerKind::parse(&r.get::<_, String>(3)?),
                    flow: r.get(4)?,
                    instance_id: r.get(5)?,
                    events: r.get(6)?,
                    created_ms: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Claims deliveries nobody holds for `node` (see the trait's `claim_deliveries`).
    pub fn claim_deliveries(&self, node: &str, lease_ms: i64, limit: u32) -> Result<Vec<Delivery>> {
        const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "UPDATE event_deliveries SET claimed_by = ?1, claimed_until_ms = {NOW_MS} + ?2
                 WHERE id IN (SELECT id FROM event_deliveries
                              WHERE claimed_by = ?1 OR claimed_until_ms IS NULL OR claimed_until_ms < {NOW_MS}
                              ORDER BY id LIMIT ?3)
                 RETURNING id, namespace, listener_id, kind, flow, instance_id, events, created_ms"
            ))?;
            let rows = stmt.query_map(params![node, lease_ms, limit], |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    namespace: r.get(1)?,
                    listener_id: r.get(2)?,
                    kind: ListenerKind::parse(&r.get::<_, String>(3)?),
                    flow: r.get(4)?,
                    instance_id: r.get(5)?,
                    events: r.get(6)?,
                    created_ms: r.get(7)?,
                })
            })?;
            let mut claimed: Vec<Delivery> = rows.collect::<rusqlite::Result<_>>()?;
            claimed.sort_by_key(|d| d.id);
            Ok(claimed)
        })
    }

    /// Waits whose deadline has come, earliest first.
    pub fn due_waits(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, i64)>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT instance_id, deadline_ms FROM event_listeners
                 WHERE kind = 'wait' AND instance_id IS NOT NULL AND deadline_ms IS NOT NULL
                   AND deadline_ms <= ?1
                 ORDER BY deadline_ms, id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The engine started or resumed the delivery's instance.
    pub fn finish_delivery(&self, id: i64) -> Result<()> {
        sql(|| {
            self.conn()
                .execute("DELETE FROM event_deliveries WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    // --- subscriptions ------------------------------------------------------------------

    /// Creates or replaces a subscription with its listener (see
    /// `EventStore::put_subscription`); true when it was created.
    pub fn put_subscription(
        &self,
        sub: &SubscriptionRecord,
        filters: &str,
        created_ms: i64,
    ) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let old: Option<String> = tx
                .query_row(
                    "SELECT listener_id FROM subscriptions WHERE namespace = ?1 AND name = ?2",
                    params![sub.namespace, sub.name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(old) = &old {
                tx.execute("DELETE FROM event_listeners WHERE id = ?1", [old])?;
            }
            // Taken inside the transaction: every event accepted after it is dispatched after
            // the listener exists.
            let after_seq: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
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
            )?;
            tx.execute(
                "INSERT INTO subscriptions
                   (namespace, name, function, type, source, context, listener_id, created, modified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (namespace, name) DO UPDATE SET
                   function = excluded.function, type = excluded.type,
                   source = excluded.source, context = excluded.context,
                   listener_id = excluded.listener_id, modified = excluded.modified",
                params![
                    sub.namespace,
                    sub.name,
                    sub.function,
                    sub.event_type,
                    sub.source,
                    sub.context,
                    sub.listener_id,
                    sub.created,
                    sub.modified
                ],
            )?;
            tx.commit()?;
            Ok(old.is_none())
        })
    }

    /// A namespace's subscription by name.
    pub fn get_subscription(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SubscriptionRecord>> {
        sql(|| {
            let conn = self.conn();
            Ok(subscriptions_where(
                &conn,
                "namespace = ?1 AND name = ?2",
                params![namespace, name],
            )?
            .pop())
        })
    }

    /// A namespace's subscriptions by name.
    pub fn list_subscriptions(&self, namespace: &str) -> Result<Vec<SubscriptionRecord>> {
        sql(|| {
            let conn = self.conn();
            subscriptions_where(&conn, "namespace = ?1", params![namespace])
        })
    }

    /// Removes a subscription with its listener and pending deliveries.
    pub fn delete_subscription(&self, namespace: &str, name: &str) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let removed = tx.execute(
                "DELETE FROM subscriptions WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
            )? > 0;
            if removed {
                tx.execute(
                    "DELETE FROM event_listeners WHERE namespace = ?1 AND flow = ?2
                       AND kind = 'subscription'",
                    params![namespace, name],
                )?;
                tx.execute(
                    "DELETE FROM event_deliveries WHERE namespace = ?1 AND flow = ?2
                       AND kind = 'subscription'",
                    params![namespace, name],
                )?;
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    // --- schedules ----------------------------------------------------------------------

    /// Sets a flow's cron schedule. A new or changed schedule counts from `now_ms`: slots
    /// before it never fire. An unchanged one keeps its last fired slot.
    pub fn put_schedule(&self, namespace: &str, flow: &str, cron: &str, now_ms: i64) -> Result<()> {
        sql(|| {
            let conn = self.conn();
            if !namespace_exists(&conn, namespace)? {
                return Err(StoreError::NoNamespace(namespace.to_string()).into());
            }
            conn.execute(
            "INSERT INTO schedules (namespace, flow, cron, last_fired_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, flow) DO UPDATE SET
               last_fired_ms = CASE WHEN cron = excluded.cron THEN last_fired_ms
                                    ELSE excluded.last_fired_ms END,
               cron = excluded.cron",
            params![namespace, flow, cron, now_ms],
        )?;
            Ok(())
        })
    }

    /// Removes a flow's schedule; whether it had one.
    pub fn delete_schedule(&self, namespace: &str, flow: &str) -> Result<bool> {
        sql(|| {
            Ok(self.conn().execute(
                "DELETE FROM schedules WHERE namespace = ?1 AND flow = ?2",
                params![namespace, flow],
            )? > 0)
        })
    }

    /// Every schedule, ordered by namespace, then flow.
    pub fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
            "SELECT namespace, flow, cron, last_fired_ms FROM schedules ORDER BY namespace, flow",
        )?;
            let rows = stmt.query_map([], |r| {
                Ok(ScheduleRecord {
                    namespace: r.get(0)?,
                    flow: r.get(1)?,
                    cron: r.get(2)?,
                    last_fired_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Claims a slot for firing: true once per slot, false if this or a later slot was
    /// claimed already or the schedule is gone or changed. `instance`, the slot's instance, is
    /// created in the same transaction (as `running`, so the start-up resume drives it if the
    /// server dies before the caller does): a claimed slot always has its instance. `None`
    /// only claims (the flow cannot run, and the slot is skipped).
    pub fn claim_schedule_slot(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        slot_ms: i64,
        instance: Option<&NewInstance<'_>>,
    ) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let claimed = tx.execute(
                "UPDATE schedules SET last_fired_ms = ?4
             WHERE namespace = ?1 AND flow = ?2 AND cron = ?3 AND last_fired_ms < ?4",
                params![namespace, flow, cron, slot_ms],
            )? > 0;
            if claimed {
                if let Some(instance) = instance {
                    crate::flows::insert_instance(&tx, instance)?;
                }
            }
            tx.commit()?;
            Ok(claimed)
        })
    }
}

/// Inserts an event of an existing namespace; a resent one (same source and id) is a
/// duplicate.
pub(crate) fn insert_event_row(
    conn: &Connection,
    namespace: &str,
    id: &str,
    source: &str,
    event_type: &str,
    event: &str,
    received_ms: i64,
) -> Sql<EventInsert> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO events (namespace, id, source, type, event, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![namespace, id, source, event_type, event, received_ms],
    )?;
    let seq: i64 = conn.query_row(
        "SELECT seq FROM events WHERE namespace = ?1 AND source = ?2 AND id = ?3",
        params![namespace, source, id],
        |r| r.get(0),
    )?;
    Ok(if inserted > 0 {
        EventInsert::New(seq)
    } else {
        EventInsert::Duplicate(seq)
    })
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        namespace: r.get(1)?,
        id: r.get(2)?,
        source: r.get(3)?,
        event_type: r.get(4)?,
        event: r.get(5)?,
        received_ms: r.get(6)?,
    })
}

fn insert_listener(tx: &Transaction<'_>, l: &Listener) -> Sql<()> {
    if !namespace_exists(tx, &l.namespace)? {
        return Err(StoreError::NoNamespace(l.namespace.clone()).into());
    }
    tx.execute(
        &format!("INSERT INTO event_listeners ({LISTENER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        params![
            l.id,
            l.namespace,
            l.kind.as_str(),
            l.flow,
            l.instance_id,
            l.mode,
            l.filters,
            l.lifespan_ms,
            l.deadline_ms,
            l.after_seq,
            l.created_ms
        ],
    )?;
    Ok(())
}

fn subscriptions_where(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Sql<Vec<SubscriptionRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT namespace, name, function, type, source, context, listener_id, created, modified
         FROM subscriptions WHERE {condition} ORDER BY name"
    ))?;
    let rows = stmt.query_map(params, |r| {
        Ok(SubscriptionRecord {
            namespace: r.get(0)?,
            name: r.get(1)?,
            function: r.get(2)?,
            event_type: r.get(3)?,
            source: r.get(4)?,
            context: r.get(5)?,
            listener_id: r.get(6)?,
            created: r.get(7)?,
            modified: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn listeners_where(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Sql<Vec<ListenerRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {LISTENER_COLUMNS} FROM event_listeners WHERE {condition} ORDER BY created_ms, id"
    ))?;
    let rows = stmt.query_map(params, |r| {
        let listener = Listener {
            id: r.get(0)?,
            namespace: r.get(1)?,
            kind: ListenerKind::parse(&r.get::<_, String>(2)?),
            flow: r.get(3)?,
            instance_id: r.get(4)?,
            mode: r.get(5)?,
            filters: r.get(6)?,
            lifespan_ms: r.get(7)?,
            deadline_ms: r.get(8)?,
            after_seq: r.get(9)?,
            created_ms: r.get(10)?,
        };
        Ok(ListenerRecord {
            listener,
            gathered: Vec::new(),
        })
    })?;
    let mut listeners = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut gathered = conn.prepare(
        "SELECT g.filter_index, g.event_seq, g.received_ms, e.event
         FROM event_gathered g JOIN events e ON e.seq = g.event_seq
         WHERE g.listener_id = ?1 ORDER BY g.filter_index",
    )?;
    for listener in &mut listeners {
        let rows = gathered.query_map([&listener.listener.id], |r| {
            Ok(GatheredRecord {
                filter_index: r.get(0)?,
                event_seq: r.get(1)?,
                received_ms: r.get(2)?,
                event: r.get(3)?,
            })
        })?;
        listener.gathered = rows.collect::<rusqlite::Result<_>>()?;
    }
    Ok(listeners)
}

/// Applies one answer of `decide` inside the dispatch transaction.
fn apply(
    tx: &Transaction<'_>,
    listener: &Listener,
    event: &StoredEvent,
    action: ListenerAction,
) -> Sql<Option<Delivery>> {
    match action {
        ListenerAction::Ignore => Ok(None),
        ListenerAction::Keep {
            filter_index,
            expired,
        } => {
            for index in expired {
                tx.execute(
                    "DELETE FROM event_gathered WHERE listener_id = ?1 AND filter_index = ?2",
                    params![listener.id, index],
                )?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO event_gathered (listener_id, filter_index, event_seq, received_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![listener.id, filter_index, event.seq, event.received_ms],
            )?;
            Ok(None)
        }
        ListenerAction::Fire {
            instance_id,
            events,
        } => {
            match listener.kind {
                // A wait fires once; its row (and progress) goes.
                ListenerKind::Wait => {
                    tx.execute("DELETE FROM event_listeners WHERE id = ?1", [&listener.id])?
                }
                // A start or a subscription listens on; its eventsAnd progress starts over.
                ListenerKind::Start | ListenerKind::Subscription => tx.execute(
                    "DELETE FROM event_gathered WHERE listener_id = ?1",
                    [&listener.id],
                )?,
            };
            tx.execute(
                "INSERT INTO event_deliveries (namespace, listener_id, kind, flow, instance_id, events, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    listener.namespace,
                    listener.id,
                    listener.kind.as_str(),
                    listener.flow,
                    instance_id,
                    events,
                    event.received_ms
                ],
            )?;
            Ok(Some(Delivery {
                id: tx.last_insert_rowid(),
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
