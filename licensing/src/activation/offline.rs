//! The offline exchange: what a pasted request code is for, and its answer (with an
//! administrator's terms, written in the activation's own transaction).

use super::*;

impl Licentia {
    /// Whether the request `nonce` was answered for this licence and that activation removed
    /// since: a response code must not bring a removed machine back.
    pub(super) async fn request_spent(&self, licence_id: i64, nonce: &str) -> Result<bool> {
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
            let pending = self
                .pending_free(lic.id)
                .await?
                .filter(|(removed_fp, ..)| *removed_fp != req.fp);
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
                _ if lic.terms.expires_on.is_some_and(|end| end < today) => refused(format!(
                    "This licence expired on {}",
                    format_date(lic.terms.expires_on.unwrap_or(today))
                )),
                Some(a) if a.fingerprint != req.fp => format!(
                    "Activated on another machine ({}): answering will be refused until it is \
                     removed there.",
                    a.hostname
                ),
                Some(_) => {
                    "Already activated on this machine: answering gives it a fresh code.".to_owned()
                }
                None if pending.is_some() => {
                    let (_, host, frees_at) = pending.clone().unwrap_or_default();
                    refused(format!(
                        "Removed from {host} without that machine; the licence frees on {} \
                         (or at once with a removal code from {host})",
                        protocol::time::format_utc(frees_at)
                    ))
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
        let with_terms = overrides.is_some();
        let issued = self
            .answer_request_as(actor, request_code, overrides)
            .await?;
        let c = &issued.claims;
        let client = self.licence_client(c.lic).await?;
        self.record_after(
            Who::User(actor),
            Entry::new(
                AuditAction::ActivationCreate,
                licence_subject(c.lic, &c.sub),
            )
            .of_client(client)
            .detail(format!(
                "Offline request from {} answered{}.",
                c.host,
                if with_terms { " with other terms" } else { "" }
            )),
        )
        .await;
        Ok(issued)
    }

    async fn answer_request_as(
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
            let channel = Channel::Offline {
                nonce: req.nonce,
                by_admin: true,
            };
            return self
                .activate_serial(&req.prd, &serial, &req.fp, &req.host, channel)
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
        let channel = Channel::Offline {
            nonce: req.nonce,
            by_admin: actor.role == Role::Admin,
        };
        let Some(terms) = overrides else {
            return self.activate(&key, &req.fp, &req.host, channel).await;
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
        let (fp, host) = (fingerprint(&req.fp)?, hostname(&req.host)?);
        tracing::info!(
            licence_id = lic.id,
            by = actor.id,
            "licence terms given with an offline answer"
        );
        self.bind_licence(
            LicenceBy::Id(lic.id),
            &fp,
            &host,
            Binder {
                channel,
                product: None,
                via_serial: None,
                enforce_churn: false,
                terms: Some(terms),
            },
        )
        .await
    }
}
