//! Background work beside the HTTP server. Each step is a service method a test can call directly;
//! this loop only paces them. Safe with several replicas: each step changes a row only if it is
//! still in the state the step expects.

use licensing::Licentia;
use std::time::Duration;

const SESSION_PURGE_EVERY: Duration = Duration::from_secs(600);
/// A dead application's seat comes back within its lease plus this.
const LEASE_RECLAIM_EVERY: Duration = Duration::from_secs(5);

pub async fn run(services: Licentia) {
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
            }
            _ = leases.tick() => {
                if let Err(e) = services.reclaim_expired_seats().await {
                    tracing::warn!(error = %e, "reclaiming expired seats failed");
                }
            }
        }
    }
}
