//! Revoke-and-reissue: a compromised serial replaced by a new one that takes over its licences.

use super::*;

impl Licentia {
    /// Revokes a compromised serial and issues its replacement in one step. The replacement takes
    /// over the licences (with their counters, features and activation history); machines
    /// activated with the old serial keep working until their next validation, which tells them
    /// to activate again with the new one.
    pub async fn revoke_and_reissue(
        &self,
        actor: &CurrentUser,
        serial_id: i64,
        note: &str,
    ) -> Result<Serial> {
        require_admin(actor)?;
        let note = input::notes(note)?;
        let old = self.serial_row(serial_id).await?;
        if old.revoked_at.is_some() {
            return Err(Error::Conflict(format!(
                "This serial number was already revoked{}.",
                old.replaced_by
                    .as_deref()
                    .map(|n| format!(" and replaced by {n}"))
                    .unwrap_or_default()
            )));
        }
        let key = self.serial_key();
        let data = key
            .check(&old.serial)
            .map_err(|e| Error::Internal(format!("a stored serial does not check: {e}")))?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        // Revoking first, conditionally, makes two simultaneous reissues of one serial fail
        // cleanly instead of producing two replacements.
        let revoked = sqlx::query(
            "UPDATE serials SET revoked_at = $1, revoke_note = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&note)
        .bind(serial_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if revoked == 0 {
            return Err(Error::Conflict(
                "This serial number was just revoked by someone else.".into(),
            ));
        }
        let new_id = loop {
            let serial = key
                .mint(SerialData {
                    serial_id: OsRng.gen_range(0..1u64 << 40),
                    ..data
                })
                .map_err(|e| Error::Internal(e.to_string()))?;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO serials (batch_id, product_id, serial, features, replaces, created_at) \
                 SELECT batch_id, product_id, $1, features, id, $2 FROM serials WHERE id = $3 \
                 ON CONFLICT (serial) DO NOTHING RETURNING id",
            )
            .bind(&serial)
            .bind(now)
            .bind(serial_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = inserted {
                break id;
            }
        };
        sqlx::query("UPDATE licences SET serial_id = $1 WHERE serial_id = $2")
            .bind(new_id)
            .bind(serial_id)
            .execute(&mut *tx)
            .await?;
        // Its floating pool too: running sessions keep their seats, new checkouts need the new key.
        sqlx::query("UPDATE pools SET serial_id = $1 WHERE serial_id = $2")
            .bind(new_id)
            .bind(serial_id)
            .execute(&mut *tx)
            .await?;
        let new_serial: String = sqlx::query_scalar("SELECT serial FROM serials WHERE id = $1")
            .bind(new_id)
            .fetch_one(&mut *tx)
            .await?;
        // Ids only: a serial checks out seats and activates licences.
        crate::webhooks::emit(
            &mut tx,
            now,
            protocol::webhooks::WebhookEvent::SerialRevoked,
            serde_json::json!({
                "serial_id": serial_id,
                "replaced_by": new_id,
                "product_id": old.product_id,
                "note": note,
            }),
        )
        .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::SerialReissue,
                format!("serial {}", protocol::redact::mask(&old.serial)),
            )
            .detail(format!(
                "Revoked and replaced by {}{}",
                protocol::redact::mask(&new_serial),
                if note.is_empty() {
                    ".".to_owned()
                } else {
                    format!(": {note}")
                }
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            old = serial_id,
            new = new_id,
            by = actor.id,
            "serial revoked and reissued"
        );
        self.serial_row(new_id).await
    }
}
