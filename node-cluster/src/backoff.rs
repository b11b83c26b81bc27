//! Retry delays for the API clients: the reflector's back-off (`client-go/tools/cache`
//! `reflector.go`: 800 ms doubling to 30 s, reset after 2 min without failures), with jitter so
//! that a fleet of nodes does not retry in step.

use std::time::{Duration, Instant};

/// An exponential back-off with full jitter on top of the base delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    reset_after: Duration,
    current: Duration,
    last_failure: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(
            Duration::from_millis(800),
            Duration::from_secs(30),
            Duration::from_secs(120),
        )
    }
}

impl Backoff {
    /// A back-off from `initial`, doubling up to `max`, back to `initial` after `reset_after`
    /// without a failure.
    #[must_use]
    pub fn new(initial: Duration, max: Duration, reset_after: Duration) -> Self {
        Self {
            initial,
            max,
            reset_after,
            current: initial,
            last_failure: None,
        }
    }

    /// The base delay after a failure at `now` (before jitter), advancing the back-off.
    #[must_use]
    pub fn next_base(&mut self, now: Instant) -> Duration {
        if self
            .last_failure
            .is_some_and(|t| now.saturating_duration_since(t) >= self.reset_after)
        {
            self.current = self.initial;
        }
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        self.last_failure = Some(now);
        base
    }

    /// The delay after a failure now: the base delay plus up to as much again at random.
    #[must_use]
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next_base(Instant::now());
        let extra = rand::random_range(0.0..1.0);
        base + base.mul_f64(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_then_resets_after_quiet() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        let delays: Vec<u128> = (0..8)
            .map(|i| b.next_base(t0 + Duration::from_secs(i)).as_millis())
            .collect();
        assert_eq!(delays, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        assert_eq!(
            b.next_base(t0 + Duration::from_secs(7 + 120)),
            Duration::from_millis(800)
        );
        let d = b.next_delay();
        assert!(d >= Duration::from_millis(1600) && d <= Duration::from_millis(3200));
    }
}
