//! What a run's record keeps of a call's result: the class of its error and its input or
//! output, bounded; and the times it is stored with.

use time::OffsetDateTime;

use crate::failure::{Failure, FailureKind};
use crate::mask::Masker;

/// How much of a blocking call's input and output its record keeps (its caller got the
/// output already): more is kept cut (see [`kept`]). An asynchronous run keeps up to the
/// server's largest input, since its output is fetched from the record.
pub const SYNC_RECORD_BYTES: usize = 1024 * 1024;

/// How far past the kept head a cut text is masked, so that a secret value across the cut
/// is masked whole rather than left in part.
const MASK_MARGIN: usize = 64 * 1024;

/// `t` as a run's times are stored (`clock::format_rfc3339`: text order is time order).
pub fn timestamp(t: OffsetDateTime) -> String {
    crate::clock::format_rfc3339(t)
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
/// larger than `max`, a JSON object that says so and holds its start
/// (`{"faasbox.truncated": {"bytes": N, "head": "…"}}`): a record is never refused for it.
pub fn kept_json(max: usize, text: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    truncated(text.len(), head_of(text, max / 2))
}

/// `raw` (JSON) as a record keeps it: secret values masked and, over `max` bytes, cut as
/// [`kept_json`] cuts. Only what is kept is copied and masked, so a large body costs the
/// record about `max` bytes, not its size.
pub fn kept(max: usize, masker: &Masker, raw: &[u8]) -> String {
    if raw.len() <= max {
        return masker.mask(&String::from_utf8_lossy(raw));
    }
    let window = (max / 2 + MASK_MARGIN).min(raw.len());
    let head = masker.mask(&String::from_utf8_lossy(&raw[..window]));
    truncated(raw.len(), head_of(&head, max / 2))
}

/// At most `keep` bytes of the start of `text`, cut at a character boundary.
fn head_of(text: &str, keep: usize) -> &str {
    let mut end = keep.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn truncated(bytes: usize, head: &str) -> String {
    serde_json::json!({"faasbox.truncated": {"bytes": bytes, "head": head}}).to_string()
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
    fn a_large_body_is_masked_and_cut_without_copying_all_of_it() {
        let masker = Masker::new([b"hunter2".as_slice()]);
        assert_eq!(
            kept(100, &masker, br#"{"p":"hunter2"}"#),
            r#"{"p":"***"}"#.replace("***", &masker.mask("hunter2"))
        );
        let big = format!(r#"{{"p":"hunter2","pad":"{}"}}"#, "x".repeat(1000));
        let kept: serde_json::Value =
            serde_json::from_str(&kept(64, &masker, big.as_bytes())).unwrap();
        let cut = &kept["faasbox.truncated"];
        assert_eq!(cut["bytes"], serde_json::json!(big.len()));
        let head = cut["head"].as_str().unwrap();
        assert!(head.len() <= 32 && !head.contains("hunter2"), "{head}");
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
