//! The licences list across orders and serials, and what it shares with the activations list
//! (an end within so many days); the sort, cursor and search of every filtered list are in
//! `crate::listing`.

use super::*;
use crate::listing::{descending, given, search, ListSort};
use protocol::catalog::{LicenceFilter, LicenceListRow, LicenceStatus};

/// Licences whose end falls within the next `days` days (0–3,650) of `today`.
pub(super) fn expiring(c: &mut Conditions, days: i64, today: i64) -> Result<()> {
    if !(0..=3650).contains(&days) {
        return Err(InputError::new("expiring_within_days", "Give 0 to 3,650 days.").into());
    }
    c.and(
        "l.open_ended = 0 AND l.expires_on BETWEEN ? AND ?",
        [Bind::Int(today), Bind::Int(today + days)],
    );
    Ok(())
}

/// Where a licence stands on day `today` at `now`: held by a machine activated with a serial
/// since revoked first (`serial_revoked`), then a passed end, then a machine holding it (bound
/// now, or removed without it and not freed yet). The licences list's `status` filter is the
/// same rule in SQL (`status_condition`).
pub fn licence_status(
    serial_revoked: bool,
    end: Option<i64>,
    open_ended: bool,
    bound: bool,
    frees_at: Option<i64>,
    today: i64,
    now: i64,
) -> LicenceStatus {
    if serial_revoked {
        LicenceStatus::Revoked
    } else if !open_ended && end.is_some_and(|end| end < today) {
        LicenceStatus::Expired
    } else if bound || frees_at.is_some_and(|at| at > now) {
        LicenceStatus::InUse
    } else {
        LicenceStatus::Available
    }
}

/// `licence_status` as a condition on `l`, `a` (its live activation) and `s` (the serial that
/// activation was made with).
fn status_condition(c: &mut Conditions, status: LicenceStatus, today: i64, now: i64) {
    const REVOKED: &str = "s.revoked_at IS NOT NULL";
    const NOT_REVOKED: &str = "s.revoked_at IS NULL";
    const EXPIRED: &str = "(l.open_ended = 0 AND l.expires_on < ?)";
    const NOT_EXPIRED: &str = "(l.open_ended <> 0 OR l.expires_on IS NULL OR l.expires_on >= ?)";
    const HELD: &str = "(a.id IS NOT NULL OR EXISTS (SELECT 1 FROM activations f \
         WHERE f.licence_id = l.id AND f.frees_at > ?))";
    match status {
        LicenceStatus::Revoked => c.and(REVOKED, []),
        LicenceStatus::Expired => {
            c.and(&format!("{NOT_REVOKED} AND {EXPIRED}"), [Bind::Int(today)])
        }
        LicenceStatus::InUse => c.and(
            &format!("{NOT_REVOKED} AND {NOT_EXPIRED} AND {HELD}"),
            [Bind::Int(today), Bind::Int(now)],
        ),
        LicenceStatus::Available => c.and(
            &format!("{NOT_REVOKED} AND {NOT_EXPIRED} AND NOT {HELD}"),
            [Bind::Int(today), Bind::Int(now)],
        ),
    }
}

/// The joins a licences list adds to `LICENCE_TABLES` (its filters name `c`, `ls`, `p`).
const LICENCES_JOIN: &str = " LEFT JOIN clients c ON c.id = o.client_id \
     LEFT JOIN serials ls ON ls.id = l.serial_id \
     JOIN products p ON p.id = COALESCE(o.product_id, ls.product_id)";

impl Licentia {
    /// Licences across orders and serials as `filter` picks and orders them (newest first by
    /// default): every one for an administrator, the client's own for a client user (web
    /// licences are administrators'). `secrets`: the search may match licence keys and serials
    /// (not for a caller who sees them masked, who could otherwise learn them a character at a
    /// time).
    pub async fn list_licences(
        &self,
        actor: &CurrentUser,
        filter: &LicenceFilter,
        secrets: bool,
        page: &Page,
    ) -> Result<Paged<LicenceListRow>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            licence: LicenceRow,
            client_id: Option<i64>,
            client_name: Option<String>,
            product_code: String,
            serial: Option<String>,
            serial_revoked_at: Option<i64>,
            sort_int: i64,
            sort_text: String,
        }
        // One moment for the conditions and the statuses shown, so they agree.
        let now = self.clock.now();
        let (mut c, sort) = self.licence_conditions(actor, filter, secrets, now)?;
        sort.resume(&mut c, page)?;
        let select = format!(
            "SELECT {LICENCE_COLUMNS}, o.client_id, c.name AS client_name, \
             p.code AS product_code, ls.serial, s.revoked_at AS serial_revoked_at, {} \
             {LICENCE_TABLES}{LICENCES_JOIN}",
            sort.columns()
        );
        let sql = c.page_sql(&select, &sort.order_by(), page.fetch());
        let rows: Vec<Row> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        let rows = page.finish(rows, |r| {
            sort.cursor(r.sort_int, &r.sort_text, r.licence.id)
        });
        let today = day_of(now);
        let mut items = Vec::with_capacity(rows.items.len());
        for r in rows.items {
            let status = licence_status(
                r.serial_revoked_at.is_some(),
                r.licence.terms.expires_on,
                r.licence.open_ended != 0,
                r.licence.act_id.is_some(),
                r.licence.frees_at,
                today,
                now,
            );
            items.push(LicenceListRow {
                licence: r.licence.into_licence(now)?,
                client_id: r.client_id,
                client_name: r.client_name.unwrap_or_default(),
                product_code: r.product_code,
                serial: r.serial,
                status,
            });
        }
        Ok(Paged {
            items,
            next: rows.next,
        })
    }

    /// How many licences `filter` picks (all pages).
    pub async fn count_licences(
        &self,
        actor: &CurrentUser,
        filter: &LicenceFilter,
        secrets: bool,
    ) -> Result<i64> {
        let (c, _) = self.licence_conditions(actor, filter, secrets, self.clock.now())?;
        c.count(self.db.pool(), &format!("{LICENCE_TABLES}{LICENCES_JOIN}"))
            .await
    }

    /// The conditions of the licences `f` picks, within `actor`'s scope, and its order.
    fn licence_conditions(
        &self,
        actor: &CurrentUser,
        f: &LicenceFilter,
        secrets: bool,
        now: i64,
    ) -> Result<(Conditions, ListSort)> {
        let today = day_of(now);
        let mut c = Conditions::default();
        let scope = crate::client_scope(actor)?;
        match scope {
            Some(own) => c.and("o.client_id = ?", [Bind::Int(own)]),
            None => {
                if let Some(client) = f.client_id {
                    c.and("o.client_id = ?", [Bind::Int(client)]);
                }
            }
        }
        if let Some(status) = given(&f.status) {
            let status = LicenceStatus::parse(&status).ok_or_else(|| {
                InputError::new("status", "Choose available, in_use, expired or revoked.")
            })?;
            status_condition(&mut c, status, today, now);
        }
        if let Some(code) = given(&f.product) {
            c.and("p.code = ?", [Bind::Text(code)]);
        }
        if let Some(feature) = given(&f.feature) {
            let feature = protocol::catalog::feature_code(&feature)
                .map_err(|e| InputError::new("feature", e.message))?;
            // Features are stored as a JSON array of codes, each between quotes. Found by
            // taking it out (case counts, on both databases; LIKE ignores it on SQLite).
            c.and(
                "replace(COALESCE(l.features, o.features, '[]'), ?, '') \
                 <> COALESCE(l.features, o.features, '[]')",
                [Bind::Text(format!("\"{feature}\""))],
            );
        }
        if let Some(q) = given(&f.q) {
            let mut fields = vec![
                "lower(COALESCE(c.name, ''))",
                "lower(p.code)",
                "lower(COALESCE(a.hostname, ''))",
            ];
            // The notes are the vendor's: a client user's search could learn them a character
            // at a time.
            if scope.is_none() {
                fields.push("lower(l.notes)");
            }
            if secrets {
                fields.extend(["lower(l.licence_key)", "lower(COALESCE(ls.serial, ''))"]);
            }
            search(&mut c, &q, &fields, None)?;
        }
        if let Some(days) = f.expiring_within_days {
            expiring(&mut c, days, today)?;
        }
        if f.time_limited == Some(true) {
            // The dashboard's "time-limited licences running" counts the same rows.
            c.and("l.open_ended = 0 AND l.expires_on >= ?", [Bind::Int(today)]);
        }
        let descending = descending(&f.order, true)?;
        let (expr, text) = match given(&f.sort).as_deref() {
            None | Some("created") => ("l.id", false),
            // No end sorts after every end.
            Some("expires") => (
                "CASE WHEN l.open_ended <> 0 OR l.expires_on IS NULL THEN 99999999 \
                 ELSE l.expires_on END",
                false,
            ),
            Some("client") => ("lower(COALESCE(c.name, ''))", true),
            Some("product") => ("p.code", true),
            Some(_) => {
                return Err(
                    InputError::new("sort", "Sort by created, expires, client or product.").into(),
                )
            }
        };
        Ok((
            c,
            ListSort {
                expr,
                text,
                descending,
                id: "l.id",
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 20_000 * 86_400 + 3_600;
    const TODAY: i64 = 20_000;

    fn status(
        revoked: bool,
        end: Option<i64>,
        open: bool,
        bound: bool,
        frees: Option<i64>,
    ) -> LicenceStatus {
        licence_status(revoked, end, open, bound, frees, TODAY, NOW)
    }

    #[test]
    fn a_revoked_serial_outranks_everything() {
        assert_eq!(
            status(true, Some(TODAY - 5), false, true, None),
            LicenceStatus::Revoked
        );
    }

    #[test]
    fn a_licence_expires_the_day_after_its_last() {
        assert_eq!(
            status(false, Some(TODAY), false, true, None),
            LicenceStatus::InUse
        );
        assert_eq!(
            status(false, Some(TODAY - 1), false, true, None),
            LicenceStatus::Expired
        );
        // No end date, whatever end it once had.
        assert_eq!(
            status(false, Some(TODAY - 1), true, false, None),
            LicenceStatus::Available
        );
        assert_eq!(
            status(false, None, false, false, None),
            LicenceStatus::Available
        );
    }

    #[test]
    fn a_licence_removed_without_its_machine_is_in_use_until_it_frees() {
        assert_eq!(
            status(false, None, false, false, Some(NOW + 1)),
            LicenceStatus::InUse
        );
        assert_eq!(
            status(false, None, false, false, Some(NOW)),
            LicenceStatus::Available
        );
    }
}
