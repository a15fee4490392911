//! The administrator's dashboard: what the catalogue, the licences and the pools hold now, how
//! activations went over the last days, what is about to expire, and the first steps on an empty
//! server.

use crate::audit::AuditEntry;
use serde::{Deserialize, Serialize};

/// How many days the activations chart covers, and how far ahead "expiring" looks.
pub const DASHBOARD_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    /// The first steps on a new server (administrators only).
    pub checklist: Option<Checklist>,
    pub products: Vec<ProductFigures>,
    /// Activations per UTC day, oldest first, `DASHBOARD_DAYS` of them ending today.
    pub activations_per_day: Vec<DayCount>,
    /// Licences whose last day is one of the next `DASHBOARD_DAYS` days, today the first
    /// (soonest first, the first few), and how many there are in all.
    pub expiring: Vec<ExpiringLicence>,
    pub expiring_count: i64,
    /// Licences with a limited term still running (time-limited licences, trials among them).
    pub limited_running: i64,
    /// The newest pools (the first few), and how many there are in all.
    pub pools: Vec<PoolFigures>,
    pub pool_count: i64,
    pub recent: Vec<AuditEntry>,
}

/// The first steps on a new server, each done or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checklist {
    pub product: bool,
    pub client: bool,
    pub order: bool,
    pub activation: bool,
}

impl Checklist {
    pub fn all_done(&self) -> bool {
        self.product && self.client && self.order && self.activation
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductFigures {
    pub id: i64,
    pub code: String,
    pub name: String,
    /// Licences of the product (by order and by serial).
    pub licences: i64,
    /// Of them, activated on a machine now.
    pub active: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringLicence {
    pub licence_id: i64,
    pub order_id: Option<i64>,
    pub serial_id: Option<i64>,
    pub licence_key: String,
    pub client_name: String,
    pub product_code: String,
    /// The last day it works (days since 1970-01-01).
    pub expires_on: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolFigures {
    pub id: i64,
    pub name: String,
    pub owner: String,
    pub in_use: i64,
    pub count: i64,
    pub refused_today: i64,
}

/// The `days` days ending on `today` (a day count), oldest first, each with its count from
/// `counted` (day, count) pairs; days outside are left out, days without a pair count 0.
pub fn per_day(counted: &[(i64, i64)], today: i64, days: i64) -> Vec<DayCount> {
    let first = today - days + 1;
    let mut counts: Vec<DayCount> = (first..=today)
        .map(|day| DayCount { day, count: 0 })
        .collect();
    for &(day, count) in counted {
        if (first..=today).contains(&day) {
            counts[(day - first) as usize].count += count;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_day_has_its_count_and_days_outside_are_left_out() {
        let today = 20_000;
        let days = per_day(
            &[(today, 2), (today - 1, 1), (today - 30, 4), (today + 1, 9)],
            today,
            30,
        );
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].day, today - 29);
        assert_eq!(
            days[29],
            DayCount {
                day: today,
                count: 2
            }
        );
        assert_eq!(days[28].count, 1);
        assert_eq!(
            days.iter().map(|d| d.count).sum::<i64>(),
            3,
            "out of range: left out"
        );
    }

    proptest! {
        #[test]
        fn the_days_add_up_to_the_counts_in_range(
            counted in proptest::collection::vec((0i64..40, 0i64..50), 0..60),
            days in 1i64..40,
        ) {
            let today = 39;
            let shown = per_day(&counted, today, days);
            prop_assert_eq!(shown.len() as i64, days);
            let in_range: i64 = counted.iter().filter(|(d, _)| *d > today - days).map(|(_, n)| n).sum();
            prop_assert_eq!(shown.iter().map(|d| d.count).sum::<i64>(), in_range);
        }
    }
}
