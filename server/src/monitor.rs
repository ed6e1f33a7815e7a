//! The operator's monitor: what `GET /monitor.json` answers (and the page
//! at `GET /monitor` shows), and the admin actions of `POST /monitor/...`.
//!
//! Control plane only, and cheap on the hot path: each room has a
//! [`RoomStats`] its shard writes once per tick (a tick-duration bucket,
//! the tick number, the bytes its players' sockets took in that pass, slots
//! skipped), single-writer relaxed atomics like [`crate::metrics`]; its
//! player ids are written only when they change. Once every
//! [`SAMPLE_EVERY`] shard 0 takes a [`Sample`] of every room and of the
//! shards' counters into a bounded history: the charts of the last
//! minutes, and the "last minute" figures (tick p50/p99 per room, closes
//! by reason, rejects by code) as differences of cumulative counters.
//!
//! Admin actions (close a room, disconnect a player) are requests left on
//! the room's stats; its shard carries them out at the room's next tick
//! through the usual paths (`Room::close`, an outbox close), so no other
//! thread touches a room.

use crate::metrics::{Metrics, CLOSE_LABELS};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tickforge_protocol::message::RejectCode;

/// Upper bounds of the per-room tick duration buckets, microseconds (the
/// last bucket, past 500 ms, has none). A percentile is reported as the
/// upper bound of its bucket.
pub const TICK_BUCKETS_US: [u64; 15] =
    [10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000];
const BUCKETS: usize = TICK_BUCKETS_US.len() + 1;

/// How often the history takes a sample.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Samples kept: 5 minutes of charts.
pub const HISTORY_SAMPLES: usize = 150;
/// The window of the "last minute" figures.
pub const LAST_MINUTE: Duration = Duration::from_secs(60);
/// Most rooms `/monitor.json` lists (the busiest first); the totals count all.
pub const MAX_LISTED_ROOMS: usize = 1000;
/// Player ids listed per room.
pub const MAX_LISTED_PLAYERS: usize = 256;
/// Admin requests queued per room before its next tick; more are refused (429).
pub const MAX_PENDING_ACTIONS: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Control-plane maps with single inserts and removes: a panic while
    // holding one cannot leave it half-updated.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds `n` to a counter written by one thread only (as `ShardMetrics::add`).
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// One room's figures, written by its shard, read by `/monitor.json`.
#[derive(Debug)]
pub struct RoomStats {
    /// The room.
    pub room_id: String,
    /// Its game.
    pub game: String,
    /// The shard hosting it.
    pub shard: usize,
    /// Its tick rate.
    pub tick_hz: u32,
    /// Its seats.
    pub max_players: u32,
    /// Whether it is private (unlisted).
    pub private: bool,
    players: AtomicU32,
    spectators: AtomicU32,
    tick: AtomicU64,
    /// Ticks by duration bucket, since the room started.
    ticks: [AtomicU64; BUCKETS],
    /// Bytes its players' sockets took in its tick passes, since it started.
    bytes_out: AtomicU64,
    /// Tick slots it skipped because it ran late.
    skipped: AtomicU64,
    player_ids: Mutex<Vec<u32>>,
    /// Whether `actions` holds requests (one load per tick to check).
    pending: AtomicBool,
    actions: Mutex<Actions>,
}

/// Admin requests waiting for the room's next tick.
#[derive(Debug, Default)]
pub struct Actions {
    /// Close the room with this reason.
    pub close: Option<String>,
    /// Disconnect these players.
    pub disconnect: Vec<u32>,
}

impl RoomStats {
    /// Stats for a new room.
    #[must_use]
    pub fn new(room_id: String, game: String, shard: usize, tick_hz: u32, max_players: u32, private: bool) -> Self {
        Self {
            room_id,
            game,
            shard,
            tick_hz,
            max_players,
            private,
            players: AtomicU32::new(0),
            spectators: AtomicU32::new(0),
            tick: AtomicU64::new(0),
            ticks: Default::default(),
            bytes_out: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            player_ids: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            actions: Mutex::new(Actions::default()),
        }
    }

    /// Records one tick: its number and how long it took.
    pub fn record_tick(&self, tick: u64, duration_us: u64) {
        self.tick.store(tick, Relaxed);
        let i = TICK_BUCKETS_US.iter().position(|b| duration_us <= *b).unwrap_or(BUCKETS - 1);
        add(&self.ticks[i], 1);
    }

    /// Records the bytes its players' sockets took in one pass.
    pub fn record_bytes(&self, bytes: u64) {
        add(&self.bytes_out, bytes);
    }

    /// Records tick slots skipped because the room ran late.
    pub fn record_skipped(&self, slots: u64) {
        if slots > 0 {
            add(&self.skipped, slots);
        }
    }

    /// Records who is in the room (called when it changes).
    pub fn set_players(&self, ids: impl Iterator<Item = u32>, spectators: u32) {
        let mut list = lock(&self.player_ids);
        list.clear();
        list.extend(ids);
        self.players.store(u32::try_from(list.len()).unwrap_or(u32::MAX), Relaxed);
        self.spectators.store(spectators, Relaxed);
    }

    /// Whether `player` is in the room (as last recorded).
    #[must_use]
    pub fn has_player(&self, player: u32) -> bool {
        lock(&self.player_ids).contains(&player)
    }

    /// Takes the admin requests, if any (one relaxed load when there are none).
    pub fn take_actions(&self) -> Option<Actions> {
        if !self.pending.load(Relaxed) {
            return None;
        }
        self.pending.store(false, Relaxed);
        Some(std::mem::take(&mut *lock(&self.actions)))
    }

    fn request(&self, f: impl FnOnce(&mut Actions) -> Result<(), ActionError>) -> Result<(), ActionError> {
        let mut actions = lock(&self.actions);
        f(&mut actions)?;
        // Set under the lock: the shard's take sees the request it flags.
        self.pending.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn mark(&self) -> RoomMark {
        RoomMark {
            ticks: std::array::from_fn(|i| self.ticks[i].load(Relaxed)),
            bytes_out: self.bytes_out.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
        }
    }
}

/// Why an admin request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such room (on this server).
    #[error("no room {0}")]
    UnknownRoom(String),
    /// No such player in the room.
    #[error("no player {player} in room {room}")]
    UnknownPlayer {
        /// The room.
        room: String,
        /// The player.
        player: u32,
    },
    /// Too many requests wait for the room's next tick.
    #[error("room {0} already has {MAX_PENDING_ACTIONS} admin requests waiting for its next tick")]
    Busy(String),
}

impl ActionError {
    /// The HTTP status answering it.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownRoom(_) | Self::UnknownPlayer { .. } => 404,
            Self::Busy(_) => 429,
        }
    }
}

/// A shard's load, written by that shard.
#[derive(Debug, Default)]
pub struct ShardLoad {
    /// The fraction of the last second the shard's thread ran, as f64 bits.
    busy: AtomicU64,
    cpu_ns: AtomicU64,
    wall_ns: AtomicU64,
}

impl ShardLoad {
    /// Records the shard thread's CPU time and the wall clock (both ns);
    /// the busy fraction is the change since the last call.
    pub fn record(&self, cpu_ns: u64, wall_ns: u64) {
        let (cpu0, wall0) = (self.cpu_ns.swap(cpu_ns, Relaxed), self.wall_ns.swap(wall_ns, Relaxed));
        if wall0 > 0 && wall_ns > wall0 {
            let busy = cpu_ns.saturating_sub(cpu0) as f64 / (wall_ns - wall0) as f64;
            self.busy.store(busy.clamp(0.0, 1.0).to_bits(), Relaxed);
        }
    }

    /// The fraction of the last measured interval the shard's thread ran (0 to 1).
    #[must_use]
    pub fn busy(&self) -> f64 {
        f64::from_bits(self.busy.load(Relaxed))
    }
}

/// A room's cumulative counters at one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RoomMark {
    ticks: [u64; BUCKETS],
    bytes_out: u64,
    skipped: u64,
}

/// The server's cumulative counters at one sample.
#[derive(Clone, Debug, Default)]
struct Mark {
    at_us: u64,
    closes: Vec<u64>,
    rejects: Vec<u64>,
    rooms: HashMap<String, RoomMark>,
}

/// One point of the charts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// When, µs since the Unix epoch.
    pub at_us: u64,
    /// Players in rooms.
    pub players: u64,
    /// Spectators.
    pub spectators: u64,
    /// Rooms alive.
    pub rooms: u64,
    /// Open connections.
    pub connections: i64,
    /// The 99th percentile of every room's ticks since the previous sample (µs, a bucket bound).
    pub tick_p99_us: u64,
    /// Bytes out per second since the previous sample, all rooms.
    pub bytes_out_per_s: f64,
}

#[derive(Debug, Default)]
struct History {
    samples: VecDeque<Sample>,
    /// Marks over the last minute (and one before it), oldest first.
    marks: VecDeque<Mark>,
}

#[derive(Debug)]
struct Inner {
    started_us: u64,
    admin: bool,
    rooms: Mutex<BTreeMap<String, Arc<RoomStats>>>,
    shards: Box<[ShardLoad]>,
    history: Mutex<History>,
    /// Rooms ever registered and disposed of, for the totals.
    created: AtomicU64,
    disposed: AtomicI64,
}

/// The monitor shared by every shard.
#[derive(Clone, Debug)]
pub struct Monitor {
    inner: Arc<Inner>,
}

impl Monitor {
    /// A monitor for `shards` shards; `admin`: whether admin actions are on.
    #[must_use]
    pub fn new(shards: usize, admin: bool, now_us: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                started_us: now_us,
                admin,
                rooms: Mutex::new(BTreeMap::new()),
                shards: (0..shards).map(|_| ShardLoad::default()).collect(),
                history: Mutex::new(History::default()),
                created: AtomicU64::new(0),
                disposed: AtomicI64::new(0),
            }),
        }
    }

    /// Registers a room's stats (its shard writes them).
    pub fn register(&self, stats: RoomStats) -> Arc<RoomStats> {
        let stats = Arc::new(stats);
        lock(&self.inner.rooms).insert(stats.room_id.clone(), stats.clone());
        self.inner.created.fetch_add(1, Relaxed);
        stats
    }

    /// Forgets a disposed-of room.
    pub fn unregister(&self, room_id: &str) {
        if lock(&self.inner.rooms).remove(room_id).is_some() {
            self.inner.disposed.fetch_add(1, Relaxed);
        }
    }

    /// Shard `shard`'s load block.
    ///
    /// # Panics
    /// When `shard` is out of range (a programming error).
    #[must_use]
    pub fn shard(&self, shard: usize) -> &ShardLoad {
        &self.inner.shards[shard]
    }

    fn room(&self, room_id: &str) -> Result<Arc<RoomStats>, ActionError> {
        lock(&self.inner.rooms).get(room_id).cloned().ok_or_else(|| ActionError::UnknownRoom(room_id.to_owned()))
    }

    /// Asks room `room_id` to close (at its next tick, with `room_closing`).
    ///
    /// # Errors
    /// [`ActionError::UnknownRoom`].
    pub fn request_close(&self, room_id: &str, reason: &str) -> Result<(), ActionError> {
        self.room(room_id)?.request(|a| {
            a.close = Some(reason.to_owned());
            Ok(())
        })
    }

    /// Asks room `room_id` to disconnect `player` (at its next tick).
    ///
    /// # Errors
    /// [`ActionError::UnknownRoom`], [`ActionError::UnknownPlayer`],
    /// [`ActionError::Busy`].
    pub fn request_disconnect(&self, room_id: &str, player: u32) -> Result<(), ActionError> {
        let room = self.room(room_id)?;
        if !room.has_player(player) {
            return Err(ActionError::UnknownPlayer { room: room_id.to_owned(), player });
        }
        room.request(|a| {
            if a.disconnect.len() >= MAX_PENDING_ACTIONS {
                return Err(ActionError::Busy(room_id.to_owned()));
            }
            if !a.disconnect.contains(&player) {
                a.disconnect.push(player);
            }
            Ok(())
        })
    }

    fn rooms(&self) -> Vec<Arc<RoomStats>> {
        lock(&self.inner.rooms).values().cloned().collect()
    }

    /// Takes a sample of every room and of `metrics` at `now_us`: a point
    /// of the charts and a mark for the last-minute figures.
    pub fn sample(&self, now_us: u64, metrics: &Metrics) {
        let rooms = self.rooms();
        let mark = Mark {
            at_us: now_us,
            closes: metrics.closes(),
            rejects: metrics.rejects(),
            rooms: rooms.iter().map(|r| (r.room_id.clone(), r.mark())).collect(),
        };
        let mut history = lock(&self.inner.history);
        let mut sample = Sample {
            at_us: now_us,
            players: rooms.iter().map(|r| u64::from(r.players.load(Relaxed))).sum(),
            spectators: rooms.iter().map(|r| u64::from(r.spectators.load(Relaxed))).sum(),
            rooms: rooms.len() as u64,
            connections: metrics.connections(),
            ..Sample::default()
        };
        if let Some(previous) = history.marks.back() {
            let (mut ticks, mut bytes) = ([0u64; BUCKETS], 0u64);
            for (id, now) in &mark.rooms {
                let before = previous.rooms.get(id).copied().unwrap_or_default();
                for i in 0..BUCKETS {
                    ticks[i] += now.ticks[i].saturating_sub(before.ticks[i]);
                }
                bytes += now.bytes_out.saturating_sub(before.bytes_out);
            }
            sample.tick_p99_us = percentile(&ticks, 0.99).unwrap_or(0);
            let secs = now_us.saturating_sub(previous.at_us) as f64 / 1e6;
            sample.bytes_out_per_s = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
        }
        if history.samples.len() == HISTORY_SAMPLES {
            history.samples.pop_front();
        }
        history.samples.push_back(sample);
        history.marks.push_back(mark);
        // Keep the newest mark at least a minute old, and nothing older.
        let minute = LAST_MINUTE.as_micros() as u64;
        while history.marks.len() > 2 && history.marks.get(1).is_some_and(|m| now_us.saturating_sub(m.at_us) >= minute)
        {
            history.marks.pop_front();
        }
    }

    /// What `GET /monitor.json` answers (PROTOCOL.md section 15).
    #[must_use]
    pub fn render(&self, now_us: u64, metrics: &Metrics, server_version: &str) -> Value {
        let rooms = self.rooms();
        let history = lock(&self.inner.history);
        let minute_mark = history.marks.front();
        // Rates over the last full sample interval or two: the mark before
        // the newest (a render right after a sample would divide by ~0).
        let n = history.marks.len();
        let last_mark = history.marks.get(n.saturating_sub(2));
        let window_s = |m: Option<&Mark>| m.map_or(0.0, |m| now_us.saturating_sub(m.at_us) as f64 / 1e6);
        let mut listed: Vec<(u64, Value)> = rooms
            .iter()
            .map(|r| {
                let now = r.mark();
                let since = |m: Option<&Mark>| m.and_then(|m| m.rooms.get(&r.room_id).copied());
                let minute = since(minute_mark).unwrap_or_default();
                let ticks: [u64; BUCKETS] = std::array::from_fn(|i| now.ticks[i].saturating_sub(minute.ticks[i]));
                let recent = since(last_mark);
                let secs = window_s(last_mark);
                let bytes_per_s = match recent {
                    Some(m) if secs > 0.0 => now.bytes_out.saturating_sub(m.bytes_out) as f64 / secs,
                    _ => 0.0,
                };
                let players = r.players.load(Relaxed);
                let mut ids = lock(&r.player_ids).clone();
                ids.truncate(MAX_LISTED_PLAYERS);
                let row = json!({
                    "room_id": r.room_id,
                    "shard": r.shard,
                    "game": r.game,
                    "players": players,
                    "max_players": r.max_players,
                    "spectators": r.spectators.load(Relaxed),
                    "private": r.private,
                    "tick_hz": r.tick_hz,
                    "tick": r.tick.load(Relaxed),
                    "tick_p50_us": percentile(&ticks, 0.5),
                    "tick_p99_us": percentile(&ticks, 0.99),
                    "bytes_out_per_s": bytes_per_s.round(),
                    "skipped_ticks": now.skipped,
                    "skipped_ticks_last_minute": now.skipped.saturating_sub(minute.skipped),
                    "player_ids": ids,
                });
                (u64::from(players), row)
            })
            .collect();
        let total_rooms = listed.len();
        listed.sort_by_key(|(players, _)| std::cmp::Reverse(*players));
        listed.truncate(MAX_LISTED_ROOMS);
        let shards: Vec<Value> = (0..self.inner.shards.len())
            .map(|i| {
                let m = metrics.shard(i);
                json!({
                    "shard": i,
                    "connections": m.connections.load(Relaxed),
                    "rooms": m.rooms.load(Relaxed),
                    "players": m.players.load(Relaxed),
                    "cpu_busy": (self.inner.shards[i].busy() * 1000.0).round() / 1000.0,
                })
            })
            .collect();
        let counts = |now: Vec<u64>, then: Option<&Vec<u64>>| -> Vec<u64> {
            now.iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(then.and_then(|t| t.get(i)).copied().unwrap_or(0)))
                .collect()
        };
        let closes = counts(metrics.closes(), minute_mark.map(|m| &m.closes));
        let rejects = counts(metrics.rejects(), minute_mark.map(|m| &m.rejects));
        let closes: Vec<Value> = CLOSE_LABELS
            .iter()
            .zip(closes)
            .map(|((label, code), count)| json!({ "reason": label, "code": code, "count": count }))
            .collect();
        let rejects: Vec<Value> = RejectCode::ALL
            .iter()
            .zip(rejects)
            .map(|(code, count)| json!({ "code": code.as_str(), "count": count }))
            .collect();
        let samples: Vec<Value> = history
            .samples
            .iter()
            .map(|s| {
                json!({
                    "at_us": s.at_us,
                    "players": s.players,
                    "spectators": s.spectators,
                    "rooms": s.rooms,
                    "connections": s.connections,
                    "tick_p99_us": s.tick_p99_us,
                    "bytes_out_per_s": s.bytes_out_per_s.round(),
                })
            })
            .collect();
        json!({
            "server": {
                "version": server_version,
                "time_us": now_us,
                "uptime_s": now_us.saturating_sub(self.inner.started_us) / 1_000_000,
                "shards": self.inner.shards.len(),
                "admin": self.inner.admin,
            },
            "totals": {
                "connections": metrics.connections(),
                "rooms": total_rooms,
                "players": rooms.iter().map(|r| u64::from(r.players.load(Relaxed))).sum::<u64>(),
                "spectators": rooms.iter().map(|r| u64::from(r.spectators.load(Relaxed))).sum::<u64>(),
                "rooms_created": self.inner.created.load(Relaxed),
            },
            "shards": shards,
            "rooms": listed.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "last_minute": {
                "window_s": window_s(minute_mark).round(),
                "closes": closes,
                "rejects": rejects,
            },
            "history": {
                "every_s": SAMPLE_EVERY.as_secs(),
                "samples": samples,
            },
        })
    }
}

/// The upper bound of the bucket holding the `q` quantile, `None` without ticks.
fn percentile(counts: &[u64; BUCKETS], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            // Past the last bound: report it doubled, an honest "more than".
            return Some(TICK_BUCKETS_US.get(i).copied().unwrap_or(TICK_BUCKETS_US[BUCKETS - 2] * 2));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str) -> RoomStats {
        RoomStats::new(id.into(), "arena".into(), 0, 30, 8, false)
    }

    #[test]
    fn percentiles_are_bucket_bounds() {
        let mut c = [0u64; BUCKETS];
        assert_eq!(percentile(&c, 0.5), None);
        c[3] = 98; // <= 100 µs
        c[8] = 2; // <= 5 ms
        assert_eq!(percentile(&c, 0.5), Some(100));
        assert_eq!(percentile(&c, 0.99), Some(5_000));
        c[BUCKETS - 1] = 1000;
        assert_eq!(percentile(&c, 0.99), Some(1_000_000));
    }

    #[test]
    fn a_tick_lands_in_its_bucket_and_actions_wait_for_the_tick() {
        let r = room("r-0-1");
        r.record_tick(7, 150);
        r.record_tick(8, 9_000_000);
        assert_eq!(r.mark().ticks[4], 1);
        assert_eq!(r.mark().ticks[BUCKETS - 1], 1);
        assert!(r.take_actions().is_none(), "nothing asked");
        let m = Monitor::new(1, true, 0);
        let r = m.register(room("r-0-2"));
        r.set_players([1, 2].into_iter(), 0);
        assert_eq!(
            m.request_disconnect("r-0-2", 3),
            Err(ActionError::UnknownPlayer { room: "r-0-2".into(), player: 3 })
        );
        assert_eq!(m.request_close("r-9-9", "x"), Err(ActionError::UnknownRoom("r-9-9".into())));
        m.request_disconnect("r-0-2", 2).unwrap();
        m.request_disconnect("r-0-2", 2).unwrap();
        m.request_close("r-0-2", "closed by an operator").unwrap();
        let a = r.take_actions().expect("requests");
        assert_eq!(a.disconnect, vec![2]);
        assert_eq!(a.close.as_deref(), Some("closed by an operator"));
        assert!(r.take_actions().is_none(), "taken once");
        m.unregister("r-0-2");
        assert_eq!(m.request_close("r-0-2", "x"), Err(ActionError::UnknownRoom("r-0-2".into())));
    }

    #[test]
    fn the_json_has_rates_and_last_minute_figures() {
        let metrics = Metrics::new(1);
        let m = Monitor::new(1, false, 0);
        let r = m.register(room("r-0-1"));
        r.set_players([4].into_iter(), 1);
        m.sample(1_000_000, &metrics);
        for t in 1..=60 {
            r.record_tick(t, 80);
        }
        r.record_bytes(4_000);
        r.record_skipped(2);
        metrics.shard(0).reject(RejectCode::RoomFull);
        m.sample(3_000_000, &metrics);
        let v = m.render(3_000_000, &metrics, "0.1.0");
        let row = &v["rooms"][0];
        assert_eq!(row["room_id"], "r-0-1");
        assert_eq!(row["players"], 1);
        assert_eq!(row["spectators"], 1);
        assert_eq!(row["player_ids"], json!([4]));
        assert_eq!(row["tick"], 60);
        assert_eq!(row["tick_p50_us"], 100);
        assert_eq!(row["skipped_ticks_last_minute"], 2);
        let samples = v["history"]["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[1]["bytes_out_per_s"], 2000.0);
        assert_eq!(samples[1]["tick_p99_us"], 100);
        let room_full =
            v["last_minute"]["rejects"].as_array().unwrap().iter().find(|c| c["code"] == "room_full").unwrap();
        assert_eq!(room_full["count"], 1);
        assert_eq!(v["server"]["admin"], false);
        assert_eq!(v["totals"]["players"], 1);
    }

    #[test]
    fn busy_is_the_cpu_share_of_the_interval() {
        let s = ShardLoad::default();
        s.record(0, 1_000);
        s.record(250_000_000, 1_000_001_000);
        assert!((s.busy() - 0.25).abs() < 1e-9);
    }
}
