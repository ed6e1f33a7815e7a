//! A room: its players, its game, its tick and the per-player fan-out.
//!
//! Pure shard-local state, driven by the shard with the time as an argument:
//! `join`/`leave`/`input`/`ack` come from connections, `tick(now_us)` from
//! the room's timer. Each tick the game steps with every player's newest
//! input, the room records a quantized snapshot in its ring, groups the
//! players by the baseline they last acknowledged, encodes the delta from
//! each distinct (baseline, format) once, and hands every player a frame of
//! its own small header plus those shared state bytes through its
//! [`Outbox`]. A room never waits on a socket: a player whose writer has
//! not taken the previous tick just gets the newer one, and one stuck past
//! a bound is asked to close with 1008.
//!
//! A seat outlives its connection for the reconnect grace: a player whose
//! connection ends without `leave_room` is *held* (its avatar stays, with
//! neutral input) until `resume` with the seat's newest resume token
//! takes it back, on any connection, or the grace passes and it is freed.
//! Each resume (and each join) gives a new single-use token, and bumps the
//! seat's epoch, so that a connection that lost its seat to a resume can
//! no longer touch it. Spectators receive the ticks like players, without
//! a seat or an avatar.
//!
//! The game runs behind its hooks (see [`crate::game`]): a room calls them
//! as players join and leave, as it ticks, as a player sends a game
//! message, and as it closes; `game.rs` holds the game-facing half (game
//! messages, event delivery, metadata). A held seat is still the player's
//! for the game (in [`crate::game::Ctx::players`], its input neutral):
//! the game's leave hook runs when the seat is freed.

use crate::auth::Identity;
use crate::game::host::{GameHost, Hook, HookError};
use crate::game::{Game, GameLimits, LeaveReason, PlayerInfo, PlayerInput};
use crate::outbox::Outbox;
use std::rc::Rc;
use std::sync::Arc;
use tickforge_protocol::codec::{Format, TickHeader};
use tickforge_protocol::delta::{self, Delta};
use tickforge_protocol::error::CloseReason;
use tickforge_protocol::ids::{EntityId, InputSeq, PlayerId, RoomId, Tick};
use tickforge_protocol::input::{InputError, InputValues, RawInput};
use tickforge_protocol::message::{Indication, Joined, RejectCode, RoomInfo, ServerMsg, Watching};
use tickforge_protocol::snapshot::{Snapshot, SnapshotRing};
use tickforge_protocol::value::ValueMap;

mod game;
#[cfg(test)]
mod holds_tests;
pub mod schedule;
mod seat;

pub use seat::{RoomSlot, Seat};

/// A room's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomConfig {
    /// Ticks per second (10 to 128). Default 30: each player gets 30 state
    /// messages a second.
    pub tick_hz: u32,
    /// Seats (default 8); a join beyond them is `rej room_full`.
    pub max_players: u32,
    /// A private room is joinable by id only and not listed.
    pub private: bool,
    /// Snapshots kept as baselines (default one second of ticks + 2): a
    /// player whose newest ack is older gets the full state.
    pub baseline_ticks: usize,
    /// A player that has acked before and whose newest ack falls this many
    /// ticks behind is closed as too slow (default 5 s of ticks).
    pub max_ack_lag_ticks: u64,
    /// A player whose writer has not taken this many ticks in a row is
    /// closed as too slow (default 5 s of ticks).
    pub max_skipped_ticks: u32,
    /// The bounds on the game's names, values, metadata and events.
    pub game_limits: GameLimits,
    /// How long a seat whose connection ended is held for `resume`,
    /// microseconds (default 10 s; 0: a seat is freed at once). The hold
    /// starts at the room's next tick after the connection ended.
    pub reconnect_grace_us: u64,
    /// Spectators at most (default 32); a `watch_room` beyond them is
    /// `rej room_full`. They do not count against `max_players`.
    pub max_spectators: u32,
}

impl RoomConfig {
    /// Defaults derived from a tick rate and a seat count.
    #[must_use]
    pub fn new(tick_hz: u32, max_players: u32) -> Self {
        let tick_hz = tick_hz.max(1);
        Self {
            tick_hz,
            max_players,
            private: false,
            baseline_ticks: SnapshotRing::capacity_for(tick_hz),
            max_ack_lag_ticks: 5 * u64::from(tick_hz),
            max_skipped_ticks: 5 * tick_hz,
            game_limits: GameLimits::default(),
            reconnect_grace_us: 10_000_000,
            max_spectators: 32,
        }
    }
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self::new(30, 8)
    }
}

#[derive(Debug)]
struct Player {
    id: PlayerId,
    entity: EntityId,
    outbox: Rc<Outbox>,
    input: InputValues,
    input_seq: InputSeq,
    /// A resume restarts the sequence: the next input of any `seq` is the
    /// newest.
    seq_restarted: bool,
    last_ack: Option<Tick>,
    /// The first tick this player was sent: its first ack is at or after it.
    first_tick: Tick,
    /// The seat's newest resume token (single-use).
    token: String,
    /// Bumped by each resume: a seat handle of another epoch is stale.
    epoch: u32,
    /// Whether its connection is gone and the seat held.
    held: Option<Held>,
}

/// A held seat's deadline.
#[derive(Clone, Copy, Debug)]
struct Held {
    /// When the hold ends, µs since the Unix epoch (set at the first tick
    /// after the connection ended).
    until_us: Option<u64>,
}

/// A spectator: ticks like a player's, no seat, no avatar, no input.
#[derive(Debug)]
struct Spectator {
    id: u32,
    outbox: Rc<Outbox>,
    last_ack: Option<Tick>,
    first_tick: Tick,
}

/// Which seat (or spectator place) a connection holds: what a [`Seat`]
/// names in its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatKey {
    /// A player's seat, in the epoch the connection took it.
    Player {
        /// The player.
        player: PlayerId,
        /// The seat's epoch when taken (bumped by each resume).
        epoch: u32,
    },
    /// A spectator.
    Spectator {
        /// Its id in the room.
        id: u32,
    },
}

/// A fresh resume token: 128 random bits, base64url without padding (22
/// characters).
///
/// # Panics
/// When the system's random source fails (it cannot on Linux once booted;
/// a guessable token would be worse than stopping).
#[must_use]
pub fn new_resume_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the system random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One distinct state encoding of the current tick.
#[derive(Debug, Default)]
struct Encoded {
    baseline: Option<Tick>,
    format: Option<Format>,
    state: Vec<u8>,
}

/// What one fan-out did.
struct FanOut {
    encodings: usize,
    closed_slow: usize,
    sent: usize,
}

/// What one tick did, for metrics and the shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The tick taken.
    pub tick: Tick,
    /// Players in the room.
    pub players: usize,
    /// Players whose outbox took the tick (the others were skipped: their
    /// previous tick had not left yet, or they are closing).
    pub sent: usize,
    /// Entities in the state.
    pub entities: usize,
    /// Distinct (baseline, format) encodings made.
    pub encodings: usize,
    /// Players asked to close as too slow this tick.
    pub closed_slow: usize,
    /// Held seats whose reconnect grace ended this tick (freed).
    pub seats_expired: usize,
    /// The game step panicked with this message; the room is now closed.
    pub panicked: Option<String>,
    /// Game event deliveries made this tick (one per recipient).
    pub events: usize,
}

/// A room on a shard.
pub struct Room {
    id: RoomId,
    game_name: String,
    game: Arc<dyn Game>,
    host: GameHost,
    /// The options it was created with (`join_or_create` matches them).
    options: ValueMap,
    /// The metadata version last published to the directory.
    metadata_published: u64,
    config: RoomConfig,
    players: Vec<Player>,
    next_player: u32,
    /// Players whose seat is held.
    held: usize,
    spectators: Vec<Spectator>,
    next_spectator: u32,
    tick: Tick,
    ring: SnapshotRing,
    spare: Option<Snapshot>,
    inputs: Vec<PlayerInput>,
    bin_encoder: delta::bin::Encoder,
    plain: Delta,
    encoded: Vec<Encoded>,
    closed: Option<String>,
    /// Events taken from the game, being delivered (a reused buffer).
    events: Vec<crate::game::context::OutEvent>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("id", &self.id)
            .field("game", &self.game_name)
            .field("players", &self.players.len())
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl Room {
    /// A room of `game` with no options, its simulation seeded with `seed`.
    ///
    /// # Errors
    /// As [`Room::create`].
    pub fn new(id: RoomId, game: Arc<dyn Game>, config: RoomConfig, seed: u64) -> Result<Self, (RejectCode, String)> {
        Self::create(id, game, config, seed, ValueMap::new())
    }

    /// A room of `game` made with `options` ([`Game::create`]), its
    /// simulation seeded with `seed`; its seats are the fewer of
    /// `config.max_players` and the game's own bound.
    ///
    /// # Errors
    /// `refused` with the game's reason for options it does not take;
    /// `internal` when the game panicked.
    pub fn create(
        id: RoomId,
        game: Arc<dyn Game>,
        mut config: RoomConfig,
        seed: u64,
        options: ValueMap,
    ) -> Result<Self, (RejectCode, String)> {
        let limits = config.game_limits.clone();
        let host =
            GameHost::create(&*game, id.clone(), config.tick_hz, seed, &options, limits).map_err(|e| match e {
                HookError::Refused(reason) => (RejectCode::Refused, reason),
                HookError::Panicked(panic) => {
                    (RejectCode::Internal, format!("game {} failed creating a room: {panic}", game.name()))
                }
            })?;
        if let Some(seats) = host.seats() {
            config.max_players = config.max_players.min(seats.max(1));
        }
        Ok(Self {
            id,
            game_name: game.name().to_owned(),
            game,
            host,
            options,
            metadata_published: 0,
            ring: SnapshotRing::new(config.baseline_ticks),
            config,
            players: Vec::new(),
            next_player: 1,
            held: 0,
            spectators: Vec::new(),
            next_spectator: 1,
            tick: Tick(0),
            spare: None,
            inputs: Vec::new(),
            bin_encoder: delta::bin::Encoder::default(),
            plain: Delta::default(),
            encoded: Vec::new(),
            closed: None,
            events: Vec::new(),
        })
    }

    /// The room's id.
    #[must_use]
    pub fn id(&self) -> &RoomId {
        &self.id
    }

    /// The room's game name.
    #[must_use]
    pub fn game_name(&self) -> &str {
        &self.game_name
    }

    /// The room's settings.
    #[must_use]
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// The newest tick taken (0 before the first).
    #[must_use]
    pub fn current_tick(&self) -> Tick {
        self.tick
    }

    /// The snapshot of `tick` while the ring keeps it: what a client that
    /// applied that tick must hold.
    #[must_use]
    pub fn snapshot(&self, tick: Tick) -> Option<&Snapshot> {
        self.ring.get(tick)
    }

    /// Its row in `room_list`.
    #[must_use]
    pub fn info(&self) -> RoomInfo {
        RoomInfo {
            room_id: self.id.clone(),
            game: self.game_name.clone(),
            players: self.players.len() as u32,
            max_players: self.config.max_players,
            tick_hz: self.config.tick_hz,
            spectators: self.spectators.len() as u32,
            metadata: self.host.metadata().0.clone(),
        }
    }

    /// Players in the room (held seats included: they are taken).
    #[must_use]
    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    /// Seats held for a `resume`.
    #[must_use]
    pub fn held_count(&self) -> usize {
        self.held
    }

    /// Spectators watching.
    #[must_use]
    pub fn spectator_count(&self) -> usize {
        self.spectators.len()
    }

    /// Whether `player` has a seat here (held or not).
    #[must_use]
    pub fn has_player(&self, player: PlayerId) -> bool {
        self.players.iter().any(|p| p.id == player)
    }

    /// The ids of the players in the room (held seats included), in seat order.
    pub fn player_ids(&self) -> impl Iterator<Item = PlayerId> + '_ {
        self.players.iter().map(|p| p.id)
    }

    /// The outbox of `player`'s connection (to close it), if it is here
    /// and connected (a held seat has none).
    #[must_use]
    pub fn outbox_of(&self, player: PlayerId) -> Option<&Rc<Outbox>> {
        self.players.iter().find(|p| p.id == player && p.held.is_none()).map(|p| &p.outbox)
    }

    /// Whether the connection that took `key` still has it: the seat is
    /// here in that epoch (no resume took it since), or the spectator
    /// still watches.
    #[must_use]
    pub fn holds(&self, key: SeatKey) -> bool {
        match key {
            SeatKey::Player { player, epoch } => {
                self.players.iter().any(|p| p.id == player && p.epoch == epoch && p.held.is_none())
            }
            SeatKey::Spectator { id } => self.spectators.iter().any(|s| s.id == id),
        }
    }

    /// Every connected player's and spectator's outbox: what the shard's
    /// tick pass reads and sends for (a held seat has no connection).
    pub fn outboxes(&self) -> impl Iterator<Item = &Rc<Outbox>> {
        self.players
            .iter()
            .filter(|p| p.held.is_none())
            .map(|p| &p.outbox)
            .chain(self.spectators.iter().map(|s| &s.outbox))
    }

    /// Whether it has no players.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
    }

    /// Whether it has a free seat and is open.
    #[must_use]
    pub fn has_free_seat(&self) -> bool {
        self.closed.is_none() && (self.players.len() as u32) < self.config.max_players
    }

    /// Whether it is private.
    #[must_use]
    pub fn is_private(&self) -> bool {
        self.config.private
    }

    /// Why it closed, once it has.
    #[must_use]
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Seats a player whose connection writes through `outbox` (signed in
    /// as `identity`, when identities are on), with no options (see
    /// [`Room::join_as`]).
    ///
    /// # Errors
    /// As [`Room::join_as`].
    pub fn join(&mut self, outbox: Rc<Outbox>, identity: Option<&Identity>) -> Result<Joined, (RejectCode, String)> {
        self.join_as(outbox, identity, &ValueMap::new())
    }

    /// Seats a player whose connection writes through `outbox`: its
    /// `user_id` and `name` (from `identity`, when identities are on) and
    /// the `options` of its join go to the game's join hook, which may
    /// refuse; then the others get `player_joined`. The caller sends the
    /// returned `joined`, which holds the seat's first resume token (empty
    /// without a reconnect grace).
    ///
    /// # Errors
    /// `room_full` with no free seat; `not_found` once the room closed;
    /// `overloaded` when player ids are exhausted; `refused` with the
    /// game's reason; `internal` when the game panicked (the room closes).
    pub fn join_as(
        &mut self,
        outbox: Rc<Outbox>,
        identity: Option<&Identity>,
        options: &ValueMap,
    ) -> Result<Joined, (RejectCode, String)> {
        if let Some(why) = &self.closed {
            return Err((RejectCode::NotFound, format!("room {} is closed: {why}", self.id)));
        }
        if !self.has_free_seat() {
            let (n, max) = (self.players.len(), self.config.max_players);
            return Err((RejectCode::RoomFull, format!("room {} has {n} of {max} players", self.id)));
        }
        if self.next_player == u32::MAX {
            return Err((RejectCode::Overloaded, format!("room {} ran out of player ids", self.id)));
        }
        let id = PlayerId(self.next_player);
        self.next_player += 1;
        let info = PlayerInfo {
            id,
            user_id: identity.map(|i| i.user_id.clone()),
            name: identity.and_then(|i| i.name.clone()),
        };
        let entity = match self.host.join(self.tick, &info, options) {
            Ok(entity) => entity,
            Err(HookError::Refused(reason)) => return Err((RejectCode::Refused, reason)),
            Err(HookError::Panicked(panic)) => {
                self.fail(Hook::Join, &panic);
                return Err((
                    RejectCode::Internal,
                    format!("game {} failed seating a player; room closed", self.game_name),
                ));
            }
        };
        let PlayerInfo { user_id, name, .. } = info;
        self.notify(&ServerMsg::Ind { body: Indication::PlayerJoined { player_id: id, user_id, name } });
        let token = new_resume_token();
        self.players.push(Player {
            id,
            entity,
            outbox,
            input: self.game.input_schema().neutral(),
            input_seq: InputSeq(0),
            seq_restarted: false,
            last_ack: None,
            first_tick: self.tick.next(),
            token: token.clone(),
            epoch: 0,
            held: None,
        });
        Ok(self.joined(id, entity, token))
    }

    /// Sends an indication to every connected player and spectator (a
    /// full control queue closes that connection: its own problem).
    fn notify(&self, notice: &ServerMsg) {
        for outbox in self.outboxes() {
            let _ = outbox.push_msg(notice);
        }
    }

    fn joined(&self, player_id: PlayerId, entity_id: EntityId, token: String) -> Joined {
        Joined {
            room_id: self.id.clone(),
            game: self.game_name.clone(),
            player_id,
            entity_id,
            tick_hz: self.config.tick_hz,
            max_players: self.config.max_players,
            // Without a grace no seat is ever held: a token would only
            // mislead the client into trying.
            resume_token: if self.config.reconnect_grace_us == 0 { String::new() } else { token },
            schema: self.game.schema().clone(),
            input_schema: self.game.input_schema().clone(),
        }
    }

    /// The connection writing through `outbox` takes back the seat whose
    /// newest resume token is `token`: held (its connection ended) or
    /// still connected (a half-open connection: it is closed with 1008
    /// `resumed elsewhere`). The seat gets a new token and epoch, a full
    /// state at the next tick, and its input sequence restarts. Returns the
    /// `joined`, the new token and the seat's key.
    ///
    /// # Errors
    /// `not_found` for a token of no seat here (unknown, used, or its seat
    /// expired) or a closed room.
    pub fn resume(
        &mut self,
        token: &str,
        outbox: Rc<Outbox>,
    ) -> Result<(Joined, String, SeatKey), (RejectCode, String)> {
        if let Some(why) = &self.closed {
            return Err((RejectCode::NotFound, format!("room {} is closed: {why}", self.id)));
        }
        let Some(at) = self.players.iter().position(|p| same_token(&p.token, token)) else {
            return Err((
                RejectCode::NotFound,
                format!("no seat in room {} has this resume token (unknown, used, or its seat expired)", self.id),
            ));
        };
        let first_tick = self.tick.next();
        let p = &mut self.players[at];
        if p.held.take().is_some() {
            self.held -= 1;
        } else {
            // Its old connection is still open (half-open, or the same
            // client on a new network): the seat moves, the old one closes.
            p.outbox.close(CloseReason::ResumedElsewhere);
        }
        p.outbox = outbox;
        p.epoch = p.epoch.wrapping_add(1);
        p.token = new_resume_token();
        p.seq_restarted = true;
        p.last_ack = None;
        p.first_tick = first_tick;
        let reconnected = ServerMsg::Ind { body: Indication::PlayerReconnected { player_id: p.id } };
        let (id, entity, token, key) =
            (p.id, p.entity, p.token.clone(), SeatKey::Player { player: p.id, epoch: p.epoch });
        // Everyone but the player itself, whose new connection gets its
        // `joined` first.
        for outbox in self.outboxes().filter(|o| !Rc::ptr_eq(o, &self.players[at].outbox)) {
            let _ = outbox.push_msg(&reconnected);
        }
        Ok((self.joined(id, entity, token.clone()), token, key))
    }

    /// The connection that took `key` is gone without `leave_room`: with
    /// `hold` (and a reconnect grace, and the room open) the seat is held
    /// for a `resume`, its avatar idle; else it is freed as by
    /// [`Room::leave`] with `reason`. A stale key (the seat was resumed
    /// elsewhere since) changes nothing. Returns whether the seat is held.
    pub fn disconnect(&mut self, key: SeatKey, reason: LeaveReason, hold: bool) -> bool {
        let SeatKey::Player { player, epoch } = key else {
            self.unwatch(key);
            return false;
        };
        let Some(p) = self.players.iter_mut().find(|p| p.id == player && p.epoch == epoch && p.held.is_none()) else {
            return false;
        };
        if !hold || self.config.reconnect_grace_us == 0 || self.closed.is_some() {
            self.leave(player, reason);
            return false;
        }
        p.held = Some(Held { until_us: None });
        p.input = self.game.input_schema().neutral();
        self.held += 1;
        self.notify(&ServerMsg::Ind { body: Indication::PlayerDisconnected { player_id: player } });
        true
    }

    /// Stops a spectator watching.
    pub fn unwatch(&mut self, key: SeatKey) {
        if let SeatKey::Spectator { id } = key {
            self.spectators.retain(|s| s.id != id);
        }
    }

    /// Adds a spectator writing through `outbox`: it gets the ticks from
    /// the next one on (a full state first).
    ///
    /// # Errors
    /// `room_full` at [`RoomConfig::max_spectators`]; `not_found` once the
    /// room closed.
    pub fn watch(&mut self, outbox: Rc<Outbox>) -> Result<(Watching, SeatKey), (RejectCode, String)> {
        if let Some(why) = &self.closed {
            return Err((RejectCode::NotFound, format!("room {} is closed: {why}", self.id)));
        }
        let max = self.config.max_spectators;
        if self.spectators.len() as u32 >= max {
            return Err((RejectCode::RoomFull, format!("room {} has {max} of {max} spectators", self.id)));
        }
        let id = self.next_spectator;
        self.next_spectator = self.next_spectator.wrapping_add(1).max(1);
        self.spectators.push(Spectator { id, outbox, last_ack: None, first_tick: self.tick.next() });
        let watching = Watching {
            room_id: self.id.clone(),
            game: self.game_name.clone(),
            tick_hz: self.config.tick_hz,
            schema: self.game.schema().clone(),
            input_schema: self.game.input_schema().clone(),
        };
        Ok((watching, SeatKey::Spectator { id }))
    }

    /// Frees a player's seat (left, disconnected, closed): the game's
    /// leave hook, then the others get `player_left` with the reason.
    /// Returns whether it was here.
    pub fn leave(&mut self, player: PlayerId, reason: LeaveReason) -> bool {
        let Some(at) = self.players.iter().position(|p| p.id == player) else { return false };
        if self.players.remove(at).held.is_some() {
            self.held -= 1;
        }
        if self.closed.is_none() {
            if let Err(panic) = self.host.leave(self.tick, player, reason) {
                self.fail(Hook::Leave, &panic);
            }
        }
        let notice =
            ServerMsg::Ind { body: Indication::PlayerLeft { player_id: player, reason: reason.as_str().to_owned() } };
        self.notify(&notice);
        true
    }

    /// A player's input frame: the newest `seq` wins, older ones are
    /// ignored; `ack` as in [`Room::ack`].
    pub fn input(&mut self, player: PlayerId, seq: InputSeq, ack: Option<Tick>, data: impl Into<InputValues>) {
        if let Some(p) = self.players.iter_mut().find(|p| p.id == player && p.held.is_none()) {
            if seq > p.input_seq || p.seq_restarted {
                p.seq_restarted = false;
                p.input_seq = seq;
                p.input = data.into();
            }
            if let Some(tick) = ack {
                Self::record_ack(&mut p.last_ack, p.first_tick, tick, self.tick);
            }
        }
    }

    /// An input frame as received: its data read with the game's input
    /// schema, then as [`Room::input`]. Refused data drops the whole input.
    ///
    /// # Errors
    /// The [`InputError`] of data that does not fit the schema.
    pub fn input_raw(
        &mut self,
        player: PlayerId,
        seq: InputSeq,
        ack: Option<Tick>,
        data: &RawInput,
    ) -> Result<(), InputError> {
        let values = self.game.input_schema().decode(data)?;
        self.input(player, seq, ack, values);
        Ok(())
    }

    /// A player's ack: the newest tick it applied. Acks only move forward;
    /// one the room no longer keeps (or never sent) gets a full state next.
    pub fn ack(&mut self, player: PlayerId, tick: Tick) {
        if let Some(p) = self.players.iter_mut().find(|p| p.id == player) {
            Self::record_ack(&mut p.last_ack, p.first_tick, tick, self.tick);
        }
    }

    /// A spectator's ack (as [`Room::ack`]).
    pub fn ack_spectator(&mut self, id: u32, tick: Tick) {
        if let Some(s) = self.spectators.iter_mut().find(|s| s.id == id) {
            Self::record_ack(&mut s.last_ack, s.first_tick, tick, self.tick);
        }
    }

    /// Acks move forward only, and only within the ticks this seat was
    /// sent (from its first tick to the newest taken): any other ack is
    /// ignored (the player keeps its last good baseline, or the full
    /// state), so it cannot pin a later baseline. An ack older than the
    /// seat is a client's ack of an earlier membership (an input written
    /// before its new `joined` arrived, after a rejoin or a resume), not a
    /// state it holds.
    fn record_ack(last_ack: &mut Option<Tick>, first_tick: Tick, tick: Tick, newest: Tick) {
        if tick >= first_tick && tick <= newest && last_ack.is_none_or(|a| tick > a) {
            *last_ack = Some(tick);
        }
    }

    /// Starts the grace of seats held since the last tick, and frees those
    /// whose grace ended: the others get `player_left` (`disconnected`).
    fn expire_holds(&mut self, now_us: u64) -> usize {
        if self.held == 0 {
            return 0;
        }
        let grace = self.config.reconnect_grace_us;
        let mut expired = Vec::new();
        for p in &mut self.players {
            if let Some(held) = &mut p.held {
                let until = *held.until_us.get_or_insert(now_us.saturating_add(grace));
                if now_us >= until {
                    expired.push(p.id);
                }
            }
        }
        for &player in &expired {
            self.leave(player, LeaveReason::Disconnected);
        }
        expired.len()
    }

    /// Takes the next tick at `now_us` (µs since the Unix epoch, the tick's
    /// `server_time_us`) and hands every player its frame.
    pub fn tick(&mut self, now_us: u64) -> TickReport {
        if self.closed.is_some() {
            return TickReport { tick: self.tick, ..TickReport::default() };
        }
        let seats_expired = self.expire_holds(now_us);
        self.tick = self.tick.next();
        let tick = self.tick;
        self.inputs.clear();
        self.inputs.extend(self.players.iter().map(|p| PlayerInput { player: p.id, data: p.input }));

        if let Err(panic) = self.host.step(tick, &self.inputs) {
            self.fail(Hook::Step, &panic);
            return TickReport { tick, panicked: Some(panic), ..TickReport::default() };
        }

        let mut snapshot = self.spare.take().unwrap_or_default();
        snapshot.tick = tick;
        snapshot.entities.clear();
        if let Err(panic) = self.host.write_snapshot(&mut snapshot.entities) {
            self.spare = Some(snapshot);
            self.fail(Hook::Snapshot, &panic);
            return TickReport { tick, panicked: Some(panic), ..TickReport::default() };
        }
        if !snapshot.is_well_formed() {
            // A game bug, not a reason to send clients a state they cannot
            // apply: sort, and keep one entity of each id.
            snapshot.sort();
            snapshot.entities.dedup_by_key(|e| e.id);
        }
        let entities = snapshot.entities.len();
        if let Some(evicted) = self.ring.push(snapshot) {
            self.spare = Some(evicted);
        }

        let fanned = self.fan_out(now_us);
        // A tick's events follow its state.
        let events = self.deliver_events();
        self.prune_baselines();
        TickReport {
            tick,
            players: self.players.len(),
            sent: fanned.sent,
            entities,
            encodings: fanned.encodings,
            closed_slow: fanned.closed_slow,
            seats_expired,
            panicked: None,
            events,
        }
    }

    /// Offers the current tick to every connected player and spectator.
    fn fan_out(&mut self, now_us: u64) -> FanOut {
        let tick = self.tick;
        let schema = self.game.schema();
        let current = self.ring.latest().expect("a snapshot was just pushed");
        let mut used = 0;
        let mut closed_slow = 0;
        let mut sent = 0;
        let viewers = self.players.iter().filter(|p| p.held.is_none()).map(|p| (&p.outbox, p.last_ack, p.input_seq));
        let viewers = viewers.chain(self.spectators.iter().map(|s| (&s.outbox, s.last_ack, InputSeq(0))));
        for (outbox, last_ack, input_seq) in viewers {
            if outbox.is_closing() {
                continue;
            }
            if let Some(ack) = last_ack {
                let lag = tick.since(ack);
                if lag > self.config.max_ack_lag_ticks {
                    outbox.close(CloseReason::TooSlow { detail: format!("newest ack is {lag} ticks old").into() });
                    closed_slow += 1;
                    continue;
                }
            }
            let baseline = last_ack.filter(|&a| a < tick).and_then(|a| self.ring.get(a));
            let format = outbox.format();
            let key = (baseline.map(|b| b.tick), Some(format));
            let at = match self.encoded[..used].iter().position(|e| (e.baseline, e.format) == key) {
                Some(at) => at,
                None => {
                    if used == self.encoded.len() {
                        self.encoded.push(Encoded::default());
                    }
                    let slot = &mut self.encoded[used];
                    slot.baseline = key.0;
                    slot.format = key.1;
                    slot.state.clear();
                    match format {
                        Format::Bin => {
                            self.bin_encoder.encode(schema, self.config.tick_hz, baseline, current, &mut slot.state)
                        }
                        Format::Json => {
                            delta::diff_into(schema, baseline, current, &mut self.plain);
                            delta::json::write(schema, &self.plain, &mut slot.state);
                        }
                    }
                    used += 1;
                    used - 1
                }
            };
            let encoded = &self.encoded[at];
            let header = TickHeader { tick, server_time_us: now_us, baseline: encoded.baseline, input_seq };
            match outbox.offer_tick(&header, &encoded.state) {
                0 => sent += 1,
                skipped if skipped > self.config.max_skipped_ticks => {
                    outbox.close(CloseReason::TooSlow { detail: format!("{skipped} ticks not taken").into() });
                    closed_slow += 1;
                }
                _ => {}
            }
        }
        FanOut { encodings: used, closed_slow, sent }
    }

    /// Drops the snapshots no player can use as a baseline any more: acks
    /// only move forward, so a snapshot older than every player's newest
    /// ack (or, before its first ack, than the first tick it was sent) is
    /// dead. With players acking each tick this keeps two or three
    /// snapshots instead of a second of them; a lagging player keeps what
    /// it needs, up to the ring's capacity. One pruned snapshot is kept as
    /// the next tick's buffer; the rest are freed.
    fn prune_baselines(&mut self) {
        // A held seat needs none: it gets a full state when resumed.
        let players = self.players.iter().filter(|p| p.held.is_none()).map(|p| p.last_ack.unwrap_or(p.first_tick));
        let spectators = self.spectators.iter().map(|s| s.last_ack.unwrap_or(s.first_tick));
        let oldest_needed = players.chain(spectators).min().unwrap_or(self.tick);
        if let Some(spare) = self.ring.prune_before(oldest_needed) {
            self.spare.get_or_insert(spare);
        }
    }

    /// Closes the room: the game's dispose hook (unless it panicked
    /// before), the events it sent, then every player gets `room_closing`
    /// with `reason` and leaves; no more ticks are taken.
    pub fn close(&mut self, reason: &str) {
        if self.closed.is_some() {
            return;
        }
        if let Err(panic) = self.host.dispose(self.tick) {
            // Closing anyway: the reason stays the one asked for.
            tracing::warn!(room = %self.id, %panic, "game panicked in dispose");
        }
        self.deliver_events();
        self.closed = Some(reason.to_owned());
        let notice = ServerMsg::Ind { body: Indication::RoomClosing { reason: reason.to_owned() } };
        self.held = 0;
        let players = self.players.drain(..).filter(|p| p.held.is_none()).map(|p| p.outbox);
        for outbox in players.chain(self.spectators.drain(..).map(|s| s.outbox)) {
            let _ = outbox.push_msg(&notice);
            // The connection's task takes it from here (its seat is gone).
            outbox.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::arena::Arena;
    use crate::outbox::OutboxItem;
    use tickforge_protocol::codec;
    use tickforge_protocol::message::{Confirm, InputData};
    use tickforge_protocol::session::{ClientSession, Event};

    fn room(max_players: u32) -> Room {
        Room::new(RoomId("r-0-1".into()), Arc::new(Arena::default()), RoomConfig::new(30, max_players), 42).unwrap()
    }

    /// Joins a player and hands its `joined` to a fresh client session.
    fn join(room: &mut Room, format: Format) -> (Rc<Outbox>, ClientSession, PlayerId) {
        let outbox = Outbox::new(format, 64);
        let joined = room.join(outbox.clone(), None).expect("a free seat");
        let mut session = ClientSession::new(format);
        let mut bytes = Vec::new();
        codec::encode_server(
            format,
            &ServerMsg::Cfm { id: Default::default(), body: Confirm::Joined(joined.clone()) },
            &mut bytes,
        );
        session.handle_message(&bytes).unwrap();
        while session.poll_event().is_some() {}
        (outbox, session, joined.player_id)
    }

    /// Delivers everything queued in `outbox` to `session`; returns ticks applied.
    fn deliver(outbox: &Outbox, session: &mut ClientSession) -> usize {
        let mut ticks = 0;
        while let Some(item) = outbox.try_next() {
            match item {
                OutboxItem::Control(bytes) => session.handle_message(&bytes).unwrap(),
                OutboxItem::Tick(bytes) => {
                    session.handle_message(&bytes).unwrap();
                    ticks += 1;
                }
            }
        }
        while session.poll_event().is_some() {}
        ticks
    }

    #[test]
    fn clients_rebuild_the_rooms_state_bit_for_bit_in_both_formats() {
        let mut room = room(8);
        let (bin_box, mut bin, bin_id) = join(&mut room, Format::Bin);
        let (json_box, mut json, _) = join(&mut room, Format::Json);
        for t in 1..=120u32 {
            let phase = f64::from(t) / 120.0 * std::f64::consts::TAU;
            let data = InputData {
                move_x: (phase.cos() * 127.0) as i8,
                move_y: (phase.sin() * 127.0) as i8,
                buttons: u8::from(t % 20 == 0),
            };
            room.input(bin_id, InputSeq(t), bin.latest_tick(), data);
            room.tick(1_000_000 + u64::from(t));
            assert_eq!(deliver(&bin_box, &mut bin), 1);
            assert_eq!(deliver(&json_box, &mut json), 1);
            let server = room.ring.latest().unwrap();
            assert_eq!(bin.state(), Some(server), "bin client at tick {t}");
            assert_eq!(json.state(), Some(server), "json client at tick {t}");
            // The JSON client acks only every other tick: deltas still apply.
            if t % 2 == 0 {
                let mut out = Vec::new();
                json.ack(&mut out);
                let tick = json.latest_tick().unwrap();
                room.ack(PlayerId(2), tick);
            }
        }
    }

    /// WORKLOAD.md's input for client `index` at time `t_s`: the stick turns
    /// a circle every 4 s, fire every 2 s, the phase drawn from the index.
    fn workload_input(index: usize, t_s: f64) -> InputData {
        let phase = index as f64 * 0.37;
        let angle = (t_s / 4.0 + phase) * std::f64::consts::TAU;
        let fire_phase = (t_s + index as f64 * 0.25) % 2.0;
        InputData {
            move_x: (angle.cos() * 127.0).round() as i8,
            move_y: (angle.sin() * 127.0).round() as i8,
            buttons: u8::from(fire_phase < 1.0 / 30.0),
        }
    }

    /// The arena size figure: 8 players, 16 NPCs and their projectiles over
    /// 600 ticks, every player acking each tick it applied. A size, not a
    /// time, so it is safe to assert.
    #[test]
    fn arena_deltas_are_a_fraction_of_the_full_state() {
        for format in [Format::Bin, Format::Json] {
            let mut room = room(8);
            let mut players: Vec<_> = (0..8).map(|_| join(&mut room, format)).collect();
            let (mut delta_bytes, mut full_bytes, mut messages) = (0usize, 0usize, 0usize);
            for t in 1..=600u32 {
                let t_s = f64::from(t) / 30.0;
                for (i, (_, session, id)) in players.iter_mut().enumerate() {
                    let mut out = Vec::new();
                    let seq = session.input(workload_input(i, t_s), &mut out);
                    room.input(*id, seq, session.latest_tick(), workload_input(i, t_s));
                }
                room.tick(1_763_740_000_000_000 + u64::from(t) * 33_333);
                for (outbox, session, _) in &mut players {
                    while let Some(item) = outbox.try_next() {
                        let OutboxItem::Tick(bytes) = item else { continue };
                        session.handle_message(&bytes).unwrap();
                        assert_eq!(session.state(), room.ring.latest());
                        if t > 30 {
                            delta_bytes += bytes.len();
                            full_bytes += session.full_state_len().unwrap();
                            messages += 1;
                        }
                    }
                    while session.poll_event().is_some() {}
                }
            }
            let (delta, full) = (delta_bytes as f64 / messages as f64, full_bytes as f64 / messages as f64);
            let ratio = delta / full;
            eprintln!(
                "{format:?}: mean tick message {delta:.1} B, full state {full:.1} B, ratio {:.1} %",
                ratio * 100.0
            );
            if format == Format::Bin {
                assert!(ratio < 0.35, "binary delta is {:.1} % of the full state", ratio * 100.0);
            }
        }
    }

    /// Arena's exact bytes: every frame 8 players of both formats receive
    /// over 20 s of WORKLOAD.md's inputs (players acking 1 to 4 ticks
    /// behind, one joining late and one leaving), hashed. Any change to
    /// arena's behaviour or its encoding changes the digest: the refactor
    /// of the game API (issue 14) must not.
    #[test]
    fn arena_bytes_are_pinned() {
        let mut room = room(8);
        let mut seats: Vec<(Rc<Outbox>, PlayerId)> = Vec::new();
        for i in 0..7 {
            let outbox = Outbox::new(if i % 2 == 0 { Format::Bin } else { Format::Json }, 1024);
            let joined = room.join(outbox.clone(), None).unwrap();
            seats.push((outbox, joined.player_id));
        }
        // FNV-1a over every frame, in order, with its player's index.
        let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                digest = (digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        let (mut frames, mut total) = (0usize, 0usize);
        for t in 1..=600u32 {
            if t == 100 {
                let outbox = Outbox::new(Format::Bin, 1024);
                let joined = room.join(outbox.clone(), None).unwrap();
                seats.push((outbox, joined.player_id));
            }
            if t == 300 {
                let (_, gone) = seats.remove(1);
                room.leave(gone, LeaveReason::Left);
            }
            let t_s = f64::from(t) / 30.0;
            for (i, (_, id)) in seats.iter().enumerate() {
                let back = 1 + (i as u64 % 4);
                let ack = Some(Tick(u64::from(t).saturating_sub(back))).filter(|a| a.0 > 0);
                room.input(*id, InputSeq(t), ack, workload_input(i, t_s));
            }
            room.tick(1_763_740_000_000_000 + u64::from(t) * 33_333);
            for (i, (outbox, _)) in seats.iter().enumerate() {
                while let Some(item) = outbox.try_next() {
                    let (OutboxItem::Control(bytes) | OutboxItem::Tick(bytes)) = item;
                    eat(&[i as u8]);
                    eat(&bytes);
                    frames += 1;
                    total += bytes.len();
                }
            }
        }
        eprintln!("arena: {frames} frames, {total} bytes, digest {digest:#018x}");
        // The player who joins at t = 100 acks ticks 96..=99, sent before
        // its seat: ignored since RELIABILITY.md's finding 2 (an ack older
        // than a seat is no baseline), so it gets full states until its
        // first ack of its own ticks (1,098 bytes more than before).
        assert_eq!((frames, total, digest), (4435, 2_058_567, 0x0424_2bd5_3014_897a));
    }

    /// Regression: an ack of a tick never sent used to pin the player to
    /// full states until the room reached that tick.
    #[test]
    fn an_ack_of_a_tick_never_sent_does_not_pin_full_states() {
        let mut room = room(8);
        let (outbox, mut session, id) = join(&mut room, Format::Bin);
        room.tick(1);
        deliver(&outbox, &mut session);
        room.ack(id, Tick(1_000_000));
        let mut baselines = Vec::new();
        for t in 2..=10 {
            room.ack(id, session.latest_tick().unwrap());
            room.tick(t);
            let Some(OutboxItem::Tick(bytes)) = outbox.try_next() else { panic!("tick expected") };
            session.handle_message(&bytes).unwrap();
            let Some(Event::Tick(header)) = session.poll_event() else { panic!("tick event expected") };
            baselines.push(header.baseline);
        }
        assert!(baselines.iter().all(Option::is_some), "deltas, not full states: {baselines:?}");
    }

    #[test]
    fn the_ring_keeps_only_what_a_player_can_still_ack() {
        let mut room = room(8);
        let (fast_box, mut fast, fast_id) = join(&mut room, Format::Bin);
        for t in 1..=60 {
            room.tick(t);
            deliver(&fast_box, &mut fast);
            room.ack(fast_id, fast.latest_tick().unwrap());
        }
        assert!(room.ring.len() <= 2, "an acking player pins one baseline: {}", room.ring.len());
        // A player that never acks pins the tick it joined at, up to the
        // ring's capacity; the fast one still gets deltas.
        let (_slow_box, _slow, _) = join(&mut room, Format::Bin);
        for t in 61..=200 {
            room.tick(t);
            deliver(&fast_box, &mut fast);
            room.ack(fast_id, fast.latest_tick().unwrap());
        }
        assert_eq!(room.ring.len(), room.ring.capacity());
        assert_eq!(fast.state(), room.ring.latest());
    }

    #[test]
    fn a_full_room_rejects_and_leaving_notifies_the_others() {
        let mut room = room(2);
        let (a_box, mut a, _) = join(&mut room, Format::Json);
        let (_b_box, _b, b_id) = join(&mut room, Format::Json);
        let err = room.join(Outbox::new(Format::Json, 4), None).unwrap_err();
        assert_eq!(err, (RejectCode::RoomFull, "room r-0-1 has 2 of 2 players".to_owned()));
        assert!(room.leave(b_id, LeaveReason::Left));
        assert!(!room.leave(b_id, LeaveReason::Left));
        let mut seen = Vec::new();
        while let Some(OutboxItem::Control(bytes)) = a_box.try_next() {
            a.handle_message(&bytes).unwrap();
            while let Some(e) = a.poll_event() {
                seen.push(e);
            }
        }
        assert_eq!(
            seen,
            vec![
                Event::Indication(Indication::PlayerJoined { player_id: b_id, user_id: None, name: None }),
                Event::Indication(Indication::PlayerLeft { player_id: b_id, reason: "left".into() }),
            ]
        );
    }

    #[test]
    fn a_player_that_stops_taking_ticks_is_closed_and_the_others_go_on() {
        let mut room = room(8);
        let (stuck_box, _stuck, _) = join(&mut room, Format::Bin);
        let (live_box, mut live, live_id) = join(&mut room, Format::Bin);
        let bound = room.config.max_skipped_ticks as u64;
        for t in 0..bound + 3 {
            room.input(live_id, InputSeq(t as u32 + 1), live.latest_tick(), InputData::default());
            room.tick(t);
            assert_eq!(deliver(&live_box, &mut live), 1, "the live player gets every tick");
        }
        assert!(stuck_box.is_closing());
        assert!(matches!(stuck_box.try_next(), Some(OutboxItem::Control(_))), "player_joined of the live one");
        assert!(matches!(stuck_box.try_next(), Some(OutboxItem::Tick(_))), "its first tick, never taken");
        assert_eq!(stuck_box.try_next(), None, "the later ones were skipped, not queued");
        assert!(matches!(stuck_box.close_reason(), Some(CloseReason::TooSlow { .. })));
    }

    #[test]
    fn a_panicking_game_closes_only_its_room() {
        use crate::game::{Ctx, GameRoom, PlayerInfo, PlayerInput, Refusal};
        use tickforge_protocol::ids::EntityId;
        use tickforge_protocol::snapshot::Entity;
        struct Boom;
        impl GameRoom for Boom {
            fn join(&mut self, _: &mut Ctx<'_>, _: &PlayerInfo, _: &ValueMap) -> Result<EntityId, Refusal> {
                Ok(EntityId(0))
            }
            fn step(&mut self, _: &mut Ctx<'_>, _: &[PlayerInput]) {
                panic!("boom");
            }
            fn write_snapshot(&self, _: &mut Vec<Entity>) {}
        }
        struct BoomGame(tickforge_protocol::schema::Schema);
        impl Game for BoomGame {
            fn name(&self) -> &str {
                "boom"
            }
            fn schema(&self) -> &tickforge_protocol::schema::Schema {
                &self.0
            }
            fn create(&self, _: &mut Ctx<'_>, _: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
                Ok(Box::new(Boom))
            }
        }
        let game = Arc::new(BoomGame(Arena::default().schema().clone()));
        let mut room = Room::new(RoomId("r-0-2".into()), game, RoomConfig::default(), 1).unwrap();
        let outbox = Outbox::new(Format::Json, 8);
        room.join(outbox.clone(), None).unwrap();
        let report = room.tick(0);
        assert_eq!(report.panicked.as_deref(), Some("boom"));
        assert_eq!(room.closed(), Some("game error in step: boom"));
        assert!(!room.has_player(PlayerId(1)));
        let Some(OutboxItem::Control(bytes)) = outbox.try_next() else { panic!("room_closing expected") };
        assert_eq!(
            codec::decode_server(Format::Json, &bytes).unwrap(),
            ServerMsg::Ind { body: Indication::RoomClosing { reason: "game error in step: boom".into() } }
        );
        assert_eq!(room.take_game_stats().panics, 1);
        let mut other = self::room(8);
        assert!(other.tick(0).panicked.is_none(), "another room ticks on");
    }
}
