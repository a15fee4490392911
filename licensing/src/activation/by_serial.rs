//! The web model: activating and removing one of a serial's licences by product and serial
//! number, with the serial's shared budget and its revocation checked on the way.

use super::*;

impl Licentia {
    pub(super) async fn serial_licence_ids(&self, serial_id: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM licences WHERE serial_id = $1 ORDER BY id")
                .bind(serial_id)
                .fetch_all(self.db.pool())
                .await?,
        )
    }

    /// The serial `text` for product `product_code`: checked on its own first (a typo or a
    /// guess is refused without a look-up), then found.
    pub(super) async fn serial_for_product(
        &self,
        product_code: &str,
        text: &str,
    ) -> Result<WebSerial> {
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
            /// A removal made without its machine that has not freed the licence yet.
            pending_fp: Option<String>,
            pending_host: Option<String>,
            pending_until: Option<i64>,
        }
        let slots: Vec<Slot> = sqlx::query_as(
            "SELECT l.id, a.fingerprint AS live_fp, a.hostname AS live_host, \
             (SELECT COUNT(*) FROM activations h WHERE h.licence_id = l.id AND h.fingerprint = $2) \
               AS used_here, l.activation_count, \
             (SELECT p.fingerprint FROM activations p WHERE p.licence_id = l.id AND p.frees_at > $3 \
               ORDER BY p.frees_at DESC LIMIT 1) AS pending_fp, \
             (SELECT p.hostname FROM activations p WHERE p.licence_id = l.id AND p.frees_at > $3 \
               ORDER BY p.frees_at DESC LIMIT 1) AS pending_host, \
             (SELECT MAX(p.frees_at) FROM activations p WHERE p.licence_id = l.id \
               AND p.frees_at > $3) AS pending_until \
             FROM licences l LEFT JOIN activations a ON a.licence_id = l.id AND a.removed_at IS NULL \
             WHERE l.serial_id = $1 ORDER BY l.id",
        )
        .bind(web.id)
        .bind(&fp)
        .bind(self.clock.now())
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
        // A licence removed from another machine without it is not free until its code lapses.
        let mut free: Vec<&Slot> = slots
            .iter()
            .filter(|s| s.live_fp.is_none())
            .filter(|s| s.pending_fp.as_ref().is_none_or(|p| *p == fp))
            .collect();
        free.sort_by_key(|s| (s.used_here == 0, s.activation_count));
        let chosen = match mine {
            Some(slot) => slot,
            None => {
                if !free.is_empty() {
                    let scope: Vec<i64> = slots.iter().map(|s| s.id).collect();
                    if channel.enforces_churn() {
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
                        // A licence waiting for a removed machine's code says until when.
                        let hosts: Vec<String> = slots
                            .iter()
                            .filter_map(|s| {
                                match (&s.live_host, &s.pending_host, s.pending_until) {
                                    (Some(host), ..) => Some(host.clone()),
                                    (None, Some(host), Some(until)) => Some(format!(
                                        "{host}, removed without it, frees on {}",
                                        protocol::time::format_utc(until)
                                    )),
                                    _ => None,
                                }
                            })
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
        // The serial's budget was checked above, for all its licences together.
        self.bind_licence(
            LicenceBy::Id(chosen.id),
            &fp,
            &host,
            Binder {
                channel,
                product: None,
                via_serial: Some((web.id, &web.serial)),
                enforce_churn: false,
                terms: None,
            },
        )
        .await
        .map_err(|e| match e {
            Error::Conflict(_) | Error::ActivatedElsewhere(_) => Error::Conflict(
                "Another machine took this serial's licence at the same moment: try again.".into(),
            ),
            other => other,
        })
    }

    /// The application frees the serial's licence it holds on the machine `fingerprint`, at once
    /// when it gives up its latest code (`proof`).
    pub async fn remove_serial_activation(
        &self,
        product_code: &str,
        serial: &str,
        fingerprint: &str,
        proof: Option<&str>,
    ) -> Result<Removal> {
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
        self.unbind_licence(lic, Some(&fp), Remover::EndUser { proof })
            .await
    }
}
