//! Timestamps as the API and the store write them (RFC 3339, UTC, milliseconds).

use time::OffsetDateTime;

/// Now, in RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// `t` in RFC 3339, UTC, always with three digits of milliseconds (`…:05.100Z`), so that the
/// text order of stored times is their time order (leaving out trailing zeros would sort
/// `…:05.1Z` after `…:05.105Z`).
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_always_have_three_digits_of_milliseconds_so_text_order_is_time_order() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.1 UTC);
        assert_eq!(format_rfc3339(t), "2026-01-02T03:04:05.100Z");
        let later = t + time::Duration::milliseconds(5);
        assert!(format_rfc3339(t) < format_rfc3339(later));
        let elsewhere = time::macros::datetime!(2026-01-02 03:04:06 +02:00);
        assert_eq!(format_rfc3339(elsewhere), "2026-01-02T01:04:06.000Z");
    }
}
