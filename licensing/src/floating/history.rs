//! Usage over time: the session history (every stretch a seat spent on a key, kept when it
//! ends), its purge, casual metering (DSLS: each named user's minutes on a casual key per
//! calendar month), the once-a-month over-use log and the monthly casual usage report.

use super::casual::{self, Month};
use super::series;
use super::*;
use protocol::history::{
    CasualKeyUsage, CasualReport, CasualReportSummary, CasualUse, CasualUserUsage, Period,
    SeatSession, SessionPage, SessionQuery, UsageChart, UsageTotal, CASUAL_REPORT_HEADER,
    USAGE_CHART_HEADER,
};
use std::collections::{BTreeMap, BTreeSet};

/// A history row from seat `s` on key `k` (`m`: its main seat, whose heartbeats keep it), up to
/// its start; the end, how, the borrowing and until when it was used follow.
const KEEP_SEAT: &str = "INSERT INTO seat_history (pool_id, seat_id, key_id, bundle_of, editor, \
     feature, model, user_name, host, process, session, amount, granted_at, ended_at, ended_by, \
     borrowed_until, used_until) \
     SELECT s.pool_id, s.id, s.key_id, s.bundle_of, s.editor, s.feature, k.model, s.user_name, \
     s.host, s.process, s.session, s.amount, COALESCE(s.key_since, s.granted_at),";

/// The seat `s`, its key `k` and its main seat `m`.
const SEAT_KEY_MAIN: &str = "FROM seats s JOIN pool_keys k ON k.id = s.key_id \
     JOIN seats m ON m.id = COALESCE(s.bundle_of, s.id)";

/// Keeps the history of a seat just released and of the seats released with it (its bundle),
/// in the release's transaction: a seat ends once, so its row is written once.
pub(super) async fn keep_ended(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    seat_id: i64,
) -> Result<()> {
    sqlx::query(&format!(
        "{KEEP_SEAT} s.released_at, COALESCE(s.released_by, 'application'), s.borrowed_until, \
         CASE WHEN m.borrowed_until IS NULL AND m.lease_expires_at < s.released_at \
              THEN m.lease_expires_at ELSE s.released_at END \
         {SEAT_KEY_MAIN} \
         WHERE (s.id = $1 OR s.bundle_of = $1) AND s.released_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM seat_history h WHERE h.seat_id = s.id \
             AND h.ended_at = s.released_at AND h.ended_by = COALESCE(s.released_by, 'application'))"
    ))
    .bind(seat_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Keeps a live seat's stretch on `from_key` as it moves to `to_key` at `now`.
pub(super) async fn keep_moved(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    seat_id: i64,
    from_key: i64,
    to_key: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(&format!(
        "{KEEP_SEAT} $3, $4, NULL, $3 FROM seats s JOIN pool_keys k ON k.id = s.key_id \
         WHERE s.id = $1 AND s.key_id = $2 AND s.released_at IS NULL"
    ))
    .bind(seat_id)
    .bind(from_key)
    .bind(now)
    .bind(ReleaseReason::Moved { to_key }.stored())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: i64,
    pool_id: i64,
    seat_id: i64,
    key_id: i64,
    bundle_of: Option<i64>,
    editor: String,
    feature: String,
    model: String,
    user_name: String,
    host: String,
    process: String,
    session: String,
    amount: i64,
    granted_at: i64,
    ended_at: i64,
    ended_by: String,
    borrowed_until: Option<i64>,
}

/// The most sessions one CSV export holds (narrow the filter for older ones).
pub const HISTORY_EXPORT_MAX: i64 = 100_000;

/// The shortest retention the configuration accepts: the current and the previous month's
/// casual use must be whole when the month's report is made.
pub const MIN_RETENTION_DAYS: i64 = 62;
/// The longest (a hundred years).
pub const MAX_RETENTION_DAYS: i64 = 36_500;

/// A session history filter, checked: (feature, user, host as LIKE patterns; ended from, to).
struct Filter {
    feature: Option<String>,
    user: Option<String>,
    host: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
}

impl Filter {
    fn of(q: &SessionQuery) -> Result<Self> {
        let like = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| format!("%{}%", crate::db::like_escape(&t.to_lowercase())))
        };
        let day = |name: &'static str, text: &Option<String>| -> Result<Option<i64>> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => parse_date(t)
                    .map(Some)
                    .ok_or_else(|| InputError::new(name, "Give a date as YYYY-MM-DD.").into()),
            }
        };
        let from = day("from", &q.from)?.map(|d| d * 86_400);
        let to = day("to", &q.to)?.map(|d| (d + 1) * 86_400);
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                return Err(InputError::new("to", "The period ends before it starts.").into());
            }
        }
        Ok(Self {
            feature: like(&q.feature),
            user: like(&q.user),
            host: like(&q.host),
            from,
            to,
        })
    }
}

/// The WHERE of a pool's history under a filter: $1 pool, $2 feature, $3 user, $4 host,
/// $5 from, $6 to.
const HISTORY_WHERE: &str = "h.pool_id = $1 \
     AND ($2 IS NULL OR lower(h.feature) LIKE $2 ESCAPE '\\') \
     AND ($3 IS NULL OR lower(h.user_name) LIKE $3 ESCAPE '\\') \
     AND ($4 IS NULL OR lower(h.host) LIKE $4 ESCAPE '\\') \
     AND ($5 IS NULL OR h.ended_at >= $5) AND ($6 IS NULL OR h.ended_at < $6)";

impl Licentia {
    /// A page of a pool's session history, newest end first, with the totals per user and per
    /// feature of everything the filter selects.
    pub async fn session_history(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        q: &SessionQuery,
    ) -> Result<SessionPage> {
        self.pool(actor, pool_id).await?;
        let limit = protocol::page::page_limit(q.limit)?;
        let filter = Filter::of(q)?;
        let mut sessions = self
            .sessions(actor, pool_id, &filter, q.before, limit + 1)
            .await?;
        let next_before = if sessions.len() as i64 > limit {
            sessions.truncate(limit as usize);
            sessions.last().map(|s| s.id)
        } else {
            None
        };
        // A bundled seat is its main seat's user's time again: users count main seats only.
        let per_user = self
            .history_totals(pool_id, &filter, "h.user_name", true)
            .await?;
        let per_feature = self
            .history_totals(pool_id, &filter, "h.editor || '/' || h.feature", false)
            .await?;
        Ok(SessionPage {
            sessions,
            next_before,
            per_user,
            per_feature,
        })
    }

    /// Every session the filter selects (up to `HISTORY_EXPORT_MAX`), as CSV.
    pub async fn session_history_csv(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        q: &SessionQuery,
    ) -> Result<String> {
        self.pool(actor, pool_id).await?;
        let filter = Filter::of(q)?;
        let sessions = self
            .sessions(actor, pool_id, &filter, None, HISTORY_EXPORT_MAX)
            .await?;
        let mut out = crate::csv::line(&[
            "id",
            "pool_id",
            "seat_id",
            "key_id",
            "editor",
            "feature",
            "model",
            "user",
            "host",
            "process",
            "session",
            "amount",
            "bundle_of",
            "granted_at_utc",
            "ended_at_utc",
            "duration_s",
            "ended",
            "borrowed_until_utc",
        ]);
        let time = |t: i64| protocol::time::format_rfc3339(t);
        for s in sessions {
            out.push_str(&crate::csv::line(&[
                &s.id.to_string(),
                &s.pool_id.to_string(),
                &s.seat_id.to_string(),
                &s.key_id.to_string(),
                &s.editor,
                &s.feature,
                &s.model,
                &s.user,
                &s.host,
                &s.process,
                &s.session,
                &s.amount.to_string(),
                &s.bundle_of.map(|b| b.to_string()).unwrap_or_default(),
                &time(s.granted_at),
                &time(s.ended_at),
                &s.seconds().to_string(),
                &s.ended_how,
                &s.borrowed_until.map(time).unwrap_or_default(),
            ]));
        }
        Ok(out)
    }

    async fn sessions(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        f: &Filter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SeatSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(&format!(
            "SELECT h.id, h.pool_id, h.seat_id, h.key_id, h.bundle_of, h.editor, h.feature, \
             h.model, h.user_name, h.host, h.process, h.session, h.amount, h.granted_at, \
             h.ended_at, h.ended_by, h.borrowed_until \
             FROM seat_history h WHERE {HISTORY_WHERE} AND ($7 IS NULL OR h.id < $7) \
             ORDER BY h.id DESC LIMIT $8"
        ))
        .bind(pool_id)
        .bind(&f.feature)
        .bind(&f.user)
        .bind(&f.host)
        .bind(f.from)
        .bind(f.to)
        .bind(before)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        let admin = actor.role == Role::Admin;
        // Who disconnected seats: the accounts named, read once each.
        let mut emails: BTreeMap<i64, String> = BTreeMap::new();
        for r in &rows {
            if let Some(ReleaseReason::Disconnected { user_id, .. }) =
                ReleaseReason::from_stored(&r.ended_by)
            {
                if let std::collections::btree_map::Entry::Vacant(e) = emails.entry(user_id) {
                    let email: Option<String> =
                        sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
                            .bind(user_id)
                            .fetch_optional(self.db.pool())
                            .await?;
                    e.insert(email.unwrap_or_else(|| format!("a removed account ({user_id})")));
                }
            }
        }
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let reason = ReleaseReason::from_stored(&r.ended_by);
                // A client's users see who of theirs disconnected a seat; an administrator's
                // address and account are the vendor's.
                let by = match &reason {
                    Some(ReleaseReason::Disconnected { role, user_id })
                        if admin || *role == Role::Client =>
                    {
                        emails.get(user_id).cloned()
                    }
                    Some(ReleaseReason::Disconnected { .. }) => {
                        r.ended_by = Role::Admin.as_str().to_owned();
                        Some("an administrator".into())
                    }
                    _ => None,
                };
                let ended_how = match reason {
                    Some(reason) => reason.ended_how(by.as_deref()),
                    None => r.ended_by.clone(),
                };
                SeatSession {
                    id: r.id,
                    pool_id: r.pool_id,
                    seat_id: r.seat_id,
                    key_id: r.key_id,
                    editor: r.editor,
                    feature: r.feature,
                    model: r.model,
                    user: r.user_name,
                    host: r.host,
                    process: r.process,
                    session: r.session,
                    amount: r.amount,
                    bundle_of: r.bundle_of,
                    granted_at: r.granted_at,
                    ended_at: r.ended_at,
                    ended_by: r.ended_by,
                    ended_how,
                    borrowed_until: r.borrowed_until,
                }
            })
            .collect())
    }

    /// Sessions and seconds grouped by `by` (an SQL expression over `h`), most time first; a
    /// moved seat's stretches are one session.
    async fn history_totals(
        &self,
        pool_id: i64,
        f: &Filter,
        by: &str,
        main_seats_only: bool,
    ) -> Result<Vec<UsageTotal>> {
        let main = if main_seats_only {
            "AND h.bundle_of IS NULL"
        } else {
            ""
        };
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT {by} AS name, \
             CAST(SUM(CASE WHEN h.ended_by LIKE 'moved:%' THEN 0 ELSE 1 END) AS BIGINT), \
             CAST(SUM(h.ended_at - h.granted_at) AS BIGINT) \
             FROM seat_history h WHERE {HISTORY_WHERE} {main} \
             GROUP BY {by} ORDER BY 3 DESC, 1 LIMIT 1000"
        ))
        .bind(pool_id)
        .bind(&f.feature)
        .bind(&f.user)
        .bind(&f.host)
        .bind(f.from)
        .bind(f.to)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, sessions, seconds)| UsageTotal {
                name,
                sessions,
                seconds,
            })
            .collect())
    }

    /// Deletes the session history, and the ended seats, older than `retention_days` (in
    /// batches): what a job runs. Returns how many history rows went.
    pub async fn purge_history(&self, retention_days: i64) -> Result<u64> {
        let cutoff = self.clock.now() - retention_days.clamp(1, MAX_RETENTION_DAYS) * 86_400;
        let pool = self.db.pool();
        let gone =
            crate::db::delete_in_batches(pool, "seat_history", "ended_at < $1", cutoff).await?;
        // Ended seats answer late heartbeats ("your seat is gone: …") and repeated borrow
        // request codes; after the retention period nobody asks (request codes are refused
        // after `protocol::borrow::REQUEST_CODE_DAYS`). A bundled seat goes with its main seat.
        crate::db::delete_in_batches(
            pool,
            "seats",
            "released_at IS NOT NULL AND released_at < $1 AND bundle_of IS NULL",
            cutoff,
        )
        .await?;
        Ok(gone)
    }

    /// Each user's minutes on casual key `key_id` in `month`: the history's stretches on the
    /// key and its live seats (up to `now`), cut to the month, a user's overlapping sessions
    /// counted once.
    async fn casual_minutes(
        &self,
        key_id: i64,
        month: Month,
        now: i64,
    ) -> Result<BTreeMap<String, i64>> {
        let (start, end) = casual::month_bounds(month);
        // A stretch counts until it was last in use: its end, or the end of its application's
        // last lease when it went silent first (a live seat: now, or that lease's end).
        let spans: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT user_name, granted_at, used_until FROM seat_history \
             WHERE key_id = $1 AND ended_at > $2 AND granted_at < $3 \
             UNION ALL \
             SELECT s.user_name, COALESCE(s.key_since, s.granted_at), \
             CASE WHEN m.borrowed_until IS NULL AND m.lease_expires_at < $4 \
                  THEN m.lease_expires_at ELSE $4 END \
             FROM seats s JOIN seats m ON m.id = COALESCE(s.bundle_of, s.id) \
             WHERE s.key_id = $1 AND s.released_at IS NULL \
             AND COALESCE(s.key_since, s.granted_at) < $3",
        )
        .bind(key_id)
        .bind(start)
        .bind(end)
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        let mut by_user: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        for (user, from, to) in spans {
            by_user
                .entry(user)
                .or_default()
                .push((from.max(start), to.min(end)));
        }
        Ok(by_user
            .into_iter()
            .filter_map(|(user, spans)| {
                let minutes = casual::minutes_by_month(&spans).get(&month).copied()?;
                Some((user, minutes))
            })
            .collect())
    }

    /// This month's use of the casual keys among `seats`, per key and user, for *Detailed
    /// usage*.
    pub(super) async fn casual_use_now(
        &self,
        keys: impl Iterator<Item = (i64, i64)>,
    ) -> Result<BTreeMap<(i64, String), CasualUse>> {
        let now = self.clock.now();
        let month = casual::month_of(now);
        let keys: BTreeMap<i64, i64> = keys.collect();
        let mut out = BTreeMap::new();
        for (key_id, maximum) in keys {
            for (user, minutes) in self.casual_minutes(key_id, month, now).await? {
                out.insert((key_id, user), CasualUse { minutes, maximum });
            }
        }
        Ok(out)
    }

    /// The casual keys enrolled before `before`, with their pool, oldest first.
    async fn casual_keys(&self, before: i64) -> Result<Vec<CasualKeyUsage>> {
        type Row = (i64, i64, String, String, i64, String, String, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT k.id, k.pool_id, k.editor, k.feature, k.casual_max_minutes, p.name, \
             COALESCE(c.name, ''), p.client_id \
             FROM pool_keys k JOIN pools p ON p.id = k.pool_id \
             LEFT JOIN clients c ON c.id = p.client_id \
             WHERE k.casual_max_minutes IS NOT NULL AND k.created_at < $1 ORDER BY k.id",
        )
        .bind(before)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(key_id, pool_id, editor, feature, maximum, name, owner, client_id)| {
                    // A serial's pool is named by its id: the serial checks out seats, and
                    // the report is read with read-only tokens and kept for good.
                    let owner = if owner.is_empty() {
                        format!("serial pool {pool_id}")
                    } else {
                        owner
                    };
                    CasualKeyUsage {
                        pool_id,
                        pool: if name.is_empty() {
                            owner
                        } else {
                            format!("{owner} · {name}")
                        },
                        client_id,
                        key_id,
                        editor,
                        feature,
                        maximum_minutes: maximum,
                        users: Vec::new(),
                    }
                },
            )
            .collect())
    }

    /// Every casual key's users' minutes in `month` (up to `now`).
    async fn casual_usage(&self, month: Month, now: i64) -> Result<Vec<CasualKeyUsage>> {
        let (_, end) = casual::month_bounds(month);
        let mut keys = self.casual_keys(end).await?;
        for key in &mut keys {
            key.users = self
                .casual_minutes(key.key_id, month, now.min(end))
                .await?
                .into_iter()
                .map(|(user, minutes)| CasualUserUsage {
                    over: casual::over_maximum(minutes, key.maximum_minutes),
                    user,
                    minutes,
                })
                .collect();
        }
        Ok(keys)
    }

    /// Logs each user past a casual key's maximum in `month`, once per user, key and month
    /// (whichever replica sees it first), in the audit log and the server's log, in DSLS's
    /// words. Returns how many were logged now.
    async fn log_overuse(&self, month: Month, usage: &[CasualKeyUsage]) -> Result<usize> {
        let now = self.clock.now();
        let mut logged = 0;
        for key in usage {
            if usage_over(key).next().is_none() {
                continue;
            }
            // Most minutes find the line written already: read before writing.
            let done: Vec<String> = sqlx::query_scalar(
                "SELECT user_name FROM casual_overuse WHERE key_id = $1 AND month = $2",
            )
            .bind(key.key_id)
            .bind(casual::month_text(month))
            .fetch_all(self.db.pool())
            .await?;
            for user in usage_over(key).filter(|u| !done.contains(&u.user)) {
                let mut tx = self.db.pool().begin().await?;
                let new = sqlx::query(
                    "INSERT INTO casual_overuse (key_id, user_name, month, minutes, logged_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, user_name, month) DO NOTHING",
                )
                .bind(key.key_id)
                .bind(&user.user)
                .bind(casual::month_text(month))
                .bind(user.minutes)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if new == 0 {
                    continue;
                }
                let line = protocol::history::overuse_line(
                    &key.feature,
                    &key.editor,
                    &user.user,
                    key.maximum_minutes,
                );
                let subject = format!(
                    "{} (key {})",
                    pool_subject(key.pool_id, &key.pool),
                    key.key_id
                );
                self.record(
                    &mut *tx,
                    Who::Operator,
                    Entry::new(AuditAction::PoolCasualOveruse, subject)
                        .of_client(key.client_id)
                        .detail(format!(
                            "{line} ({} mn in {}).",
                            user.minutes,
                            casual::month_text(month)
                        )),
                )
                .await?;
                crate::db::commit(tx).await?;
                tracing::warn!(target: "licentia::casual", key_id = key.key_id, "{line}");
                logged += 1;
            }
        }
        Ok(logged)
    }

    /// What a job runs every minute: logs this month's casual over-use not logged yet.
    pub async fn meter_casual_usage(&self) -> Result<usize> {
        let now = self.clock.now();
        let month = casual::month_of(now);
        let usage = self.casual_usage(month, now).await?;
        self.log_overuse(month, &usage).await
    }

    /// What a job runs (and every start): produces the casual usage report of each month that
    /// has ended since the first casual key was enrolled and has none yet. One report per
    /// month whichever replica makes it first (the table's key); returns the months made here.
    /// Months that began more than `retention_days` ago are not caught up: their seats are
    /// gone from the history.
    pub async fn produce_casual_reports(&self, retention_days: i64) -> Result<Vec<String>> {
        let now = self.clock.now();
        let kept_since = now - retention_days.clamp(1, MAX_RETENTION_DAYS) * 86_400;
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(created_at) FROM pool_keys WHERE casual_max_minutes IS NOT NULL",
        )
        .fetch_one(self.db.pool())
        .await?;
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        let made: Vec<String> = sqlx::query_scalar("SELECT month FROM casual_reports")
            .fetch_all(self.db.pool())
            .await?;
        let made: BTreeSet<Month> = made.iter().filter_map(|m| casual::parse_month(m)).collect();
        let mut produced = Vec::new();
        let due = casual::months_due(casual::month_of(first), now, &made);
        for month in due
            .into_iter()
            .filter(|m| casual::month_bounds(*m).0 >= kept_since)
        {
            let keys = self.casual_usage(month, now).await?;
            self.log_overuse(month, &keys).await?;
            let report = CasualReport {
                month: casual::month_text(month),
                produced_at: now,
                keys,
            };
            let body = serde_json::to_string(&report)
                .map_err(|e| Error::Internal(format!("a casual report: {e}")))?;
            let new = sqlx::query(
                "INSERT INTO casual_reports (month, produced_at, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (month) DO NOTHING",
            )
            .bind(&report.month)
            .bind(now)
            .bind(&body)
            .execute(self.db.pool())
            .await?
            .rows_affected();
            if new == 1 {
                tracing::info!(month = %report.month, keys = report.keys.len(),
                    over_use = report.over_use(), "casual usage report produced");
                produced.push(report.month);
            }
        }
        Ok(produced)
    }

    /// The casual usage reports, newest first: all of them for an administrator; for a client
    /// user, those holding a key of their organisation, with only those keys.
    pub async fn casual_reports(&self, actor: &CurrentUser) -> Result<Vec<CasualReportSummary>> {
        let scope = crate::client_scope(actor)?;
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT month, body FROM casual_reports ORDER BY month DESC")
                .fetch_all(self.db.pool())
                .await?;
        let mut out = Vec::new();
        for (_, body) in rows {
            let report = scoped(read_report(&body)?, scope);
            if scope.is_some() && report.keys.is_empty() {
                continue;
            }
            out.push(CasualReportSummary {
                keys: report.keys.len() as i64,
                users: report.keys.iter().map(|k| k.users.len() as i64).sum(),
                over_use: report.over_use() as i64,
                month: report.month,
                produced_at: report.produced_at,
            });
        }
        Ok(out)
    }

    /// One month's casual usage report, as the caller may read it.
    pub async fn casual_report(&self, actor: &CurrentUser, month: &str) -> Result<CasualReport> {
        let scope = crate::client_scope(actor)?;
        let month = casual::parse_month(month.trim())
            .ok_or_else(|| InputError::new("month", "Name the month as YYYY-MM."))?;
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM casual_reports WHERE month = $1")
                .bind(casual::month_text(month))
                .fetch_optional(self.db.pool())
                .await?;
        let report = scoped(
            read_report(&body.ok_or(Error::NotFound("The report of that month"))?)?,
            scope,
        );
        if scope.is_some() && report.keys.is_empty() {
            return Err(Error::NotFound("The report of that month"));
        }
        Ok(report)
    }

    /// One month's casual usage report as CSV (see `CasualReport::rows`).
    pub async fn casual_report_csv(&self, actor: &CurrentUser, month: &str) -> Result<String> {
        let report = self.casual_report(actor, month).await?;
        let mut out = crate::csv::line(&CASUAL_REPORT_HEADER);
        for row in report.rows() {
            let fields: Vec<&str> = row.iter().map(String::as_str).collect();
            out.push_str(&crate::csv::line(&fields));
        }
        Ok(out)
    }
}

impl Licentia {
    /// The use of a pool's features over `period` (hours, days or months): peak in use against
    /// count, and refusals. Without a pool: every pool the caller may read, added up per
    /// feature (the administrator's overview; a client user's own pools).
    pub async fn usage_chart(
        &self,
        actor: &CurrentUser,
        pool_id: Option<i64>,
        period: Period,
    ) -> Result<UsageChart> {
        let scope = match pool_id {
            Some(id) => {
                self.pool(actor, id).await?;
                None
            }
            None => crate::client_scope(actor)?,
        };
        let now = self.clock.now();
        let first = series::steps(period, now)[0];
        // Several pools' hours are added up per feature and hour first.
        let hourly: Vec<series::Hourly> = sqlx::query_as(
            "SELECT u.editor, u.feature, u.hour * 3600, CAST(SUM(u.refusals) AS BIGINT), \
             CAST(SUM(u.peak_in_use) AS BIGINT) \
             FROM usage_hourly u JOIN pools p ON p.id = u.pool_id \
             WHERE ($1 IS NULL OR u.pool_id = $1) AND ($2 IS NULL OR p.client_id = $2) \
             AND u.hour >= $3 GROUP BY u.editor, u.feature, u.hour",
        )
        .bind(pool_id)
        .bind(scope)
        .bind(first / 3600)
        .fetch_all(self.db.pool())
        .await?;
        let keys: Vec<series::CountedKey> = sqlx::query_as(
            "SELECT k.editor, k.feature, k.quantity, k.start_day, k.end_day, k.group_index, \
             k.pool_id FROM pool_keys k JOIN pools p ON p.id = k.pool_id \
             WHERE ($1 IS NULL OR k.pool_id = $1) AND ($2 IS NULL OR p.client_id = $2)",
        )
        .bind(pool_id)
        .bind(scope)
        .fetch_all(self.db.pool())
        .await?;
        Ok(UsageChart {
            period,
            pool_id,
            series: series::series(&hourly, &keys, period, now),
        })
    }

    /// The chart's figures as CSV (see `UsageChart::rows`).
    pub async fn usage_chart_csv(
        &self,
        actor: &CurrentUser,
        pool_id: Option<i64>,
        period: Period,
    ) -> Result<String> {
        let chart = self.usage_chart(actor, pool_id, period).await?;
        let mut out = crate::csv::line(&USAGE_CHART_HEADER);
        for row in chart.rows() {
            let fields: Vec<&str> = row.iter().map(String::as_str).collect();
            out.push_str(&crate::csv::line(&fields));
        }
        Ok(out)
    }

    /// What a job runs every minute: notes each feature's seats in use now as this hour's peak
    /// (a checkout notes it too), so an hour in which seats were held but none was taken still
    /// shows them.
    pub async fn record_usage_peaks(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO usage_hourly (pool_id, editor, feature, hour, peak_in_use) \
             SELECT pool_id, editor, feature, $1, CAST(SUM(in_use) AS BIGINT) FROM pool_keys \
             GROUP BY pool_id, editor, feature HAVING SUM(in_use) > 0 \
             ON CONFLICT (pool_id, editor, feature, hour) DO UPDATE SET peak_in_use = \
             CASE WHEN excluded.peak_in_use > usage_hourly.peak_in_use \
                  THEN excluded.peak_in_use ELSE usage_hourly.peak_in_use END",
        )
        .bind(self.clock.now() / 3600)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

fn usage_over(key: &CasualKeyUsage) -> impl Iterator<Item = &CasualUserUsage> {
    key.users.iter().filter(|u| u.over)
}

fn read_report(body: &str) -> Result<CasualReport> {
    serde_json::from_str(body).map_err(|e| Error::Internal(format!("a stored casual report: {e}")))
}

/// The report with only the keys of client `scope` (all when none).
fn scoped(mut report: CasualReport, scope: Option<i64>) -> CasualReport {
    if let Some(own) = scope {
        report.keys.retain(|k| k.client_id == Some(own));
    }
    report
}
