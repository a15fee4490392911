//! Checkout rate limits, in fixed one-minute windows: per caller address (an IPv6 /64 as one)
//! the checkouts that named no pool, per pool the checkouts it takes. Past a limit the answer is
//! 429 with the seconds left in the window. Counting is one atomic upsert,
//! so several server processes on one database count together.

use super::*;
use crate::accounts::throttle::address_group;

/// Checkouts allowed per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutLimits {
    /// Checkouts naming no pool (unknown or replaced keys, bad serials) from one address.
    pub per_address: i64,
    /// Into one pool.
    pub per_pool: i64,
}

impl Default for CheckoutLimits {
    fn default() -> Self {
        Self {
            per_address: 300,
            per_pool: 1200,
        }
    }
}

/// The length of a counting window.
pub const WINDOW_SECS: i64 = 60;

/// Seconds to wait when the `count`-th checkout of a window that began at `window_start` goes
/// past `max`; `None` while within it.
pub fn wait_for(count: i64, max: i64, window_start: i64, now: i64) -> Option<i64> {
    (count > max).then(|| (window_start + WINDOW_SECS - now).clamp(1, WINDOW_SECS))
}

impl Licentia {
    /// `checkout`, within the rate limits: an address whose checkouts named no pool (unknown or
    /// replaced keys, bad serials) too often this minute is refused before anything is looked
    /// up — guessing pool keys costs a minute per few hundred guesses — and a pool takes so many
    /// checkouts a minute (those with a replaced key in grace in a bucket of their own, so a
    /// leaked old key cannot crowd out the new one). Successful checkouts never count against
    /// an address: an office behind one NAT is never held up by its own morning.
    pub async fn checkout_from(&self, req: &CheckoutRequest, address: &str) -> Result<Grant> {
        let limits = self.auth.checkout_limits;
        let by_address = format!("address:{}", address_group(address));
        // Counted before the lookup in one statement (parallel guesses cannot all slip in under
        // the limit), and taken back when the lookup finds the pool.
        let pool_ref = req.pool()?;
        // A pool key's own pool is looked for in the counting statement, and a checkout that
        // finds it is not counted (one statement, not a count and a take-back).
        let spared = match &pool_ref {
            PoolRef::Key(key) => Some(pool_key_digest(key)),
            PoolRef::Serial { .. } => None,
        };
        self.count_checkout(
            &by_address,
            limits.per_address,
            "from this address",
            spared.as_deref(),
        )
        .await?;
        let pool = self.pool_for(&pool_ref).await?;
        if spared.is_none() {
            self.uncount_checkout(&by_address).await?;
        }
        let bucket = if pool.by_previous_key {
            format!("pool:{}:previous", pool.id)
        } else {
            format!("pool:{}", pool.id)
        };
        self.count_checkout(&bucket, limits.per_pool, "into this pool", None)
            .await?;
        self.checkout_in(pool, req, true).await
    }

    /// Takes back one count of `key` in its current window.
    async fn uncount_checkout(&self, key: &str) -> Result<()> {
        sqlx::query(
            "UPDATE checkout_rate SET count = count - 1 \
             WHERE key = $1 AND count > 0 AND window_start > $2",
        )
        .bind(key)
        .bind(self.clock.now() - WINDOW_SECS)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Counts one checkout in `key`'s window and refuses it past `max`. With `spared_key`, the
    /// digest of the pool key the checkout names, a checkout whose key finds a pool (current,
    /// or replaced and in its grace) is not counted — but is refused as if it were, so that
    /// once an address's misses fill its window no guess is answered, right or wrong.
    async fn count_checkout(
        &self,
        key: &str,
        max: i64,
        whose: &str,
        spared_key: Option<&str>,
    ) -> Result<()> {
        let now = self.clock.now();
        let found = "($4 IS NOT NULL AND (EXISTS (SELECT 1 FROM pools WHERE access_key = $4) \
             OR EXISTS (SELECT 1 FROM pool_previous_keys WHERE key_hash = $4 \
               AND works_until > $2)))";
        let (count, window_start, spared): (i64, i64, i64) = sqlx::query_as(&format!(
            "INSERT INTO checkout_rate (key, window_start, count) \
             VALUES ($1, $2, CASE WHEN {found} THEN 0 ELSE 1 END) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN checkout_rate.window_start <= $3 THEN excluded.count \
                            ELSE checkout_rate.count + excluded.count END, \
               window_start = CASE WHEN checkout_rate.window_start <= $3 THEN $2 \
                                   ELSE checkout_rate.window_start END \
             RETURNING count, window_start, CASE WHEN {found} THEN 1 ELSE 0 END"
        ))
        .bind(key)
        .bind(now)
        .bind(now - WINDOW_SECS)
        .bind(spared_key)
        .fetch_one(self.db.pool())
        .await?;
        let count = count + spared;
        match wait_for(count, max, window_start, now) {
            None => Ok(()),
            Some(retry_after_secs) => {
                // Once per window, not once per refused request: a flood must not flood the log
                // (a right key refused at a full window is never the first).
                if count == max + 1 && spared == 0 {
                    tracing::warn!(key, max, "checkouts refused past the rate limit");
                }
                Err(too_many(whose, max, retry_after_secs))
            }
        }
    }

    /// Forgets counting windows that ended long ago; run now and then by a background job.
    pub async fn purge_checkout_rate(&self) -> Result<u64> {
        let done = sqlx::query("DELETE FROM checkout_rate WHERE window_start < $1")
            .bind(self.clock.now() - 10 * WINDOW_SECS)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

fn too_many(whose: &str, max: i64, retry_after_secs: i64) -> Error {
    Error::TooManyRequests {
        message: format!(
            "Too many checkouts {whose}: at most {max} a minute. Try again in {retry_after_secs} s."
        ),
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn past_the_limit_the_wait_is_what_is_left_of_the_window() {
        assert_eq!(wait_for(10, 10, 100, 130), None);
        assert_eq!(wait_for(11, 10, 100, 130), Some(30));
        assert_eq!(wait_for(11, 10, 100, 160), Some(1));
        assert_eq!(wait_for(11, 10, 100, 100), Some(60));
    }

    proptest! {
        #[test]
        fn a_wait_is_never_zero_nor_longer_than_a_window(count in 0i64..1000, max in 0i64..1000, start in 0i64..1000, later in 0i64..120) {
            if let Some(w) = wait_for(count, max, start, start + later) {
                prop_assert!((1..=WINDOW_SECS).contains(&w));
                prop_assert!(count > max);
            }
        }
    }
}
