//! A room as its shard shares it ([`RoomSlot`]), and a connection's place
//! in one ([`Seat`]): the one handle that says which room a connection is
//! in. The room's player list is the truth; a seat is the connection's
//! reference to its entry there, taken by [`Seat::take`] and given back by
//! [`Seat::leave`]. A room that closes, or removes a player on its own,
//! leaves the seat dangling: [`Seat::is_held`] says so, and the connection
//! drops it.

use super::Room;
use crate::outbox::Outbox;
use std::cell::RefCell;
use std::rc::Rc;
use tickforge_protocol::ids::{InputSeq, PlayerId, RoomId, Tick};
use tickforge_protocol::input::{InputError, RawInput};
use tickforge_protocol::message::{Joined, RejectCode};

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

/// A connection's seat in a room.
#[derive(Debug)]
pub struct Seat {
    slot: Rc<RoomSlot>,
    player: PlayerId,
}

impl Seat {
    /// Seats the connection writing through `outbox` in the room of `slot`.
    ///
    /// # Errors
    /// As [`Room::join`]: `room_full`, `not_found` (closed), `overloaded`.
    pub fn take(slot: &Rc<RoomSlot>, outbox: Rc<Outbox>) -> Result<(Self, Joined), (RejectCode, String)> {
        let joined = slot.room.borrow_mut().join(outbox)?;
        Ok((Self { slot: slot.clone(), player: joined.player_id }, joined))
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

    /// The player's id in the room.
    #[must_use]
    pub fn player(&self) -> PlayerId {
        self.player
    }

    /// Whether the room still has this player (it may have closed, or
    /// removed the player on its own).
    #[must_use]
    pub fn is_held(&self) -> bool {
        let room = self.slot.room.borrow();
        room.closed().is_none() && room.has_player(self.player)
    }

    /// A player's input frame as received (see [`Room::input_raw`]).
    ///
    /// # Errors
    /// The data does not fit the game's input schema: the input is dropped.
    pub fn input(&self, seq: InputSeq, ack: Option<Tick>, data: &RawInput) -> Result<(), InputError> {
        self.slot.room.borrow_mut().input_raw(self.player, seq, ack, data)
    }

    /// A player's ack (see [`Room::ack`]).
    pub fn ack(&self, tick: Tick) {
        self.slot.room.borrow_mut().ack(self.player, tick);
    }

    /// Gives the seat back: the others get `player_left` with `reason`.
    /// Returns the room's id.
    pub fn leave(self, reason: &str) -> RoomId {
        let mut room = self.slot.room.borrow_mut();
        room.leave(self.player, reason);
        room.id().clone()
    }
}
