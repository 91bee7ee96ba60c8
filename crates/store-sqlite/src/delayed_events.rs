//! Events held back until a time: `generateEvent` with a `delay` stores its event here at
//! once, and the dispatcher moves it into the accepted events when it is due. Stored before
//! the instance moves on, so a crash in between delays the event but never loses it.

use rusqlite::params;

use crate::events::insert_event_row;
use faasbox_store::{DelayedEvent, EventInsert, Result, StoreError};

use crate::{namespace_exists, sql, SqliteStore};

impl SqliteStore {
    /// Holds an event until its `due_ms`.
    pub fn insert_delayed_event(&self, e: &DelayedEvent) -> Result<()> {
        sql(|| {
            let conn = self.conn();
            if !namespace_exists(&conn, &e.namespace)? {
                return Err(StoreError::NoNamespace(e.namespace.clone()).into());
            }
            conn.execute(
                "INSERT INTO delayed_events (namespace, event_id, source, type, event, due_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.namespace, e.id, e.source, e.event_type, e.event, e.due_ms],
            )?;
            Ok(())
        })
    }

    /// Accepts every held event due at `now_ms` (received then, so waits that began before
    /// it count it), in one transaction; how many became new events.
    pub fn release_due_events(&self, now_ms: i64) -> Result<usize> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let due = {
                let mut stmt = tx.prepare(
                    "SELECT id, namespace, event_id, source, type, event FROM delayed_events
                 WHERE due_ms <= ?1 ORDER BY due_ms, id",
                )?;
                let rows = stmt.query_map([now_ms], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut accepted = 0;
            for (row, namespace, id, source, event_type, event) in due {
                let inserted =
                    insert_event_row(&tx, &namespace, &id, &source, &event_type, &event, now_ms)?;
                if matches!(inserted, EventInsert::New(_)) {
                    accepted += 1;
                }
                tx.execute("DELETE FROM delayed_events WHERE id = ?1", [row])?;
            }
            tx.commit()?;
            Ok(accepted)
        })
    }

    /// When the next held event is due (ms since the epoch), if any is held.
    pub fn next_delayed_event_due(&self) -> Result<Option<i64>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row("SELECT MIN(due_ms) FROM delayed_events", [], |r| r.get(0))?)
        })
    }
}
