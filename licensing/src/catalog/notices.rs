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

/// A licence of a client's that ends soon, as its reminder names it: the key only by its first
/// characters (mail is not a safe place for it).
#[derive(Clone, PartialEq, Eq)]
pub struct EndingSoon {
    pub key_start: String,
    pub expires_on: i64,
    pub product_code: String,
    pub product_name: String,
    pub hostname: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    licence_key: String,
    expires_on: i64,
    client_name: String,
    contact_email: String,
    product_code: String,
    product_name: String,
    hostname: Option<String>,
}

/// A reminder that failed is tried again after this long…
const RETRY_AFTER_SECS: i64 = 3600;
/// …this many times in all; then it is given up (logged).
const MAX_ATTEMPTS: i64 = 5;

/// Whether the licence (`alias.` before its columns, or nothing) is due a reminder: its last
/// day within `$1..=$2` (day numbers), not reminded of that end, and not tried since `$3`.
fn due(alias: &str) -> String {
    format!(
        "{alias}expires_on IS NOT NULL AND {alias}expires_on >= $1 AND {alias}expires_on <= $2 \
         AND ({alias}reminded_for IS NULL OR {alias}reminded_for <> {alias}expires_on) \
         AND ({alias}reminder_tried_at IS NULL OR {alias}reminder_tried_at < $3)"
    )
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
                l.key_start,
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
        let mut told = 0;
        loop {
            let (seen, now_told) = self.notice_expired_batch().await?;
            told += now_told;
            if seen < BATCH as usize {
                return Ok(told);
            }
        }
    }

    /// One batch of `notice_expired_licences`: how many licences it looked at, and told.
    async fn notice_expired_batch(&self) -> Result<(usize, usize)> {
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
        let seen = rows.len();
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
            crate::db::commit(tx).await?;
            told += 1;
        }
        Ok((seen, told))
    }

    /// Mails each client's contact the licences that end within `within_days` (today
    /// included) and have not been reminded of for that end: one letter per client; how many
    /// licences were. Without an SMTP server, nothing. Each client's due licences are claimed
    /// together by one update that only one replica wins; a letter that fails is tried again an
    /// hour later (a claim left by a stopped server too), at most `MAX_ATTEMPTS` times.
    pub async fn send_expiry_reminders(&self, within_days: i64) -> Result<usize> {
        let Some(mailer) = self.mailer.clone() else {
            return Ok(0);
        };
        let portal = format!("{}/client", self.issuer.trim_end_matches('/'));
        let mut reminded = 0;
        // Each client once per call, in order of id (a client that fails waits its hour).
        let mut after = 0;
        loop {
            let now = self.clock.now();
            let today = now.div_euclid(86_400);
            let clients: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT DISTINCT o.client_id FROM licences l \
                 JOIN orders o ON o.id = l.order_id JOIN clients c ON c.id = o.client_id \
                 WHERE {} AND c.contact_email <> '' AND o.client_id > $4 \
                 ORDER BY o.client_id LIMIT 100",
                due("l.")
            ))
            .bind(today)
            .bind(today + within_days)
            .bind(now - RETRY_AFTER_SECS)
            .bind(after)
            .fetch_all(self.db.pool())
            .await?;
            let Some(last) = clients.last() else {
                return Ok(reminded);
            };
            after = *last;
            for client in clients {
                reminded += self
                    .remind_client(&mailer, client, within_days, &portal)
                    .await?;
            }
        }
    }

    /// Claims `client`'s due licences, mails their contact, and records how it went.
    async fn remind_client(
        &self,
        mailer: &crate::mail::Mailer,
        client: i64,
        within_days: i64,
        portal: &str,
    ) -> Result<usize> {
        let now = self.clock.now();
        let today = now.div_euclid(86_400);
        let claim = crate::token::generate();
        // The conditions are on the updated row itself, so a second replica's update, run
        // after the first one's, finds the rows tried and leaves them.
        sqlx::query(&format!(
            "UPDATE licences SET reminder_claim = $4, reminder_tried_at = $5 \
             WHERE {} AND order_id IN (SELECT id FROM orders WHERE client_id = $6)",
            due("")
        ))
        .bind(today)
        .bind(today + within_days)
        .bind(now - RETRY_AFTER_SECS)
        .bind(&claim)
        .bind(now)
        .bind(client)
        .execute(self.db.pool())
        .await?;
        let rows: Vec<ClaimedRow> = sqlx::query_as(
            "SELECT l.id, l.licence_key, l.expires_on, c.name AS client_name, c.contact_email, \
                    p.code AS product_code, p.name AS product_name, a.hostname \
             FROM licences l \
             JOIN orders o ON o.id = l.order_id \
             JOIN clients c ON c.id = o.client_id \
             JOIN products p ON p.id = o.product_id \
             LEFT JOIN activations a ON a.licence_id = l.id AND a.removed_at IS NULL \
             WHERE l.reminder_claim = $1 AND l.expires_on >= $2 AND l.expires_on <= $3 \
             ORDER BY l.expires_on, l.id",
        )
        .bind(&claim)
        .bind(today)
        .bind(today + within_days)
        .fetch_all(self.db.pool())
        .await?;
        // (A licence whose end moved out of the window since the claim is let go below.)
        let named: Vec<(i64, i64)> = rows.iter().map(|r| (r.id, r.expires_on)).collect();
        let Some(first) = rows.first() else {
            self.release_claim(&claim, 0).await?;
            return Ok(0);
        };
        let (name, email) = (first.client_name.clone(), first.contact_email.clone());
        let licences: Vec<EndingSoon> = rows
            .into_iter()
            .map(|r| EndingSoon {
                key_start: protocol::redact::mask(&r.licence_key),
                expires_on: r.expires_on,
                product_code: r.product_code,
                product_name: r.product_name,
                hostname: r.hostname,
            })
            .collect();
        let count = licences.len();
        let letter = reminder_letter(&name, &licences, portal);
        match mailer.send(&name, &email, letter).await {
            Ok(()) => {
                // Reminded of the end the letter named for it: a licence whose end moved
                // meanwhile (an extension) stays due for its new end.
                self.settle_named(&claim, &named, false).await?;
                self.release_claim(&claim, 0).await?;
                tracing::info!(client, licences = count, "expiry reminder sent");
                Ok(count)
            }
            Err(e) => {
                // The last attempt gives up on the ends the letter named (marked reminded,
                // logged); the others wait their hour.
                let given_up = self.settle_named(&claim, &named, true).await?;
                self.release_claim(&claim, 1).await?;
                match given_up {
                    0 => {
                        tracing::warn!(client, error = %e, "an expiry reminder could not be sent; it is tried again in an hour")
                    }
                    n => {
                        tracing::warn!(client, licences = n, error = %e, "an expiry reminder could not be sent {MAX_ATTEMPTS} times: given up")
                    }
                }
                Ok(0)
            }
        }
    }

    /// Marks each of `named` (licence, end) still under `claim` and still ending then as
    /// reminded of that end (its attempts back to 0), and lets it go — with `last_attempt_only`,
    /// only those on their last attempt (given up). How many were marked.
    async fn settle_named(
        &self,
        claim: &str,
        named: &[(i64, i64)],
        last_attempt_only: bool,
    ) -> Result<u64> {
        let least = if last_attempt_only {
            MAX_ATTEMPTS - 1
        } else {
            0
        };
        let mut marked = 0;
        for (id, end) in named {
            marked += sqlx::query(
                "UPDATE licences SET reminded_for = $3, reminder_claim = NULL, \
                 reminder_attempts = 0 \
                 WHERE reminder_claim = $1 AND id = $2 AND expires_on = $3 \
                   AND reminder_attempts >= $4",
            )
            .bind(claim)
            .bind(id)
            .bind(end)
            .bind(least)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        }
        Ok(marked)
    }

    /// Lets go of the licences still under `claim`, counting `failed` attempts more.
    async fn release_claim(&self, claim: &str, failed: i64) -> Result<()> {
        sqlx::query(
            "UPDATE licences SET reminder_claim = NULL, \
             reminder_attempts = reminder_attempts + $2 WHERE reminder_claim = $1",
        )
        .bind(claim)
        .bind(failed)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(key: &str, day: i64, host: Option<&str>) -> EndingSoon {
        EndingSoon {
            key_start: protocol::redact::mask(key),
            expires_on: day,
            product_code: "CALC".into(),
            product_name: "Calc Pro".into(),
            hostname: host.map(Into::into),
        }
    }

    #[test]
    fn a_reminder_lists_each_licence_with_its_last_day_and_the_start_of_its_key() {
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
