//! When a limited licence ends. Pure calendar rules over day counts (days since 1970-01-01, UTC):
//! a default validity from the activation day, an optional fixed window, and an optional "expire on
//! day N of the month" that moves the end forward to the next such day. Activation codes of limited
//! licences start the day before activation and end on the computed day.

use protocol::time::{civil_from_days, days_from_civil, days_in_month};

/// A product's limited-licence settings. At least one of `validity_days` and `fixed_end` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub validity_days: Option<i64>,
    pub fixed_start: Option<i64>,
    pub fixed_end: Option<i64>,
    /// 1-31; a month shorter than N ends on its last day.
    pub expire_day_of_month: Option<u32>,
}

impl Limits {
    /// The limits as a product's row stores them (the day of the month as a number).
    pub fn of_row(
        validity_days: Option<i64>,
        fixed_start: Option<i64>,
        fixed_end: Option<i64>,
        expire_day_of_month: Option<i64>,
    ) -> Self {
        Self {
            validity_days,
            fixed_start,
            fixed_end,
            expire_day_of_month: expire_day_of_month.and_then(|d| u32::try_from(d).ok()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("the licence can be activated from {}", protocol::time::format_date(*.0))]
    NotYet(i64),
    #[error("the licence period ended on {}", protocol::time::format_date(*.0))]
    WindowClosed(i64),
    #[error("the product has no validity period or end date")]
    Unbounded,
}

/// The first day on or after `day` that is day `n` of its month (or the month's last day when the
/// month is shorter).
pub fn next_day_of_month(day: i64, n: u32) -> i64 {
    let (y, m, d) = civil_from_days(day);
    let in_this_month = n.min(days_in_month(y, m));
    if in_this_month >= d {
        return days_from_civil(y, m, in_this_month);
    }
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, n.min(days_in_month(y, m)))
}

/// The last day a licence activated on `activation_day` may be used.
pub fn expiry(limits: &Limits, activation_day: i64) -> Result<i64, ExpiryError> {
    if let Some(start) = limits.fixed_start {
        if activation_day < start {
            return Err(ExpiryError::NotYet(start));
        }
    }
    if let Some(end) = limits.fixed_end {
        if activation_day > end {
            return Err(ExpiryError::WindowClosed(end));
        }
    }
    let mut end = match (limits.validity_days, limits.fixed_end) {
        // N days of use: the activation day is the first, so the last is N - 1 days later.
        (Some(days), _) => activation_day + days.max(1) - 1,
        (None, Some(end)) => end,
        (None, None) => return Err(ExpiryError::Unbounded),
    };
    if let Some(n) = limits.expire_day_of_month {
        end = next_day_of_month(end, n);
    }
    if let Some(fixed_end) = limits.fixed_end {
        end = end.min(fixed_end);
    }
    Ok(end)
}

/// The first day an activation code of a limited licence is valid: the day before activation, so
/// a machine whose clock is a little behind is not refused.
pub fn code_start(activation_day: i64) -> i64 {
    activation_day - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use protocol::time::{format_date, parse_date};

    fn day(s: &str) -> i64 {
        parse_date(s).expect("valid date")
    }

    #[test]
    fn default_validity_counts_from_the_activation_day() {
        let limits = Limits {
            validity_days: Some(30),
            ..Limits::default()
        };
        assert_eq!(
            expiry(&limits, day("2026-01-10")).map(format_date),
            Ok("2026-02-08".into()),
            "30 days of use, the activation day included"
        );
        assert_eq!(format_date(code_start(day("2026-01-10"))), "2026-01-09");
        let one_day = Limits {
            validity_days: Some(1),
            ..Limits::default()
        };
        assert_eq!(
            expiry(&one_day, day("2026-01-10")).map(format_date),
            Ok("2026-01-10".into())
        );
    }

    #[test]
    fn fixed_window_caps_the_end_and_bounds_activation() {
        let limits = Limits {
            validity_days: Some(365),
            fixed_start: Some(day("2026-03-01")),
            fixed_end: Some(day("2026-12-31")),
            expire_day_of_month: None,
        };
        assert_eq!(
            expiry(&limits, day("2026-06-01")).map(format_date),
            Ok("2026-12-31".into())
        );
        assert_eq!(
            expiry(&limits, day("2026-02-28")),
            Err(ExpiryError::NotYet(day("2026-03-01")))
        );
        assert_eq!(
            expiry(&limits, day("2027-01-01")),
            Err(ExpiryError::WindowClosed(day("2026-12-31")))
        );
        let only_window = Limits {
            validity_days: None,
            ..limits
        };
        assert_eq!(
            expiry(&only_window, day("2026-03-01")).map(format_date),
            Ok("2026-12-31".into())
        );
        assert_eq!(expiry(&Limits::default(), 0), Err(ExpiryError::Unbounded));
    }

    #[test]
    fn day_of_month_moves_the_end_forward() {
        let limits = Limits {
            validity_days: Some(30),
            expire_day_of_month: Some(1),
            ..Limits::default()
        };
        // 30 days from 2026-01-10 end on 2026-02-08, moved to the next 1st.
        assert_eq!(
            expiry(&limits, day("2026-01-10")).map(format_date),
            Ok("2026-03-01".into())
        );
        // Already on the day: stays.
        assert_eq!(next_day_of_month(day("2026-03-15"), 15), day("2026-03-15"));
        // Day 31 in a short month is its last day; in December it rolls into the next year.
        assert_eq!(
            format_date(next_day_of_month(day("2026-02-03"), 31)),
            "2026-02-28"
        );
        assert_eq!(
            format_date(next_day_of_month(day("2024-02-03"), 30)),
            "2024-02-29"
        );
        assert_eq!(
            format_date(next_day_of_month(day("2026-12-20"), 5)),
            "2027-01-05"
        );
    }

    proptest! {
        #[test]
        fn expiry_rules_hold(
            activation in 0i64..40_000,
            validity in proptest::option::of(1i64..2_000),
            start_offset in proptest::option::of(-500i64..500),
            end_offset in proptest::option::of(-500i64..3_000),
            dom in proptest::option::of(1u32..=31),
        ) {
            let limits = Limits {
                validity_days: validity,
                fixed_start: start_offset.map(|o| activation + o),
                fixed_end: end_offset.map(|o| activation + o),
                expire_day_of_month: dom,
            };
            match expiry(&limits, activation) {
                Ok(end) => {
                    prop_assert!(end >= activation, "never ends before it starts");
                    if let Some(fe) = limits.fixed_end { prop_assert!(end <= fe); }
                    if let Some(v) = validity {
                        if limits.fixed_end.is_none_or(|fe| fe >= activation + v - 1) {
                            prop_assert!(end >= activation + v - 1, "never shorter than sold");
                        }
                    }
                    if let (Some(n), None) = (dom, limits.fixed_end) {
                        let (y, m, d) = civil_from_days(end);
                        prop_assert_eq!(d, n.min(days_in_month(y, m)));
                        prop_assert!(end - (activation + validity.map_or(0, |v| v - 1)) < 31);
                    }
                    // A later activation never ends earlier.
                    if let Ok(later) = expiry(&limits, activation + 1) { prop_assert!(later >= end); }
                }
                Err(ExpiryError::NotYet(s)) => prop_assert!(activation < s),
                Err(ExpiryError::WindowClosed(e)) => prop_assert!(activation > e),
                Err(ExpiryError::Unbounded) => prop_assert!(validity.is_none() && limits.fixed_end.is_none()),
            }
        }
    }
}
