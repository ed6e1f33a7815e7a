//! What the directory stores and what nodes say to each other, as the JSON
//! values written in Redis: the Redis keys ([`Keys`]), a node's heartbeat
//! ([`NodeRecord`]), a room's row ([`RoomRecord`]), and the node-to-node
//! request and reply ([`NodeRequest`], [`NodeReply`]).
//!
//! JSON because it is what an operator reads with `redis-cli`, and because
//! a room's `metadata` and `options` (the contract's values) have an exact
//! JSON form (bytes as `{"$bytes": "<base64>"}`).

use serde::{Deserialize, Serialize};
use std::fmt;
use tickforge_protocol::ids::RoomId;

/// A map value (a room's metadata, a game's options), in its JSON form.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// The Redis keys of one cluster (DESIGN.md, Cluster, lists them with their
/// TTLs and writers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys under `prefix`.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// `{p}:nodes`: the set of node ids that have heartbeated (readers drop
    /// the ids whose heartbeat key has expired).
    #[must_use]
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// `{p}:node:{id}`: the node's heartbeat ([`NodeRecord`]), with a TTL.
    #[must_use]
    pub fn node(&self, id: &str) -> String {
        format!("{}:node:{id}", self.prefix)
    }

    /// `{p}:rooms:{id}`: a hash of the node's rooms, room id to
    /// [`RoomRecord`], expiring with the heartbeat.
    #[must_use]
    pub fn rooms(&self, id: &str) -> String {
        format!("{}:rooms:{id}", self.prefix)
    }

    /// `{p}:inbox:{id}`: the list of requests to the node.
    #[must_use]
    pub fn inbox(&self, id: &str) -> String {
        format!("{}:inbox:{id}", self.prefix)
    }

    /// `{p}:replies:{id}`: the list of replies to the node's requests.
    #[must_use]
    pub fn replies(&self, id: &str) -> String {
        format!("{}:replies:{id}", self.prefix)
    }

    /// `{p}:resv:{token}`: a live reservation ([`ReservationRecord`]), with
    /// the reservation's TTL.
    #[must_use]
    pub fn reservation(&self, token: &str) -> String {
        format!("{}:resv:{token}", self.prefix)
    }
}

/// A node's heartbeat: who it is, where clients reach it, its load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its id.
    pub node_id: String,
    /// The `ws://` or `wss://` address of its clients.
    pub url: String,
    /// Players in its rooms.
    pub players: u32,
    /// Players it can hold (its connection limit).
    pub capacity: u32,
    /// Its rooms (public and private).
    pub rooms: u32,
    /// Shutting down: it takes no new rooms.
    pub draining: bool,
    /// Random per process start: a restarted node under the same id is a
    /// new epoch, so readers reload its rooms.
    pub epoch: u64,
    /// Bumped whenever its rooms hash changes: readers reload a node's
    /// rooms only when `(epoch, rooms_rev)` moved.
    pub rooms_rev: u64,
    /// The server's version.
    pub version: String,
}

impl NodeRecord {
    /// Seats it can still take: capacity minus players.
    #[must_use]
    pub fn headroom(&self) -> u32 {
        self.capacity.saturating_sub(self.players)
    }
}

/// One room's row in the directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// Its id: unique in the cluster (room ids carry their node's tag, see
    /// [`crate::cluster::Cluster::node_tag`]).
    pub room_id: RoomId,
    /// Its game.
    pub game: String,
    /// Players seated.
    pub players: u32,
    /// Seats held by live reservations (taken, for matchmaking).
    #[serde(default)]
    pub reserved: u32,
    /// Its seats.
    pub max_players: u32,
    /// Spectators watching.
    #[serde(default)]
    pub spectators: u32,
    /// Its tick rate, Hz.
    pub tick_hz: u32,
    /// Private rooms are never listed nor matched, only joined by id.
    #[serde(default)]
    pub private: bool,
    /// The metadata the game set (`list_rooms` filters on it).
    #[serde(default)]
    pub metadata: JsonMap,
    /// The options it was created with (`join_or_create` matches them).
    #[serde(default)]
    pub options: JsonMap,
}

impl RoomRecord {
    /// A public room with no one in it, no metadata, no options.
    #[must_use]
    pub fn new(room_id: RoomId, game: impl Into<String>, max_players: u32, tick_hz: u32) -> Self {
        Self {
            room_id,
            game: game.into(),
            players: 0,
            reserved: 0,
            max_players,
            spectators: 0,
            tick_hz,
            private: false,
            metadata: JsonMap::new(),
            options: JsonMap::new(),
        }
    }

    /// Seats neither taken nor held.
    #[must_use]
    pub fn free_seats(&self) -> u32 {
        self.max_players.saturating_sub(self.players.saturating_add(self.reserved))
    }

    /// Whether each key of `filter` is in the metadata with an equal value
    /// (CONTRACT.md: a key its metadata lacks never matches).
    #[must_use]
    pub fn matches(&self, filter: &JsonMap) -> bool {
        filter.iter().all(|(k, v)| self.metadata.get(k) == Some(v))
    }
}

/// A live reservation as written in Redis, for operators (the owner's
/// memory is the authority that honours it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRecord {
    /// The node holding the seat.
    pub node_id: String,
    /// The room.
    pub room_id: RoomId,
}

/// What one node asks another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Ask {
    /// Hold a seat in your room `room_id`.
    Reserve {
        /// The room.
        room_id: RoomId,
    },
    /// Create a room of `game` with `options`, and hold a seat in it.
    Create {
        /// The game.
        game: String,
        /// Its options (`{}` for none).
        #[serde(default)]
        options: JsonMap,
    },
}

/// A request from node `from`, pushed on the target's inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRequest {
    /// Unique among `from`'s requests.
    pub id: u64,
    /// The asking node.
    pub from: String,
    /// What it asks.
    pub ask: Ask,
}

/// A seat held for a client: where to connect and what to send there
/// (`join_room` {`room_id`, `reservation`}): the body of `cfm redirect`
/// and of `POST /matchmake`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// The owner's `ws://` or `wss://` address.
    pub url: String,
    /// The room.
    pub room_id: RoomId,
    /// The single-use reservation token.
    pub reservation: String,
}

/// Why a node refused a request: a reject code and a reason for a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Refusal {
    /// The contract's reject code for it.
    pub code: RefuseCode,
    /// Why, for a person.
    pub reason: String,
}

impl Refusal {
    /// A refusal with `code` and `reason`.
    #[must_use]
    pub fn new(code: RefuseCode, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }
}

/// The reject codes a node request can end in (the contract's names; the
/// request path maps each to its `rej` code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefuseCode {
    /// No such room or game there (`not_found`).
    NotFound,
    /// The room has no free seat (`room_full`).
    RoomFull,
    /// The node is at a limit or draining (`overloaded`).
    Overloaded,
    /// The game refused (`refused`).
    Refused,
    /// The request was malformed (`bad_request`).
    BadRequest,
    /// A fault on the owner (`internal`).
    Internal,
}

impl RefuseCode {
    /// The contract's snake_case name (the `rej` code).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::RoomFull => "room_full",
            Self::Overloaded => "overloaded",
            Self::Refused => "refused",
            Self::BadRequest => "bad_request",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for RefuseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to a [`NodeRequest`], pushed on the asker's replies list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReply {
    /// The request's id.
    pub id: u64,
    /// The answering node.
    pub from: String,
    /// The seat, or why not.
    pub result: Result<Seat, Refusal>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_round_trip_as_json_and_old_rows_default() {
        let mut r = RoomRecord::new(RoomId("r-ab-0-1".into()), "arena", 8, 30);
        r.players = 3;
        r.reserved = 2;
        r.metadata.insert("map".into(), json!("dust"));
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<RoomRecord>(&text).unwrap(), r);
        assert_eq!(r.free_seats(), 3);
        let bare: RoomRecord =
            serde_json::from_str(r#"{"room_id":"x","game":"g","players":1,"max_players":2,"tick_hz":30}"#).unwrap();
        assert!(!bare.private && bare.metadata.is_empty());
        let reply = NodeReply { id: 4, from: "a".into(), result: Err(Refusal::new(RefuseCode::RoomFull, "full")) };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(text, r#"{"id":4,"from":"a","result":{"Err":{"code":"room_full","reason":"full"}}}"#);
        assert_eq!(serde_json::from_str::<NodeReply>(&text).unwrap(), reply);
    }

    #[test]
    fn a_filter_matches_equal_values_only() {
        let mut r = RoomRecord::new(RoomId("x".into()), "arena", 8, 30);
        r.metadata.insert("map".into(), json!("dust"));
        r.metadata.insert("ranked".into(), json!(true));
        let filter = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert!(r.matches(&filter(json!({}))));
        assert!(r.matches(&filter(json!({"map": "dust"}))));
        assert!(r.matches(&filter(json!({"map": "dust", "ranked": true}))));
        assert!(!r.matches(&filter(json!({"map": "mirage"}))));
        assert!(!r.matches(&filter(json!({"mode": null}))));
    }
}
