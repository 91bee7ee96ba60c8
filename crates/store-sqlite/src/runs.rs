//! Runs: the extended invocation records (input, output, error class, phases, mode) and what
//! the asynchronous executor needs (queue, claim, cancel, recovery after a crash, retention).
//! The `invocations.started` column holds when a run was accepted; `began` when it started.

use rusqlite::{params, OptionalExtension};

use faasbox_proto::{LogLine, LogStream};
use faasbox_store::{
    CallWrite, Interruption, InvocationEnd, InvocationRecord, NewRun, Requeued, Result, RunCount,
    RunFilter, RunPhases,
};

use crate::{sql, Sql, SqliteStore};

/// The columns [`run_from_row`] reads, in its order.
pub(crate) const RUN_COLUMNS: &str = "id, namespace, function, revision, mode, status, started, \
     began, ended, input, output, error_type, error_code, error_message, event, http_context, \
     cold_start, wait_ms, init_ms, run_ms, attempts, callback_url, callback_status, secrets, \
     services, node";

/// Runs are removed in batches of this many (one transaction each).
const PURGE_BATCH: usize = 1000;

pub(crate) fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InvocationRecord> {
    let wait_ms: Option<i64> = r.get(17)?;
    let init_ms: Option<i64> = r.get(18)?;
    let run_ms: Option<i64> = r.get(19)?;
    let phases = match (wait_ms, init_ms, run_ms) {
        (Some(wait), Some(init), Some(run)) => Some(RunPhases {
            wait_ms: wait.max(0) as u64,
            init_ms: init.max(0) as u64,
            run_ms: run.max(0) as u64,
        }),
        _ => None,
    };
    let list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
    Ok(InvocationRecord {
        id: r.get(0)?,
        namespace: r.get(1)?,
        function: r.get(2)?,
        revision: r.get(3)?,
        mode: r.get(4)?,
        status: r.get(5)?,
        accepted: r.get(6)?,
        started: r.get(7)?,
        ended: r.get(8)?,
        input: r.get(9)?,
        output: r.get(10)?,
        error_type: r.get(11)?,
        error_code: r.get(12)?,
        error_message: r.get(13)?,
        event: r.get(14)?,
        http_context: r.get(15)?,
        cold_start: r.get(16)?,
        phases,
        attempts: r.get::<_, i64>(20)?.max(0) as u32,
        callback_url: r.get(21)?,
        callback_status: r.get(22)?,
        secrets: list(r.get(23)?),
        services: list(r.get(24)?),
        node: r.get(25)?,
    })
}

fn agent_line(line: String) -> LogLine {
    let ts_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    LogLine {
        ts_ms,
        stream: LogStream::Agent,
        line,
    }
}

impl SqliteStore {
    /// Stores a run before it starts (`faasbox_store::InvocationStore::insert_run`).
    pub fn insert_run(&self, run: &NewRun) -> Result<bool> {
        sql(|| insert_run_in(&self.conn(), run))
    }

    /// Records a call and how it ended in one transaction
    /// (`faasbox_store::InvocationStore::record_call`).
    pub fn record_call(
        &self,
        run: &NewRun,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            insert_run_in(&tx, run)?;
            let recorded = crate::finish_invocation_in(&tx, &run.id, end, logs)?;
            if recorded {
                tx.commit()?;
            }
            Ok(recorded)
        })
    }

    /// Stores many calls' writes in one transaction
    /// (`faasbox_store::InvocationStore::write_calls`).
    pub fn write_calls(&self, writes: &[CallWrite]) -> Result<Vec<bool>> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let mut stored = Vec::with_capacity(writes.len());
            for write in writes {
                stored.push(match write {
                    CallWrite::Running(run) => insert_run_in(&tx, run)?,
                    CallWrite::Ended { run, end, logs } => {
                        let end = end.borrowed();
                        if insert_ended_in(&tx, run, &end)? {
                            crate::append_logs_in(&tx, &run.id, logs)?;
                            true
                        } else {
                            insert_run_in(&tx, run)?;
                            crate::finish_invocation_in(&tx, &run.id, &end, logs)?
                        }
                    }
                });
            }
            tx.commit()?;
            Ok(stored)
        })
    }

    /// Queued runs, oldest first, of functions not in `skip` (`namespace/function`).
    pub fn queued_runs(&self, limit: u32, skip: &[String]) -> Result<Vec<InvocationRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM invocations WHERE status = 'queued'
                   AND namespace || '/' || function NOT IN (SELECT value FROM json_each(?2))
                 ORDER BY started, rowid LIMIT ?1"
            ))?;
            let skip = serde_json::to_string(skip).unwrap_or_else(|_| "[]".into());
            let rows = stmt.query_map(params![limit, skip], run_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Moves a queued run to `running`.
    pub fn claim_run(&self, id: &str, started: &str, node: &str) -> Result<bool> {
        sql(|| {
            let changed = self.conn().execute(
                "UPDATE invocations SET status = 'running', began = ?2, attempts = attempts + 1,
                     node = ?3
                 WHERE id = ?1 AND status = 'queued'",
                params![id, started, node],
            )?;
            Ok(changed == 1)
        })
    }

    /// Cancels a run that is still queued.
    pub fn cancel_queued_run(&self, id: &str, ended: &str) -> Result<bool> {
        sql(|| {
            let changed = self.conn().execute(
                "UPDATE invocations SET status = 'cancelled', ended = ?2,
                     error_type = 'FunctionError', error_code = 'faasbox.function.cancelled',
                     error_message = 'the run was cancelled before it started'
                 WHERE id = ?1 AND status = 'queued'",
                params![id, ended],
            )?;
            Ok(changed == 1)
        })
    }

    /// Queues again (or ends) asynchronous runs left `running` by a node that stopped.
    pub fn requeue_interrupted_runs(&self, gone: &Interruption<'_>) -> Result<Requeued> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let ids = |attempts: &str| -> rusqlite::Result<Vec<String>> {
                let mut stmt = tx.prepare(&format!(
                    "SELECT id FROM invocations WHERE status = 'running' AND mode = 'async'
                     AND (node = ?1 OR node IS NULL) AND attempts {attempts}
                     ORDER BY started, rowid"
                ))?;
                let rows = stmt.query_map([gone.node], |r| r.get(0))?;
                rows.collect()
            };
            let requeued = ids("< 2")?;
            let crashed = ids(">= 2")?;
            for id in &requeued {
                tx.execute(
                    "UPDATE invocations SET status = 'queued', began = NULL WHERE id = ?1",
                    [id],
                )?;
                crate::append_logs_in(&tx, id, &[agent_line(gone.requeue_line())])?;
            }
            for id in &crashed {
                tx.execute(
                    "UPDATE invocations SET status = 'crashed', ended = ?2,
                         error_type = 'SystemError', error_code = NULL, error_message = ?3
                     WHERE id = ?1",
                    params![id, gone.ended, gone.crash_message()],
                )?;
            }
            tx.commit()?;
            Ok(Requeued { requeued, crashed })
        })
    }

    /// A namespace's runs, filtered, newest first.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<InvocationRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM invocations
                 WHERE namespace = ?1 AND (?2 IS NULL OR function = ?2)
                   AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR started >= ?4)
                   AND (?6 IS NULL OR (started, rowid) < (
                       SELECT started, rowid FROM invocations WHERE id = ?6 AND namespace = ?1))
                 ORDER BY started DESC, rowid DESC LIMIT ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    filter.namespace,
                    filter.function,
                    filter.status,
                    filter.since,
                    filter.limit,
                    filter.before
                ],
                run_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// A namespace's runs accepted since `since`, counted by function, status and cold start.
    pub fn run_counts(&self, namespace: &str, since: &str) -> Result<Vec<RunCount>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT function, status, COALESCE(cold_start, 0) != 0 AS cold, count(*)
                 FROM invocations WHERE namespace = ?1 AND started >= ?2
                 GROUP BY function, status, cold ORDER BY function, status, cold",
            )?;
            let rows = stmt.query_map(params![namespace, since], |r| {
                Ok(RunCount {
                    function: r.get(0)?,
                    status: r.get(1)?,
                    cold_start: r.get(2)?,
                    count: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Records how the callback of run `id` went.
    pub fn set_callback_status(&self, id: &str, status: &str) -> Result<()> {
        sql(|| {
            self.conn().execute(
                "UPDATE invocations SET callback_status = ?2 WHERE id = ?1",
                params![id, status],
            )?;
            Ok(())
        })
    }

    /// Removes ended runs older than `before` or beyond the newest `keep` of their namespace.
    ///
    /// Per namespace, the `keep`-th newest run (of any status; by `started`, then `rowid`) is
    /// found through the `(namespace, started)` index, and the ended runs older than it or than
    /// `before` are deleted oldest first, a batch per transaction, each batch read from the
    /// start of that index range (a range scan of what it deletes). No batch ranks or sorts
    /// the table: ranking every run for every batch of 1,000 (as this did) took about a second
    /// per batch at 300,000 runs (a minute of calls at 5,000/s), some 300 batches in a row, each
    /// holding the store's one connection, so the calls' records waited (and then the calls,
    /// once the record writer's queue was full).
    pub fn purge_runs(&self, before: &str, keep: u32) -> Result<usize> {
        let namespaces: Vec<String> = sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT DISTINCT namespace FROM invocations")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        let mut removed = 0;
        for namespace in &namespaces {
            removed += self.purge_namespace_runs(namespace, before, keep)?;
        }
        Ok(removed)
    }

    /// [`SqliteStore::purge_runs`] for one namespace.
    fn purge_namespace_runs(&self, namespace: &str, before: &str, keep: u32) -> Result<usize> {
        // The newest run kept by count, as (started, rowid): ended runs before it go. With
        // `keep` 0 every ended run goes: the newest run, and everything up to and including it.
        let (offset, inclusive) = match keep.checked_sub(1) {
            Some(offset) => (i64::from(offset), false),
            None => (0, true),
        };
        let threshold: Option<(String, i64)> = sql(|| {
            Ok(self
                .conn()
                .query_row(
                    "SELECT started, rowid FROM invocations WHERE namespace = ?1
                     ORDER BY started DESC, rowid DESC LIMIT 1 OFFSET ?2",
                    params![namespace, offset],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })?;
        // Without a threshold (no more than `keep` runs) only the age counts: '' is before
        // every time.
        let (cut_started, cut_rowid) = match threshold {
            Some((started, _)) if inclusive => (started, i64::MAX),
            Some((started, rowid)) => (started, rowid),
            None => (String::new(), 0),
        };
        let upper = if cut_started.as_str() > before {
            cut_started.as_str()
        } else {
            before
        };
        let mut removed = 0;
        loop {
            let batch = sql(|| {
                let mut conn = self.conn();
                let tx = conn.transaction()?;
                let ids: Vec<String> = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id FROM invocations
                         WHERE namespace = ?1 AND started <= ?2
                           AND status NOT IN ('queued', 'running')
                           AND (started < ?3 OR started < ?4 OR (started = ?4 AND rowid < ?5))
                         ORDER BY started LIMIT ?6",
                    )?;
                    let rows = stmt.query_map(
                        params![
                            namespace,
                            upper,
                            before,
                            cut_started,
                            cut_rowid,
                            PURGE_BATCH as i64
                        ],
                        |r| r.get(0),
                    )?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for id in &ids {
                    tx.execute("DELETE FROM invocation_logs WHERE invocation_id = ?1", [id])?;
                    tx.execute("DELETE FROM invocations WHERE id = ?1", [id])?;
                }
                tx.commit()?;
                Ok(ids.len())
            })?;
            removed += batch;
            if batch < PURGE_BATCH {
                return Ok(removed);
            }
        }
    }
}

/// Stores a call that was not stored yet with its end, in one row written once (the same
/// row as [`insert_run_in`] and then `finish_invocation_in` make, without the second write of
/// the row and its status index). False, writing nothing, when a record with its id exists
/// (written `running` before) or when the end names another node than the run (the caller then
/// takes the two steps, whose node check decides).
fn insert_ended_in(
    conn: &rusqlite::Connection,
    run: &NewRun,
    end: &InvocationEnd<'_>,
) -> Sql<bool> {
    if let (Some(run_node), Some(end_node)) = (run.node.as_deref(), end.node) {
        if run_node != end_node {
            return Ok(false);
        }
    }
    let (running, began, secrets, services) = new_run_columns(run);
    let phases = end.phases;
    // Every blocking call that ends within its first moments is recorded here: compiled once.
    let mut insert = conn.prepare_cached(
        "INSERT INTO invocations (id, namespace, function, status, started, began, mode,
             input, event, http_context, callback_url, secrets, services, attempts, node,
             ended, error_code, error_message, error_type, output, revision, cold_start,
             wait_ms, init_ms, run_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
             ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)
         ON CONFLICT (id) DO NOTHING",
    )?;
    let changed = insert.execute(params![
        run.id,
        run.namespace,
        run.function,
        end.status,
        run.accepted,
        began,
        run.mode,
        end.input.or(run.input.as_deref()),
        run.event,
        run.http_context,
        run.callback_url,
        secrets,
        services,
        i64::from(running),
        run.node,
        end.ended,
        end.error_code,
        end.error_message,
        end.error_type,
        end.output,
        end.revision,
        end.cold_start,
        phases.map(|p| p.wait_ms as i64),
        phases.map(|p| p.init_ms as i64),
        phases.map(|p| p.run_ms as i64),
    ])?;
    Ok(changed == 1)
}

/// The columns of a new run that are derived from it: whether it starts running, when it
/// began (its acceptance, if running), and its secret and service names as JSON.
fn new_run_columns(run: &NewRun) -> (bool, Option<&str>, String, String) {
    let running = run.status == "running";
    let began = running.then_some(run.accepted.as_str());
    let secrets = serde_json::to_string(&run.secrets).unwrap_or_else(|_| "[]".into());
    let services = serde_json::to_string(&run.services).unwrap_or_else(|_| "[]".into());
    (running, began, secrets, services)
}

/// Stores a run unless one with its id exists; `true` when it stored it.
fn insert_run_in(conn: &rusqlite::Connection, run: &NewRun) -> Sql<bool> {
    let (running, began, secrets, services) = new_run_columns(run);
    // Every call records itself here: the statement is compiled once.
    let mut insert = conn.prepare_cached(
        "INSERT INTO invocations (id, namespace, function, status, started, began, mode,
             input, event, http_context, callback_url, secrets, services, attempts, node)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (id) DO NOTHING",
    )?;
    let changed = insert.execute(params![
        run.id,
        run.namespace,
        run.function,
        run.status,
        run.accepted,
        began,
        run.mode,
        run.input,
        run.event,
        run.http_context,
        run.callback_url,
        secrets,
        services,
        i64::from(running),
        run.node,
    ])?;
    Ok(changed == 1)
}
