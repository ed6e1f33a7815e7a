//! The drift-free tick schedule and the stagger of rooms on a shard.
//!
//! Pure functions of time (the shard reads the clock and passes it in):
//! slot `n` of a room is due at `start + n * 1e9 / hz` nanoseconds, computed
//! exactly from `n` each time, so rounding never accumulates into drift.

/// Nanoseconds per second.
const NS: u128 = 1_000_000_000;

/// One room's schedule on a monotonic nanosecond clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    start_ns: u64,
    tick_hz: u32,
    /// The next slot to run.
    next: u64,
}

impl Schedule {
    /// A schedule whose slot 0 is due at `start_ns`.
    #[must_use]
    pub fn new(start_ns: u64, tick_hz: u32) -> Self {
        Self { start_ns, tick_hz: tick_hz.max(1), next: 0 }
    }

    /// The tick rate.
    #[must_use]
    pub fn tick_hz(&self) -> u32 {
        self.tick_hz
    }

    /// When slot `n` is due.
    #[must_use]
    pub fn due(&self, n: u64) -> u64 {
        let offset = u128::from(n) * NS / u128::from(self.tick_hz);
        self.start_ns.saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// When the next slot is due.
    #[must_use]
    pub fn next_due(&self) -> u64 {
        self.due(self.next)
    }

    /// The slot index that is next to run.
    #[must_use]
    pub fn next_slot(&self) -> u64 {
        self.next
    }

    /// Marks the next slot as run, finishing at `now_ns`, and returns how
    /// many slots are skipped (overruns).
    ///
    /// A tick that ends late lets the latest slot already due run at once,
    /// but never a burst: slots older than that are skipped, so a room that
    /// fell behind resumes its rhythm instead of racing to catch up.
    pub fn advance(&mut self, now_ns: u64) -> u64 {
        let wanted = self.next + 1;
        let latest_due = if now_ns < self.start_ns {
            0
        } else {
            let elapsed = u128::from(now_ns - self.start_ns);
            u64::try_from(elapsed * u128::from(self.tick_hz) / NS).unwrap_or(u64::MAX)
        };
        self.next = wanted.max(latest_due);
        self.next - wanted
    }
}

/// Where in the tick period the `index`-th room of a shard starts, in ns:
/// the golden-ratio sequence, which spreads any number of rooms evenly over
/// the period so that their fan-outs do not pile up at one instant.
#[must_use]
pub fn stagger_offset_ns(index: u64, tick_hz: u32) -> u64 {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    let fraction = (index as f64 * GOLDEN).fract();
    let period = NS as f64 / f64::from(tick_hz.max(1));
    (fraction * period) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exact_multiples_without_drift() {
        let s = Schedule::new(1_000, 30);
        assert_eq!(s.due(0), 1_000);
        assert_eq!(s.due(1), 1_000 + 33_333_333);
        assert_eq!(s.due(30), 1_000 + 1_000_000_000);
        assert_eq!(s.due(30 * 3600), 1_000 + 3_600_000_000_000, "an hour later, not a nanosecond off");
    }

    #[test]
    fn on_time_ticks_skip_nothing() {
        let mut s = Schedule::new(0, 10);
        for n in 0..100 {
            assert_eq!(s.next_slot(), n);
            let now = s.next_due() + 1_000_000; // each tick takes 1 ms
            assert_eq!(s.advance(now), 0);
        }
    }

    #[test]
    fn a_late_tick_runs_the_latest_due_slot_and_skips_older_ones() {
        let mut s = Schedule::new(0, 10); // 100 ms period
                                          // Slot 0 ran long and finished at 350 ms: slots 1 and 2 are gone,
                                          // slot 3 (due at 300 ms) runs at once.
        assert_eq!(s.advance(350_000_000), 2);
        assert_eq!(s.next_slot(), 3);
        assert_eq!(s.next_due(), 300_000_000);
        // Slightly late only: no skip, the next slot runs at once.
        assert_eq!(s.advance(420_000_000), 0);
        assert_eq!(s.next_slot(), 4);
    }

    #[test]
    fn stagger_spreads_rooms_over_the_period() {
        let period = 1_000_000_000 / 30;
        let mut offsets: Vec<u64> = (0..8).map(|i| stagger_offset_ns(i, 30)).collect();
        assert!(offsets.iter().all(|&o| o < period));
        offsets.sort_unstable();
        let widest = offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(widest < period / 4, "8 rooms leave no gap over a quarter period: {offsets:?}");
    }
}
