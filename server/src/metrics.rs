//! Counters, gauges and histograms per shard, rendered as Prometheus text.
//!
//! Each shard writes only its own [`ShardMetrics`] (relaxed atomics on a
//! block no other shard writes: as cheap as a `Cell`, but readable by
//! whichever shard answers `GET /metrics`). [`Metrics`] holds every shard's
//! block and sums them when rendering.

use crate::game::Hook;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tickforge_protocol::message::RejectCode;
use tickforge_protocol::CloseReason;

/// Upper bounds of the tick histograms' buckets, microseconds.
pub const TICK_BUCKETS_US: [u64; 11] = [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];

/// A histogram of microsecond figures over [`TICK_BUCKETS_US`].
#[derive(Debug, Default)]
pub struct UsHistogram {
    /// Counts per bucket of [`TICK_BUCKETS_US`], then +Inf.
    pub buckets: [AtomicU64; TICK_BUCKETS_US.len() + 1],
    /// Sum of the figures, microseconds.
    pub sum_us: AtomicU64,
}

impl UsHistogram {
    /// Records one figure.
    pub fn record(&self, us: u64) {
        ShardMetrics::add(&self.sum_us, us);
        let i = TICK_BUCKETS_US.iter().position(|b| us <= *b).unwrap_or(TICK_BUCKETS_US.len());
        ShardMetrics::inc(&self.buckets[i]);
    }
}

/// Every close label the server counts: the protocol's
/// [`CloseReason::LABELS`], then `peer_gone` (the socket ended without a
/// close frame) and `other`.
pub const CLOSE_LABELS: [(&str, u16); CloseReason::LABELS.len() + 2] = close_labels();

/// Builds [`CLOSE_LABELS`] from the protocol's table (no second copy to
/// drift from it).
const fn close_labels() -> [(&'static str, u16); CloseReason::LABELS.len() + 2] {
    let mut out = [("", 0); CloseReason::LABELS.len() + 2];
    let mut i = 0;
    while i < CloseReason::LABELS.len() {
        out[i] = CloseReason::LABELS[i];
        i += 1;
    }
    out[i] = ("peer_gone", 1006);
    out[i + 1] = ("other", 0);
    out
}

/// HTTP statuses the server answers, counted by code.
pub const HTTP_STATUSES: [u16; 13] = [101, 200, 202, 400, 401, 403, 404, 405, 426, 429, 500, 503, 0];

/// One shard's figures. Written by that shard only.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Open connections (WebSocket and plain HTTP).
    pub connections: AtomicI64,
    /// Rooms alive.
    pub rooms: AtomicI64,
    /// Players in rooms.
    pub players: AtomicI64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Ticks run.
    pub ticks: AtomicU64,
    /// Ticks that took longer than their period.
    pub tick_overruns: AtomicU64,
    /// Tick slots skipped because a room ran late (its shard was busy).
    pub slots_skipped: AtomicU64,
    /// Tick durations.
    pub tick_duration: UsHistogram,
    /// How late each tick started after it was due: a late wake-up, the
    /// pass's reads, and the rooms (and their sends) before it in its
    /// pass; a tick taken early counts as 0.
    pub tick_lag: UsHistogram,
    /// Game panics caught (each closes its room).
    pub room_panics: AtomicU64,
    /// WebSocket bytes read from sockets.
    pub bytes_in: AtomicU64,
    /// WebSocket bytes written to sockets.
    pub bytes_out: AtomicU64,
    /// Client messages decoded.
    pub messages_in: AtomicU64,
    /// Messages queued to clients.
    pub messages_out: AtomicU64,
    /// Inputs dropped by the rate limit or for being in no room.
    pub inputs_dropped: AtomicU64,
    /// `rej` and `error` indications sent, by [`RejectCode::ALL`] index.
    pub rejects: [AtomicU64; RejectCode::ALL.len()],
    /// Connections closed, by [`CLOSE_LABELS`] index.
    pub closes: [AtomicU64; CLOSE_LABELS.len()],
    /// HTTP answers, by [`HTTP_STATUSES`] index.
    pub http: [AtomicU64; HTTP_STATUSES.len()],
    /// Connections handed to another shard.
    pub handoffs_out: AtomicU64,
    /// Connections received from another shard.
    pub handoffs_in: AtomicU64,
    /// Tick passes run (each ticks every room due within its slack).
    pub passes: AtomicU64,
    /// `io_uring_enter` calls of the tick passes' ring.
    pub pass_enters: AtomicU64,
    /// Operations (receives and sends) the tick passes submitted.
    pub pass_submissions: AtomicU64,
    /// Game hooks that ran longer than the slow-hook bound, by
    /// [`Hook::ALL`] index.
    pub game_hooks_slow: [AtomicU64; Hook::ALL.len()],
    /// Game event deliveries (one per recipient).
    pub game_events: AtomicU64,
    /// Game event deliveries dropped over the per-tick bound.
    pub game_events_dropped: AtomicU64,
    /// Seats held for a `resume` when their connection ended.
    pub seats_held: AtomicU64,
    /// Held seats freed at the end of their reconnect grace.
    pub seats_expired: AtomicU64,
    /// Seats taken back with `resume`.
    pub resumes: AtomicU64,
    /// Seats taken back from a connection still open (it was closed 1008).
    pub takeovers: AtomicU64,
    /// TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes that failed or timed out (plain HTTP to the TLS
    /// port, a refused handshake, a slowloris).
    pub tls_handshake_failures: AtomicU64,
    /// TLS connections dropped for a fault after their handshake.
    pub tls_errors: AtomicU64,
}

impl ShardMetrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    /// Adds `n` to a counter. Only the owning shard writes its block, so a
    /// plain load and store is enough (no locked read-modify-write); other
    /// shards only read.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Moves a gauge by `delta` (single writer, as [`ShardMetrics::add`]).
    pub fn gauge(gauge: &AtomicI64, delta: i64) {
        gauge.store(gauge.load(Relaxed).wrapping_add(delta), Relaxed);
    }

    /// Counts a reject (or `error` indication) code.
    pub fn reject(&self, code: RejectCode) {
        if let Some(i) = RejectCode::ALL.iter().position(|c| *c == code) {
            Self::inc(&self.rejects[i]);
        }
    }

    /// Counts a close by its label.
    pub fn close(&self, reason: &CloseReason) {
        self.close_label(reason.label());
    }

    /// Counts a close by label (one of [`CLOSE_LABELS`], else `other`).
    pub fn close_label(&self, label: &str) {
        let i = CLOSE_LABELS.iter().position(|(l, _)| *l == label).unwrap_or(CLOSE_LABELS.len() - 1);
        Self::inc(&self.closes[i]);
    }

    /// Counts an HTTP answer.
    pub fn http_status(&self, status: u16) {
        let i = HTTP_STATUSES.iter().position(|s| *s == status).unwrap_or(HTTP_STATUSES.len() - 1);
        Self::inc(&self.http[i]);
    }

    /// Records one tick's duration and whether it overran its period.
    pub fn tick(&self, duration_us: u64, period_us: u64) {
        Self::inc(&self.ticks);
        self.tick_duration.record(duration_us);
        if duration_us > period_us {
            Self::inc(&self.tick_overruns);
        }
    }
}

/// Every shard's figures.
#[derive(Clone, Debug)]
pub struct Metrics {
    shards: Arc<[ShardMetrics]>,
}

impl Metrics {
    /// Zeroed figures for `shards` shards.
    #[must_use]
    pub fn new(shards: usize) -> Self {
        Self { shards: (0..shards).map(|_| ShardMetrics::default()).collect() }
    }

    /// One shard's block.
    ///
    /// # Panics
    /// When `shard` is out of range (a programming error).
    #[must_use]
    pub fn shard(&self, shard: usize) -> &ShardMetrics {
        &self.shards[shard]
    }

    fn sum(&self, f: impl Fn(&ShardMetrics) -> u64) -> u64 {
        self.shards.iter().map(f).sum()
    }

    /// Writes one histogram of every shard's `f`, in seconds.
    fn histogram(&self, out: &mut String, name: &str, help: &str, f: impl Fn(&ShardMetrics) -> &UsHistogram) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in TICK_BUCKETS_US.iter().enumerate() {
            cumulative += self.sum(|s| f(s).buckets[i].load(Relaxed));
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        cumulative += self.sum(|s| f(s).buckets[TICK_BUCKETS_US.len()].load(Relaxed));
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", self.sum(|s| f(s).sum_us.load(Relaxed)) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
    }

    fn sum_gauge(&self, f: impl Fn(&ShardMetrics) -> &AtomicI64) -> i64 {
        self.shards.iter().map(|s| f(s).load(Relaxed)).sum()
    }

    /// Connections closed since start, by [`CLOSE_LABELS`] index, over all shards.
    #[must_use]
    pub fn closes(&self) -> Vec<u64> {
        (0..CLOSE_LABELS.len()).map(|i| self.sum(|s| s.closes[i].load(Relaxed))).collect()
    }

    /// Rejects and `error` indications since start, by [`RejectCode::ALL`] index, over all shards.
    #[must_use]
    pub fn rejects(&self) -> Vec<u64> {
        (0..RejectCode::ALL.len()).map(|i| self.sum(|s| s.rejects[i].load(Relaxed))).collect()
    }

    /// Open connections over all shards.
    #[must_use]
    pub fn connections(&self) -> i64 {
        self.sum_gauge(|s| &s.connections)
    }

    /// The Prometheus text exposition of every figure.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, f: &dyn Fn(&ShardMetrics) -> &AtomicI64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (i, s) in self.shards.iter().enumerate() {
                let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", f(s).load(Relaxed));
            }
        };
        gauge(&mut out, "tickforge_connections", "Open connections.", &|s| &s.connections);
        gauge(&mut out, "tickforge_rooms", "Rooms alive.", &|s| &s.rooms);
        gauge(&mut out, "tickforge_players", "Players in rooms.", &|s| &s.players);
        let counter = |out: &mut String, name: &str, help: &str, f: &dyn Fn(&ShardMetrics) -> &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", self.sum(|s| f(s).load(Relaxed)));
        };
        counter(&mut out, "tickforge_accepted_total", "Connections accepted.", &|s| &s.accepted);
        counter(&mut out, "tickforge_ticks_total", "Room ticks run.", &|s| &s.ticks);
        counter(&mut out, "tickforge_tick_overruns_total", "Ticks longer than their period.", &|s| &s.tick_overruns);
        counter(&mut out, "tickforge_tick_slots_skipped_total", "Tick slots skipped by late rooms.", &|s| {
            &s.slots_skipped
        });
        counter(&mut out, "tickforge_room_panics_total", "Game panics caught.", &|s| &s.room_panics);
        counter(&mut out, "tickforge_bytes_in_total", "WebSocket bytes read.", &|s| &s.bytes_in);
        counter(&mut out, "tickforge_bytes_out_total", "WebSocket bytes written.", &|s| &s.bytes_out);
        counter(&mut out, "tickforge_messages_in_total", "Client messages decoded.", &|s| &s.messages_in);
        counter(&mut out, "tickforge_messages_out_total", "Messages sent to clients.", &|s| &s.messages_out);
        counter(&mut out, "tickforge_inputs_dropped_total", "Inputs dropped (rate, no room).", &|s| &s.inputs_dropped);
        counter(&mut out, "tickforge_handoffs_out_total", "Connections handed to another shard.", &|s| &s.handoffs_out);
        counter(&mut out, "tickforge_handoffs_in_total", "Connections taken from another shard.", &|s| &s.handoffs_in);
        counter(&mut out, "tickforge_tick_passes_total", "Tick passes run.", &|s| &s.passes);
        counter(&mut out, "tickforge_tick_pass_enters_total", "io_uring_enter calls of the tick passes.", &|s| {
            &s.pass_enters
        });
        counter(
            &mut out,
            "tickforge_tick_pass_submissions_total",
            "Receives and sends the tick passes submitted.",
            &|s| &s.pass_submissions,
        );
        counter(&mut out, "tickforge_game_events_total", "Game events delivered (one per player).", &|s| {
            &s.game_events
        });
        counter(
            &mut out,
            "tickforge_game_events_dropped_total",
            "Game events dropped over the per-tick bound.",
            &|s| &s.game_events_dropped,
        );
        let name = "tickforge_game_hook_slow_total";
        let _ = writeln!(out, "# HELP {name} Game hooks that ran longer than --slow-game-hook.\n# TYPE {name} counter");
        for (i, hook) in Hook::ALL.iter().enumerate() {
            let n = self.sum(|s| s.game_hooks_slow[i].load(Relaxed));
            let _ = writeln!(out, "{name}{{hook=\"{}\"}} {n}", hook.name());
        }
        counter(&mut out, "tickforge_seats_held_total", "Seats held for a resume when their connection ended.", &|s| {
            &s.seats_held
        });
        counter(&mut out, "tickforge_seats_expired_total", "Held seats freed after the reconnect grace.", &|s| {
            &s.seats_expired
        });
        counter(&mut out, "tickforge_resumes_total", "Seats taken back with resume.", &|s| &s.resumes);
        counter(&mut out, "tickforge_takeovers_total", "Resumes that closed the seat's old connection.", &|s| {
            &s.takeovers
        });
        counter(&mut out, "tickforge_tls_handshakes_total", "TLS handshakes completed.", &|s| &s.tls_handshakes);
        counter(
            &mut out,
            "tickforge_tls_handshake_failures_total",
            "TLS handshakes failed or timed out (plain HTTP to the TLS port included).",
            &|s| &s.tls_handshake_failures,
        );
        counter(&mut out, "tickforge_tls_errors_total", "TLS connections dropped for a fault.", &|s| &s.tls_errors);

        self.histogram(&mut out, "tickforge_tick_duration_seconds", "Time to step a room and fan its tick out.", |s| {
            &s.tick_duration
        });
        self.histogram(
            &mut out,
            "tickforge_tick_lag_seconds",
            "How late a room's tick started after it was due (a late wake-up, its pass's reads, and the rooms and sends before it in its pass).",
            |s| &s.tick_lag,
        );

        let name = "tickforge_rejects_total";
        let _ = writeln!(out, "# HELP {name} Rejects and error indications by code.\n# TYPE {name} counter");
        for (i, code) in RejectCode::ALL.iter().enumerate() {
            let _ = writeln!(out, "{name}{{code=\"{}\"}} {}", code.as_str(), self.sum(|s| s.rejects[i].load(Relaxed)));
        }
        let name = "tickforge_closes_total";
        let _ = writeln!(out, "# HELP {name} Connections closed, by reason and close code.\n# TYPE {name} counter");
        for (i, (label, code)) in CLOSE_LABELS.iter().enumerate() {
            let n = self.sum(|s| s.closes[i].load(Relaxed));
            let _ = writeln!(out, "{name}{{reason=\"{label}\",code=\"{code}\"}} {n}");
        }
        let name = "tickforge_http_responses_total";
        let _ = writeln!(out, "# HELP {name} HTTP answers by status.\n# TYPE {name} counter");
        for (i, status) in HTTP_STATUSES.iter().enumerate() {
            let n = self.sum(|s| s.http[i].load(Relaxed));
            let label = if *status == 0 { "other".to_string() } else { status.to_string() };
            let _ = writeln!(out, "{name}{{status=\"{label}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_sums_shards_and_labels_closes() {
        let m = Metrics::new(2);
        m.shard(0).tick(80, 33_333);
        m.shard(1).tick(40_000, 33_333);
        m.shard(1).close(&CloseReason::TooLarge { max: 1 });
        m.shard(0).reject(RejectCode::RoomFull);
        m.shard(0).tick_lag.record(3_000);
        m.shard(1).tick_lag.record(200);
        let text = m.render();
        assert!(text.contains("tickforge_ticks_total 2\n"), "{text}");
        assert!(text.contains("tickforge_tick_overruns_total 1\n"));
        assert!(text.contains("tickforge_tick_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("tickforge_tick_duration_seconds_count 2\n"));
        assert!(text.contains("tickforge_tick_lag_seconds_bucket{le=\"0.00025\"} 1\n"), "{text}");
        assert!(text.contains("tickforge_tick_lag_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("tickforge_tick_lag_seconds_sum 0.0032\n"));
        assert!(text.contains("tickforge_closes_total{reason=\"too_large\",code=\"1009\"} 1\n"));
        assert!(text.contains("tickforge_rejects_total{code=\"room_full\"} 1\n"));
    }
}
