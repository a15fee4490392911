//! Telling people that licences end: a `licence.expired` webhook event once a licence's last
//! day has passed, and an e-mail reminding a client's contact of the licences that end soon.
//! Each is told once per licence and end date (an extension makes a new end, told again), and
//! safe with several replicas: a licence is claimed by an update that only one of them wins.

use crate::{Licentia, Result};
use protocol::time::format_date;
use protocol::webhooks::WebhookEvent;

/// Licences looked at per round (the rest wait for the next round).
const BATCH: i64 = 500;

/// A licence whose end a round tells.
#[derive(sqlx::FromRow)]
struct Ending {
    id: i64,
    expires_on: i64,
    order_id: Option<i64>,
    serial_id: Option<i64>,
    client_id: Option<i64>,
    product_id: Option<i64>,
}

/// A licence of a client's that ends soon, for its reminder.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EndingSoon {
    pub licence_id: i64,
    pub licence_key: String,
    pub expires_on: i64,
    pub client_id: i64,
    pub client_name: String,
    pub contact_email: String,
    pub product_code: String,
    pub product_name: String,
    pub hostname: Option<String>,
}

/// The reminder to a client's contact: the licences that end within the period, soonest
/// first, keys shown by their first characters only (mail is not a safe place for them), and
/// where to extend or see them.
pub fn reminder_letter(client: &str, licences: &[EndingSoon], portal: &str) -> crate::mail::Letter {
    let lines: Vec<String> = licences
        .iter()
        .map(|l| {
            let machine = l
                .hostname
                .as_deref()
                .map(|h| format!(", on {h}"))
                .unwrap_or_default();
            format!(
                "- {} · {} (licence {}{machine}): last day {}",
                l.product_code,
                l.product_name,
                protocol::redact::mask(&l.licence_key),
                format_date(l.expires_on)
            )
        })
        .collect();
    let (count, end, them) = match licences.len() {
        1 => ("A licence".to_owned(), "ends", "it"),
        n => (format!("{n} licences"), "end", "them"),
    };
    crate::mail::Letter {
        subject: format!("{count} of {client} {end} soon"),
        body: format!(
            "Hello,\n\n{count} of {client} {end} soon:\n\n{}\n\nAfter its last day a licence stops \
             working at its next validation. To keep {them}, ask your supplier to extend {them}; \
             your licences are listed in the portal:\n\n{portal}\n",
            lines.join("\n")
        ),
    }
}

impl Licentia {
    /// Sends a `licence.expired` event for each licence whose last day is before today and
    /// whose end has not been told yet; how many were told.
    pub async fn notice_expired_licences(&self) -> Result<usize> {
        let today = self.clock.now().div_euclid(86_400);
        let rows: Vec<Ending> = sqlx::query_as(
            "SELECT l.id, l.expires_on, l.order_id, l.serial_id, o.client_id, \
                    COALESCE(o.product_id, s.product_id) AS product_id \
             FROM licences l \
             LEFT JOIN orders o ON o.id = l.order_id \
             LEFT JOIN serials s ON s.id = l.serial_id \
             WHERE l.expires_on IS NOT NULL AND l.expires_on < $1 \
               AND (l.expiry_noticed IS NULL OR l.expiry_noticed <> l.expires_on) \
             ORDER BY l.id LIMIT $2",
        )
        .bind(today)
        .bind(BATCH)
        .fetch_all(self.db.pool())
        .await?;
        let mut told = 0;
        for r in rows {
            let mut tx = self.db.pool().begin().await?;
            let claimed = sqlx::query(
                "UPDATE licences SET expiry_noticed = $2 \
                 WHERE id = $1 AND expires_on = $2 \
                   AND (expiry_noticed IS NULL OR expiry_noticed <> $2)",
            )
            .bind(r.id)
            .bind(r.expires_on)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                // Another replica told it, or its end moved since it was read.
                continue;
            }
            crate::webhooks::emit(
                &mut tx,
                self.clock.now(),
                WebhookEvent::LicenceExpired,
                serde_json::json!({
                    "licence_id": r.id,
                    "order_id": r.order_id,
                    "serial_id": r.serial_id,
                    "client_id": r.client_id,
                    "product_id": r.product_id,
                    "expires_on": format_date(r.expires_on),
                }),
            )
            .await?;
            tx.commit().await?;
            told += 1;
        }
        Ok(told)
    }

    /// Mails each client's contact the licences that end within `within_days` (today
    /// included) and have not been reminded of for that end; how many licences were. Without
    /// an SMTP server, nothing. A licence whose letter could not be sent is tried again next
    /// round.
    pub async fn send_expiry_reminders(&self, within_days: i64) -> Result<usize> {
        let Some(mailer) = self.mailer.clone() else {
            return Ok(0);
        };
        let today = self.clock.now().div_euclid(86_400);
        let rows: Vec<EndingSoon> = sqlx::query_as(
            "SELECT l.id AS licence_id, l.licence_key, l.expires_on, c.id AS client_id, \
                    c.name AS client_name, c.contact_email, p.code AS product_code, \
                    p.name AS product_name, a.hostname \
             FROM licences l \
             JOIN orders o ON o.id = l.order_id \
             JOIN clients c ON c.id = o.client_id \
             JOIN products p ON p.id = o.product_id \
             LEFT JOIN activations a ON a.licence_id = l.id AND a.removed_at IS NULL \
             WHERE l.expires_on IS NOT NULL AND l.expires_on >= $1 AND l.expires_on <= $2 \
               AND (l.reminded_for IS NULL OR l.reminded_for <> l.expires_on) \
               AND c.contact_email <> '' \
             ORDER BY c.id, l.expires_on, l.id LIMIT $3",
        )
        .bind(today)
        .bind(today + within_days)
        .bind(BATCH)
        .fetch_all(self.db.pool())
        .await?;
        let portal = format!("{}/client", self.issuer.trim_end_matches('/'));
        let mut reminded = 0;
        for client in rows.chunk_by(|a, b| a.client_id == b.client_id) {
            let mut mine = Vec::new();
            for l in client {
                let claimed = sqlx::query(
                    "UPDATE licences SET reminded_for = $2 \
                     WHERE id = $1 AND expires_on = $2 \
                       AND (reminded_for IS NULL OR reminded_for <> $2)",
                )
                .bind(l.licence_id)
                .bind(l.expires_on)
                .execute(self.db.pool())
                .await?
                .rows_affected();
                if claimed == 1 {
                    mine.push(l.clone());
                }
            }
            let Some(first) = mine.first() else {
                continue;
            };
            let letter = reminder_letter(&first.client_name, &mine, &portal);
            let sent = mailer
                .send(&first.client_name, &first.contact_email, letter)
                .await;
            match sent {
                Ok(()) => {
                    reminded += mine.len();
                    tracing::info!(
                        client = first.client_id,
                        licences = mine.len(),
                        "expiry reminder sent"
                    );
                }
                Err(e) => {
                    tracing::warn!(client = first.client_id, error = %e, "an expiry reminder could not be sent; it is tried again later");
                    for l in &mine {
                        sqlx::query(
                            "UPDATE licences SET reminded_for = NULL \
                             WHERE id = $1 AND reminded_for = $2",
                        )
                        .bind(l.licence_id)
                        .bind(l.expires_on)
                        .execute(self.db.pool())
                        .await?;
                    }
                }
            }
        }
        Ok(reminded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(key: &str, day: i64, host: Option<&str>) -> EndingSoon {
        EndingSoon {
            licence_id: 1,
            licence_key: key.into(),
            expires_on: day,
            client_id: 1,
            client_name: "Acme".into(),
            contact_email: "buyer@acme.test".into(),
            product_code: "CALC".into(),
            product_name: "Calc Pro".into(),
            hostname: host.map(Into::into),
        }
    }

    #[test]
    fn a_reminder_lists_each_licence_with_its_last_day_and_never_a_whole_key() {
        let key = "LIC-ABCDEFGH-IJKLMNOP-QRSTUVWX";
        let day = protocol::time::days_from_civil(2027, 3, 31);
        let one = reminder_letter(
            "Acme",
            &[ending(key, day, Some("ws-1"))],
            "https://lic.example.com/client",
        );
        assert_eq!(one.subject, "A licence of Acme ends soon");
        assert!(
            one.body.contains("CALC · Calc Pro")
                && one.body.contains("on ws-1")
                && one.body.contains("last day 2027-03-31"),
            "{}",
            one.body
        );
        assert!(
            !one.body.contains(key) && one.body.contains(&protocol::redact::mask(key)),
            "{}",
            one.body
        );
        assert!(
            one.body.contains("https://lic.example.com/client") && one.body.contains("extend it"),
            "{}",
            one.body
        );
        let two = reminder_letter(
            "Acme",
            &[ending(key, day, None), ending(key, day + 1, None)],
            "p",
        );
        assert_eq!(two.subject, "2 licences of Acme end soon");
        assert!(
            two.body.contains("extend them") && two.body.matches("\n- ").count() == 2,
            "{}",
            two.body
        );
    }
}
