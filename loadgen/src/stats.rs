//! What the clients measure: one `Histogram::new(3)` per latency figure and
//! plain counters, kept per core without locks and merged at the end; and
//! the few atomics the progress bar reads while the run goes on.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A new latency histogram (µs, 3 significant digits, auto-resizing).
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// Failures by kind, counted over the whole run (ramp-up included).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Errors {
    /// TCP connects that failed or timed out.
    pub connect: u64,
    /// Handshakes answered with an HTTP status instead of 101, by status.
    pub handshake_refused: BTreeMap<u16, u64>,
    /// Handshakes that failed otherwise (I/O, timeout, bad answer).
    pub handshake_failed: u64,
    /// Joins rejected (by reject code) or not answered in time (`timeout`).
    pub join_failed: BTreeMap<String, u64>,
    /// Closes not asked for, by close code (`eof` = no close frame, `io` = a
    /// socket error).
    pub unexpected_close: BTreeMap<String, u64>,
    /// Messages that did not decode or did not fit the session (a tick
    /// outside a room, a stale tick), rejects after joining, `error` indications.
    pub protocol: u64,
    /// Ticks whose delta could not be applied (missing baseline, bad blob).
    pub delta: u64,
}

impl Errors {
    /// All errors of every kind.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.connect
            + self.handshake_refused.values().sum::<u64>()
            + self.handshake_failed
            + self.join_failed.values().sum::<u64>()
            + self.unexpected_close.values().sum::<u64>()
            + self.protocol
            + self.delta
    }

    fn merge(&mut self, other: &Self) {
        self.connect += other.connect;
        for (k, v) in &other.handshake_refused {
            *self.handshake_refused.entry(*k).or_default() += v;
        }
        self.handshake_failed += other.handshake_failed;
        for (k, v) in &other.join_failed {
            *self.join_failed.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.unexpected_close {
            *self.unexpected_close.entry(k.clone()).or_default() += v;
        }
        self.protocol += other.protocol;
        self.delta += other.delta;
    }
}

/// One core's figures (and, merged, the run's).
#[derive(Clone, Debug)]
pub(crate) struct CoreStats {
    /// Arrival (kernel receive timestamp) minus the tick's
    /// `server_time_us`, µs (ticks that arrived in the measured window).
    pub(crate) tick_latency: Histogram<u64>,
    /// From an input slot's due time to the arrival of the first tick
    /// including it, µs: one sample per slot due in the measured window
    /// and answered, nothing added (open loop: see `schedule`).
    pub(crate) input_latency: Histogram<u64>,
    /// TCP connect start until the WebSocket is open, µs (whole run).
    pub(crate) handshake_latency: Histogram<u64>,
    /// How late the loadgen served each input slot due in the measured
    /// window, µs: its own scheduling delay, which the input latency of
    /// that slot includes.
    pub(crate) loadgen_lag: Histogram<u64>,
    /// Sampled `full_state_len`: the payload of the same message had it
    /// carried the full state (bytes; decoding clients only).
    pub(crate) full_state: Histogram<u64>,
    /// Sum of the sampled full-state payloads.
    pub(crate) full_state_sum: u64,
    /// Sum of the real payloads of the messages those samples were taken on.
    pub(crate) full_state_payload_bytes: u64,
    /// State messages received in the measured window.
    pub(crate) state_msgs: u64,
    /// Their WebSocket payload bytes (frame headers excluded).
    pub(crate) state_payload_bytes: u64,
    /// WebSocket bytes received in the measured window (frame headers and
    /// every message included).
    pub(crate) ws_bytes: u64,
    /// Gaps in the tick numbers, in the measured window.
    pub(crate) missed_ticks: u64,
    /// State messages timed with a later message's receive timestamp (two
    /// or more arrived in one read), in the measured window.
    pub(crate) ticks_shared_stamp: u64,
    /// For those, how much their latency may be overstated: the time from
    /// the read before to their stamp, µs.
    pub(crate) shared_stamp_bound: Histogram<u64>,
    /// State messages that came without a kernel timestamp and were timed
    /// when read, in the measured window.
    pub(crate) ticks_unstamped: u64,
    /// Input slots due in the measured window and served (each one timed).
    pub(crate) input_slots: u64,
    /// Input frames sent for slots due in the measured window.
    pub(crate) inputs_sent: u64,
    /// Slots served by a later slot's frame: the loadgen woke more than one
    /// input period late for them (still timed from their own due time).
    pub(crate) inputs_late: u64,
    /// Slots due in the window that no tick answered before the client stopped.
    pub(crate) inputs_unanswered: u64,
    /// Clients whose socket connected and handshake completed.
    pub(crate) connected: u64,
    /// Clients that joined a room.
    pub(crate) joined: u64,
    /// Joined clients that rebuilt the state from every tick.
    pub(crate) decoders: u64,
    /// Clients still in their room when the measured window ended.
    pub(crate) completed: u64,
    /// `io_uring_enter` calls of the cores (whole run).
    pub(crate) ring_enters: u64,
    /// Operations the cores submitted (whole run).
    pub(crate) ring_sqes: u64,
    /// `--reconnect-every`: sockets dropped, seats taken back, the time
    /// from a drop to the first tick after its resume (µs), resumes
    /// refused, delta errors on clients after a resume, and input slots
    /// that fell due while disconnected (skipped, not sent).
    pub(crate) drops: u64,
    pub(crate) resumes: u64,
    pub(crate) resume_latency: Histogram<u64>,
    pub(crate) resumes_refused: u64,
    pub(crate) state_errors_after_resume: u64,
    pub(crate) slots_skipped_by_drops: u64,
    /// Joins answered with a `redirect` to another node (followed).
    pub(crate) redirected: u64,
    /// From the room request to `joined`, µs: on the node of `--url`, and
    /// through a redirect (the close, the new connection and its handshake
    /// and the `join_room` with the reservation included).
    pub(crate) join_latency: Histogram<u64>,
    pub(crate) join_latency_redirected: Histogram<u64>,
    pub(crate) errors: Errors,
}

impl CoreStats {
    pub(crate) fn new() -> Self {
        Self {
            tick_latency: histogram(),
            input_latency: histogram(),
            handshake_latency: histogram(),
            loadgen_lag: histogram(),
            full_state: histogram(),
            full_state_sum: 0,
            full_state_payload_bytes: 0,
            state_msgs: 0,
            state_payload_bytes: 0,
            ws_bytes: 0,
            missed_ticks: 0,
            ticks_shared_stamp: 0,
            shared_stamp_bound: histogram(),
            ticks_unstamped: 0,
            input_slots: 0,
            inputs_sent: 0,
            inputs_late: 0,
            inputs_unanswered: 0,
            connected: 0,
            joined: 0,
            decoders: 0,
            completed: 0,
            ring_enters: 0,
            ring_sqes: 0,
            drops: 0,
            resumes: 0,
            resume_latency: histogram(),
            resumes_refused: 0,
            state_errors_after_resume: 0,
            slots_skipped_by_drops: 0,
            redirected: 0,
            join_latency: histogram(),
            join_latency_redirected: histogram(),
            errors: Errors::default(),
        }
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Self) {
        // Auto-resizing histograms of one precision always add.
        let _ = self.tick_latency.add(&other.tick_latency);
        let _ = self.input_latency.add(&other.input_latency);
        let _ = self.handshake_latency.add(&other.handshake_latency);
        let _ = self.join_latency.add(&other.join_latency);
        let _ = self.join_latency_redirected.add(&other.join_latency_redirected);
        self.redirected += other.redirected;
        let _ = self.loadgen_lag.add(&other.loadgen_lag);
        let _ = self.full_state.add(&other.full_state);
        self.full_state_sum += other.full_state_sum;
        self.full_state_payload_bytes += other.full_state_payload_bytes;
        self.state_msgs += other.state_msgs;
        self.state_payload_bytes += other.state_payload_bytes;
        self.ws_bytes += other.ws_bytes;
        self.missed_ticks += other.missed_ticks;
        self.ticks_shared_stamp += other.ticks_shared_stamp;
        let _ = self.shared_stamp_bound.add(&other.shared_stamp_bound);
        self.ticks_unstamped += other.ticks_unstamped;
        self.input_slots += other.input_slots;
        self.inputs_sent += other.inputs_sent;
        self.inputs_late += other.inputs_late;
        self.inputs_unanswered += other.inputs_unanswered;
        self.connected += other.connected;
        self.joined += other.joined;
        self.decoders += other.decoders;
        self.completed += other.completed;
        self.ring_enters += other.ring_enters;
        self.ring_sqes += other.ring_sqes;
        self.drops += other.drops;
        self.resumes += other.resumes;
        let _ = self.resume_latency.add(&other.resume_latency);
        self.resumes_refused += other.resumes_refused;
        self.state_errors_after_resume += other.state_errors_after_resume;
        self.slots_skipped_by_drops += other.slots_skipped_by_drops;
        self.errors.merge(&other.errors);
    }
}

/// Counters the watching thread reads while the cores write them.
#[derive(Debug)]
pub(crate) struct Live {
    /// Clients connected and in a room now.
    pub(crate) clients: AtomicU64,
    /// Errors so far.
    pub(crate) errors: AtomicU64,
    /// Each core's tick-latency p99 over its last second, µs.
    pub(crate) p99_us: Vec<AtomicU64>,
    /// Each core's state messages so far (whole run), stored every wake-up.
    pub(crate) ticks: Vec<AtomicU64>,
    /// Each core's `io_uring_enter` calls so far, stored every wake-up.
    pub(crate) enters: Vec<AtomicU64>,
    /// Each core's submitted operations so far, stored every wake-up.
    pub(crate) sqes: Vec<AtomicU64>,
}

impl Live {
    pub(crate) fn new(cores: usize) -> Self {
        let per_core = || (0..cores).map(|_| AtomicU64::new(0)).collect();
        Self {
            clients: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            p99_us: per_core(),
            ticks: per_core(),
            enters: per_core(),
            sqes: per_core(),
        }
    }

    /// The worst core's recent p99, µs.
    pub(crate) fn p99_us(&self) -> u64 {
        self.p99_us.iter().map(|a| a.load(Ordering::Relaxed)).max().unwrap_or(0)
    }

    /// The sum over the cores of a per-core counter.
    pub(crate) fn sum(counter: &[AtomicU64]) -> u64 {
        counter.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_histograms_and_errors() {
        let mut a = CoreStats::new();
        let mut b = CoreStats::new();
        a.tick_latency.record(100).unwrap();
        b.tick_latency.record(300).unwrap();
        a.errors.connect = 1;
        *b.errors.unexpected_close.entry("1008".into()).or_default() += 2;
        b.errors.delta = 3;
        a.merge(&b);
        assert_eq!(a.tick_latency.len(), 2);
        assert_eq!(a.tick_latency.max(), 300);
        assert_eq!(a.errors.total(), 6);
    }

    #[test]
    fn merging_adds_every_counter() {
        let mut a = CoreStats::new();
        let mut b = CoreStats::new();
        b.input_latency.record(40_000).unwrap();
        (b.input_slots, b.inputs_late, b.inputs_unanswered, b.ticks_shared_stamp) = (3, 2, 1, 4);
        (b.decoders, b.ring_enters, b.full_state_sum) = (5, 6, 7);
        a.merge(&b);
        a.merge(&b);
        assert_eq!(a.input_latency.len(), 2);
        assert_eq!((a.input_slots, a.inputs_late, a.inputs_unanswered, a.ticks_shared_stamp), (6, 4, 2, 8));
        assert_eq!((a.decoders, a.ring_enters, a.full_state_sum), (10, 12, 14));
    }
}
