//! RFC 3339 timestamps from seconds since the epoch (for `created`), without a date library; and
//! durations as flags take them (`30m`, `1h30m`, `90s`, `500ms`).

use std::time::Duration;

/// `1970-01-01T00:00:00Z` style, UTC.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{text:?} is not a duration: it is empty (e.g. 30m, 1h30m, 90s)")]
    Empty { text: String },
    #[error("{text:?} is not a duration: {part:?} has no unit (h, m, s or ms; e.g. 30m, 1h30m, 90s)")]
    NoUnit { text: String, part: String },
    #[error("{text:?} is not a duration: unknown unit {unit:?} (h, m, s or ms; e.g. 30m, 1h30m, 90s)")]
    BadUnit { text: String, unit: String },
    #[error("{text:?} is not a duration: {part:?} does not start with a whole number (e.g. 30m, 1h30m, 90s)")]
    NoNumber { text: String, part: String },
    #[error("{text:?} is not a duration: it must be longer than zero")]
    Zero { text: String },
    #[error("{text:?} is not a duration: it is too long")]
    TooLong { text: String },
}

/// Parses `30m`, `1h30m`, `90s`, `500ms`: whole numbers, each with a unit (h, m, s, ms), summed.
/// Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty { text: text.into() });
    }
    let mut total_ms: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let after = &rest[digits..];
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let (number, unit) = (&rest[..digits], &after[..unit_len]);
        let part = &rest[..digits + unit_len];
        if number.is_empty() {
            return Err(DurationError::NoNumber { text: text.into(), part: part.into() });
        }
        let per_unit: u64 = match unit {
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            "" => return Err(DurationError::NoUnit { text: text.into(), part: part.into() }),
            other => return Err(DurationError::BadUnit { text: text.into(), unit: other.into() }),
        };
        let too_long = || DurationError::TooLong { text: text.into() };
        let n: u64 = number.parse().map_err(|_| too_long())?;
        total_ms = n.checked_mul(per_unit).and_then(|ms| ms.checked_add(total_ms)).ok_or_else(too_long)?;
        rest = &after[unit_len..];
    }
    if total_ms == 0 {
        return Err(DurationError::Zero { text: text.into() });
    }
    Ok(Duration::from_millis(total_ms))
}

/// A duration as [`parse_duration`] reads it: `1h30m`, `90ms`, `45s` (whole milliseconds).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 || !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn durations_parse_with_units_and_sum() {
        let ok = |t: &str| parse_duration(t).unwrap();
        assert_eq!(ok("30m"), Duration::from_secs(1800));
        assert_eq!(ok("60m"), Duration::from_secs(3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok(" 90s "), Duration::from_secs(90));
        assert_eq!(ok("1s500ms"), Duration::from_millis(1500));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        let err = |t: &str| parse_duration(t).unwrap_err();
        assert!(matches!(err(""), DurationError::Empty { .. }));
        assert_eq!(err("30"), DurationError::NoUnit { text: "30".into(), part: "30".into() });
        assert_eq!(err("1h30"), DurationError::NoUnit { text: "1h30".into(), part: "30".into() });
        assert_eq!(err("3d"), DurationError::BadUnit { text: "3d".into(), unit: "d".into() });
        assert!(matches!(err("m"), DurationError::NoNumber { .. }));
        assert!(matches!(err("-5m"), DurationError::NoNumber { .. }));
        assert!(matches!(err("1.5h"), DurationError::BadUnit { .. }));
        assert!(matches!(err("0s"), DurationError::Zero { .. }));
        assert!(matches!(err("99999999999999999999h"), DurationError::TooLong { .. }));
        assert!(matches!(err("9999999999999999h"), DurationError::TooLong { .. }));
        let msg = err("3d").to_string();
        assert!(msg.contains("\"3d\"") && msg.contains("30m"), "{msg}");
    }

    #[test]
    fn durations_format_as_they_parse() {
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_secs(3 * 3600 + 61)), "3h1m1s");
        assert_eq!(format_duration(Duration::from_secs(100 * 3600)), "100h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        for t in ["30m", "1h30m", "90s", "1500ms", "25h"] {
            let d = parse_duration(t).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{t}");
        }
    }
}
