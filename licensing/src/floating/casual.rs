//! Casual usage (DSLS): how many minutes a named user used a casual key in each calendar month,
//! in UTC — from the 1st at 00:00 to the last day at 24:00, the same rule whatever the month's
//! length. Plain functions over the user's sessions (start, end) in Unix seconds: sessions that
//! overlap (two machines at once, a restart that took the seat again before the old one ended)
//! count once, a session across a month boundary is split between the months, and each month's
//! total counts every started minute. The metering (`history.rs`) feeds them the seats' spans.

use protocol::time::{civil_from_days, days_from_civil, days_in_month};
use std::collections::{BTreeMap, BTreeSet};

/// The largest monthly maximum: a 31-day month in minutes.
pub const MAX_MINUTES: i64 = 31 * 24 * 60;

/// A calendar month: (year, month 1–12).
pub type Month = (i64, u32);

/// The month an instant falls in (UTC).
pub fn month_of(unix_secs: i64) -> Month {
    let (year, month, _) = civil_from_days(unix_secs.div_euclid(86_400));
    (year, month)
}

/// The month's first instant and the next month's first instant.
pub fn month_bounds((year, month): Month) -> (i64, i64) {
    let start = days_from_civil(year, month, 1) * 86_400;
    let end = start + i64::from(days_in_month(year, month)) * 86_400;
    (start, end)
}

/// The month after `month`.
pub fn next_month((year, month): Month) -> Month {
    if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

/// Sessions merged where they overlap or touch, in order; empty or backwards ones dropped.
pub fn merged(sessions: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = sessions.iter().copied().filter(|(s, e)| e > s).collect();
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Seconds of use per month, the user's sessions merged first.
pub fn seconds_by_month(sessions: &[(i64, i64)]) -> BTreeMap<Month, i64> {
    let mut by_month = BTreeMap::new();
    for (start, end) in merged(sessions) {
        let mut from = start;
        while from < end {
            let month = month_of(from);
            let (_, month_end) = month_bounds(month);
            let to = end.min(month_end);
            *by_month.entry(month).or_insert(0) += to - from;
            from = to;
        }
    }
    by_month
}

/// Whole minutes of use per month: every started minute of the month's total counts.
pub fn minutes_by_month(sessions: &[(i64, i64)]) -> BTreeMap<Month, i64> {
    seconds_by_month(sessions)
        .into_iter()
        .map(|(month, secs)| (month, (secs + 59) / 60))
        .collect()
}

/// Whether `minutes` of a month go past a casual key's maximum (DSLS logs the excess; it does
/// not refuse the licence).
pub fn over_maximum(minutes: i64, maximum: i64) -> bool {
    minutes > maximum
}

/// A month as reports name it: `2026-02`.
pub fn month_text((year, month): Month) -> String {
    format!("{year:04}-{month:02}")
}

/// `2026-02` back into a month; `None` for anything else.
pub fn parse_month(text: &str) -> Option<Month> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let month: u32 = month.parse().ok()?;
    (1..=12).contains(&month).then_some((year, month))
}

/// The months whose report is due at `now`: every month that has ended since `first` (the
/// month the first casual key was enrolled) and has no report yet, oldest first. A month's
/// report falls due at 00:00 UTC on the 1st of the next; a server that was down then makes it
/// at its next start. At most the last `MAX_CATCH_UP` months (a server down for years does not
/// report a decade at once).
pub fn months_due(first: Month, now: i64, made: &BTreeSet<Month>) -> Vec<Month> {
    let current = month_of(now);
    let mut due = Vec::new();
    let mut month = first;
    while month < current {
        if !made.contains(&month) {
            due.push(month);
        }
        month = next_month(month);
    }
    let skip = due.len().saturating_sub(MAX_CATCH_UP);
    due.split_off(skip)
}

/// How many missed months a start catches up on.
pub const MAX_CATCH_UP: usize = 24;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(year: i64, month: u32, day: u32, hour: i64, minute: i64) -> i64 {
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60
    }

    #[test]
    fn months_run_from_the_first_to_the_last_day_whatever_their_length() {
        for ((year, month), days) in [
            ((2026, 2), 28),
            ((2028, 2), 29),
            ((2026, 4), 30),
            ((2026, 12), 31),
        ] {
            let (start, end) = month_bounds((year, month));
            assert_eq!(start, at(year, month, 1, 0, 0));
            assert_eq!((end - start) / 86_400, days);
            assert_eq!(month_of(start), (year, month));
            assert_eq!(month_of(end - 1), (year, month));
            assert_eq!(month_of(end), next_month((year, month)));
        }
        assert_eq!(next_month((2026, 12)), (2027, 1));
        assert_eq!(month_of(-1), (1969, 12));
    }

    #[test]
    fn a_session_across_midnight_of_the_last_day_is_split_between_the_months() {
        let night = (at(2026, 1, 31, 23, 30), at(2026, 2, 1, 0, 45));
        let minutes = minutes_by_month(&[night]);
        assert_eq!(minutes.get(&(2026, 1)), Some(&30));
        assert_eq!(minutes.get(&(2026, 2)), Some(&45));
        // Across a whole month and into the next year.
        let long = (at(2026, 11, 30, 12, 0), at(2027, 1, 1, 0, 1));
        let minutes = minutes_by_month(&[long]);
        assert_eq!(minutes.get(&(2026, 11)), Some(&(12 * 60)));
        assert_eq!(minutes.get(&(2026, 12)), Some(&(31 * 24 * 60)));
        assert_eq!(minutes.get(&(2027, 1)), Some(&1));
    }

    #[test]
    fn overlapping_sessions_of_one_user_count_once_and_started_minutes_count() {
        let day = |h0, m0, h1, m1| (at(2026, 3, 2, h0, m0), at(2026, 3, 2, h1, m1));
        // Two machines at once (9:00–10:00 and 9:30–11:00), a restart that took the seat again
        // before the old one ended (10:59–11:10), and a later session that touches it.
        let sessions = [
            day(9, 0, 10, 0),
            day(9, 30, 11, 0),
            day(10, 59, 11, 10),
            day(11, 10, 11, 20),
        ];
        assert_eq!(merged(&sessions), vec![day(9, 0, 11, 20)]);
        assert_eq!(minutes_by_month(&sessions).get(&(2026, 3)), Some(&140));
        // 30 seconds count as a started minute; 61 as two.
        let t = at(2026, 3, 3, 8, 0);
        assert_eq!(minutes_by_month(&[(t, t + 30)]).get(&(2026, 3)), Some(&1));
        assert_eq!(minutes_by_month(&[(t, t + 61)]).get(&(2026, 3)), Some(&2));
        // Empty and backwards sessions are nothing.
        assert!(minutes_by_month(&[(t, t), (t + 10, t)]).is_empty());
        assert!(over_maximum(2401, 2400) && !over_maximum(2400, 2400));
    }

    #[test]
    fn each_report_falls_due_at_midnight_on_the_first_whatever_the_month_s_length() {
        let none = BTreeSet::new();
        for (month, days) in [
            ((2026, 2), 28),
            ((2028, 2), 29),
            ((2026, 4), 30),
            ((2026, 12), 31),
        ] {
            let (start, end) = month_bounds(month);
            assert_eq!(end - start, days * 86_400);
            assert!(months_due(month, end - 1, &none).is_empty());
            assert_eq!(months_due(month, end, &none), vec![month]);
        }
        // A server down over two month ends catches up on both at its start, once.
        let first = (2026, 10);
        let (_, end_of_dec) = month_bounds((2026, 12));
        let made: BTreeSet<Month> = [(2026, 10)].into();
        assert_eq!(
            months_due(first, end_of_dec + 3600, &made),
            vec![(2026, 11), (2026, 12)]
        );
        // Years of downtime: only the last 24 months.
        let due = months_due((2000, 1), month_bounds((2026, 1)).0, &none);
        assert_eq!(due.len(), MAX_CATCH_UP);
        assert_eq!(due.last(), Some(&(2025, 12)));
    }

    #[test]
    fn months_read_back_as_written() {
        assert_eq!(month_text((2026, 2)), "2026-02");
        assert_eq!(parse_month("2026-02"), Some((2026, 2)));
        for bad in ["2026-13", "2026-2", "26-02", "2026-00", "x", "2026-02-01"] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
    }

    proptest! {
        /// However sessions overlap and wherever months end, the months' seconds add up to the
        /// length of the sessions' union, and no month holds more than it lasts.
        #[test]
        fn the_months_add_up_to_the_union(
            sessions in proptest::collection::vec((0i64..90 * 86_400, 0i64..5 * 86_400), 0..20)
        ) {
            let base = at(2026, 1, 15, 0, 0);
            let sessions: Vec<(i64, i64)> =
                sessions.iter().map(|(s, len)| (base + s, base + s + len)).collect();
            let union: i64 = merged(&sessions).iter().map(|(s, e)| e - s).sum();
            let by_month = seconds_by_month(&sessions);
            prop_assert_eq!(by_month.values().sum::<i64>(), union);
            for (month, secs) in &by_month {
                let (start, end) = month_bounds(*month);
                prop_assert!(*secs > 0 && *secs <= end - start);
            }
            // Merging is idempotent and leaves no overlap.
            let m = merged(&sessions);
            prop_assert_eq!(merged(&m), m.clone());
            prop_assert!(m.windows(2).all(|w| w[0].1 < w[1].0));
        }
    }
}
