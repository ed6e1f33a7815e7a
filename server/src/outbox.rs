//! A connection's outbox: what the shard's rooms and request handler hand
//! that connection's writer task.
//!
//! Shard-local (`Rc`, `RefCell`, no lock): a room never waits on a socket.
//! Control messages (`cfm`, `rej`, `ind`) queue in order up to a bound; a
//! tick is a single slot holding only the newest one, so a writer that
//! falls behind skips ticks instead of queueing them, and its next tick is a
//! delta from its last ack (or the full state). The room counts the skips
//! and closes a connection that stays stuck.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use thiserror::Error;
use tickforge_protocol::codec::{self, Format};
use tickforge_protocol::error::CloseReason;
use tickforge_protocol::ids::{PlayerId, RoomId};
use tickforge_protocol::message::ServerMsg;

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum OutboxItem {
    /// Send this control message payload.
    Control(Vec<u8>),
    /// Send this tick message payload.
    Tick(Vec<u8>),
    /// Close the connection with this reason (after the control queue drained).
    Close(CloseReason),
}

/// The control queue is full: the connection is being closed as too slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("outbound control queue full ({capacity} messages)")]
pub struct OutboxFull {
    /// The queue's bound.
    pub capacity: usize,
}

/// Which room a connection is in, as the room sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The room.
    pub room_id: RoomId,
    /// The player's id there.
    pub player_id: PlayerId,
}

/// One connection's outbound queue and room membership.
#[derive(Debug)]
pub struct Outbox {
    format: Format,
    control_capacity: usize,
    control: RefCell<VecDeque<Vec<u8>>>,
    tick: RefCell<Option<Vec<u8>>>,
    close: RefCell<Option<CloseReason>>,
    waker: RefCell<Option<Waker>>,
    membership: RefCell<Option<Membership>>,
    /// Ticks replaced before the writer took them, in a row and in total.
    skipped_in_a_row: Cell<u32>,
    skipped_total: Cell<u64>,
}

impl Outbox {
    /// An outbox for a connection speaking `format`, queueing at most
    /// `control_capacity` control messages.
    #[must_use]
    pub fn new(format: Format, control_capacity: usize) -> Rc<Self> {
        Rc::new(Self {
            format,
            control_capacity: control_capacity.max(1),
            control: RefCell::new(VecDeque::new()),
            tick: RefCell::new(None),
            close: RefCell::new(None),
            waker: RefCell::new(None),
            membership: RefCell::new(None),
            skipped_in_a_row: Cell::new(0),
            skipped_total: Cell::new(0),
        })
    }

    /// The connection's wire format.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    fn wake(&self) {
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Queues an encoded control message payload.
    ///
    /// # Errors
    /// [`OutboxFull`] when the queue is at its bound: the message is dropped
    /// and the connection is closed as too slow.
    pub fn push_control(&self, payload: Vec<u8>) -> Result<(), OutboxFull> {
        if self.is_closing() {
            return Ok(());
        }
        let mut control = self.control.borrow_mut();
        if control.len() >= self.control_capacity {
            drop(control);
            let capacity = self.control_capacity;
            self.close(CloseReason::TooSlow { detail: format!("outbound queue over {capacity} messages").into() });
            return Err(OutboxFull { capacity });
        }
        control.push_back(payload);
        drop(control);
        self.wake();
        Ok(())
    }

    /// Encodes `msg` in the connection's format and queues it.
    ///
    /// # Errors
    /// As [`Outbox::push_control`].
    pub fn push_msg(&self, msg: &ServerMsg) -> Result<(), OutboxFull> {
        let mut payload = Vec::with_capacity(64);
        codec::encode_server(self.format, msg, &mut payload);
        self.push_control(payload)
    }

    /// Sets the newest tick payload, replacing one the writer has not taken
    /// yet. Returns how many ticks in a row were skipped so (0 = none).
    pub fn set_tick(&self, payload: Vec<u8>) -> u32 {
        let replaced = self.tick.borrow_mut().replace(payload).is_some();
        if replaced {
            self.skipped_in_a_row.set(self.skipped_in_a_row.get() + 1);
            self.skipped_total.set(self.skipped_total.get() + 1);
        } else {
            self.skipped_in_a_row.set(0);
        }
        self.wake();
        self.skipped_in_a_row.get()
    }

    /// Ticks skipped because the writer had not taken the one before.
    #[must_use]
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total.get()
    }

    /// Asks the writer to close the connection (the first reason wins).
    pub fn close(&self, reason: CloseReason) {
        let mut close = self.close.borrow_mut();
        if close.is_none() {
            *close = Some(reason);
        }
        drop(close);
        self.wake();
    }

    /// Whether a close was asked for.
    #[must_use]
    pub fn is_closing(&self) -> bool {
        self.close.borrow().is_some()
    }

    /// The room this connection is in.
    #[must_use]
    pub fn membership(&self) -> Option<Membership> {
        self.membership.borrow().clone()
    }

    /// Sets or clears the membership (rooms do this on join, leave, close).
    pub fn set_membership(&self, membership: Option<Membership>) {
        *self.membership.borrow_mut() = membership;
    }

    /// Takes the next item without waiting: control first, then a close,
    /// then the newest tick.
    pub fn try_next(&self) -> Option<OutboxItem> {
        if let Some(payload) = self.control.borrow_mut().pop_front() {
            return Some(OutboxItem::Control(payload));
        }
        if let Some(reason) = self.close.borrow().clone() {
            return Some(OutboxItem::Close(reason));
        }
        self.tick.borrow_mut().take().map(OutboxItem::Tick)
    }

    /// Waits for the next item (the writer task's loop).
    ///
    /// After a `Close`, every later call returns the same `Close` at once.
    pub async fn next(&self) -> OutboxItem {
        poll_fn(|cx| match self.try_next() {
            Some(item) => Poll::Ready(item),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_goes_first_then_close_then_the_newest_tick() {
        let outbox = Outbox::new(Format::Json, 4);
        assert_eq!(outbox.set_tick(b"t1".to_vec()), 0);
        assert_eq!(outbox.set_tick(b"t2".to_vec()), 1);
        outbox.push_control(b"c1".to_vec()).unwrap();
        assert_eq!(outbox.try_next(), Some(OutboxItem::Control(b"c1".to_vec())));
        assert_eq!(outbox.try_next(), Some(OutboxItem::Tick(b"t2".to_vec())));
        assert_eq!(outbox.try_next(), None);
        assert_eq!(outbox.skipped_total(), 1);
        outbox.close(CloseReason::ShuttingDown);
        outbox.close(CloseReason::Internal);
        assert_eq!(outbox.try_next(), Some(OutboxItem::Close(CloseReason::ShuttingDown)));
    }

    #[test]
    fn a_full_control_queue_closes_as_too_slow() {
        let outbox = Outbox::new(Format::Bin, 2);
        outbox.push_control(vec![1]).unwrap();
        outbox.push_control(vec![2]).unwrap();
        assert_eq!(outbox.push_control(vec![3]), Err(OutboxFull { capacity: 2 }));
        assert!(outbox.is_closing());
        assert_eq!(outbox.try_next(), Some(OutboxItem::Control(vec![1])));
        assert_eq!(outbox.try_next(), Some(OutboxItem::Control(vec![2])));
        assert!(matches!(outbox.try_next(), Some(OutboxItem::Close(CloseReason::TooSlow { .. }))));
    }
}
