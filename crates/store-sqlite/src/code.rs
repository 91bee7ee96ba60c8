//! Functions from code: the records of base images, image builds and code functions, their
//! bounded build logs and the build cache (see `faasbox_store::code`).

use rusqlite::{params, OptionalExtension, Row};

use faasbox_store::{
    BuildLogLine, CodeKind, CodeRecord, CodeStatus, NewBuildLogLine, Result, StoreError,
    BUILD_LOG_CUT, MAX_BUILD_LOG_BYTES, MAX_BUILD_LOG_LINES,
};

use crate::{namespace_exists, sql, SqliteStore};

const COLUMNS: &str = "namespace, kind, name, spec, status, reason, digest, created, modified";

fn record_from_row(r: &Row<'_>) -> rusqlite::Result<CodeRecord> {
    let kind: String = r.get(1)?;
    Ok(CodeRecord {
        namespace: r.get(0)?,
        kind: CodeKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown code record kind '{kind}'").into(),
            )
        })?,
        name: r.get(2)?,
        spec: r.get(3)?,
        status: r.get(4)?,
        reason: r.get(5)?,
        digest: r.get(6)?,
        created: r.get(7)?,
        modified: r.get(8)?,
    })
}

impl SqliteStore {
    /// See `faasbox_store::CodeStore::put_code`.
    pub fn put_code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
        status: &str,
        now: &str,
    ) -> Result<CodeRecord> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            if !namespace_exists(&tx, namespace)? {
                return Err(StoreError::NoNamespace(namespace.to_string()).into());
            }
            let kind = kind.as_str();
            tx.execute(
                "INSERT INTO code_records (namespace, kind, name, spec, status, reason, digest,
                     created, modified)
                 VALUES (?1, ?2, ?3, ?4, ?5, '', NULL, ?6, ?6)
                 ON CONFLICT (namespace, kind, name) DO UPDATE SET spec = excluded.spec,
                     status = excluded.status, reason = '', digest = NULL,
                     modified = excluded.modified, log_lines = 0, log_bytes = 0, log_cut = 0",
                params![namespace, kind, name, spec, status, now],
            )?;
            tx.execute(
                "DELETE FROM code_build_logs WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                params![namespace, kind, name],
            )?;
            let record = tx.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM code_records
                     WHERE namespace = ?1 AND kind = ?2 AND name = ?3"
                ),
                params![namespace, kind, name],
                record_from_row,
            )?;
            tx.commit()?;
            Ok(record)
        })
    }

    /// See `faasbox_store::CodeStore::set_code_status`.
    pub fn set_code_status(
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
        sql(|| {
            let changed = self.conn().execute(
                "UPDATE code_records SET status = ?4, reason = ?5, digest = ?6, modified = ?7
                 WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                params![namespace, kind.as_str(), name, status, reason, digest, now],
            )?;
            Ok(changed > 0)
        })
    }

    /// See `faasbox_store::CodeStore::set_code_spec`.
    pub fn set_code_spec(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
    ) -> Result<bool> {
        sql(|| {
            let changed = self.conn().execute(
                "UPDATE code_records SET spec = ?4
                 WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                params![namespace, kind.as_str(), name, spec],
            )?;
            Ok(changed > 0)
        })
    }

    /// See `faasbox_store::CodeStore::code`.
    pub fn code(&self, namespace: &str, kind: CodeKind, name: &str) -> Result<Option<CodeRecord>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM code_records
                         WHERE namespace = ?1 AND kind = ?2 AND name = ?3"
                    ),
                    params![namespace, kind.as_str(), name],
                    record_from_row,
                )
                .optional()?)
        })
    }

    /// See `faasbox_store::CodeStore::codes`.
    pub fn codes(&self, namespace: &str, kind: CodeKind) -> Result<Vec<CodeRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM code_records WHERE namespace = ?1 AND kind = ?2
                 ORDER BY name"
            ))?;
            let rows = stmt.query_map(params![namespace, kind.as_str()], record_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// See `faasbox_store::CodeStore::codes_with_status`.
    pub fn codes_with_status(&self, statuses: &[&str]) -> Result<Vec<CodeRecord>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM code_records WHERE status = ?1"
            ))?;
            let mut found = Vec::new();
            for status in statuses {
                let rows = stmt.query_map([status], record_from_row)?;
                found.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
            }
            found.sort_by(|a: &CodeRecord, b: &CodeRecord| {
                (&a.namespace, a.kind.as_str(), &a.name).cmp(&(
                    &b.namespace,
                    b.kind.as_str(),
                    &b.name,
                ))
            });
            Ok(found)
        })
    }

    /// See `faasbox_store::CodeStore::delete_code`.
    pub fn delete_code(&self, namespace: &str, kind: CodeKind, name: &str) -> Result<bool> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let kind = kind.as_str();
            tx.execute(
                "DELETE FROM code_build_logs WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                params![namespace, kind, name],
            )?;
            let deleted = tx.execute(
                "DELETE FROM code_records WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                params![namespace, kind, name],
            )?;
            tx.commit()?;
            Ok(deleted > 0)
        })
    }

    /// See `faasbox_store::CodeStore::append_build_log`.
    pub fn append_build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        lines: &[NewBuildLogLine],
    ) -> Result<()> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let kind = kind.as_str();
            let counts: Option<(u64, u64, bool)> = tx
                .query_row(
                    "SELECT log_lines, log_bytes, log_cut FROM code_records
                     WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                    params![namespace, kind, name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((mut count, mut bytes, mut cut)) = counts else {
                return Ok(());
            };
            let mut next: u64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM code_build_logs
                 WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                params![namespace, kind, name],
                |r| r.get(0),
            )?;
            {
                let mut insert = tx.prepare(
                    "INSERT INTO code_build_logs (namespace, kind, name, seq, time, stream, text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for line in lines {
                    if cut {
                        break;
                    }
                    let size = line.text.len() as u64;
                    next += 1;
                    if count + 1 >= MAX_BUILD_LOG_LINES || bytes + size > MAX_BUILD_LOG_BYTES {
                        insert.execute(params![
                            namespace,
                            kind,
                            name,
                            next,
                            line.time,
                            "build",
                            BUILD_LOG_CUT
                        ])?;
                        cut = true;
                    } else {
                        insert.execute(params![
                            namespace,
                            kind,
                            name,
                            next,
                            line.time,
                            line.stream,
                            line.text
                        ])?;
                        bytes += size;
                    }
                    count += 1;
                }
            }
            tx.execute(
                "UPDATE code_records SET log_lines = ?4, log_bytes = ?5, log_cut = ?6
                 WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                params![namespace, kind, name, count, bytes, cut],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// See `faasbox_store::CodeStore::build_log`.
    pub fn build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<BuildLogLine>> {
        sql(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT seq, time, stream, text FROM code_build_logs
                 WHERE namespace = ?1 AND kind = ?2 AND name = ?3 AND seq > ?4
                 ORDER BY seq LIMIT ?5",
            )?;
            let rows =
                stmt.query_map(params![namespace, kind.as_str(), name, after, limit], |r| {
                    Ok(BuildLogLine {
                        seq: r.get(0)?,
                        time: r.get(1)?,
                        stream: r.get(2)?,
                        text: r.get(3)?,
                    })
                })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// See `faasbox_store::CodeStore::build_cache`.
    pub fn build_cache(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        sql(|| {
            Ok(self
                .conn()
                .query_row(
                    "SELECT digest FROM code_build_cache WHERE namespace = ?1 AND key = ?2",
                    params![namespace, key],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// See `faasbox_store::CodeStore::put_build_cache`.
    pub fn put_build_cache(
        &self,
        namespace: &str,
        key: &str,
        digest: &str,
        now: &str,
    ) -> Result<()> {
        sql(|| {
            self.conn().execute(
                "INSERT INTO code_build_cache (namespace, key, digest, created)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace, key) DO UPDATE SET digest = excluded.digest,
                     created = excluded.created",
                params![namespace, key, digest, now],
            )?;
            Ok(())
        })
    }
}
