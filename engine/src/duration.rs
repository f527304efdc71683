//! The one duration grammar of rinfra, for `customTimeouts` and for
//! `drift --every`.
//!
//! It is Go's `time.ParseDuration` (Pulumi's `customTimeouts` take Go
//! durations): a sequence of decimal numbers, each with a unit, such as
//! `30s`, `1.5h` or `1h30m`, with the units `ns`, `us` (or `µs`), `ms`, `s`,
//! `m` and `h`. rinfra adds one unit, `d` for 24 hours, because schedules
//! are written in days; Go has no day unit only because of daylight saving,
//! which a duration between two drift checks does not care about. A zero
//! duration is refused (a timeout of zero or a schedule of zero is a
//! mistake), and so is anything over [`MAX_DURATION`].

use std::time::Duration;

/// The longest duration [`parse_duration`] accepts: a year. Longer
/// intervals are almost certainly typos, and refusing them keeps every
/// later `Instant + Duration` far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text does not follow the grammar, or is zero.
    #[error("`{0}` is not a duration; write for example 30s, 15m, 1h or 1h30m")]
    Malformed(String),
    /// The text is a duration over [`MAX_DURATION`].
    #[error("duration is too long: `{0}`; the limit is 365d")]
    TooLong(String),
}

/// Parses a duration such as `30s`, `1.5h`, `1h30m`, `500ms` or `1d`, up to
/// [`MAX_DURATION`]. Every step is checked, so no input panics or wraps.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError::Malformed(text.to_string());
    let too_long = || DurationError::TooLong(text.to_string());
    let max = MAX_DURATION.as_nanos();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(n);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        rest = next;
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return Err(bad()),
        };
        // A whole part with more digits than a year in nanoseconds has is
        // too long whatever its unit; this also bounds the parse below.
        if whole.trim_start_matches('0').len() > 20 {
            return Err(too_long());
        }
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let mut part = whole.checked_mul(scale).ok_or_else(too_long)?;
        // Fraction digits past nanosecond precision change nothing.
        let mut place = scale;
        for d in frac.chars() {
            place /= 10;
            if place == 0 {
                break;
            }
            part += u128::from(d.to_digit(10).ok_or_else(bad)?) * place;
        }
        total = total.checked_add(part).filter(|t| *t <= max).ok_or_else(too_long)?;
    }
    if total == 0 {
        return Err(bad());
    }
    // `total` is at most a year in nanoseconds, which fits a u64.
    Ok(Duration::from_nanos(u64::try_from(total).map_err(|_| too_long())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them_plus_days() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "5", "m", "5 minutes", "10", "5x", "0s", ".s", "1..5s", "-1s"] {
            assert_eq!(parse_duration(bad), Err(DurationError::Malformed(bad.to_string())), "{bad}");
        }
    }

    #[test]
    fn a_duration_whose_parts_overflow_when_added_is_refused_without_panicking() {
        let e = parse_duration("18446744073709551615s1s").unwrap_err();
        assert!(e.to_string().contains("duration is too long"), "{e}");
    }

    #[test]
    fn a_duration_whose_hours_overflow_seconds_is_refused_instead_of_wrapping() {
        let e = parse_duration("5124095576030432h").unwrap_err();
        assert!(e.to_string().contains("duration is too long"), "{e}");
        let e = parse_duration("213503982334601d").unwrap_err();
        assert!(e.to_string().contains("duration is too long"), "{e}");
    }

    #[test]
    fn a_duration_with_more_digits_than_u64_holds_is_too_long_not_malformed() {
        let e = parse_duration("99999999999999999999999s").unwrap_err();
        assert!(e.to_string().contains("duration is too long"), "{e}");
        let e = parse_duration("999999999999999999999999999999999999999999ns").unwrap_err();
        assert!(e.to_string().contains("duration is too long"), "{e}");
    }

    #[test]
    fn a_duration_above_a_year_is_refused_and_a_year_is_accepted() {
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        assert!(parse_duration("365d1ms").unwrap_err().to_string().contains("duration is too long"));
        assert!(parse_duration("9000h").unwrap_err().to_string().contains("duration is too long"));
    }
}
