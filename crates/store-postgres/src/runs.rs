//! Invocations and runs on PostgreSQL (`InvocationStore`): the life of each call with its log
//! lines, what the asynchronous executor needs (queue, claim, cancel, recovery after a crash,
//! retention), and a function's recent lines across its calls with a follower's cursor.
//!
//! The SQL mirrors SQLite's (`store-sqlite/src/{lib,runs,function_logs}.rs`). Where SQLite's
//! single connection made a read-then-write atomic, the statement or lock that makes it so on
//! PostgreSQL (many connections, READ COMMITTED) is named in a comment. As on SQLite,
//! `invocations.started` holds when a run was accepted and `began` when it started.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use faasbox_proto::{LogLine, LogStream};
use faasbox_store::{
    CallWrite, FunctionLogLine, FunctionLogs, Interruption, InvocationEnd, InvocationRecord,
    InvocationStore, NewRun, Requeued, Result, RunCount, RunFilter, RunPhases,
};
use tokio_postgres::{Row, Transaction};

use crate::{db, PgStore};

/// The columns [`run_from_row`] reads, in its order.
const RUN_COLUMNS: &str = "id, namespace, function, revision, mode, status, started, \
     began, ended, input, output, error_type, error_code, error_message, event, http_context, \
     cold_start, wait_ms, init_ms, run_ms, attempts, callback_url, callback_status, secrets, \
     services, node";

/// Runs are removed in batches of this many (one transaction each).
const PURGE_BATCH: i64 = 1000;

fn run_from_row(r: &Row) -> std::result::Result<InvocationRecord, tokio_postgres::Error> {
    let wait_ms: Option<i64> = r.try_get(17)?;
    let init_ms: Option<i64> = r.try_get(18)?;
    let run_ms: Option<i64> = r.try_get(19)?;
    let phases = match (wait_ms, init_ms, run_ms) {
        (Some(wait), Some(init), Some(run)) => Some(RunPhases {
            wait_ms: wait.max(0) as u64,
            init_ms: init.max(0) as u64,
            run_ms: run.max(0) as u64,
        }),
        _ => None,
    };
    let list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
    // SQLite's 0/1 flag is a BIGINT here; SQLite reads any non-zero integer as true.
    let cold_start: Option<i64> = r.try_get(16)?;
    Ok(InvocationRecord {
        id: r.try_get(0)?,
        namespace: r.try_get(1)?,
        function: r.try_get(2)?,
        revision: r.try_get(3)?,
        mode: r.try_get(4)?,
        status: r.try_get(5)?,
        accepted: r.try_get(6)?,
        started: r.try_get(7)?,
        ended: r.try_get(8)?,
        input: r.try_get(9)?,
        output: r.try_get(10)?,
        error_type: r.try_get(11)?,
        error_code: r.try_get(12)?,
        error_message: r.try_get(13)?,
        event: r.try_get(14)?,
        http_context: r.try_get(15)?,
        cold_start: cold_start.map(|flag| flag != 0),
        phases,
        attempts: r.try_get::<_, i64>(20)?.clamp(0, i64::from(u32::MAX)) as u32,
        callback_url: r.try_get(21)?,
        callback_status: r.try_get(22)?,
        secrets: list(r.try_get(23)?),
        services: list(r.try_get(24)?),
        node: r.try_get(25)?,
    })
}

fn runs_from_rows(rows: &[Row]) -> Result<Vec<InvocationRecord>> {
    rows.iter().map(|r| run_from_row(r).map_err(db)).collect()
}

fn stream_name(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
        LogStream::Function => "function",
        LogStream::Agent => "agent",
    }
}

fn stream_from_str(s: &str) -> LogStream {
    match s {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        "function" => LogStream::Function,
        _ => LogStream::Agent,
    }
}

/// A line of the server's own (stream `agent`), stamped now.
fn agent_line(line: &str) -> LogLine {
    let ts_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    LogLine {
        ts_ms,
        stream: LogStream::Agent,
        line: line.to_string(),
    }
}

/// Appends `logs` to the call's lines inside `tx`, numbered after those it has.
///
/// SQLite reads the next `seq` and inserts under its one connection; here two appends to one
/// call could read the same next `seq`, so the transaction first takes an advisory lock of the
/// call (released at commit or rollback) and the second append waits for the first's lines.
async fn append_logs_in(tx: &Transaction<'_>, invocation_id: &str, logs: &[LogLine]) -> Result<()> {
    if logs.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('logs:' || $1::text))",
        &[&invocation_id],
    )
    .await
    .map_err(db)?;
    let next: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(seq) + 1, 0) FROM invocation_logs WHERE invocation_id = $1",
            &[&invocation_id],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    let insert = tx
        .prepare(
            "INSERT INTO invocation_logs (invocation_id, seq, ts_ms, stream, line)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(db)?;
    for (offset, log) in logs.iter().enumerate() {
        let seq = next + offset as i64;
        let ts_ms = i64::try_from(log.ts_ms).unwrap_or(i64::MAX);
        tx.execute(
            &insert,
            &[
                &invocation_id,
                &seq,
                &ts_ms,
                &stream_name(log.stream),
                &log.line,
            ],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// [`InvocationStore::finish_invocation`] in `tx` (not committed); `false` when the record is
/// not this node's (nothing written).
async fn finish_in(
    tx: &Transaction<'_>,
    id: &str,
    end: &InvocationEnd<'_>,
    logs: &[LogLine],
) -> Result<bool> {
    let phases = end.phases;
    let cold_start = end.cold_start.map(i64::from);
    let wait_ms = phases.map(|p| i64::try_from(p.wait_ms).unwrap_or(i64::MAX));
    let init_ms = phases.map(|p| i64::try_from(p.init_ms).unwrap_or(i64::MAX));
    let run_ms = phases.map(|p| i64::try_from(p.run_ms).unwrap_or(i64::MAX));
    // The row lock of the UPDATE orders it after a take-over's requeue of the same row,
    // which then no longer names this node.
    let changed = tx
        .execute(
            "UPDATE invocations SET status = $2, ended = $3, error_code = $4,
             error_message = $5, error_type = $6, output = $7,
             input = COALESCE($8, input), revision = COALESCE($9, revision),
             cold_start = COALESCE($10, cold_start), wait_ms = COALESCE($11, wait_ms),
             init_ms = COALESCE($12, init_ms), run_ms = COALESCE($13, run_ms)
         WHERE id = $1 AND ($14::text IS NULL OR node IS NULL OR node = $14)",
            &[
                &id,
                &end.status,
                &end.ended,
                &end.error_code,
                &end.error_message,
                &end.error_type,
                &end.output,
                &end.input,
                &end.revision,
                &cold_start,
                &wait_ms,
                &init_ms,
                &run_ms,
                &end.node,
            ],
        )
        .await
        .map_err(db)?;
    if changed == 0 {
        return Ok(false);
    }
    append_logs_in(tx, id, logs).await?;
    Ok(true)
}

/// [`InvocationStore::insert_run`] with `client` (a transaction or not).
async fn insert_run_in(client: &impl GenericClient, run: &NewRun) -> Result<bool> {
    let running = run.status == "running";
    let began = running.then_some(run.accepted.as_str());
    let secrets = serde_json::to_string(&run.secrets).unwrap_or_else(|_| "[]".into());
    let services = serde_json::to_string(&run.services).unwrap_or_else(|_| "[]".into());
    let changed = client
        .execute(
            "INSERT INTO invocations (id, namespace, function, status, started, began, mode,
                 input, event, http_context, callback_url, secrets, services, attempts, node)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (id) DO NOTHING",
            &[
                &run.id,
                &run.namespace,
                &run.function,
                &run.status,
                &run.accepted,
                &began,
                &run.mode,
                &run.input,
                &run.event,
                &run.http_context,
                &run.callback_url,
                &secrets,
                &services,
                &i64::from(running),
                &run.node,
            ],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}

#[async_trait]
impl InvocationStore for PgStore {
    async fn start_invocation(
        &self,
        id: &str,
        namespace: &str,
        function: &str,
        started: &str,
    ) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO invocations (id, namespace, function, status, started, began)
                 VALUES ($1, $2, $3, 'running', $4, $4)",
                &[&id, &namespace, &function, &started],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        if !finish_in(&tx, id, end, logs).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM invocations WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db)?;
        row.map(|r| run_from_row(&r).map_err(db)).transpose()
    }

    async fn list_invocations(
        &self,
        namespace: &str,
        function: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM invocations
                     WHERE namespace = $1 AND ($2::text IS NULL OR function = $2)
                     ORDER BY started DESC, rowid DESC LIMIT $3"
                ),
                &[&namespace, &function, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        runs_from_rows(&rows)
    }

    async fn append_logs(&self, invocation_id: &str, logs: &[LogLine]) -> Result<()> {
        if logs.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        append_logs_in(&tx, invocation_id, logs).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn logs(&self, invocation_id: &str) -> Result<Vec<LogLine>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT ts_ms, stream, line FROM invocation_logs WHERE invocation_id = $1
                 ORDER BY seq",
                &[&invocation_id],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                let stream: &str = r.try_get(1)?;
                Ok(LogLine {
                    ts_ms: r.try_get::<_, i64>(0)?.max(0) as u64,
                    stream: stream_from_str(stream),
                    line: r.try_get(2)?,
                })
            })
            .collect::<std::result::Result<_, tokio_postgres::Error>>()
            .map_err(db)
    }

    async fn fail_interrupted_invocations(&self, gone: &Interruption<'_>) -> Result<usize> {
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE invocations SET status = 'crashed', ended = $1,
                     error_code = NULL, error_type = 'SystemError', error_message = $3
                 WHERE status = 'running' AND mode = 'sync' AND (node = $2 OR node IS NULL)",
                &[&gone.ended, &gone.node, &gone.call_message()],
            )
            .await
            .map_err(db)?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    async fn insert_run(&self, run: &NewRun) -> Result<bool> {
        let client = self.client().await?;
        insert_run_in(&client, run).await
    }

    /// The call and its end in one transaction.
    async fn record_call(
        &self,
        run: &NewRun,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        insert_run_in(&tx, run).await?;
        if !finish_in(&tx, &run.id, end, logs).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Many calls' writes in one transaction (one commit).
    async fn write_calls(&self, writes: &[CallWrite]) -> Result<Vec<bool>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let mut stored = Vec::with_capacity(writes.len());
        for write in writes {
            stored.push(match write {
                CallWrite::Running(run) => insert_run_in(&tx, run).await?,
                CallWrite::Ended { run, end, logs } => {
                    insert_run_in(&tx, run).await?;
                    finish_in(&tx, &run.id, &end.borrowed(), logs).await?
                }
            });
        }
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn queued_runs(&self, limit: u32, skip: &[String]) -> Result<Vec<InvocationRecord>> {
        // SQLite passes the skip list as JSON to json_each; here it is a text array.
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM invocations WHERE status = 'queued'
                       AND namespace || '/' || function <> ALL($2::text[])
                     ORDER BY started, rowid LIMIT $1"
                ),
                &[&i64::from(limit), &skip],
            )
            .await
            .map_err(db)?;
        runs_from_rows(&rows)
    }

    async fn claim_run(&self, id: &str, started: &str, node: &str) -> Result<bool> {
        // Exactly one claimer, whatever the number of servers: a second UPDATE of the row waits
        // for the first's transaction and then re-checks `status = 'queued'` on the row the
        // first left (READ COMMITTED), so it changes nothing.
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE invocations SET status = 'running', began = $2, attempts = attempts + 1,
                     node = $3
                 WHERE id = $1 AND status = 'queued'",
                &[&id, &started, &node],
            )
            .await
            .map_err(db)?;
        Ok(changed == 1)
    }

    async fn cancel_queued_run(&self, id: &str, ended: &str) -> Result<bool> {
        // The same conditional UPDATE as claim_run's: of a claim and a cancel, only one changes
        // the row.
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE invocations SET status = 'cancelled', ended = $2,
                     error_type = 'FunctionError', error_code = 'faasbox.function.cancelled',
                     error_message = 'the run was cancelled before it started'
                 WHERE id = $1 AND status = 'queued'",
                &[&id, &ended],
            )
            .await
            .map_err(db)?;
        Ok(changed == 1)
    }

    async fn requeue_interrupted_runs(&self, gone: &Interruption<'_>) -> Result<Requeued> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // FOR UPDATE locks the runs read until commit: a second caller at the same time waits,
        // then re-reads them as this one left them (no longer `running`), so no run is queued
        // twice or gets two "runs again" lines.
        let select = |attempts: &str| {
            format!(
                "SELECT id FROM invocations WHERE status = 'running' AND mode = 'async'
                 AND (node = $1 OR node IS NULL) AND attempts {attempts}
                 ORDER BY started, rowid FOR UPDATE"
            )
        };
        let ids = |rows: Vec<Row>| -> Result<Vec<String>> {
            rows.iter()
                .map(|r| r.try_get::<_, String>(0).map_err(db))
                .collect()
        };
        let requeued = ids(tx.query(&select("< 2"), &[&gone.node]).await.map_err(db)?)?;
        let crashed = ids(tx.query(&select(">= 2"), &[&gone.node]).await.map_err(db)?)?;
        for id in &requeued {
            tx.execute(
                "UPDATE invocations SET status = 'queued', began = NULL WHERE id = $1",
                &[id],
            )
            .await
            .map_err(db)?;
            append_logs_in(&tx, id, &[agent_line(&gone.requeue_line())]).await?;
        }
        for id in &crashed {
            tx.execute(
                "UPDATE invocations SET status = 'crashed', ended = $2,
                     error_type = 'SystemError', error_code = NULL, error_message = $3
                 WHERE id = $1",
                &[id, &gone.ended, &gone.crash_message()],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Requeued { requeued, crashed })
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<InvocationRecord>> {
        // The keyset: runs before `filter.before`'s (started, rowid); a run of another
        // namespace (or none) makes the row comparison NULL, so no runs.
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM invocations
                     WHERE namespace = $1 AND ($2::text IS NULL OR function = $2)
                       AND ($3::text IS NULL OR status = $3)
                       AND ($4::text IS NULL OR started >= $4)
                       AND ($6::text IS NULL OR (started, rowid) < (
                           SELECT started, rowid FROM invocations
                           WHERE id = $6 AND namespace = $1))
                     ORDER BY started DESC, rowid DESC LIMIT $5"
                ),
                &[
                    &filter.namespace,
                    &filter.function,
                    &filter.status,
                    &filter.since,
                    &i64::from(filter.limit),
                    &filter.before,
                ],
            )
            .await
            .map_err(db)?;
        runs_from_rows(&rows)
    }

    async fn run_counts(&self, namespace: &str, since: &str) -> Result<Vec<RunCount>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT function, status, COALESCE(cold_start, 0) <> 0 AS cold, count(*)
                 FROM invocations WHERE namespace = $1 AND started >= $2
                 GROUP BY function, status, cold ORDER BY function, status, cold",
                &[&namespace, &since],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(RunCount {
                    function: r.try_get(0)?,
                    status: r.try_get(1)?,
                    cold_start: r.try_get(2)?,
                    count: r.try_get::<_, i64>(3)?.try_into().unwrap_or(0),
                })
            })
            .collect::<std::result::Result<_, tokio_postgres::Error>>()
            .map_err(db)
    }

    async fn set_callback_status(&self, id: &str, status: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE invocations SET callback_status = $2 WHERE id = $1",
                &[&id, &status],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Per namespace, the `keep`-th newest run (of any status; by `started`, then `rowid`) is
    /// the threshold, and the ended runs older than it or than `before` are deleted oldest
    /// first, a batch per transaction, each batch a range scan of the `(namespace, started)`
    /// index: no batch ranks the whole table (which, for every batch of 1,000, grew with the
    /// table; see the SQLite store's `purge_runs`).
    async fn purge_runs(&self, before: &str, keep: u32) -> Result<usize> {
        let namespaces: Vec<String> = self
            .client()
            .await?
            .query("SELECT DISTINCT namespace FROM invocations", &[])
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?;
        // With `keep` 0 every ended run goes: the newest run, and everything up to and
        // including it.
        let (offset, inclusive) = match keep.checked_sub(1) {
            Some(offset) => (i64::from(offset), false),
            None => (0, true),
        };
        let mut removed = 0;
        for namespace in &namespaces {
            let threshold = self
                .client()
                .await?
                .query_opt(
                    "SELECT started, rowid FROM invocations WHERE namespace = $1
                     ORDER BY started DESC, rowid DESC LIMIT 1 OFFSET $2",
                    &[namespace, &offset],
                )
                .await
                .map_err(db)?;
            // Without a threshold (no more than `keep` runs) only the age counts: '' is
            // before every time.
            let (cut_started, cut_rowid): (String, i64) = match threshold {
                Some(row) => {
                    let started: String = row.try_get(0).map_err(db)?;
                    let rowid: i64 = row.try_get(1).map_err(db)?;
                    (started, if inclusive { i64::MAX } else { rowid })
                }
                None => (String::new(), 0),
            };
            loop {
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(db)?;
                // One purger at a time (servers purge on a timer): a second waits for this
                // batch's commit and then reads what is left, instead of deleting the same
                // rows in a possibly different order (a deadlock).
                tx.execute("SELECT pg_advisory_xact_lock(hashtext('purge_runs'))", &[])
                    .await
                    .map_err(db)?;
                let ids: Vec<String> = tx
                    .query(
                        "SELECT id FROM invocations
                         WHERE namespace = $1 AND started <= GREATEST($2, $3)
                           AND status NOT IN ('queued', 'running')
                           AND (started < $2 OR started < $3 OR (started = $3 AND rowid < $4))
                         ORDER BY started LIMIT $5",
                        &[namespace, &before, &cut_started, &cut_rowid, &PURGE_BATCH],
                    )
                    .await
                    .map_err(db)?
                    .iter()
                    .map(|r| r.try_get::<_, String>(0))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(db)?;
                // One statement per table for the whole batch (SQLite deletes run by run).
                // What is counted is what was deleted (a namespace deleted meanwhile takes its
                // runs too).
                tx.execute(
                    "DELETE FROM invocation_logs WHERE invocation_id = ANY($1)",
                    &[&ids],
                )
                .await
                .map_err(db)?;
                let deleted = tx
                    .execute("DELETE FROM invocations WHERE id = ANY($1)", &[&ids])
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                removed += usize::try_from(deleted).unwrap_or(usize::MAX);
                if (ids.len() as i64) < PURGE_BATCH {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// The cursor is the line's `rowid` in `invocation_logs` (an identity, never handed out
    /// twice, unlike SQLite's rowid after deletes).
    ///
    /// An identity is allocated when a line is inserted, not when its transaction commits: with
    /// two calls ending at once, a follower may see a later line (larger cursor) before an
    /// earlier one commits, and then never see the earlier one. Acceptable for now: following
    /// is a view of recent output, and each run's own log (`logs`) is complete.
    async fn function_logs(
        &self,
        namespace: &str,
        function: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<FunctionLogs> {
        let client = self.client().await?;
        let limit = i64::from(limit);
        // The newest cursor now: where a follower starts when the function has no lines yet.
        let newest: i64 = client
            .query_one("SELECT COALESCE(MAX(rowid), 0) FROM invocation_logs", &[])
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let calls = "SELECT id FROM invocations WHERE namespace = $1 AND function = $2
                     ORDER BY started DESC LIMIT $3";
        let rows = match after {
            None => {
                client
                    .query(
                        &format!(
                            "SELECT rowid, invocation_id, ts_ms, stream, line FROM invocation_logs
                             WHERE invocation_id IN ({calls}) ORDER BY rowid DESC LIMIT $3"
                        ),
                        &[&namespace, &function, &limit],
                    )
                    .await
            }
            Some(after) => {
                client
                    .query(
                        &format!(
                            "SELECT rowid, invocation_id, ts_ms, stream, line FROM invocation_logs
                             WHERE invocation_id IN ({calls}) AND rowid > $4
                             ORDER BY rowid ASC LIMIT $3"
                        ),
                        &[&namespace, &function, &limit, &after],
                    )
                    .await
            }
        }
        .map_err(db)?;
        let mut logs = rows
            .iter()
            .map(|r| {
                let stream: &str = r.try_get(3)?;
                Ok(FunctionLogLine {
                    seq: r.try_get(0)?,
                    invocation: r.try_get(1)?,
                    line: LogLine {
                        ts_ms: r.try_get::<_, i64>(2)?.max(0) as u64,
                        stream: stream_from_str(stream),
                        line: r.try_get(4)?,
                    },
                })
            })
            .collect::<std::result::Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(db)?;
        if after.is_none() {
            logs.reverse();
        }
        let next = match (logs.last(), after) {
            (Some(last), _) => last.seq,
            // Nothing new: keep the caller's place (never move it back).
            (None, Some(after)) => after.max(0),
            (None, None) => newest,
        };
        Ok(FunctionLogs { logs, next })
    }
}
