//! Persistence for workflows: flow sources, instances (with the engine's checkpoint as JSON
//! text, saved after every state), the states each instance finished, instance logs, and
//! variables of the namespace, workflow and instance scopes. The shapes of sources and
//! checkpoints belong to faasbox-flow; the store keeps them as text.

use rusqlite::{params, Connection, OptionalExtension, Row};

use faasbox_store::{
    Claim, ExpiredInstance, Fence, FlowInstanceRecord, FlowRecord, InstanceCallRecord,
    InstanceFilter, InstanceLogRecord, NewInstance, NewInstanceLog, ProgressView, ProgressWrite,
    Result, StepEnd, StepRecord, StepStart, StoreError,
};

use crate::{namespace_exists, sql, Sql, SqliteStore};

const INSTANCE_COLUMNS: &str = "id, namespace, flow, source, status, input, output, error_code, error_message, checkpoint, parent, created, updated, metadata, depth";

fn instance_from_row(row: &Row<'_>) -> rusqlite::Result<FlowInstanceRecord> {
    Ok(FlowInstanceRecord {
        id: row.get(0)?,
        namespace: row.get(1)?,
        flow: row.get(2)?,
        source: row.get(3)?,
        status: row.get(4)?,
        input: row.get(5)?,
        output: row.get(6)?,
        error_code: row.get(7)?,
        error_message: row.get(8)?,
        checkpoint: row.get(9)?,
        parent: row.get(10)?,
        created: row.get(11)?,
        updated: row.get(12)?,
        metadata: row.get(13)?,
        depth: row.get(14)?,
    })
}

fn flow_from_row(row: &Row<'_>) -> rusqlite::Result<FlowRecord> {
    Ok(FlowRecord {
        namespace: row.get(0)?,
        path: row.get(1)?,
        source: row.get(2)?,
        created: row.get(3)?,
        updated: row.get(4)?,
    })
}

impl SqliteStore {
    /// Creates or replaces a flow's source (keeping `created` on replace); `NoNamespace` when the
    /// namespace does not exist.
    pub fn put_flow(
        &self,
        namespace: &str,
        path: &str,
        source: &str,
        now: &str,
    ) -> Result<FlowRecord> {
        sql(|| {
            let conn = self.conn();
            if !namespace_exists(&conn, namespace)? {
                return Err(StoreError::NoNamespace(namespace.to_string()).into());
            }
            conn.execute(
            "INSERT INTO flows (namespace, path, source, created, updated) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (namespace, path) DO UPDATE SET source = excluded.source, updated = excluded.updated",
            params![namespace, path, source, now],
        )?;
            Ok(conn.query_row(
            "SELECT namespace, path, source, created, updated FROM flows WHERE namespace = ?1 AND path = ?2",
            params![namespace, path],
            flow_from_row,
        )?)
        })
    }

    /// The flow at `path` in `namespace`; `None` when there is none.
    pub fn flow(&self, namespace: &str, path: &str) -> Result<Option<FlowRecord>> {
        sql(|| {
            // Read by every run: its statement is kept prepared.
            Ok(self
                .conn()
                .prepare_cached(
                    "SELECT namespace, path, source, created, updated FROM flows WHERE namespace = ?1 AND path = ?2",
                )?
                .query_row(params![namespace, path], flow_from_row)
                .optional()?)
        })
    }

    /// A namespace's flows, ordered by path.
    pub fn list_flows(&self, namespace: &str) -> Result<Vec<FlowRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT namespace, path, source, created, updated FROM flows WHERE namespace = ?1 ORDER BY path")?;
            let rows = stmt.query_map([namespace], flow_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Deletes a flow and its workflow-scoped variables.
    pub fn delete_flow(&self, namespace: &str, path: &str) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let deleted = tx.execute(
                "DELETE FROM flows WHERE namespace = ?1 AND path = ?2",
                params![namespace, path],
            )?;
            tx.execute(
            "DELETE FROM flow_variables WHERE namespace = ?1 AND scope = 'workflow' AND owner = ?2",
            params![namespace, path],
        )?;
            tx.commit()?;
            Ok(deleted > 0)
        })
    }

    /// Stores a new instance as `running`.
    pub fn create_instance(&self, new: &NewInstance<'_>) -> Result<()> {
        sql(|| insert_instance(&self.conn(), new))
    }

    /// Sets the instance's metadata (a state's `metadata`, as JSON text).
    pub fn set_instance_metadata(
        &self,
        id: &str,
        metadata: &str,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()> {
        sql(|| {
            let conn = self.conn();
            let changed = conn.execute(
                "UPDATE flow_instances SET metadata = ?2, updated = ?3
                 WHERE id = ?1 AND (?4 IS NULL OR (owner = ?4 AND epoch = ?5))",
                params![id, metadata, now, fence.map(|f| f.0), fence.map(|f| f.1)],
            )?;
            if changed == 0 && fence.is_some() {
                refuse_if_held(&conn, id, false)?;
            }
            Ok(())
        })
    }

    /// Saves an instance's checkpoint and status; with `finished`, records (in the same
    /// transaction) that state `finished.1` was the instance's step `finished.0` (a second
    /// save of the same step keeps the first).
    pub fn save_checkpoint(
        &self,
        id: &str,
        status: &str,
        checkpoint: &str,
        finished: Option<(u64, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            save_checkpoint_in(&tx, id, status, checkpoint, finished, now, fence)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Records the start of an instance's step (once).
    pub fn start_step(&self, start: &StepStart<'_>) -> Result<()> {
        sql(|| start_step_in(&self.conn(), start))
    }

    /// Ends an instance's open step.
    pub fn end_step(&self, instance: &str, end: &StepEnd<'_>) -> Result<()> {
        sql(|| end_step_in(&self.conn(), instance, end))
    }

    /// An instance's steps, in order.
    pub fn instance_steps(&self, instance: &str) -> Result<Vec<StepRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT step, state, started, finished, input, output, error_code, error_message, truncated
                 FROM flow_instance_steps WHERE instance = ?1 ORDER BY step",
            )?;
            let rows = stmt.query_map([instance], |r| {
                Ok(StepRecord {
                    step: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                    state: r.get(1)?,
                    started: r.get(2)?,
                    finished: r.get(3)?,
                    input: r.get(4)?,
                    output: r.get(5)?,
                    error_code: r.get(6)?,
                    error_message: r.get(7)?,
                    truncated: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Records how an instance ended. An instance that already ended keeps its end.
    pub fn finish_instance(
        &self,
        id: &str,
        status: &str,
        output: Option<&str>,
        error: Option<(&str, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<bool> {
        sql(|| finish_in(&self.conn(), id, status, output, error, now, fence))
    }

    /// Writes an instance's progress in one transaction (see
    /// [`faasbox_store::FlowStore::record_progress`]).
    pub fn record_progress(
        &self,
        id: &str,
        writes: &[ProgressWrite],
        fence: Fence<'_>,
    ) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let mut ended = false;
            for write in writes {
                match write.view(id) {
                    ProgressView::Log(line) => append_log_in(&tx, id, &line)?,
                    ProgressView::StartStep(start) => start_step_in(&tx, &start)?,
                    ProgressView::EndStep(end) => end_step_in(&tx, id, &end)?,
                    ProgressView::Checkpoint {
                        status,
                        checkpoint,
                        finished,
                        now,
                    } => save_checkpoint_in(&tx, id, status, checkpoint, finished, now, fence)?,
                    ProgressView::Call(call) => record_call_in(&tx, id, call)?,
                    ProgressView::Finish {
                        status,
                        output,
                        error,
                        now,
                    } => ended = finish_in(&tx, id, status, output, error, now, fence)?,
                }
            }
            tx.commit()?;
            Ok(ended)
        })
    }

    /// Claims an instance for `node` (see [`faasbox_store::FlowStore::claim_instance`]).
    pub fn claim_instance(
        &self,
        id: &str,
        node: &str,
        lease_ms: i64,
        want: Claim,
    ) -> Result<Option<i64>> {
        let condition = match want {
            Claim::Resume => "status = 'waiting'",
            Claim::TakeOver => {
                "status = 'running' AND (owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms < (SELECT now_ms FROM clock))"
            }
            Claim::Mine => "status = 'running' AND owner = ?2",
        };
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!(
                        "WITH clock AS (SELECT {NOW_MS} AS now_ms)
                         UPDATE flow_instances SET status = 'running', owner = ?2,
                             lease_until_ms = (SELECT now_ms FROM clock) + ?3, epoch = epoch + 1
                         WHERE id = ?1 AND {condition}
                         RETURNING epoch"
                    ),
                    params![id, node, lease_ms],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// Extends the leases of `node`'s running instances.
    pub fn renew_leases(&self, node: &str, lease_ms: i64) -> Result<u64> {
        sql(|| {
            let changed = self.conn().execute(
                &format!(
                    "UPDATE flow_instances SET lease_until_ms = {NOW_MS} + ?2
                     WHERE owner = ?1 AND status = 'running'"
                ),
                params![node, lease_ms],
            )?;
            Ok(changed as u64)
        })
    }

    /// Running instances nobody holds, oldest first.
    pub fn expired_instances(&self, limit: u32) -> Result<Vec<ExpiredInstance>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT id, parent, owner FROM flow_instances
                 WHERE status = 'running' AND (owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms < {NOW_MS})
                 ORDER BY created, rowid LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], |r| {
                Ok(ExpiredInstance {
                    id: r.get(0)?,
                    parent: r.get(1)?,
                    owner: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The running instances `node` owns, oldest first.
    pub fn instances_owned_by(&self, node: &str) -> Result<Vec<String>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id FROM flow_instances WHERE owner = ?1 AND status = 'running' ORDER BY created, rowid",
            )?;
            let rows = stmt.query_map([node], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The instance `id`; `None` when there is none.
    pub fn instance(&self, id: &str) -> Result<Option<FlowInstanceRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!("SELECT {INSTANCE_COLUMNS} FROM flow_instances WHERE id = ?1"),
                    [id],
                    instance_from_row,
                )
                .optional()?)
        })
    }

    /// A namespace's instances, newest first.
    pub fn list_instances(&self, namespace: &str, limit: u32) -> Result<Vec<FlowInstanceRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM flow_instances WHERE namespace = ?1 ORDER BY created DESC, rowid DESC LIMIT ?2"
        ))?;
            let rows = stmt.query_map(params![namespace, limit], instance_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// How many instances of a namespace have each status.
    pub fn instance_counts(&self, namespace: &str) -> Result<Vec<(String, u64)>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT status, count(*) FROM flow_instances WHERE namespace = ?1
                 GROUP BY status ORDER BY status",
            )?;
            let rows = stmt.query_map([namespace], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)?.try_into().unwrap_or(0)))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// A namespace's instances as `filter` says, newest first. In the order stored, not by
    /// `created`: that text drops trailing zeros of its fraction (`.1Z` sorts after `.12Z`).
    pub fn list_instances_by(&self, filter: &InstanceFilter) -> Result<Vec<FlowInstanceRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {INSTANCE_COLUMNS} FROM flow_instances
                 WHERE namespace = ?1 AND (?2 IS NULL OR flow = ?2) AND (?3 IS NULL OR status = ?3)
                   AND (?4 IS NULL OR rowid < (
                       SELECT rowid FROM flow_instances WHERE id = ?4 AND namespace = ?1))
                 ORDER BY rowid DESC LIMIT ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    filter.namespace,
                    filter.flow,
                    filter.status,
                    filter.before,
                    filter.limit
                ],
                instance_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Instances with `status`, oldest first (the server resumes the `running` ones at start).
    pub fn instances_with_status(&self, status: &str) -> Result<Vec<FlowInstanceRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {INSTANCE_COLUMNS} FROM flow_instances WHERE status = ?1 ORDER BY created"
            ))?;
            let rows = stmt.query_map([status], instance_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The ids of a namespace's instances that have not ended (`running` or `waiting`).
    pub fn unfinished_instances(&self, namespace: &str) -> Result<Vec<String>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
            "SELECT id FROM flow_instances WHERE namespace = ?1 AND status IN ('running', 'waiting') ORDER BY created",
        )?;
            let rows = stmt.query_map([namespace], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The states an instance finished, in order: (step, state id).
    pub fn finished_states(&self, id: &str) -> Result<Vec<(u64, String)>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT step, state FROM flow_instance_states WHERE instance = ?1 ORDER BY step",
            )?;
            let rows = stmt.query_map([id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Appends a line to an instance's log; nothing for an instance that is gone (a run that
    /// ends after its namespace was deleted leaves no lines behind).
    pub fn append_instance_log(&self, id: &str, ts_ms: i64, message: &str) -> Result<()> {
        sql(|| {
            self.conn().execute(
                "INSERT INTO flow_instance_logs (instance, ts_ms, message)
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM flow_instances WHERE id = ?1)",
                params![id, ts_ms, message],
            )?;
            Ok(())
        })
    }

    /// Appends lines to an instance's log in one transaction (nothing for an instance that is
    /// gone).
    pub fn append_instance_logs(&self, id: &str, lines: &[NewInstanceLog<'_>]) -> Result<()> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            for line in lines {
                append_log_in(&tx, id, line)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// An instance's log lines after `after_seq` (0: all).
    pub fn instance_logs(&self, id: &str, after_seq: i64) -> Result<Vec<InstanceLogRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT seq, ts_ms, message, state, invocation FROM flow_instance_logs WHERE instance = ?1 AND seq > ?2 ORDER BY seq")?;
            let rows = stmt.query_map(params![id, after_seq], |r| {
                Ok(InstanceLogRecord {
                    seq: r.get(0)?,
                    ts_ms: r.get(1)?,
                    message: r.get(2)?,
                    state: r.get(3)?,
                    invocation: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Records a call instance `id`'s state made (`kind`: "invocation" or "instance"); nothing
    /// for an instance that is gone.
    pub fn record_instance_call(&self, id: &str, call: &InstanceCallRecord) -> Result<()> {
        sql(|| record_call_in(&self.conn(), id, call))
    }

    /// The calls instance `id` made, in order, each with its invocation's or subflow
    /// instance's status now.
    pub fn instance_calls(&self, id: &str) -> Result<Vec<InstanceCallRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT c.call_id, c.kind, c.state, c.function, c.started,
                    CASE c.kind WHEN 'invocation' THEN i.status ELSE f.status END
             FROM flow_instance_calls c
             LEFT JOIN invocations i ON c.kind = 'invocation' AND i.id = c.call_id
             LEFT JOIN flow_instances f ON c.kind = 'instance' AND f.id = c.call_id
             WHERE c.instance = ?1 ORDER BY c.seq",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(InstanceCallRecord {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    state: r.get(2)?,
                    function: r.get(3)?,
                    started: r.get(4)?,
                    status: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// A variable's JSON text. `owner` is "" for the namespace scope, the flow's path for the
    /// workflow scope and the instance id for the instance scope.
    pub fn variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<String>> {
        sql(|| {
            Ok(self
            .conn()
            .query_row(
                "SELECT value FROM flow_variables WHERE namespace = ?1 AND scope = ?2 AND owner = ?3 AND key = ?4",
                params![namespace, scope, owner, key],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Sets a variable (JSON text), or deletes it with `None`.
    pub fn set_variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
        value: Option<&str>,
        now: &str,
    ) -> Result<()> {
        sql(|| {
            let conn = self.conn();
            match value {
            Some(value) => conn.execute(
                "INSERT INTO flow_variables (namespace, scope, owner, key, value, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (namespace, scope, owner, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                params![namespace, scope, owner, key, value, now],
            )?,
            None => conn.execute(
                "DELETE FROM flow_variables WHERE namespace = ?1 AND scope = ?2 AND owner = ?3 AND key = ?4",
                params![namespace, scope, owner, key],
            )?,
        };
            Ok(())
        })
    }
}

/// Removes a deleted namespace's flows, instances, their logs and states, and variables.
pub(crate) fn delete_namespace_flows(conn: &Connection, namespace: &str) -> Sql<()> {
    conn.execute("DELETE FROM flow_instance_logs WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = ?1)", [namespace])?;
    conn.execute("DELETE FROM flow_instance_states WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = ?1)", [namespace])?;
    conn.execute("DELETE FROM flow_instance_steps WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = ?1)", [namespace])?;
    conn.execute("DELETE FROM flow_instance_calls WHERE instance IN (SELECT id FROM flow_instances WHERE namespace = ?1)", [namespace])?;
    conn.execute(
        "DELETE FROM flow_instances WHERE namespace = ?1",
        [namespace],
    )?;
    conn.execute(
        "DELETE FROM flow_variables WHERE namespace = ?1",
        [namespace],
    )?;
    conn.execute("DELETE FROM flows WHERE namespace = ?1", [namespace])?;
    Ok(())
}

/// Saves an instance's checkpoint (see [`SqliteStore::save_checkpoint`]) on `conn`, inside the
/// caller's transaction.
fn save_checkpoint_in(
    conn: &Connection,
    id: &str,
    status: &str,
    checkpoint: &str,
    finished: Option<(u64, &str)>,
    now: &str,
    fence: Fence<'_>,
) -> Sql<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE flow_instances SET status = ?2, checkpoint = ?3, updated = ?4,
                 lease_until_ms = CASE WHEN ?2 = 'waiting' THEN NULL ELSE lease_until_ms END
             WHERE id = ?1 AND (?5 IS NULL OR (owner = ?5 AND epoch = ?6))",
        )?
        .execute(params![
            id,
            status,
            checkpoint,
            now,
            fence.map(|f| f.0),
            fence.map(|f| f.1)
        ])?;
    if changed == 0 && fence.is_some() {
        refuse_if_held(conn, id, false)?;
    }
    if let Some((step, state)) = finished {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO flow_instance_states (instance, step, state, finished) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, step as i64, state, now])?;
    }
    Ok(())
}

/// Records the start of an instance's step (once) on `conn`.
fn start_step_in(conn: &Connection, start: &StepStart<'_>) -> Sql<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO flow_instance_steps (instance, step, state, started, input, truncated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        start.instance,
        start.step as i64,
        start.state,
        start.started,
        start.input,
        start.truncated
    ])?;
    Ok(())
}

/// Ends an instance's open step on `conn`.
fn end_step_in(conn: &Connection, instance: &str, end: &StepEnd<'_>) -> Sql<()> {
    conn.prepare_cached(
        "UPDATE flow_instance_steps SET finished = ?2, output = ?3, error_code = ?4,
             error_message = ?5, truncated = truncated OR ?6
         WHERE instance = ?1 AND finished IS NULL",
    )?
    .execute(params![
        instance,
        end.finished,
        end.output,
        end.error.map(|e| e.0),
        end.error.map(|e| e.1),
        end.truncated
    ])?;
    Ok(())
}

/// Records how an instance ended (see [`SqliteStore::finish_instance`]) on `conn`.
fn finish_in(
    conn: &Connection,
    id: &str,
    status: &str,
    output: Option<&str>,
    error: Option<(&str, &str)>,
    now: &str,
    fence: Fence<'_>,
) -> Sql<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE flow_instances SET status = ?2, output = ?3, error_code = ?4, error_message = ?5,
                 updated = ?6, lease_until_ms = NULL,
                 epoch = CASE WHEN ?7 IS NULL THEN epoch + 1 ELSE epoch END
             WHERE id = ?1 AND status IN ('running', 'waiting')
               AND (?7 IS NULL OR (owner = ?7 AND epoch = ?8))",
        )?
        .execute(params![
            id,
            status,
            output,
            error.map(|e| e.0),
            error.map(|e| e.1),
            now,
            fence.map(|f| f.0),
            fence.map(|f| f.1)
        ])?;
    if changed == 0 && fence.is_some() {
        refuse_if_held(conn, id, true)?;
    }
    Ok(changed > 0)
}

/// Appends a line to an instance's log on `conn` (nothing for an instance that is gone).
fn append_log_in(conn: &Connection, id: &str, line: &NewInstanceLog<'_>) -> Sql<()> {
    conn.prepare_cached(
        "INSERT INTO flow_instance_logs (instance, ts_ms, message, state, invocation)
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM flow_instances WHERE id = ?1)",
    )?
    .execute(params![
        id,
        line.ts_ms,
        line.message,
        line.state,
        line.invocation
    ])?;
    Ok(())
}

/// Records a call an instance's state made on `conn` (nothing for an instance that is gone).
fn record_call_in(conn: &Connection, id: &str, call: &InstanceCallRecord) -> Sql<()> {
    conn.prepare_cached(
        "INSERT INTO flow_instance_calls (instance, call_id, kind, state, function, started)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM flow_instances WHERE id = ?1)",
    )?
    .execute(params![
        id,
        call.id,
        call.kind,
        call.state,
        call.function,
        call.started
    ])?;
    Ok(())
}

/// Stores a new instance as `running` (also inside another transaction, such as a cron
/// slot's claim).
pub(crate) fn insert_instance(conn: &Connection, new: &NewInstance<'_>) -> Sql<()> {
    conn.prepare_cached(
        &format!(
            "INSERT INTO flow_instances (id, namespace, flow, source, status, input, checkpoint, parent, created, updated, depth, owner, lease_until_ms)
             VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8, ?8, ?9, ?10, CASE WHEN ?10 IS NULL THEN NULL ELSE {NOW_MS} + ?11 END)"
        ),
    )?
    .execute(params![new.id, new.namespace, new.flow, new.source, new.input, new.checkpoint, new.parent, new.now, new.depth, new.owner, new.lease_ms])?;
    Ok(())
}

/// The database's clock in ms since the epoch, as SQL (leases are compared with it, never with
/// a server's own clock; SQLite's is the server's, PostgreSQL's is shared).
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// After a fenced write changed nothing: refuses it with `LeaseLost` when the instance exists
/// (and, with `unfinished_only`, has not ended), since then another claim holds it. A gone
/// instance is no error, as for unfenced writes.
fn refuse_if_held(conn: &Connection, id: &str, unfinished_only: bool) -> Sql<()> {
    let held: Option<(Option<String>, String)> = conn
        .query_row(
            "SELECT owner, status FROM flow_instances WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match held {
        Some((_, status)) if unfinished_only && status != "running" && status != "waiting" => {
            Ok(())
        }
        Some((owner, _)) => Err(StoreError::LeaseLost {
            id: id.to_string(),
            owner: owner.unwrap_or_default(),
        }
        .into()),
        None => Ok(()),
    }
}
