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
    /// Receive time minus the tick's `server_time_us`, µs (measured window).
    pub(crate) tick_latency: Histogram<u64>,
    /// Input sent until the first tick including it, µs, CO-corrected.
    pub(crate) input_latency: Histogram<u64>,
    /// TCP connect start until the WebSocket is open, µs (whole run).
    pub(crate) handshake_latency: Histogram<u64>,
    /// How late the loadgen woke for an input slot, µs (measured window):
    /// its own scheduling delay, which every latency figure includes.
    pub(crate) loadgen_lag: Histogram<u64>,
    /// Sampled `full_state_len` (bytes).
    pub(crate) full_state: Histogram<u64>,
    /// State messages received in the measured window.
    pub(crate) state_msgs: u64,
    /// Their state payload bytes (WebSocket payload, headers excluded).
    pub(crate) state_payload_bytes: u64,
    /// WebSocket bytes received in the measured window (frame headers and
    /// every message included).
    pub(crate) ws_bytes: u64,
    /// Gaps in the tick numbers, in the measured window.
    pub(crate) missed_ticks: u64,
    /// Inputs sent in the measured window.
    pub(crate) inputs_sent: u64,
    /// Inputs whose send slot had passed by more than a period (the loadgen
    /// fell behind; they were skipped).
    pub(crate) inputs_late: u64,
    /// Clients whose socket connected and handshake completed.
    pub(crate) connected: u64,
    /// Clients that joined a room.
    pub(crate) joined: u64,
    /// Clients still in their room when the measured window ended.
    pub(crate) completed: u64,
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
            state_msgs: 0,
            state_payload_bytes: 0,
            ws_bytes: 0,
            missed_ticks: 0,
            inputs_sent: 0,
            inputs_late: 0,
            connected: 0,
            joined: 0,
            completed: 0,
            errors: Errors::default(),
        }
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Self) {
        // Auto-resizing histograms of one precision always add.
        let _ = self.tick_latency.add(&other.tick_latency);
        let _ = self.input_latency.add(&other.input_latency);
        let _ = self.handshake_latency.add(&other.handshake_latency);
        let _ = self.loadgen_lag.add(&other.loadgen_lag);
        let _ = self.full_state.add(&other.full_state);
        self.state_msgs += other.state_msgs;
        self.state_payload_bytes += other.state_payload_bytes;
        self.ws_bytes += other.ws_bytes;
        self.missed_ticks += other.missed_ticks;
        self.inputs_sent += other.inputs_sent;
        self.inputs_late += other.inputs_late;
        self.connected += other.connected;
        self.joined += other.joined;
        self.completed += other.completed;
        self.errors.merge(&other.errors);
    }
}

/// Counters the progress bar reads while the cores write them.
#[derive(Debug)]
pub(crate) struct Live {
    /// Clients connected and in a room now.
    pub(crate) clients: AtomicU64,
    /// State messages received so far (whole run).
    pub(crate) ticks: AtomicU64,
    /// Errors so far.
    pub(crate) errors: AtomicU64,
    /// Each core's tick-latency p99 over its last second, µs.
    pub(crate) p99_us: Vec<AtomicU64>,
}

impl Live {
    pub(crate) fn new(cores: usize) -> Self {
        Self {
            clients: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            p99_us: (0..cores).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The worst core's recent p99, µs.
    pub(crate) fn p99_us(&self) -> u64 {
        self.p99_us.iter().map(|a| a.load(Ordering::Relaxed)).max().unwrap_or(0)
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
    fn coordinated_omission_correction_fills_in_the_missed_samples() {
        let mut h = histogram();
        // A 100 ms stall with inputs every 33 ms: the two inputs that could
        // not be sent in between are accounted for.
        h.record_correct(100_000, 33_333).unwrap();
        assert_eq!(h.len(), 3);
    }
}
