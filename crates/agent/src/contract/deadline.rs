//! A call's deadline (the `faasbox-deadline` header, RFC 3339) as the contracts use it: a timer
//! that stops the call's process, and milliseconds since the epoch (OpenWhisk's
//! `__OW_DEADLINE`).

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How far away "no deadline" is (a year): far enough, and safe to add to an `Instant`.
const FAR_AWAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// When a call must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: OffsetDateTime,
}

impl Deadline {
    /// Reads an RFC 3339 time; anything else means "a year from now" (the platform validated the
    /// header already, so that only happens for callers without a deadline).
    pub fn parse(text: &str) -> Deadline {
        let at = OffsetDateTime::parse(text, &Rfc3339)
            .unwrap_or_else(|_| OffsetDateTime::now_utc() + FAR_AWAY);
        Deadline { at }
    }

    /// No deadline at all (OpenWhisk's own `/run`: its invoker enforces the time limit).
    pub fn none() -> Deadline {
        Deadline {
            at: OffsetDateTime::now_utc() + FAR_AWAY,
        }
    }

    /// The moment as a Tokio timer instant (now, if it has passed already).
    pub fn instant(&self) -> tokio::time::Instant {
        let left = self.at - OffsetDateTime::now_utc();
        let left = Duration::try_from(left)
            .unwrap_or(Duration::ZERO)
            .min(FAR_AWAY);
        tokio::time::Instant::now() + left
    }

    /// Milliseconds since the Unix epoch.
    pub fn epoch_ms(&self) -> i128 {
        self.at.unix_timestamp_nanos() / 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339() {
        let deadline = Deadline::parse("2030-01-01T00:00:00Z");
        assert_eq!(deadline.epoch_ms(), 1_893_456_000_000);
        let deadline = Deadline::parse("2030-01-01T01:00:00.250+01:00");
        assert_eq!(deadline.epoch_ms(), 1_893_456_000_250);
    }

    #[tokio::test]
    async fn past_deadline_is_now_and_garbage_is_far() {
        let past = Deadline::parse("2001-01-01T00:00:00Z").instant();
        assert!(past <= tokio::time::Instant::now());
        let far = Deadline::parse("tomorrow").instant();
        assert!(far > tokio::time::Instant::now() + Duration::from_secs(300 * 24 * 3600));
    }
}
