//! Binding a licence to a machine and answering with a signed code: online activation, the
//! one transaction that records it (with an administrator's terms, if any), and validation.

use super::state::{same_product, Binding};
use super::*;

impl Licentia {
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
        self.activate_for(licence_key, None, fingerprint, host, channel)
            .await
    }

    /// `activate`, by an application that names its product (`product`): a key of another
    /// product is refused before anything changes.
    pub(super) async fn activate_for(
        &self,
        licence_key: &str,
        product: Option<&str>,
        fingerprint: &str,
        host: &str,
        channel: Channel,
    ) -> Result<Issued> {
        let key = parse_licence_key(licence_key)?;
        let fp = self::fingerprint(fingerprint)?;
        let host = hostname(host)?;
        let enforce_churn = channel.enforces_churn();
        self.bind_licence(
            LicenceBy::Key(&key),
            &fp,
            &host,
            Binder {
                channel,
                product,
                via_serial: None,
                enforce_churn,
                terms: None,
            },
        )
        .await
    }

    /// Binds a licence (of either model) to the machine `fp`, as `by` says.
    ///
    /// One statement reads what the checks need; one transaction writes the activation, its
    /// events and the signed code's record, so a code is never recorded without its activation.
    pub(super) async fn bind_licence(
        &self,
        licence: LicenceBy<'_>,
        fp: &str,
        host: &str,
        by: Binder<'_>,
    ) -> Result<Issued> {
        let Binder {
            channel,
            product: named_product,
            via_serial,
            enforce_churn,
            terms,
        } = by;
        let (fp, host) = (fp.to_owned(), host.to_owned());
        let Binding {
            mut lic,
            product,
            key,
            live,
            pending,
            seen_here,
            waited_for_here,
            churn_events,
        } = self.binding(licence, &fp).await?;
        if let Some(named) = named_product {
            same_product(&product.code, named)?;
        }
        if product.site_refresh_days.is_some() {
            return Err(Error::refused(
                "This licence is for a site licence server: link the customer's server with it \
                 (server site link), and applications take their seats there."
                    .into(),
            ));
        }
        if lic.serial_id.is_some() && via_serial.is_none() {
            return Err(Error::refused(
                "This licence belongs to a serial number: activate with the serial number.".into(),
            ));
        }
        // An administrator's terms replace what was read; the open-ended mark is written only
        // when they change it (so an edit at the same moment is not undone by a stale read).
        let mut new_open_ended = None;
        let new_terms = terms.map(|t| {
            lic.terms.features = Some(t.features.clone());
            lic.terms.counters = Some(t.counters.clone());
            match t.end {
                TermsEnd::Keep => {}
                TermsEnd::NoEnd => (lic.terms.expires_on, lic.open_ended) = (None, 1),
                TermsEnd::On(day) => (lic.terms.expires_on, lic.open_ended) = (Some(day), 0),
            }
            if !matches!(t.end, TermsEnd::Keep) {
                new_open_ended = Some(lic.open_ended);
            }
            (t.features, t.counters)
        });
        let now = self.clock.now();
        let today = day_of(now);

        if let Some(other) = live.as_ref().filter(|a| a.fingerprint != fp) {
            return Err(Error::ActivatedElsewhere(format!(
                "This licence is already activated on another machine ({}). Remove it there first, \
                 or ask your administrator to transfer it.",
                other.hostname
            )));
        }
        if let Some((_, host, frees_at)) = pending.filter(|(removed_fp, ..)| *removed_fp != fp) {
            return Err(Error::ActivatedElsewhere(format!(
                "This licence was removed from {host} without that machine, whose code can keep \
                 working offline until {}: the licence frees then, or at once with a removal code \
                 made on {host} (licentia-client removal-code) and pasted into the portal.",
                protocol::time::format_utc(frees_at)
            )));
        }
        let new_machine = !seen_here;
        if live.is_none() && enforce_churn {
            self.churn_verdict(&churn_events, 1)?;
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
        // How the row's end is written: as an administrator's terms say, fixed now if it has
        // none yet, or left as it is (never from this read: an extension made meanwhile stays).
        let end_write = if new_open_ended.is_some() {
            EndWrite::Set
        } else if product.limited != 0 && lic.open_ended == 0 && lic.terms.expires_on.is_none() {
            EndWrite::FixIfNone
        } else {
            EndWrite::Keep
        };
        let expires_on = match (
            product.limited != 0 && lic.open_ended == 0,
            lic.terms.expires_on,
        ) {
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

        let key = self.signing_key_read(key).await?;
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
        // The machine a removal was waiting for is back: nothing waits for it any more. (A
        // removal of this machine made after the read above removed the live activation read,
        // whose update below then fails. With none read, only an activation of this machine
        // made and removed since could leave a wait unseen here; it then lapses with that
        // code, or an administrator's Free now ends it — a race of three requests, accepted
        // for the statement it saves on every activation.)
        if waited_for_here {
            sqlx::query(
                "UPDATE activations SET frees_at = NULL \
                 WHERE licence_id = $1 AND fingerprint = $2 AND frees_at IS NOT NULL",
            )
            .bind(lic.id)
            .bind(&fp)
            .execute(&mut *tx)
            .await?;
        }
        // The licence keeps the features and counters it was first activated with (or those an
        // administrator gives it now).
        let (new_features, new_counters) = new_terms.unzip();
        // The terms the licence has once written (the right side reads the row as it is now):
        // the code carries these.
        let written: Option<(Option<i64>, String, String)> = sqlx::query_as(
            "UPDATE licences SET features = COALESCE($1, features, $2), \
             counters = COALESCE($3, counters, $4), \
             expires_on = CASE $9 WHEN 2 THEN $5 \
                 WHEN 1 THEN (CASE WHEN open_ended = 1 THEN expires_on \
                                   ELSE COALESCE(expires_on, $5) END) \
                 ELSE expires_on END, \
             open_ended = COALESCE($6, open_ended), \
             activation_count = activation_count + $7 WHERE id = $8 \
             RETURNING expires_on, features, counters",
        )
        .bind(new_features)
        .bind(&lic.terms.order_features)
        .bind(new_counters)
        .bind(&lic.terms.order_counters)
        .bind(expires_on)
        .bind(new_open_ended)
        .bind(i64::from(new_machine))
        .bind(lic.id)
        .bind(end_write as i64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((expires_on, features, counters)) = written else {
            return Err(Error::Gone("This licence was deleted a moment ago.".into()));
        };
        // Shortened meanwhile to a day already past: refused, nothing written.
        if let Some(end) = expires_on.filter(|end| *end < today) {
            return Err(Error::Gone(format!(
                "This licence expired on {}.",
                format_date(end)
            )));
        }
        let (mode, nonce) = match &channel {
            Channel::Online => ("online", None),
            Channel::Offline { nonce, .. } => ("offline", Some(nonce.clone())),
        };
        let serial_id = via_serial.map(|(id, _)| id);
        let activation_id: i64 = match &live {
            Some(same) => {
                let updated = sqlx::query(
                    "UPDATE activations SET hostname = $1, mode = $2, request_nonce = $3, \
                     last_validated_at = $4, serial_id = $5 WHERE id = $6 AND removed_at IS NULL",
                )
                .bind(&host)
                .bind(mode)
                .bind(&nonce)
                .bind(now)
                .bind(serial_id)
                .bind(same.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    return Err(Error::Conflict(
                        "This licence was removed from this machine at the same moment: try again."
                            .into(),
                    ));
                }
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
        if live.is_none() {
            crate::webhooks::emit(
                &mut tx,
                now,
                protocol::webhooks::WebhookEvent::ActivationCreated,
                serde_json::json!({
                    "licence_id": lic.id,
                    "activation_id": activation_id,
                    "client_id": lic.client_id,
                    "product_id": lic.product_id,
                    "hostname": host,
                    "mode": mode,
                }),
            )
            .await?;
        }
        // A new machine, online (an offline answer is recorded with who gave it).
        if live.is_none() && matches!(channel, Channel::Online) {
            let named = via_serial.map_or(lic.licence_key.as_str(), |(_, serial)| serial);
            self.record(
                &mut *tx,
                Who::Application,
                Entry::new(
                    AuditAction::ActivationCreate,
                    licence_subject(lic.id, named),
                )
                .of_client(lic.client_id)
                .detail(format!("Activated on {host}.")),
            )
            .await?;
        }
        let activated_at = live.as_ref().map_or(now, |a| a.activated_at);
        let subject = via_serial.map_or(lic.licence_key.as_str(), |(_, serial)| serial);
        let issued = self
            .issue(
                &mut *tx,
                Signing {
                    product_code: &product.code,
                    validate_every_days: product.validate_every_days,
                    key: &key,
                    validation: false,
                },
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
            .await?;
        let Some(issued) = issued else {
            drop(tx);
            return Err(self.unrecorded(&key.0).await);
        };
        crate::db::commit(tx).await?;
        tracing::info!(licence_id = lic.id, activation_id, mode, "activated");
        Ok(issued)
    }

    /// Signs a code for the activation `activation_id` and records it (with `exec`, in the
    /// caller's transaction or on its own) while the activation stands and the signing key is
    /// in force; `None` when it was not recorded (nothing is answered then).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn issue<'e, E>(
        &self,
        exec: E,
        by: Signing<'_>,
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
    ) -> Result<Option<Issued>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let now = self.clock.now();
        let feat: Vec<String> = serde_json::from_str(features)
            .map_err(|e| Error::Internal(format!("stored features are malformed: {e}")))?;
        let cnt: BTreeMap<String, i64> = serde_json::from_str(counters)
            .map_err(|e| Error::Internal(format!("stored counters are malformed: {e}")))?;
        let start = expires_on.map(|_| code_start(day_of(activated_at)));
        let exp = expires_on.map(|end| (end + 1) * 86_400);
        let mut next = now + by.validate_every_days * 86_400;
        if let Some(exp) = exp {
            next = next.min(exp);
        }
        let claims = Claims {
            iss: self.issuer.to_string(),
            sub: licence_key.to_owned(),
            lic: licence_id,
            act: activation_id,
            prd: by.product_code.to_owned(),
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
        let (kid, key) = by.key;
        // Until when this code passes offline checks: a removal without the machine waits for it.
        let offline_until = exp.map_or(next + code::VALIDATION_GRACE_SECS, |exp| {
            exp.min(next + code::VALIDATION_GRACE_SECS)
        });
        let code = code::sign(&claims, kid, key);
        // Recorded before the code leaves, and only while the activation stands (a removal that
        // came in meanwhile gets no code signed past its wait) and the key that signed it is in
        // force (one retired since it was read signs nothing that is answered). A validation is
        // counted in the same statement.
        let recorded = sqlx::query(
            "UPDATE activations SET code_digest = $3, offline_until = CASE \
               WHEN offline_until IS NULL OR offline_until < $1 THEN $1 ELSE offline_until END, \
               last_validated_at = CASE WHEN $4 = 1 THEN $5 ELSE last_validated_at END, \
               validations = validations + $4 \
             WHERE id = $2 AND removed_at IS NULL \
             AND EXISTS (SELECT 1 FROM signing_keys WHERE kid = $6 AND retired_at IS NULL)",
        )
        .bind(offline_until)
        .bind(activation_id)
        .bind(code::code_digest(&code))
        .bind(i64::from(by.validation))
        .bind(now)
        .bind(kid)
        .execute(exec)
        .await?
        .rows_affected();
        // (Not recorded: the caller says why once its transaction is over, see `unrecorded`.)
        Ok((recorded == 1).then_some(Issued { code, claims }))
    }

    /// Why a code signed with `kid` was not recorded: the key was withdrawn meanwhile (try
    /// again), or the activation was removed.
    async fn unrecorded(&self, kid: &str) -> Error {
        match self.retired_at(kid).await {
            Ok(Some(_)) => Error::Conflict(
                "The vendor's signing key was withdrawn a moment ago: try again.".into(),
            ),
            Ok(None) => {
                Error::Gone("This licence was removed from this machine a moment ago.".into())
            }
            Err(e) => e,
        }
    }

    /// The application's periodic check: verifies its code came from here, and answers with a
    /// fresh code carrying what an administrator changed since, or says the licence is gone.
    pub async fn validate(&self, activation_code: &str, fingerprint: &str) -> Result<Issued> {
        let fp = self::fingerprint(fingerprint)?;
        let ring = self.key_ring().await?;
        let claims = match code::verify_signature(activation_code, &ring.jwks) {
            Ok(claims) => claims,
            // A withdrawn key is not a malformed code: say so, and what to do.
            Err(code::CodeError::UnknownKey(kid)) if self.retired_at(&kid).await?.is_some() => {
                return Err(Error::KeyRetired(format!(
                    "The activation code was signed with key {kid}, which the vendor has \
                     withdrawn: activate again on this machine for a new code (it uses no \
                     further activation)."
                )));
            }
            Err(e) => {
                return Err(Error::Invalid(InputError::new(
                    "activation_code",
                    format!("{e}."),
                )))
            }
        };
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
            #[sqlx(flatten)]
            terms: StoredTerms,
            product_id: i64,
            product_code: String,
            validate_every_days: i64,
        }
        let row: Row = sqlx::query_as(
            "SELECT a.removed_at, s.serial, s.revoked_at AS serial_revoked_at, a.hostname, \
             a.activated_at, a.request_nonce, l.licence_key, l.features, l.counters, \
             COALESCE(o.features, '[]') AS order_features, \
             COALESCE(o.counters, '{}') AS order_counters, l.expires_on, \
             p.id AS product_id, p.code AS product_code, p.validate_every_days \
             FROM activations a JOIN licences l ON l.id = a.licence_id \
             LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN serials ls ON ls.id = l.serial_id \
             JOIN products p ON p.id = COALESCE(o.product_id, ls.product_id) \
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
            let now = self.clock.now();
            let mut tx = self.db.pool().begin().await?;
            let removed = sqlx::query(
                "UPDATE activations SET removed_at = $1, removed_by = 'revoked' \
                 WHERE id = $2 AND removed_at IS NULL",
            )
            .bind(now)
            .bind(claims.act)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed == 1 {
                crate::webhooks::emit(
                    &mut tx,
                    now,
                    protocol::webhooks::WebhookEvent::ActivationRemoved,
                    serde_json::json!({
                        "licence_id": claims.lic,
                        "activation_id": claims.act,
                        "product_id": row.product_id,
                        "hostname": row.hostname,
                        "removed_by": "revoked",
                        "frees_at": null,
                    }),
                )
                .await?;
            }
            crate::db::commit(tx).await?;
            return Err(Error::Revoked(format!(
                "The serial number this licence was activated with was revoked on {}. Activate \
                 again with the replacement serial number your vendor gives you.",
                format_date(day_of(revoked))
            )));
        }
        let now = self.clock.now();
        if let Some(end) = row.terms.expires_on.filter(|e| *e < day_of(now)) {
            return Err(Error::Gone(format!(
                "This licence expired on {}.",
                format_date(end)
            )));
        }
        let key = self.active_of(ring).await?;
        let issued = self
            .issue(
                self.db.pool(),
                Signing {
                    product_code: &row.product_code,
                    validate_every_days: row.validate_every_days,
                    key: &key,
                    validation: true,
                },
                row.serial.as_deref().unwrap_or(&row.licence_key),
                claims.lic,
                claims.act,
                &fp,
                &row.hostname,
                row.terms.features_json(),
                row.terms.counters_json(),
                row.terms.expires_on,
                row.activated_at,
                row.request_nonce,
            )
            .await?;
        match issued {
            Some(issued) => Ok(issued),
            None => Err(self.unrecorded(&key.0).await),
        }
    }
}

/// How a licence is bound, besides to which machine.
pub(super) struct Binder<'a> {
    pub channel: Channel,
    /// The product the application names, if it does: a licence of another is refused.
    pub product: Option<&'a str>,
    /// The serial a web licence is activated with (a web licence is bound only with it): its
    /// id and text.
    pub via_serial: Option<(i64, &'a str)>,
    /// Off where an administrator acts (and where the caller checked a serial's budget
    /// already).
    pub enforce_churn: bool,
    /// An administrator's terms, given to the licence in the same transaction, so they stay
    /// only if the activation succeeds.
    pub terms: Option<LicenceTerms>,
}

/// What signing a code takes besides the activation's own terms.
pub(super) struct Signing<'a> {
    pub product_code: &'a str,
    pub validate_every_days: i64,
    /// The active signing key: its id and the key.
    pub key: &'a (String, ed25519_dalek::SigningKey),
    /// A validation: counted when its code is recorded.
    pub validation: bool,
}

/// How an activation writes its licence's end date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndWrite {
    /// Left as the row has it.
    Keep = 0,
    /// The first activation of a limited licence fixes it, unless it got one meanwhile.
    FixIfNone = 1,
    /// An administrator's terms set it (or clear it).
    Set = 2,
}
