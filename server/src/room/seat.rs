//! A room as its shard shares it ([`RoomSlot`]), and a connection's place
//! in one ([`Seat`]): the one handle that says which room a connection is
//! in, as a player or a spectator. The room's lists are the truth; a seat
//! is the connection's reference to its entry there ([`SeatKey`]), taken by
//! [`Seat::take`], [`Seat::resume`] or [`Seat::watch`] and given back by
//! [`Seat::leave`] (`leave_room`) or [`Seat::disconnect`] (the connection
//! ended: the seat is held for a `resume`). A room that closes, removes a
//! player on its own, or gives the seat to a `resume` on another
//! connection leaves the seat dangling: [`Seat::is_held`] says so, and the
//! connection drops it.

use super::{Room, SeatKey};
use crate::game::LeaveReason;
use crate::outbox::Outbox;
use std::cell::RefCell;
use std::rc::Rc;
use tickforge_protocol::ids::{InputSeq, PlayerId, RoomId, Tick};
use tickforge_protocol::input::{InputError, RawInput};
use tickforge_protocol::message::{Joined, RejectCode, Watching};
use tickforge_protocol::value::{Value, ValueMap};

/// A room on a shard, shared by its tick schedule, its players' seats and
/// the shard's room map.
#[derive(Debug)]
pub struct RoomSlot {
    /// The room.
    pub room: RefCell<Room>,
}

impl RoomSlot {
    /// A slot holding `room`.
    #[must_use]
    pub fn new(room: Room) -> Rc<Self> {
        Rc::new(Self { room: RefCell::new(room) })
    }
}

/// A connection's seat in a room (or its place as a spectator).
#[derive(Debug)]
pub struct Seat {
    slot: Rc<RoomSlot>,
    key: SeatKey,
}

impl Seat {
    /// Seats the connection writing through `outbox` (signed in as
    /// `identity`) in the room of `slot` with join `options` (see
    /// [`Room::join_as`]); the `joined` holds the seat's resume token.
    ///
    /// # Errors
    /// As [`Room::join_as`]: `room_full`, `not_found` (closed), `overloaded`,
    /// `refused`, `internal`.
    pub fn take(
        slot: &Rc<RoomSlot>,
        outbox: Rc<Outbox>,
        identity: Option<&crate::auth::Identity>,
        options: &ValueMap,
    ) -> Result<(Self, Joined), (RejectCode, String)> {
        let joined = slot.room.borrow_mut().join_as(outbox, identity, options)?;
        let key = SeatKey::Player { player: joined.player_id, epoch: 0 };
        Ok((Self { slot: slot.clone(), key }, joined))
    }

    /// Takes back the seat whose resume token is `token` (see
    /// [`Room::resume`]); the `joined` holds the seat's new token.
    ///
    /// # Errors
    /// `not_found`: no seat has this token, or the room closed.
    pub fn resume(
        slot: &Rc<RoomSlot>,
        token: &str,
        outbox: Rc<Outbox>,
    ) -> Result<(Self, Joined), (RejectCode, String)> {
        let (joined, _, key) = slot.room.borrow_mut().resume(token, outbox)?;
        Ok((Self { slot: slot.clone(), key }, joined))
    }

    /// Watches the room of `slot` as a spectator (see [`Room::watch`]).
    ///
    /// # Errors
    /// `room_full` at the spectator bound; `not_found` once closed.
    pub fn watch(slot: &Rc<RoomSlot>, outbox: Rc<Outbox>) -> Result<(Self, Watching), (RejectCode, String)> {
        let (info, key) = slot.room.borrow_mut().watch(outbox)?;
        Ok((Self { slot: slot.clone(), key }, info))
    }

    /// The room.
    #[must_use]
    pub fn slot(&self) -> &Rc<RoomSlot> {
        &self.slot
    }

    /// The room's id.
    #[must_use]
    pub fn room_id(&self) -> RoomId {
        self.slot.room.borrow().id().clone()
    }

    /// What it names in the room.
    #[must_use]
    pub fn key(&self) -> SeatKey {
        self.key
    }

    /// The player's id in the room (`None` for a spectator).
    #[must_use]
    pub fn player(&self) -> Option<PlayerId> {
        match self.key {
            SeatKey::Player { player, .. } => Some(player),
            SeatKey::Spectator { .. } => None,
        }
    }

    /// Whether this is a spectator's place (no input).
    #[must_use]
    pub fn is_spectator(&self) -> bool {
        matches!(self.key, SeatKey::Spectator { .. })
    }

    /// Whether the room still has this seat for this connection (it may
    /// have closed, removed the player, or given the seat to a resume).
    #[must_use]
    pub fn is_held(&self) -> bool {
        let room = self.slot.room.borrow();
        room.closed().is_none() && room.holds(self.key)
    }

    /// A player's input frame as received (see [`Room::input_raw`]); a
    /// spectator has none, and a seat resumed elsewhere takes none.
    ///
    /// # Errors
    /// The data does not fit the game's input schema: the input is dropped.
    pub fn input(&self, seq: InputSeq, ack: Option<Tick>, data: &RawInput) -> Result<(), InputError> {
        match self.key {
            SeatKey::Player { player, .. } if self.is_held() => {
                self.slot.room.borrow_mut().input_raw(player, seq, ack, data)
            }
            _ => Ok(()),
        }
    }

    /// A player's or spectator's ack (see [`Room::ack`]).
    pub fn ack(&self, tick: Tick) {
        match self.key {
            SeatKey::Player { player, .. } if self.is_held() => self.slot.room.borrow_mut().ack(player, tick),
            SeatKey::Player { .. } => {}
            SeatKey::Spectator { id } => self.slot.room.borrow_mut().ack_spectator(id, tick),
        }
    }

    /// A `game_message` to the room's game (see [`Room::game_message`]).
    ///
    /// # Errors
    /// As [`Room::game_message`]; `not_in_room` for a spectator or a seat
    /// resumed elsewhere.
    pub fn game_message(&self, name: &str, data: &Value) -> Result<Value, (RejectCode, String)> {
        match self.key {
            SeatKey::Player { player, .. } if self.is_held() => {
                self.slot.room.borrow_mut().game_message(player, name, data)
            }
            SeatKey::Player { .. } => Err((RejectCode::NotInRoom, "game_message from a seat resumed elsewhere".into())),
            SeatKey::Spectator { .. } => {
                Err((RejectCode::NotInRoom, "game_message while watching (a spectator has no seat)".into()))
            }
        }
    }

    /// Gives the seat back (`leave_room`): the others get `player_left`
    /// with `reason`; a spectator stops watching. Returns the room's id.
    pub fn leave(self, reason: LeaveReason) -> RoomId {
        let mut room = self.slot.room.borrow_mut();
        match self.key {
            SeatKey::Player { player, .. } if room.holds(self.key) => {
                room.leave(player, reason);
            }
            SeatKey::Player { .. } => {}
            SeatKey::Spectator { .. } => room.unwatch(self.key),
        }
        room.id().clone()
    }

    /// The connection ended without `leave_room`: the seat is held for a
    /// `resume` when `hold` (see [`Room::disconnect`]), else freed with
    /// `reason`. Returns whether it is held.
    pub fn disconnect(self, reason: LeaveReason, hold: bool) -> bool {
        self.slot.room.borrow_mut().disconnect(self.key, reason, hold)
    }
}
