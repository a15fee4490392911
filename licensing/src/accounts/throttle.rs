//! Sign-in throttling. Every attempt is counted before the password is checked, on three keys:
//! the account from one address (a low limit), the address across accounts (higher), and the
//! account from everywhere (much higher, so nobody can lock a user out from one address).
//! Reaching a limit locks the key; each lock in a row lasts twice the one before. Counting is one
//! atomic upsert, so a burst of parallel attempts — or several server processes sharing a
//! database — cannot slip past a limit together.

use crate::{Licentia, Result};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failed attempts within `window_secs` that lock the key.
    pub max_failures: i64,
    pub window_secs: i64,
    /// How long the first lock lasts; each further lock in a row lasts twice as long…
    pub lockout_secs: i64,
    /// …up to this.
    pub max_lockout_secs: i64,
}

/// The three limits a sign-in attempt is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttles {
    /// One account from one address (an IPv6 /64 counts as one address).
    pub pair: Policy,
    /// One address, whatever account it tries.
    pub address: Policy,
    /// One account, from every address together.
    pub account: Policy,
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

    /// How long a lock lasts when `strikes` locks came right before it.
    pub fn lock_secs(&self, strikes: i64) -> i64 {
        let doubled = self
            .lockout_secs
            .saturating_mul(1_i64 << strikes.clamp(0, 40));
        doubled.min(self.max_lockout_secs.max(self.lockout_secs))
    }
}

/// The address a caller is throttled as: IPv4 addresses as they are, IPv6 addresses by their /64
/// (one subscriber usually holds a whole /64 and can pick any address in it), IPv4-mapped IPv6
/// addresses as the IPv4 address they carry. Anything unparseable is its own group.
pub fn address_group(address: &str) -> String {
    match address.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => address.to_owned(),
    }
}

/// One key an attempt counts on.
pub(crate) struct Counter<'a> {
    pub key: String,
    /// The account the key counts for, or "" for an address alone.
    pub account: &'a str,
    pub policy: &'a Policy,
}

impl Throttles {
    /// The keys one attempt at `email` from `address` counts on.
    pub(crate) fn counters<'a>(&'a self, email: &'a str, address: &str) -> [Counter<'a>; 3] {
        let group = address_group(address);
        [
            Counter {
                key: format!("pair:{group}|{email}"),
                account: email,
                policy: &self.pair,
            },
            Counter {
                key: format!("address:{group}"),
                account: "",
                policy: &self.address,
            },
            Counter {
                key: format!("account:{email}"),
                account: email,
                policy: &self.account,
            },
        ]
    }
}

#[derive(sqlx::FromRow)]
struct Count {
    failures: i64,
    locked_until: i64,
    strikes: i64,
}

/// Rows untouched this long are forgotten, strikes and all.
const FORGET_AFTER_SECS: i64 = 24 * 3600;

impl Licentia {
    /// Counts an attempt on every key before anything is verified. Returns how long to wait if any
    /// key is locked, or the attempt goes past a limit (then it locks the key itself): a burst of
    /// parallel attempts is cut off at the limit, not after all of them have been checked.
    pub(crate) async fn throttle_attempt(&self, counters: &[Counter<'_>]) -> Result<Option<i64>> {
        let now = self.clock.now();
        // A refused attempt counts on no key: hammering a locked pair from one address must not
        // add up, unseen, to the account-wide lock that keeps its owner out everywhere.
        let mut wait: Option<i64> = None;
        for c in counters {
            let locked_until: Option<i64> =
                sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE key = $1")
                    .bind(&c.key)
                    .fetch_optional(self.db.pool())
                    .await?;
            if let Some(secs) = locked_until.and_then(|until| Policy::retry_after(until, now)) {
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
            }
        }
        if wait.is_some() {
            return Ok(wait);
        }
        for c in counters {
            // Attempts while locked are refused without counting; a window that has passed starts
            // over.
            let count: Count = sqlx::query_as(
                "INSERT INTO login_throttle (key, account, failures, window_start, locked_until, strikes) \
                 VALUES ($1, $2, 1, $3, 0, 0) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN login_throttle.locked_until > $3 THEN login_throttle.failures \
                                   WHEN login_throttle.window_start <= $4 THEN 1 \
                                   ELSE login_throttle.failures + 1 END, \
                   window_start = CASE WHEN login_throttle.locked_until <= $3 \
                                        AND login_throttle.window_start <= $4 THEN $3 \
                                       ELSE login_throttle.window_start END \
                 RETURNING failures, locked_until, strikes",
            )
            .bind(&c.key)
            .bind(c.account)
            .bind(now)
            .bind(now - c.policy.window_secs)
            .fetch_one(self.db.pool())
            .await?;
            let secs = match Policy::retry_after(count.locked_until, now) {
                Some(secs) => Some(secs),
                None if count.failures > c.policy.max_failures => {
                    self.throttle_lock(c, count.strikes).await?
                }
                None => None,
            };
            if let Some(secs) = secs {
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
            }
        }
        Ok(wait)
    }

    /// After a failed attempt: locks every key whose count reached its limit; returns the longest
    /// lock now in force, if any.
    pub(crate) async fn throttle_failed(&self, counters: &[Counter<'_>]) -> Result<Option<i64>> {
        let now = self.clock.now();
        let mut wait: Option<i64> = None;
        for c in counters {
            let count: Option<Count> = sqlx::query_as(
                "SELECT failures, locked_until, strikes FROM login_throttle WHERE key = $1",
            )
            .bind(&c.key)
            .fetch_optional(self.db.pool())
            .await?;
            let Some(count) = count else { continue };
            let secs = match Policy::retry_after(count.locked_until, now) {
                Some(secs) => Some(secs),
                None if c.policy.locks_at(count.failures) => {
                    self.throttle_lock(c, count.strikes).await?
                }
                None => None,
            };
            if let Some(secs) = secs {
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
            }
        }
        Ok(wait)
    }

    /// Locks a key that is not locked yet (of two attempts racing to lock it, one does); returns
    /// how long the lock in force lasts from now.
    async fn throttle_lock(&self, c: &Counter<'_>, strikes: i64) -> Result<Option<i64>> {
        let now = self.clock.now();
        let secs = c.policy.lock_secs(strikes);
        let locked_until: Option<i64> = sqlx::query_scalar(
            "UPDATE login_throttle SET locked_until = $2, strikes = strikes + 1, failures = 0, \
             window_start = $3 WHERE key = $1 AND locked_until <= $3 RETURNING locked_until",
        )
        .bind(&c.key)
        .bind(now + secs)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        if locked_until.is_some() {
            tracing::warn!(
                key = c.key,
                lock_secs = secs,
                "sign-in locked after repeated failures"
            );
            return Ok(Some(secs));
        }
        let until: Option<i64> =
            sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE key = $1")
                .bind(&c.key)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(until.and_then(|u| Policy::retry_after(u, now)))
    }

    /// After a successful sign-in: the account's own counts start over (strikes too), and the
    /// attempt no longer counts against its address — an office behind one address signs in every
    /// morning without locking itself out.
    pub(crate) async fn throttle_succeeded(&self, counters: &[Counter<'_>]) -> Result<()> {
        for c in counters {
            if c.account.is_empty() {
                sqlx::query(
                    "UPDATE login_throttle SET failures = failures - 1 \
                     WHERE key = $1 AND failures > 0",
                )
                .bind(&c.key)
                .execute(self.db.pool())
                .await?;
            } else {
                sqlx::query("DELETE FROM login_throttle WHERE key = $1")
                    .bind(&c.key)
                    .execute(self.db.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// Takes back an attempt that was counted but never judged (hashing was busy, or failed):
    /// a user told to retry later is not a step nearer a lock.
    pub(crate) async fn throttle_uncount(&self, counters: &[Counter<'_>]) -> Result<()> {
        for c in counters {
            sqlx::query(
                "UPDATE login_throttle SET failures = failures - 1 \
                 WHERE key = $1 AND failures > 0 AND locked_until <= $2",
            )
            .bind(&c.key)
            .bind(self.clock.now())
            .execute(self.db.pool())
            .await?;
        }
        Ok(())
    }

    /// Forgets throttle rows that have been quiet for a day; run now and then by a background job.
    pub async fn purge_login_throttle(&self) -> Result<u64> {
        let before = self.clock.now() - FORGET_AFTER_SECS;
        let done =
            sqlx::query("DELETE FROM login_throttle WHERE locked_until < $1 AND window_start < $1")
                .bind(before)
                .execute(self.db.pool())
                .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retry_after_counts_down_to_unlocked() {
        assert_eq!(Policy::retry_after(100, 40), Some(60));
        assert_eq!(Policy::retry_after(100, 100), None);
        assert_eq!(Policy::retry_after(0, 100), None);
    }

    fn policy() -> Policy {
        Policy {
            max_failures: 3,
            window_secs: 60,
            lockout_secs: 60,
            max_lockout_secs: 3600,
        }
    }

    #[test]
    fn locks_at_the_limit() {
        assert!(!policy().locks_at(2));
        assert!(policy().locks_at(3));
    }

    #[test]
    fn each_lock_in_a_row_lasts_twice_as_long_up_to_the_cap() {
        let p = policy();
        let secs: Vec<i64> = (0..8).map(|s| p.lock_secs(s)).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(p.lock_secs(10_000), 3600);
        assert_eq!(p.lock_secs(-1), 60);
    }

    #[test]
    fn ipv6_callers_are_grouped_by_their_64() {
        assert_eq!(address_group("203.0.113.9"), "203.0.113.9");
        assert_eq!(
            address_group("2001:db8:1:2:aaaa::1"),
            address_group("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(address_group("2001:db8:1:2::5"), "2001:db8:1:2::/64");
        assert_ne!(
            address_group("2001:db8:1:2::5"),
            address_group("2001:db8:1:3::5")
        );
        assert_eq!(address_group("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(address_group("unknown"), "unknown");
    }

    #[test]
    fn an_attempt_counts_on_the_pair_the_address_and_the_account() {
        let t = Throttles {
            pair: policy(),
            address: policy(),
            account: policy(),
        };
        let keys: Vec<String> = t
            .counters("a@x.test", "2001:db8::7")
            .iter()
            .map(|c| c.key.clone())
            .collect();
        assert_eq!(
            keys,
            [
                "pair:2001:db8:0:0::/64|a@x.test",
                "address:2001:db8:0:0::/64",
                "account:a@x.test"
            ]
        );
    }

    proptest! {
        #[test]
        fn locks_never_shrink_and_never_pass_the_cap(base in 1i64..100_000, cap in 1i64..1_000_000, s in 0i64..100) {
            let p = Policy { max_failures: 1, window_secs: 1, lockout_secs: base, max_lockout_secs: cap };
            prop_assert!(p.lock_secs(s) <= p.lock_secs(s + 1));
            prop_assert!(p.lock_secs(s) >= base.min(cap.max(base)));
            prop_assert!(p.lock_secs(s) <= cap.max(base));
        }
    }
}
