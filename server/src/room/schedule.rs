//! The drift-free tick schedule and the phases of rooms on a shard.
//!
//! Pure functions of time (the shard reads the clock and passes it in):
//! slot `n` of a room is due at `start + n * 1e9 / hz` nanoseconds, computed
//! exactly from `n` each time, so rounding never accumulates into drift.
//!
//! A shard's rooms of one tick rate share [`PHASES`] phases of the period
//! ([`Schedule::phased`]): the rooms of a phase are due at the same
//! nanosecond, so the shard ticks them in one pass (one wake-up, one batch
//! of receives and sends) with none of them ticking early, and the phases
//! spread the shard's work over the period.

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

    /// A room's schedule on the grid of `phase` (taken modulo [`PHASES`]):
    /// slots at `phase * period / PHASES + n * period` from the shard's
    /// clock origin, from the first one due at or after `now_ns`. Rooms
    /// with the same rate and phase are due at exactly the same instants.
    #[must_use]
    pub fn phased(now_ns: u64, phase: u64, tick_hz: u32) -> Self {
        let tick_hz = tick_hz.max(1);
        let phase = u128::from(phase % PHASES);
        let start = phase * NS / (u128::from(tick_hz) * u128::from(PHASES));
        let start_ns = u64::try_from(start).unwrap_or(u64::MAX);
        let mut schedule = Self { start_ns, tick_hz, next: 0 };
        if now_ns > start_ns {
            // The first slot due at or after now.
            let elapsed = u128::from(now_ns - start_ns);
            schedule.next = u64::try_from((elapsed * u128::from(tick_hz)).div_ceil(NS)).unwrap_or(u64::MAX);
        }
        schedule
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

/// Phases per tick period that a shard's rooms are dealt into ([`PhaseLoad`]): a
/// shard wakes this many times per period for its rooms of one rate. Fewer
/// wake-ups cost less (each is a sleep, a timer and a reactor pass, dear
/// in a virtual machine): against rooms spread over the whole period and
/// taken within 4 ms of each other (~8 passes per period at 30 Hz), 4
/// phases cut the server's CPU per client-tick by 3-6 % (paired runs,
/// BENCHMARKS.md), where 8 phases saved nothing; the players of a phase are
/// sent in chunks (see the ticker) so that a room's frames do not wait for
/// the whole phase.
pub const PHASES: u64 = 4;

/// How many live rooms of each tick rate a shard has in each phase: a new
/// room goes to the emptiest phase of its rate, and a disposed-of room
/// gives its place back, so the phases stay even as rooms come and go
/// (dealing by a creation count would not: closed rooms leave holes, and
/// rooms of other rates take turns).
#[derive(Debug, Default)]
pub struct PhaseLoad {
    rooms: std::collections::HashMap<u32, [usize; PHASES as usize]>,
}

impl PhaseLoad {
    /// The phase for a new room at `tick_hz` (the emptiest, the earliest
    /// of equals), counted in.
    pub fn take(&mut self, tick_hz: u32) -> u64 {
        let counts = self.rooms.entry(tick_hz).or_default();
        let mut phase = 0;
        for p in 1..counts.len() {
            if counts[p] < counts[phase] {
                phase = p;
            }
        }
        counts[phase] += 1;
        phase as u64
    }

    /// A room at `tick_hz` in `phase` is gone.
    pub fn release(&mut self, tick_hz: u32, phase: u64) {
        if let Some(counts) = self.rooms.get_mut(&tick_hz) {
            if let Some(n) = usize::try_from(phase).ok().and_then(|p| counts.get_mut(p)) {
                *n = n.saturating_sub(1);
            }
        }
    }
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
    fn rooms_of_a_phase_are_due_together_and_phases_spread_over_the_period() {
        let period = 1_000_000_000u64 / 30;
        // Rooms created at different times, four phases dealt in turn.
        let rooms: Vec<Schedule> = (0..8u64).map(|i| Schedule::phased(5_000_000_000 + i * 7_777_777, i, 30)).collect();
        for (i, r) in rooms.iter().enumerate() {
            assert!(r.next_due() >= 5_000_000_000 + i as u64 * 7_777_777, "room {i} starts at or after its creation");
            assert!(r.next_due() < 5_000_000_000 + i as u64 * 7_777_777 + period, "room {i} starts within a period");
        }
        // Rooms i and i + 4 share a phase: every slot at the same nanosecond.
        for i in 0..4 {
            let (a, b) = (rooms[i], rooms[i + 4]);
            let (n, m) = (a.next_slot(), b.next_slot());
            for k in 0..1_000 {
                assert_eq!(a.due(n + k + (m - n)), b.due(m + k), "phase {i}, slot {k}");
            }
        }
        // The four phases are a quarter period apart.
        let mut phases: Vec<u64> = rooms[..4].iter().map(|r| r.next_due() % period).collect();
        phases.sort_unstable();
        for w in phases.windows(2) {
            assert!((w[1] - w[0]).abs_diff(period / 4) <= 1, "{phases:?}");
        }
    }

    #[test]
    fn phases_stay_even_per_rate_as_rooms_come_and_go() {
        let mut load = PhaseLoad::default();
        // Two rates created alternately: each fills its own four phases.
        let a: Vec<u64> = (0..4).map(|_| load.take(30)).collect();
        let b: Vec<u64> = (0..4).map(|_| load.take(20)).collect();
        assert_eq!(a, [0, 1, 2, 3]);
        assert_eq!(b, [0, 1, 2, 3]);
        // Rooms of phases 1 and 2 at 30 Hz close: the next two fill them.
        load.release(30, 1);
        load.release(30, 2);
        assert_eq!([load.take(30), load.take(30)], [1, 2]);
        assert_eq!(load.take(30), 0, "all even again: the earliest");
        // Releasing what was never taken changes nothing.
        load.release(60, 0);
        load.release(30, 99);
        assert_eq!(load.take(60), 0);
    }

    #[test]
    fn a_phased_schedule_created_exactly_on_a_slot_starts_there() {
        let s = Schedule::phased(1_000_000_000, 0, 10);
        assert_eq!(s.next_due(), 1_000_000_000);
        let s = Schedule::phased(1_000_000_001, 0, 10);
        assert_eq!(s.next_due(), 1_100_000_000);
        let s = Schedule::phased(0, 2, 10); // phase 2 of 4: half a period in
        assert_eq!(s.next_due(), 50_000_000);
    }
}
