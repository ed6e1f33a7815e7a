//! What a shard owns, apart from its sockets and tasks: its rooms, its id
//! counters, its view of the control plane (configuration, metrics, the
//! cross-shard room directory, the stop flag). Requests read and change it;
//! it spawns nothing and never touches a socket (the runtime does).
//!
//! All of it is shard-local (`Rc`, `Cell`, `RefCell`); what crosses shards
//! is [`Shared`].

use crate::cluster::serve::ShardCluster;
use crate::config::ServerConfig;
use crate::directory::Directory;
use crate::game::Game;
use crate::metrics::{Metrics, ShardMetrics};
use crate::monitor::Monitor;
use crate::room::{Room, RoomConfig, RoomSlot};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::{SystemTime, UNIX_EPOCH};
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::{RejectCode, RoomInfo};
use tickforge_protocol::value::ValueMap;

/// What every shard shares (control plane only).
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) metrics: Metrics,
    pub(crate) directory: Directory,
    pub(crate) stop: Arc<AtomicBool>,
    /// The TLS configuration, on a TLS port (reloadable).
    pub(crate) tls: Option<Arc<crate::tls::TlsAcceptor>>,
    /// The cluster this node is in (`--cluster`).
    pub(crate) cluster: Option<crate::cluster::serve::ClusterLink>,
    /// The operator's monitor (`/monitor.json`, admin actions).
    pub(crate) monitor: Monitor,
}

/// One shard's state.
#[derive(Debug)]
pub(crate) struct ShardState {
    pub(crate) id: usize,
    pub(crate) shared: Shared,
    pub(crate) rooms: RefCell<HashMap<RoomId, Rc<RoomSlot>>>,
    draining: Cell<bool>,
    next_room: Cell<u64>,
    next_session: Cell<u64>,
    /// Whether connections may move to another shard (a mesh is up).
    handoffs: Cell<bool>,
    /// Rooms created since the tick schedule last looked, and its task's
    /// waker (a new room may be due before whatever it sleeps for).
    new_rooms: RefCell<Vec<Rc<RoomSlot>>>,
    ticker: RefCell<Option<Waker>>,
    /// This shard's part of the cluster (`--cluster`).
    pub(crate) cluster: Option<ShardCluster>,
}

impl ShardState {
    /// A shard's state.
    pub(crate) fn new(id: usize, shared: Shared) -> Self {
        let cluster = shared.cluster.as_ref().map(ShardCluster::new);
        Self {
            cluster,
            id,
            shared,
            rooms: RefCell::new(HashMap::new()),
            draining: Cell::new(false),
            next_room: Cell::new(1),
            next_session: Cell::new(1),
            handoffs: Cell::new(false),
            new_rooms: RefCell::new(Vec::new()),
            ticker: RefCell::new(None),
        }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// This shard's metrics block.
    pub(crate) fn metrics(&self) -> &ShardMetrics {
        self.shared.metrics.shard(self.id)
    }

    /// A new session id, unique in the process.
    pub(crate) fn new_session_id(&self) -> String {
        let n = self.next_session.get();
        self.next_session.set(n + 1);
        format!("s-{}-{n}", self.id)
    }

    /// Creates a room of `game` with `options` on this shard; the tick
    /// schedule picks it up at its next look.
    ///
    /// # Errors
    /// `overloaded` at the rooms limit or while draining; `refused` when
    /// the game refuses the options; `internal` when it panicked.
    pub(crate) fn create_room(
        &self,
        game: Arc<dyn Game>,
        config: RoomConfig,
        options: ValueMap,
    ) -> Result<Rc<RoomSlot>, (RejectCode, String)> {
        if self.draining.get() {
            return Err((RejectCode::Overloaded, "server shutting down".into()));
        }
        let max = self.config().limits.rooms_per_shard;
        if self.rooms.borrow().len() >= max {
            return Err((RejectCode::Overloaded, format!("this shard already hosts {max} rooms")));
        }
        let n = self.next_room.get();
        self.next_room.set(n + 1);
        // In a cluster, room ids carry the node's tag: unique cluster-wide.
        let id = match &self.cluster {
            Some(k) => RoomId(format!("r-{}-{}-{n}", k.cluster.node_tag(), self.id)),
            None => RoomId(format!("r-{}-{n}", self.id)),
        };
        let seed = n ^ ((self.id as u64) << 48) ^ unix_now_us();
        let mut room = Room::create(id.clone(), game, config, seed, options).inspect_err(|(code, _)| {
            if *code == RejectCode::Internal {
                ShardMetrics::inc(&self.metrics().room_panics);
            }
        })?;
        // The game's create hook may have set metadata: listed from the start.
        room.metadata_update();
        self.count_game(&mut room);
        self.shared.directory.insert(self.id, room.info(), room.is_private(), room.options().clone());
        if let Some(k) = &self.cluster {
            k.cluster.publish_room(self.id, ShardCluster::record(&room, 0));
        }
        let slot = RoomSlot::new(room);
        self.rooms.borrow_mut().insert(id, slot.clone());
        ShardMetrics::gauge(&self.metrics().rooms, 1);
        self.new_rooms.borrow_mut().push(slot.clone());
        let waker = self.ticker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(slot)
    }

    /// Whether rooms were created since the last [`ShardState::take_new_rooms`];
    /// if not, `waker` is woken when one is.
    pub(crate) fn has_new_rooms(&self, waker: &Waker) -> bool {
        if self.new_rooms.borrow().is_empty() {
            *self.ticker.borrow_mut() = Some(waker.clone());
            false
        } else {
            true
        }
    }

    /// Rooms created since the last call.
    pub(crate) fn take_new_rooms(&self) -> Vec<Rc<RoomSlot>> {
        std::mem::take(&mut *self.new_rooms.borrow_mut())
    }

    /// Forgets a room the tick schedule disposed of (closed or empty).
    pub(crate) fn remove_room(&self, id: &RoomId) {
        if self.rooms.borrow_mut().remove(id).is_some() {
            self.shared.directory.remove(id);
            if let Some(k) = &self.cluster {
                k.cluster.remove_room(id);
            }
            ShardMetrics::gauge(&self.metrics().rooms, -1);
        }
    }

    /// The room `id` on this shard.
    pub(crate) fn room(&self, id: &RoomId) -> Option<Rc<RoomSlot>> {
        self.rooms.borrow().get(id).cloned()
    }

    /// Every room on this shard.
    pub(crate) fn all_rooms(&self) -> Vec<Rc<RoomSlot>> {
        self.rooms.borrow().values().cloned().collect()
    }

    /// The public rooms of `game` made with `options` on this shard with
    /// a free seat, fullest first (ties by id, so the order is stable),
    /// at most `max`.
    pub(crate) fn open_rooms(&self, game: &str, options: &ValueMap, max: usize) -> Vec<Rc<RoomSlot>> {
        let mut open: Vec<(usize, RoomId, Rc<RoomSlot>)> = self
            .rooms
            .borrow()
            .values()
            .filter_map(|s| {
                let r = s.room.borrow();
                let fits = r.game_name() == game
                    && !r.is_private()
                    && r.has_free_seat()
                    && r.options() == options
                    && self.has_unreserved_seat(&r);
                fits.then(|| (r.player_count(), r.id().clone(), s.clone()))
            })
            .collect();
        open.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
        open.into_iter().take(max).map(|(_, _, s)| s).collect()
    }

    /// Publishes a room's player count (and its metadata, once changed) to
    /// the directory, and its game's counters to the metrics.
    pub(crate) fn publish(&self, slot: &RoomSlot) {
        let mut room = slot.room.borrow_mut();
        let metadata = room.metadata_update();
        let (players, spectators) = (room.player_count() as u32, room.spectator_count() as u32);
        self.shared.directory.update(room.id(), players, spectators, metadata);
        self.count_game(&mut room);
        if let Some(k) = &self.cluster {
            k.cluster.publish_room(self.id, ShardCluster::record(&room, k.held(room.id())));
        }
    }

    /// Whether `room` has a seat that no reservation holds (always, outside
    /// a cluster).
    pub(crate) fn has_unreserved_seat(&self, room: &Room) -> bool {
        let held = crate::cluster::serve::held_in(self, room.id());
        room.player_count() as u32 + held < room.config().max_players
    }

    /// Moves a room's game counters (slow hooks, events, panics) into this
    /// shard's metrics: after every tick, and when the room is published.
    pub(crate) fn count_game(&self, room: &mut Room) {
        let stats = room.take_game_stats();
        if stats.is_empty() {
            return;
        }
        let m = self.metrics();
        for (counter, &n) in m.game_hooks_slow.iter().zip(&stats.slow_hooks) {
            ShardMetrics::add(counter, u64::from(n));
        }
        ShardMetrics::add(&m.game_events, stats.events_sent);
        ShardMetrics::add(&m.game_events_dropped, stats.events_dropped);
        ShardMetrics::add(&m.room_panics, u64::from(stats.panics));
    }

    /// The public rooms of every shard (optionally of one game, and
    /// matching a metadata filter); in a cluster, of every live node.
    pub(crate) fn list_rooms(&self, game: Option<&str>, filter: Option<&ValueMap>) -> Vec<RoomInfo> {
        let local = self.shared.directory.list(game, filter);
        match &self.cluster {
            Some(k) => crate::cluster::serve::list_rooms(&k.cluster, game, filter, local),
            None => local,
        }
    }

    /// Marks hand-offs to other shards as possible (the mesh is up).
    pub(crate) fn enable_handoffs(&self) {
        self.handoffs.set(self.shared.config.shards > 1);
    }

    /// Whether connections may move to another shard.
    pub(crate) fn can_hand_off(&self) -> bool {
        self.handoffs.get()
    }

    /// Whether shard `other` is at its connection limit, by its (shared,
    /// slightly stale) connections gauge: a join is not handed there then,
    /// so hand-offs cannot carry a shard past its limit by more than the
    /// few in flight at once.
    pub(crate) fn is_full(&self, other: usize) -> bool {
        let open = self.shared.metrics.shard(other).connections.load(Ordering::Relaxed);
        u64::try_from(open).unwrap_or(0) >= self.config().connections_per_shard() as u64
    }

    /// Starts refusing new rooms and connections (shutdown).
    pub(crate) fn start_draining(&self) {
        self.draining.set(true);
    }

    /// Whether new connections should be refused (503).
    pub(crate) fn refusing(&self) -> bool {
        self.draining.get()
    }
}

/// The Unix time in microseconds.
pub(crate) fn unix_now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
