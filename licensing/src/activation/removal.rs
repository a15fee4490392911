//! Freeing a licence from its machine: by the application, or in the portal (administrators
//! remove what end users may not only with force).

use super::*;

impl Licentia {
    /// Frees a licence from the machine it is bound to. End users may only where the product
    /// allows removal and the licence is not limited; administrators always may; a client user
    /// may for its own licences under the end-user rules.
    pub async fn remove_activation(
        &self,
        licence_key: &str,
        fingerprint: Option<&str>,
        remover: Remover<'_>,
    ) -> Result<Removal> {
        let key = parse_licence_key(licence_key)?;
        let lic = self.licence_state_by_key(&key).await?;
        if lic.serial_id.is_some() && matches!(remover, Remover::EndUser { .. }) {
            return Err(Error::refused(
                "This licence belongs to a serial number: remove it with the serial number.".into(),
            ));
        }
        self.unbind_licence(lic, fingerprint, remover).await
    }

    pub(super) async fn unbind_licence(
        &self,
        lic: LicenceState,
        fingerprint: Option<&str>,
        remover: Remover<'_>,
    ) -> Result<Removal> {
        let product = self.product_row(lic.product_id).await?;
        let by = match remover {
            Remover::EndUser { .. } => "user".to_owned(),
            Remover::Portal { actor, .. } => {
                self.require_state_access(actor, &lic)?;
                format!("{}:{}", actor.role.as_str(), actor.id)
            }
        };
        let admin = matches!(remover, Remover::Portal { actor, .. } if actor.role == Role::Admin);
        let forced = matches!(remover, Remover::Portal { force: true, .. });
        if matches!(remover, Remover::Portal { free_now: true, .. }) && !admin {
            return Err(Error::NotAllowed);
        }
        removal_allowed(&product, admin, forced)?;
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
            self.check_licence_churn(&lic).await?;
        }
        // Without the machine (or without its latest code), that code may still pass offline:
        // the licence frees when it can no longer, as the row says at this moment (unless an
        // administrator frees it now, knowing that).
        let free_now = match remover {
            Remover::EndUser { proof } => {
                proof.is_some_and(|code| Some(code::code_digest(code)) == live.code_digest)
            }
            Remover::Portal { free_now, .. } => free_now,
        };
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let frees_at: Option<Option<i64>> = sqlx::query_scalar(
            "UPDATE activations SET removed_at = $1, removed_by = $2, frees_at = \
             CASE WHEN $3 = 1 OR offline_until IS NULL OR offline_until <= $1 THEN NULL \
             ELSE offline_until END \
             WHERE id = $4 AND removed_at IS NULL RETURNING frees_at",
        )
        .bind(now)
        .bind(&by)
        .bind(i64::from(free_now))
        .bind(live.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(frees_at) = frees_at else {
            return Err(Error::Gone(
                "This licence was removed from its machine a moment ago.".into(),
            ));
        };
        tell_removed(&mut tx, now, &lic, (live.id, &live.hostname), &by, frees_at).await?;
        let who = match remover {
            Remover::EndUser { .. } => Who::Application,
            Remover::Portal { actor, .. } => Who::User(actor),
        };
        let detail = match frees_at {
            None => format!("Removed from {}; the licence is free.", live.hostname),
            Some(at) => format!(
                "Removed from {} without its latest code; the licence frees at {}.",
                live.hostname,
                protocol::time::format_utc(at)
            ),
        };
        self.record(
            &mut *tx,
            who,
            Entry::new(
                AuditAction::ActivationRemove,
                licence_subject(lic.id, &lic.licence_key),
            )
            .of_client(lic.client_id)
            .detail(detail),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            licence_id = lic.id,
            activation_id = live.id,
            by,
            frees_at,
            "activation removed"
        );
        Ok(Removal { frees_at })
    }

    /// An administrator frees at once a licence removed without its machine, knowing that the
    /// machine's code may keep working offline until it would have freed.
    pub async fn free_licence_now(&self, actor: &CurrentUser, licence_id: i64) -> Result<()> {
        crate::require_admin(actor)?;
        let client = self.licence_client(licence_id).await?;
        let mut tx = self.db.pool().begin().await?;
        let freed = sqlx::query(
            "UPDATE activations SET frees_at = NULL WHERE licence_id = $1 AND frees_at > $2",
        )
        .bind(licence_id)
        .bind(self.clock.now())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if freed == 0 {
            return Err(Error::Gone(
                "This licence is not waiting for a removed machine's code to lapse.".into(),
            ));
        }
        let key: String = sqlx::query_scalar("SELECT licence_key FROM licences WHERE id = $1")
            .bind(licence_id)
            .fetch_one(&mut *tx)
            .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::LicenceFree, licence_subject(licence_id, &key))
                .of_client(client)
                .detail("Freed before the removed machine's code lapsed."),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::warn!(
            licence_id,
            by = actor.id,
            "licence freed before the removed code lapsed"
        );
        Ok(())
    }

    /// Frees a licence at once on its machine's removal code (the offline transfer): the machine
    /// deleted its code when it made the code. Returns the machine's name. The code must name the
    /// activation's licence (key or serial), product and machine, and the caller may manage it.
    pub async fn accept_removal_code(&self, actor: &CurrentUser, text: &str) -> Result<String> {
        let removal = code::RemovalCode::decode(text)
            .map_err(|e| InputError::new("removal_code", format!("{e}.")))?;
        let damaged = || {
            InputError::new("removal_code", "This removal code does not match the licence's activation: check that it was copied whole.")
        };
        #[derive(sqlx::FromRow)]
        struct Row {
            licence_id: i64,
            fingerprint: String,
            hostname: String,
            removed_at: Option<i64>,
            frees_at: Option<i64>,
            licence_key: String,
            licence_serial: Option<String>,
            product_code: String,
            code_digest: Option<String>,
        }
        let row: Row = sqlx::query_as(
            "SELECT a.licence_id, a.fingerprint, a.hostname, a.removed_at, a.frees_at, \
             l.licence_key, ls.serial AS licence_serial, p.code AS product_code, a.code_digest \
             FROM activations a JOIN licences l ON l.id = a.licence_id \
             LEFT JOIN serials ls ON ls.id = l.serial_id LEFT JOIN orders o ON o.id = l.order_id \
             JOIN products p ON p.id = COALESCE(o.product_id, ls.product_id) WHERE a.id = $1",
        )
        .bind(removal.act)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(damaged)?;
        let names_licence = match &row.licence_serial {
            Some(serial) => check_serial(&self.serial_key(), &removal.key)
                .is_ok_and(|(canonical, _)| canonical == *serial),
            None => parse_licence_key(&removal.key).is_ok_and(|k| k == row.licence_key),
        };
        let same_machine = self::fingerprint(&removal.fp).is_ok_and(|fp| fp == row.fingerprint);
        if !names_licence || row.product_code != removal.prd || !same_machine {
            return Err(damaged().into());
        }
        let lic = self.licence_state_by_id(row.licence_id).await?;
        self.require_state_access(actor, &lic)?;
        // The same rules as any removal (an administrator's paste counts as forced).
        let admin = actor.role == Role::Admin;
        removal_allowed(&self.product_row(lic.product_id).await?, admin, true)?;
        // Only the latest code the machine held frees at once: one made before a later
        // activation of the same machine gives up nothing.
        if row.code_digest.as_deref() != Some(removal.code.as_str()) {
            return Err(InputError::new(
                "removal_code",
                "This removal code gives up an older licence code than the machine's latest: \
                 make a new removal code on the machine.",
            )
            .into());
        }
        if !admin {
            self.check_licence_churn(&lic).await?;
        }
        let now = self.clock.now();
        let was_live = row.removed_at.is_none();
        let mut tx = self.db.pool().begin().await?;
        let freed = match (row.removed_at, row.frees_at) {
            (None, _) => sqlx::query(
                "UPDATE activations SET removed_at = $1, removed_by = 'removal code', \
                 frees_at = NULL WHERE id = $2 AND removed_at IS NULL",
            )
            .bind(now)
            .bind(removal.act),
            (Some(_), Some(at)) if at > now => sqlx::query(
                "UPDATE activations SET frees_at = NULL WHERE id = $2 AND frees_at > $1",
            )
            .bind(now)
            .bind(removal.act),
            _ => {
                return Err(Error::Gone(format!(
                    "The licence was already removed from {} and is free.",
                    row.hostname
                )))
            }
        }
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if freed == 0 {
            return Err(Error::Gone(
                "This activation changed a moment ago: look at the licence again.".into(),
            ));
        }
        if was_live {
            tell_removed(
                &mut tx,
                now,
                &lic,
                (removal.act, &row.hostname),
                "removal code",
                None,
            )
            .await?;
        }
        crate::db::commit(tx).await?;
        self.record_after(
            Who::User(actor),
            Entry::new(
                AuditAction::ActivationRemove,
                licence_subject(lic.id, &lic.licence_key),
            )
            .of_client(lic.client_id)
            .detail(format!(
                "Removed from {} by its removal code.",
                row.hostname
            )),
        )
        .await;
        tracing::info!(
            licence_id = row.licence_id,
            activation_id = removal.act,
            by = actor.id,
            "licence freed by a removal code"
        );
        Ok(row.hostname)
    }
}

/// The `activation.removed` event of `lic`'s activation (id, host name), in the removal's
/// transaction.
async fn tell_removed(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    lic: &LicenceState,
    (activation_id, hostname): (i64, &str),
    removed_by: &str,
    frees_at: Option<i64>,
) -> Result<()> {
    crate::webhooks::emit(
        conn,
        now,
        protocol::webhooks::WebhookEvent::ActivationRemoved,
        serde_json::json!({
            "licence_id": lic.id,
            "activation_id": activation_id,
            "client_id": lic.client_id,
            "hostname": hostname,
            "removed_by": removed_by,
            "frees_at": frees_at,
        }),
    )
    .await
}

/// The rules of who may remove a licence of `product`: end users and client users where the
/// product allows; administrators always, but what end users may not only with `forced`.
fn removal_allowed(product: &ProductRow, admin: bool, forced: bool) -> Result<()> {
    if admin {
        if !forced && (product.limited != 0 || product.end_user_removal == 0) {
            return Err(Error::refused(
                "Its users may not remove this licence; an administrator removes it with force."
                    .into(),
            ));
        }
        return Ok(());
    }
    if product.limited != 0 {
        return Err(Error::refused(
            "This is a limited licence: only your vendor's administrator can remove it.".into(),
        ));
    }
    if product.end_user_removal == 0 {
        return Err(Error::refused(
            "This product does not let its users remove licences. Ask your vendor's administrator."
                .into(),
        ));
    }
    Ok(())
}
