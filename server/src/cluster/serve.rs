//! The server's side of the cluster: what a shard does with the
//! [`Cluster`] handle. It publishes the shard's rooms, keeps the shard's
//! seat reservations, answers other nodes' requests for the shard's rooms,
//! lists the rooms of every node, and turns a join of a room elsewhere into
//! a `redirect`.
//!
//! Nothing here waits on Redis: a request to another node is a future the
//! connection polls with its socket ([`Later`]), and everything else reads
//! the view or queues a row.

use super::records::{JsonMap, RefuseCode, RoomRecord};
use super::requests::{RequestError, SeatOwner, SeatResult, ShardInbox};
use super::reservations::{Reservation, ReservationBook, ReservationError};
use super::view::RoomRef;
use super::{Cluster, Refusal};
use crate::room::{Room, RoomSlot};
use crate::shard_state::ShardState;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::{Confirm, RejectCode, RoomInfo};
use tickforge_protocol::value::ValueMap;

/// Seat reservations one shard keeps at most (live ones, and used or
/// expired ones remembered for a clear "used"/"expired" answer): a bound
/// on the book's memory, about 100 bytes a token. Beyond it a request for
/// a seat here is refused as `overloaded`.
pub(crate) const MAX_RESERVATIONS_PER_SHARD: usize = 16_384;

/// How often a shard releases the seats of expired reservations and
/// republishes the rooms whose free seats changed.
const EXPIRY_SWEEP: Duration = Duration::from_millis(250);

/// The cluster as the runtime hands it to the shards: the handle and each
/// shard's inbox, taken once by the shard it belongs to.
#[derive(Clone, Debug)]
pub(crate) struct ClusterLink {
    /// The node's membership.
    pub(crate) cluster: Cluster,
    inboxes: Arc<Mutex<Vec<Option<ShardInbox>>>>,
}

impl ClusterLink {
    /// The link for a node whose shards' inboxes are `inboxes` (by shard id).
    pub(crate) fn new(cluster: Cluster, inboxes: Vec<ShardInbox>) -> Self {
        Self { cluster, inboxes: Arc::new(Mutex::new(inboxes.into_iter().map(Some).collect())) }
    }

    /// Shard `id`'s inbox (once).
    fn take_inbox(&self, id: usize) -> Option<ShardInbox> {
        super::node::lock(&self.inboxes).get_mut(id).and_then(Option::take)
    }
}

/// One shard's part of the cluster: the handle and the shard's reservations.
#[derive(Debug)]
pub(crate) struct ShardCluster {
    /// The node's membership.
    pub(crate) cluster: Cluster,
    link: ClusterLink,
    book: RefCell<ReservationBook>,
    /// Players this shard sent to each other node (and to each remote room)
    /// since the view of that instant was read: their load as this shard
    /// reckons it until the next read.
    sent: RefCell<(Option<Instant>, HashMap<String, u32>)>,
}

impl ShardCluster {
    /// A shard's part of the cluster of `link`.
    pub(crate) fn new(link: &ClusterLink) -> Self {
        Self {
            cluster: link.cluster.clone(),
            link: link.clone(),
            book: RefCell::new(ReservationBook::new(MAX_RESERVATIONS_PER_SHARD)),
            sent: RefCell::new((None, HashMap::new())),
        }
    }

    /// Players sent to `node` since the view of `read_at` was read.
    fn sent_to(&self, node: &str, read_at: Option<Instant>) -> u32 {
        let mut sent = self.sent.borrow_mut();
        if sent.0 != read_at {
            *sent = (read_at, HashMap::new());
        }
        sent.1.get(node).copied().unwrap_or(0)
    }

    /// Counts a player sent to `node` (counted against the current view).
    fn sending_to(&self, node: &str) {
        let read_at = self.cluster.view().read_at();
        let mut sent = self.sent.borrow_mut();
        if sent.0 != read_at {
            *sent = (read_at, HashMap::new());
        }
        *sent.1.entry(node.to_owned()).or_default() += 1;
    }

    /// The least-loaded live node by share of capacity, this one included
    /// (it wins a tie): this node's load as it is now, the others' as last
    /// read plus the players this shard sent them since. `None`: every node
    /// is full or draining.
    pub(crate) fn least_loaded(&self) -> Option<String> {
        let view = self.cluster.view();
        let me = self.cluster.node_id();
        let read_at = view.read_at();
        let candidates: Vec<(u64, u64, bool, String)> = view
            .nodes()
            .filter(|n| !n.draining)
            .map(|n| {
                let players = if n.node_id == me {
                    self.cluster.local_players()
                } else {
                    n.players.saturating_add(self.sent_to(&n.node_id, read_at))
                };
                (u64::from(players), u64::from(n.capacity), n.node_id == me, n.node_id.clone())
            })
            .filter(|(players, capacity, _, _)| players < capacity)
            .collect();
        candidates
            .into_iter()
            .min_by(|a, b| {
                // a.players / a.capacity against b's, without division.
                (a.0 * b.1).cmp(&(b.0 * a.1)).then_with(|| b.2.cmp(&a.2)).then_with(|| a.3.cmp(&b.3))
            })
            .map(|(_, _, _, id)| id)
    }

    /// Seats of `room` held by live reservations.
    pub(crate) fn held(&self, room: &RoomId) -> u32 {
        self.book.borrow_mut().held(room, Instant::now())
    }

    /// Uses a reservation for `room`.
    ///
    /// # Errors
    /// Why it is not honoured (the contract answers `not_found` for all).
    pub(crate) fn redeem(&self, room: &RoomId, token: &str) -> Result<(), ReservationError> {
        self.book.borrow_mut().redeem(room, token, Instant::now())?;
        self.cluster.reservation_redeemed(token);
        Ok(())
    }

    /// The room's directory row (`reserved`: its seats held by reservations).
    pub(crate) fn record(room: &Room, reserved: u32) -> RoomRecord {
        let info = room.info();
        let mut r = RoomRecord::new(info.room_id, info.game, info.max_players, info.tick_hz);
        r.players = info.players;
        r.spectators = info.spectators;
        r.reserved = reserved;
        r.private = room.is_private();
        r.metadata = json_map(&info.metadata);
        r.options = json_map(room.options());
        r
    }
}

/// A map value as the JSON object the directory stores.
fn json_map(m: &ValueMap) -> JsonMap {
    match serde_json::to_value(m) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => JsonMap::new(),
    }
}

/// A directory JSON object as a map value (`None`: not a valid value).
fn value_map(m: &JsonMap) -> Option<ValueMap> {
    serde_json::from_value(serde_json::Value::Object(m.clone())).ok()
}

/// A room row of another node as `room_list` shows it.
fn info_of(r: &RoomRecord) -> RoomInfo {
    RoomInfo {
        room_id: r.room_id.clone(),
        game: r.game.clone(),
        players: r.players,
        max_players: r.max_players,
        tick_hz: r.tick_hz,
        spectators: r.spectators,
        metadata: value_map(&r.metadata).unwrap_or_default(),
    }
}

/// The public rooms of every live node (of `game`, matching `filter`): this
/// node's as they are now (`local`, already filtered), the others' as last
/// read from Redis, sorted by id.
pub(crate) fn list_rooms(
    cluster: &Cluster,
    game: Option<&str>,
    filter: Option<&ValueMap>,
    mut local: Vec<RoomInfo>,
) -> Vec<RoomInfo> {
    let view = cluster.view();
    let me = cluster.node_id();
    let filter = filter.map(json_map);
    let remote = view.list(game, filter.as_ref()).into_iter().filter(|r| r.node.node_id != me);
    local.extend(remote.map(|r| info_of(r.room)));
    local.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    local
}

/// Where a room of another node is: its node's id, or `None` when the view
/// knows no such room elsewhere.
pub(crate) fn remote_owner(cluster: &Cluster, room: &RoomId) -> Option<String> {
    let view = cluster.view();
    view.room(room).filter(|r| r.node.node_id != cluster.node_id()).map(|r| r.node.node_id.clone())
}

/// The fullest public room of `game` made with `options` on another live
/// node with a free seat (by the view, counting the players this shard sent
/// there since it was read): `(node, room, seats taken)`.
fn fullest_remote(k: &ShardCluster, game: &str, options: &JsonMap) -> Option<(String, RoomId, u32)> {
    let view = k.cluster.view();
    let me = k.cluster.node_id();
    let read_at = view.read_at();
    view.list(Some(game), None)
        .into_iter()
        .filter(|r: &RoomRef<'_>| r.node.node_id != me && !r.node.draining && r.room.options == *options)
        .map(|r| (r, r.room.players + r.room.reserved + k.sent_to(&room_key(&r.room.room_id), read_at)))
        .filter(|(r, taken)| *taken < r.room.max_players)
        .max_by(|(a, ta), (b, tb)| ta.cmp(tb).then_with(|| b.room.room_id.cmp(&a.room.room_id)))
        .map(|(r, taken)| (r.node.node_id.clone(), r.room.room_id.clone(), taken))
}

/// The key of a room in [`ShardCluster`]'s sent counts (nodes are keyed by id).
fn room_key(room: &RoomId) -> String {
    format!("room {room}")
}

/// What a request waiting on another node ends in.
#[derive(Debug)]
pub(crate) enum Settled {
    /// The answer to send.
    Answer(Result<Confirm, (RejectCode, String)>),
    /// The other node could not give a seat: answer the request here,
    /// without asking other nodes.
    Local,
}

/// A request's answer that waits on another node (polled by its
/// connection; resolves within the cluster's request timeout).
pub(crate) struct Later(pub(crate) Pin<Box<dyn Future<Output = Settled>>>);

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Later")
    }
}

/// The client reject for a failed node request.
fn reject_of(e: &RequestError) -> (RejectCode, String) {
    let code = match e.code() {
        RefuseCode::NotFound => RejectCode::NotFound,
        RefuseCode::RoomFull => RejectCode::RoomFull,
        RefuseCode::Refused => RejectCode::Refused,
        RefuseCode::BadRequest => RejectCode::BadRequest,
        RefuseCode::Internal => RejectCode::Internal,
        _ => RejectCode::Overloaded,
    };
    (code, e.to_string())
}

/// A redirect once `seat` resolves; with `fallback`, a failure answers the
/// request here instead of rejecting it.
pub(crate) fn redirect(seat: super::ReplyFuture<SeatResult>, fallback: bool) -> Later {
    Later(Box::pin(async move {
        match seat.await {
            Ok(s) => {
                Settled::Answer(Ok(Confirm::Redirect { url: s.url, room_id: s.room_id, reservation: s.reservation }))
            }
            Err(_) if fallback => Settled::Local,
            Err(e) => Settled::Answer(Err(reject_of(&e))),
        }
    }))
}

/// A shard answering other nodes' requests for its rooms.
struct ShardOwner(Rc<ShardState>);

impl SeatOwner for ShardOwner {
    fn reserve(&self, room_id: &RoomId, ttl: Duration) -> Result<Reservation, Refusal> {
        let state = &self.0;
        let Some(k) = state.cluster.as_ref() else {
            return Err(Refusal::new(RefuseCode::Internal, "this shard is not in a cluster"));
        };
        let Some(slot) = state.room(room_id) else {
            return Err(Refusal::new(RefuseCode::NotFound, format!("no room {room_id} on {}", k.cluster.node_id())));
        };
        let (open, players, max) = {
            let room = slot.room.borrow();
            (room.closed().is_none(), room.player_count() as u32, room.config().max_players)
        };
        if !open {
            return Err(Refusal::new(RefuseCode::NotFound, format!("room {room_id} is closed")));
        }
        let now = Instant::now();
        let held = k.book.borrow_mut().held(room_id, now);
        if players + held >= max {
            return Err(Refusal::new(
                RefuseCode::RoomFull,
                format!("room {room_id} has {players} of {max} players and {held} reserved seats"),
            ));
        }
        let r = k.book.borrow_mut().reserve(room_id, now, ttl)?;
        state.publish(&slot);
        Ok(r)
    }

    fn create(&self, game: &str, options: &JsonMap) -> Result<RoomId, Refusal> {
        let state = &self.0;
        let Some(options) = value_map(options) else {
            return Err(Refusal::new(RefuseCode::BadRequest, "the options are not a valid map value"));
        };
        // Asked for a seat in a new room because the asker saw no open
        // room here: one may have opened since (the asker's view is up to
        // a refresh old), so the fullest open room here is filled first.
        if let Some(slot) = state.open_rooms(game, &options, 1).first() {
            return Ok(slot.room.borrow().id().clone());
        }
        let refuse = |(code, reason): (RejectCode, String)| {
            let code = match code {
                RejectCode::NotFound => RefuseCode::NotFound,
                RejectCode::BadRequest => RefuseCode::BadRequest,
                RejectCode::Refused => RefuseCode::Refused,
                _ => RefuseCode::Overloaded,
            };
            Refusal::new(code, reason)
        };
        let slot: Rc<RoomSlot> = crate::requests::new_public_room(state, game, &options).map_err(refuse)?;
        let id = slot.room.borrow().id().clone();
        Ok(id)
    }
}

/// Starts shard `state`'s cluster tasks (when the node is in a cluster):
/// answering other nodes' requests, and releasing expired reservations.
pub(crate) fn spawn_tasks(state: &Rc<ShardState>) {
    let Some(k) = state.cluster.as_ref() else { return };
    if let Some(inbox) = k.link.take_inbox(state.id) {
        glommio::spawn_local(super::serve_requests(inbox, ShardOwner(state.clone()))).detach();
    }
    let weak = Rc::downgrade(state);
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(EXPIRY_SWEEP).await;
            let Some(state) = weak.upgrade() else { return };
            let Some(k) = state.cluster.as_ref() else { return };
            let changed = k.book.borrow_mut().expire(Instant::now());
            for room in changed {
                if let Some(slot) = state.room(&room) {
                    state.publish(&slot);
                }
            }
        }
    })
    .detach();
}

/// How a reservation refusal reads to the client (`rej not_found`).
pub(crate) fn reservation_reject(room: &RoomId, e: &ReservationError) -> (RejectCode, String) {
    (RejectCode::NotFound, format!("cannot join room {room}: {e}"))
}

/// The reservation-held seats of `room` on a shard without a cluster: none.
pub(crate) fn held_in(state: &ShardState, room: &RoomId) -> u32 {
    state.cluster.as_ref().map_or(0, |k| k.held(room))
}

/// Uses reservation `token` for `room` of this shard.
///
/// # Errors
/// `not_found` (the contract's answer to an unknown, used, expired or
/// forged reservation), with a reason that says which.
pub(crate) fn redeem(state: &ShardState, room: &RoomId, token: &str) -> Result<(), (RejectCode, String)> {
    match state.cluster.as_ref() {
        Some(k) => k.redeem(room, token).map_err(|e| reservation_reject(room, &e)),
        None => Err(reservation_reject(room, &ReservationError::Unknown)),
    }
}

/// Refuses a join of `slot` when its free seats are all held by
/// reservations.
///
/// # Errors
/// `room_full`, saying how many seats are reserved.
pub(crate) fn check_unreserved_seat(state: &ShardState, slot: &RoomSlot) -> Result<(), (RejectCode, String)> {
    let room = slot.room.borrow();
    if room.closed().is_some() || state.has_unreserved_seat(&room) {
        // A closed room answers its own `not_found` in the join.
        return Ok(());
    }
    let (players, max) = (room.player_count(), room.config().max_players);
    let held = held_in(state, room.id());
    Err((RejectCode::RoomFull, format!("room {} has {players} of {max} players and {held} reserved seats", room.id())))
}

/// A `join_room` of a room that another node holds: a seat reserved there,
/// answered as a redirect (`None`: no other node lists it).
pub(crate) fn join_elsewhere(state: &ShardState, room: &RoomId) -> Option<Later> {
    let k = state.cluster.as_ref()?;
    let node = remote_owner(&k.cluster, room)?;
    Some(redirect(k.cluster.reserve_on(&node, room), false))
}

/// A `join_or_create` that another node answers better: the fullest open
/// room of the cluster when it is fuller than `best_here` (the seats taken
/// in this node's fullest open room), else, with no open room here, a new
/// room on a less-loaded node. `None`: answer it here. When the other node
/// gives no seat, the request is answered here after all.
pub(crate) fn join_or_create_elsewhere(
    state: &ShardState,
    game: &str,
    options: &ValueMap,
    best_here: Option<u32>,
) -> Option<Later> {
    let k = state.cluster.as_ref()?;
    let options = json_map(options);
    if let Some((node, room, taken)) = fullest_remote(k, game, &options) {
        if best_here.is_none_or(|here| taken > here) {
            k.sending_to(&node);
            k.sending_to(&room_key(&room));
            return Some(redirect(k.cluster.reserve_on(&node, &room), true));
        }
        return None;
    }
    if best_here.is_some() {
        return None;
    }
    let node = k.least_loaded().filter(|n| n != k.cluster.node_id())?;
    k.sending_to(&node);
    // The node seats the player in its own fullest open room of the game
    // (one this shard does not see yet), else in a new one.
    Some(redirect(k.cluster.create_on(&node, game, &options), true))
}

/// A `POST /matchmake` body: a game, or a room.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchmakeBody {
    game: Option<String>,
    room_id: Option<RoomId>,
}

/// The HTTP status for a node request that gave no seat.
fn status_of(e: &RequestError) -> u16 {
    match e.code() {
        RefuseCode::NotFound => 404,
        RefuseCode::BadRequest => 400,
        _ => 503,
    }
}

/// Answers `POST /matchmake` (`body`: its JSON) with a seat of the cluster,
/// as `(status, whole HTTP answer)`: `{"game":...}` gets a seat in the
/// fullest open room of that game (else in a new room on the least-loaded
/// node), `{"room_id":...}` a seat in that room. 200 with
/// `{"url","room_id","reservation"}`; 400 a bad body, 404 an unknown game
/// or room, 503 no capacity (or no cluster). Waits at most the cluster's
/// request timeout per node asked (two at most), never on Redis itself.
pub(crate) async fn matchmake(state: &ShardState, body: &[u8]) -> (u16, Vec<u8>) {
    let fail = |status: u16, why: &str| (status, crate::http::error(status, why, &[]));
    let Some(k) = state.cluster.as_ref() else {
        return fail(503, "POST /matchmake picks a seat in a cluster: this server runs without --cluster");
    };
    let cluster = &k.cluster;
    let shape = r#"expected {"game":"NAME"} or {"room_id":"ID"}"#;
    let asked: MatchmakeBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return fail(400, &format!("bad body: {e}; {shape}")),
    };
    let seat = match (asked.game, asked.room_id) {
        (Some(_), Some(_)) | (None, None) => return fail(400, &format!("bad body: {shape}")),
        (None, Some(room)) => {
            let node = if state.shared.directory.get(&room).is_some() {
                cluster.node_id().to_owned()
            } else {
                match remote_owner(cluster, &room) {
                    Some(node) => node,
                    None => return fail(404, &format!("no room {room} in the cluster")),
                }
            };
            cluster.reserve_on(&node, &room).await
        }
        (Some(game), None) => {
            if state.config().games.get(&game).is_none() {
                let names: Vec<_> = state.config().games.names().collect();
                return fail(404, &format!("no game {game:?}; this cluster hosts {}", names.join(", ")));
            }
            let fullest = {
                let view = cluster.view();
                view.fullest_open(&game, None).map(|r| (r.node.node_id.clone(), r.room.room_id.clone()))
            };
            let reserved = match fullest {
                Some((node, room)) => cluster.reserve_on(&node, &room).await.ok(),
                None => None,
            };
            match reserved {
                Some(seat) => Ok(seat),
                None => {
                    let Some(node) = k.least_loaded() else {
                        return fail(
                            503,
                            &format!("no capacity: every node of the cluster is full or draining ({game})"),
                        );
                    };
                    k.sending_to(&node);
                    cluster.create_on(&node, &game, &JsonMap::new()).await
                }
            }
        }
    };
    match seat {
        Ok(seat) => {
            let json = serde_json::to_vec(&seat).unwrap_or_default();
            (200, crate::http::response(200, "application/json", &[], &json))
        }
        Err(e) => fail(status_of(&e), &e.to_string()),
    }
}
