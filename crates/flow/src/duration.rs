//! ISO 8601 durations (`PT30S`, `P1DT2H`, `PT0.5S`), as Direktiv writes timeouts and delays.

use std::time::Duration;

/// Parses an ISO 8601 duration; `None` if it is not one. Years and months are not accepted
/// (their length depends on the calendar); weeks and days are.
pub fn parse(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut seconds = 0f64;
    seconds += units(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(time) = time {
        seconds += units(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// Sums `<number><unit>` pairs whose units appear in `allowed` in that order.
fn units(text: &str, allowed: &[(char, f64)]) -> Option<f64> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut next_unit = 0;
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' || c == ',' {
            number.push(if c == ',' { '.' } else { c });
            continue;
        }
        let index = allowed[next_unit..].iter().position(|(u, _)| *u == c)? + next_unit;
        let value: f64 = number.parse().ok()?;
        total += value * allowed[index].1;
        number.clear();
        next_unit = index + 1;
    }
    number.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("PT5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("PT1M30S"), Some(Duration::from_secs(90)));
        assert_eq!(parse("P1DT1H"), Some(Duration::from_secs(90_000)));
        assert_eq!(parse("PT0.5S"), Some(Duration::from_millis(500)));
        assert_eq!(parse("P2W"), Some(Duration::from_secs(1_209_600)));
        for bad in ["", "P", "PT", "5S", "PT5", "PTS", "PT5S5M", "P1Y", "PT5X"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
