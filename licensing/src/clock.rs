//! The one source of "now" for the domain, so tests can move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `unix_secs` until moved with [`Clock::advance`].
    pub fn manual(unix_secs: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(unix_secs))),
        }
    }

    /// Unix seconds, UTC.
    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        }
    }

    /// Moves a manual clock forward; a system clock cannot be moved and ignores this.
    pub fn advance(&self, secs: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(60);
        assert_eq!(clock.now(), 1_060);
        let copy = clock.clone();
        copy.advance(1);
        assert_eq!(clock.now(), 1_061);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(Clock::system().now() > 1_577_836_800);
    }
}
