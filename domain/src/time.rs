//! Timestamps as RFC 3339 text, the form stored and published.

use std::time::{SystemTime, UNIX_EPOCH};

/// `at` as RFC 3339 UTC with millisecond precision (`2026-11-24T05:20:55.123Z`); a time
/// before 1970 reads as the epoch.
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, in_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        since.subsec_millis()
    )
}

/// Milliseconds since the epoch (0 before it).
pub fn millis_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The instant of a timestamp in the form [`rfc3339`] writes (`2026-11-24T05:20:55.123Z`),
/// in milliseconds since the epoch; `None` for any other text.
pub fn parse_rfc3339_millis(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 24 || &b[4..5] != b"-" || &b[7..8] != b"-" || &b[10..11] != b"T" {
        return None;
    }
    if &b[13..14] != b":" || &b[16..17] != b":" || &b[19..20] != b"." || &b[23..24] != b"Z" {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second, millis) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis)
}

/// Days from 1970-01-01 to a proleptic Gregorian date on or after it (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::{millis_of, parse_rfc3339_millis, rfc3339};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_exact_instants() {
        // Expected values from Python's datetime, independently of this code.
        for (millis, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_497_655_123, "2026-11-24T05:20:55.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
        ] {
            let at = UNIX_EPOCH + Duration::from_millis(millis);
            assert_eq!(rfc3339(at), text);
            assert_eq!(parse_rfc3339_millis(text), Some(millis), "{text}");
            assert_eq!(millis_of(at), millis);
        }
        for bad in [
            "",
            "2026-11-24T05:20:55Z",
            "2026-11-24 05:20:55.123Z",
            "2026-13-24T05:20:55.123Z",
            "2026-11-24T24:20:55.123Z",
            "+026-11-24T05:20:55.123Z",
            "1969-12-31T23:59:59.999Z",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad:?}");
        }
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
