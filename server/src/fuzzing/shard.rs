//! The in-process shard the `connection` target drives: peers (hostile
//! ones and model clients), their connections, the rooms, the sockets'
//! partial sends and a virtual clock.

use super::{client_frame, config, shard_state, upgrade_request};
use crate::config::ServerConfig;
use crate::conn::{Connection, CLOSE_LINGER};
use crate::http::parse_head;
use crate::http::routes::{self, Answer};
use crate::room::RoomSlot;
use crate::shard_state::ShardState;
use crate::ws::{self, Pipe, Wire};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tickforge_protocol::codec::{self, Format};
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::{InputData, Request};
use tickforge_protocol::session::{Event, SessionError};
use tickforge_protocol::ClientSession;
use tungstenite::protocol::{Role, WebSocketContext};
use tungstenite::Message;

/// The most bytes a connection may have waiting for its socket. The real
/// bounds are tighter (the control queue's count, one tick at a time);
/// this one catches a queue without a bound.
pub const MAX_PENDING: usize = 4 << 20;

/// The connections one [`Shard`] holds at most (older ones are kept).
pub const MAX_CONNECTIONS: usize = 16;

/// The tick operations one script may take (each ticks every room); more
/// are ignored, so that one input costs at most a few hundred room ticks.
pub const MAX_TICKS: u32 = 128;

/// A client's view of what the server sent it: frames parsed by
/// tungstenite's client side, messages decoded.
struct Reader {
    ctx: WebSocketContext,
    wire: Wire,
    format: Format,
    /// The close frame received, once: its code and whether it had a reason.
    closed: Option<(u16, bool)>,
}

impl Reader {
    fn new(format: Format) -> Self {
        // No size limit: the server's own frames are checked, not bounded.
        let config = ws::websocket_config(usize::MAX >> 1);
        Self { ctx: WebSocketContext::new(Role::Client, Some(config)), wire: Wire::default(), format, closed: None }
    }

    /// Reads `bytes` the socket delivered; returns each whole data
    /// message's payload.
    fn feed(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.wire.push_rx(bytes);
        let mut out = Vec::new();
        let mut sink = io::sink();
        loop {
            match self.ctx.read(&mut Pipe { wire: &mut self.wire, tx: &mut sink }) {
                Ok(Message::Text(t)) => {
                    assert_eq!(self.format, Format::Json, "a text frame on a {:?} connection", self.format);
                    assert!(self.closed.is_none(), "a message after the close frame");
                    out.push(t.as_bytes().to_vec());
                }
                Ok(Message::Binary(b)) => {
                    assert_eq!(self.format, Format::Bin, "a binary frame on a {:?} connection", self.format);
                    assert!(self.closed.is_none(), "a message after the close frame");
                    out.push(b.to_vec());
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                    let reason = frame.as_ref().is_some_and(|f| !f.reason.is_empty());
                    self.closed.get_or_insert((code, reason));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The client answered the server's close: nothing more to read.
                Err(tungstenite::Error::ConnectionClosed) if self.closed.is_some() => break,
                Err(e) => panic!("the server sent bytes a client cannot read: {e}"),
            }
        }
        for payload in &out {
            if let Err(e) = codec::decode_server(self.format, payload) {
                panic!("the server sent a message that does not decode ({e}): {:?}", String::from_utf8_lossy(payload));
            }
        }
        out
    }
}

/// One peer: its connection (until it ends), its reader, and its session
/// when it is a model client.
struct Peer {
    conn: Option<Connection>,
    reader: Reader,
    /// A well-behaved client: present until the peer sends anything its
    /// session did not write.
    model: Option<ClientSession>,
    mask: u32,
    scratch: Vec<u8>,
}

/// One shard's state with its connections, on a virtual clock.
pub struct Shard {
    state: Rc<ShardState>,
    peers: Vec<Peer>,
    start: Instant,
    elapsed: Duration,
    unix_start_us: u64,
    /// When each empty room became empty (disposed of after the grace).
    empty_since: HashMap<RoomId, Duration>,
    /// Ticks a model client applied and checked against its room.
    checked_ticks: u64,
    /// Tick operations so far (at most [`MAX_TICKS`] run).
    ticks: u32,
    /// Every message the peers read, when recording (seeds).
    recorded: Option<Vec<(Format, Vec<u8>)>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("peers", &self.peers.len()).field("elapsed", &self.elapsed).finish()
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::new(config())
    }
}

impl Shard {
    /// A shard running `config` (one shard: no hand-offs).
    #[must_use]
    pub fn new(mut config: ServerConfig) -> Self {
        config.shards = 1;
        Self {
            state: shard_state(config),
            peers: Vec::new(),
            start: Instant::now(),
            elapsed: Duration::ZERO,
            unix_start_us: 1_700_000_000_000_000,
            empty_since: HashMap::new(),
            checked_ticks: 0,
            ticks: 0,
            recorded: None,
        }
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    /// Records every message the peers read from now on (for seeds).
    pub fn record(&mut self) {
        self.recorded.get_or_insert_with(Vec::new);
    }

    /// The messages recorded, each with its connection's format.
    #[must_use]
    pub fn recorded(&self) -> &[(Format, Vec<u8>)] {
        self.recorded.as_deref().unwrap_or_default()
    }

    /// Peers so far (ended ones included): indexes are `0..peers()`.
    #[must_use]
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// Ticks the model clients applied and checked against their room.
    #[must_use]
    pub fn checked_ticks(&self) -> u64 {
        self.checked_ticks
    }

    /// Whether peer `i`'s connection is still open.
    #[must_use]
    pub fn is_open(&self, i: usize) -> bool {
        self.peers.get(i).is_some_and(|p| p.conn.is_some())
    }

    /// The close code peer `i` received, if any.
    #[must_use]
    pub fn close_code(&self, i: usize) -> Option<u16> {
        self.peers.get(i).and_then(|p| p.reader.closed).map(|(code, _)| code)
    }

    /// Opens a connection with a real upgrade request offering
    /// `subprotocol`; a `model` client is driven by a [`ClientSession`].
    /// Returns its index, or `None` past [`MAX_CONNECTIONS`].
    pub fn open(&mut self, subprotocol: Option<&str>, model: bool) -> Option<usize> {
        if self.peers.len() >= MAX_CONNECTIONS {
            return None;
        }
        let raw = upgrade_request(subprotocol);
        let (head, len) = parse_head(&raw).ok().flatten().expect("the upgrade request parses");
        assert_eq!(len, raw.len());
        let Answer::Upgrade { accepted, echo, session } = routes::answer(&self.state, &head, true) else {
            panic!("the upgrade request was refused");
        };
        let now = self.now();
        let mut conn = Connection::new(&self.state, accepted.format, echo, Vec::new(), session, now);
        conn.on_buffered(now);
        self.peers.push(Peer {
            conn: Some(conn),
            reader: Reader::new(accepted.format),
            model: model.then(|| ClientSession::new(accepted.format)),
            mask: self.peers.len() as u32,
            scratch: Vec::new(),
        });
        self.settle();
        Some(self.peers.len() - 1)
    }

    /// Peer `i` sends `bytes` (anything: its model, if any, is retired).
    pub fn raw(&mut self, i: usize, bytes: &[u8]) {
        let Some(peer) = self.peers.get_mut(i) else { return };
        peer.model = None;
        self.deliver(i, bytes);
    }

    /// Delivers bytes to peer `i`'s connection as its socket would: only
    /// while it wants to read (the runtime stops reading past the receive
    /// high-water mark).
    fn deliver(&mut self, i: usize, bytes: &[u8]) {
        let now = self.now();
        if let Some(conn) = self.peers[i].conn.as_mut() {
            if conn.wants_read() && !bytes.is_empty() {
                conn.on_bytes(bytes, now);
            }
        }
        self.settle();
    }

    /// A model client sends one message its session writes: `request`,
    /// an `input` or an `ack`.
    fn model_send(&mut self, i: usize, write: impl FnOnce(&mut ClientSession, &mut Vec<u8>)) {
        let Some(peer) = self.peers.get_mut(i) else { return };
        let Some(session) = peer.model.as_mut() else { return };
        let mut payload = std::mem::take(&mut peer.scratch);
        payload.clear();
        write(session, &mut payload);
        if payload.is_empty() {
            peer.scratch = payload;
            return;
        }
        let opcode = if session.format().is_binary() { ws::wire::OPCODE_BINARY } else { ws::wire::OPCODE_TEXT };
        peer.mask = peer.mask.wrapping_mul(0x9E37_79B9).wrapping_add(1);
        let frame = client_frame(opcode, &payload, peer.mask.to_le_bytes());
        peer.scratch = payload;
        self.deliver(i, &frame);
    }

    /// Model client `i` sends a request.
    pub fn request(&mut self, i: usize, body: Request) {
        self.model_send(i, |s, out| {
            let _ = s.request(body, out);
        });
    }

    /// Model client `i` sends an input (acking its newest tick).
    pub fn input(&mut self, i: usize, data: InputData) {
        self.model_send(i, |s, out| {
            let _ = s.input(data, out);
        });
    }

    /// Model client `i` acks its newest tick.
    pub fn ack(&mut self, i: usize) {
        self.model_send(i, |s, out| {
            let _ = s.ack(out);
        });
    }

    /// The room model client `i` plays in or watches, if it is a model in
    /// a room.
    #[must_use]
    pub fn room_of(&self, i: usize) -> Option<RoomId> {
        self.peers.get(i)?.model.as_ref()?.room_id().cloned()
    }

    /// The `resume` that would take model client `i`'s seat, if it has one.
    #[must_use]
    pub fn resume_of(&self, i: usize) -> Option<Request> {
        self.peers.get(i)?.model.as_ref()?.resume_request()
    }

    /// Peer `i`'s socket takes at most `max` of the bytes waiting for it,
    /// and its client reads them.
    pub fn send(&mut self, i: usize, max: usize) {
        let now = self.now();
        let Some(peer) = self.peers.get_mut(i) else { return };
        let Some(conn) = peer.conn.as_mut() else { return };
        let taken = {
            let pending = conn.outbox().pending();
            pending[..pending.len().min(max)].to_vec()
        };
        if taken.is_empty() {
            return;
        }
        conn.on_sent(taken.len(), now);
        let messages = peer.reader.feed(&taken);
        if let Some(recorded) = self.recorded.as_mut() {
            recorded.extend(messages.iter().map(|m| (peer.reader.format, m.clone())));
        }
        if let (Some(_), Some((code, reason))) = (&peer.model, peer.reader.closed) {
            // A model never closes: this close is the server's own (a peer
            // that sent a close frame gets its own code echoed).
            assert!(matches!(code, 1000..=1003 | 1007..=1011), "close code {code} is not one the contract lists");
            assert!(reason, "every close the server starts carries a reason");
        }
        if let Some(session) = peer.model.as_mut() {
            for payload in messages {
                match session.handle_message(&payload) {
                    Ok(()) => {}
                    // A model acks only ticks it applied and sends nothing
                    // else: every tick it gets must apply.
                    Err(e @ (SessionError::Delta { .. } | SessionError::Decode(_) | SessionError::Schema(_))) => {
                        panic!("a well-behaved client could not use a server message: {e}")
                    }
                    Err(e) => panic!("a well-behaved client got a message out of order: {e}"),
                }
                while let Some(event) = session.poll_event() {
                    if let Event::Tick(header) = event {
                        let state = session.state().expect("a tick was applied");
                        let room_id = session.room_id().expect("in a room");
                        if let Some(slot) = self.state.room(room_id) {
                            let room = slot.room.borrow();
                            if let Some(truth) = room.snapshot(header.tick) {
                                assert_eq!(state, truth, "tick {}: the rebuilt state is not the room's", header.tick);
                                self.checked_ticks += 1;
                            }
                        }
                    }
                }
            }
        }
        self.settle();
    }

    /// Every socket takes everything waiting for it.
    pub fn send_all(&mut self) {
        for i in 0..self.peers.len() {
            self.send(i, usize::MAX);
        }
    }

    /// Peer `i` hangs up (EOF: it sends nothing more).
    pub fn eof(&mut self, i: usize) {
        let now = self.now();
        if let Some(conn) = self.peers.get_mut(i).and_then(|p| p.conn.as_mut()) {
            conn.on_eof(now);
        }
        self.settle();
    }

    /// Peer `i`'s socket fails.
    pub fn io_error(&mut self, i: usize) {
        if let Some(conn) = self.peers.get_mut(i).and_then(|p| p.conn.as_mut()) {
            conn.on_io_error();
        }
        self.settle();
    }

    /// Time passes; every connection's housekeeping runs (keepalive, send
    /// stall, close linger), and empty rooms past their grace go.
    pub fn advance(&mut self, by: Duration) {
        self.elapsed += by;
        let now = self.now();
        for peer in &mut self.peers {
            if let Some(conn) = peer.conn.as_mut() {
                conn.housekeeping(now);
            }
        }
        self.settle();
    }

    /// Every open room takes its next tick (as the tick pass does, without
    /// its schedule; at most [`MAX_TICKS`] times), then closed rooms and
    /// empty ones past the grace are disposed of.
    pub fn tick(&mut self) {
        if self.ticks >= MAX_TICKS {
            return;
        }
        self.ticks += 1;
        self.tick_rooms();
    }

    fn tick_rooms(&mut self) {
        let now_us = self.unix_start_us + u64::try_from(self.elapsed.as_micros()).unwrap_or(u64::MAX);
        for slot in self.rooms() {
            let _ = slot.room.borrow_mut().tick(now_us);
        }
        self.dispose();
        self.settle();
    }

    /// Every room, in id order.
    fn rooms(&self) -> Vec<Rc<RoomSlot>> {
        let mut rooms = self.state.all_rooms();
        rooms.sort_by(|a, b| a.room.borrow().id().0.cmp(&b.room.borrow().id().0));
        rooms
    }

    /// Disposes of the closed rooms and the empty ones past the grace, and
    /// publishes the others' player counts (as the tick schedule does).
    fn dispose(&mut self) {
        let grace = self.state.config().empty_room_grace;
        for slot in self.rooms() {
            let mut room = slot.room.borrow_mut();
            let id = room.id().clone();
            let dispose = room.closed().is_some() || {
                if room.is_empty() {
                    let since = *self.empty_since.entry(id.clone()).or_insert(self.elapsed);
                    self.elapsed.saturating_sub(since) >= grace
                } else {
                    self.empty_since.remove(&id);
                    false
                }
            };
            if dispose {
                room.close("room disposed of");
                drop(room);
                self.empty_since.remove(&id);
                self.state.remove_room(&id);
            } else {
                drop(room);
                self.state.publish(&slot);
            }
        }
    }

    /// The end of a script: every peer hangs up, and time passes past the
    /// close linger, the reconnect grace and the empty-room grace. No seat
    /// may outlive its connection's grace, and every room goes.
    ///
    /// # Panics
    /// When a room keeps a player, or a room is left (a finding).
    pub fn finish(&mut self) {
        for i in 0..self.peers.len() {
            self.eof(i);
        }
        self.advance(CLOSE_LINGER + Duration::from_secs(1));
        for i in 0..self.peers.len() {
            self.io_error(i);
        }
        assert!(self.peers.iter().all(|p| p.conn.is_none()), "a connection outlived its socket");
        // Seats are held for the reconnect grace, from the next tick on.
        self.tick_rooms();
        self.elapsed += self.state.config().reconnect_grace + Duration::from_secs(1);
        self.tick_rooms();
        for slot in self.rooms() {
            let room = slot.room.borrow();
            assert_eq!(room.player_count(), 0, "room {} keeps players past their reconnect grace", room.id());
        }
        self.dispose();
        self.elapsed += self.state.config().empty_room_grace;
        self.dispose();
        assert!(self.state.all_rooms().is_empty(), "rooms left after the empty-room grace");
        assert!(self.state.shared.directory.list(None, None).is_empty(), "the directory lists rooms that are gone");
    }

    /// What the runtime does after anything touched the connections: each
    /// takes in what others did to it, and an ended one is dropped. Checks
    /// the bound on what waits for each socket.
    fn settle(&mut self) {
        // The tick schedule's list of new rooms: this shard ticks them all.
        drop(self.state.take_new_rooms());
        let now = self.now();
        for peer in &mut self.peers {
            let Some(conn) = peer.conn.as_mut() else { continue };
            conn.sync(now);
            // One shard: there is nowhere to hand a connection to.
            assert!(conn.take_handoff().is_none(), "a hand-off on a single shard");
            let _ = conn.wants_shutdown_write();
            let pending = conn.outbox().pending().len();
            assert!(pending <= MAX_PENDING, "{pending} bytes wait for one socket");
            if conn.is_done() {
                let mut conn = peer.conn.take().expect("present");
                conn.finish();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run_script, ScriptBuilder};
    use super::*;
    use tickforge_protocol::message::ClientMsg;

    #[test]
    fn models_in_one_room_rebuild_the_rooms_state_through_partial_sends() {
        let mut b = ScriptBuilder::new();
        let a = b.open(Some(Format::Bin), true);
        let j = b.open(Some(Format::Json), true);
        b.request(a, 0, 0).send_all().request(j, 0, 0).send_all();
        for i in 0..60u8 {
            b.input(a, i as i8, -1, i & 1).input(j, 1, i as i8, 0).tick();
            // A's socket takes odd pieces: its ticks are skipped and its
            // deltas come from older baselines.
            b.send(a, 7 + u16::from(i) * 3).send(j, u16::MAX).advance(33);
            if i % 5 == 0 {
                b.ack(a);
            }
        }
        let shard = run_script(&b.build());
        assert!(shard.is_open(0) && shard.is_open(1));
        assert!(shard.checked_ticks() > 60, "only {} ticks checked", shard.checked_ticks());
    }

    #[test]
    fn hostile_bytes_in_a_models_room_are_refused_and_the_model_plays_on() {
        let mut b = ScriptBuilder::new();
        let m = b.open(Some(Format::Bin), true);
        let h = b.open(Some(Format::Json), false);
        b.request(m, 0, 0).send_all();
        let mut join = Vec::new();
        codec::encode_client(
            Format::Json,
            &ClientMsg::Req {
                id: tickforge_protocol::ids::RequestId(1),
                body: Request::JoinOrCreate { game: "arena".into(), options: None },
            },
            &mut join,
        )
        .unwrap();
        b.frame(h, ws::wire::OPCODE_TEXT, &join).passes(10);
        b.frame(h, ws::wire::OPCODE_TEXT, b"{\"type\":\"input\",\"seq\":1,\"ack\":999999,\"data\":7}");
        b.frame(h, ws::wire::OPCODE_BINARY, b"\x00\x01").passes(40);
        let shard = run_script(&b.build());
        assert!(shard.is_open(0));
        assert_eq!(shard.close_code(1), Some(1003), "a binary frame on a JSON connection");
        assert!(shard.checked_ticks() >= 40);
    }

    /// Finding 2 (RELIABILITY.md), the fuzzer's input: a model plays,
    /// then leaves and joins again and sends an input before it reads the
    /// answers; that input acks the old membership's newest tick.
    #[test]
    fn regression_an_ack_of_an_earlier_membership_is_not_a_baseline() {
        let mut b = ScriptBuilder::new();
        let m = b.open(Some(Format::Json), true);
        b.request(m, 6, 0).send_all().request(m, 0, 0).send_all();
        for _ in 0..7 {
            b.input(m, 0, 0, 0).passes(1);
        }
        b.input(m, 0, 0, 0).request(m, 3, 0).request(m, 0, 238).input(m, 0, 0, 0).passes(1);
        b.request(m, 3, 0).send_all();
        let shard = run_script(&b.build());
        assert!(shard.checked_ticks() >= 8);
    }

    #[test]
    fn a_silent_peer_is_pinged_then_closed() {
        let mut b = ScriptBuilder::new();
        let p = b.open(Some(Format::Bin), true);
        b.request(p, 0, 0).send_all().advance(16_000).send_all().advance(16_000).send_all();
        let shard = run_script(&b.build());
        assert_eq!(shard.close_code(0), Some(1008));
    }
}
