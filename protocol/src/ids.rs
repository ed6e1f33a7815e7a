//! Identifier and counter newtypes, each with its overflow rule.
//!
//! The rules are chosen so that no counter can wrap in a plausible run:
//! a `u64` tick at 128 Hz lasts 4.5 billion years, so ticks never wrap and
//! comparisons are plain integer comparisons. Counters that are `u32`
//! (`InputSeq`, `RequestId`) saturate at `u32::MAX` on the side that
//! produces them: at 128 inputs a second that is over a year of one
//! connection, far past any session.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A room's tick number: counted per room from 1, never wraps (u64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(transparent)]
pub struct Tick(pub u64);

impl Tick {
    /// The tick after this one (saturating, which a u64 tick never reaches).
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// How many ticks `self` is after `earlier` (0 when it is not after).
    #[must_use]
    pub fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A client's input sequence number: increases per client, 0 = no input yet;
/// saturates at `u32::MAX`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(transparent)]
pub struct InputSeq(pub u32);

impl InputSeq {
    /// The next sequence number (saturating).
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

/// A request id chosen by the client, echoed in its `cfm` or `rej`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(transparent)]
pub struct RequestId(pub u32);

/// A player's id, unique within its room (assigned from 1, never reused in
/// a room's life; the room refuses joins rather than wrap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(transparent)]
pub struct PlayerId(pub u32);

/// An entity's id, unique within its room's state (assigned from 1; a room
/// refuses to spawn rather than wrap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(transparent)]
pub struct EntityId(pub u32);

/// A room's id: a short string such as `r-1-12` (shard 1, room 12).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(transparent)]
pub struct RoomId(pub String);

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session's id, given in `welcome`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode)]
#[serde(transparent)]
pub struct SessionId(pub String);
