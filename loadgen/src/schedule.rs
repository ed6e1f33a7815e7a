//! Time on a core, as pure functions of nanoseconds since the run's epoch
//! (monotonic): the slot grid, each client's input slots, and the timer
//! wheel that wakes the core for the slots that are due.
//!
//! Input slots are open loop: slot `n` of a client is due at
//! `first + (n - 1) * period` whatever happened before, input `seq` `n`
//! belongs to slot `n`, and its latency is timed from that due time. A
//! late wake-up covers every slot due by then with one input frame (the
//! server keeps only the newest input anyway), and each covered slot is
//! still timed from its own due time.

/// The slot grid: an input period cut into whole steps of about 1 ms, so
/// that every input slot falls exactly on a step boundary and the core
/// wakes once per step for the clients due in it (as the floor's client
/// serves 1/33 of its clients per ~1 ms slice at 30 Hz).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    /// One step, ns.
    pub(crate) step_ns: u64,
    /// Steps per input period.
    pub(crate) steps_per_period: u64,
}

impl Grid {
    /// The grid for inputs every `period_ns` (the period is rounded down
    /// to a whole number of steps: under 1 ppm off at 30 Hz).
    pub(crate) fn new(period_ns: u64) -> Self {
        let steps_per_period = ((period_ns + 500_000) / 1_000_000).max(1);
        Self { step_ns: (period_ns / steps_per_period).max(1), steps_per_period }
    }

    /// The input period, ns: a whole number of steps.
    pub(crate) fn period_ns(&self) -> u64 {
        self.step_ns * self.steps_per_period
    }

    /// The first grid point at or after `after_ns` that sits `offset`
    /// steps into a period (`offset < steps_per_period`): a client's first
    /// slot, its phase in the period fixed by `offset`.
    pub(crate) fn first_slot(&self, after_ns: u64, offset: u64) -> u64 {
        let period = self.period_ns();
        let base = after_ns / period * period + (offset % self.steps_per_period) * self.step_ns;
        if base >= after_ns {
            base
        } else {
            base + period
        }
    }
}

/// One client's input slots: slot `seq` (from 1) is due at
/// `first_ns + (seq - 1) * period_ns`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    /// When slot 1 is due.
    pub(crate) first_ns: u64,
    /// The input period.
    pub(crate) period_ns: u64,
}

impl Slots {
    /// When slot `seq` (>= 1) is due.
    pub(crate) fn due(&self, seq: u32) -> u64 {
        self.first_ns + u64::from(seq.saturating_sub(1)) * self.period_ns
    }

    /// The newest slot due at or before `now_ns` (0: none yet).
    pub(crate) fn newest_due(&self, now_ns: u64) -> u32 {
        if now_ns < self.first_ns || self.period_ns == 0 {
            return 0;
        }
        u32::try_from((now_ns - self.first_ns) / self.period_ns + 1).unwrap_or(u32::MAX)
    }
}

/// A hashed timer wheel of grid steps holding entries (a client and what
/// is due for it). An entry due at `t` sits in the first step starting at
/// or after `t`, so it is never taken early; taking it is the caller's
/// cue to look at the client, which knows its exact due times.
#[derive(Debug)]
pub(crate) struct Wheel {
    step_ns: u64,
    buckets: Vec<Vec<u32>>,
    mask: u64,
    /// The next step not yet taken.
    cursor: u64,
    len: usize,
}

impl Wheel {
    /// A wheel of `steps` (rounded up to a power of two) steps of `step_ns`,
    /// starting at step `start_ns / step_ns`.
    pub(crate) fn new(step_ns: u64, steps: usize, start_ns: u64) -> Self {
        let n = steps.next_power_of_two().max(2);
        Self { step_ns, buckets: vec![Vec::new(); n], mask: n as u64 - 1, cursor: start_ns / step_ns, len: 0 }
    }

    /// How far ahead an entry can be placed, ns.
    #[cfg(test)]
    fn horizon_ns(&self) -> u64 {
        (self.mask) * self.step_ns
    }

    /// Places `entry`, due at `at_ns`. Beyond the horizon it is placed at
    /// the horizon (taken early; the caller checks the client's due time
    /// and places it again).
    pub(crate) fn insert(&mut self, at_ns: u64, entry: u32) {
        let step = at_ns.div_ceil(self.step_ns).max(self.cursor).min(self.cursor + self.mask);
        self.buckets[(step & self.mask) as usize].push(entry);
        self.len += 1;
    }

    /// Moves every entry of the steps that started at or before `now_ns`
    /// into `out`.
    pub(crate) fn take_due(&mut self, now_ns: u64, out: &mut Vec<u32>) {
        while self.cursor * self.step_ns <= now_ns {
            let bucket = &mut self.buckets[(self.cursor & self.mask) as usize];
            self.len -= bucket.len();
            out.append(bucket);
            self.cursor += 1;
        }
    }

    /// When the next step holding entries starts (looking at most `look`
    /// steps ahead); `None` when the wheel is empty or those steps are.
    pub(crate) fn next_due_ns(&self, look: u64) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        (self.cursor..self.cursor + look.min(self.mask + 1))
            .find(|s| !self.buckets[(s & self.mask) as usize].is_empty())
            .map(|s| s * self.step_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P30: u64 = 1_000_000_000 / 30;

    #[test]
    fn the_grid_cuts_a_period_into_whole_steps() {
        let g = Grid::new(P30);
        assert_eq!(g.steps_per_period, 33);
        assert_eq!(g.step_ns, 1_010_101);
        assert!(P30 - g.period_ns() < 33);
        let g = Grid::new(1_000_000_000);
        assert_eq!((g.steps_per_period, g.step_ns), (1000, 1_000_000));
        let g = Grid::new(400_000);
        assert_eq!((g.steps_per_period, g.step_ns), (1, 400_000));
    }

    #[test]
    fn first_slots_keep_their_phase() {
        let g = Grid::new(P30);
        let p = g.period_ns();
        for after in [0, 1, p - 1, p, 5 * p + 12_345] {
            for offset in [0, 1, 17, 32] {
                let first = g.first_slot(after, offset);
                assert!(first >= after && first < after + p, "after {after} offset {offset}");
                assert_eq!(first % p, offset * g.step_ns);
                assert_eq!(first % g.step_ns, 0);
            }
        }
    }

    #[test]
    fn slots_are_drift_free_and_late_wakeups_cover_every_due_slot() {
        let s = Slots { first_ns: 1_000, period_ns: 100 };
        assert_eq!(s.due(1), 1_000);
        assert_eq!(s.due(1_000_001), 1_000 + 100_000_000);
        assert_eq!(s.newest_due(999), 0);
        assert_eq!(s.newest_due(1_000), 1);
        assert_eq!(s.newest_due(1_099), 1);
        assert_eq!(s.newest_due(1_100), 2);
        // Woken 350 late for slot 3: slots 3..=6 are due, each from its own time.
        let newest = s.newest_due(s.due(3) + 350);
        assert_eq!(newest, 6);
        let lags: Vec<u64> = (3..=newest).map(|seq| s.due(3) + 350 - s.due(seq)).collect();
        assert_eq!(lags, [350, 250, 150, 50]);
    }

    #[test]
    fn the_wheel_never_hands_out_an_entry_early() {
        let mut w = Wheel::new(10, 8, 1_000);
        w.insert(1_000, 1); // this step
        w.insert(1_001, 2); // the next step (1_010)
        w.insert(1_035, 3); // 1_040
        w.insert(5_000, 4); // beyond the horizon: at 1_000 + 7 steps
        assert_eq!(w.horizon_ns(), 70);
        assert_eq!(w.next_due_ns(100), Some(1_000));
        let mut out = Vec::new();
        w.take_due(1_009, &mut out);
        assert_eq!(out, [1]);
        w.take_due(1_039, &mut out);
        assert_eq!(out, [1, 2]);
        assert_eq!(w.next_due_ns(100), Some(1_040));
        w.take_due(1_040, &mut out);
        assert_eq!(out, [1, 2, 3]);
        w.take_due(1_070, &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
        assert_eq!(w.next_due_ns(100), None);
        // Past entries go to the current step; a long stall takes everything.
        w.insert(0, 5);
        w.insert(1_200, 6);
        w.take_due(10_000, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
    }
}
