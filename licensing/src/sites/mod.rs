//! Site licence servers, at the vendor: a licence of a product sold for site servers links one
//! customer's server at a time, which is then issued *entitlements* — the pool keys its licence
//! grants, signed with the activation keys, bound to the server's fingerprint, numbered, and
//! good for granting new seats until their refresh-by time. A site refreshes to pick up the
//! licence's changes (more seats, a renewal, a revocation); it moves to new hardware by
//! unlinking first (its word that it gave the entitlement up), within the anti-churn limits of
//! activations.

pub mod entitlement;

use crate::activation::{fingerprint, hostname};
use crate::audit::{Entry, Who};
use crate::catalog::{licence_subject, parse_licence_key};
use crate::{Error, Licentia, Result};
use entitlement::{entitled_keys, SiteTerms};
use protocol::account::CurrentUser;
use protocol::audit::AuditAction;
use protocol::input::InputError;
use protocol::site::{EntitlementAnswer, EntitlementClaims, LinkRequest, SiteView, UnlinkCode};
use protocol::time::{day_of, format_date, format_utc};
use std::collections::BTreeMap;

/// The highest entitlement number a site may say it holds (far above any issued).
const MAX_HELD: i64 = 1 << 40;

/// How a site reached the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteChannel {
    /// The site server asked itself, over the network.
    Online,
    /// Its request code was pasted into the vendor's portal.
    Code,
}

impl SiteChannel {
    fn code(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Code => "code",
        }
    }
}

/// The licence a site links with, and what the entitlement is made of.
#[derive(sqlx::FromRow)]
struct SiteLicence {
    id: i64,
    licence_key: String,
    order_id: i64,
    client_id: i64,
    client_name: String,
    features: String,
    counters: String,
    expires_on: Option<i64>,
    open_ended: i64,
    product_code: String,
    editor: String,
    site_refresh_days: Option<i64>,
    limited: i64,
    validity_days: Option<i64>,
    fixed_start: Option<i64>,
    fixed_end: Option<i64>,
    expire_day_of_month: Option<i64>,
    activation_count: i64,
    max_activations: i64,
}

impl SiteLicence {
    fn limits(&self) -> crate::activation::expiry::Limits {
        crate::activation::expiry::Limits::of_row(
            self.validity_days,
            self.fixed_start,
            self.fixed_end,
            self.expire_day_of_month,
        )
    }
}

/// A site's row, as linking reads it.
#[derive(sqlx::FromRow)]
struct SiteRow {
    id: i64,
    fingerprint: String,
    hostname: String,
    seq: i64,
    linked_at: i64,
    revoked_at: Option<i64>,
    revoked_reason: String,
    unlinked_at: Option<i64>,
    frees_at: Option<i64>,
}

impl Licentia {
    /// Links the site server `req` describes with its licence, or refreshes the link it has:
    /// answers with a new entitlement, numbered after every one issued for the licence and
    /// after the one the site holds.
    pub async fn link_site(
        &self,
        req: &LinkRequest,
        channel: SiteChannel,
    ) -> Result<EntitlementAnswer> {
        let key = parse_licence_key(&req.key)?;
        let fp = fingerprint(&req.fp)?;
        let host = hostname(&req.host)?;
        // Bounded, so the next number never runs out.
        if !(0..=MAX_HELD).contains(&req.held) {
            return Err(InputError::new(
                "held",
                "The entitlement number held is 0 (none) or a number the vendor issued.",
            )
            .into());
        }
        let now = self.clock.now();
        let today = day_of(now);
        // Read before the transaction: it may take a connection of its own.
        let (kid, signing) = self.signing_key().await?;
        let mut tx = self.db.pool().begin().await?;
        // The licence's row, written to take it: two links of one licence take turns, and the
        // second reads the first's site and the terms as they are now.
        sqlx::query("UPDATE licences SET open_ended = open_ended WHERE licence_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        let lic: SiteLicence = sqlx::query_as(
            "SELECT l.id, l.licence_key, l.order_id, o.client_id, c.name AS client_name, \
             COALESCE(l.features, o.features, '[]') AS features, \
             COALESCE(l.counters, o.counters, '{}') AS counters, l.expires_on, l.open_ended, \
             p.code AS product_code, p.editor, p.site_refresh_days, p.limited, p.validity_days, \
             p.fixed_start, p.fixed_end, p.expire_day_of_month, l.activation_count, \
             p.max_activations \
             FROM licences l JOIN orders o ON o.id = l.order_id \
             JOIN clients c ON c.id = o.client_id JOIN products p ON p.id = o.product_id \
             WHERE l.licence_key = $1",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("A licence with this key"))?;
        let Some(days) = lic.site_refresh_days else {
            return Err(Error::refused(
                "This licence is activated by the application on its own machine, not by a \
                 site licence server."
                    .into(),
            ));
        };
        // A limited licence's end is fixed when it is first used, here as on a machine.
        let fix_end = lic.limited != 0 && lic.open_ended == 0 && lic.expires_on.is_none();
        let end = if fix_end {
            Some(
                crate::activation::expiry::expiry(&lic.limits(), today).map_err(|e| match e {
                    crate::activation::expiry::ExpiryError::Unbounded => {
                        Error::Internal("a limited product has no limit".into())
                    }
                    e => Error::refused(format!("This licence cannot be used now: {e}.")),
                })?,
            )
        } else {
            lic.expires_on.filter(|_| lic.open_ended == 0)
        };
        if let Some(end) = end.filter(|end| *end < today) {
            return Err(Error::Gone(format!(
                "This licence expired on {}: ask your vendor to renew it.",
                format_date(end)
            )));
        }
        let features: Vec<String> = serde_json::from_str(&lic.features)
            .map_err(|e| Error::Internal(format!("a licence's features: {e}")))?;
        let counters: BTreeMap<String, i64> = serde_json::from_str(&lic.counters)
            .map_err(|e| Error::Internal(format!("a licence's counters: {e}")))?;
        let editor = if lic.editor.is_empty() {
            lic.product_code.as_str()
        } else {
            lic.editor.as_str()
        };
        let keys = entitled_keys(&SiteTerms {
            editor,
            features: &features,
            counters: &counters,
            end,
            client_id: lic.client_id,
            order_id: lic.order_id,
            today,
        });
        if fix_end {
            sqlx::query("UPDATE licences SET expires_on = $1 WHERE id = $2 AND expires_on IS NULL")
                .bind(end)
                .bind(lic.id)
                .execute(&mut *tx)
                .await?;
        }
        let since = now - self.auth.churn.window_secs;
        let rows: Vec<SiteRow> = sqlx::query_as(
            "SELECT id, fingerprint, hostname, seq, linked_at, revoked_at, revoked_reason, \
             unlinked_at, frees_at FROM sites WHERE licence_id = $1 \
             AND (unlinked_at IS NULL OR frees_at > $2 OR linked_at > $3 OR unlinked_at > $3)",
        )
        .bind(lic.id)
        .bind(now)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let issued: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM sites WHERE licence_id = $1")
                .bind(lic.id)
                .fetch_one(&mut *tx)
                .await?;
        let live = rows.iter().find(|r| r.unlinked_at.is_none());
        let (site_id, linked) = match live {
            Some(s) if s.fingerprint != fp => {
                return Err(Error::ActivatedElsewhere(format!(
                    "This licence is linked to the site server {} (since {}). To move it, unlink \
                     it there (server site unlink), or ask your vendor to free it.",
                    s.hostname,
                    format_utc(s.linked_at)
                )))
            }
            Some(s) if s.revoked_at.is_some() => {
                return Err(Error::Gone(format!(
                    "Your vendor revoked this site's licences{}. Ask them why.",
                    if s.revoked_reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", s.revoked_reason)
                    }
                )))
            }
            Some(s) => {
                if req.held < s.seq {
                    // An older entitlement than the last one sent: a restored backup, a copy,
                    // or an answer that never arrived. Noted; the new one replaces it.
                    tracing::warn!(
                        site = s.id,
                        held = req.held,
                        issued = s.seq,
                        "a site holds an older entitlement than the last issued"
                    );
                }
                (s.id, false)
            }
            None => {
                if let Some(w) = rows
                    .iter()
                    .find(|r| r.fingerprint != fp && r.frees_at.is_some_and(|t| t > now))
                {
                    return Err(Error::ActivatedElsewhere(format!(
                        "This licence was freed from the site server {} without its word: the \
                         entitlement there may keep granting seats until {}, when the licence \
                         is free to link again (or at once with an unlink code made there).",
                        w.hostname,
                        format_utc(w.frees_at.unwrap_or(now))
                    )));
                }
                let mut events = Vec::new();
                for r in &rows {
                    events.push(r.linked_at);
                    events.extend(r.unlinked_at);
                }
                self.churn_verdict(&events, 1)?;
                // A new server uses one of the licence's activations, as a new machine does: a
                // licence moves between servers only as often as its product allows.
                let seen: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sites WHERE licence_id = $1 AND fingerprint = $2",
                )
                .bind(lic.id)
                .bind(&fp)
                .fetch_one(&mut *tx)
                .await?;
                if seen == 0 {
                    if lic.activation_count >= lic.max_activations {
                        return Err(Error::Refused(
                            crate::Refusal::ActivationLimit,
                            format!(
                                "This licence has been used on the most servers it allows ({}). \
                                 Ask your vendor to allow another.",
                                lic.max_activations
                            ),
                        ));
                    }
                    sqlx::query(
                        "UPDATE licences SET activation_count = activation_count + 1 WHERE id = $1",
                    )
                    .bind(lic.id)
                    .execute(&mut *tx)
                    .await?;
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO sites (licence_id, fingerprint, hostname, channel, linked_at, \
                     seq, issued_at, refresh_by, last_contact_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $5, $5, $5) RETURNING id",
                )
                .bind(lic.id)
                .bind(&fp)
                .bind(&host)
                .bind(channel.code())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                (id, true)
            }
        };
        let seq = issued
            .max(req.held)
            .checked_add(1)
            .ok_or_else(|| Error::Internal("entitlement numbers ran out".into()))?;
        let claims = EntitlementClaims {
            iss: self.issuer.to_string(),
            site: site_id,
            sub: lic.licence_key.clone(),
            client: lic.client_name.clone(),
            fp,
            host: host.clone(),
            keys,
            bundles: Vec::new(),
            seq,
            iat: now,
            refresh_by: protocol::site::refresh_by(now, days),
        };
        let entitlement = protocol::site::sign(&claims, &kid, &signing);
        sqlx::query(
            "UPDATE sites SET seq = $1, issued_at = $2, refresh_by = $3, last_contact_at = $2, \
             hostname = $4 WHERE id = $5",
        )
        .bind(seq)
        .bind(now)
        .bind(claims.refresh_by)
        .bind(&host)
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
        let (action, words) = if linked {
            (AuditAction::SiteLink, "Linked the site server")
        } else {
            (AuditAction::SiteRefresh, "Refreshed the site server")
        };
        self.record(
            &mut *tx,
            Who::Application,
            Entry::new(action, licence_subject(lic.id, &lic.licence_key))
                .of_client(Some(lic.client_id))
                .detail(format!(
                    "{words} {host} (site {site_id}): entitlement {seq}, {} key(s), refresh by {}.",
                    claims.keys.len(),
                    format_utc(claims.refresh_by)
                )),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(EntitlementAnswer {
            entitlement,
            claims,
        })
    }

    /// A site gives its entitlement up (`code`, made by the site as it deleted it): its licence
    /// is free at once to link another server. Only the latest entitlement's number frees it.
    pub async fn unlink_site(&self, code: &UnlinkCode) -> Result<()> {
        let key = parse_licence_key(&code.key)?;
        let fp = fingerprint(&code.fp)?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let row: Option<UnlinkRow> = sqlx::query_as(
            "SELECT s.id AS site_id, s.seq, l.licence_key, l.id AS licence_id, o.client_id, \
             s.hostname AS host, s.revoked_at AS revoked FROM sites s \
             JOIN licences l ON l.id = s.licence_id JOIN orders o ON o.id = l.order_id \
             WHERE l.licence_key = $1 AND s.id = $2 AND s.fingerprint = $3 \
             AND s.unlinked_at IS NULL",
        )
        .bind(&key)
        .bind(code.site)
        .bind(&fp)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(UnlinkRow {
            site_id,
            seq,
            licence_key,
            licence_id,
            client_id,
            host,
            revoked,
        }) = row
        else {
            return Err(Error::NotFound(
                "A linked site with this licence and machine",
            ));
        };
        if revoked.is_some() {
            // Unlinked, a revoked site's licence would link afresh: only the vendor frees it.
            return Err(Error::Gone(
                "Your vendor revoked this site's licences: only they can free the licence.".into(),
            ));
        }
        if code.seq != seq {
            return Err(Error::Conflict(
                "This unlink code does not give up the site's latest entitlement: make a new \
                 one on the site server after it imports its latest answer."
                    .into(),
            ));
        }
        let done = sqlx::query(
            "UPDATE sites SET unlinked_at = $1, frees_at = NULL, last_contact_at = $1 \
             WHERE id = $2 AND unlinked_at IS NULL AND seq = $3",
        )
        .bind(now)
        .bind(site_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(Error::Conflict(
                "The site changed meanwhile (refreshed or unlinked): try again.".into(),
            ));
        }
        self.record(
            &mut *tx,
            Who::Application,
            Entry::new(
                AuditAction::SiteUnlink,
                licence_subject(licence_id, &licence_key),
            )
            .of_client(Some(client_id))
            .detail(format!(
                "The site server {host} gave its entitlement up (site {site_id})."
            )),
        )
        .await?;
        crate::db::commit(tx).await
    }

    /// The site servers linked now or before, newest first: every one for an administrator, a
    /// client user's organisation's own.
    pub async fn list_sites(&self, actor: &CurrentUser) -> Result<Vec<SiteView>> {
        let own = crate::client_scope(actor)?;
        let mut sites: Vec<SiteView> = sqlx::query_as::<_, SiteViewRow>(
            "SELECT s.id, s.licence_id, l.licence_key, o.client_id, c.name AS client_name, \
             p.code AS product_code, s.fingerprint, s.hostname, s.channel, s.linked_at, s.seq, \
             s.issued_at, s.refresh_by, s.last_contact_at, s.revoked_at, s.revoked_reason, \
             s.unlinked_at, s.frees_at FROM sites s JOIN licences l ON l.id = s.licence_id \
             JOIN orders o ON o.id = l.order_id JOIN clients c ON c.id = o.client_id \
             JOIN products p ON p.id = o.product_id \
             WHERE ($1 IS NULL OR o.client_id = $1) ORDER BY s.id DESC",
        )
        .bind(own)
        .fetch_all(self.db.pool())
        .await?
        .into_iter()
        .map(SiteViewRow::into_view)
        .collect();
        // Masked: a list is no place to read keys from (the licence's page has it whole).
        for s in &mut sites {
            s.licence_key = protocol::redact::mask(&s.licence_key);
        }
        Ok(sites)
    }

    /// The vendor revokes a site: its next refresh is refused, so it grants no new seats once
    /// its entitlement's refresh-by time passes (seats out run to their lease or borrow end).
    pub async fn revoke_site(&self, actor: &CurrentUser, site_id: i64, reason: &str) -> Result<()> {
        crate::require_admin(actor)?;
        let reason = protocol::input::notes(reason)?;
        self.end_site(actor, site_id, SiteEnd::Revoke(&reason))
            .await
    }

    /// The vendor frees a site's licence without its word (the server died, say): at once
    /// (`at_once`), or when the entitlement it holds stops granting (its refresh-by time) —
    /// until then the licence links no other server.
    pub async fn free_site(&self, actor: &CurrentUser, site_id: i64, at_once: bool) -> Result<()> {
        crate::require_admin(actor)?;
        self.end_site(actor, site_id, SiteEnd::Free { at_once })
            .await
    }

    async fn end_site(&self, actor: &CurrentUser, site_id: i64, how: SiteEnd<'_>) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        // The licence's row first, as linking takes it: a refresh cannot move the site's
        // refresh-by time between the read below and the update.
        sqlx::query(
            "UPDATE licences SET open_ended = open_ended \
             WHERE id = (SELECT licence_id FROM sites WHERE id = $1)",
        )
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
        let row: Option<(i64, String, i64, String, i64)> = sqlx::query_as(
            "SELECT l.id, l.licence_key, o.client_id, s.hostname, s.refresh_by FROM sites s \
             JOIN licences l ON l.id = s.licence_id JOIN orders o ON o.id = l.order_id \
             WHERE s.id = $1 AND s.unlinked_at IS NULL",
        )
        .bind(site_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((licence_id, key, client_id, host, refresh_by)) = row else {
            return Err(Error::NotFound("A linked site with this id"));
        };
        let (sql, action, detail) = match how {
            SiteEnd::Revoke(reason) => (
                sqlx::query(
                    "UPDATE sites SET revoked_at = $1, revoked_reason = $2 \
                     WHERE id = $3 AND unlinked_at IS NULL AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(reason.to_owned())
                .bind(site_id),
                AuditAction::SiteRevoke,
                format!("Revoked the site server {host} (site {site_id}): it grants no new seats after {}.", format_utc(refresh_by)),
            ),
            SiteEnd::Free { at_once } => {
                let frees_at = (!at_once && refresh_by > now).then_some(refresh_by);
                (
                    sqlx::query(
                        "UPDATE sites SET unlinked_at = $1, frees_at = $2 \
                         WHERE id = $3 AND unlinked_at IS NULL",
                    )
                    .bind(now)
                    .bind(frees_at)
                    .bind(site_id),
                    AuditAction::SiteFree,
                    match frees_at {
                        None => format!("Freed the licence from the site server {host} (site {site_id}) at once."),
                        Some(t) => format!("Freed the licence from the site server {host} (site {site_id}), free to link again at {}.", format_utc(t)),
                    },
                )
            }
        };
        if sql.execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(Error::Conflict(
                "The site was revoked or unlinked already.".into(),
            ));
        }
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(action, licence_subject(licence_id, &key))
                .of_client(Some(client_id))
                .detail(detail),
        )
        .await?;
        crate::db::commit(tx).await
    }
}

/// What unlinking reads of the site it ends.
#[derive(sqlx::FromRow)]
struct UnlinkRow {
    site_id: i64,
    seq: i64,
    licence_key: String,
    licence_id: i64,
    client_id: i64,
    host: String,
    revoked: Option<i64>,
}

enum SiteEnd<'a> {
    Revoke(&'a str),
    Free { at_once: bool },
}

#[derive(sqlx::FromRow)]
struct SiteViewRow {
    id: i64,
    licence_id: i64,
    licence_key: String,
    client_id: i64,
    client_name: String,
    product_code: String,
    fingerprint: String,
    hostname: String,
    channel: String,
    linked_at: i64,
    seq: i64,
    issued_at: i64,
    refresh_by: i64,
    last_contact_at: i64,
    revoked_at: Option<i64>,
    revoked_reason: String,
    unlinked_at: Option<i64>,
    frees_at: Option<i64>,
}

impl SiteViewRow {
    fn into_view(self) -> SiteView {
        SiteView {
            id: self.id,
            licence_id: self.licence_id,
            licence_key: self.licence_key,
            client_id: self.client_id,
            client_name: self.client_name,
            product_code: self.product_code,
            fingerprint: self.fingerprint,
            hostname: self.hostname,
            channel: self.channel,
            linked_at: self.linked_at,
            seq: self.seq,
            issued_at: self.issued_at,
            refresh_by: self.refresh_by,
            last_contact_at: self.last_contact_at,
            revoked_at: self.revoked_at,
            revoked_reason: self.revoked_reason,
            unlinked_at: self.unlinked_at,
            frees_at: self.frees_at,
        }
    }
}
