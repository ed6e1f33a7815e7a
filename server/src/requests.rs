//! Requests: one `match` over [`Request`] kinds, one function per kind,
//! each answering a [`Confirm`] or a reject `(code, reason)`.
//!
//! A request runs on the shard of its connection, synchronously: rooms are
//! shard-local, so joining, leaving and creating take no lock. A join of a
//! room on another shard answers [`Reply::HandOff`]: the connection moves
//! there (the runtime's hand-off) and the join is answered on that shard.
//! A connection's room membership is its [`Seat`]: a join takes one, a
//! leave gives it back.

use crate::config::TICK_HZ_RANGE;
use crate::game::{Game, GameLimits, LeaveReason};
use crate::metrics::ShardMetrics;
use crate::outbox::Outbox;
use crate::room::{RoomConfig, RoomSlot, Seat};
use crate::shard_state::{unix_now_us, ShardState};
use std::rc::Rc;
use std::sync::Arc;
use tickforge_protocol::ids::{RoomId, SessionId};
use tickforge_protocol::message::{Confirm, RejectCode, Request};
use tickforge_protocol::value::{Value, ValueMap};

/// Rooms `join_or_create` tries on its shard before creating one, when
/// their games refuse the join: each try runs a join hook, so it is bounded.
const JOIN_OR_CREATE_TRIES: usize = 8;

/// A connection's session state that requests read and change.
#[derive(Clone, Debug, Default)]
pub(crate) struct Session {
    /// Given at `hello` (or made then).
    pub(crate) session_id: Option<String>,
    /// Whether `hello` passed the token (always true without a token).
    pub(crate) authed: bool,
    /// Who its signed token named (`--auth-secret`).
    pub(crate) user: Option<crate::auth::Identity>,
}

/// The connection a request came from: what requests read and change.
#[derive(Debug)]
pub(crate) struct Requester<'a> {
    /// Where its answers and its room's messages go.
    pub(crate) outbox: &'a Rc<Outbox>,
    /// Its session.
    pub(crate) session: &'a mut Session,
    /// Its seat, when it is in a room.
    pub(crate) seat: &'a mut Option<Seat>,
    /// Whether a join may pick a room of another node (a `redirect`):
    /// false once another node could not give a seat for this request.
    pub(crate) remote: bool,
}

/// The answer to a request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `cfm`.
    Cfm(Confirm),
    /// `rej`.
    Rej(RejectCode, String),
    /// The room is on shard `shard`: move the connection there and answer
    /// the join on that shard.
    HandOff {
        /// The shard hosting the room.
        shard: usize,
    },
    /// The answer waits on another node of the cluster (a seat there).
    Later(crate::cluster::serve::Later),
}

impl From<Result<Confirm, (RejectCode, String)>> for Reply {
    fn from(r: Result<Confirm, (RejectCode, String)>) -> Self {
        match r {
            Ok(c) => Self::Cfm(c),
            Err((code, reason)) => Self::Rej(code, reason),
        }
    }
}

/// Answers one request. `may_move`: a join of a room on another shard may
/// answer [`Reply::HandOff`] (false for a join that arrived with a
/// hand-off: the connection is not moved twice).
pub(crate) fn handle(shard: &ShardState, who: Requester<'_>, body: Request, may_move: bool) -> Reply {
    let config = shard.config();
    let needs_hello = (config.token.is_some() || config.auth.is_some()) && !who.session.authed;
    if needs_hello && !matches!(body, Request::Hello { .. }) {
        return Reply::Rej(RejectCode::Unauthorized, "this server requires hello with a token first".into());
    }
    match body {
        Request::Hello { token, client: _ } => hello(shard, who.session, token.as_deref()).into(),
        Request::ListRooms { game, filter } => list_rooms(shard, &who, game.as_deref(), filter.as_ref()).into(),
        Request::CreateRoom { game, max_players, tick_hz, private, options } => {
            create_room(shard, who, &game, max_players, tick_hz, private, options.unwrap_or_default()).into()
        }
        Request::JoinRoom { room_id, reservation } => join_room(shard, who, &room_id, reservation.as_deref(), may_move),
        Request::JoinOrCreate { game, options } => {
            join_or_create(shard, who, &game, &options.unwrap_or_default(), may_move)
        }
        Request::LeaveRoom => leave_room(shard, who.seat).into(),
        Request::Resume { room_id, resume_token } => resume(shard, who, &room_id, &resume_token, may_move),
        Request::WatchRoom { room_id } => watch_room(shard, who, &room_id, may_move),
        Request::Ping { client_time_us } => Reply::Cfm(Confirm::Pong { client_time_us, server_time_us: unix_now_us() }),
        Request::GameMessage { name, data } => game_message(shard, &who, &name, &data).into(),
    }
}

/// Checks options (or a filter) a client sent against `max` bytes.
fn check_map(what: &str, map: &ValueMap, who: &Requester<'_>, max: usize) -> Result<(), (RejectCode, String)> {
    let value = Value::Map(map.0.clone());
    GameLimits::check_received(what, &value, who.outbox.format(), max).map_err(|e| (RejectCode::BadRequest, e))
}

fn hello(shard: &ShardState, session: &mut Session, token: Option<&str>) -> Result<Confirm, (RejectCode, String)> {
    if let Some(expected) = &shard.config().token {
        if token != Some(expected.as_str()) {
            return Err((RejectCode::Unauthorized, "token refused".into()));
        }
    }
    if let Some(secret) = &shard.config().auth {
        let identity = crate::auth::verify(secret, token.unwrap_or(""), unix_now_us() / 1_000_000)
            .map_err(|e| (RejectCode::Unauthorized, e.to_string()))?;
        session.user = Some(identity);
    }
    session.authed = true;
    let id = session.session_id.get_or_insert_with(|| shard.new_session_id()).clone();
    Ok(Confirm::Welcome {
        session_id: SessionId(id),
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        user_id: session.user.as_ref().map(|u| u.user_id.clone()),
    })
}

fn not_in_a_room(seat: &Option<Seat>) -> Result<(), (RejectCode, String)> {
    match seat {
        Some(seat) => Err((RejectCode::AlreadyInRoom, format!("already in room {}; leave it first", seat.room_id()))),
        None => Ok(()),
    }
}

fn game(shard: &ShardState, name: &str) -> Result<Arc<dyn Game>, (RejectCode, String)> {
    shard.config().games.get(name).cloned().ok_or_else(|| {
        let names: Vec<_> = shard.config().games.names().collect();
        (RejectCode::NotFound, format!("no game {name:?}; this server hosts {}", names.join(", ")))
    })
}

/// The room settings for a new room, with the server's slow-client and
/// game bounds.
fn room_config(shard: &ShardState, tick_hz: u32, max_players: u32, private: bool) -> RoomConfig {
    let mut config = RoomConfig::new(tick_hz, max_players);
    config.private = private;
    config.game_limits = shard.config().limits.game.clone();
    let slow_ticks = (shard.config().limits.slow_client.as_secs_f64() * f64::from(tick_hz)).ceil().max(1.0);
    config.max_ack_lag_ticks = slow_ticks as u64;
    config.max_skipped_ticks = slow_ticks as u32;
    config.reconnect_grace_us = u64::try_from(shard.config().reconnect_grace.as_micros()).unwrap_or(u64::MAX);
    config.max_spectators = shard.config().limits.max_spectators_per_room;
    config
}

fn list_rooms(
    shard: &ShardState,
    who: &Requester<'_>,
    game: Option<&str>,
    filter: Option<&ValueMap>,
) -> Result<Confirm, (RejectCode, String)> {
    if let Some(filter) = filter {
        check_map("filter", filter, who, shard.config().limits.game.max_value_bytes)?;
    }
    Ok(Confirm::RoomList { rooms: shard.list_rooms(game, filter) })
}

/// Seats the connection in the room of `slot` with join `options`.
fn join(
    shard: &ShardState,
    who: Requester<'_>,
    slot: &Rc<RoomSlot>,
    options: &ValueMap,
) -> Result<Confirm, (RejectCode, String)> {
    crate::cluster::serve::check_unreserved_seat(shard, slot)?;
    let taken = Seat::take(slot, who.outbox.clone(), who.session.user.as_ref(), options);
    // Published either way: a refusing or failing join hook may have
    // changed metadata or counted something.
    shard.publish(slot);
    let (seat, joined) = taken?;
    *who.seat = Some(seat);
    Ok(Confirm::Joined(joined))
}

fn create_room(
    shard: &ShardState,
    who: Requester<'_>,
    name: &str,
    max_players: Option<u32>,
    tick_hz: Option<u32>,
    private: bool,
    options: ValueMap,
) -> Result<Confirm, (RejectCode, String)> {
    not_in_a_room(who.seat)?;
    let game = game(shard, name)?;
    let limits = &shard.config().limits;
    check_map("options", &options, &who, limits.game.max_options_bytes)?;
    let tick_hz = tick_hz.unwrap_or(shard.config().tick_hz);
    if !TICK_HZ_RANGE.contains(&tick_hz) {
        return Err((RejectCode::BadRequest, format!("tick_hz {tick_hz} is not in 10..=128")));
    }
    let max_players = max_players.unwrap_or(limits.default_players_per_room);
    if max_players == 0 || max_players > limits.max_players_per_room {
        let max = limits.max_players_per_room;
        return Err((RejectCode::BadRequest, format!("max_players {max_players} is not in 1..={max}")));
    }
    let slot = shard.create_room(game, room_config(shard, tick_hz, max_players, private), options.clone())?;
    join(shard, who, &slot, &options)
}

fn join_room(
    shard: &ShardState,
    who: Requester<'_>,
    room_id: &RoomId,
    reservation: Option<&str>,
    may_move: bool,
) -> Reply {
    if let Err((code, reason)) = not_in_a_room(who.seat) {
        return Reply::Rej(code, reason);
    }
    if let Some(slot) = shard.room(room_id) {
        if let Some(token) = reservation {
            if let Err((code, reason)) = crate::cluster::serve::redeem(shard, room_id, token) {
                return Reply::Rej(code, reason);
            }
        }
        return join(shard, who, &slot, &ValueMap::new()).into();
    }
    if reservation.is_none() && who.remote {
        if let Some(later) = crate::cluster::serve::join_elsewhere(shard, room_id) {
            return Reply::Later(later);
        }
    }
    match shard.shared.directory.get(room_id) {
        Some(entry) if entry.shard != shard.id && may_move && shard.is_full(entry.shard) => Reply::Rej(
            RejectCode::Overloaded,
            format!("room {room_id} is on shard {}, which is at its connection limit", entry.shard),
        ),
        Some(entry) if entry.shard != shard.id && may_move => Reply::HandOff { shard: entry.shard },
        _ => Reply::Rej(RejectCode::NotFound, format!("no room {room_id}")),
    }
}

fn join_or_create(shard: &ShardState, who: Requester<'_>, name: &str, options: &ValueMap, may_move: bool) -> Reply {
    if let Err((code, reason)) = not_in_a_room(who.seat) {
        return Reply::Rej(code, reason);
    }
    let game = match game(shard, name) {
        Ok(g) => g,
        Err((code, reason)) => return Reply::Rej(code, reason),
    };
    let limits = &shard.config().limits;
    if let Err((code, reason)) = check_map("options", options, &who, limits.game.max_options_bytes) {
        return Reply::Rej(code, reason);
    }
    // The fullest open room made with these options anywhere: here, or on
    // another shard by the directory's (slightly stale) counts; a local
    // one wins a tie.
    let local = shard.open_rooms(name, options, JOIN_OR_CREATE_TRIES);
    let local_players = local.first().map(|s| s.room.borrow().player_count() as u32);
    let other_shard = shard.shared.directory.fullest_open_elsewhere(name, options, shard.id);
    if who.remote {
        // The fullest room of the cluster, or a new room on a less-loaded node.
        let best_here = local_players.max(other_shard.as_ref().map(|o| o.2));
        if let Some(later) = crate::cluster::serve::join_or_create_elsewhere(shard, name, options, best_here) {
            return Reply::Later(later);
        }
    }
    if let Some((other, _, remote_players)) = other_shard {
        let better = local_players.is_none_or(|l| remote_players > l);
        if may_move && better && shard.can_hand_off() && !shard.is_full(other) {
            return Reply::HandOff { shard: other };
        }
    }
    // A room whose game refuses this player is passed over for the next.
    let Requester { outbox, session, seat, remote } = who;
    for slot in &local {
        let who = Requester { outbox, session: &mut *session, seat: &mut *seat, remote };
        match join(shard, who, slot, options) {
            Err((RejectCode::Refused, _)) => {}
            result => return result.into(),
        }
    }
    let who = Requester { outbox, session, seat, remote };
    let config = room_config(shard, shard.config().tick_hz, limits.default_players_per_room, false);
    match shard.create_room(game, config, options.clone()) {
        Ok(slot) => join(shard, who, &slot, options).into(),
        Err((code, reason)) => Reply::Rej(code, reason),
    }
}

fn game_message(
    shard: &ShardState,
    who: &Requester<'_>,
    name: &str,
    data: &Value,
) -> Result<Confirm, (RejectCode, String)> {
    // The value first, whatever the name (CONTRACT.md), then the name,
    // then the seat.
    let limits = &shard.config().limits.game;
    limits.check_message(name, data, who.outbox.format()).map_err(|e| (RejectCode::BadRequest, e))?;
    let Some(seat) = who.seat.as_ref() else {
        return Err((RejectCode::NotInRoom, "game_message while in no room".into()));
    };
    let reply = seat.game_message(name, data);
    shard.publish(seat.slot());
    Ok(Confirm::GameReply { data: reply? })
}

/// A new public room of `name` with `options` and the server's defaults (a
/// room another node asked for).
///
/// # Errors
/// As [`ShardState::create_room`]; `not_found` for an unknown game.
pub(crate) fn new_public_room(
    shard: &ShardState,
    name: &str,
    options: &ValueMap,
) -> Result<Rc<RoomSlot>, (RejectCode, String)> {
    let game = game(shard, name)?;
    let limits = &shard.config().limits;
    let config = room_config(shard, shard.config().tick_hz, limits.default_players_per_room, false);
    shard.create_room(game, config, options.clone())
}

/// Where a room is, for a request naming it: here, on another shard (the
/// connection moves there, when it may), or nowhere.
enum Located {
    Here(Rc<RoomSlot>),
    Elsewhere(Reply),
}

fn locate(shard: &ShardState, room_id: &RoomId, may_move: bool, unknown: impl FnOnce() -> String) -> Located {
    if let Some(slot) = shard.room(room_id) {
        return Located::Here(slot);
    }
    Located::Elsewhere(match shard.shared.directory.get(room_id) {
        Some(entry) if entry.shard != shard.id && may_move && shard.is_full(entry.shard) => Reply::Rej(
            RejectCode::Overloaded,
            format!("room {room_id} is on shard {}, which is at its connection limit", entry.shard),
        ),
        Some(entry) if entry.shard != shard.id && may_move => Reply::HandOff { shard: entry.shard },
        _ => Reply::Rej(RejectCode::NotFound, unknown()),
    })
}

/// `resume`: takes back a held seat (or one whose old connection is still
/// open) with its newest token, on whichever shard the room is.
fn resume(shard: &ShardState, who: Requester<'_>, room_id: &RoomId, token: &str, may_move: bool) -> Reply {
    if let Err((code, reason)) = not_in_a_room(who.seat) {
        return Reply::Rej(code, reason);
    }
    let slot = match locate(shard, room_id, may_move, || {
        format!("no room {room_id}: its seats are gone (unknown, used or expired resume token)")
    }) {
        Located::Here(slot) => slot,
        Located::Elsewhere(reply) => return reply,
    };
    let held_before = slot.room.borrow().held_count();
    match Seat::resume(&slot, token, who.outbox.clone()) {
        Ok((seat, joined)) => {
            let m = shard.metrics();
            ShardMetrics::inc(&m.resumes);
            if slot.room.borrow().held_count() == held_before {
                // No held seat was taken: the seat's old connection was open.
                ShardMetrics::inc(&m.takeovers);
            }
            *who.seat = Some(seat);
            shard.publish(&slot);
            Reply::Cfm(Confirm::Joined(joined))
        }
        Err((code, reason)) => Reply::Rej(code, reason),
    }
}

/// `watch_room`: the room's ticks without a seat.
fn watch_room(shard: &ShardState, who: Requester<'_>, room_id: &RoomId, may_move: bool) -> Reply {
    if let Err((code, reason)) = not_in_a_room(who.seat) {
        return Reply::Rej(code, reason);
    }
    let slot = match locate(shard, room_id, may_move, || format!("no room {room_id}")) {
        Located::Here(slot) => slot,
        Located::Elsewhere(reply) => return reply,
    };
    match Seat::watch(&slot, who.outbox.clone()) {
        Ok((seat, watching)) => {
            *who.seat = Some(seat);
            shard.publish(&slot);
            Reply::Cfm(Confirm::Watching(watching))
        }
        Err((code, reason)) => Reply::Rej(code, reason),
    }
}

fn leave_room(shard: &ShardState, seat: &mut Option<Seat>) -> Result<Confirm, (RejectCode, String)> {
    let Some(seat) = seat.take() else {
        return Err((RejectCode::NotInRoom, "not in a room".into()));
    };
    let slot = seat.slot().clone();
    let room_id = seat.leave(LeaveReason::Left);
    shard.publish(&slot);
    Ok(Confirm::Left { room_id })
}
