//! The messages of the public contract, in both directions.
//!
//! One Rust type per message; the same types serialize to both wire forms:
//! serde (internally tagged by `"type"`, snake_case) for `tickforge.v1.json`
//! and bincode's own derive (enum = variant index, then fields) for
//! `tickforge.v1.bin`. Variant order is part of the binary contract: only
//! append new variants at the end.

use crate::ids::{EntityId, InputSeq, PlayerId, RequestId, RoomId, SessionId, Tick};
use crate::input::{InputSchema, RawInput};
use crate::schema::Schema;
use crate::value::{Value, ValueMap};
use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

pub use crate::input::InputData;

/// A message from a client to the server.
///
/// Its binary form is written by [`crate::codec`] by hand (variant index,
/// then the fields), because an input's data runs to the end of the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// A request, answered by exactly one `cfm` or `rej` with the same `id`.
    Req {
        /// Chosen by the client, echoed in the answer.
        id: RequestId,
        /// What is asked.
        body: Request,
    },
    /// One input frame; no answer (later ticks report the newest `seq`).
    Input {
        /// Increases per client.
        seq: InputSeq,
        /// The newest tick the client has applied, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<Tick>,
        /// The game's input, read with the room's input schema
        /// ([`InputSchema::decode`]).
        data: RawInput,
    },
    /// The newest tick applied, for a client with no input to send.
    Ack {
        /// The newest tick the client has applied.
        tick: Tick,
    },
}

/// A request's body (`req.body`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Optional greeting; required when the server is configured with a token.
    Hello {
        /// The shared token, when the server requires one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Free text naming the client, for logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// The public rooms, optionally of one game and matching a filter.
    ListRooms {
        /// Only rooms of this game.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        game: Option<String>,
        /// Only rooms whose metadata holds each of these keys with an
        /// equal value ([`ValueMap::matches`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<ValueMap>,
    },
    /// Create a room and join it.
    CreateRoom {
        /// The game's registered name, e.g. `arena`.
        game: String,
        /// Seats; the server's default and bound apply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_players: Option<u32>,
        /// Tick rate in Hz (10 to 128).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tick_hz: Option<u32>,
        /// A private room is joinable by id only and not listed.
        #[serde(default)]
        private: bool,
        /// The game's options for the room (a map, a mode); none is `{}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        options: Option<ValueMap>,
    },
    /// Join a room by id.
    JoinRoom {
        /// The room to join.
        room_id: RoomId,
        /// The seat reservation a `redirect` gave, when joining after one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reservation: Option<String>,
    },
    /// Join the fullest public room of the game with a free seat (created
    /// with equal options), else create one.
    JoinOrCreate {
        /// The game's registered name.
        game: String,
        /// The game's options; only rooms created with equal options are
        /// joined (none is the same as `{}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        options: Option<ValueMap>,
    },
    /// Leave the current room.
    LeaveRoom,
    /// Round-trip time probe.
    Ping {
        /// The client's clock, echoed back.
        client_time_us: u64,
    },
    /// Take back a held seat after a lost connection.
    Resume {
        /// The seat's room.
        room_id: RoomId,
        /// The newest `resume_token` the seat was given.
        resume_token: String,
    },
    /// Watch a room's ticks without a seat.
    WatchRoom {
        /// The room to watch.
        room_id: RoomId,
    },
    /// A message to the room's game, answered by `game_reply` or a `rej`.
    GameMessage {
        /// What kind of message, as the game names it (`chat`, `buy`, ...).
        name: String,
        /// Its content.
        data: Value,
    },
}

impl Request {
    /// The request's `type` name on the wire.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::ListRooms { .. } => "list_rooms",
            Self::CreateRoom { .. } => "create_room",
            Self::JoinRoom { .. } => "join_room",
            Self::JoinOrCreate { .. } => "join_or_create",
            Self::LeaveRoom => "leave_room",
            Self::Ping { .. } => "ping",
            Self::Resume { .. } => "resume",
            Self::WatchRoom { .. } => "watch_room",
            Self::GameMessage { .. } => "game_message",
        }
    }

    /// Every request `type` name this protocol version knows, in variant order.
    pub const NAMES: &'static [&'static str] = &[
        "hello",
        "list_rooms",
        "create_room",
        "join_room",
        "join_or_create",
        "leave_room",
        "ping",
        "resume",
        "watch_room",
        "game_message",
    ];
}

/// A message from the server to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// A request confirmed.
    Cfm {
        /// The request's id.
        id: RequestId,
        /// The confirmation.
        body: Confirm,
    },
    /// A request rejected; the connection stays usable.
    Rej {
        /// The request's id.
        id: RequestId,
        /// Why, as a code a client can match.
        code: RejectCode,
        /// Why, for a person.
        reason: String,
    },
    /// A notification the server sends on its own.
    Ind {
        /// The notification.
        body: Indication,
    },
    /// A state tick.
    Tick(TickMsg),
}

/// A confirmation's body (`cfm.body`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Confirm {
    /// Answer to `hello`.
    Welcome {
        /// This connection's session id.
        session_id: SessionId,
        /// The server's version string.
        server_version: String,
        /// The user the `hello` token named (its `sub`), when identities
        /// are on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// Answer to `list_rooms`.
    RoomList {
        /// The public rooms.
        rooms: Vec<RoomInfo>,
    },
    /// Answer to `create_room`, `join_room` and `join_or_create`.
    Joined(Joined),
    /// Answer to `leave_room`.
    Left {
        /// The room left.
        room_id: RoomId,
    },
    /// Answer to `ping`.
    Pong {
        /// The client's clock from the `ping`.
        client_time_us: u64,
        /// The server's clock when it answered.
        server_time_us: u64,
    },
    /// Answer to `watch_room`: ticks follow as for a player.
    Watching(Watching),
    /// Answer to `game_message`.
    GameReply {
        /// The game's answer.
        data: Value,
    },
    /// Answer to `join_room` or `join_or_create` when the seat is on
    /// another server: connect to `url` and send `join_room` with
    /// `room_id` and `reservation`.
    Redirect {
        /// The `ws://` or `wss://` address of the server holding the seat.
        url: String,
        /// The room to join there.
        room_id: RoomId,
        /// The seat's reservation: single-use, held for 10 s.
        reservation: String,
    },
}

/// The `joined` confirmation: where the player is and how to read its ticks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct Joined {
    /// The room joined.
    pub room_id: RoomId,
    /// The room's game.
    pub game: String,
    /// This player's id in the room.
    pub player_id: PlayerId,
    /// This player's avatar entity (0 when the game gives none).
    pub entity_id: EntityId,
    /// The room's tick rate.
    pub tick_hz: u32,
    /// The room's seats.
    pub max_players: u32,
    /// The token that takes this seat back with `resume` after a lost
    /// connection: single-use, replaced by every `joined`; empty when the
    /// server holds no seats (reconnect grace 0).
    pub resume_token: String,
    /// The entity schema the room's ticks are encoded with.
    pub schema: Schema,
    /// The game's input fields: what `input.data` carries.
    pub input_schema: InputSchema,
}

/// The `watching` confirmation: the room watched and how to read its ticks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct Watching {
    /// The room watched.
    pub room_id: RoomId,
    /// The room's game.
    pub game: String,
    /// The room's tick rate.
    pub tick_hz: u32,
    /// The entity schema the room's ticks are encoded with.
    pub schema: Schema,
    /// The game's input fields (what its players send), for display.
    pub input_schema: InputSchema,
}

/// One row of `room_list` and of `GET /rooms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct RoomInfo {
    /// The room's id.
    pub room_id: RoomId,
    /// The room's game.
    pub game: String,
    /// Players in it now.
    pub players: u32,
    /// Its seats.
    pub max_players: u32,
    /// Its tick rate.
    pub tick_hz: u32,
    /// Spectators watching it now.
    #[serde(default)]
    pub spectators: u32,
    /// What the game publishes about it (a map, a round, a phase), for
    /// filters and lobbies.
    #[serde(default)]
    pub metadata: ValueMap,
}

/// An indication's body (`ind.body`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Indication {
    /// A player joined the room.
    PlayerJoined {
        /// Who.
        player_id: PlayerId,
        /// Its user id, when identities are on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        /// Its display name, when its token gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A player left the room.
    PlayerLeft {
        /// Who.
        player_id: PlayerId,
        /// Why, e.g. `left`, `disconnected`, `too_slow`.
        reason: String,
    },
    /// The room is closing; no more ticks follow.
    RoomClosing {
        /// Why, e.g. `server shutting down`.
        reason: String,
    },
    /// A bad message that had no request id.
    Error {
        /// What was wrong, as a code.
        code: RejectCode,
        /// What was wrong, for a person.
        reason: String,
    },
    /// A player's connection dropped; its seat is held for the reconnect
    /// grace, its avatar idle.
    PlayerDisconnected {
        /// Who.
        player_id: PlayerId,
    },
    /// A disconnected player took its seat back with `resume`.
    PlayerReconnected {
        /// Who.
        player_id: PlayerId,
    },
    /// An event from the game (a round over, a chat line).
    GameEvent {
        /// What kind of event, as the game names it.
        name: String,
        /// Its content.
        data: Value,
    },
}

/// The reject (and `error` indication) codes of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The message was malformed.
    BadRequest,
    /// An unknown request type.
    Unsupported,
    /// An unknown game or room.
    NotFound,
    /// The room has no free seat.
    RoomFull,
    /// A join while already in a room.
    AlreadyInRoom,
    /// A room operation while in no room.
    NotInRoom,
    /// A missing or refused token.
    Unauthorized,
    /// Too many requests or inputs.
    RateLimited,
    /// The server is at a limit (rooms, connections) or draining.
    Overloaded,
    /// A server fault.
    Internal,
    /// The game said no (a join, options, a game message), with its reason.
    Refused,
}

impl RejectCode {
    /// Every code, in wire order.
    pub const ALL: [Self; 11] = [
        Self::BadRequest,
        Self::Unsupported,
        Self::NotFound,
        Self::RoomFull,
        Self::AlreadyInRoom,
        Self::NotInRoom,
        Self::Unauthorized,
        Self::RateLimited,
        Self::Overloaded,
        Self::Internal,
        Self::Refused,
    ];

    /// The code's snake_case wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unsupported => "unsupported",
            Self::NotFound => "not_found",
            Self::RoomFull => "room_full",
            Self::AlreadyInRoom => "already_in_room",
            Self::NotInRoom => "not_in_room",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal",
            Self::Refused => "refused",
        }
    }
}

/// A state tick, as sent to one player.
///
/// Everything but `state` is per player (`baseline`, `input_seq`); `state`
/// is the delta from `baseline`, encoded once per baseline and shared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct TickMsg {
    /// This tick's number.
    pub tick: Tick,
    /// When the room took this tick's state, in µs since the Unix epoch.
    pub server_time_us: u64,
    /// The tick the delta is against; `None` = full state.
    pub baseline: Option<Tick>,
    /// The newest input `seq` of this player that this tick includes.
    pub input_seq: InputSeq,
    /// The delta, in the message's own form (see [`StateBytes`]).
    pub state: StateBytes,
}

/// An encoded state delta: in `tickforge.v1.bin` the compact blob of
/// [`crate::delta::bin`], in `tickforge.v1.json` the JSON object text of
/// [`crate::delta::json`]. Opaque to the message codec, so the server
/// encodes it once per baseline and copies the bytes to every player.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct StateBytes(pub Vec<u8>);

impl Serialize for StateBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let text = std::str::from_utf8(&self.0).map_err(S::Error::custom)?;
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).map_err(S::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StateBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(Self(raw.get().as_bytes().to_vec()))
    }
}
