//! Whether this node reaches Redis, and the figures of its Redis traffic.
//!
//! Each helper thread reports the state of its own connection; the node is
//! degraded while either is down. Only transitions are logged: one warning
//! when Redis is lost (not one per retry), one line when it is back.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;
use tracing::{info, warn};

/// The cluster's state as `/healthz` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Redis answers: the view is fresh and requests to other nodes work.
    Ok,
    /// Redis cannot be reached (or not yet): the node serves its own rooms
    /// and answers cluster-wide questions with what it last knew. The text
    /// says why, for `200 degraded: ...`.
    Degraded(String),
}

/// Which helper thread reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// The writer: heartbeats, room rows, the view, outgoing messages.
    Writer = 0,
    /// The listener: the blocking pop of this node's inbox and replies.
    Listener = 1,
}

#[derive(Debug)]
enum LinkState {
    /// Not connected yet since start: not a failure, not logged.
    Connecting,
    Up,
    Down(String),
}

#[derive(Debug)]
struct State {
    links: [LinkState; 2],
    /// A warning was logged for the current outage.
    warned: bool,
    /// When the current outage began.
    since: Option<Instant>,
}

/// The node's link state, shared by its threads.
#[derive(Debug)]
pub(crate) struct HealthState {
    redis: String,
    state: Mutex<State>,
}

impl HealthState {
    pub(crate) fn new(redis: String) -> Self {
        let state = State { links: [LinkState::Connecting, LinkState::Connecting], warned: false, since: None };
        Self { redis, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `link` works.
    pub(crate) fn up(&self, link: Link) {
        let mut s = self.lock();
        s.links[link as usize] = LinkState::Up;
        if s.links.iter().all(|l| matches!(l, LinkState::Up)) {
            if s.warned {
                let down_for = s.since.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
                info!(redis = %self.redis, "cluster: Redis is reachable again after {down_for:.1}s; rejoined the directory");
            } else if s.since.is_none() {
                info!(redis = %self.redis, "cluster: joined the directory");
            }
            s.warned = false;
            s.since = None;
        }
    }

    /// Records that `link` failed with `reason`; logs once per outage.
    pub(crate) fn down(&self, link: Link, reason: String) {
        let mut s = self.lock();
        if s.since.is_none() {
            s.since = Some(Instant::now());
        }
        if !s.warned {
            warn!(
                redis = %self.redis,
                "cluster degraded: {reason}; serving this node's rooms with the last known view, retrying every second"
            );
            s.warned = true;
        }
        s.links[link as usize] = LinkState::Down(reason);
    }

    /// Whether `link` is up.
    pub(crate) fn is_up(&self, link: Link) -> bool {
        matches!(self.lock().links[link as usize], LinkState::Up)
    }

    /// The state for `/healthz`.
    pub(crate) fn health(&self) -> Health {
        let s = self.lock();
        for l in &s.links {
            match l {
                LinkState::Up => {}
                LinkState::Connecting => return Health::Degraded(format!("connecting to Redis at {}", self.redis)),
                LinkState::Down(reason) => return Health::Degraded(reason.clone()),
            }
        }
        Health::Ok
    }
}

/// Counters of the node's cluster traffic (relaxed atomics: any thread
/// adds, `/metrics` reads).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commands: AtomicU64,
    pub(crate) round_trips: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_ok: AtomicU64,
    pub(crate) requests_refused: AtomicU64,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) requests_timed_out: AtomicU64,
    pub(crate) requests_served: AtomicU64,
    pub(crate) late_replies: AtomicU64,
    pub(crate) bad_records: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) flushes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClusterStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        ClusterStats {
            commands: g(&self.commands),
            round_trips: g(&self.round_trips),
            redis_errors: g(&self.redis_errors),
            connects: g(&self.connects),
            requests_sent: g(&self.requests_sent),
            requests_ok: g(&self.requests_ok),
            requests_refused: g(&self.requests_refused),
            requests_failed: g(&self.requests_failed),
            requests_timed_out: g(&self.requests_timed_out),
            requests_served: g(&self.requests_served),
            late_replies: g(&self.late_replies),
            bad_records: g(&self.bad_records),
            refreshes: g(&self.refreshes),
            flushes: g(&self.flushes),
            degraded: false,
            live_nodes: 0,
            listed_rooms: 0,
        }
    }
}

/// A snapshot of the node's cluster figures (all counters since start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Redis commands sent (each command of a pipeline counts).
    pub commands: u64,
    /// Round trips to Redis (a pipeline is one).
    pub round_trips: u64,
    /// Redis calls that failed (connection lost, timeout, error reply).
    pub redis_errors: u64,
    /// Connections made to Redis (the first, then each reconnect).
    pub connects: u64,
    /// Requests sent to nodes (this one included).
    pub requests_sent: u64,
    /// Of those, answered with a seat.
    pub requests_ok: u64,
    /// Of those, refused by the owner.
    pub requests_refused: u64,
    /// Of those, failed here (Redis down, unknown node, overloaded).
    pub requests_failed: u64,
    /// Of those, not answered in time.
    pub requests_timed_out: u64,
    /// Requests from nodes answered by this one.
    pub requests_served: u64,
    /// Replies that came after their request timed out.
    pub late_replies: u64,
    /// Directory rows that did not parse (skipped).
    pub bad_records: u64,
    /// View refreshes read from Redis.
    pub refreshes: u64,
    /// Batches of room rows and heartbeats written.
    pub flushes: u64,
    /// Whether the node is degraded now.
    pub degraded: bool,
    /// Live nodes in the view (this one included).
    pub live_nodes: u64,
    /// Public rooms in the view.
    pub listed_rooms: u64,
}

impl ClusterStats {
    /// The figures as Prometheus text (`tickforge_cluster_*`), to append to
    /// `/metrics`.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP tickforge_cluster_{name} {help}\n# TYPE tickforge_cluster_{name} {kind}");
            let _ = writeln!(out, "tickforge_cluster_{name} {value}");
        };
        one("degraded", "gauge", "1 while Redis cannot be reached.", u64::from(self.degraded));
        one("live_nodes", "gauge", "Live nodes in this node's view.", self.live_nodes);
        one("listed_rooms", "gauge", "Public rooms in this node's view.", self.listed_rooms);
        one("redis_commands_total", "counter", "Redis commands sent.", self.commands);
        one("redis_round_trips_total", "counter", "Round trips to Redis.", self.round_trips);
        one("redis_errors_total", "counter", "Failed Redis calls.", self.redis_errors);
        one("redis_connects_total", "counter", "Connections made to Redis.", self.connects);
        one("requests_sent_total", "counter", "Requests sent to nodes.", self.requests_sent);
        one("requests_ok_total", "counter", "Requests answered with a seat.", self.requests_ok);
        one("requests_refused_total", "counter", "Requests refused by the owner.", self.requests_refused);
        one("requests_failed_total", "counter", "Requests that failed here.", self.requests_failed);
        one("requests_timed_out_total", "counter", "Requests not answered in time.", self.requests_timed_out);
        one("requests_served_total", "counter", "Requests from nodes answered here.", self.requests_served);
        one("late_replies_total", "counter", "Replies after their request timed out.", self.late_replies);
        one("bad_records_total", "counter", "Directory rows that did not parse.", self.bad_records);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_until_both_links_are_up_and_says_why() {
        let h = HealthState::new("127.0.0.1:6379/0".into());
        assert_eq!(h.health(), Health::Degraded("connecting to Redis at 127.0.0.1:6379/0".into()));
        h.up(Link::Writer);
        assert!(matches!(h.health(), Health::Degraded(_)));
        h.up(Link::Listener);
        assert_eq!(h.health(), Health::Ok);
        h.down(Link::Listener, "Redis lost: connection refused".into());
        assert_eq!(h.health(), Health::Degraded("Redis lost: connection refused".into()));
        assert!(h.is_up(Link::Writer) && !h.is_up(Link::Listener));
        h.up(Link::Listener);
        assert_eq!(h.health(), Health::Ok);
    }

    #[test]
    fn stats_render_as_prometheus_text() {
        let stats = ClusterStats { commands: 12, degraded: true, ..ClusterStats::default() };
        let text = stats.render();
        assert!(text.contains("tickforge_cluster_redis_commands_total 12\n"), "{text}");
        assert!(text.contains("tickforge_cluster_degraded 1\n"));
    }
}
