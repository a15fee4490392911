//! Usage over time: the session history of a pool (every stretch a seat spent on a key, and how
//! it ended), its totals, and the monthly casual usage reports (DSLS).

use serde::{Deserialize, Serialize};

/// One ended seat (or the stretch of a seat on a key it then moved from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatSession {
    /// The history row's id (pages go by it).
    pub id: i64,
    pub pool_id: i64,
    pub seat_id: i64,
    pub key_id: i64,
    pub editor: String,
    pub feature: String,
    /// The key's licence model.
    pub model: String,
    pub user: String,
    pub host: String,
    pub process: String,
    pub session: String,
    /// Seats or tokens it took (0: a named user's further session riding on a seat).
    pub amount: i64,
    /// Taken because another feature bundles it: that feature's seat.
    pub bundle_of: Option<i64>,
    /// When it was granted (or moved to this key), Unix seconds.
    pub granted_at: i64,
    pub ended_at: i64,
    /// How it ended, as kept (`application`, `lease expired`, `admin:3`, `moved:7`, …).
    pub ended_by: String,
    /// How it ended, in words ("released", "disconnected by ada@example.com", …).
    pub ended_how: String,
    /// It was out on a mobile licence, until then.
    pub borrowed_until: Option<i64>,
}

impl SeatSession {
    /// How long it lasted, in seconds.
    pub fn seconds(&self) -> i64 {
        (self.ended_at - self.granted_at).max(0)
    }
}

/// Sessions and time per user or per feature, over everything a filter selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageTotal {
    /// The user, or the feature (`EDITOR/FEATURE`).
    pub name: String,
    pub sessions: i64,
    pub seconds: i64,
}

/// A page of a pool's session history, newest end first, with the totals of the whole filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionPage {
    pub sessions: Vec<SeatSession>,
    /// Pass as `before` for the next (older) page; none when this is the last.
    pub next_before: Option<i64>,
    /// Per user, most time first (every page of the filter, not only this one).
    pub per_user: Vec<UsageTotal>,
    /// Per feature, most time first.
    pub per_feature: Vec<UsageTotal>,
}

/// Which sessions to list. Every filter is optional; text filters match a part, ignoring case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SessionQuery {
    /// Part of the feature's name.
    pub feature: Option<String>,
    /// Part of the user's name.
    pub user: Option<String>,
    /// Part of the host's name.
    pub host: Option<String>,
    /// Sessions that ended on or after this day (YYYY-MM-DD, UTC).
    pub from: Option<String>,
    /// Sessions that ended on or before this day (YYYY-MM-DD, UTC).
    pub to: Option<String>,
    /// Sessions older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// How many sessions (1–500, default 100).
    pub limit: Option<i64>,
}

impl SessionQuery {
    /// The filters (not the page) as a URL query string, for the CSV download's link.
    pub fn filter_query(&self) -> String {
        [
            ("feature", &self.feature),
            ("user", &self.user),
            ("host", &self.host),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter_map(|(name, value)| {
            let v = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
            Some(format!("{name}={}", crate::audit::percent_encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// A duration as people read it: `2 h 05 min`, `7 min`, `45 s`.
pub fn duration_text(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m) = (s / 3600, s % 3600 / 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

/// One user's use of a casual key in a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CasualUserUsage {
    pub user: String,
    /// Whole minutes (every started minute of the month's total counts).
    pub minutes: i64,
    /// Past the key's maximum.
    pub over: bool,
}

/// A casual key in a monthly report: its users' minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CasualKeyUsage {
    pub pool_id: i64,
    /// The pool's owner and name, as the portal shows them.
    pub pool: String,
    /// The client whose pool it is (its users read this part of the report).
    pub client_id: Option<i64>,
    pub key_id: i64,
    pub editor: String,
    pub feature: String,
    /// The maximum usage per user per month, in minutes.
    pub maximum_minutes: i64,
    pub users: Vec<CasualUserUsage>,
}

/// The casual usage report of a calendar month (UTC), produced at 00:00 UTC on the 1st of the
/// next — or at the next start, when no server ran then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CasualReport {
    /// `YYYY-MM`.
    pub month: String,
    pub produced_at: i64,
    /// Every casual key enrolled when it was produced, with whoever used it.
    pub keys: Vec<CasualKeyUsage>,
}

impl CasualReport {
    /// The report as CSV lines' fields, a line per key and user (a key nobody used has one
    /// line without a user): month, pool_id, pool, key_id, editor, feature, maximum_mn, user,
    /// minutes, over_maximum.
    pub fn rows(&self) -> Vec<[String; 10]> {
        let mut rows = Vec::new();
        for k in &self.keys {
            let line = |user: &str, minutes: String, over: &str| {
                [
                    self.month.clone(),
                    k.pool_id.to_string(),
                    k.pool.clone(),
                    k.key_id.to_string(),
                    k.editor.clone(),
                    k.feature.clone(),
                    k.maximum_minutes.to_string(),
                    user.to_owned(),
                    minutes,
                    over.to_owned(),
                ]
            };
            if k.users.is_empty() {
                rows.push(line("", String::new(), ""));
            }
            for u in &k.users {
                rows.push(line(
                    &u.user,
                    u.minutes.to_string(),
                    if u.over { "yes" } else { "no" },
                ));
            }
        }
        rows
    }

    /// How many users went past a maximum.
    pub fn over_use(&self) -> usize {
        self.keys
            .iter()
            .flat_map(|k| &k.users)
            .filter(|u| u.over)
            .count()
    }
}

/// The CSV header of [`CasualReport::rows`].
pub const CASUAL_REPORT_HEADER: [&str; 10] = [
    "month",
    "pool_id",
    "pool",
    "key_id",
    "editor",
    "feature",
    "maximum_mn",
    "user",
    "minutes",
    "over_maximum",
];

/// A report in the list of reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CasualReportSummary {
    pub month: String,
    pub produced_at: i64,
    /// Casual keys in it (the ones the caller may read).
    pub keys: i64,
    /// Users who used one of them.
    pub users: i64,
    /// Users past a maximum.
    pub over_use: i64,
}

/// A user's use of a casual key this month, as *Detailed usage* shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CasualUse {
    pub minutes: i64,
    pub maximum: i64,
}

impl CasualUse {
    /// Past the maximum: shown in red, logged once per month.
    pub fn over(self) -> bool {
        self.minutes > self.maximum
    }
}

/// The over-use log line, in DSLS's words.
pub fn overuse_line(feature: &str, editor: &str, user: &str, maximum: i64) -> String {
    format!("Usage of {feature} ({editor}) by {user} in excess of {maximum} mn")
}

/// The span a usage chart covers, and its step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Period {
    /// The last 48 hours, hour by hour.
    #[serde(rename = "48h")]
    Hours48,
    /// The last 30 days, day by day (UTC).
    #[default]
    #[serde(rename = "30d")]
    Days30,
    /// The last 12 months, month by month (UTC).
    #[serde(rename = "12m")]
    Months12,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Hours48, Period::Days30, Period::Months12];

    pub fn code(self) -> &'static str {
        match self {
            Period::Hours48 => "48h",
            Period::Days30 => "30d",
            Period::Months12 => "12m",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code.trim())
    }

    /// The step starting at `start`, as the chart's axis and table name it (UTC): `03-09 14:00`,
    /// `2027-03-09`, `2027-03`.
    pub fn step_label(self, start: i64) -> String {
        let (year, month, day) = crate::time::civil_from_days(start.div_euclid(86_400));
        match self {
            Period::Hours48 => format!(
                "{month:02}-{day:02} {:02}:00",
                start.rem_euclid(86_400) / 3600
            ),
            Period::Days30 => format!("{year:04}-{month:02}-{day:02}"),
            Period::Months12 => format!("{year:04}-{month:02}"),
        }
    }

    /// In the picker's words.
    pub fn label(self) -> &'static str {
        match self {
            Period::Hours48 => "Last 48 hours, by hour",
            Period::Days30 => "Last 30 days, by day",
            Period::Months12 => "Last 12 months, by month",
        }
    }
}

/// One step of a usage chart: the most seats in use at once, the seats there were, and the
/// checkouts refused for want of a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsagePoint {
    /// The step's first instant (Unix seconds, UTC).
    pub start: i64,
    pub peak: i64,
    pub count: i64,
    pub refusals: i64,
}

/// A feature's use over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureSeries {
    pub editor: String,
    pub feature: String,
    pub points: Vec<UsagePoint>,
}

/// The use of a pool's features (or, for the administrator's overview, of every pool's
/// features added up) over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageChart {
    pub period: Period,
    /// None: every pool the caller may read, added up.
    pub pool_id: Option<i64>,
    pub series: Vec<FeatureSeries>,
}

impl UsageChart {
    /// The figures as CSV lines' fields: feature, editor, period start (UTC), peak in use,
    /// count, refusals.
    pub fn rows(&self) -> Vec<[String; 6]> {
        self.series
            .iter()
            .flat_map(|s| {
                s.points.iter().map(|p| {
                    [
                        s.editor.clone(),
                        s.feature.clone(),
                        crate::time::format_rfc3339(p.start),
                        p.peak.to_string(),
                        p.count.to_string(),
                        p.refusals.to_string(),
                    ]
                })
            })
            .collect()
    }
}

/// The CSV header of [`UsageChart::rows`].
pub const USAGE_CHART_HEADER: [&str; 6] = [
    "editor",
    "feature",
    "period_start_utc",
    "peak_in_use",
    "count",
    "refusals",
];

/// Which period of use to chart (`48h`, `30d` — the default — or `12m`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ChartQuery {
    pub period: Option<String>,
}

impl ChartQuery {
    pub fn period(&self) -> Result<Period, crate::input::InputError> {
        match self
            .period
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            None => Ok(Period::default()),
            Some(p) => Period::parse(p).ok_or_else(|| {
                crate::input::InputError::new("period", "The period is 48h, 30d or 12m.")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(45), "45 s");
        assert_eq!(duration_text(7 * 60 + 3), "7 min");
        assert_eq!(duration_text(2 * 3600 + 5 * 60), "2 h 05 min");
        assert_eq!(duration_text(-4), "0 s");
    }

    #[test]
    fn a_report_has_a_line_per_user_and_one_for_an_unused_key() {
        let key = |id, users| CasualKeyUsage {
            pool_id: 1,
            pool: "Acme · Office".into(),
            client_id: Some(2),
            key_id: id,
            editor: "Dassault Systemes".into(),
            feature: "LIV".into(),
            maximum_minutes: 2400,
            users,
        };
        let report = CasualReport {
            month: "2026-02".into(),
            produced_at: 0,
            keys: vec![
                key(
                    3,
                    vec![
                        CasualUserUsage {
                            user: "ann".into(),
                            minutes: 2401,
                            over: true,
                        },
                        CasualUserUsage {
                            user: "bob".into(),
                            minutes: 10,
                            over: false,
                        },
                    ],
                ),
                key(4, vec![]),
            ],
        };
        let rows = report.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0][7], "ann");
        assert_eq!(rows[0][9], "yes");
        assert_eq!(rows[2][3], "4");
        assert_eq!(rows[2][7], "");
        assert_eq!(report.over_use(), 1);
        assert_eq!(
            overuse_line("LIV", "Dassault Systemes", "ann", 2400),
            "Usage of LIV (Dassault Systemes) by ann in excess of 2400 mn"
        );
    }

    #[test]
    fn periods_read_back_and_name_their_steps() {
        for p in Period::ALL {
            assert_eq!(Period::parse(p.code()), Some(p));
        }
        assert_eq!(Period::parse("1w"), None);
        let t = crate::time::days_from_civil(2027, 3, 9) * 86_400 + 14 * 3600 + 59;
        assert_eq!(Period::Hours48.step_label(t), "03-09 14:00");
        assert_eq!(Period::Days30.step_label(t), "2027-03-09");
        assert_eq!(Period::Months12.step_label(t), "2027-03");
        assert_eq!(ChartQuery::default().period(), Ok(Period::Days30));
        let bad = ChartQuery {
            period: Some("week".into()),
        };
        assert_eq!(bad.period().map_err(|e| e.field), Err("period"));
    }

    #[test]
    fn the_csv_link_keeps_only_the_filters_given() {
        let q = SessionQuery {
            user: Some(" ann ".into()),
            host: Some(String::new()),
            from: Some("2026-12-01".into()),
            before: Some(9),
            ..SessionQuery::default()
        };
        assert_eq!(q.filter_query(), "user=ann&from=2026-12-01");
    }
}
