//! The allowed range of the numbers requests carry (durations, counts, sizes), and
//! deserializers for them that never panic.
//!
//! Deserializing is total: a value of the wrong kind (negative, fractional, not a number) is
//! an error that says what fits, and a value too large to represent saturates to the type's
//! maximum, so that the range check that follows ([`DurationRange::check`] and friends)
//! refuses it with a message naming the field and its range. Stored specs are read with the
//! same deserializers, so a spec stored by an older version always loads; only a deploy checks
//! the ranges.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// The allowed range of one numeric field.
#[derive(Debug, Clone, Copy)]
pub struct Range<T: 'static> {
    /// The field as the request names it, e.g. `scale.max`, for messages.
    pub field: &'static str,
    /// The smallest value allowed.
    pub min: T,
    /// The largest value allowed.
    pub max: T,
    /// "a duration", "a whole number", "a size".
    what: &'static str,
    show: fn(T) -> String,
}

/// Durations (timeouts).
pub type DurationRange = Range<Duration>;
/// Counts (instances, calls, list lengths).
pub type CountRange = Range<u64>;
/// Sizes in bytes.
pub type SizeRange = Range<u64>;

impl Range<Duration> {
    /// A range of durations for `field`, shown as durations in messages.
    pub const fn duration(field: &'static str, min: Duration, max: Duration) -> Self {
        Range {
            field,
            min,
            max,
            what: "a duration",
            show: show_duration,
        }
    }
}

impl Range<u64> {
    /// A range of counts for `field`, shown as whole numbers in messages.
    pub const fn count(field: &'static str, min: u64, max: u64) -> Self {
        Range {
            field,
            min,
            max,
            what: "a whole number",
            show: show_count,
        }
    }

    /// A range of byte sizes for `field`, shown as sizes in messages.
    pub const fn size(field: &'static str, min: u64, max: u64) -> Self {
        Range {
            field,
            min,
            max,
            what: "a size",
            show: show_size,
        }
    }
}

impl<T: PartialOrd + Copy> Range<T> {
    /// `Ok` when `value` is in the range, else a sentence naming the field and the range.
    pub fn check(&self, value: T) -> Result<(), String> {
        if value >= self.min && value <= self.max {
            return Ok(());
        }
        let got = if value > self.max {
            format!("more than {}", (self.show)(self.max))
        } else {
            (self.show)(value)
        };
        Err(format!(
            "`{}` must be {} from {} to {} (got {got})",
            self.field,
            self.what,
            (self.show)(self.min),
            (self.show)(self.max)
        ))
    }
}

fn show_count(n: u64) -> String {
    n.to_string()
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A function's per-call `timeout`.
pub const TIMEOUT: DurationRange = Range::duration(
    "timeout",
    Duration::from_millis(1),
    Duration::from_secs(24 * 3600),
);
/// How long an idle instance above `scale.min` is kept.
pub const IDLE_TIMEOUT: DurationRange = Range::duration(
    "scale.idle_timeout",
    Duration::from_secs(1),
    Duration::from_secs(30 * 24 * 3600),
);
/// A function's `scale.min`: instances kept warm.
pub const SCALE_MIN: CountRange = Range::count("scale.min", 0, 100);
/// A function's `scale.max`: instances at most.
pub const SCALE_MAX: CountRange = Range::count("scale.max", 1, 100);
/// A function's `scale.concurrency`: calls one instance takes at once.
pub const CONCURRENCY: CountRange = Range::count("scale.concurrency", 1, 1000);
/// The file contract's `/direktiv-data` bound.
pub const DISK: SizeRange = Range::size("disk", 64 * KIB, 64 * GIB);
/// `?limit=` of the invocation and instance lists.
pub const LIST_LIMIT: CountRange = Range::count("limit", 1, 10_000);
/// `?limit=` of the event list.
pub const EVENT_LIST_LIMIT: CountRange = Range::count("limit", 1, 1000);
/// A duration for messages: "24h", "90m", "30s", "500ms".
pub fn show_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs, d.subsec_nanos()) {
        (0, _) => humantime::format_duration(d).to_string(),
        (s, 0) if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        (s, 0) if s.is_multiple_of(60) => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A size for messages: "64KiB", "64GiB", "1234 bytes".
pub fn show_size(bytes: u64) -> String {
    for (unit, factor) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes} bytes")
}

/// Reads a duration written as a number of seconds or text like "30s"; never panics (a value
/// too large to represent becomes `Duration::MAX`).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// Parses "30s", "1m30s", "500ms" or "12" (seconds); a value too large to represent is
/// `Duration::MAX`.
pub fn parse_duration_saturating(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text
            .parse::<u64>()
            .map(Duration::from_secs)
            .unwrap_or(Duration::MAX));
    }
    match humantime::parse_duration(text) {
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => Ok(Duration::MAX),
        Err(e) => Err(format!(
            "'{text}' is not a duration ({e}); write it like \"30s\", \"5m\" or \"500ms\""
        )),
    }
}

fn seconds(s: f64) -> Option<Duration> {
    if s.is_nan() || s < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
}

struct DurationVisitor;

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration: a number of seconds (0 or more) or text like \"30s\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("{v} is negative; a duration is 0 or more seconds")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        seconds(v).ok_or_else(|| {
            E::custom(format!(
                "{v} is not a duration; use 0 or more seconds or text like \"30s\""
            ))
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration_saturating(v).map_err(E::custom)
    }
}

/// Reads a count (a whole number, 0 or more); a value above `u32::MAX` becomes `u32::MAX`.
pub fn count_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_any(CountVisitor)
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number, 0 or more")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "{v} is negative; it must be a whole number, 0 or more"
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u32, E> {
        if v.is_nan() || v < 0.0 || v.fract() != 0.0 {
            return Err(E::custom(format!("{v} is not a whole number, 0 or more")));
        }
        // `as` saturates: 1e300 becomes u32::MAX.
        Ok(v as u32)
    }
}

/// Reads a size: a number of bytes or text like "64MiB"; a number too large to represent
/// becomes `u64::MAX`.
pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(SizeVisitor)
}

struct SizeVisitor;

impl<'de> Visitor<'de> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size: a number of bytes or text like \"64MiB\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative; a size is 0 or more bytes")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.is_nan() || v < 0.0 || v.fract() != 0.0 {
            return Err(E::custom(format!(
                "{v} is not a size; use a whole number of bytes or text like \"64MiB\""
            )));
        }
        Ok(v as u64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_size(v).map_err(E::custom)
    }
}

/// Parses "64MiB", "64M", "512k", "1GiB" or "1048576" (binary units either way).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("'{text}' is not a size; write it like \"64MiB\" or a number of bytes")
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit '{other}' in '{text}'; use KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "duration")]
        d: Duration,
        #[serde(deserialize_with = "count_u32")]
        c: u32,
        #[serde(deserialize_with = "size")]
        s: u64,
    }

    fn probe(d: &str, c: &str, s: &str) -> Result<Probe, String> {
        let text = format!(r#"{{"d":{d},"c":{c},"s":{s}}}"#);
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn huge_values_saturate_and_the_check_names_field_and_range() {
        let p = probe("1e308", "1e20", "1e30").unwrap();
        assert_eq!(p.d, Duration::MAX);
        assert_eq!(p.c, u32::MAX);
        assert_eq!(p.s, u64::MAX);
        let err = TIMEOUT.check(p.d).unwrap_err();
        assert_eq!(
            err,
            "`timeout` must be a duration from 1ms to 24h (got more than 24h)"
        );
        let err = SCALE_MAX.check(p.c.into()).unwrap_err();
        assert_eq!(
            err,
            "`scale.max` must be a whole number from 1 to 100 (got more than 100)"
        );
        let err = DISK.check(p.s).unwrap_err();
        assert_eq!(
            err,
            "`disk` must be a size from 64KiB to 64GiB (got more than 64GiB)"
        );
        assert_eq!(
            probe(r#""99999999999999999999y""#, "0", "0").unwrap().d,
            Duration::MAX
        );
        assert_eq!(
            probe(r#""99999999999999999999999""#, "0", "0").unwrap().d,
            Duration::MAX
        );
    }

    #[test]
    fn wrong_kinds_are_errors_that_say_what_fits() {
        assert!(probe("-1", "0", "0").unwrap_err().contains("negative"));
        assert!(probe("0", "2.5", "0").unwrap_err().contains("whole number"));
        assert!(probe("0", "-3", "0").unwrap_err().contains("negative"));
        assert!(probe("0", "0", "-1").unwrap_err().contains("negative"));
        assert!(probe(r#""soon""#, "0", "0")
            .unwrap_err()
            .contains("not a duration"));
        assert!(probe("0", r#""many""#, "0")
            .unwrap_err()
            .contains("whole number"));
        let p = probe(r#""1m30s""#, "7", r#""2MiB""#).unwrap();
        assert_eq!((p.d, p.c, p.s), (Duration::from_secs(90), 7, 2 * MIB));
    }

    proptest! {
        /// Any number at all deserializes without a panic; a finite non-negative one becomes
        /// a duration (saturated when huge), and the range check agrees with the range.
        #[test]
        fn any_number_is_a_duration_or_an_error(v in proptest::num::f64::ANY) {
            let text = serde_json::to_string(&v).unwrap();
            match probe(&text, "0", "0") {
                Ok(p) => {
                    prop_assert!(v >= 0.0);
                    let ok = TIMEOUT.check(p.d).is_ok();
                    prop_assert_eq!(ok, p.d >= TIMEOUT.min && p.d <= TIMEOUT.max);
                }
                Err(_) => prop_assert!(v.is_nan() || v < 0.0 || v.is_infinite()),
            }
        }

        /// Any text deserializes as a duration or an error, never a panic.
        #[test]
        fn any_text_is_a_duration_or_an_error(text in ".{0,40}") {
            let _ = parse_duration_saturating(&text);
            let _ = parse_size(&text);
        }

        #[test]
        fn any_integer_is_a_count_or_an_error(v in any::<i128>()) {
            match probe("0", &v.to_string(), "0") {
                Ok(p) => {
                    prop_assert!(v >= 0);
                    prop_assert_eq!(u128::from(p.c), (v as u128).min(u128::from(u32::MAX)));
                    let ok = SCALE_MAX.check(p.c.into()).is_ok();
                    prop_assert_eq!(ok, (1..=100).contains(&v));
                }
                Err(e) => prop_assert!(v < 0, "{}", e),
            }
        }

        #[test]
        fn sizes_in_range_pass_and_others_name_the_range(v in any::<u64>()) {
            match DISK.check(v) {
                Ok(()) => prop_assert!((DISK.min..=DISK.max).contains(&v)),
                Err(e) => {
                    prop_assert!(e.contains("`disk`") && e.contains("64KiB") && e.contains("64GiB"));
                }
            }
        }
    }
}
