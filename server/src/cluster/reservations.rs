//! Seat reservations, held by the node that owns the room: the only place
//! a seat can be held. Pure bookkeeping (time is an argument): the shard
//! that owns a room keeps its book and asks it on every join.
//!
//! A reservation is a 128-bit random token, single-use, alive for the
//! reservation TTL (10 s). While alive and unused it holds a seat: the room
//! counts [`ReservationBook::held`] seats as taken. Used and expired tokens
//! are remembered until a while after their expiry, so that a second use
//! says "used" or "expired" rather than "unknown"; anything this node never
//! issued is unknown, and a string that is not even a token is forged.

use super::records::{Refusal, RefuseCode};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use thiserror::Error;
use tickforge_protocol::ids::RoomId;

/// How long a used or expired token is remembered after its expiry.
const REMEMBER: Duration = Duration::from_secs(60);

/// A seat held in a room until `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The single-use token the client presents in `join_room`.
    pub token: String,
    /// The room.
    pub room_id: RoomId,
    /// When the seat is released if unused.
    pub expires: Instant,
}

/// Why a reservation was not honoured. Every variant is `rej not_found`
/// (CONTRACT.md), with [`ReservationError`]'s text as the reason.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReservationError {
    /// Not a token this server could have issued.
    #[error("forged reservation (not a reservation token)")]
    Forged,
    /// Well-formed but never issued here (or forgotten long ago).
    #[error("unknown reservation")]
    Unknown,
    /// Already used once.
    #[error("reservation already used")]
    Used,
    /// Past its 10 s.
    #[error("reservation expired")]
    Expired,
    /// Issued for another room.
    #[error("reservation is for room {0}, not this one")]
    WrongRoom(RoomId),
}

#[derive(Clone, Debug)]
struct Entry {
    room_id: RoomId,
    expires: Instant,
    used: bool,
    /// Its seat was given back (used or expired): never release it twice.
    released: bool,
}

/// The reservations of one owner (a shard or a whole node), bounded.
#[derive(Debug)]
pub struct ReservationBook {
    entries: HashMap<String, Entry>,
    /// Tokens whose expiry has not been processed, in expiry order (one
    /// TTL for all, so issue order).
    pending: VecDeque<(Instant, String)>,
    /// Expired tokens, in the order they are to be forgotten.
    remembered: VecDeque<(Instant, String)>,
    /// Live (unexpired, unused) reservations per room.
    held: HashMap<RoomId, u32>,
    max: usize,
}

impl ReservationBook {
    /// An empty book that holds at most `max` tokens (live, and used or
    /// expired ones still remembered).
    #[must_use]
    pub fn new(max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            pending: VecDeque::new(),
            remembered: VecDeque::new(),
            held: HashMap::new(),
            max: max.max(1),
        }
    }

    /// Holds a seat in `room_id` until `now + ttl`. The caller checked that
    /// the room has a free seat (players + [`Self::held`] < max).
    ///
    /// # Errors
    /// `overloaded` when the book is full.
    pub fn reserve(&mut self, room_id: &RoomId, now: Instant, ttl: Duration) -> Result<Reservation, Refusal> {
        self.expire(now);
        // Make room by forgetting expired tokens early; live ones are the limit.
        while self.entries.len() >= self.max {
            let Some((_, token)) = self.remembered.pop_front() else { break };
            self.entries.remove(&token);
        }
        if self.entries.len() >= self.max {
            return Err(Refusal::new(
                RefuseCode::Overloaded,
                format!("{} seat reservations are already held here", self.max),
            ));
        }
        let token = new_token();
        let expires = now + ttl;
        let entry = Entry { room_id: room_id.clone(), expires, used: false, released: false };
        self.entries.insert(token.clone(), entry);
        self.pending.push_back((expires, token.clone()));
        *self.held.entry(room_id.clone()).or_default() += 1;
        Ok(Reservation { token, room_id: room_id.clone(), expires })
    }

    /// Uses `token` to take the seat it holds in `room_id`: once.
    ///
    /// # Errors
    /// A [`ReservationError`] saying why not.
    pub fn redeem(&mut self, room_id: &RoomId, token: &str, now: Instant) -> Result<(), ReservationError> {
        if !is_token(token) {
            return Err(ReservationError::Forged);
        }
        self.expire(now);
        let entry = self.entries.get_mut(token).ok_or(ReservationError::Unknown)?;
        if entry.used {
            return Err(ReservationError::Used);
        }
        if entry.expires <= now {
            return Err(ReservationError::Expired);
        }
        if entry.room_id != *room_id {
            return Err(ReservationError::WrongRoom(entry.room_id.clone()));
        }
        entry.used = true;
        entry.released = true;
        let room = entry.room_id.clone();
        self.release(&room);
        Ok(())
    }

    /// Seats of `room_id` held by live reservations at `now`.
    pub fn held(&mut self, room_id: &RoomId, now: Instant) -> u32 {
        self.expire(now);
        self.held.get(room_id).copied().unwrap_or(0)
    }

    /// Releases the seats of reservations expired by `now` and forgets
    /// tokens past their memory; returns the rooms whose held count fell
    /// (their directory rows should be republished). Amortized O(1) per
    /// token.
    pub fn expire(&mut self, now: Instant) -> Vec<RoomId> {
        let mut changed = Vec::new();
        while self.pending.front().is_some_and(|(expires, _)| *expires <= now) {
            let (expires, token) = self.pending.pop_front().expect("front exists");
            let Some(e) = self.entries.get_mut(&token) else { continue };
            if !e.released {
                e.released = true;
                let room = e.room_id.clone();
                self.release(&room);
                if !changed.contains(&room) {
                    changed.push(room);
                }
            }
            self.remembered.push_back((expires + REMEMBER, token));
        }
        while self.remembered.front().is_some_and(|(forget_at, _)| *forget_at <= now) {
            let (_, token) = self.remembered.pop_front().expect("front exists");
            self.entries.remove(&token);
        }
        changed
    }

    fn release(&mut self, room_id: &RoomId) {
        if let Some(n) = self.held.get_mut(room_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(room_id);
            }
        }
    }

    /// Tokens held (live and remembered).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the book holds no token.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// 128 random bits as 32 lowercase hex digits.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // The kernel's random source cannot fail on Linux once booted; if
        // it ever did, a token from the clock and a counter would be
        // guessable, so refuse to continue rather than issue one.
        panic!("the system random source failed");
    }
    let mut s = String::with_capacity(32);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `s` has the shape of a token this server issues.
fn is_token(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn room(id: &str) -> RoomId {
        RoomId(id.into())
    }

    #[test]
    fn a_reservation_holds_a_seat_and_is_used_once() {
        let t0 = Instant::now();
        let mut book = ReservationBook::new(100);
        let r = book.reserve(&room("a"), t0, TTL).unwrap();
        assert_eq!(r.token.len(), 32);
        assert_eq!(book.held(&room("a"), t0), 1);
        assert_eq!(book.redeem(&room("b"), &r.token, t0), Err(ReservationError::WrongRoom(room("a"))));
        assert_eq!(book.redeem(&room("a"), &r.token, t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(book.held(&room("a"), t0), 0, "the seat is now the player's");
        assert_eq!(book.redeem(&room("a"), &r.token, t0 + Duration::from_secs(2)), Err(ReservationError::Used));
    }

    #[test]
    fn expired_unknown_and_forged_tokens_are_refused() {
        let t0 = Instant::now();
        let mut book = ReservationBook::new(100);
        let r = book.reserve(&room("a"), t0, TTL).unwrap();
        let other = book.reserve(&room("a"), t0, TTL).unwrap();
        assert_eq!(book.held(&room("a"), t0), 2);
        let later = t0 + TTL;
        assert_eq!(book.expire(later), vec![room("a")]);
        assert_eq!(book.held(&room("a"), later), 0, "expired seats are free again");
        assert_eq!(book.redeem(&room("a"), &r.token, later), Err(ReservationError::Expired));
        assert_eq!(
            book.redeem(&room("a"), &other.token, later + Duration::from_secs(1)),
            Err(ReservationError::Expired)
        );
        assert_eq!(book.redeem(&room("a"), &"0".repeat(32), t0), Err(ReservationError::Unknown));
        assert_eq!(book.redeem(&room("a"), "let-me-in", t0), Err(ReservationError::Forged));
        assert_eq!(book.redeem(&room("a"), &"G".repeat(32), t0), Err(ReservationError::Forged));
        // Long after, the token is forgotten: unknown.
        let much_later = later + REMEMBER + Duration::from_secs(1);
        assert_eq!(book.redeem(&room("a"), &r.token, much_later), Err(ReservationError::Unknown));
        assert!(book.is_empty());
    }

    #[test]
    fn the_book_is_bounded_by_live_reservations() {
        let t0 = Instant::now();
        let mut book = ReservationBook::new(2);
        let a = book.reserve(&room("a"), t0, TTL).unwrap();
        book.reserve(&room("a"), t0, TTL).unwrap();
        let full = book.reserve(&room("a"), t0, TTL).unwrap_err();
        assert_eq!(full.code, RefuseCode::Overloaded);
        // Expired tokens are remembered, but make room for new ones.
        book.redeem(&room("a"), &a.token, t0).unwrap();
        let later = t0 + TTL;
        assert!(book.reserve(&room("a"), later, TTL).is_ok());
        assert!(book.reserve(&room("a"), later, TTL).is_ok());
        assert_eq!(book.len(), 2);
        assert_eq!(book.held(&room("a"), later), 2);
    }
}
