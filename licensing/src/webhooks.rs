//! Webhooks: an administrator registers URLs for events; each event is written as a delivery
//! per subscribed webhook in the transaction of the change that caused it (an outbox: nothing
//! acknowledged is lost, nothing rolled back is told), and the server's job sends them, signed,
//! retrying with backoff (`protocol::webhooks::retry_after`). Sending is the server's (HTTP);
//! claiming, recording answers and the signature are here.

use crate::audit::{Entry, Who};
use crate::{require_admin, Error, Licentia, Result};
use hmac::{Hmac, Mac};
use protocol::account::CurrentUser;
use protocol::audit::AuditAction;
use protocol::webhooks::{
    retry_after, NewWebhook, Webhook, WebhookDelivery, WebhookEvent, WebhookInput, MAX_ATTEMPTS,
};
use sha2::Sha256;

/// What a webhook's secret is sealed for (it opens only as one).
const SECRET_AAD: &[u8] = b"licentia webhook secret";

/// How long a claimed delivery is left to the replica sending it before another may.
const CLAIM_SECS: i64 = 120;

/// The longest answer kept of a receiver (its start).
const ANSWER_CHARS: usize = 300;

/// At most this many webhooks (each event is written once per webhook).
pub const MAX_WEBHOOKS: i64 = 20;

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// Writes `event` for every webhook that takes it, in the caller's transaction: the body sent is
/// `{"id": "evt_…", "type": …, "created_at": …, "data": data}` (the same id on every retry and
/// every webhook, for receivers to drop repeats).
pub(crate) async fn emit(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    event: WebhookEvent,
    data: serde_json::Value,
) -> Result<()> {
    let body = serde_json::json!({
        "id": format!("evt_{}", crate::token::generate()),
        "type": event.code(),
        "created_at": now,
        "data": data,
    })
    .to_string();
    // One statement whether or not a webhook wants the event (most servers have none for most
    // events): it runs inside the caller's transaction, where a read first would cost as much.
    sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event, payload, created_at, attempts, \
         next_attempt_at) \
         SELECT id, $1, $2, $3, 0, $3 FROM webhooks \
         WHERE (',' || events || ',') LIKE ('%,' || $1 || ',%')",
    )
    .bind(event.code())
    .bind(&body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A delivery claimed for sending.
#[derive(Clone)]
pub struct DueDelivery {
    pub id: i64,
    /// This attempt's claim: only it records the outcome.
    pub claim: String,
    pub url: String,
    pub secret: String,
    pub event: String,
    pub payload: String,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("event", &self.event)
            .field("secret", &"(not shown)")
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    url: String,
    events: String,
    created_at: i64,
    pending: i64,
    failed: i64,
}

impl WebhookRow {
    fn view(self) -> Webhook {
        Webhook {
            id: self.id,
            url: self.url,
            events: self
                .events
                .split(',')
                .filter_map(WebhookEvent::parse)
                .collect(),
            created_at: self.created_at,
            pending: self.pending,
            failed: self.failed,
        }
    }
}

const WEBHOOK_SELECT: &str = "SELECT w.id, w.url, w.events, w.created_at, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id \
        AND d.next_attempt_at IS NOT NULL) AS pending, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id \
        AND d.failed_at IS NOT NULL) AS failed \
     FROM webhooks w";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event: String,
    payload: String,
    created_at: i64,
    attempts: i64,
    last_attempt_at: Option<i64>,
    last_status: Option<i64>,
    last_answer: Option<String>,
    delivered_at: Option<i64>,
    failed_at: Option<i64>,
    next_attempt_at: Option<i64>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(r: DeliveryRow) -> Self {
        WebhookDelivery {
            id: r.id,
            webhook_id: r.webhook_id,
            event: r.event,
            payload: r.payload,
            created_at: r.created_at,
            attempts: r.attempts,
            last_attempt_at: r.last_attempt_at,
            last_status: r.last_status,
            last_answer: r.last_answer,
            delivered_at: r.delivered_at,
            failed_at: r.failed_at,
            next_attempt_at: r.next_attempt_at,
        }
    }
}

impl Licentia {
    /// Registers a webhook (administrators); its secret is in the answer, this once.
    pub async fn create_webhook(
        &self,
        actor: &CurrentUser,
        input: &WebhookInput,
    ) -> Result<NewWebhook> {
        require_admin(actor)?;
        let valid = input.check()?;
        let secret = format!("whsec_{}", crate::token::generate());
        let sealed = self.master_key.seal_for(SECRET_AAD, secret.as_bytes())?;
        let events: Vec<&str> = valid.events.iter().map(|e| e.code()).collect();
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks")
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_WEBHOOKS {
            return Err(Error::Conflict(format!(
                "There are {MAX_WEBHOOKS} webhooks already: remove one first."
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhooks (url, events, secret_sealed, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&valid.url)
        .bind(events.join(","))
        .bind(&sealed)
        .bind(now)
        .bind(actor.id)
        .fetch_one(&mut *tx)
        .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::WebhookCreate, format!("webhook {id}")).detail(format!(
                "{} for {}.",
                valid.url,
                events.join(", ")
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(NewWebhook {
            webhook: self.webhook(id).await?,
            secret,
        })
    }

    async fn webhook(&self, id: i64) -> Result<Webhook> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!("{WEBHOOK_SELECT} WHERE w.id = $1"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(WebhookRow::view)
            .ok_or(Error::NotFound("The webhook"))
    }

    /// The webhooks, oldest first (administrators).
    pub async fn list_webhooks(&self, actor: &CurrentUser) -> Result<Vec<Webhook>> {
        require_admin(actor)?;
        let rows: Vec<WebhookRow> = sqlx::query_as(&format!("{WEBHOOK_SELECT} ORDER BY w.id"))
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.into_iter().map(WebhookRow::view).collect())
    }

    /// Removes a webhook and its deliveries (administrators).
    pub async fn remove_webhook(&self, actor: &CurrentUser, id: i64) -> Result<()> {
        require_admin(actor)?;
        let mut tx = self.db.pool().begin().await?;
        let url: Option<String> =
            sqlx::query_scalar("DELETE FROM webhooks WHERE id = $1 RETURNING url")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let url = url.ok_or(Error::NotFound("The webhook"))?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::WebhookRemove, format!("webhook {id}"))
                .detail(format!("{url} no longer receives events.")),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }

    /// A webhook's deliveries, newest first, `limit` at a time before delivery `before`.
    pub async fn webhook_deliveries(
        &self,
        actor: &CurrentUser,
        webhook_id: i64,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<WebhookDelivery>, Option<i64>)> {
        require_admin(actor)?;
        self.webhook(webhook_id).await?;
        let limit = protocol::page::page_limit(limit)?;
        let mut rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, webhook_id, event, payload, created_at, attempts, last_attempt_at, \
             last_status, last_answer, delivered_at, failed_at, next_attempt_at \
             FROM webhook_deliveries WHERE webhook_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(webhook_id)
        .bind(before)
        .bind(limit + 1)
        .fetch_all(self.db.pool())
        .await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok((rows.into_iter().map(WebhookDelivery::from).collect(), next))
    }

    /// The deliveries due now with their webhook, soonest first (at most `limit`): each is then
    /// claimed on its own right before it is sent.
    pub async fn due_deliveries(&self, limit: i64) -> Result<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT id, webhook_id FROM webhook_deliveries \
             WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(self.clock.now())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Claims delivery `id` for one attempt by this sender, if it is still due and its webhook
    /// still exists: for two minutes (an attempt takes at most 10 s) no other sender takes it,
    /// and only this claim records the outcome. A secret that no longer opens is recorded as a
    /// failed attempt.
    pub async fn claim_delivery(&self, id: i64) -> Result<Option<DueDelivery>> {
        let now = self.clock.now();
        let claim = crate::token::generate();
        type Claimed = (Option<String>, Option<String>, String, String);
        let claimed: Option<Claimed> = sqlx::query_as(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, claim = $2 \
             WHERE id = $3 AND next_attempt_at IS NOT NULL AND next_attempt_at <= $4 \
             RETURNING (SELECT w.url FROM webhooks w WHERE w.id = webhook_id), \
               (SELECT w.secret_sealed FROM webhooks w WHERE w.id = webhook_id), event, payload",
        )
        .bind(now + CLAIM_SECS)
        .bind(&claim)
        .bind(id)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        let Some((url, sealed, event, payload)) = claimed else {
            return Ok(None);
        };
        let (Some(url), Some(sealed)) = (url, sealed) else {
            // Written while its webhook was being removed: nobody to send it to.
            sqlx::query("DELETE FROM webhook_deliveries WHERE id = $1")
                .bind(id)
                .execute(self.db.pool())
                .await?;
            return Ok(None);
        };
        let secret = match self
            .master_key
            .open_for(SECRET_AAD, &sealed, "a webhook secret")
        {
            Ok(s) => String::from_utf8_lossy(&s).into_owned(),
            Err(e) => {
                tracing::error!(delivery = id, error = %e, "a webhook secret does not open");
                self.delivery_attempted(
                    id,
                    &claim,
                    None,
                    "not sent: its secret does not open with this server's master key",
                )
                .await?;
                return Ok(None);
            }
        };
        Ok(Some(DueDelivery {
            id,
            claim,
            url,
            secret,
            event,
            payload,
        }))
    }

    /// Records an attempt's outcome: the receiver's status (none: not reached) and the start of
    /// its answer; delivered on a 2xx, else retried later or, after the last attempt, given up.
    pub async fn delivery_attempted(
        &self,
        id: i64,
        claim: &str,
        status: Option<u16>,
        answer: &str,
    ) -> Result<()> {
        let now = self.clock.now();
        let answer: String = answer
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(ANSWER_CHARS)
            .collect();
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let mut tx = self.db.pool().begin().await?;
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $1, \
             last_status = $2, last_answer = $3, claim = NULL \
             WHERE id = $4 AND claim = $5 RETURNING attempts",
        )
        .bind(now)
        .bind(status.map(i64::from))
        .bind(&answer)
        .bind(id)
        .bind(claim)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(attempts) = attempts else {
            // Its webhook was removed meanwhile, or its claim ran out and another sender took
            // it: that one records its own attempt.
            return Ok(());
        };
        let (delivered, failed, next) = if ok {
            (Some(now), None, None)
        } else {
            match retry_after(attempts).filter(|_| attempts < MAX_ATTEMPTS) {
                Some(wait) => (None, None, Some(now + wait)),
                None => (None, Some(now), None),
            }
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET delivered_at = $1, failed_at = $2, \
             next_attempt_at = $3 WHERE id = $4",
        )
        .bind(delivered)
        .bind(failed)
        .bind(next)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        crate::db::commit(tx).await?;
        if let Some(f) = failed {
            tracing::warn!(
                delivery = id,
                at = f,
                attempts,
                "a webhook delivery was given up"
            );
        }
        Ok(())
    }
}

impl Licentia {
    /// Deletes deliveries made more than `days` ago that were delivered or given up (what a job
    /// runs daily); returns how many.
    pub async fn purge_deliveries(&self, days: i64) -> Result<u64> {
        let cutoff = self.clock.now() - days.max(1) * 86_400;
        crate::db::delete_in_batches(
            self.db.pool(),
            "webhook_deliveries",
            "created_at < $1 AND next_attempt_at IS NULL",
            cutoff,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_time_and_the_body() {
        // (The receiver in the integration test checks it with an HMAC of its own.)
        let s = signature("whsec_test", 1_700_000_000, b"{\"a\":1}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("whsec_other", 1_700_000_000, b"{\"a\":1}"));
        assert_ne!(s, signature("whsec_test", 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(s, signature("whsec_test", 1_700_000_000, b"{\"a\":2}"));
    }
}
