//! Anti-churn: how often a licence (or a serial's licences together) may be activated on a new
//! machine or removed from one. Without a bound, a deactivate/reactivate loop mints fresh codes
//! for as many machines as it likes. The events are the activations' own timestamps, so nothing
//! extra is stored and several server processes count the same events.

/// At most `max_events` activations and removals per licence within `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChurnPolicy {
    pub max_events: i64,
    pub window_secs: i64,
}

impl ChurnPolicy {
    /// Seconds until one more event is allowed, if it is not allowed at `now`. `events` are the
    /// times of past activations and removals (any order, older ones ignored); `licences` is how
    /// many licences share the budget (a serial's licences count together).
    pub fn wait(&self, events: &[i64], now: i64, licences: i64) -> Option<i64> {
        let limit = self.max_events.saturating_mul(licences.max(1));
        let since = now - self.window_secs;
        let mut recent: Vec<i64> = events.iter().copied().filter(|t| *t > since).collect();
        let n = i64::try_from(recent.len()).unwrap_or(i64::MAX);
        if n < limit {
            return None;
        }
        recent.sort_unstable();
        // Once the (n - limit + 1) oldest events have left the window, one more fits.
        let idx = usize::try_from(n - limit).unwrap_or(0);
        Some((recent[idx] + self.window_secs - now).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: ChurnPolicy = ChurnPolicy {
        max_events: 3,
        window_secs: 100,
    };

    #[test]
    fn under_the_limit_nothing_waits() {
        assert_eq!(P.wait(&[], 1000, 1), None);
        assert_eq!(P.wait(&[990, 995], 1000, 1), None);
    }

    #[test]
    fn at_the_limit_the_wait_is_until_the_oldest_leaves() {
        assert_eq!(P.wait(&[950, 990, 999], 1000, 1), Some(50));
        assert_eq!(P.wait(&[999, 950, 990], 1000, 1), Some(50));
    }

    #[test]
    fn old_events_do_not_count() {
        assert_eq!(P.wait(&[800, 899, 900, 950, 990], 1000, 1), None);
    }

    #[test]
    fn a_serials_licences_share_a_larger_budget() {
        let events = [950, 960, 970, 980, 990];
        assert_eq!(P.wait(&events, 1000, 2), None);
        assert_eq!(
            P.wait(&[events.as_slice(), &[995]].concat(), 1000, 2),
            Some(50)
        );
    }

    proptest! {
        /// Waiting the announced time always makes room, and a second less never does.
        #[test]
        fn the_wait_is_exact(mut events in proptest::collection::vec(0i64..1000, 0..20), now in 1000i64..1100) {
            events.retain(|t| *t <= now);
            if let Some(w) = P.wait(&events, now, 1) {
                prop_assert!(w >= 1);
                prop_assert_eq!(P.wait(&events, now + w, 1), None);
                if w > 1 {
                    prop_assert!(P.wait(&events, now + w - 1, 1).is_some());
                }
            }
        }
    }
}
