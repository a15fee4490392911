//! Background work beside the HTTP server. Each step is a service method a test can call directly;
//! this loop only paces them. Safe with several replicas: each step is an idempotent statement.

use licensing::Licentia;
use std::time::Duration;

const SESSION_PURGE_EVERY: Duration = Duration::from_secs(600);

pub async fn run(services: Licentia) {
    let mut tick = tokio::time::interval(SESSION_PURGE_EVERY);
    loop {
        tick.tick().await;
        match services.purge_expired_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired sessions purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
    }
}
