//! The writer thread: the only writer of this node's directory entries and
//! the reader of everyone else's. One plain OS thread with one blocking
//! Redis connection (every call bounded by the Redis timeout), so that no
//! shard ever waits on Redis.
//!
//! Each pass it (re)connects when needed, writes the heartbeat and the
//! changed room rows in one pipeline, refreshes the view, fails requests
//! past their deadline, then waits (at most 50 ms) for messages to send:
//! requests to other nodes, replies to them, reservation records.

use super::health::{Counters, Link};
use super::node::{lock, Inner, ToWriter, WriterQueue};
use super::records::{NodeRecord, ReservationRecord, RoomRecord};
use super::requests::RequestError;
use super::view::NodeEntry;
use super::RESERVATION_TTL;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;

/// How often a lost Redis is retried.
pub(crate) const RETRY: Duration = Duration::from_secs(1);

/// The longest the writer sleeps between passes (deadline sweeps).
const TICK: Duration = Duration::from_millis(50);

/// Messages sent in one pipeline at most.
const BATCH: usize = 512;

/// Fields per `HSET` (a node with many changed rooms writes several).
const HSET_CHUNK: usize = 500;

/// A blocking connection to Redis with the node's timeouts.
pub(crate) fn connect(inner: &Inner) -> Result<redis::Connection, String> {
    let timeout = inner.config.io_timeout;
    let client = redis::Client::open(inner.config.redis_url.as_str()).map_err(|e| e.to_string())?;
    let conn = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| format!("cannot reach Redis at {}: {e}", inner.config.redis_display()))?;
    conn.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    Counters::add(&inner.counters.connects, 1);
    Ok(conn)
}

/// The text of a lost connection, for `/healthz`.
pub(crate) fn lost(inner: &Inner, e: &redis::RedisError) -> String {
    Counters::add(&inner.counters.redis_errors, 1);
    format!("lost Redis at {}: {e}", inner.config.redis_display())
}

/// A pipeline and the number of commands in it.
struct Batch {
    pipe: redis::Pipeline,
    commands: u64,
}

impl Batch {
    fn new() -> Self {
        Self { pipe: redis::pipe(), commands: 0 }
    }

    fn add(&mut self, cmd: redis::Cmd, keep: bool) {
        self.pipe.add_command(cmd);
        if !keep {
            self.pipe.ignore();
        }
        self.commands += 1;
    }

    fn run<T: redis::FromRedisValue>(self, inner: &Inner, conn: &mut redis::Connection) -> redis::RedisResult<T> {
        Counters::add(&inner.counters.commands, self.commands);
        Counters::add(&inner.counters.round_trips, 1);
        self.pipe.query(conn)
    }
}

fn cmd(name: &str) -> redis::Cmd {
    redis::cmd(name)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

struct Writer<'a> {
    inner: &'a Arc<Inner>,
    conn: Option<redis::Connection>,
    next_connect: Instant,
    /// Rewrite every row (after a (re)connect, or when Redis lost them).
    resync: bool,
    rooms_rev: u64,
    next_heartbeat: Instant,
    last_flush: Instant,
    next_refresh: Instant,
    /// Other nodes as last read, and when.
    remote: Vec<NodeEntry>,
    read_at: Option<Instant>,
}

/// Runs the writer until the node stops, then leaves the directory.
pub(crate) fn run(inner: &Arc<Inner>, queue: &WriterQueue) {
    let now = Instant::now();
    let mut w = Writer {
        inner,
        conn: None,
        next_connect: now,
        resync: true,
        rooms_rev: 0,
        next_heartbeat: now,
        last_flush: now,
        next_refresh: now,
        remote: Vec::new(),
        read_at: None,
    };
    while !inner.stop.load(Ordering::Relaxed) {
        w.pass();
        let now = Instant::now();
        let mut wake = now + TICK;
        for t in [w.next_heartbeat, w.next_refresh, w.last_flush + inner.config.flush_interval] {
            wake = wake.min(t.max(now));
        }
        if let Some(deadline) = inner.sweep(now) {
            wake = wake.min(deadline.max(now));
        }
        match queue.recv_timeout(wake - now) {
            Ok(first) => {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match queue.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                w.send(batch);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    w.leave();
}

impl Writer<'_> {
    fn pass(&mut self) {
        let now = Instant::now();
        let inner = self.inner;
        if self.conn.is_none() && now >= self.next_connect {
            match connect(inner) {
                Ok(c) => {
                    self.conn = Some(c);
                    self.resync = true;
                    self.next_heartbeat = now;
                    self.next_refresh = now;
                    inner.health.up(Link::Writer);
                }
                Err(why) => self.fail(why),
            }
        }
        if self.conn.is_some() {
            let dirty = !lock(&inner.local).dirty.is_empty();
            let flush_due = dirty && now >= self.last_flush + inner.config.flush_interval;
            if self.resync || flush_due || now >= self.next_heartbeat {
                // A flush may find that Redis lost this node's rows and ask
                // for a full rewrite: do it at once, at most twice a pass.
                for _ in 0..2 {
                    if !self.flush(now) || !self.resync {
                        break;
                    }
                }
            }
        }
        if now >= self.next_refresh {
            self.next_refresh = now + inner.config.refresh_interval;
            if self.conn.is_some() {
                self.refresh();
            }
            if self.read_at.is_some_and(|t| now.duration_since(t) >= inner.config.heartbeat_ttl) {
                // Nothing heard for a heartbeat TTL: every other node's
                // entry would have expired by now; keep only ourselves.
                self.remote.clear();
            }
            inner.publish_view(&self.remote, self.read_at, self.rooms_rev);
        }
    }

    /// Redis is unreachable or lost.
    fn fail(&mut self, why: String) {
        self.conn = None;
        self.next_connect = Instant::now() + RETRY;
        self.inner.fail_remote(&why);
        self.inner.health.down(Link::Writer, why);
    }

    /// Writes changed rows and the heartbeat. False when Redis failed.
    fn flush(&mut self, now: Instant) -> bool {
        let inner = self.inner;
        let keys = &inner.keys;
        let id = &inner.node_id;
        let (upserts, deletes) = {
            let mut local = lock(&inner.local);
            let mut upserts: Vec<(String, String)> = Vec::new();
            let mut deletes: Vec<String> = Vec::new();
            let to_json = |r: &RoomRecord| serde_json::to_string(r).unwrap_or_default();
            if self.resync {
                local.dirty.clear();
                upserts = local.rooms.values().map(|(_, r)| (r.room_id.0.clone(), to_json(r))).collect();
            } else {
                let dirty: Vec<_> = local.dirty.drain().collect();
                for room_id in dirty {
                    match local.rooms.get(&room_id) {
                        Some((_, r)) => upserts.push((room_id.0.clone(), to_json(r))),
                        None => deletes.push(room_id.0),
                    }
                }
            }
            (upserts, deletes)
        };
        if self.resync || !upserts.is_empty() || !deletes.is_empty() {
            self.rooms_rev += 1;
        }
        let record: NodeRecord = lock(&inner.local).record(inner, self.rooms_rev);
        let rooms_key = keys.rooms(id);
        let ttl = millis(inner.config.heartbeat_ttl);
        let mut batch = Batch::new();
        if self.resync {
            batch.add(cmd("DEL").arg(&rooms_key).clone(), false);
        }
        for chunk in upserts.chunks(HSET_CHUNK) {
            let mut c = cmd("HSET");
            c.arg(&rooms_key);
            for (field, value) in chunk {
                c.arg(field).arg(value);
            }
            batch.add(c, false);
        }
        if !deletes.is_empty() {
            batch.add(cmd("HDEL").arg(&rooms_key).arg(&deletes).clone(), false);
        }
        let json = serde_json::to_string(&record).unwrap_or_default();
        // `GET` returns the previous heartbeat: none while we thought we
        // were listed means Redis lost our rows (restarted, flushed).
        batch.add(cmd("SET").arg(keys.node(id)).arg(json).arg("PX").arg(ttl).arg("GET").clone(), true);
        batch.add(cmd("PEXPIRE").arg(&rooms_key).arg(ttl).clone(), false);
        batch.add(cmd("SADD").arg(keys.nodes()).arg(id).clone(), false);
        let Some(conn) = self.conn.as_mut() else { return false };
        match batch.run::<(Option<String>,)>(inner, conn) {
            Ok((previous,)) => {
                Counters::add(&inner.counters.flushes, 1);
                self.last_flush = now;
                self.next_heartbeat = now + inner.config.heartbeat_interval;
                let was_resync = self.resync;
                self.resync = previous.is_none() && !was_resync;
                if self.resync {
                    debug!(node = %id, "cluster: Redis lost this node's rows; rewriting them");
                }
                true
            }
            Err(e) => {
                let why = lost(inner, &e);
                self.fail(why);
                false
            }
        }
    }

    /// Reads the other nodes' heartbeats, and the rooms of those whose rows
    /// changed since the last read.
    fn refresh(&mut self) {
        let inner = self.inner;
        match self.read() {
            Ok(remote) => {
                Counters::add(&inner.counters.refreshes, 1);
                self.remote = remote;
                self.read_at = Some(Instant::now());
            }
            Err(e) => {
                let why = lost(inner, &e);
                self.fail(why);
            }
        }
    }

    fn read(&mut self) -> redis::RedisResult<Vec<NodeEntry>> {
        let inner = self.inner;
        let keys = &inner.keys;
        let Some(conn) = self.conn.as_mut() else { return Ok(self.remote.clone()) };
        let mut batch = Batch::new();
        batch.add(cmd("SMEMBERS").arg(keys.nodes()).clone(), true);
        let (ids,): (Vec<String>,) = batch.run(inner, conn)?;
        let ids: Vec<String> = ids.into_iter().filter(|i| *i != inner.node_id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new();
        batch.add(cmd("MGET").arg(ids.iter().map(|i| keys.node(i)).collect::<Vec<_>>()).clone(), true);
        let (values,): (Vec<Option<String>>,) = batch.run(inner, conn)?;
        let mut dead = Vec::new();
        let mut live: Vec<NodeRecord> = Vec::new();
        for (id, value) in ids.iter().zip(values) {
            match value.map(|v| serde_json::from_str::<NodeRecord>(&v)) {
                None => dead.push(id.clone()),
                Some(Ok(r)) => live.push(r),
                Some(Err(_)) => Counters::add(&inner.counters.bad_records, 1),
            }
        }
        let previous: HashMap<&str, &NodeEntry> = self.remote.iter().map(|n| (n.record.node_id.as_str(), n)).collect();
        let stale: Vec<&NodeRecord> = live
            .iter()
            .filter(|r| {
                previous
                    .get(r.node_id.as_str())
                    .is_none_or(|p| (p.record.epoch, p.record.rooms_rev) != (r.epoch, r.rooms_rev))
            })
            .collect();
        let mut batch = Batch::new();
        if !dead.is_empty() {
            // Their heartbeats expired: forget the ids too.
            batch.add(cmd("SREM").arg(keys.nodes()).arg(&dead).clone(), false);
        }
        for r in &stale {
            batch.add(cmd("HGETALL").arg(keys.rooms(&r.node_id)).clone(), true);
        }
        let tables: Vec<HashMap<String, String>> =
            if batch.commands > 0 { batch.run(inner, conn)? } else { Vec::new() };
        let mut fresh: HashMap<String, Vec<RoomRecord>> = HashMap::new();
        for (r, table) in stale.iter().zip(tables) {
            let mut rooms = Vec::with_capacity(table.len());
            for value in table.values() {
                match serde_json::from_str::<RoomRecord>(value) {
                    Ok(room) => rooms.push(room),
                    Err(_) => Counters::add(&inner.counters.bad_records, 1),
                }
            }
            fresh.insert(r.node_id.clone(), rooms);
        }
        Ok(live
            .into_iter()
            .map(|record| {
                let rooms = fresh
                    .remove(&record.node_id)
                    .or_else(|| previous.get(record.node_id.as_str()).map(|p| p.rooms.clone()))
                    .unwrap_or_default();
                NodeEntry { record, rooms }
            })
            .collect())
    }

    /// Sends queued messages in one pipeline.
    fn send(&mut self, batch_in: Vec<ToWriter>) {
        let inner = self.inner;
        let keys = &inner.keys;
        let Some(conn) = self.conn.as_mut() else {
            for m in batch_in {
                if let ToWriter::Send { request, .. } = m {
                    let why = match inner.health.health() {
                        super::Health::Degraded(why) => why,
                        super::Health::Ok => "not connected to Redis".into(),
                    };
                    inner.complete(request.id, Err(RequestError::Unavailable(why)));
                }
            }
            return;
        };
        let wait = millis(inner.config.request_timeout);
        let mut batch = Batch::new();
        for m in batch_in {
            match m {
                ToWriter::Send { node, request } => {
                    let key = keys.inbox(&node);
                    batch.add(
                        cmd("LPUSH").arg(&key).arg(serde_json::to_string(&request).unwrap_or_default()).clone(),
                        false,
                    );
                    batch.add(cmd("PEXPIRE").arg(&key).arg(wait).clone(), false);
                }
                ToWriter::Reply { node, reply } => {
                    let key = keys.replies(&node);
                    batch.add(
                        cmd("LPUSH").arg(&key).arg(serde_json::to_string(&reply).unwrap_or_default()).clone(),
                        false,
                    );
                    batch.add(cmd("PEXPIRE").arg(&key).arg(wait).clone(), false);
                }
                ToWriter::Reserved { token, room_id } => {
                    let record = ReservationRecord { node_id: inner.node_id.clone(), room_id };
                    let value = serde_json::to_string(&record).unwrap_or_default();
                    let ttl = millis(RESERVATION_TTL);
                    batch.add(cmd("SET").arg(keys.reservation(&token)).arg(value).arg("PX").arg(ttl).clone(), false);
                }
                ToWriter::Redeemed { token } => {
                    batch.add(cmd("DEL").arg(keys.reservation(&token)).clone(), false);
                }
            }
        }
        if let Err(e) = batch.run::<()>(inner, conn) {
            let why = lost(inner, &e);
            self.fail(why);
        }
    }

    /// Deletes this node's entries (best effort, bounded by the Redis
    /// timeout) and fails what still waits.
    fn leave(&mut self) {
        let inner = self.inner;
        if let Some(conn) = self.conn.as_mut() {
            let keys = &inner.keys;
            let id = &inner.node_id;
            let mut batch = Batch::new();
            batch.add(cmd("DEL").arg(keys.node(id)).arg(keys.rooms(id)).clone(), false);
            batch.add(cmd("SREM").arg(keys.nodes()).arg(id).clone(), false);
            if let Err(e) = batch.run::<()>(inner, conn) {
                debug!(error = %e, "cluster: could not leave the directory cleanly; its entries expire");
            }
        }
        let ids: Vec<u64> = lock(&inner.pending).keys().copied().collect();
        for id in ids {
            inner.complete(id, Err(RequestError::ShuttingDown));
        }
    }
}
