//! What a run's record keeps of a call's result: the class of its error and its input or
//! output, bounded; and the times it is stored with.

use time::OffsetDateTime;

use crate::failure::{Failure, FailureKind};

/// `t` as a run's times are stored: RFC 3339, UTC, always three digits of milliseconds, so
/// that the store's text order is time order (`clock::format_rfc3339` leaves out trailing
/// zeros: `…:31.1Z` sorted after `…:31.105Z`).
pub fn timestamp(t: OffsetDateTime) -> String {
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

/// Now, as [`timestamp`] writes it.
pub fn now() -> String {
    timestamp(OffsetDateTime::now_utc())
}

/// The class of a failed run's error: `InputError` (the input was refused: not JSON, the
/// input schema, a code handler's `InputError`, a missing service), `FunctionError` (the
/// function failed: its own error codes, crash, timeout, out of memory, the output schema,
/// a cancel) or `SystemError` (the platform).
pub fn error_type(e: &Failure) -> &'static str {
    match e.kind {
        _ if e.code == "InputError" => "InputError",
        FailureKind::Invalid => "InputError",
        FailureKind::FunctionFailed | FailureKind::FunctionTimeout | FailureKind::Cancelled => {
            "FunctionError"
        }
        FailureKind::Unavailable | FailureKind::Internal => "SystemError",
        _ if e.catchable.is_some() => "FunctionError",
        _ => "SystemError",
    }
}

/// A run's input or output as it is kept in its record: the JSON text itself, or, when it is
/// larger than the server's largest input, a JSON object that says so and holds its start
/// (`{"faasbox.truncated": {"bytes": N, "head": "…"}}`): a record is never refused for it.
pub fn kept_json(max: usize, text: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    // The head is cut at a character boundary, and leaves room for its escaping.
    let mut end = (max / 2).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({
        "faasbox.truncated": {"bytes": text.len(), "head": &text[..end]}
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::codes;

    #[test]
    fn timestamps_sort_as_text_in_time_order() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.1 UTC);
        assert_eq!(timestamp(t), "2026-01-02T03:04:05.100Z");
        let later = t + time::Duration::milliseconds(5);
        assert_eq!(timestamp(later), "2026-01-02T03:04:05.105Z");
        assert!(timestamp(t) < timestamp(later));
        let whole = time::macros::datetime!(2026-01-02 03:04:06 +02:00);
        assert_eq!(timestamp(whole), "2026-01-02T01:04:06.000Z");
    }

    #[test]
    fn a_text_over_the_bound_is_kept_cut_as_json_that_says_so() {
        assert_eq!(kept_json(10, r#"{"a":1}"#), r#"{"a":1}"#);
        let long = format!(r#"{{"s":"{}"}}"#, "é".repeat(20));
        let kept: serde_json::Value = serde_json::from_str(&kept_json(16, &long)).unwrap();
        let cut = &kept["faasbox.truncated"];
        assert_eq!(cut["bytes"], serde_json::json!(long.len()));
        let head = cut["head"].as_str().unwrap();
        assert!(long.starts_with(head) && head.len() <= 8, "{head}");
    }

    #[test]
    fn errors_are_classed_by_who_is_to_blame() {
        let schema_in = Failure::function(FailureKind::Invalid, "faasbox.schema.in", "x", false);
        assert_eq!(error_type(&schema_in), "InputError");
        let handler = Failure::function(FailureKind::FunctionFailed, "InputError", "x", true);
        assert_eq!(error_type(&handler), "InputError");
        let crash = Failure::function(
            FailureKind::FunctionFailed,
            codes::FUNCTION_CRASHED,
            "x",
            false,
        );
        assert_eq!(error_type(&crash), "FunctionError");
        let timeout = Failure::function(
            FailureKind::FunctionTimeout,
            codes::FUNCTION_TIMEOUT,
            "x",
            true,
        );
        assert_eq!(error_type(&timeout), "FunctionError");
        let busy = Failure::function(FailureKind::Unavailable, codes::QUEUE_FULL, "x", true);
        assert_eq!(error_type(&busy), "SystemError");
        assert_eq!(error_type(&Failure::internal("x")), "SystemError");
    }
}
