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

#[cfg(test)]
mod tests {
    use faasbox_proto::LogStream;

    use super::*;
    use crate::SqliteStore as Store;
    use faasbox_store::InvocationEnd;

    fn line(text: &str) -> LogLine {
        LogLine {
            ts_ms: 1,
            stream: LogStream::Stdout,
            line: text.into(),
        }
    }

    fn call(store: &Store, id: &str, function: &str, started: &str, lines: &[&str]) {
        store
            .start_invocation(id, "demo", function, started)
            .unwrap();
        let end = InvocationEnd {
            status: "succeeded",
            ended: started,
            error_code: None,
            error_message: None,
        };
        let lines: Vec<LogLine> = lines.iter().map(|l| line(l)).collect();
        store.finish_invocation(id, &end, &lines).unwrap();
    }

    fn texts(logs: &FunctionLogs) -> Vec<&str> {
        logs.logs.iter().map(|l| l.line.line.as_str()).collect()
    }

    #[test]
    fn newest_lines_of_one_function_then_only_new_ones() {
        let store = Store::open_in_memory().unwrap();
        store.create_namespace("demo", "t0").unwrap();
        let empty = store.function_logs("demo", "f", None, 10).unwrap();
        assert!(empty.logs.is_empty());
        call(&store, "i1", "f", "t1", &["a1", "a2"]);
        call(&store, "i2", "other", "t2", &["x"]);
        call(&store, "i3", "f", "t3", &["b1"]);
        let all = store.function_logs("demo", "f", None, 10).unwrap();
        assert_eq!(texts(&all), ["a1", "a2", "b1"]);
        assert_eq!(all.logs[2].invocation, "i3");
        // The bound keeps the newest lines.
        let two = store.function_logs("demo", "f", None, 2).unwrap();
        assert_eq!(texts(&two), ["a2", "b1"]);
        // Following: nothing new, then only what came since.
        let none = store
            .function_logs("demo", "f", Some(all.next), 10)
            .unwrap();
        assert!(none.logs.is_empty());
        assert_eq!(none.next, all.next);
        call(&store, "i4", "other", "t4", &["y"]);
        call(&store, "i5", "f", "t5", &["c1", "c2", "c3"]);
        let new = store.function_logs("demo", "f", Some(all.next), 2).unwrap();
        assert_eq!(texts(&new), ["c1", "c2"]);
        let rest = store.function_logs("demo", "f", Some(new.next), 2).unwrap();
        assert_eq!(texts(&rest), ["c3"]);
        // Another namespace's function of the same name is not mixed in.
        store.create_namespace("other", "t0").unwrap();
        store.start_invocation("o1", "other", "f", "t6").unwrap();
        store.append_logs("o1", &[line("theirs")]).unwrap();
        let mine = store
            .function_logs("demo", "f", Some(rest.next), 10)
            .unwrap();
        assert!(mine.logs.is_empty(), "{:?}", mine.logs);
    }

    #[test]
    fn a_function_without_lines_starts_followers_at_the_newest_line() {
        let store = Store::open_in_memory().unwrap();
        store.create_namespace("demo", "t0").unwrap();
        call(&store, "i1", "other", "t1", &["x", "y"]);
        let empty = store.function_logs("demo", "f", None, 10).unwrap();
        assert!(empty.logs.is_empty());
        assert!(empty.next >= 2, "{}", empty.next);
        call(&store, "i2", "f", "t2", &["first"]);
        let new = store
            .function_logs("demo", "f", Some(empty.next), 10)
            .unwrap();
        assert_eq!(texts(&new), ["first"]);
    }
}
