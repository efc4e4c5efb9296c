//! Failed attempts in the log: at warn level, so an operator sees why deliveries fail without
//! turning debug on, but at most one line per lane (destination × host) per interval, each
//! saying how many failures it stands for, so that a failing endpoint cannot flood the log.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One line per lane per this long at most.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

/// A lane's log budget.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// When the last line was written.
    logged_at: Option<Instant>,
    /// Failures since then that were not written.
    suppressed: u64,
}

impl FailureLog {
    /// Whether a failure at `now` is written: `Some(n)` with the `n` failures left out since the
    /// last line, or `None` when it is left out itself.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut window = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match window.logged_at {
            Some(at) if now.saturating_duration_since(at) < INTERVAL => {
                window.suppressed += 1;
                None
            }
            _ => {
                window.logged_at = Some(now);
                Some(std::mem::take(&mut window.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let log = FailureLog::default();
        let start = Instant::now();
        assert_eq!(log.admit(start), Some(0));
        assert_eq!(log.admit(start + Duration::from_secs(1)), None);
        assert_eq!(log.admit(start + Duration::from_secs(9)), None);
        assert_eq!(log.admit(start + INTERVAL), Some(2));
        assert_eq!(log.admit(start + INTERVAL + Duration::from_secs(1)), None);
        assert_eq!(log.admit(start + INTERVAL * 3), Some(1));
    }
}
