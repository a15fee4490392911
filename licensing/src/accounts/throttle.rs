//! Sign-in throttling, per account and per network address. Failures are counted in a sliding
//! window; reaching the limit locks the key for a while. Counting is one atomic upsert, so several
//! server processes sharing a database count together.

use crate::{Licentia, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures within `window_secs` that lock the key.
    pub max_failures: i64,
    pub window_secs: i64,
    /// How long a lock lasts.
    pub lockout_secs: i64,
}

impl Policy {
    /// Seconds until a key locked until `locked_until` may try again, if it is locked at `now`.
    pub fn retry_after(locked_until: i64, now: i64) -> Option<i64> {
        (locked_until > now).then_some(locked_until - now)
    }

    /// Whether `failures` in the current window reach the limit.
    pub fn locks_at(&self, failures: i64) -> bool {
        failures >= self.max_failures
    }
}

pub(crate) fn account_key(email: &str) -> String {
    format!("account:{email}")
}

pub(crate) fn address_key(address: &str) -> String {
    format!("address:{address}")
}

impl Licentia {
    /// The longest wait among `keys` that are locked now, if any.
    pub(crate) async fn throttle_wait(&self, keys: &[&str]) -> Result<Option<i64>> {
        let now = self.clock.now();
        let mut wait: Option<i64> = None;
        for key in keys {
            let locked_until: Option<i64> =
                sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE key = $1")
                    .bind(*key)
                    .fetch_optional(self.db.pool())
                    .await?;
            if let Some(secs) = locked_until.and_then(|until| Policy::retry_after(until, now)) {
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
            }
        }
        Ok(wait)
    }

    /// Counts one failure against `key`; returns the lock's length if this failure set one.
    pub(crate) async fn throttle_fail(&self, key: &str, policy: &Policy) -> Result<Option<i64>> {
        let now = self.clock.now();
        let window_start_before = now - policy.window_secs;
        // Counting and locking are one change: a failure that reaches the limit always locks.
        let mut tx = self.db.pool().begin().await?;
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO login_throttle (key, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, 0) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 \
                               ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 \
                                   ELSE login_throttle.window_start END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(window_start_before)
        .fetch_one(&mut *tx)
        .await?;
        if !policy.locks_at(failures) {
            tx.commit().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE login_throttle SET locked_until = $2, failures = 0, window_start = $3 \
             WHERE key = $1",
        )
        .bind(key)
        .bind(now + policy.lockout_secs)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(key, "sign-in locked after repeated failures");
        Ok(Some(policy.lockout_secs))
    }

    pub(crate) async fn throttle_clear(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_counts_down_to_unlocked() {
        assert_eq!(Policy::retry_after(100, 40), Some(60));
        assert_eq!(Policy::retry_after(100, 100), None);
        assert_eq!(Policy::retry_after(0, 100), None);
    }

    #[test]
    fn locks_at_the_limit() {
        let p = Policy {
            max_failures: 3,
            window_secs: 60,
            lockout_secs: 60,
        };
        assert!(!p.locks_at(2));
        assert!(p.locks_at(3));
    }
}
