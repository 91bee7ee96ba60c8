//! FlowStore on PostgreSQL: flow sources, instances (with the engine's checkpoint as JSON text),
//! the states and steps each instance ran, instance logs and calls, and variables of the
//! namespace, workflow and instance scopes. The SQL mirrors faasbox-store-sqlite's flows.rs
//! statement by statement; where PostgreSQL needs something else (many connections instead of
//! SQLite's one, strict parameter types) a comment says why.

use async_trait::async_trait;
use faasbox_store::{
    Claim, ExpiredInstance, Fence, FlowInstanceRecord, FlowRecord, FlowStore, InstanceCallRecord,
    InstanceFilter, InstanceLogRecord, NewInstance, NewInstanceLog, ProgressView, ProgressWrite,
    Result, StepEnd, StepRecord, StepStart, StoreError,
};
use tokio_postgres::{GenericClient, Row};

use crate::{db, is_foreign_key_violation, PgStore};

const INSTANCE_COLUMNS: &str = "id, namespace, flow, source, status, input, output, error_code, error_message, checkpoint, parent, created, updated, metadata, depth";

const FLOW_COLUMNS: &str = "namespace, path, source, created, updated";

fn instance_from_row(row: &Row) -> Result<FlowInstanceRecord> {
    let depth: i64 = row.try_get(14).map_err(db)?;
    Ok(FlowInstanceRecord {
        id: row.try_get(0).map_err(db)?,
        namespace: row.try_get(1).map_err(db)?,
        flow: row.try_get(2).map_err(db)?,
        source: row.try_get(3).map_err(db)?,
        status: row.try_get(4).map_err(db)?,
        input: row.try_get(5).map_err(db)?,
        output: row.try_get(6).map_err(db)?,
        error_code: row.try_get(7).map_err(db)?,
        error_message: row.try_get(8).map_err(db)?,
        checkpoint: row.try_get(9).map_err(db)?,
        parent: row.try_get(10).map_err(db)?,
        created: row.try_get(11).map_err(db)?,
        updated: row.try_get(12).map_err(db)?,
        metadata: row.try_get(13).map_err(db)?,
        depth: u32::try_from(depth).map_err(|_| {
            StoreError::backend(format!(
                "flow_instances.depth holds {depth}, not a subflow depth (0 to {}); fix the row in the database",
                u32::MAX
            ))
        })?,
    })
}

fn instances_from_rows(rows: &[Row]) -> Result<Vec<FlowInstanceRecord>> {
    rows.iter().map(instance_from_row).collect()
}

fn flow_from_row(row: &Row) -> Result<FlowRecord> {
    Ok(FlowRecord {
        namespace: row.try_get(0).map_err(db)?,
        path: row.try_get(1).map_err(db)?,
        source: row.try_get(2).map_err(db)?,
        created: row.try_get(3).map_err(db)?,
        updated: row.try_get(4).map_err(db)?,
    })
}

/// A step number as the BIGINT column holds it (SQLite's code casts; here a step beyond
/// `i64::MAX`, which no instance reaches, is an error instead of a wrapped number).
fn step_param(step: u64) -> Result<i64> {
    i64::try_from(step).map_err(|_| {
        StoreError::backend(format!(
            "step {step} is beyond what the store keeps ({})",
            i64::MAX
        ))
    })
}

/// A step number read back (never negative when written by this store).
fn step_read(step: i64) -> Result<u64> {
    u64::try_from(step).map_err(|_| {
        StoreError::backend(format!(
            "a flow step row holds step {step}, below 1; fix the row in the database"
        ))
    })
}

/// The database's clock in ms since the epoch, as SQL: leases are set and compared with it,
/// never with a server's own clock (`clock_timestamp()`, not `now()`, which is the
/// transaction's start).
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// After a fenced write changed nothing: refuses it with `LeaseLost` when the instance exists
/// (and, with `unfinished_only`, has not ended), since then another claim holds it. A gone
/// instance is no error, as for unfenced writes.
async fn refuse_if_held(
    client: &impl GenericClient,
    id: &str,
    unfinished_only: bool,
) -> Result<()> {
    let row = client
        .query_opt(
            "SELECT owner, status FROM flow_instances WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(()) };
    let owner: Option<String> = row.try_get(0).map_err(db)?;
    let status: String = row.try_get(1).map_err(db)?;
    if unfinished_only && status != "running" && status != "waiting" {
        return Ok(());
    }
    Err(StoreError::LeaseLost {
        id: id.to_string(),
        owner: owner.unwrap_or_default(),
    })
}

/// Stores a new instance as `running`; also inside another part's transaction (pass the
/// transaction), such as a cron slot's claim.
pub(crate) async fn insert_instance(
    client: &impl GenericClient,
    new: &NewInstance<'_>,
) -> Result<()> {
    client
        .execute(
            &format!(
                "INSERT INTO flow_instances (id, namespace, flow, source, status, input, checkpoint, parent, created, updated, depth, owner, lease_until_ms)
                 VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $8, $9, $10::text,
                         CASE WHEN $10::text IS NULL THEN NULL ELSE {NOW_MS} + $11::bigint END)"
            ),
            &[
                &new.id,
                &new.namespace,
                &new.flow,
                &new.source,
                &new.input,
                &new.checkpoint,
                &new.parent,
                &new.now,
                &i64::from(new.depth),
                &new.owner,
                &new.lease_ms,
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// Inside an append's transaction: waits out a deletion of the instance's namespace that is
/// under way, and keeps one from starting until the append commits. `delete_namespace` locks
/// the namespace's row FOR UPDATE before it deletes the instances' lines and calls and then the
/// instances; without this an append could commit between those statements and its rows would
/// outlive the namespace. FOR KEY SHARE conflicts only with that lock (and the row's delete),
/// so appends do not wait for each other here. An instance whose namespace row does not exist
/// (the store does not check it) locks nothing. Taken before the instance's row, in the order
/// `delete_namespace` takes them, so the two never deadlock.
async fn hold_namespace_of_instance(tx: &impl GenericClient, id: &str) -> Result<()> {
    tx.query(
        "SELECT 1 FROM namespaces WHERE name = (SELECT namespace FROM flow_instances WHERE id = $1) FOR KEY SHARE",
        &[&id],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// [`FlowStore::save_checkpoint`] on `tx` (a transaction: the UPDATE and the finished state's
/// row go in together).
async fn save_checkpoint_in(
    tx: &impl GenericClient,
    id: &str,
    status: &str,
    checkpoint: &str,
    finished: Option<(u64, &str)>,
    now: &str,
    fence: Fence<'_>,
) -> Result<()> {
    let finished = match finished {
        Some((step, state)) => Some((step_param(step)?, state)),
        None => None,
    };
    // The fence is part of the UPDATE's WHERE: a claim by another server that commits
    // first makes this one re-check the row (READ COMMITTED) and change nothing.
    let changed = tx
        .execute(
            "UPDATE flow_instances SET status = $2, checkpoint = $3, updated = $4,
                 lease_until_ms = CASE WHEN $2 = 'waiting' THEN NULL ELSE lease_until_ms END
             WHERE id = $1 AND ($5::text IS NULL OR (owner = $5::text AND epoch = $6::bigint))",
            &[
                &id,
                &status,
                &checkpoint,
                &now,
                &fence.map(|f| f.0),
                &fence.map(|f| f.1),
            ],
        )
        .await
        .map_err(db)?;
    if changed == 0 && fence.is_some() {
        refuse_if_held(tx, id, false).await?;
    }
    if let Some((step, state)) = finished {
        // Once per step also across servers: the primary key (instance, step) decides.
        tx.execute(
            "INSERT INTO flow_instance_states (instance, step, state, finished) VALUES ($1, $2, $3, $4)
             ON CONFLICT (instance, step) DO NOTHING",
            &[&id, &step, &state, &now],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// [`FlowStore::finish_instance`] on `client`.
async fn finish_in(
    client: &impl GenericClient,
    id: &str,
    status: &str,
    output: Option<&str>,
    error: Option<(&str, &str)>,
    now: &str,
    fence: Fence<'_>,
) -> Result<bool> {
    // One conditional UPDATE, as on SQLite: of two servers ending the instance at once, the
    // second waits for the first's row lock, then re-checks the status and the fence (READ
    // COMMITTED re-evaluates the WHERE on the newest row) and changes nothing.
    let changed = client
        .execute(
            "UPDATE flow_instances SET status = $2, output = $3, error_code = $4, error_message = $5,
                 updated = $6, lease_until_ms = NULL,
                 epoch = CASE WHEN $7::text IS NULL THEN epoch + 1 ELSE epoch END
             WHERE id = $1 AND status IN ('running', 'waiting')
               AND ($7::text IS NULL OR (owner = $7::text AND epoch = $8::bigint))",
            &[
                &id,
                &status,
                &output,
                &error.map(|e| e.0),
                &error.map(|e| e.1),
                &now,
                &fence.map(|f| f.0),
                &fence.map(|f| f.1),
            ],
        )
        .await
        .map_err(db)?;
    if changed == 0 && fence.is_some() {
        refuse_if_held(client, id, true).await?;
    }
    Ok(changed > 0)
}

/// [`FlowStore::start_step`] on `client`.
async fn start_step_in(client: &impl GenericClient, start: &StepStart<'_>) -> Result<()> {
    // Once per step also across servers: the primary key (instance, step) decides.
    client
        .execute(
            "INSERT INTO flow_instance_steps (instance, step, state, started, input, truncated)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (instance, step) DO NOTHING",
            &[
                &start.instance,
                &step_param(start.step)?,
                &start.state,
                &start.started,
                &start.input,
                &i64::from(start.truncated),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// [`FlowStore::end_step`] on `client`.
async fn end_step_in(client: &impl GenericClient, instance: &str, end: &StepEnd<'_>) -> Result<()> {
    // `truncated` is a 0/1 BIGINT here, so SQLite's `truncated OR ?6` is GREATEST. Of two
    // racing ends the second re-checks `finished IS NULL` after the first's commit and
    // changes nothing.
    client
        .execute(
            "UPDATE flow_instance_steps SET finished = $2, output = $3, error_code = $4,
             error_message = $5, truncated = GREATEST(truncated, $6)
         WHERE instance = $1 AND finished IS NULL",
            &[
                &instance,
                &end.finished,
                &end.output,
                &end.error.map(|e| e.0),
                &end.error.map(|e| e.1),
                &i64::from(end.truncated),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// [`FlowStore::append_instance_logs`] on `tx`, a transaction that already holds the
/// instance's namespace (`hold_namespace_of_instance`).
async fn append_logs_in(
    tx: &impl GenericClient,
    id: &str,
    lines: &[NewInstanceLog<'_>],
) -> Result<()> {
    // A line's `seq` is an identity, handed out at insert, not at commit: two servers
    // appending to one instance could commit seq 11 before seq 10, and a reader following
    // with `after_seq` 11 would never see line 10. So an append first locks the instance's
    // row (FOR NO KEY UPDATE: appends wait for each other, readers and `FOR KEY SHARE` do
    // not wait), and numbers its lines only once it holds the lock: per instance, seq order
    // is commit order. Locking the row is also SQLite's EXISTS: a gone instance locks
    // nothing and gets no lines (and one deleted while we waited is re-checked and gone);
    // holding its namespace first keeps a namespace deletion from cutting in between (see
    // `hold_namespace_of_instance`). The lines go in as one INSERT over arrays, numbered in
    // the order given.
    if lines.is_empty() {
        return Ok(());
    }
    let ts: Vec<i64> = lines.iter().map(|l| l.ts_ms).collect();
    let messages: Vec<&str> = lines.iter().map(|l| l.message).collect();
    let states: Vec<Option<&str>> = lines.iter().map(|l| l.state).collect();
    let invocations: Vec<Option<&str>> = lines.iter().map(|l| l.invocation).collect();
    let found = tx
        .query_opt(
            "SELECT 1 FROM flow_instances WHERE id = $1 FOR NO KEY UPDATE",
            &[&id],
        )
        .await
        .map_err(db)?;
    if found.is_none() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO flow_instance_logs (instance, ts_ms, message, state, invocation)
         SELECT $1, l.ts_ms, l.message, l.state, l.invocation
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])
             WITH ORDINALITY AS l (ts_ms, message, state, invocation, n)
         ORDER BY l.n",
        &[&id, &ts, &messages, &states, &invocations],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// [`FlowStore::record_instance_call`] on `tx`, a transaction that already holds the
/// instance's namespace (`hold_namespace_of_instance`).
async fn record_call_in(
    tx: &impl GenericClient,
    id: &str,
    call: &InstanceCallRecord,
) -> Result<()> {
    tx.execute(
        "INSERT INTO flow_instance_calls (instance, call_id, kind, state, function, started)
         SELECT id, $2::text, $3::text, $4::text, $5::text, $6::text
         FROM flow_instances WHERE id = $1 FOR KEY SHARE",
        &[
            &id,
            &call.id,
            &call.kind,
            &call.state,
            &call.function,
            &call.started,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl FlowStore for PgStore {
    async fn put_flow(
        &self,
        namespace: &str,
        path: &str,
        source: &str,
        now: &str,
    ) -> Result<FlowRecord> {
        // SQLite checks the namespace first and reads the row back; here the foreign key on
        // `flows.namespace` does the check within the one statement (a namespace deleted by
        // another server between a check and the insert cannot slip through), and RETURNING
        // gives the stored row.
        let c = self.client().await?;
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO flows (namespace, path, source, created, updated) VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (namespace, path) DO UPDATE SET source = excluded.source, updated = excluded.updated
                     RETURNING {FLOW_COLUMNS}"
                ),
                &[&namespace, &path, &source, &now],
            )
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NoNamespace(namespace.to_string())
                } else {
                    db(e)
                }
            })?;
        flow_from_row(&row)
    }

    async fn flow(&self, namespace: &str, path: &str) -> Result<Option<FlowRecord>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {FLOW_COLUMNS} FROM flows WHERE namespace = $1 AND path = $2"),
            &[&namespace, &path],
        )
        .await
        .map_err(db)?
        .as_ref()
        .map(flow_from_row)
        .transpose()
    }

    async fn list_flows(&self, namespace: &str) -> Result<Vec<FlowRecord>> {
        let c = self.client().await?;
        c.query(
            &format!("SELECT {FLOW_COLUMNS} FROM flows WHERE namespace = $1 ORDER BY path"),
            &[&namespace],
        )
        .await
        .map_err(db)?
        .iter()
        .map(flow_from_row)
        .collect()
    }

    async fn delete_flow(&self, namespace: &str, path: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let deleted = tx
            .execute(
                "DELETE FROM flows WHERE namespace = $1 AND path = $2",
                &[&namespace, &path],
            )
            .await
            .map_err(db)?;
        tx.execute(
            "DELETE FROM flow_variables WHERE namespace = $1 AND scope = 'workflow' AND owner = $2",
            &[&namespace, &path],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(deleted > 0)
    }

    async fn create_instance(&self, new: &NewInstance<'_>) -> Result<()> {
        let c = self.client().await?;
        insert_instance(&**c, new).await
    }

    async fn set_instance_metadata(
        &self,
        id: &str,
        metadata: &str,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()> {
        let c = self.client().await?;
        let changed = c
            .execute(
                "UPDATE flow_instances SET metadata = $2, updated = $3
                 WHERE id = $1 AND ($4::text IS NULL OR (owner = $4::text AND epoch = $5::bigint))",
                &[
                    &id,
                    &metadata,
                    &now,
                    &fence.map(|f| f.0),
                    &fence.map(|f| f.1),
                ],
            )
            .await
            .map_err(db)?;
        if changed == 0 && fence.is_some() {
            refuse_if_held(&**c, id, false).await?;
        }
        Ok(())
    }

    async fn save_checkpoint(
        &self,
        id: &str,
        status: &str,
        checkpoint: &str,
        finished: Option<(u64, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        save_checkpoint_in(&*tx, id, status, checkpoint, finished, now, fence).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn finish_instance(
        &self,
        id: &str,
        status: &str,
        output: Option<&str>,
        error: Option<(&str, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<bool> {
        let c = self.client().await?;
        finish_in(&**c, id, status, output, error, now, fence).await
    }

    async fn claim_instance(
        &self,
        id: &str,
        node: &str,
        lease_ms: i64,
        want: Claim,
    ) -> Result<Option<i64>> {
        // One conditional UPDATE: of two servers claiming one instance at once, the second
        // waits for the first's row lock, re-checks the condition on the row the first left
        // (status `running` now, or a lease that has not expired) and claims nothing.
        let condition = match want {
            Claim::Resume => "status = 'waiting'",
            Claim::TakeOver => {
                "status = 'running' AND (owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms < {NOW_MS})"
            }
            Claim::Mine => "status = 'running' AND owner = $2",
        }
        .replace("{NOW_MS}", NOW_MS);
        let c = self.client().await?;
        c.query_opt(
            &format!(
                "UPDATE flow_instances SET status = 'running', owner = $2,
                     lease_until_ms = {NOW_MS} + $3, epoch = epoch + 1
                 WHERE id = $1 AND {condition}
                 RETURNING epoch"
            ),
            &[&id, &node, &lease_ms],
        )
        .await
        .map_err(db)?
        .map(|r| r.try_get(0).map_err(db))
        .transpose()
    }

    async fn renew_leases(&self, node: &str, lease_ms: i64) -> Result<u64> {
        let c = self.client().await?;
        c.execute(
            &format!(
                "UPDATE flow_instances SET lease_until_ms = {NOW_MS} + $2
                 WHERE owner = $1 AND status = 'running'"
            ),
            &[&node, &lease_ms],
        )
        .await
        .map_err(db)
    }

    async fn expired_instances(&self, limit: u32) -> Result<Vec<ExpiredInstance>> {
        let c = self.client().await?;
        c.query(
            &format!(
                "SELECT id, parent, owner FROM flow_instances
                 WHERE status = 'running' AND (owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms < {NOW_MS})
                 ORDER BY created, rowid LIMIT $1"
            ),
            &[&i64::from(limit)],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(ExpiredInstance {
                id: r.try_get(0).map_err(db)?,
                parent: r.try_get(1).map_err(db)?,
                owner: r.try_get(2).map_err(db)?,
            })
        })
        .collect()
    }

    async fn instances_owned_by(&self, node: &str) -> Result<Vec<String>> {
        let c = self.client().await?;
        c.query(
            "SELECT id FROM flow_instances WHERE owner = $1 AND status = 'running' ORDER BY created, rowid",
            &[&node],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.try_get(0).map_err(db))
        .collect()
    }

    async fn instance(&self, id: &str) -> Result<Option<FlowInstanceRecord>> {
        let c = self.client().await?;
        c.query_opt(
            &format!("SELECT {INSTANCE_COLUMNS} FROM flow_instances WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db)?
        .as_ref()
        .map(instance_from_row)
        .transpose()
    }

    async fn list_instances(&self, namespace: &str, limit: u32) -> Result<Vec<FlowInstanceRecord>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {INSTANCE_COLUMNS} FROM flow_instances WHERE namespace = $1 ORDER BY created DESC, rowid DESC LIMIT $2"
                ),
                &[&namespace, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        instances_from_rows(&rows)
    }

    async fn list_instances_by(&self, filter: &InstanceFilter) -> Result<Vec<FlowInstanceRecord>> {
        // The `::text` casts name the type of parameters PostgreSQL would otherwise meet first in
        // `IS NULL`, where it cannot infer one.
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {INSTANCE_COLUMNS} FROM flow_instances
                     WHERE namespace = $1 AND ($2::text IS NULL OR flow = $2::text)
                       AND ($3::text IS NULL OR status = $3::text)
                       AND ($4::text IS NULL OR rowid < (
                           SELECT rowid FROM flow_instances WHERE id = $4::text AND namespace = $1))
                     ORDER BY rowid DESC LIMIT $5"
                ),
                &[
                    &filter.namespace,
                    &filter.flow,
                    &filter.status,
                    &filter.before,
                    &i64::from(filter.limit),
                ],
            )
            .await
            .map_err(db)?;
        instances_from_rows(&rows)
    }

    async fn instances_with_status(&self, status: &str) -> Result<Vec<FlowInstanceRecord>> {
        // `rowid` breaks ties of `created` (SQLite leaves them in an order of its choosing; this
        // is the order the instances were stored in).
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {INSTANCE_COLUMNS} FROM flow_instances WHERE status = $1 ORDER BY created, rowid"
                ),
                &[&status],
            )
            .await
            .map_err(db)?;
        instances_from_rows(&rows)
    }

    async fn unfinished_instances(&self, namespace: &str) -> Result<Vec<String>> {
        // `rowid` breaks ties of `created`, as in `instances_with_status`.
        let c = self.client().await?;
        c.query(
            "SELECT id FROM flow_instances WHERE namespace = $1 AND status IN ('running', 'waiting') ORDER BY created, rowid",
            &[&namespace],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.try_get(0).map_err(db))
        .collect()
    }

    async fn instance_counts(&self, namespace: &str) -> Result<Vec<(String, u64)>> {
        let c = self.client().await?;
        c.query(
            "SELECT status, count(*) FROM flow_instances WHERE namespace = $1
             GROUP BY status ORDER BY status",
            &[&namespace],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            let count: i64 = r.try_get(1).map_err(db)?;
            Ok((r.try_get(0).map_err(db)?, count.try_into().unwrap_or(0)))
        })
        .collect()
    }

    async fn start_step(&self, start: &StepStart<'_>) -> Result<()> {
        let c = self.client().await?;
        start_step_in(&**c, start).await
    }

    async fn end_step(&self, instance: &str, end: &StepEnd<'_>) -> Result<()> {
        let c = self.client().await?;
        end_step_in(&**c, instance, end).await
    }

    async fn instance_steps(&self, instance: &str) -> Result<Vec<StepRecord>> {
        let c = self.client().await?;
        c.query(
            "SELECT step, state, started, finished, input, output, error_code, error_message, truncated
             FROM flow_instance_steps WHERE instance = $1 ORDER BY step",
            &[&instance],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(StepRecord {
                step: step_read(r.try_get(0).map_err(db)?)?,
                state: r.try_get(1).map_err(db)?,
                started: r.try_get(2).map_err(db)?,
                finished: r.try_get(3).map_err(db)?,
                input: r.try_get(4).map_err(db)?,
                output: r.try_get(5).map_err(db)?,
                error_code: r.try_get(6).map_err(db)?,
                error_message: r.try_get(7).map_err(db)?,
                truncated: r.try_get::<_, i64>(8).map_err(db)? != 0,
            })
        })
        .collect()
    }

    async fn finished_states(&self, id: &str) -> Result<Vec<(u64, String)>> {
        let c = self.client().await?;
        c.query(
            "SELECT step, state FROM flow_instance_states WHERE instance = $1 ORDER BY step",
            &[&id],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok((
                step_read(r.try_get(0).map_err(db)?)?,
                r.try_get(1).map_err(db)?,
            ))
        })
        .collect()
    }

    async fn append_instance_log(&self, id: &str, ts_ms: i64, message: &str) -> Result<()> {
        self.append_instance_logs(
            id,
            &[NewInstanceLog {
                ts_ms,
                message,
                state: None,
                invocation: None,
            }],
        )
        .await
    }

    async fn append_instance_logs(&self, id: &str, lines: &[NewInstanceLog<'_>]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        hold_namespace_of_instance(&*tx, id).await?;
        append_logs_in(&*tx, id, lines).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn instance_logs(&self, id: &str, after_seq: i64) -> Result<Vec<InstanceLogRecord>> {
        let c = self.client().await?;
        c.query(
            "SELECT seq, ts_ms, message, state, invocation FROM flow_instance_logs WHERE instance = $1 AND seq > $2 ORDER BY seq",
            &[&id, &after_seq],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(InstanceLogRecord {
                seq: r.try_get(0).map_err(db)?,
                ts_ms: r.try_get(1).map_err(db)?,
                message: r.try_get(2).map_err(db)?,
                state: r.try_get(3).map_err(db)?,
                invocation: r.try_get(4).map_err(db)?,
            })
        })
        .collect()
    }

    async fn record_instance_call(&self, id: &str, call: &InstanceCallRecord) -> Result<()> {
        // SQLite's EXISTS, as row locks: the namespace's (see `hold_namespace_of_instance`),
        // and the instance's FOR KEY SHARE (it cannot be deleted until this call is committed;
        // checkpoint saves neither wait for it nor hold it up).
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        hold_namespace_of_instance(&*tx, id).await?;
        record_call_in(&*tx, id, call).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn record_progress(
        &self,
        id: &str,
        writes: Vec<ProgressWrite>,
        fence: Fence<'_>,
    ) -> Result<bool> {
        // One transaction, as on SQLite: a refused fenced write leaves none of the others. The
        // locks are taken up front in `delete_namespace`'s order (the namespace, then the
        // instance's row), so the writes below never upgrade a lock another writer holds too.
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        hold_namespace_of_instance(&*tx, id).await?;
        tx.query_opt(
            "SELECT 1 FROM flow_instances WHERE id = $1 FOR NO KEY UPDATE",
            &[&id],
        )
        .await
        .map_err(db)?;
        let mut ended = false;
        let mut lines = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            match write.view(id) {
                ProgressView::Log(line) => {
                    // Lines in a row go in as one append.
                    lines.push(line);
                    if !matches!(writes.get(i + 1), Some(ProgressWrite::Log { .. })) {
                        append_logs_in(&*tx, id, &std::mem::take(&mut lines)).await?;
                    }
                }
                ProgressView::StartStep(start) => start_step_in(&*tx, &start).await?,
                ProgressView::EndStep(end) => end_step_in(&*tx, id, &end).await?,
                ProgressView::Checkpoint {
                    status,
                    checkpoint,
                    finished,
                    now,
                } => save_checkpoint_in(&*tx, id, status, checkpoint, finished, now, fence).await?,
                ProgressView::Call(call) => record_call_in(&*tx, id, call).await?,
                ProgressView::Finish {
                    status,
                    output,
                    error,
                    now,
                } => ended = finish_in(&*tx, id, status, output, error, now, fence).await?,
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(ended)
    }

    async fn instance_calls(&self, id: &str) -> Result<Vec<InstanceCallRecord>> {
        let c = self.client().await?;
        c.query(
            "SELECT c.call_id, c.kind, c.state, c.function, c.started,
                    CASE c.kind WHEN 'invocation' THEN i.status ELSE f.status END
             FROM flow_instance_calls c
             LEFT JOIN invocations i ON c.kind = 'invocation' AND i.id = c.call_id
             LEFT JOIN flow_instances f ON c.kind = 'instance' AND f.id = c.call_id
             WHERE c.instance = $1 ORDER BY c.seq",
            &[&id],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(InstanceCallRecord {
                id: r.try_get(0).map_err(db)?,
                kind: r.try_get(1).map_err(db)?,
                state: r.try_get(2).map_err(db)?,
                function: r.try_get(3).map_err(db)?,
                started: r.try_get(4).map_err(db)?,
                status: r.try_get(5).map_err(db)?,
            })
        })
        .collect()
    }

    async fn variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<String>> {
        let c = self.client().await?;
        c.query_opt(
            "SELECT value FROM flow_variables WHERE namespace = $1 AND scope = $2 AND owner = $3 AND key = $4",
            &[&namespace, &scope, &owner, &key],
        )
        .await
        .map_err(db)?
        .map(|r| r.try_get(0).map_err(db))
        .transpose()
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
        // The upsert is one statement: two servers setting one variable at once leave one of
        // the two values, never a unique violation.
        let c = self.client().await?;
        match value {
            Some(value) => c.execute(
                "INSERT INTO flow_variables (namespace, scope, owner, key, value, updated) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (namespace, scope, owner, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                &[&namespace, &scope, &owner, &key, &value, &now],
            )
            .await,
            None => c.execute(
                "DELETE FROM flow_variables WHERE namespace = $1 AND scope = $2 AND owner = $3 AND key = $4",
                &[&namespace, &scope, &owner, &key],
            )
            .await,
        }
        .map_err(db)?;
        Ok(())
    }
}
