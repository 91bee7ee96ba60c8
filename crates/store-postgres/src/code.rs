//! CodeStore on PostgreSQL: the records of base images, image builds and code functions, their
//! bounded build logs and the build cache (see `faasbox_store::code`). The SQL mirrors
//! faasbox-store-sqlite's code.rs.
//!
//! SQLite's single connection makes each build-log append atomic; here the append locks its
//! record's row (`FOR UPDATE`) first, so appends to one log take turns: each reads the counts
//! and the last seq the previous one committed, and the bound holds however many servers
//! write. `put_code` and `delete_code` lock the same row first (their upsert or delete), so a
//! log is never appended to while it is being emptied.

use async_trait::async_trait;
use faasbox_store::{
    BuildLogLine, CodeKind, CodeRecord, CodeStatus, CodeStore, NewBuildLogLine, Result, StoreError,
    BUILD_LOG_CUT, MAX_BUILD_LOG_BYTES, MAX_BUILD_LOG_LINES,
};
use tokio_postgres::Row;

use crate::secrets::{namespace_error, require_namespace};
use crate::{db, PgStore};

const COLUMNS: &str = "namespace, kind, name, spec, status, reason, digest, created, modified";

fn record_from_row(r: &Row) -> Result<CodeRecord> {
    let kind: String = r.try_get(1).map_err(db)?;
    Ok(CodeRecord {
        namespace: r.try_get(0).map_err(db)?,
        kind: CodeKind::parse(&kind).ok_or_else(|| {
            StoreError::backend(format!(
                "unknown code record kind '{kind}' in code_records (a newer faasbox wrote it?)"
            ))
        })?,
        name: r.try_get(2).map_err(db)?,
        spec: r.try_get(3).map_err(db)?,
        status: r.try_get(4).map_err(db)?,
        reason: r.try_get(5).map_err(db)?,
        digest: r.try_get(6).map_err(db)?,
        created: r.try_get(7).map_err(db)?,
        modified: r.try_get(8).map_err(db)?,
    })
}

/// A count or seq as stored (BIGINT); the bounds keep every one far below `i64::MAX`.
fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A BIGINT counter read back (never negative as written here).
fn counted(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl CodeStore for PgStore {
    async fn put_code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
        status: &str,
        now: &str,
    ) -> Result<CodeRecord> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The namespace row is held FOR SHARE until the commit (see secrets.rs).
        require_namespace(&tx, namespace).await?;
        let kind = kind.as_str();
        tx.execute(
            "INSERT INTO code_records (namespace, kind, name, spec, status, reason, digest,
                 created, modified)
             VALUES ($1, $2, $3, $4, $5, '', NULL, $6, $6)
             ON CONFLICT (namespace, kind, name) DO UPDATE SET spec = excluded.spec,
                 status = excluded.status, reason = '', digest = NULL,
                 modified = excluded.modified, log_lines = 0, log_bytes = 0, log_cut = 0",
            &[&namespace, &kind, &name, &spec, &status, &now],
        )
        .await
        .map_err(|e| namespace_error(e, namespace))?;
        tx.execute(
            "DELETE FROM code_build_logs WHERE namespace = $1 AND kind = $2 AND name = $3",
            &[&namespace, &kind, &name],
        )
        .await
        .map_err(db)?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT {COLUMNS} FROM code_records
                     WHERE namespace = $1 AND kind = $2 AND name = $3"
                ),
                &[&namespace, &kind, &name],
            )
            .await
            .map_err(db)?;
        let record = record_from_row(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(record)
    }

    async fn set_code_status(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        status: &CodeStatus<'_>,
        now: &str,
    ) -> Result<bool> {
        let CodeStatus {
            status,
            reason,
            digest,
        } = *status;
        let c = self.client().await?;
        let changed = c
            .execute(
                "UPDATE code_records SET status = $4, reason = $5, digest = $6, modified = $7
                 WHERE namespace = $1 AND kind = $2 AND name = $3",
                &[
                    &namespace,
                    &kind.as_str(),
                    &name,
                    &status,
                    &reason,
                    &digest,
                    &now,
                ],
            )
            .await
            .map_err(db)?;
        Ok(changed > 0)
    }

    async fn set_code_spec(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
    ) -> Result<bool> {
        let c = self.client().await?;
        let changed = c
            .execute(
                "UPDATE code_records SET spec = $4
                 WHERE namespace = $1 AND kind = $2 AND name = $3",
                &[&namespace, &kind.as_str(), &name, &spec],
            )
            .await
            .map_err(db)?;
        Ok(changed > 0)
    }

    async fn code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
    ) -> Result<Option<CodeRecord>> {
        let c = self.client().await?;
        c.query_opt(
            &format!(
                "SELECT {COLUMNS} FROM code_records
                 WHERE namespace = $1 AND kind = $2 AND name = $3"
            ),
            &[&namespace, &kind.as_str(), &name],
        )
        .await
        .map_err(db)?
        .map(|r| record_from_row(&r))
        .transpose()
    }

    async fn codes(&self, namespace: &str, kind: CodeKind) -> Result<Vec<CodeRecord>> {
        let c = self.client().await?;
        c.query(
            &format!(
                "SELECT {COLUMNS} FROM code_records WHERE namespace = $1 AND kind = $2
                 ORDER BY name"
            ),
            &[&namespace, &kind.as_str()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(record_from_row)
        .collect()
    }

    async fn codes_with_status(&self, statuses: &[&str]) -> Result<Vec<CodeRecord>> {
        // One query where SQLite runs one per status and sorts in Rust: the columns are
        // COLLATE "C", so this order is the byte order SQLite's sort gives.
        let c = self.client().await?;
        c.query(
            &format!(
                "SELECT {COLUMNS} FROM code_records WHERE status = ANY($1::text[])
                 ORDER BY namespace, kind, name"
            ),
            &[&statuses],
        )
        .await
        .map_err(db)?
        .iter()
        .map(record_from_row)
        .collect()
    }

    async fn delete_code(&self, namespace: &str, kind: CodeKind, name: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let kind = kind.as_str();
        // The record first (SQLite deletes the log first): deleting its row locks it, so an
        // append in progress commits before the log below is deleted, and a later one finds
        // no record and appends nothing.
        let deleted = tx
            .execute(
                "DELETE FROM code_records WHERE namespace = $1 AND kind = $2 AND name = $3",
                &[&namespace, &kind, &name],
            )
            .await
            .map_err(db)?;
        tx.execute(
            "DELETE FROM code_build_logs WHERE namespace = $1 AND kind = $2 AND name = $3",
            &[&namespace, &kind, &name],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(deleted > 0)
    }

    async fn append_build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        lines: &[NewBuildLogLine],
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let kind = kind.as_str();
        // FOR UPDATE: concurrent appends to this log wait here until this one commits, then
        // read its counts (see the file's comment).
        let counts = tx
            .query_opt(
                "SELECT log_lines, log_bytes, log_cut FROM code_records
                 WHERE namespace = $1 AND kind = $2 AND name = $3 FOR UPDATE",
                &[&namespace, &kind, &name],
            )
            .await
            .map_err(db)?;
        let Some(counts) = counts else {
            return Ok(());
        };
        let mut count = counted(counts.try_get(0).map_err(db)?);
        let mut bytes = counted(counts.try_get(1).map_err(db)?);
        let mut cut = counts.try_get::<_, i64>(2).map_err(db)? != 0;
        let last: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(seq), 0) FROM code_build_logs
                 WHERE namespace = $1 AND kind = $2 AND name = $3",
                &[&namespace, &kind, &name],
            )
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let mut next = counted(last);
        // The kept lines as parallel arrays, inserted in one statement below.
        let mut seqs: Vec<i64> = Vec::new();
        let mut times: Vec<&str> = Vec::new();
        let mut streams: Vec<&str> = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        for line in lines {
            if cut {
                break;
            }
            let size = line.text.len() as u64;
            next += 1;
            seqs.push(stored(next));
            times.push(&line.time);
            if count + 1 >= MAX_BUILD_LOG_LINES || bytes + size > MAX_BUILD_LOG_BYTES {
                streams.push("build");
                texts.push(BUILD_LOG_CUT);
                cut = true;
            } else {
                streams.push(&line.stream);
                texts.push(&line.text);
                bytes += size;
            }
            count += 1;
        }
        if !seqs.is_empty() {
            tx.execute(
                "INSERT INTO code_build_logs (namespace, kind, name, seq, time, stream, text)
                 SELECT $1, $2, $3, seq, time, stream, text
                 FROM UNNEST($4::bigint[], $5::text[], $6::text[], $7::text[])
                     AS l (seq, time, stream, text)",
                &[&namespace, &kind, &name, &seqs, &times, &streams, &texts],
            )
            .await
            .map_err(db)?;
        }
        tx.execute(
            "UPDATE code_records SET log_lines = $4, log_bytes = $5, log_cut = $6
             WHERE namespace = $1 AND kind = $2 AND name = $3",
            &[
                &namespace,
                &kind,
                &name,
                &stored(count),
                &stored(bytes),
                &i64::from(cut),
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<BuildLogLine>> {
        let c = self.client().await?;
        c.query(
            "SELECT seq, time, stream, text FROM code_build_logs
             WHERE namespace = $1 AND kind = $2 AND name = $3 AND seq > $4
             ORDER BY seq LIMIT $5",
            &[
                &namespace,
                &kind.as_str(),
                &name,
                &stored(after),
                &i64::from(limit),
            ],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(BuildLogLine {
                seq: counted(r.try_get(0).map_err(db)?),
                time: r.try_get(1).map_err(db)?,
                stream: r.try_get(2).map_err(db)?,
                text: r.try_get(3).map_err(db)?,
            })
        })
        .collect()
    }

    async fn build_cache(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        let c = self.client().await?;
        c.query_opt(
            "SELECT digest FROM code_build_cache WHERE namespace = $1 AND key = $2",
            &[&namespace, &key],
        )
        .await
        .map_err(db)?
        .map(|r| r.try_get(0).map_err(db))
        .transpose()
    }

    async fn put_build_cache(
        &self,
        namespace: &str,
        key: &str,
        digest: &str,
        now: &str,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO code_build_cache (namespace, key, digest, created)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (namespace, key) DO UPDATE SET digest = excluded.digest,
                 created = excluded.created",
            &[&namespace, &key, &digest, &now],
        )
        .await
        .map_err(db)?;
        Ok(())
    }
}
