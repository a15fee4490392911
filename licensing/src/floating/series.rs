//! Usage charts: the hourly figures (`usage_hourly`: peak in use and refusals per feature per
//! hour) gathered into the steps of a period — hours, days or months, UTC — beside the count
//! of seats the keys held then. Plain functions.

use super::casual::{month_bounds, month_of, next_month};
use protocol::history::{FeatureSeries, Period, UsagePoint};
use std::collections::BTreeMap;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The first instants of the period's steps, oldest first; the last step holds `now`.
pub fn steps(period: Period, now: i64) -> Vec<i64> {
    match period {
        Period::Hours48 => {
            let this = now.div_euclid(HOUR) * HOUR;
            (0..48).rev().map(|i| this - i * HOUR).collect()
        }
        Period::Days30 => {
            let today = now.div_euclid(DAY) * DAY;
            (0..30).rev().map(|i| today - i * DAY).collect()
        }
        Period::Months12 => {
            let mut month = month_of(now);
            let mut out = vec![month_bounds(month).0];
            for _ in 1..12 {
                month = previous_month(month);
                out.push(month_bounds(month).0);
            }
            out.reverse();
            out
        }
    }
}

fn previous_month((year, month): (i64, u32)) -> (i64, u32) {
    if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    }
}

/// The end (exclusive) of the step starting at `start`.
pub fn step_end(period: Period, start: i64) -> i64 {
    match period {
        Period::Hours48 => start + HOUR,
        Period::Days30 => start + DAY,
        Period::Months12 => month_bounds(next_month(month_of(start))).0,
    }
}

/// One hour's figures of a feature: (editor, feature, hour as Unix seconds, refusals, peak).
pub type Hourly = (String, String, i64, i64, i64);

/// A key as the count needs it: (editor, feature, quantity, first day, last day, group index,
/// pool).
pub type CountedKey = (String, String, i64, Option<i64>, Option<i64>, i64, i64);

/// The seats of `feature` on `day`: the quantities of its keys in force that day, in each pool
/// a key superseded by one of a higher group index in force not counted (as Usage Per
/// Feature).
pub fn count_on(keys: &[CountedKey], editor: &str, feature: &str, day: i64) -> i64 {
    let in_force = |k: &&CountedKey| {
        k.0 == editor
            && k.1 == feature
            && k.3.is_none_or(|s| s <= day)
            && k.4.is_none_or(|e| e >= day)
    };
    let mut top: BTreeMap<i64, i64> = BTreeMap::new();
    for k in keys.iter().filter(in_force) {
        let group = top.entry(k.6).or_insert(k.5);
        *group = (*group).max(k.5);
    }
    keys.iter()
        .filter(in_force)
        .filter(|k| top.get(&k.6) == Some(&k.5))
        .map(|k| k.2)
        .sum()
}

/// Each feature's steps over the period: the highest hourly peak and the refusals added up
/// within each step, and the count on the step's last day (today for the present step).
/// Features are those with a key now or figures in the period, by editor and feature. One pass
/// over the hours (each finds its step by binary search), then one over the steps.
pub fn series(
    hourly: &[Hourly],
    keys: &[CountedKey],
    period: Period,
    now: i64,
) -> Vec<FeatureSeries> {
    let starts = steps(period, now);
    let first = starts[0];
    let empty = |start| UsagePoint {
        start,
        peak: 0,
        count: 0,
        refusals: 0,
    };
    let mut features: BTreeMap<(&str, &str), Vec<UsagePoint>> = BTreeMap::new();
    for k in keys {
        features
            .entry((&k.0, &k.1))
            .or_insert_with(|| starts.iter().map(|&s| empty(s)).collect());
    }
    for h in hourly.iter().filter(|h| h.2 >= first && h.2 <= now) {
        let points = features
            .entry((&h.0, &h.1))
            .or_insert_with(|| starts.iter().map(|&s| empty(s)).collect());
        // The last step starting at or before the hour.
        let i = starts.partition_point(|&s| s <= h.2) - 1;
        points[i].refusals += h.3;
        points[i].peak = points[i].peak.max(h.4);
    }
    // Each key's days of force matter only for the count: per feature, per step.
    features
        .into_iter()
        .map(|((editor, feature), mut points)| {
            let of_feature: Vec<CountedKey> = keys
                .iter()
                .filter(|k| k.0 == editor && k.1 == feature)
                .cloned()
                .collect();
            for p in &mut points {
                let end = step_end(period, p.start);
                let last_day = (end.min(now + 1) - 1).div_euclid(DAY);
                p.count = count_on(&of_feature, editor, feature, last_day);
            }
            FeatureSeries {
                editor: editor.to_owned(),
                feature: feature.to_owned(),
                points,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::time::days_from_civil;

    fn at(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * DAY + h * HOUR
    }

    #[test]
    fn each_period_has_its_steps_ending_with_the_present_one() {
        let now = at(2027, 3, 1, 10) + 1234;
        let hours = steps(Period::Hours48, now);
        assert_eq!(
            (hours.len(), *hours.last().expect("hour")),
            (48, at(2027, 3, 1, 10))
        );
        assert_eq!(hours[0], at(2027, 2, 27, 11));
        let days = steps(Period::Days30, now);
        assert_eq!(
            (days.len(), days[29], days[0]),
            (30, at(2027, 3, 1, 0), at(2027, 1, 31, 0))
        );
        let months = steps(Period::Months12, now);
        assert_eq!(months.len(), 12);
        assert_eq!(
            (months[0], months[11]),
            (at(2026, 4, 1, 0), at(2027, 3, 1, 0))
        );
        assert_eq!(
            step_end(Period::Months12, at(2027, 2, 1, 0)),
            at(2027, 3, 1, 0)
        );
        assert_eq!(
            step_end(Period::Days30, at(2027, 2, 1, 0)),
            at(2027, 2, 2, 0)
        );
    }

    #[test]
    fn a_step_keeps_its_highest_hour_and_all_its_refusals_beside_the_count_then() {
        let now = at(2027, 3, 10, 15);
        let f = |h: i64, refusals, peak| ("V".to_owned(), "F".to_owned(), h, refusals, peak);
        let hourly = vec![
            f(at(2027, 3, 9, 8), 0, 3),
            f(at(2027, 3, 9, 9), 2, 5),
            f(at(2027, 3, 9, 17), 1, 4),
            f(at(2027, 3, 10, 9), 0, 2),
            // Before the 30 days (in the 12 months).
            f(at(2027, 1, 1, 9), 9, 9),
        ];
        let day = |y, m, d| days_from_civil(y, m, d);
        let keys = vec![
            (
                "V".to_owned(),
                "F".to_owned(),
                5,
                None,
                Some(day(2027, 3, 9)),
            ),
            (
                "V".to_owned(),
                "F".to_owned(),
                2,
                Some(day(2027, 3, 10)),
                None,
            ),
        ]
        .into_iter()
        .map(|(e, f, q, s, end)| (e, f, q, s, end, 0, 1))
        .collect::<Vec<_>>();
        let series = series(&hourly, &keys, Period::Days30, now);
        assert_eq!(series.len(), 1);
        let points = &series[0].points;
        let ninth = points
            .iter()
            .find(|p| p.start == at(2027, 3, 9, 0))
            .expect("the 9th");
        assert_eq!((ninth.peak, ninth.refusals, ninth.count), (5, 3, 5));
        let tenth = points.last().expect("today");
        assert_eq!((tenth.peak, tenth.refusals, tenth.count), (2, 0, 2));
        assert_eq!(points[0].peak, 0);
        // Monthly: March holds everything in the period; the count is today's.
        let months = super::series(&hourly, &keys, Period::Months12, now);
        let march = months[0].points.last().expect("march");
        assert_eq!((march.peak, march.refusals, march.count), (5, 3, 2));
        let january = months[0]
            .points
            .iter()
            .find(|p| p.start == at(2027, 1, 1, 0))
            .expect("january");
        assert_eq!((january.peak, january.refusals), (9, 9));
    }

    proptest::proptest! {
        /// Whatever the hours, each step holds the highest peak and the sum of refusals of the
        /// hours within it, as a plain scan of every hour for every step finds them.
        #[test]
        fn each_step_holds_exactly_its_hours(
            hours in proptest::collection::vec((0i64..2, 0i64..400 * 24, 0i64..5, 0i64..9), 0..60),
            period in 0usize..3,
        ) {
            let now = at(2027, 3, 10, 15) + 59;
            let period = Period::ALL[period];
            let hourly: Vec<Hourly> = hours
                .iter()
                .map(|(f, back, r, p)| ("V".to_owned(), format!("F{f}"), (now / HOUR - back) * HOUR, *r, *p))
                .collect();
            let got = series(&hourly, &[], period, now);
            for s in &got {
                for p in &s.points {
                    let end = step_end(period, p.start);
                    let within: Vec<&Hourly> = hourly
                        .iter()
                        .filter(|h| h.1 == s.feature && h.2 >= p.start && h.2 < end)
                        .collect();
                    proptest::prop_assert_eq!(p.refusals, within.iter().map(|h| h.3).sum::<i64>());
                    proptest::prop_assert_eq!(p.peak, within.iter().map(|h| h.4).max().unwrap_or(0));
                }
            }
        }
    }

    #[test]
    fn a_newer_group_supersedes_the_older_keys_in_the_count() {
        let k = |q, group, pool| ("V".to_owned(), "F".to_owned(), q, None, None, group, pool);
        assert_eq!(
            count_on(&[k(5, 0, 1), k(3, 1, 1), k(2, 1, 1)], "V", "F", 100),
            5
        );
        assert_eq!(count_on(&[k(5, 0, 1)], "V", "G", 100), 0);
        // Across pools, each pool's own newest group counts.
        assert_eq!(
            count_on(&[k(5, 0, 1), k(3, 1, 1), k(4, 0, 2)], "V", "F", 100),
            7
        );
    }
}
