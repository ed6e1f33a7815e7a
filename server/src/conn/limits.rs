//! The per-connection rate limits: one [`RateLimit`] type for inputs and
//! requests alike, and a [`Throttle`] for notices sent at most so often.
//! Time is an argument: nothing here reads the clock.

use std::time::{Duration, Instant};

/// Past this many times its rate refused within one second, a sender is
/// flooding: its connection is closed (1008).
pub(crate) const FLOOD_FACTOR: u32 = 5;

/// What a [`RateLimit`] says of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the rate.
    Allowed,
    /// Over the rate: refuse (or drop) this one.
    Refused,
    /// Far over the rate: close the connection.
    Flooding,
}

/// A token bucket of `per_sec` tokens a second with a burst of the same
/// size, which also counts the events it refused in the current second.
#[derive(Clone, Debug)]
pub(crate) struct RateLimit {
    per_sec: u32,
    tokens: f64,
    refilled: Instant,
    refused_since: Instant,
    refused: u32,
}

impl RateLimit {
    /// A full bucket of `per_sec` at `now`.
    pub(crate) fn new(per_sec: u32, now: Instant) -> Self {
        Self { per_sec, tokens: f64::from(per_sec), refilled: now, refused_since: now, refused: 0 }
    }

    /// The bucket's level (carried across a hand-off).
    pub(crate) fn tokens(&self) -> f64 {
        self.tokens
    }

    /// Sets the bucket's level (after a hand-off).
    pub(crate) fn set_tokens(&mut self, tokens: f64) {
        self.tokens = tokens.clamp(0.0, f64::from(self.per_sec));
    }

    /// One event at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        let rate = f64::from(self.per_sec);
        let refill = now.saturating_duration_since(self.refilled).as_secs_f64() * rate;
        self.refilled = now;
        self.tokens = (self.tokens + refill).min(rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allowed;
        }
        if now.saturating_duration_since(self.refused_since) >= Duration::from_secs(1) {
            self.refused_since = now;
            self.refused = 0;
        }
        self.refused = self.refused.saturating_add(1);
        // The bucket let `per_sec` through this second: a sender refused
        // (FLOOD_FACTOR - 1) times that much more sent FLOOD_FACTOR times
        // its rate.
        if self.refused > self.per_sec.saturating_mul(FLOOD_FACTOR - 1) {
            Verdict::Flooding
        } else {
            Verdict::Refused
        }
    }
}

/// Lets an event through at most once per period.
#[derive(Clone, Debug)]
pub(crate) struct Throttle {
    period: Duration,
    last: Option<Instant>,
}

impl Throttle {
    /// At most once per `period`.
    pub(crate) fn new(period: Duration) -> Self {
        Self { period, last: None }
    }

    /// Whether the event at `now` goes through.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if self.last.is_some_and(|t| now.saturating_duration_since(t) < self.period) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_then_flooding() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(10, t0);
        let verdicts: Vec<_> = (0..60).map(|_| limit.check(t0)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Allowed));
        assert!(verdicts[10..50].iter().all(|v| *v == Verdict::Refused));
        assert_eq!(verdicts[50], Verdict::Flooding, "50 events in a second at 10/s: five times the rate");
    }

    #[test]
    fn the_bucket_refills_with_time() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(2, t0);
        assert_eq!(limit.check(t0), Verdict::Allowed);
        assert_eq!(limit.check(t0), Verdict::Allowed);
        assert_eq!(limit.check(t0), Verdict::Refused);
        assert_eq!(limit.check(t0 + Duration::from_millis(500)), Verdict::Allowed);
        // Refusals are counted per second: old ones are forgotten.
        assert_eq!(limit.check(t0 + Duration::from_millis(2600)), Verdict::Allowed);
    }

    #[test]
    fn a_throttle_lets_one_through_per_period() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(1));
        assert!(t.allow(t0));
        assert!(!t.allow(t0 + Duration::from_millis(999)));
        assert!(t.allow(t0 + Duration::from_secs(1)));
    }
}
