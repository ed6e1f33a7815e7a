//! [`Cluster`]: this node's membership in the cluster, shared by its
//! shards. Every method returns at once: what needs Redis is queued for the
//! helper threads ([`super::writer`], [`super::listener`]) and what needs an
//! answer is a future they fill.

use super::config::ClusterConfig;
use super::health::{ClusterStats, Counters, Health, HealthState, Link};
use super::records::{Ask, JsonMap, Keys, NodeRecord, NodeReply, NodeRequest, Refusal, RoomRecord, Seat};
use super::requests::{IncomingRequest, ReplyTo, RequestError, SeatResult, ShardInbox};
use super::reservations::Reservation;
use super::view::{ClusterView, NodeEntry};
use super::wake::{mailbox, reply, MailboxSender, ReplyFuture, ReplySender};
use super::{listener, writer};
use crate::config::ConfigError;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;
use thiserror::Error;
use tickforge_protocol::ids::RoomId;
use tracing::debug;

/// Messages from any thread to the writer thread.
#[derive(Debug)]
pub(crate) enum ToWriter {
    /// Push a request on another node's inbox.
    Send { node: String, request: NodeRequest },
    /// Push a reply on another node's replies list.
    Reply { node: String, reply: NodeReply },
    /// Record a new reservation (`{p}:resv:{token}`).
    Reserved { token: String, room_id: RoomId },
    /// Forget a used reservation.
    Redeemed { token: String },
}

/// An outgoing request awaiting its answer.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) node: String,
    pub(crate) deadline: Instant,
    pub(crate) reply: ReplySender<SeatResult>,
}

/// This node's own rooms and load, as the shards publish them.
#[derive(Debug, Default)]
pub(crate) struct LocalTable {
    /// Room id to (hosting shard, row).
    pub(crate) rooms: HashMap<RoomId, (usize, RoomRecord)>,
    /// Rooms changed (or removed) since the last flush.
    pub(crate) dirty: HashSet<RoomId>,
    pub(crate) capacity: u32,
    pub(crate) draining: bool,
}

impl LocalTable {
    /// This node's entry in a view: its heartbeat and its rooms.
    pub(crate) fn entry(&self, inner: &Inner, rooms_rev: u64) -> NodeEntry {
        let rooms: Vec<RoomRecord> = self.rooms.values().map(|(_, r)| r.clone()).collect();
        NodeEntry { record: self.record(inner, rooms_rev), rooms }
    }

    pub(crate) fn record(&self, inner: &Inner, rooms_rev: u64) -> NodeRecord {
        NodeRecord {
            node_id: inner.node_id.clone(),
            url: inner.config.public_url.clone(),
            players: self.rooms.values().map(|(_, r)| r.players).sum(),
            capacity: self.capacity,
            rooms: u32::try_from(self.rooms.len()).unwrap_or(u32::MAX),
            draining: self.draining,
            epoch: inner.epoch,
            rooms_rev,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The shard with the fewest players (then rooms), for a new room.
    fn least_loaded_shard(&self, shards: usize) -> usize {
        let mut load = vec![(0u64, 0u64); shards.max(1)];
        for (shard, r) in self.rooms.values() {
            if let Some(l) = load.get_mut(*shard) {
                l.0 += u64::from(r.players);
                l.1 += 1;
            }
        }
        (0..load.len()).min_by_key(|&i| (load[i], i)).unwrap_or(0)
    }
}

/// What the handle and the helper threads share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: ClusterConfig,
    pub(crate) node_id: String,
    pub(crate) keys: Keys,
    /// Random per start (see [`NodeRecord::epoch`]).
    pub(crate) epoch: u64,
    pub(crate) view: Mutex<Arc<ClusterView>>,
    pub(crate) local: Mutex<LocalTable>,
    pub(crate) health: HealthState,
    pub(crate) counters: Counters,
    pub(crate) pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    pub(crate) to_writer: SyncSender<ToWriter>,
    inboxes: Vec<MailboxSender<IncomingRequest>>,
    pub(crate) stop: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here are map operations and swaps: a panic in one
    // cannot leave the data half-changed, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Sends `result` where `to` says (never blocks).
    pub(crate) fn answer(&self, to: ReplyTo, result: Result<Reservation, Refusal>) {
        Counters::add(&self.counters.requests_served, 1);
        let result = result.map(|r| {
            let _ = self.to_writer.try_send(ToWriter::Reserved { token: r.token.clone(), room_id: r.room_id.clone() });
            Seat { url: self.config.public_url.clone(), room_id: r.room_id, reservation: r.token }
        });
        match to {
            ReplyTo::Local { id } => {
                self.complete(
                    id,
                    result.map_err(|refusal| RequestError::Refused { node: self.node_id.clone(), refusal }),
                );
            }
            ReplyTo::Node { node, id } => {
                let reply = NodeReply { id, from: self.node_id.clone(), result };
                // A full queue drops the reply: the asker times out (bounded).
                if self.to_writer.try_send(ToWriter::Reply { node, reply }).is_err() {
                    debug!("cluster: writer queue full; a reply was dropped");
                }
            }
        }
    }

    /// Completes pending request `id` (a no-op when it already timed out).
    pub(crate) fn complete(&self, id: u64, result: SeatResult) -> bool {
        let Some(p) = lock(&self.pending).remove(&id) else {
            Counters::add(&self.counters.late_replies, 1);
            return false;
        };
        let counter = match &result {
            Ok(_) => &self.counters.requests_ok,
            Err(RequestError::Refused { .. }) => &self.counters.requests_refused,
            Err(RequestError::Timeout { .. }) => &self.counters.requests_timed_out,
            Err(_) => &self.counters.requests_failed,
        };
        Counters::add(counter, 1);
        p.reply.fill(result);
        true
    }

    /// Fails every pending request whose deadline passed; returns the
    /// earliest deadline left.
    pub(crate) fn sweep(&self, now: Instant) -> Option<Instant> {
        let expired: Vec<(u64, String)> = {
            let pending = lock(&self.pending);
            pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, p)| (*id, p.node.clone())).collect()
        };
        for (id, node) in expired {
            self.complete(id, Err(RequestError::Timeout { node, after: self.config.request_timeout }));
        }
        lock(&self.pending).values().map(|p| p.deadline).min()
    }

    /// Fails every pending request to another node (Redis is lost: their
    /// answers cannot come).
    pub(crate) fn fail_remote(&self, reason: &str) {
        let ids: Vec<u64> =
            lock(&self.pending).iter().filter(|(_, p)| p.node != self.node_id).map(|(id, _)| *id).collect();
        for id in ids {
            self.complete(id, Err(RequestError::Unavailable(reason.to_owned())));
        }
    }

    /// Hands a request to the shard that should answer it. Requests for a
    /// room go to its shard; a new room goes to the least-loaded shard.
    pub(crate) fn dispatch(self: &Arc<Self>, ask: Ask, reply_to: ReplyTo) {
        let shard = {
            let local = lock(&self.local);
            match &ask {
                Ask::Reserve { room_id } => local.rooms.get(room_id).map(|(shard, _)| *shard),
                Ask::Create { .. } => Some(local.least_loaded_shard(self.inboxes.len())),
            }
        };
        let request = IncomingRequest { ask, reply_to: Some(reply_to), inner: self.clone() };
        let Some(shard) = shard else {
            let Ask::Reserve { room_id } = &request.ask else { unreachable!("only reserve has no shard") };
            let why = Refusal::new(super::RefuseCode::NotFound, format!("no room {room_id} on {}", self.node_id));
            let mut request = request;
            if let Some(to) = request.reply_to.take() {
                self.answer(to, Err(why));
            }
            return;
        };
        match self.inboxes.get(shard).map(|tx| tx.try_send(request)) {
            Some(Ok(())) => {}
            Some(Err(mut request)) => {
                let why = Refusal::new(
                    super::RefuseCode::Overloaded,
                    format!("{} cannot take more cluster requests now", self.node_id),
                );
                if let Some(to) = request.reply_to.take() {
                    self.answer(to, Err(why));
                }
            }
            None => {}
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Rebuilds the view from `remote` (other nodes as last read) and this
    /// node's own table, and swaps it in.
    pub(crate) fn publish_view(&self, remote: &[NodeEntry], read_at: Option<Instant>, rooms_rev: u64) {
        let mut nodes: Vec<NodeEntry> = remote.iter().filter(|n| n.record.node_id != self.node_id).cloned().collect();
        nodes.push(lock(&self.local).entry(self, rooms_rev));
        *lock(&self.view) = Arc::new(ClusterView::new(&self.node_id, nodes, read_at));
    }
}

/// Why the cluster could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterStartError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A helper thread could not be spawned.
    #[error("cannot start the cluster threads: {0}")]
    Thread(#[from] std::io::Error),
}

/// Stops and joins the helper threads when the last handle goes.
#[derive(Debug)]
struct Life {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Life {
    fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        self.stop();
    }
}

/// This node's membership in a cluster: its published rooms and load, its
/// view of the others, and requests to them. Cheap to clone; `Send` and
/// `Sync`; no method blocks on Redis.
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: Arc<Inner>,
    life: Arc<Life>,
}

impl Cluster {
    /// Joins the cluster: validates `config`, starts the writer and listener
    /// threads, and returns at once (Redis is reached in the background:
    /// until then, and whenever it is lost, [`Cluster::health`] is
    /// degraded). Returns one [`ShardInbox`] per shard of this process.
    ///
    /// # Errors
    /// [`ClusterStartError`] for a bad setting or a thread that cannot start.
    pub fn start(config: ClusterConfig, shards: usize) -> Result<(Self, Vec<ShardInbox>), ClusterStartError> {
        config.validate()?;
        let node_id = config.effective_node_id();
        let (to_writer, from_shards) = sync_channel(config.max_in_flight * 2 + 64);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards.max(1)).map(|_| mailbox(config.shard_inbox)).unzip();
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
        let inner = Arc::new(Inner {
            keys: Keys::new(&config.prefix),
            health: HealthState::new(config.redis_display()),
            node_id: node_id.clone(),
            epoch: u64::from_le_bytes(seed) >> 1,
            view: Mutex::new(Arc::new(ClusterView::new(&node_id, Vec::new(), None))),
            local: Mutex::new(LocalTable::default()),
            counters: Counters::default(),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            to_writer,
            inboxes: senders,
            stop: AtomicBool::new(false),
            config,
        });
        inner.publish_view(&[], None, 0);
        let life = Arc::new(Life { inner: inner.clone(), threads: Mutex::new(Vec::new()) });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| std::thread::Builder::new().name(name.into()).spawn(f);
        let w = {
            let inner = inner.clone();
            spawn("tickforge-cluster-writer", Box::new(move || writer::run(&inner, &from_shards)))?
        };
        lock(&life.threads).push(w);
        let l = {
            let inner = inner.clone();
            spawn("tickforge-cluster-listener", Box::new(move || listener::run(&inner)))?
        };
        lock(&life.threads).push(l);
        Ok((Self { inner, life }, receivers))
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// A short tag unique to this process start (8 hex digits): room ids
    /// must carry it (`r-{tag}-{shard}-{n}`) to be unique in the cluster.
    #[must_use]
    pub fn node_tag(&self) -> String {
        format!("{:08x}", self.inner.epoch as u32)
    }

    /// The address clients reach this node at.
    #[must_use]
    pub fn public_url(&self) -> &str {
        &self.inner.config.public_url
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The cluster as last read (at most the refresh interval old while
    /// Redis answers; other nodes drop out of it a heartbeat TTL after
    /// Redis was last reached). Never waits on Redis.
    #[must_use]
    pub fn view(&self) -> Arc<ClusterView> {
        lock(&self.inner.view).clone()
    }

    /// Whether Redis is reached, and why not.
    #[must_use]
    pub fn health(&self) -> Health {
        self.inner.health.health()
    }

    /// The node's cluster figures.
    #[must_use]
    pub fn stats(&self) -> ClusterStats {
        let mut s = self.inner.counters.snapshot();
        s.degraded = self.health() != Health::Ok;
        let view = self.view();
        s.live_nodes = view.nodes().count() as u64;
        s.listed_rooms = view.list(None, None).len() as u64;
        s
    }

    /// Publishes (or updates) a room of shard `shard`. Cheap: it marks the
    /// row for the next batch (at most one write per room per
    /// flush interval, however often it changes); an unchanged row is not
    /// rewritten.
    pub fn publish_room(&self, shard: usize, record: RoomRecord) {
        let mut local = lock(&self.inner.local);
        if local.rooms.get(&record.room_id).is_some_and(|(s, r)| *s == shard && *r == record) {
            return;
        }
        local.dirty.insert(record.room_id.clone());
        local.rooms.insert(record.room_id.clone(), (shard, record));
    }

    /// Removes a room from the directory (disposed of, closed).
    pub fn remove_room(&self, room_id: &RoomId) {
        let mut local = lock(&self.inner.local);
        if local.rooms.remove(room_id).is_some() {
            local.dirty.insert(room_id.clone());
        }
    }

    /// This node's players now (in its published rooms, however recently
    /// changed: not the view's copy, which is up to a refresh old).
    #[must_use]
    pub fn local_players(&self) -> u32 {
        lock(&self.inner.local).rooms.values().map(|(_, r)| r.players).sum()
    }

    /// Sets the players this node can hold (its connection limit).
    pub fn set_capacity(&self, capacity: u32) {
        lock(&self.inner.local).capacity = capacity;
    }

    /// Marks the node as draining: no new rooms are sent its way.
    pub fn set_draining(&self, draining: bool) {
        lock(&self.inner.local).draining = draining;
    }

    /// Records that a reservation was used (its Redis record is deleted in
    /// the next batch).
    pub fn reservation_redeemed(&self, token: &str) {
        let _ = self.inner.to_writer.try_send(ToWriter::Redeemed { token: token.to_owned() });
    }

    /// Asks `node_id` to hold a seat in its room `room_id`. Returns at once;
    /// the future resolves within the request timeout (plus at most one
    /// Redis I/O timeout). This node itself is asked without Redis.
    pub fn reserve_on(&self, node_id: &str, room_id: &RoomId) -> ReplyFuture<SeatResult> {
        self.ask(node_id, Ask::Reserve { room_id: room_id.clone() })
    }

    /// Asks `node_id` to create a room of `game` with `options` and hold a
    /// seat in it. As [`Cluster::reserve_on`].
    pub fn create_on(&self, node_id: &str, game: &str, options: &JsonMap) -> ReplyFuture<SeatResult> {
        self.ask(node_id, Ask::Create { game: game.to_owned(), options: options.clone() })
    }

    fn ask(&self, node_id: &str, ask: Ask) -> ReplyFuture<SeatResult> {
        let inner = &self.inner;
        Counters::add(&inner.counters.requests_sent, 1);
        let fail = |e: RequestError| {
            Counters::add(&inner.counters.requests_failed, 1);
            ReplyFuture::ready(Err(e))
        };
        if inner.stop.load(Ordering::Relaxed) {
            return fail(RequestError::ShuttingDown);
        }
        let local = node_id == inner.node_id;
        if !local {
            if !(inner.health.is_up(Link::Writer) && inner.health.is_up(Link::Listener)) {
                let why = match inner.health.health() {
                    Health::Degraded(why) => why,
                    Health::Ok => "Redis not reached yet".into(),
                };
                return fail(RequestError::Unavailable(why));
            }
            if self.view().node(node_id).is_none() {
                return fail(RequestError::UnknownNode(node_id.to_owned()));
            }
        }
        let (tx, rx) = reply();
        let id = inner.next_id();
        {
            let mut pending = lock(&inner.pending);
            if pending.len() >= inner.config.max_in_flight {
                drop(pending);
                return fail(RequestError::Overloaded(inner.config.max_in_flight));
            }
            let deadline = Instant::now() + inner.config.request_timeout;
            pending.insert(id, Pending { node: node_id.to_owned(), deadline, reply: tx });
        }
        if local {
            inner.dispatch(ask, ReplyTo::Local { id });
        } else {
            let request = NodeRequest { id, from: inner.node_id.clone(), ask };
            match inner.to_writer.try_send(ToWriter::Send { node: node_id.to_owned(), request }) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    inner.complete(id, Err(RequestError::Overloaded(inner.config.max_in_flight)));
                }
            }
        }
        rx
    }

    /// Leaves the cluster: deletes this node's heartbeat and rooms from
    /// Redis (bounded by the Redis timeout), stops the helper threads and
    /// fails requests still waiting. Blocks for at most about two Redis
    /// timeouts: call it from the thread that stops the server, not a shard.
    pub fn shutdown(&self) {
        self.life.stop();
    }
}

/// The receiving end of the writer's queue.
pub(crate) type WriterQueue = Receiver<ToWriter>;
