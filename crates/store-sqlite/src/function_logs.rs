//! A function's recent log lines across its calls (`faasbox logs NS/FN`), with a cursor for
//! following new ones.
//!
//! Lines are stored when their call ends, so "new" means "stored since": the cursor is the
//! line's rowid in `invocation_logs`, which only grows while lines are added. (SQLite may hand
//! out a rowid again after the newest rows were deleted, which happens only when a namespace
//! is deleted; a follower of another namespace's function may then miss the lines stored
//! before its cursor catches up.) The work per query is bounded: only the function's newest
//! calls (as many as lines asked for) are looked at, through `invocations_by_function`.

use faasbox_proto::LogLine;
use rusqlite::params;

use faasbox_store::{FunctionLogLine, FunctionLogs, Result};

use crate::{sql, stream_from_str, SqliteStore};

impl SqliteStore {
    /// The lines of `namespace`'s function `function` (as its invocations name it), from its
    /// `limit` newest calls: without `after` the newest `limit` lines, with it the oldest
    /// `limit` lines stored after that cursor.
    pub fn function_logs(
        &self,
        namespace: &str,
        function: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<FunctionLogs> {
        sql(|| {
            let conn = self.conn();
            // The newest cursor now: where a follower starts when the function has no lines yet.
            let newest: i64 = conn.query_row(
                "SELECT COALESCE(MAX(rowid), 0) FROM invocation_logs",
                [],
                |r| r.get(0),
            )?;
            let calls = "SELECT id FROM invocations WHERE namespace = ?1 AND function = ?2
                     ORDER BY started DESC LIMIT ?3";
            let sql = match after {
                None => format!(
                    "SELECT rowid, invocation_id, ts_ms, stream, line FROM invocation_logs
                 WHERE invocation_id IN ({calls}) ORDER BY rowid DESC LIMIT ?3"
                ),
                Some(_) => format!(
                    "SELECT rowid, invocation_id, ts_ms, stream, line FROM invocation_logs
                 WHERE invocation_id IN ({calls}) AND rowid > ?4 ORDER BY rowid ASC LIMIT ?3"
                ),
            };
            let mut stmt = conn.prepare(&sql)?;
            let read = |r: &rusqlite::Row<'_>| {
                let stream: String = r.get(3)?;
                Ok(FunctionLogLine {
                    seq: r.get(0)?,
                    invocation: r.get(1)?,
                    line: LogLine {
                        ts_ms: r.get::<_, i64>(2)?.max(0) as u64,
                        stream: stream_from_str(&stream),
                        line: r.get(4)?,
                    },
                })
            };
            let mut logs: Vec<FunctionLogLine> = match after {
                None => stmt
                    .query_map(params![namespace, function, limit], read)?
                    .collect::<rusqlite::Result<_>>()?,
                Some(after) => stmt
                    .query_map(params![namespace, function, limit, after], read)?
                    .collect::<rusqlite::Result<_>>()?,
            };
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
        })
    }
}
