//! Activation: binding a licence to a machine and answering with a signed activation code;
//! validation (a fresh code with whatever changed, or word that the licence is gone); removal; and
//! the offline exchange, where a request code made on the machine is answered in the portal.

use crate::catalog::{parse_licence_key, ProductRow};
use crate::catalog::{LicenceTerms, TermsEnd};
use crate::expiry::{code_start, expiry, ExpiryError};
use crate::serials::check_serial;
use crate::{Error, Licentia, Refusal, Result};
use protocol::account::{CurrentUser, Role};
use protocol::activation::{self as code, Claims, Request, RequestSummary};
use protocol::catalog::ExpiryEdit;
use protocol::input::InputError;
use protocol::time::{day_of, format_date};
use std::collections::BTreeMap;

/// How an activation reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Online,
    /// Through the portal, answering a request code; the code carries the request's nonce.
    Offline {
        nonce: String,
    },
}

/// A signed activation code and what it says.
#[derive(Debug, Clone)]
pub struct Issued {
    pub code: String,
    pub claims: Claims,
}

/// A licence's terms, as an administrator sets them.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    pub features: Vec<String>,
    pub counters: BTreeMap<String, i64>,
    pub expiry: ExpiryEdit,
}

/// Who asks for a removal: the application (end-user rules apply) or a portal user. An
/// administrator removes what end users may not (a limited licence, say) only with `force`, so
/// that it is never done by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remover<'a> {
    EndUser,
    Portal { actor: &'a CurrentUser, force: bool },
}

#[derive(sqlx::FromRow)]
struct LicenceState {
    id: i64,
    licence_key: String,
    /// `None` for a web licence (it belongs to a serial, not to a client's order).
    client_id: Option<i64>,
    serial_id: Option<i64>,
    features: Option<String>,
    counters: Option<String>,
    order_features: String,
    order_counters: String,
    expires_on: Option<i64>,
    open_ended: i64,
    activation_count: i64,
    product_id: i64,
}

#[derive(sqlx::FromRow)]
struct LiveActivation {
    id: i64,
    fingerprint: String,
    hostname: String,
    activated_at: i64,
}

fn spent_request() -> Error {
    Error::refused(
        "This request code was answered before and that activation has since been removed: make \
         a new request code on the machine."
            .into(),
    )
}

enum LicenceBy<'a> {
    Key(&'a str),
    Id(i64),
}

/// "2 days", "3 hours", "5 minutes", "40 seconds", rounded up.
fn duration_words(secs: i64) -> String {
    let (n, unit) = if secs >= 2 * 86_400 {
        ((secs + 86_399) / 86_400, "day")
    } else if secs >= 2 * 3600 {
        ((secs + 3599) / 3600, "hour")
    } else if secs >= 120 {
        ((secs + 59) / 60, "minute")
    } else {
        (secs.max(1), "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn hostname(raw: &str) -> Result<String, InputError> {
    protocol::input::text_line(
        "hostname",
        raw,
        1..=255,
        "The host name must be 1 to 255 printable characters.",
    )
}

fn fingerprint(raw: &str) -> Result<String, InputError> {
    let f = raw.trim().to_lowercase();
    if !code::is_fingerprint(&f) {
        return Err(InputError::new(
            "fingerprint",
            "The machine fingerprint must be 64 hexadecimal digits (as the client library makes it).",
        ));
    }
    Ok(f)
}

impl Licentia {
    async fn licence_state(&self, by: &str, value: LicenceBy<'_>) -> Result<Option<LicenceState>> {
        let sql = format!(
            "SELECT l.id, l.licence_key, o.client_id, l.serial_id, l.features, l.counters, \
             COALESCE(o.features, '[]') AS order_features, \
             COALESCE(o.counters, '{{}}') AS order_counters, l.expires_on, l.open_ended, \
             l.activation_count, COALESCE(o.product_id, s.product_id) AS product_id \
             FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
             LEFT JOIN serials s ON s.id = l.serial_id WHERE {by} = $1"
        );
        let q = sqlx::query_as(&sql);
        let q = match value {
            LicenceBy::Key(k) => q.bind(k.to_owned()),
            LicenceBy::Id(id) => q.bind(id),
        };
        Ok(q.fetch_optional(self.db.pool()).await?)
    }

    async fn licence_state_by_key(&self, key: &str) -> Result<LicenceState> {
        self.licence_state("l.licence_key", LicenceBy::Key(key))
            .await?
            .ok_or_else(|| Error::NotFound("A licence with this key"))
    }

    /// Refuses, before anything changes, a licence key presented for another product than its
    /// own: the application names its product, and a key of another product would otherwise be
    /// bound to a machine whose application then refuses the code.
    pub async fn check_key_product(&self, licence_key: &str, product_code: &str) -> Result<()> {
        let key = parse_licence_key(licence_key)?;
        let lic = self.licence_state_by_key(&key).await?;
        let code = self.product_row(lic.product_id).await?.code;
        // Exactly: the application checks the code it gets back against its own product code,
        // and would refuse "CALC" when it calls itself "calc".
        if code == product_code.trim() {
            Ok(())
        } else {
            Err(InputError::new(
                "product",
                format!(
                    "This licence key is for product {code}, not {}: check the key, or use it \
                     with {code}.",
                    product_code.trim()
                ),
            )
            .into())
        }
    }

    /// Who may manage a licence in the portal: its client's users and administrators; only
    /// administrators for a web licence.
    fn require_state_access(&self, actor: &CurrentUser, lic: &LicenceState) -> Result<()> {
        match lic.client_id {
            Some(client_id) => self.require_client_access(actor, client_id),
            None => crate::require_admin(actor),
        }
    }

    /// Refuses one more activation or removal on the licences `licence_ids` if they have moved
    /// between machines too often lately (see [`crate::churn`]).
    async fn check_churn(&self, licence_ids: &[i64]) -> Result<()> {
        let policy = self.auth.churn;
        let now = self.clock.now();
        let since = now - policy.window_secs;
        let mut events = Vec::new();
        for id in licence_ids {
            let rows: Vec<(i64, Option<i64>, Option<String>)> = sqlx::query_as(
                "SELECT activated_at, removed_at, removed_by FROM activations \
                 WHERE licence_id = $1 AND (activated_at > $2 OR removed_at > $2)",
            )
            .bind(id)
            .bind(since)
            .fetch_all(self.db.pool())
            .await?;
            for (activated, removed, by) in rows {
                events.push(activated);
                // What an administrator (or a revocation) did is not the user's churn.
                if by
                    .as_deref()
                    .is_some_and(|b| !b.starts_with("admin:") && b != "revoked")
                {
                    events.extend(removed);
                }
            }
        }
        let licences = i64::try_from(licence_ids.len()).unwrap_or(1);
        match policy.wait(&events, now, licences) {
            None => Ok(()),
            Some(wait) => Err(Error::RateLimited {
                message: format!(
                    "This licence has moved between machines too often: at most {} activations \
                     and removals per {} are allowed. Try again in {}.",
                    policy.max_events.saturating_mul(licences),
                    duration_words(policy.window_secs),
                    duration_words(wait)
                ),
                retry_after_secs: wait,
            }),
        }
    }

    async fn live_activation(&self, licence_id: i64) -> Result<Option<LiveActivation>> {
        Ok(sqlx::query_as(
            "SELECT id, fingerprint, hostname, activated_at FROM activations \
             WHERE licence_id = $1 AND removed_at IS NULL",
        )
        .bind(licence_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// Activates the licence `licence_key` on the machine `fingerprint`. Activating again on the
    /// same machine answers with a fresh code and uses no activation; another machine is refused
    /// while the licence is bound elsewhere.
    #[tracing::instrument(skip(self, licence_key, fingerprint), fields(hostname))]
    pub async fn activate(
        &self,
        licence_key: &str,
        fingerprint: &str,
        host: &str,
        channel: Channel,
    ) -> Result<Issued> {
        self.activate_with(licence_key, fingerprint, host, channel, true)
            .await
    }

    /// `activate`, with the anti-churn limit off where an administrator acts.
    async fn activate_with(
        &self,
        licence_key: &str,
        fingerprint: &str,
        host: &str,
        channel: Channel,
        enforce_churn: bool,
    ) -> Result<Issued> {
        let key = parse_licence_key(licence_key)?;
        let fp = self::fingerprint(fingerprint)?;
        let host = hostname(host)?;
        let lic = self.licence_state_by_key(&key).await?;
        if lic.serial_id.is_some() {
            return Err(Error::refused(
                "This licence belongs to a serial number: activate with the serial number.".into(),
            ));
        }
        self.bind_licence(lic, &fp, &host, channel, None, enforce_churn, None)
            .await
    }

    /// Binds a licence (of either model) to the machine `fp`; `via_serial` is the serial a web
    /// licence is activated with. `enforce_churn` is off where an administrator acts (and where
    /// the caller checked a serial's budget already). `terms`, an administrator's, are given to
    /// the licence in the same transaction, so they stay only if the activation succeeds.
    #[allow(clippy::too_many_arguments)]
    async fn bind_licence(
        &self,
        mut lic: LicenceState,
        fp: &str,
        host: &str,
        channel: Channel,
        via_serial: Option<(i64, &str)>,
        enforce_churn: bool,
        terms: Option<LicenceTerms>,
    ) -> Result<Issued> {
        let (fp, host) = (fp.to_owned(), host.to_owned());
        let new_terms = terms.map(|t| {
            lic.features = Some(t.features.clone());
            lic.counters = Some(t.counters.clone());
            match t.end {
                TermsEnd::Keep => {}
                TermsEnd::NoEnd => (lic.expires_on, lic.open_ended) = (None, 1),
                TermsEnd::On(day) => (lic.expires_on, lic.open_ended) = (Some(day), 0),
            }
            (t.features, t.counters)
        });
        let product = self.product_row(lic.product_id).await?;
        let now = self.clock.now();
        let today = day_of(now);

        let live = self.live_activation(lic.id).await?;
        if let Some(other) = live.as_ref().filter(|a| a.fingerprint != fp) {
            return Err(Error::ActivatedElsewhere(format!(
                "This licence is already activated on another machine ({}). Remove it there first, \
                 or ask your administrator to transfer it.",
                other.hostname
            )));
        }
        let seen_here: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM activations WHERE licence_id = $1 AND fingerprint = $2",
        )
        .bind(lic.id)
        .bind(&fp)
        .fetch_one(self.db.pool())
        .await?;
        let new_machine = seen_here == 0;
        if live.is_none() && enforce_churn {
            self.check_churn(&[lic.id]).await?;
        }
        if new_machine && lic.activation_count >= product.max_activations {
            return Err(Error::Refused(
                Refusal::ActivationLimit,
                format!(
                    "This licence has been activated the most times it allows ({}). Ask your \
                     vendor to allow another activation.",
                    product.max_activations
                ),
            ));
        }

        // A limited licence's end is fixed at its first activation; later activations keep it.
        let expires_on = match (product.limited != 0 && lic.open_ended == 0, lic.expires_on) {
            (false, e) => e,
            (true, Some(e)) => Some(e),
            (true, None) => Some(expiry(&product.limits(), today).map_err(|e| match e {
                ExpiryError::NotYet(_) | ExpiryError::WindowClosed(_) => {
                    Error::refused(format!("This licence cannot be activated now: {e}."))
                }
                ExpiryError::Unbounded => Error::Internal("a limited product has no limit".into()),
            })?),
        };
        if let Some(end) = expires_on {
            if end < today {
                return Err(Error::Gone(format!(
                    "This licence expired on {}.",
                    format_date(end)
                )));
            }
        }

        let mut tx = self.db.pool().begin().await?;
        if let Some((serial_id, _)) = via_serial {
            // A no-op write on the serial's row: it waits for a revocation in progress (which
            // writes the same row) and then sees it, so no activation slips in with a serial
            // revoked a moment before.
            let still_valid = sqlx::query(
                "UPDATE serials SET revoked_at = NULL WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(serial_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if still_valid == 0 {
                return Err(Error::Revoked(
                    "This serial number was revoked a moment ago. Ask your vendor for its \
                     replacement."
                        .into(),
                ));
            }
        }
        // The licence keeps the features and counters it was first activated with (or those an
        // administrator gives it now).
        let (new_features, new_counters) = new_terms.unzip();
        sqlx::query(
            "UPDATE licences SET features = COALESCE($1, features, $2), \
             counters = COALESCE($3, counters, $4), expires_on = $5, open_ended = $6, \
             activation_count = activation_count + $7 WHERE id = $8",
        )
        .bind(new_features)
        .bind(&lic.order_features)
        .bind(new_counters)
        .bind(&lic.order_counters)
        .bind(expires_on)
        .bind(lic.open_ended)
        .bind(i64::from(new_machine))
        .bind(lic.id)
        .execute(&mut *tx)
        .await?;
        let (mode, nonce) = match &channel {
            Channel::Online => ("online", None),
            Channel::Offline { nonce } => ("offline", Some(nonce.clone())),
        };
        let serial_id = via_serial.map(|(id, _)| id);
        let activation_id: i64 = match &live {
            Some(same) => {
                sqlx::query(
                    "UPDATE activations SET hostname = $1, mode = $2, request_nonce = $3, \
                     last_validated_at = $4, serial_id = $5 WHERE id = $6",
                )
                .bind(&host)
                .bind(mode)
                .bind(&nonce)
                .bind(now)
                .bind(serial_id)
                .bind(same.id)
                .execute(&mut *tx)
                .await?;
                same.id
            }
            None => sqlx::query_scalar(
                "INSERT INTO activations (licence_id, fingerprint, hostname, mode, request_nonce, \
                 activated_at, serial_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(lic.id)
            .bind(&fp)
            .bind(&host)
            .bind(mode)
            .bind(&nonce)
            .bind(now)
            .bind(serial_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| {
                Error::unique_as_conflict(e, "This licence was just activated on another machine.")
            })?,
        };
        tx.commit().await?;
        let activated_at = live.as_ref().map_or(now, |a| a.activated_at);
        let features = lic.features.unwrap_or(lic.order_features);
        let counters = lic.counters.unwrap_or(lic.order_counters);
        tracing::info!(licence_id = lic.id, activation_id, mode, "activated");
        let subject = via_serial.map_or(lic.licence_key.as_str(), |(_, serial)| serial);
        self.issue(
            &product,
            subject,
            lic.id,
            activation_id,
            &fp,
            &host,
            &features,
            &counters,
            expires_on,
            activated_at,
            nonce,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn issue(
        &self,
        product: &ProductRow,
        licence_key: &str,
        licence_id: i64,
        activation_id: i64,
        fp: &str,
        host: &str,
        features: &str,
        counters: &str,
        expires_on: Option<i64>,
        activated_at: i64,
        req: Option<String>,
    ) -> Result<Issued> {
        let now = self.clock.now();
        let feat: Vec<String> = serde_json::from_str(features)
            .map_err(|e| Error::Internal(format!("stored features are malformed: {e}")))?;
        let cnt: BTreeMap<String, i64> = serde_json::from_str(counters)
            .map_err(|e| Error::Internal(format!("stored counters are malformed: {e}")))?;
        let start = expires_on.map(|_| code_start(day_of(activated_at)));
        let exp = expires_on.map(|end| (end + 1) * 86_400);
        let mut next = now + product.validate_every_days * 86_400;
        if let Some(exp) = exp {
            next = next.min(exp);
        }
        let claims = Claims {
            iss: self.issuer.to_string(),
            sub: licence_key.to_owned(),
            lic: licence_id,
            act: activation_id,
            prd: product.code.clone(),
            fp: fp.to_owned(),
            host: host.to_owned(),
            feat,
            cnt,
            start: start.map(format_date),
            end: expires_on.map(format_date),
            iat: now,
            nbf: start.map(|d| d * 86_400),
            exp,
            next,
            req,
        };
        let (kid, key) = self.signing_key().await?;
        Ok(Issued {
            code: code::sign(&claims, &kid, &key),
            claims,
        })
    }

    /// The application's periodic check: verifies its code came from here, and answers with a
    /// fresh code carrying what an administrator changed since, or says the licence is gone.
    pub async fn validate(&self, activation_code: &str, fingerprint: &str) -> Result<Issued> {
        let fp = self::fingerprint(fingerprint)?;
        let jwks = self.jwks().await?;
        let claims = code::verify_signature(activation_code, &jwks)
            .map_err(|e| Error::Invalid(InputError::new("activation_code", format!("{e}."))))?;
        if claims.fp != fp {
            return Err(Error::Invalid(InputError::new(
                "fingerprint",
                "The activation code belongs to another machine.",
            )));
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            removed_at: Option<i64>,
            serial: Option<String>,
            serial_revoked_at: Option<i64>,
            hostname: String,
            activated_at: i64,
            request_nonce: Option<String>,
            licence_key: String,
            features: Option<String>,
            counters: Option<String>,
            order_features: String,
            order_counters: String,
            expires_on: Option<i64>,
            product_id: i64,
        }
        let row: Row = sqlx::query_as(
            "SELECT a.removed_at, s.serial, s.revoked_at AS serial_revoked_at, a.hostname, \
             a.activated_at, a.request_nonce, l.licence_key, l.features, l.counters, \
             COALESCE(o.features, '[]') AS order_features, \
             COALESCE(o.counters, '{}') AS order_counters, l.expires_on, \
             COALESCE(o.product_id, ls.product_id) AS product_id \
             FROM activations a JOIN licences l ON l.id = a.licence_id \
             LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN serials ls ON ls.id = l.serial_id \
             LEFT JOIN serials s ON s.id = a.serial_id \
             WHERE a.id = $1 AND a.licence_id = $2 AND a.fingerprint = $3",
        )
        .bind(claims.act)
        .bind(claims.lic)
        .bind(&fp)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| Error::Gone("This licence no longer exists. Contact your vendor.".into()))?;
        if let Some(removed) = row.removed_at {
            return Err(Error::Gone(format!(
                "This licence was removed from this machine on {}.",
                format_date(day_of(removed))
            )));
        }
        if let Some(revoked) = row.serial_revoked_at {
            // The machine must come back with the replacement serial; until then its licence is
            // free (a machine that took the leaked serial never gets it back).
            sqlx::query(
                "UPDATE activations SET removed_at = $1, removed_by = 'revoked' \
                 WHERE id = $2 AND removed_at IS NULL",
            )
            .bind(self.clock.now())
            .bind(claims.act)
            .execute(self.db.pool())
            .await?;
            return Err(Error::Revoked(format!(
                "The serial number this licence was activated with was revoked on {}. Activate \
                 again with the replacement serial number your vendor gives you.",
                format_date(day_of(revoked))
            )));
        }
        let now = self.clock.now();
        if let Some(end) = row.expires_on.filter(|e| *e < day_of(now)) {
            return Err(Error::Gone(format!(
                "This licence expired on {}.",
                format_date(end)
            )));
        }
        sqlx::query("UPDATE activations SET last_validated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(claims.act)
            .execute(self.db.pool())
            .await?;
        let product = self.product_row(row.product_id).await?;
        self.issue(
            &product,
            row.serial.as_deref().unwrap_or(&row.licence_key),
            claims.lic,
            claims.act,
            &fp,
            &row.hostname,
            row.features.as_deref().unwrap_or(&row.order_features),
            row.counters.as_deref().unwrap_or(&row.order_counters),
            row.expires_on,
            row.activated_at,
            row.request_nonce,
        )
        .await
    }

    /// Frees a licence from the machine it is bound to. End users may only where the product
    /// allows removal and the licence is not limited; administrators always may; a client user
    /// may for its own licences under the end-user rules.
    pub async fn remove_activation(
        &self,
        licence_key: &str,
        fingerprint: Option<&str>,
        remover: Remover<'_>,
    ) -> Result<()> {
        let key = parse_licence_key(licence_key)?;
        let lic = self.licence_state_by_key(&key).await?;
        if lic.serial_id.is_some() && remover == Remover::EndUser {
            return Err(Error::refused(
                "This licence belongs to a serial number: remove it with the serial number.".into(),
            ));
        }
        self.unbind_licence(lic, fingerprint, remover).await
    }

    async fn unbind_licence(
        &self,
        lic: LicenceState,
        fingerprint: Option<&str>,
        remover: Remover<'_>,
    ) -> Result<()> {
        let product = self.product_row(lic.product_id).await?;
        let by = match remover {
            Remover::EndUser => "user".to_owned(),
            Remover::Portal { actor, .. } => {
                self.require_state_access(actor, &lic)?;
                format!("{}:{}", actor.role.as_str(), actor.id)
            }
        };
        let admin = matches!(remover, Remover::Portal { actor, .. } if actor.role == Role::Admin);
        let forced = matches!(remover, Remover::Portal { force: true, .. });
        if admin && !forced && (product.limited != 0 || product.end_user_removal == 0) {
            return Err(Error::refused(
                "Its users may not remove this licence; an administrator removes it with force."
                    .into(),
            ));
        }
        if !admin {
            if product.limited != 0 {
                return Err(Error::refused(
                    "This is a limited licence: only your vendor's administrator can remove it."
                        .into(),
                ));
            }
            if product.end_user_removal == 0 {
                return Err(Error::refused(
                    "This product does not let its users remove licences. Ask your vendor's administrator."
                        .into(),
                ));
            }
        }
        let live = self
            .live_activation(lic.id)
            .await?
            .ok_or_else(|| Error::Gone("This licence is not activated on any machine.".into()))?;
        if let Some(fp) = fingerprint {
            if live.fingerprint != self::fingerprint(fp)? {
                return Err(Error::refused(
                    "This licence is activated on another machine.".into(),
                ));
            }
        }
        if !admin {
            let scope = match lic.serial_id {
                Some(serial_id) => self.serial_licence_ids(serial_id).await?,
                None => vec![lic.id],
            };
            self.check_churn(&scope).await?;
        }
        sqlx::query("UPDATE activations SET removed_at = $1, removed_by = $2 WHERE id = $3")
            .bind(self.clock.now())
            .bind(&by)
            .bind(live.id)
            .execute(self.db.pool())
            .await?;
        tracing::info!(
            licence_id = lic.id,
            activation_id = live.id,
            by,
            "activation removed"
        );
        Ok(())
    }

    /// Whether the request `nonce` was answered for this licence and that activation removed
    /// since: a response code must not bring a removed machine back.
    async fn request_spent(&self, licence_id: i64, nonce: &str) -> Result<bool> {
        let spent: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM activations WHERE licence_id = $1 AND request_nonce = $2 \
             AND removed_at IS NOT NULL",
        )
        .bind(licence_id)
        .bind(nonce)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(spent.is_some())
    }

    /// What an offline request asks for and where its licence stands, for the person about to
    /// answer it. Client users see only requests for their own licences.
    pub async fn describe_request(
        &self,
        actor: &CurrentUser,
        request_code: &str,
    ) -> Result<RequestSummary> {
        let req = Request::decode(request_code)
            .map_err(|e| InputError::new("request_code", format!("{e}.")))?;
        let (licence, by_serial, state) = if let Ok((serial, _)) =
            check_serial(&self.serial_key(), &req.key)
        {
            crate::require_admin(actor)?;
            let web = self.serial_for_product(&req.prd, &serial).await?;
            let (total, live, here): (i64, i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), \
                     CAST(SUM(CASE WHEN a.id IS NULL THEN 0 ELSE 1 END) AS BIGINT), \
                     CAST(SUM(CASE WHEN a.fingerprint = $2 THEN 1 ELSE 0 END) AS BIGINT) \
                     FROM licences l LEFT JOIN activations a \
                       ON a.licence_id = l.id AND a.removed_at IS NULL \
                     WHERE l.serial_id = $1",
            )
            .bind(web.id)
            .bind(&req.fp)
            .fetch_one(self.db.pool())
            .await?;
            let state = if web.revoked_at.is_some() {
                "This serial number was revoked: answering will be refused.".to_owned()
            } else if here > 0 {
                format!("This machine holds one of its {total} licences already: answering gives it a fresh code.")
            } else if live >= total {
                format!("All {total} of its licences are in use on other machines: answering will be refused until one is removed.")
            } else {
                format!("{live} of its {total} licences are in use: answering activates one more on this machine.")
            };
            (serial, true, state)
        } else {
            let key = parse_licence_key(&req.key)?;
            let lic = self.licence_state_by_key(&key).await?;
            self.require_state_access(actor, &lic)?;
            let product = self.product_row(lic.product_id).await?;
            let spent = self.request_spent(lic.id, &req.nonce).await?;
            let seen_here: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM activations WHERE licence_id = $1 AND fingerprint = $2",
            )
            .bind(lic.id)
            .bind(&req.fp)
            .fetch_one(self.db.pool())
            .await?;
            let today = day_of(self.clock.now());
            let live = self.live_activation(lic.id).await?;
            let refused = |why: String| format!("{why}: answering will be refused.");
            let state = match live {
                _ if product.code != req.prd => refused(format!(
                    "The request is for product {}, but this licence is for {}",
                    req.prd, product.code
                )),
                _ if lic.serial_id.is_some() => refused(
                    "This licence belongs to a serial number; the machine must ask with the \
                     serial number"
                        .into(),
                ),
                _ if spent => refused(
                    "This request was answered before and that activation has since been \
                     removed; the machine must make a new request code"
                        .into(),
                ),
                _ if lic.expires_on.is_some_and(|end| end < today) => refused(format!(
                    "This licence expired on {}",
                    format_date(lic.expires_on.unwrap_or(today))
                )),
                Some(a) if a.fingerprint != req.fp => format!(
                    "Activated on another machine ({}): answering will be refused until it is \
                     removed there.",
                    a.hostname
                ),
                Some(_) => {
                    "Already activated on this machine: answering gives it a fresh code.".to_owned()
                }
                None if seen_here == 0 && lic.activation_count >= product.max_activations => {
                    refused(format!(
                        "This licence has been activated the most times it allows ({})",
                        product.max_activations
                    ))
                }
                None => {
                    "Not activated on any machine: answering activates it on this one.".to_owned()
                }
            };
            (key, false, state)
        };
        Ok(RequestSummary {
            product: req.prd,
            licence,
            by_serial,
            host: req.host,
            requested_at: req.t,
            state,
        })
    }

    /// Answers an offline request code from the portal. Client users answer only requests for
    /// their own licences.
    pub async fn answer_request(&self, actor: &CurrentUser, request_code: &str) -> Result<Issued> {
        self.answer_request_with(actor, request_code, None).await
    }

    /// Answers an offline request, first giving the licence the `overrides` (features, counters,
    /// expiry) — an administrator's way to generate a code with other terms than the order's.
    pub async fn answer_request_with(
        &self,
        actor: &CurrentUser,
        request_code: &str,
        overrides: Option<Terms>,
    ) -> Result<Issued> {
        let req = Request::decode(request_code)
            .map_err(|e| InputError::new("request_code", format!("{e}.")))?;
        if let Ok((serial, _)) = check_serial(&self.serial_key(), &req.key) {
            crate::require_admin(actor)?;
            if overrides.is_some() {
                return Err(Error::refused(
                    "A web licence's terms are edited on its serial number's page, not here: \
                     answer without other terms."
                        .into(),
                ));
            }
            if req.nonce.is_empty() || req.nonce.len() > 64 {
                return Err(InputError::new("request_code", "The request code is damaged.").into());
            }
            let spent: Option<i64> = sqlx::query_scalar(
                "SELECT a.id FROM activations a JOIN licences l ON l.id = a.licence_id \
                 JOIN serials s ON s.id = l.serial_id \
                 WHERE s.serial = $1 AND a.request_nonce = $2 AND a.removed_at IS NOT NULL",
            )
            .bind(&serial)
            .bind(&req.nonce)
            .fetch_optional(self.db.pool())
            .await?;
            if spent.is_some() {
                return Err(spent_request());
            }
            let channel = Channel::Offline { nonce: req.nonce };
            return self
                .activate_serial_with(&req.prd, &serial, &req.fp, &req.host, channel, false)
                .await;
        }
        let key = parse_licence_key(&req.key)?;
        let lic = self.licence_state_by_key(&key).await?;
        self.require_state_access(actor, &lic)?;
        let product_code: String = sqlx::query_scalar("SELECT code FROM products WHERE id = $1")
            .bind(lic.product_id)
            .fetch_one(self.db.pool())
            .await?;
        if product_code != req.prd {
            return Err(InputError::new(
                "request_code",
                format!(
                    "The request is for product {}, but this licence is for {product_code}.",
                    req.prd
                ),
            )
            .into());
        }
        if req.nonce.is_empty() || req.nonce.len() > 64 {
            return Err(InputError::new("request_code", "The request code is damaged.").into());
        }
        if self.request_spent(lic.id, &req.nonce).await? {
            return Err(spent_request());
        }
        let channel = Channel::Offline { nonce: req.nonce };
        let Some(terms) = overrides else {
            let enforce_churn = actor.role != Role::Admin;
            return self
                .activate_with(&key, &req.fp, &req.host, channel, enforce_churn)
                .await;
        };
        crate::require_admin(actor)?;
        if lic.serial_id.is_some() {
            return Err(Error::refused(
                "A web licence's terms are edited on its serial number's page, not here: answer \
                 without other terms."
                    .into(),
            ));
        }
        // The new terms are written in the activation's own transaction: if it fails, nothing
        // of them remains.
        let terms = self
            .licence_terms(
                lic.product_id,
                terms.features,
                terms.counters,
                &terms.expiry,
            )
            .await?;
        let (fp, host) = (self::fingerprint(&req.fp)?, hostname(&req.host)?);
        self.bind_licence(lic, &fp, &host, channel, None, false, Some(terms))
            .await
    }

    async fn serial_licence_ids(&self, serial_id: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM licences WHERE serial_id = $1 ORDER BY id")
                .bind(serial_id)
                .fetch_all(self.db.pool())
                .await?,
        )
    }

    /// The serial `text` for product `product_code`: checked on its own first (a typo or a
    /// guess is refused without a look-up), then found.
    async fn serial_for_product(&self, product_code: &str, text: &str) -> Result<WebSerial> {
        let (serial, _) = check_serial(&self.serial_key(), text)?;
        let row: WebSerial = sqlx::query_as(
            "SELECT s.id, s.serial, s.revoked_at, p.code AS product_code, \
             (SELECT n.serial FROM serials n WHERE n.replaces = s.id) AS replaced_by \
             FROM serials s JOIN products p ON p.id = s.product_id WHERE s.serial = $1",
        )
        .bind(&serial)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| {
            InputError::new(
                "serial",
                "This serial number is not known here: it may have been deleted. Ask your vendor.",
            )
        })?;
        // Exactly, as for licence keys: the application checks the product of its code.
        if row.product_code != product_code.trim() {
            return Err(InputError::new(
                "product",
                format!(
                    "This serial number is for product {}, not {}.",
                    row.product_code,
                    product_code.trim()
                ),
            )
            .into());
        }
        Ok(row)
    }

    /// Activates a web licence: product + serial alone. The machine gets its licence back if it
    /// holds one of the serial's licences already; otherwise a free licence of the serial, or a
    /// refusal that names the limit.
    #[tracing::instrument(skip(self, serial, fingerprint), fields(hostname))]
    pub async fn activate_serial(
        &self,
        product_code: &str,
        serial: &str,
        fingerprint: &str,
        host: &str,
        channel: Channel,
    ) -> Result<Issued> {
        self.activate_serial_with(product_code, serial, fingerprint, host, channel, true)
            .await
    }

    async fn activate_serial_with(
        &self,
        product_code: &str,
        serial: &str,
        fingerprint: &str,
        host: &str,
        channel: Channel,
        enforce_churn: bool,
    ) -> Result<Issued> {
        let fp = self::fingerprint(fingerprint)?;
        let host = hostname(host)?;
        let web = self.serial_for_product(product_code, serial).await?;
        if let Some(revoked) = web.revoked_at {
            return Err(Error::Revoked(format!(
                "This serial number was revoked on {}{}. Ask your vendor for its replacement.",
                format_date(day_of(revoked)),
                if web.replaced_by.is_some() {
                    " and replaced by a new one"
                } else {
                    ""
                }
            )));
        }
        #[derive(sqlx::FromRow)]
        struct Slot {
            id: i64,
            live_fp: Option<String>,
            live_host: Option<String>,
            used_here: i64,
            activation_count: i64,
        }
        let slots: Vec<Slot> = sqlx::query_as(
            "SELECT l.id, a.fingerprint AS live_fp, a.hostname AS live_host, \
             (SELECT COUNT(*) FROM activations h WHERE h.licence_id = l.id AND h.fingerprint = $2) \
               AS used_here, l.activation_count \
             FROM licences l LEFT JOIN activations a ON a.licence_id = l.id AND a.removed_at IS NULL \
             WHERE l.serial_id = $1 ORDER BY l.id",
        )
        .bind(web.id)
        .bind(&fp)
        .fetch_all(self.db.pool())
        .await?;
        let max_activations: i64 = sqlx::query_scalar(
            "SELECT p.max_activations FROM serials s JOIN products p ON p.id = s.product_id \
             WHERE s.id = $1",
        )
        .bind(web.id)
        .fetch_one(self.db.pool())
        .await?;
        // This machine's own licence first; then a free one it used before; then the free one
        // used least.
        let mine = slots
            .iter()
            .find(|s| s.live_fp.as_deref() == Some(fp.as_str()));
        let mut free: Vec<&Slot> = slots.iter().filter(|s| s.live_fp.is_none()).collect();
        free.sort_by_key(|s| (s.used_here == 0, s.activation_count));
        let chosen = match mine {
            Some(slot) => slot,
            None => {
                if !free.is_empty() {
                    let scope: Vec<i64> = slots.iter().map(|s| s.id).collect();
                    if enforce_churn {
                        self.check_churn(&scope).await?;
                    }
                }
                match free
                    .iter()
                    .find(|s| s.used_here > 0 || s.activation_count < max_activations)
                    .or(free.first())
                {
                    Some(slot) => slot,
                    None => {
                        let hosts: Vec<&str> = slots
                            .iter()
                            .filter_map(|s| s.live_host.as_deref())
                            .collect();
                        return Err(Error::Refused(
                            Refusal::ActivationLimit,
                            format!(
                                "This serial number allows {} licence{} and all are in use (on \
                                 {}). Remove one of them first.",
                                slots.len(),
                                if slots.len() == 1 { "" } else { "s" },
                                hosts.join(", ")
                            ),
                        ));
                    }
                }
            }
        };
        let lic = self
            .licence_state("l.id", LicenceBy::Id(chosen.id))
            .await?
            .ok_or(Error::NotFound("The licence"))?;
        // The serial's budget was checked above, for all its licences together.
        self.bind_licence(
            lic,
            &fp,
            &host,
            channel,
            Some((web.id, &web.serial)),
            false,
            None,
        )
        .await
        .map_err(|e| match e {
            Error::Conflict(_) | Error::ActivatedElsewhere(_) => Error::Conflict(
                "Another machine took this serial's licence at the same moment: try again.".into(),
            ),
            other => other,
        })
    }

    /// The application frees the serial's licence it holds on the machine `fingerprint`.
    pub async fn remove_serial_activation(
        &self,
        product_code: &str,
        serial: &str,
        fingerprint: &str,
    ) -> Result<()> {
        let fp = self::fingerprint(fingerprint)?;
        let web = self.serial_for_product(product_code, serial).await?;
        let licence_id: i64 = sqlx::query_scalar(
            "SELECT l.id FROM licences l JOIN activations a ON a.licence_id = l.id \
             WHERE l.serial_id = $1 AND a.fingerprint = $2 AND a.removed_at IS NULL",
        )
        .bind(web.id)
        .bind(&fp)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| {
            Error::Gone("This serial number is not activated on this machine.".into())
        })?;
        let lic = self
            .licence_state("l.id", LicenceBy::Id(licence_id))
            .await?
            .ok_or(Error::NotFound("The licence"))?;
        self.unbind_licence(lic, Some(&fp), Remover::EndUser).await
    }
}

#[derive(sqlx::FromRow)]
struct WebSerial {
    id: i64,
    serial: String,
    revoked_at: Option<i64>,
    product_code: String,
    replaced_by: Option<String>,
}
