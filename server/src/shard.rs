//! One shard: a pinned glommio executor that accepts on the shared port,
//! owns its connections (bounded by a permit count) and its rooms, runs a
//! tick task per room, and drains on shutdown.
//!
//! All state here is shard-local (`Rc`, `Cell`, `RefCell`); what crosses
//! shards is the [`Shared`] control plane: the configuration, the metrics
//! blocks, the room directory, the stop flag and the hand-off mesh.

use crate::config::ServerConfig;
use crate::directory::Directory;
use crate::game::Game;
use crate::metrics::{Metrics, ShardMetrics};
use crate::outbox::Outbox;
use crate::relocate::{self, LocalMesh, SharedMesh};
use crate::room::{Room, RoomConfig};
use crate::schedule::{stagger_offset_ns, Schedule};
use futures_lite::FutureExt as _;
use glommio::net::TcpListener;
use glommio::sync::Semaphore;
use glommio::timer::sleep;
use slab::Slab;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::os::fd::{FromRawFd as _, IntoRawFd as _};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::{RejectCode, RoomInfo};
use tickforge_protocol::CloseReason;
use tracing::{debug, info, warn};

/// Connections over the limit that may still be answered 503 at once;
/// beyond these, extra connections are dropped without an answer.
const OVERFLOW_ANSWERS: u64 = 64;

/// What every shard shares (control plane only).
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) metrics: Metrics,
    pub(crate) directory: Directory,
    pub(crate) stop: Arc<AtomicBool>,
}

/// A room on this shard and its tick task's bookkeeping.
#[derive(Debug)]
pub(crate) struct RoomSlot {
    pub(crate) room: RefCell<Room>,
}

/// One shard's state.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) id: usize,
    pub(crate) shared: Shared,
    pub(crate) rooms: RefCell<HashMap<RoomId, Rc<RoomSlot>>>,
    /// Every open WebSocket connection's outbox (to close them on drain).
    pub(crate) conns: RefCell<Slab<Rc<Outbox>>>,
    pub(crate) draining: Cell<bool>,
    pub(crate) permits: Rc<Semaphore>,
    overflow: Rc<Semaphore>,
    epoch: Instant,
    next_room: Cell<u64>,
    next_session: Cell<u64>,
    /// The buffer every connection of this shard reads its socket into
    /// (then keeps only the bytes that arrived).
    pub(crate) scratch: RefCell<Vec<u8>>,
    /// Sending ends to the other shards, for hand-offs.
    pub(crate) mesh: OnceCell<LocalMesh>,
}

impl Shard {
    fn new(id: usize, shared: Shared) -> Self {
        let limit = shared.config.connections_per_shard() as u64;
        Self {
            id,
            shared,
            rooms: RefCell::new(HashMap::new()),
            conns: RefCell::new(Slab::new()),
            draining: Cell::new(false),
            permits: Rc::new(Semaphore::new(limit)),
            overflow: Rc::new(Semaphore::new(OVERFLOW_ANSWERS)),
            epoch: Instant::now(),
            next_room: Cell::new(1),
            next_session: Cell::new(1),
            scratch: RefCell::new(vec![0; 16 * 1024]),
            mesh: OnceCell::new(),
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

    /// Nanoseconds on this shard's monotonic clock.
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A new session id, unique in the process.
    pub(crate) fn new_session_id(&self) -> String {
        let n = self.next_session.get();
        self.next_session.set(n + 1);
        format!("s-{}-{n}", self.id)
    }

    /// Creates a room of `game` on this shard and starts its tick task.
    ///
    /// # Errors
    /// `overloaded` at the rooms limit or while draining.
    pub(crate) fn create_room(
        self: &Rc<Self>,
        game: Arc<dyn Game>,
        config: RoomConfig,
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
        let id = RoomId(format!("r-{}-{n}", self.id));
        let seed = n ^ ((self.id as u64) << 48) ^ unix_now_us();
        let room = Room::new(id.clone(), game, config, seed);
        self.shared.directory.insert(self.id, room.info(), room.is_private());
        let slot = Rc::new(RoomSlot { room: RefCell::new(room) });
        self.rooms.borrow_mut().insert(id, slot.clone());
        ShardMetrics::gauge(&self.metrics().rooms, 1);
        let (shard, task_slot) = (self.clone(), slot.clone());
        glommio::spawn_local(async move {
            // Game panics are caught by `Room::tick`; this catches anything
            // else, so that one room's fault never takes down the shard.
            let task = AssertUnwindSafe(run_room(shard.clone(), task_slot.clone(), n));
            if task.catch_unwind().await.is_err() {
                let room_id = task_slot.room.borrow().id().clone();
                warn!(shard = shard.id, room = %room_id, "room task panicked; room closed");
                ShardMetrics::inc(&shard.metrics().room_panics);
                task_slot.room.borrow_mut().close("internal error");
                if shard.rooms.borrow_mut().remove(&room_id).is_some() {
                    shard.shared.directory.remove(&room_id);
                    ShardMetrics::gauge(&shard.metrics().rooms, -1);
                }
            }
        })
        .detach();
        Ok(slot)
    }

    /// The fullest public room of `game` on this shard with a free seat.
    pub(crate) fn fullest_open_room(&self, game: &str) -> Option<Rc<RoomSlot>> {
        self.rooms
            .borrow()
            .values()
            .filter(|s| {
                let r = s.room.borrow();
                r.game_name() == game && !r.is_private() && r.has_free_seat()
            })
            .max_by_key(|s| s.room.borrow().player_count())
            .cloned()
    }

    /// Publishes a room's player count to the directory.
    pub(crate) fn publish(&self, slot: &RoomSlot) {
        let room = slot.room.borrow();
        self.shared.directory.update(room.id(), room.player_count() as u32);
    }

    /// The public rooms of every shard (optionally of one game).
    pub(crate) fn list_rooms(&self, game: Option<&str>) -> Vec<RoomInfo> {
        self.shared.directory.list(game)
    }

    /// Whether connections may move to another shard (more than one shard).
    pub(crate) fn can_hand_off(&self) -> bool {
        self.shared.config.shards > 1 && self.mesh.get().is_some()
    }

    /// Whether shard `other` is at its connection limit, by its (shared,
    /// slightly stale) connections gauge: a join is not handed there then,
    /// so hand-offs cannot carry a shard past its limit by more than the
    /// few in flight at once.
    pub(crate) fn is_full(&self, other: usize) -> bool {
        let open = self.shared.metrics.shard(other).connections.load(Ordering::Relaxed);
        u64::try_from(open).unwrap_or(0) >= self.config().connections_per_shard() as u64
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

/// A room's tick task: ticks on the drift-free schedule at a staggered
/// phase, records durations and overruns, closes the room on a game panic
/// or shutdown, and disposes of it after the empty-room grace period.
async fn run_room(shard: Rc<Shard>, slot: Rc<RoomSlot>, index: u64) {
    let (hz, room_id) = {
        let r = slot.room.borrow();
        (r.config().tick_hz, r.id().clone())
    };
    let period_ns = 1_000_000_000 / u64::from(hz);
    let mut schedule = Schedule::new(shard.now_ns() + stagger_offset_ns(index, hz), hz);
    let grace_ns = u64::try_from(shard.config().empty_room_grace.as_nanos()).unwrap_or(u64::MAX);
    let mut empty_since: Option<u64> = Some(shard.now_ns());
    let mut published = 0usize;
    loop {
        let now = shard.now_ns();
        let due = schedule.next_due();
        if due > now {
            sleep(Duration::from_nanos(due - now)).await;
        } else {
            // Late (the shard was busy): let the writers send the previous
            // tick before this one replaces it in their outboxes.
            futures_lite::future::yield_now().await;
        }
        if slot.room.borrow().closed().is_some() {
            break;
        }
        let started = shard.now_ns();
        let report = slot.room.borrow_mut().tick(unix_now_us());
        let ended = shard.now_ns();
        let skipped = schedule.advance(ended);
        let m = shard.metrics();
        m.tick((ended - started) / 1000, period_ns / 1000);
        ShardMetrics::add(&m.slots_skipped, skipped);
        if let Some(panic) = report.panicked {
            ShardMetrics::inc(&m.room_panics);
            warn!(shard = shard.id, room = %room_id, %panic, "game panicked; room closed");
            break;
        }
        let players = report.players;
        if players != published {
            ShardMetrics::gauge(&m.players, players as i64 - published as i64);
            published = players;
            shard.publish(&slot);
        }
        if players == 0 {
            let since = *empty_since.get_or_insert(ended);
            if ended.saturating_sub(since) >= grace_ns {
                debug!(shard = shard.id, room = %room_id, "empty room disposed of");
                break;
            }
        } else {
            empty_since = None;
        }
    }
    slot.room.borrow_mut().close("room disposed of");
    ShardMetrics::gauge(&shard.metrics().players, -(published as i64));
    shard.rooms.borrow_mut().remove(&room_id);
    shard.shared.directory.remove(&room_id);
    ShardMetrics::gauge(&shard.metrics().rooms, -1);
}

/// Runs one shard until the stop flag is set and its connections drained.
/// Its id is its index in the hand-off mesh; it claims one of `listeners`.
pub(crate) async fn run_shard(shared: Shared, listeners: Arc<crate::Listeners>, mesh: SharedMesh) {
    // Claimed before joining: a shard that cannot join closes its listener
    // (the drop), so the kernel stops routing connections to it.
    let Some(fd) = listeners.claim() else {
        warn!("no listening socket left for this shard");
        return;
    };
    let Some((id, senders, receivers)) = relocate::join(mesh).await else {
        warn!("shard could not join the hand-off mesh; its listener is closed");
        return;
    };
    // SAFETY: a bound, listening TCP socket (see `crate::bind_listeners`)
    // whose ownership this shard took from `listeners`.
    let listener = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
    let shard = Rc::new(Shard::new(id, shared));
    let _ = shard.mesh.set(senders);
    relocate::start(&shard, receivers);
    info!(shard = id, "shard {id} serving on {}", listener.local_addr().map(|a| a.to_string()).unwrap_or_default());

    let accept = glommio::spawn_local({
        let shard = shard.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let m = shard.metrics();
                        ShardMetrics::inc(&m.accepted);
                        match shard.permits.try_acquire_static_permit(1) {
                            Ok(permit) => {
                                glommio::spawn_local(crate::conn::serve(shard.clone(), stream, Some(permit))).detach();
                            }
                            Err(_) => match shard.overflow.try_acquire_static_permit(1) {
                                Ok(permit) => {
                                    let shard = shard.clone();
                                    glommio::spawn_local(async move {
                                        crate::conn::serve(shard, stream, None).await;
                                        drop(permit);
                                    })
                                    .detach();
                                }
                                Err(_) => drop(stream),
                            },
                        }
                    }
                    Err(e) => {
                        warn!(shard = id, error = %e, "accept failed");
                        sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    });

    while !shard.shared.stop.load(Ordering::Relaxed) {
        sleep(Duration::from_millis(25)).await;
    }
    drain(&shard).await;
    drop(accept);
    info!(shard = id, "shard {id} stopped");
}

/// Graceful shutdown of one shard: refuse new work, close every room with
/// `room_closing`, close every connection with 1001, and wait for them (at
/// most the drain timeout).
async fn drain(shard: &Rc<Shard>) {
    shard.draining.set(true);
    let rooms: Vec<_> = shard.rooms.borrow().values().cloned().collect();
    for slot in &rooms {
        slot.room.borrow_mut().close("server shutting down");
    }
    let conns: Vec<_> = shard.conns.borrow().iter().map(|(_, o)| o.clone()).collect();
    info!(shard = shard.id, rooms = rooms.len(), connections = conns.len(), "draining");
    for outbox in conns {
        outbox.close(CloseReason::ShuttingDown);
    }
    let deadline = Instant::now() + shard.config().drain_timeout;
    while !shard.conns.borrow().is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    let left = shard.conns.borrow().len();
    if left > 0 {
        warn!(shard = shard.id, connections = left, "drain timeout: dropping connections");
    }
}
