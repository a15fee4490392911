//! Calendar arithmetic on Unix seconds (UTC), without a date library: enough to show and compare
//! dates the same way on the server, in the browser and in the client library.

/// The civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm: shift to a 400-year era starting on 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "2026-11-25 14:03 UTC".
pub fn format_utc(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// "2026-11-25T14:03:09Z", for `<time datetime>` and machine-readable output.
pub fn format_rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(format_utc(1_764_079_389), "2025-11-25 14:03 UTC");
        assert_eq!(format_rfc3339(1_764_079_389), "2025-11-25T14:03:09Z");
    }

    #[test]
    fn days_roll_over_in_order() {
        // Every day of four centuries maps to a strictly later civil date than the day before.
        let mut prev = civil_from_days(-50_000);
        for d in -49_999..100_000 {
            let cur = civil_from_days(d);
            assert!(cur > prev, "{d}: {cur:?} after {prev:?}");
            assert!((1..=12).contains(&cur.1) && (1..=31).contains(&cur.2));
            prev = cur;
        }
    }
}
