//! Exponential backoff with full jitter: how long a job waits before its next attempt.
//!
//! Pure: the caller supplies the randomness, so the arithmetic is testable and the engine picks
//! its generator.

use std::time::Duration;

/// Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
/// Blog): after the `n`th failed attempt wait a uniformly random time in
/// `[0, min(cap, base × 2^(n-1)))`. Full jitter spreads the retries of many jobs that failed
/// together, so a recovering endpoint is not hit by synchronised waves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling after the first failed attempt.
    pub base: Duration,
    /// The largest ceiling, however many attempts failed.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10 * 60),
        }
    }
}

impl Backoff {
    /// The un-jittered ceiling after `attempt` failed attempts (1-based; 0 is taken as 1):
    /// `min(cap, base × 2^(attempt-1))`, without overflow for any `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1);
        // 2^32 and beyond does not fit a u32 factor; any such ceiling is past every sane cap.
        1u32.checked_shl(doublings)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.cap, |ceiling| ceiling.min(self.cap))
    }

    /// The jittered wait after `attempt` failed attempts: `random × ceiling(attempt)`, with
    /// `random` in `[0, 1)` (values outside are clamped; NaN counts as 0).
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let random = if random.is_nan() {
            0.0
        } else {
            random.clamp(0.0, 1.0)
        };
        let ceiling = self.ceiling(attempt);
        // `mul_f64` panics when the product rounds past `Duration::MAX`; fall back to the ceiling.
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * random)
            .map_or(ceiling, |delay| delay.min(ceiling))
    }

    /// The wait before the next attempt: the jittered [`delay`](Self::delay), but never less than
    /// the endpoint's `Retry-After`.
    pub fn next_retry(&self, attempt: u32, retry_after: Option<Duration>, random: f64) -> Duration {
        let delay = self.delay(attempt, random);
        retry_after.map_or(delay, |retry_after| retry_after.max(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn defaults_are_one_second_to_ten_minutes() {
        let backoff = Backoff::default();
        assert_eq!(backoff.base, SECOND);
        assert_eq!(backoff.cap, 600 * SECOND);
    }

    #[test]
    fn the_ceiling_doubles_from_base_up_to_the_cap() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (1..=12).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(backoff.ceiling(0), SECOND);
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let backoff = Backoff::default();
        for attempt in [31, 32, 33, 64, 1_000, u32::MAX] {
            assert_eq!(backoff.ceiling(attempt), 600 * SECOND, "{attempt}");
            assert!(backoff.delay(attempt, 0.999_999) <= 600 * SECOND);
        }
        let unbounded = Backoff {
            base: Duration::MAX,
            cap: Duration::MAX,
        };
        assert_eq!(unbounded.ceiling(5), Duration::MAX);
        assert_eq!(unbounded.delay(5, 1.0), Duration::MAX);
        assert!(unbounded.delay(5, 0.5) < Duration::MAX);
    }

    #[test]
    fn full_jitter_scales_the_ceiling() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(1, 0.0), Duration::ZERO);
        assert_eq!(backoff.delay(1, 0.5), Duration::from_millis(500));
        assert_eq!(backoff.delay(4, 0.25), 2 * SECOND);
        assert_eq!(backoff.delay(20, 0.5), 300 * SECOND);
    }

    #[test]
    fn out_of_range_randomness_is_clamped() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(3, -1.0), Duration::ZERO);
        assert_eq!(backoff.delay(3, f64::NAN), Duration::ZERO);
        assert_eq!(backoff.delay(3, 7.0), 4 * SECOND);
        assert_eq!(backoff.delay(3, f64::INFINITY), 4 * SECOND);
    }

    #[test]
    fn delays_stay_below_the_ceiling_over_the_whole_random_range() {
        let backoff = Backoff::default();
        for attempt in 1..=15 {
            for step in 0..100 {
                let random = f64::from(step) / 100.0;
                assert!(backoff.delay(attempt, random) < backoff.ceiling(attempt));
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let backoff = Backoff::default();
        assert_eq!(
            backoff.next_retry(1, Some(2 * SECOND), 0.5),
            2 * SECOND,
            "retry-after longer than the jittered delay wins"
        );
        assert_eq!(
            backoff.next_retry(5, Some(2 * SECOND), 0.5),
            8 * SECOND,
            "the jittered delay longer than retry-after wins"
        );
        assert_eq!(backoff.next_retry(5, None, 0.5), 8 * SECOND);
        assert_eq!(
            backoff.next_retry(5, Some(Duration::ZERO), 0.0),
            Duration::ZERO
        );
    }
}
