//! Timestamps as the API and the store write them (RFC 3339, UTC, milliseconds).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, in RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// `t` in RFC 3339 (UTC, cut to milliseconds); its Unix seconds if it cannot be formatted.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The RFC 3339 time `after` from now.
pub fn deadline_rfc3339(after: std::time::Duration) -> String {
    format_rfc3339(OffsetDateTime::now_utc() + after)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Now, in milliseconds since the Unix epoch, as the store's events and schedules count time.
pub fn store_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}
