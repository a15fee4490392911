//! Licences and where they are in use: the activations list, one licence, and an
//! administrator's edits of its terms (checked by `licence_terms`, shared with the offline
//! answer that gives terms in its activation's transaction).

use super::lists::expiring;
use super::*;
use crate::listing::{descending, given, search, ListSort};

/// The tables an activations list reads from (its filters name `a`, `l`, `o`, `c`, `s`, `p`).
const ACTIVATIONS_FROM: &str = "FROM activations a JOIN licences l ON l.id = a.licence_id \
     LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN clients c ON c.id = o.client_id \
     LEFT JOIN serials s ON s.id = a.serial_id \
     JOIN products p ON p.id = COALESCE(o.product_id, \
        (SELECT ls.product_id FROM serials ls WHERE ls.id = l.serial_id))";

/// What a change of terms grants, as stored JSON; `None` keeps each as it is.
#[derive(Default)]
struct Grants {
    features: Option<String>,
    counters: Option<String>,
}

/// The most activations and audit entries a licence's page shows.
const ACTIVATIONS_SHOWN: i64 = 500;
const CHANGES_SHOWN: i64 = 200;

/// A licence's end moved `days` later, from its end or from today if it has passed; `None`
/// for a licence without an end date (never given one, or not activated yet).
pub(crate) fn extended_end(licence: &Licence, today: i64, days: i64) -> Option<i64> {
    let end = licence.expires_on.as_deref().and_then(parse_date)?;
    Some(end.max(today) + days)
}

/// A licence's notes: at most 4,000 characters, trimmed.
fn notes_text(raw: &str) -> Result<String> {
    let notes = raw.trim();
    if notes.chars().count() > 4000 {
        return Err(InputError::new("notes", "Notes hold at most 4,000 characters.").into());
    }
    Ok(notes.to_owned())
}

impl Licentia {
    /// Activations as `filter` picks and orders them (live ones, newest first, by default):
    /// every client's for an administrator, one's own for a client user. `secrets`: the search
    /// may match licence keys and serials (not for a caller who sees them masked, who could
    /// otherwise learn them a character at a time).
    pub async fn list_activations(
        &self,
        actor: &CurrentUser,
        filter: &ActivationFilter,
        secrets: bool,
        page: &Page,
    ) -> Result<Paged<ActivationRow>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            activation: ActivationRecord,
            licence_key: String,
            order_id: Option<i64>,
            serial_id: Option<i64>,
            client_name: Option<String>,
            product_code: String,
            expires_on: Option<i64>,
            sort_int: i64,
            sort_text: String,
        }
        let (mut c, sort) = self.activation_conditions(actor, filter, secrets)?;
        sort.resume(&mut c, page)?;
        let select = format!(
            "SELECT {ACTIVATION_COLUMNS}, l.licence_key, l.order_id, l.serial_id, \
             c.name AS client_name, p.code AS product_code, l.expires_on, {} {ACTIVATIONS_FROM}",
            sort.columns()
        );
        let sql = c.page_sql(&select, &sort.order_by(), page.fetch());
        let rows: Vec<Row> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        let rows = page.finish(rows, |r| {
            sort.cursor(r.sort_int, &r.sort_text, r.activation.id)
        });
        Ok(rows.map(|r| ActivationRow {
            activation: r.activation.into(),
            licence_key: r.licence_key,
            order_id: r.order_id,
            serial_id: r.serial_id,
            client_name: r.client_name.unwrap_or_default(),
            product_code: r.product_code,
            expires_on: r.expires_on.map(format_date),
        }))
    }

    /// How many activations `filter` picks (all pages).
    pub async fn count_activations(
        &self,
        actor: &CurrentUser,
        filter: &ActivationFilter,
        secrets: bool,
    ) -> Result<i64> {
        let (c, _) = self.activation_conditions(actor, filter, secrets)?;
        c.count(self.db.pool(), ACTIVATIONS_FROM).await
    }

    /// The activations `filter` picks as CSV, in its order (at most `EXPORT_MAX` rows; times
    /// and dates in UTC, ISO 8601).
    pub async fn activations_csv(
        &self,
        actor: &CurrentUser,
        filter: &ActivationFilter,
        secrets: bool,
    ) -> Result<String> {
        let rows = self
            .list_activations(
                actor,
                filter,
                secrets,
                &Page::first(crate::audit::EXPORT_MAX),
            )
            .await?
            .items;
        let mut out = crate::csv::line(&[
            "activation_id",
            "licence_id",
            "licence_key",
            "serial",
            "client",
            "product",
            "machine",
            "mode",
            "activated_at_utc",
            "last_validated_at_utc",
            "validations",
            "removed_at_utc",
            "expires_on",
        ]);
        let time = |t: Option<i64>| t.map(protocol::time::format_rfc3339).unwrap_or_default();
        for r in rows {
            let a = &r.activation;
            out.push_str(&crate::csv::line::<&str>(&[
                &a.id.to_string(),
                &a.licence_id.to_string(),
                if secrets { &r.licence_key } else { "" },
                if secrets {
                    a.serial.as_deref().unwrap_or("")
                } else {
                    ""
                },
                &r.client_name,
                &r.product_code,
                &a.hostname,
                &a.mode,
                &time(Some(a.activated_at)),
                &time(a.last_validated_at),
                &a.validations.to_string(),
                &time(a.removed_at),
                r.expires_on.as_deref().unwrap_or(""),
            ]));
        }
        Ok(out)
    }

    /// The conditions of the activations `filter` picks, within `actor`'s scope, and its order.
    fn activation_conditions(
        &self,
        actor: &CurrentUser,
        f: &ActivationFilter,
        secrets: bool,
    ) -> Result<(Conditions, ListSort)> {
        let mut c = Conditions::default();
        match given(&f.status).as_deref().unwrap_or("live") {
            "live" => c.and("a.removed_at IS NULL", []),
            "removed" => c.and("a.removed_at IS NOT NULL", []),
            "all" => {}
            _ => return Err(InputError::new("status", "Choose live, removed or all.").into()),
        }
        match crate::client_scope(actor)? {
            Some(own) => c.and("o.client_id = ?", [Bind::Int(own)]),
            None => {
                if let Some(client) = f.client_id {
                    c.and("o.client_id = ?", [Bind::Int(client)]);
                }
            }
        }
        if let Some(code) = given(&f.product) {
            c.and("p.code = ?", [Bind::Text(code)]);
        }
        match given(&f.mode).as_deref() {
            None => {}
            Some(m @ ("online" | "offline")) => c.and("a.mode = ?", [Bind::Text(m.to_owned())]),
            Some(_) => return Err(InputError::new("mode", "Choose online or offline.").into()),
        }
        if let Some(q) = given(&f.q) {
            let mut fields = vec![
                "lower(a.hostname)",
                "lower(COALESCE(c.name, ''))",
                "lower(p.code)",
            ];
            if secrets {
                fields.extend(["lower(l.licence_key)", "lower(COALESCE(s.serial, ''))"]);
            }
            search(&mut c, &q, &fields, None)?;
        }
        if let Some(days) = f.expiring_within_days {
            expiring(&mut c, days, day_of(self.clock.now()))?;
        }
        let descending = descending(&f.order, true)?;
        let (expr, text) = match given(&f.sort).as_deref() {
            None | Some("activated") => ("a.activated_at", false),
            Some("validated") => ("COALESCE(a.last_validated_at, 0)", false),
            Some("machine") => ("lower(a.hostname)", true),
            Some("client") => ("lower(COALESCE(c.name, ''))", true),
            Some("product") => ("p.code", true),
            Some(_) => {
                return Err(InputError::new(
                    "sort",
                    "Sort by activated, validated, machine, client or product.",
                )
                .into())
            }
        };
        Ok((
            c,
            ListSort {
                expr,
                text,
                descending,
                id: "a.id",
            },
        ))
    }

    /// The client a licence belongs to, for access checks: `None` for a web licence, which only
    /// administrators manage.
    pub(crate) async fn licence_client(&self, licence_id: i64) -> Result<Option<i64>> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT o.client_id FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             WHERE l.id = $1",
        )
        .bind(licence_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|(c,)| c).ok_or(Error::NotFound("The licence"))
    }

    /// Checks that `actor` may see the licence `licence_id`.
    pub(crate) async fn require_licence_access(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
    ) -> Result<()> {
        match self.licence_client(licence_id).await? {
            Some(client_id) => self.require_client_access(actor, client_id),
            None => require_admin(actor),
        }
    }

    pub async fn licence(&self, actor: &CurrentUser, licence_id: i64) -> Result<Licence> {
        self.require_licence_access(actor, licence_id).await?;
        sqlx::query_as::<_, LicenceRow>(&format!("{LICENCE_SELECT} WHERE l.id = $1"))
            .bind(licence_id)
            .fetch_one(self.db.pool())
            .await?
            .into_licence(self.clock.now())
    }

    /// An administrator changes what a licence grants; the application picks it up at its next
    /// validation. `expiry` sets the end (today or later), takes it away, or keeps it.
    pub async fn edit_licence(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
        features: Vec<String>,
        counters: BTreeMap<String, i64>,
        expiry: ExpiryEdit,
    ) -> Result<Licence> {
        require_admin(actor)?;
        self.require_licence_access(actor, licence_id).await?;
        let product_id = self.product_id_of_licence(licence_id).await?;
        let terms = self
            .licence_terms(product_id, features, counters, &expiry)
            .await?;
        let grants = Grants {
            features: Some(terms.features),
            counters: Some(terms.counters),
        };
        self.write_licence_terms(actor, licence_id, |_| Ok((grants, terms.end)))
            .await
    }

    /// Writes a licence's terms as `change` decides from the licence as it is inside the
    /// transaction (the row locked first, so two changes at once apply one after the other):
    /// its features and counters as JSON (each `None` kept as it is — a licence still following
    /// its order keeps following it), and its end; with the audit entry of what changed.
    async fn write_licence_terms(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
        change: impl FnOnce(&Licence) -> Result<(Grants, TermsEnd)>,
    ) -> Result<Licence> {
        let client = self.licence_client(licence_id).await?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        // Takes the row's lock (PostgreSQL) or the writer's (SQLite) before reading it.
        sqlx::query("UPDATE licences SET open_ended = open_ended WHERE id = $1")
            .bind(licence_id)
            .execute(&mut *tx)
            .await?;
        let read = format!("{LICENCE_SELECT} WHERE l.id = $1");
        let before = sqlx::query_as::<_, LicenceRow>(&read)
            .bind(licence_id)
            .fetch_one(&mut *tx)
            .await?
            .into_licence(now)?;
        let (grants, end) = change(&before)?;
        let (keep, end, open_ended) = match end {
            TermsEnd::Keep => (1, None, 0),
            TermsEnd::NoEnd => (0, None, 1),
            TermsEnd::On(day) => (0, Some(day), 0),
        };
        let Grants { features, counters } = grants;
        // Keep: the end and the open-ended mark stay; otherwise both are set.
        sqlx::query(
            "UPDATE licences SET features = CASE WHEN $1 IS NULL THEN features ELSE $1 END, \
             counters = CASE WHEN $2 IS NULL THEN counters ELSE $2 END, \
             expires_on = CASE WHEN $3 = 1 THEN expires_on ELSE $4 END, \
             open_ended = CASE WHEN $3 = 1 THEN open_ended ELSE $5 END WHERE id = $6",
        )
        .bind(features)
        .bind(counters)
        .bind(keep)
        .bind(end)
        .bind(open_ended)
        .bind(licence_id)
        .execute(&mut *tx)
        .await?;
        tracing::info!(licence_id, by = actor.id, "licence edited");
        let after = sqlx::query_as::<_, LicenceRow>(&read)
            .bind(licence_id)
            .fetch_one(&mut *tx)
            .await?
            .into_licence(now)?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::LicenceEdit,
                licence_subject(licence_id, &after.key),
            )
            .of_client(client)
            .changes(record_changes(
                &licence_terms_json(&before),
                &licence_terms_json(&after),
                &[],
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(after)
    }

    /// An administrator moves a licence's end `days` later (1 to 3,650): from its end, or from
    /// today when it has ended or has none fixed yet. A licence without an end date has nothing
    /// to extend.
    pub async fn extend_licence(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
        days: i64,
    ) -> Result<Licence> {
        require_admin(actor)?;
        if !(1..=3650).contains(&days) {
            return Err(InputError::new("days", "Extend by 1 to 3,650 days.").into());
        }
        self.require_licence_access(actor, licence_id).await?;
        let today = day_of(self.clock.now());
        self.write_licence_terms(actor, licence_id, |before| {
            match extended_end(before, today, days) {
                Some(day) => Ok((Grants::default(), TermsEnd::On(day))),
                None => Err(InputError::new(
                    "days",
                    "This licence has no end date (yet): there is nothing to extend. A limited \
                     licence gets its end at its first activation; Edit sets one.",
                )
                .into()),
            }
        })
        .await
    }

    /// An administrator makes a time-limited licence (a trial) a full one: no end date, its
    /// features and counters as they are.
    pub async fn make_licence_permanent(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
    ) -> Result<Licence> {
        require_admin(actor)?;
        self.require_licence_access(actor, licence_id).await?;
        let limited = self.product_of_licence(licence_id).await?.settings.limited;
        self.write_licence_terms(actor, licence_id, |before| {
            // A licence with no end that is not waiting for one has nothing to lift.
            if before.open_ended || (before.expires_on.is_none() && !limited) {
                return Err(Error::Conflict(
                    "This licence already has no end date.".into(),
                ));
            }
            Ok((Grants::default(), TermsEnd::NoEnd))
        })
        .await
    }

    /// An administrator applies one action to many licences: every licence is checked first
    /// (it exists, the feature is in its product's catalogue, it has an end to extend, it is on
    /// a machine to be removed from) and nothing changes if one fails; then each is changed as
    /// its own edit, with its own audit entry. Returns how many were changed.
    pub async fn bulk_licences(
        &self,
        actor: &CurrentUser,
        ids: &[i64],
        action: &BulkLicenceAction,
    ) -> Result<usize> {
        require_admin(actor)?;
        let ids = protocol::catalog::bulk_ids(ids)?;
        let today = day_of(self.clock.now());
        let mut licences = Vec::with_capacity(ids.len());
        for id in &ids {
            let licence = self.licence(actor, *id).await?;
            let refuse = |why: String| -> Result<()> { Err(InputError::new("ids", why).into()) };
            match action {
                BulkLicenceAction::Extend { days } => {
                    if !(1..=3650).contains(days) {
                        return Err(InputError::new("days", "Extend by 1 to 3,650 days.").into());
                    }
                    if extended_end(&licence, today, *days).is_none() {
                        refuse(format!(
                            "Licence {} has no end date: nothing was extended. Untick it, or \
                             give it an end first.",
                            licence.key
                        ))?;
                    }
                }
                BulkLicenceAction::AddFeature { feature } => {
                    let product = self.product_of_licence(*id).await?;
                    features_in_catalogue(std::slice::from_ref(feature), &product.features)
                        .map_err(|_| {
                            InputError::new(
                                "feature",
                                format!(
                                    "The feature {feature} is not in the catalogue of {} \
                                     (licence {}): nothing was changed.",
                                    product.code, licence.key
                                ),
                            )
                        })?;
                }
                BulkLicenceAction::RemoveFeature { .. } => {}
                BulkLicenceAction::RemoveFromMachines => {
                    if licence.activation.is_none() {
                        refuse(format!(
                            "Licence {} is on no machine: nothing was removed. Untick it.",
                            licence.key
                        ))?;
                    }
                }
            }
            licences.push(licence);
        }
        // A feature action that would change nothing (added where it is, removed where it is
        // not) leaves that licence alone: no entry, not counted.
        licences.retain(|l| {
            action
                .features_after(&l.features)
                .is_none_or(|after| after != l.features)
        });
        let mut done = 0;
        for licence in &licences {
            let changed = match action {
                BulkLicenceAction::Extend { days } => self
                    .extend_licence(actor, licence.id, *days)
                    .await
                    .map(drop),
                BulkLicenceAction::AddFeature { .. } | BulkLicenceAction::RemoveFeature { .. } => {
                    // The features become the licence's own; its counters are left as they are.
                    self.write_licence_terms(actor, licence.id, |before| {
                        let features = action.features_after(&before.features).unwrap_or_default();
                        let grants = Grants {
                            features: Some(json(&features)),
                            counters: None,
                        };
                        Ok((grants, TermsEnd::Keep))
                    })
                    .await
                    .map(drop)
                }
                BulkLicenceAction::RemoveFromMachines => {
                    let remover = crate::activation::Remover::Portal {
                        actor,
                        force: true,
                        free_now: false,
                    };
                    self.remove_activation(&licence.key, None, remover)
                        .await
                        .map(drop)
                }
            };
            match changed {
                Ok(()) => done += 1,
                // Something changed under it since the check: say what was done and what not.
                Err(e) if done > 0 => {
                    return Err(Error::Conflict(format!(
                        "{done} of {} licences were changed; then licence {}: {e} The rest were \
                         left as they were.",
                        licences.len(),
                        licence.key
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// An administrator's notes on a licence (at most 4,000 characters; client users never
    /// read them, nor the audit entry that records them).
    pub async fn set_licence_notes(
        &self,
        actor: &CurrentUser,
        licence_id: i64,
        notes: &str,
    ) -> Result<()> {
        require_admin(actor)?;
        let notes = notes_text(notes)?;
        let licence = self.licence(actor, licence_id).await?;
        let mut tx = self.db.pool().begin().await?;
        let before: String = sqlx::query_scalar("SELECT notes FROM licences WHERE id = $1")
            .bind(licence_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE licences SET notes = $1 WHERE id = $2")
            .bind(&notes)
            .bind(licence_id)
            .execute(&mut *tx)
            .await?;
        // The notes are the vendor's own: the entry is not the client's, and says that they
        // changed, never what they say.
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::LicenceEdit,
                licence_subject(licence_id, &licence.key),
            )
            .changes(record_changes(
                &serde_json::json!({ "notes": before }),
                &serde_json::json!({ "notes": notes }),
                &[],
            ))
            .private("notes"),
        )
        .await?;
        crate::db::commit(tx).await
    }

    /// The product a licence is of (by its order or its serial).
    async fn product_of_licence(&self, licence_id: i64) -> Result<Product> {
        let id = self.product_id_of_licence(licence_id).await?;
        self.product_row(id).await?.into_product()
    }

    async fn product_id_of_licence(&self, licence_id: i64) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COALESCE(o.product_id, s.product_id) FROM licences l \
             LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN serials s ON s.id = l.serial_id \
             WHERE l.id = $1",
        )
        .bind(licence_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::NotFound("The licence"))
    }

    /// One licence's page: its terms, every activation it had, what the audit log says about
    /// it and (administrators) the vendor's notes.
    pub async fn licence_page(&self, actor: &CurrentUser, licence_id: i64) -> Result<LicencePage> {
        let licence = self.licence(actor, licence_id).await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            product_id: i64,
            client_id: Option<i64>,
            client_name: Option<String>,
            reference: Option<String>,
            serial: Option<String>,
            notes: String,
        }
        let row: Row = sqlx::query_as(
            "SELECT COALESCE(o.product_id, s.product_id) AS product_id, o.client_id, \
             c.name AS client_name, o.reference, s.serial, l.notes \
             FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             LEFT JOIN clients c ON c.id = o.client_id LEFT JOIN serials s ON s.id = l.serial_id \
             WHERE l.id = $1",
        )
        .bind(licence_id)
        .fetch_one(self.db.pool())
        .await?;
        let product = self.product_row(row.product_id).await?.into_product()?;
        let activations: Vec<ActivationRecord> = sqlx::query_as(&format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations a \
             LEFT JOIN serials s ON s.id = a.serial_id WHERE a.licence_id = $1 \
             ORDER BY a.activated_at DESC, a.id DESC LIMIT {ACTIVATIONS_SHOWN}"
        ))
        .bind(licence_id)
        .fetch_all(self.db.pool())
        .await?;
        let changes = self
            .entries_about(actor, &licence_subject_prefix(licence_id), CHANGES_SHOWN)
            .await?;
        let admin = actor.role == Role::Admin;
        let today = day_of(self.clock.now());
        let expired = licence
            .expires_on
            .as_deref()
            .and_then(parse_date)
            .is_some_and(|end| end < today);
        Ok(LicencePage {
            expired,
            licence,
            product,
            client: row
                .client_id
                .zip(row.client_name)
                .map(|(id, name)| protocol::account::ClientRef { id, name }),
            order_reference: row.reference,
            serial: row.serial,
            activations: activations.into_iter().map(Activation::from).collect(),
            changes,
            notes: admin.then_some(row.notes),
        })
    }

    /// Checks terms for a licence of product `product_id` (features from its catalogue, counters,
    /// an end today or later) without changing anything.
    pub(crate) async fn licence_terms(
        &self,
        product_id: i64,
        features: Vec<String>,
        counters: BTreeMap<String, i64>,
        expiry: &ExpiryEdit,
    ) -> Result<LicenceTerms> {
        let product = self.product_row(product_id).await?.into_product()?;
        let features = protocol::catalog::feature_list(&features)?;
        features_in_catalogue(&features, &product.features)?;
        let counters = protocol::catalog::counters(&counters)?;
        let today = day_of(self.clock.now());
        Ok(LicenceTerms {
            features: json(&features),
            counters: json(&counters),
            end: match expiry {
                ExpiryEdit::Keep => TermsEnd::Keep,
                ExpiryEdit::NoEnd => TermsEnd::NoEnd,
                ExpiryEdit::On(d) => TermsEnd::On(parse_end_date(d, today)?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn licence(expires_on: Option<&str>, open_ended: bool) -> Licence {
        Licence {
            id: 1,
            order_id: Some(1),
            serial_id: None,
            key: "K".into(),
            features: vec![],
            counters: BTreeMap::new(),
            expires_on: expires_on.map(str::to_owned),
            open_ended,
            activation_count: 0,
            activation: None,
            pending_free: None,
        }
    }

    #[test]
    fn a_licence_is_extended_from_its_end_or_from_today_once_ended() {
        let today = parse_date("2027-03-10").expect("day");
        // Running: from its end.
        let running = licence(Some("2027-03-31"), false);
        assert_eq!(extended_end(&running, today, 30), parse_date("2027-04-30"));
        // Ending today: from today, which is its end.
        let last_day = licence(Some("2027-03-10"), false);
        assert_eq!(extended_end(&last_day, today, 1), Some(today + 1));
        // Ended: from today, not from the past end.
        let ended = licence(Some("2026-12-31"), false);
        assert_eq!(extended_end(&ended, today, 30), Some(today + 30));
        // No end fixed (not activated yet, or never given one): nothing to extend.
        assert_eq!(extended_end(&licence(None, false), today, 30), None);
        assert_eq!(extended_end(&licence(None, true), today, 30), None);
    }

    #[test]
    fn notes_are_trimmed_and_bounded() {
        assert_eq!(notes_text("  paid  ").expect("ok"), "paid");
        assert_eq!(
            notes_text(&"é".repeat(4000))
                .expect("4,000 characters")
                .chars()
                .count(),
            4000
        );
        assert!(notes_text(&"é".repeat(4001)).is_err());
    }
}
