//! Background work beside the HTTP server. Each step is a service method a test can call directly;
//! this loop only paces them. Safe with several replicas: each step changes a row only if it is
//! still in the state the step expects.

use licensing::Licentia;
use std::time::Duration;

const SESSION_PURGE_EVERY: Duration = Duration::from_secs(600);
/// A dead application's seat comes back within its lease plus this.
const LEASE_RECLAIM_EVERY: Duration = Duration::from_secs(5);
/// A month's casual usage report is made within this of 00:00 UTC on the 1st (and at start).
const CASUAL_REPORT_EVERY: Duration = Duration::from_secs(20);
/// Casual over-use is logged within this of the minute it happens; each hour's use is noted.
const CASUAL_METER_EVERY: Duration = Duration::from_secs(60);
const HISTORY_PURGE_EVERY: Duration = Duration::from_secs(3600);
/// A webhook event goes out within this of its change (or of its retry time).
const WEBHOOKS_EVERY: Duration = Duration::from_secs(3);
/// A licence's end is told (webhook event, reminder) within this of the day it is due.
const EXPIRY_NOTICES_EVERY: Duration = Duration::from_secs(600);
/// Delivered and given-up webhook deliveries are kept this long.
const DELIVERIES_KEPT_DAYS: i64 = 30;

/// What the jobs are told by the configuration.
#[derive(Debug, Clone, Copy)]
pub struct JobSettings {
    /// Ended seats older than this many days leave the session history.
    pub history_retention_days: i64,
    /// Days before a licence's end its client's contact is reminded; `None`: no reminders.
    pub expiry_reminder_days: Option<i64>,
}

/// Runs the jobs: the lease reclaimer and the purges in one loop, the usage-history work (casual
/// metering and reports, hourly peaks, the history purge) in another, the webhook deliveries in
/// a third, the `licence.expired` events in a fourth and the expiry reminders in a fifth, so a
/// long step of one never delays another.
pub async fn run(
    services: Licentia,
    settings: JobSettings,
    sender: Option<crate::webhooks::Sender>,
) {
    tokio::join!(
        housekeeping(services.clone()),
        usage_history(services.clone(), settings),
        webhooks(services.clone(), sender),
        expired_licences(services.clone()),
        expiry_reminders(services, settings)
    );
}

/// Sends the webhook deliveries that are due, every few seconds (when this server sends
/// them), and drops the settled ones after 30 days.
async fn webhooks(services: Licentia, sender: Option<crate::webhooks::Sender>) {
    let mut tick = tokio::time::interval(WEBHOOKS_EVERY);
    // A long round is followed by a pause, not by a burst of rounds to catch up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purge = tokio::time::interval(HISTORY_PURGE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick(), if sender.is_some() => {
                if let Some(s) = &sender {
                    if let Err(e) = s.deliver_due(&services).await {
                        tracing::warn!(error = %e, "sending webhook deliveries failed");
                    }
                }
            }
            _ = purge.tick() => {
                if let Err(e) = services.purge_deliveries(DELIVERIES_KEPT_DAYS).await {
                    tracing::warn!(error = %e, "purging old webhook deliveries failed");
                }
            }
        }
    }
}

/// Sends the `licence.expired` events every ten minutes.
async fn expired_licences(services: Licentia) {
    let mut tick = tokio::time::interval(EXPIRY_NOTICES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = services.notice_expired_licences().await {
            tracing::warn!(error = %e, "telling of expired licences failed");
        }
    }
}

/// Mails the expiry reminders every ten minutes, when they are set up (a slow mail server
/// delays only these).
async fn expiry_reminders(services: Licentia, settings: JobSettings) {
    let Some(days) = settings.expiry_reminder_days else {
        return;
    };
    let mut tick = tokio::time::interval(EXPIRY_NOTICES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = services.send_expiry_reminders(days).await {
            tracing::warn!(error = %e, "sending expiry reminders failed");
        }
    }
}

async fn usage_history(services: Licentia, settings: JobSettings) {
    let mut reports = tokio::time::interval(CASUAL_REPORT_EVERY);
    let mut meter = tokio::time::interval(CASUAL_METER_EVERY);
    let mut history = tokio::time::interval(HISTORY_PURGE_EVERY);
    let retention = settings.history_retention_days;
    loop {
        tokio::select! {
            _ = reports.tick() => {
                if let Err(e) = services.produce_casual_reports(retention).await {
                    tracing::warn!(error = %e, "producing the casual usage report failed");
                }
            }
            _ = meter.tick() => {
                if let Err(e) = services.meter_casual_usage().await {
                    tracing::warn!(error = %e, "metering casual usage failed");
                }
                if let Err(e) = services.record_usage_peaks().await {
                    tracing::warn!(error = %e, "noting this hour's seats in use failed");
                }
            }
            _ = history.tick() => match services.purge_history(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "old session history purged"),
                Err(e) => tracing::warn!(error = %e, "purging old session history failed"),
            },
        }
    }
}

async fn housekeeping(services: Licentia) {
    let mut sessions = tokio::time::interval(SESSION_PURGE_EVERY);
    let mut leases = tokio::time::interval(LEASE_RECLAIM_EVERY);
    let mut throttle = tokio::time::interval(SESSION_PURGE_EVERY);
    loop {
        tokio::select! {
            _ = sessions.tick() => match services.purge_expired_sessions().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(sessions = n, "expired sessions purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
            },
            _ = throttle.tick() => {
                if let Err(e) = services.purge_login_throttle().await {
                    tracing::warn!(error = %e, "purging old sign-in throttle rows failed");
                }
                if let Err(e) = services.purge_checkout_rate().await {
                    tracing::warn!(error = %e, "purging old checkout counts failed");
                }
                if let Err(e) = services.purge_sign_in_challenges().await {
                    tracing::warn!(error = %e, "purging expired sign-in challenges failed");
                }
                if let Err(e) = services.purge_expired_links().await {
                    tracing::warn!(error = %e, "purging expired password links failed");
                }
            }
            _ = leases.tick() => {
                if let Err(e) = services.reclaim_expired_seats().await {
                    tracing::warn!(error = %e, "reclaiming expired seats failed");
                }
            }
        }
    }
}
