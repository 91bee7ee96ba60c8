//! Cron schedules of `start: {type: scheduled, cron: "…"}` flows, with the `croner` crate.
//!
//! Five fields (minute precision, as Direktiv writes them) or six with seconds first. Times
//! are UTC milliseconds since the Unix epoch, as the store keeps them.

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::error::ScheduleError;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    cron: Cron,
}

impl CronSchedule {
    /// Reads a cron expression of 5 fields, or 6 with seconds first; one that never fires
    /// (`0 0 30 2 *`) is refused too.
    pub fn parse(expr: &str) -> Result<CronSchedule, ScheduleError> {
        let error = |reason: String| ScheduleError {
            expr: expr.to_string(),
            reason,
        };
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(error(format!("it has {fields} fields")));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expr).map_err(|e| error(e.to_string()))?;
        let schedule = CronSchedule {
            expr: expr.to_string(),
            cron,
        };
        // A pattern such as "0 0 30 2 *" parses but never fires.
        if schedule.next_after(Utc::now().timestamp_millis()).is_none() {
            return Err(error("it never fires".into()));
        }
        Ok(schedule)
    }

    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first firing time strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after: DateTime<Utc> = Utc.timestamp_millis_opt(after_ms).single()?;
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The slot to fire now: the latest firing time in (`last_fired_ms`, `now_ms`], if any.
    /// Slots missed while the server was down collapse into this one, so a restart fires a
    /// schedule at most once for everything it missed, and never a slot it already fired.
    pub fn due(&self, last_fired_ms: i64, now_ms: i64) -> Option<i64> {
        let first = self.next_after(last_fired_ms)?;
        if first > now_ms {
            return None;
        }
        let now: DateTime<Utc> = Utc.timestamp_millis_opt(now_ms).single()?;
        let latest = self
            .cron
            .find_previous_occurrence(&now, true)
            .ok()
            .map(|t| t.timestamp_millis())
            .unwrap_or(first);
        Some(latest.max(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn five_and_six_fields() {
        let every_5_min = CronSchedule::parse("*/5 * * * *").unwrap();
        assert_eq!(every_5_min.next_after(0), Some(5 * MINUTE));
        assert_eq!(every_5_min.next_after(5 * MINUTE), Some(10 * MINUTE));
        let every_second = CronSchedule::parse("* * * * * *").unwrap();
        assert_eq!(every_second.next_after(1_500), Some(2_000));
    }

    #[test]
    fn bad_expressions_are_explained() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * * *",
            "a b c d e",
            "0 0 30 2 *",
        ] {
            let err = CronSchedule::parse(bad).unwrap_err();
            assert_eq!(err.expr, bad);
            let text = err.to_string();
            assert!(text.contains("use 5 fields"), "{text}");
        }
    }

    #[test]
    fn due_fires_the_latest_missed_slot_once() {
        let every_min = CronSchedule::parse("* * * * *").unwrap();
        assert_eq!(every_min.due(0, 30_000), None);
        assert_eq!(every_min.due(0, MINUTE), Some(MINUTE));
        // Down for ten minutes: one firing, for the latest slot.
        assert_eq!(every_min.due(MINUTE, 11 * MINUTE + 5), Some(11 * MINUTE));
        // That slot fired: nothing more until the next one.
        assert_eq!(every_min.due(11 * MINUTE, 11 * MINUTE + 59_000), None);
    }
}
