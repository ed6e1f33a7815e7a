//! A connection's outbound bytes: the WebSocket frames its room, its
//! request handler and the connection itself wrote, waiting for the socket.
//!
//! Shard-local (`Rc`, `Cell`, `RefCell`, no lock). Every frame is written
//! once, header and payload, straight into one byte buffer in its wire
//! form, and the socket takes it from there: while the connection is in a
//! room, the shard's tick pass sends every player's pending bytes in one
//! batch with the room's tick; outside a room, the connection's own task
//! does (the outbox wakes it).
//!
//! Control frames (`cfm`, `rej`, `ind`) queue in order up to a bound. A
//! tick is offered, not queued: while the previous tick's frame has not
//! fully left, a new one is skipped, so a reader that falls behind never
//! makes its room wait nor its queue grow; its next tick is a delta from
//! its last ack (or the full state). The room counts the skips and closes
//! a connection that stays stuck.

use crate::ws::wire::{write_frame_header, OPCODE_BINARY, OPCODE_TEXT};
use std::cell::{Cell, Ref, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::task::Waker;
use thiserror::Error;
use tickforge_protocol::codec::{self, Format, TickHeader};
use tickforge_protocol::error::CloseReason;
use tickforge_protocol::message::ServerMsg;

/// Buffer capacity an outbox keeps once drained; more is freed by
/// [`Outbox::shrink`].
const RETAIN: usize = 2048;

thread_local! {
    /// Where a message is encoded before it is framed: its length goes in
    /// the frame header, ahead of it. One per shard thread, reused.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One whole frame taken out by [`Outbox::try_next`], as a client reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum OutboxItem {
    /// A control message payload.
    Control(Vec<u8>),
    /// A tick message payload.
    Tick(Vec<u8>),
}

/// The control queue is full: the connection is being closed as too slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("outbound control queue full ({capacity} messages)")]
pub struct OutboxFull {
    /// The queue's bound.
    pub capacity: usize,
}

/// What a frame in the buffer is, for the bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Control,
    Tick,
}

/// The pending bytes and where each tracked frame ends.
#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    /// Bytes of `bytes` already sent.
    start: usize,
    /// Stream offsets: bytes ever appended, and ever sent.
    appended: u64,
    sent: u64,
    /// Tracked frames not fully sent: (stream offset of their end, kind).
    marks: VecDeque<(u64, Kind)>,
    controls: usize,
    tick_pending: bool,
}

impl Buffer {
    fn append(&mut self, kind: Option<Kind>, f: impl FnOnce(&mut Vec<u8>)) {
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
        let before = self.bytes.len();
        f(&mut self.bytes);
        self.appended += (self.bytes.len() - before) as u64;
        if let Some(kind) = kind {
            self.marks.push_back((self.appended, kind));
            match kind {
                Kind::Control => self.controls += 1,
                Kind::Tick => self.tick_pending = true,
            }
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.bytes.len() - self.start);
        self.start += n;
        self.sent += n as u64;
        while let Some(&(end, kind)) = self.marks.front() {
            if end > self.sent {
                break;
            }
            self.marks.pop_front();
            match kind {
                Kind::Control => self.controls -= 1,
                Kind::Tick => self.tick_pending = false,
            }
        }
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }
}

/// One connection's outbound bytes.
#[derive(Debug)]
pub struct Outbox {
    format: Format,
    control_capacity: usize,
    buf: RefCell<Buffer>,
    close: RefCell<Option<CloseReason>>,
    /// The connection's task, woken when it has something to do, and
    /// whether it was since it last looked.
    waker: RefCell<Option<Waker>>,
    notified: Cell<bool>,
    /// Whether appended bytes wake the task (it sends them itself: outside
    /// a room). In a room the tick pass sends them: no wake-up per frame.
    wake_on_write: Cell<bool>,
    /// The connection's key on its shard (for the tick pass).
    key: Cell<usize>,
    /// Ticks skipped because the previous one had not left, in a row and in total.
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
            buf: RefCell::new(Buffer::default()),
            close: RefCell::new(None),
            waker: RefCell::new(None),
            notified: Cell::new(false),
            wake_on_write: Cell::new(false),
            key: Cell::new(usize::MAX),
            skipped_in_a_row: Cell::new(0),
            skipped_total: Cell::new(0),
        })
    }

    /// The connection's wire format.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// The connection's key on its shard (`usize::MAX` until set).
    #[must_use]
    pub fn key(&self) -> usize {
        self.key.get()
    }

    /// Sets the connection's key on its shard.
    pub fn set_key(&self, key: usize) {
        self.key.set(key);
    }

    /// Registers the task that drives the connection, and whether appended
    /// bytes should wake it (true while it sends them itself).
    pub fn set_waker(&self, waker: &Waker, wake_on_write: bool) {
        let mut current = self.waker.borrow_mut();
        match &mut *current {
            Some(w) if w.will_wake(waker) => {}
            _ => *current = Some(waker.clone()),
        }
        drop(current);
        self.wake_on_write.set(wake_on_write);
    }

    /// Wakes the connection's task (a close asked for, a room let go of it).
    pub fn wake(&self) {
        self.notified.set(true);
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether [`Outbox::wake`] was called since the last look.
    pub fn take_notified(&self) -> bool {
        self.notified.replace(false)
    }

    fn wrote(&self) {
        if self.wake_on_write.get() {
            self.wake();
        }
    }

    fn append_frame(&self, kind: Kind, payload: &[u8]) {
        let opcode = if self.format.is_binary() { OPCODE_BINARY } else { OPCODE_TEXT };
        self.buf.borrow_mut().append(Some(kind), |out| {
            write_frame_header(out, opcode, payload.len());
            out.extend_from_slice(payload);
        });
    }

    /// Encodes `msg` in the connection's format and queues it as a frame.
    /// Nothing is queued once a close was asked for.
    ///
    /// # Errors
    /// [`OutboxFull`] when the queue is at its bound: the message is dropped
    /// and the connection is closed as too slow.
    pub fn push_msg(&self, msg: &ServerMsg) -> Result<(), OutboxFull> {
        if self.is_closing() {
            return Ok(());
        }
        if self.buf.borrow().controls >= self.control_capacity {
            let capacity = self.control_capacity;
            self.close(CloseReason::TooSlow { detail: format!("outbound queue over {capacity} messages").into() });
            return Err(OutboxFull { capacity });
        }
        SCRATCH.with_borrow_mut(|payload| {
            payload.clear();
            codec::encode_server(self.format, msg, payload);
            self.append_frame(Kind::Control, payload);
        });
        self.wrote();
        Ok(())
    }

    /// Queues a control message already encoded in the connection's format
    /// (a room encodes a game event once for all its players of a form),
    /// with the bound of [`Outbox::push_msg`].
    ///
    /// # Errors
    /// As [`Outbox::push_msg`].
    pub fn push_encoded(&self, payload: &[u8]) -> Result<(), OutboxFull> {
        if self.is_closing() {
            return Ok(());
        }
        if self.buf.borrow().controls >= self.control_capacity {
            let capacity = self.control_capacity;
            self.close(CloseReason::TooSlow { detail: format!("outbound queue over {capacity} messages").into() });
            return Err(OutboxFull { capacity });
        }
        self.append_frame(Kind::Control, payload);
        self.wrote();
        Ok(())
    }

    /// Offers a tick: `header` and the state bytes the room encoded once
    /// for every player of this baseline and format. Skipped while the
    /// previous tick's frame has not fully left (or once a close was asked
    /// for). Returns how many ticks in a row were skipped so (0 = sent).
    pub fn offer_tick(&self, header: &TickHeader, state: &[u8]) -> u32 {
        if self.is_closing() {
            return 0;
        }
        if self.buf.borrow().tick_pending {
            let n = self.skipped_in_a_row.get() + 1;
            self.skipped_in_a_row.set(n);
            self.skipped_total.set(self.skipped_total.get() + 1);
            return n;
        }
        self.skipped_in_a_row.set(0);
        SCRATCH.with_borrow_mut(|payload| {
            payload.clear();
            codec::encode_tick(self.format, header, state, payload);
            self.append_frame(Kind::Tick, payload);
        });
        self.wrote();
        0
    }

    /// Ticks skipped because the previous one had not left.
    #[must_use]
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total.get()
    }

    /// Asks the connection to close (the first reason wins).
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

    /// The close asked for, if any.
    #[must_use]
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close.borrow().clone()
    }

    /// The bytes waiting for the socket. Whoever sends them calls
    /// [`Outbox::consume`] with what the socket took.
    #[must_use]
    pub fn pending(&self) -> Ref<'_, [u8]> {
        Ref::map(self.buf.borrow(), |b| &b.bytes[b.start..])
    }

    /// Whether bytes wait for the socket.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        let b = self.buf.borrow();
        b.start < b.bytes.len()
    }

    /// The socket took the first `n` pending bytes.
    pub fn consume(&self, n: usize) {
        self.buf.borrow_mut().consume(n);
    }

    /// Frees a drained buffer over the retained size (housekeeping).
    pub fn shrink(&self) {
        let mut b = self.buf.borrow_mut();
        if b.start == b.bytes.len() && b.bytes.capacity() > RETAIN {
            b.bytes = Vec::new();
            b.start = 0;
        }
    }

    /// Takes the next whole frame out, as a client reading the socket would
    /// get it: for tests and benchmarks that run rooms without sockets.
    /// Frames written by the connection itself (pongs, close frames) are
    /// returned as control messages.
    pub fn try_next(&self) -> Option<OutboxItem> {
        let mut b = self.buf.borrow_mut();
        let pending = &b.bytes[b.start..];
        let (header, len) = match *pending.get(1)? {
            126 => (4, usize::from(u16::from_be_bytes([*pending.get(2)?, *pending.get(3)?]))),
            127 => (10, usize::try_from(u64::from_be_bytes(pending.get(2..10)?.try_into().ok()?)).ok()?),
            n => (2, usize::from(n)),
        };
        let payload = pending.get(header..header + len)?.to_vec();
        let is_tick =
            b.marks.front().is_some_and(|&(end, kind)| kind == Kind::Tick && end == b.sent + (header + len) as u64);
        b.consume(header + len);
        Some(if is_tick { OutboxItem::Tick(payload) } else { OutboxItem::Control(payload) })
    }
}

/// Frames tungstenite writes for the connection (pongs, close frames,
/// echoes): raw bytes, neither control messages nor ticks for the bounds.
impl io::Write for &Outbox {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.borrow_mut().append(None, |out| out.extend_from_slice(bytes));
        self.wrote();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickforge_protocol::ids::{InputSeq, Tick};
    use tickforge_protocol::message::Indication;

    fn header(tick: u64) -> TickHeader {
        TickHeader { tick: Tick(tick), server_time_us: 1, baseline: None, input_seq: InputSeq(0) }
    }

    fn notice() -> ServerMsg {
        ServerMsg::Ind { body: Indication::RoomClosing { reason: "x".into() } }
    }

    #[test]
    fn a_tick_is_skipped_while_the_previous_one_has_not_left() {
        let outbox = Outbox::new(Format::Bin, 4);
        assert_eq!(outbox.offer_tick(&header(1), b"s1"), 0);
        assert_eq!(outbox.offer_tick(&header(2), b"s2"), 1);
        assert_eq!(outbox.offer_tick(&header(3), b"s3"), 2);
        outbox.push_msg(&notice()).unwrap();
        let Some(OutboxItem::Tick(first)) = outbox.try_next() else { panic!("tick 1 first") };
        assert!(first.ends_with(b"s1"));
        assert!(matches!(outbox.try_next(), Some(OutboxItem::Control(_))));
        assert_eq!(outbox.try_next(), None);
        assert_eq!(outbox.offer_tick(&header(4), b"s4"), 0, "sent once the previous one left");
        assert_eq!(outbox.skipped_total(), 2);
    }

    #[test]
    fn a_partly_sent_tick_still_counts_as_pending() {
        let outbox = Outbox::new(Format::Bin, 4);
        outbox.offer_tick(&header(1), b"state");
        let len = outbox.pending().len();
        outbox.consume(len - 1);
        assert_eq!(outbox.offer_tick(&header(2), b"state"), 1);
        outbox.consume(1);
        assert!(!outbox.has_pending());
        assert_eq!(outbox.offer_tick(&header(3), b"state"), 0);
    }

    #[test]
    fn a_full_control_queue_closes_as_too_slow() {
        let outbox = Outbox::new(Format::Json, 2);
        outbox.push_msg(&notice()).unwrap();
        outbox.push_msg(&notice()).unwrap();
        assert_eq!(outbox.push_msg(&notice()), Err(OutboxFull { capacity: 2 }));
        assert!(matches!(outbox.close_reason(), Some(CloseReason::TooSlow { .. })));
        // Sending frees the queue's places.
        let len = outbox.pending().len();
        outbox.consume(len);
        assert_eq!(outbox.buf.borrow().controls, 0);
    }

    #[test]
    fn the_first_close_reason_wins() {
        let outbox = Outbox::new(Format::Json, 4);
        outbox.close(CloseReason::ShuttingDown);
        outbox.close(CloseReason::Internal);
        assert_eq!(outbox.close_reason(), Some(CloseReason::ShuttingDown));
        assert_eq!(outbox.offer_tick(&header(1), b"s"), 0);
        assert!(!outbox.has_pending(), "nothing queued once closing");
    }

    #[test]
    fn frames_are_text_for_json_and_binary_for_bin() {
        let json = Outbox::new(Format::Json, 4);
        json.push_msg(&notice()).unwrap();
        assert_eq!(json.pending()[0], 0x81);
        let bin = Outbox::new(Format::Bin, 4);
        bin.push_msg(&notice()).unwrap();
        assert_eq!(bin.pending()[0], 0x82);
    }
}
