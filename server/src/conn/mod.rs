//! One WebSocket connection, sans-IO: bytes and the time go in, frames come
//! out through its [`Outbox`], and questions tell the runtime what to do
//! with the socket (read more? drop it? hand it to another shard?).
//!
//! The runtime owns the socket and calls, in any order: [`Connection::on_bytes`]
//! with what it read, [`Connection::on_sent`] with what the socket took,
//! [`Connection::on_eof`] / [`Connection::on_io_error`], [`Connection::sync`]
//! after anything else may have touched the connection (its room closed,
//! a close was asked for), and [`Connection::housekeeping`] now and then.
//! Nothing here reads the clock or touches a socket.
//!
//! tungstenite's sans-IO `WebSocketContext` parses the client's frames
//! (through [`Wire`]) and writes the frames it owns (pongs, close frames);
//! the connection decodes each message and handles it at once: an input
//! goes to its room through its [`Seat`], a request to [`crate::requests`].
//! Every way a connection ends is a [`CloseReason`] (or the peer going
//! away), counted once in the metrics; nothing returns an error to the shard.

pub(crate) mod limits;

use crate::cluster::serve::{Later, Settled};
use crate::game::LeaveReason;
use crate::metrics::ShardMetrics;
use crate::outbox::Outbox;
use crate::requests::{self, Reply, Requester, Session};
use crate::room::Seat;
use crate::shard_state::ShardState;
use crate::ws::{self, Pipe, Wire};
use limits::{RateLimit, Throttle, Verdict};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tickforge_protocol::codec::{self, Format};
use tickforge_protocol::ids::RequestId;
use tickforge_protocol::message::{ClientMsg, Indication, RejectCode, Request, ServerMsg};
use tickforge_protocol::CloseReason;
use tracing::debug;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketContext};
use tungstenite::{Message, Utf8Bytes};

/// How long a connection's last bytes get to drain once the close handshake
/// is done or the peer has gone, before dropping the socket.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Data frames up to this size are taken without tungstenite (see
/// [`Wire::take_simple_frame`]): every input and request in practice.
pub(crate) const SIMPLE_FRAME_MAX: usize = 1024;

thread_local! {
    /// The payload of the frame being handled, unmasked (one per shard
    /// thread, reused: no allocation per message).
    static FRAME: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Stop reading while this many received bytes wait to be parsed.
pub(crate) const RX_HIGH_WATER: usize = 64 * 1024;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Messages flow both ways.
    Open,
    /// Our close frame is written; the peer's close (or its EOF) is
    /// awaited until `deadline`, reading all the while, so that the socket
    /// is not closed with unread input (a RST, which would make the peer's
    /// kernel discard our close frame); our write side is shut once the
    /// close frame has left. With `discard` (a fault in the byte stream),
    /// what arrives is dropped unparsed.
    Closing { deadline: Instant, discard: bool },
    /// Nothing more to read (the peer's EOF, or the close handshake is
    /// complete): what is pending goes out until `deadline`.
    Flushing { deadline: Instant },
    /// Drop the socket.
    Done,
}

/// A join answered on another shard: the connection moves there.
#[derive(Debug)]
pub(crate) struct HandOff {
    /// The shard hosting the room.
    pub(crate) target: usize,
    /// The join, answered on arrival (boxed: a hand-off is rare, and the
    /// driver task holds this across a wait).
    pub(crate) request: Box<(RequestId, Request)>,
}

/// A connection's state carried to another shard.
#[derive(Debug)]
pub(crate) struct Moving {
    /// The negotiated wire format.
    pub(crate) format: Format,
    /// The session (id, authentication).
    pub(crate) session: Session,
    /// The request-rate bucket's level.
    pub(crate) req_tokens: f64,
    /// The join to answer on arrival.
    pub(crate) request: Option<(RequestId, Request)>,
}

/// One WebSocket connection's state.
#[derive(Debug)]
pub(crate) struct Connection {
    shard: Rc<ShardState>,
    outbox: Rc<Outbox>,
    ctx: WebSocketContext,
    wire: Wire,
    format: Format,
    echo: bool,
    session: Session,
    seat: Option<Seat>,
    phase: Phase,
    /// The close was counted in the metrics.
    counted: bool,
    /// Our write side was shut (after our close frame left).
    shut_write: bool,
    decode_errors: u32,
    inputs: RateLimit,
    requests: RateLimit,
    input_notice: Throttle,
    last_rx: Instant,
    pinged: bool,
    last_tx_progress: Instant,
    handoff: Option<HandOff>,
    /// A request whose answer waits on another node of the cluster, with
    /// the request kept to answer it here if that node gives no seat.
    later: Option<Box<(RequestId, Request, Later)>>,
}

impl Connection {
    /// A connection speaking `format` that has already read `rx` past its
    /// HTTP head; `echo` is the Autobahn echo route.
    pub(crate) fn new(
        shard: &Rc<ShardState>,
        format: Format,
        echo: bool,
        rx: Vec<u8>,
        session: Session,
        now: Instant,
    ) -> Self {
        let limits = &shard.config().limits;
        Self {
            shard: shard.clone(),
            outbox: Outbox::new(format, limits.control_queue),
            ctx: ws::server_context(limits.max_message_size),
            wire: Wire::with_rx(rx),
            format,
            echo,
            session,
            seat: None,
            phase: Phase::Open,
            counted: false,
            shut_write: false,
            decode_errors: 0,
            inputs: RateLimit::new(limits.inputs_per_sec, now),
            requests: RateLimit::new(limits.requests_per_sec, now),
            input_notice: Throttle::new(Duration::from_secs(1)),
            last_rx: now,
            pinged: false,
            last_tx_progress: now,
            handoff: None,
            later: None,
        }
    }

    /// Rebuilds a connection that arrived from another shard with the
    /// bytes it had read and not parsed; its pending join is answered here.
    pub(crate) fn arrived(shard: &Rc<ShardState>, moving: Moving, already_read: Vec<u8>, now: Instant) -> Self {
        let mut conn = Self::new(shard, moving.format, false, already_read, moving.session, now);
        conn.requests.set_tokens(moving.req_tokens);
        if let Some((id, body)) = moving.request {
            conn.answer(id, body, false, now);
        }
        conn
    }

    /// What this connection sends through.
    pub(crate) fn outbox(&self) -> &Rc<Outbox> {
        &self.outbox
    }

    fn metrics(&self) -> &ShardMetrics {
        self.shard.metrics()
    }

    /// Whether its room's tick pass drives its socket: it has a seat and
    /// nothing but messages to exchange (no close under way).
    pub(crate) fn in_room(&self) -> bool {
        self.seat.is_some() && self.phase == Phase::Open
    }

    /// Whether to read from the socket.
    pub(crate) fn wants_read(&self) -> bool {
        match self.phase {
            // While a request waits on another node, the next ones wait
            // in the socket: requests are answered in order.
            Phase::Open => {
                self.handoff.is_none() && self.later.is_none() && self.wire.rx_pending().len() < RX_HIGH_WATER
            }
            Phase::Closing { .. } => true,
            Phase::Flushing { .. } | Phase::Done => false,
        }
    }

    /// Whether to shut the socket's write side now (once: after our close
    /// frame has left). The peer's kernel then holds the close frame and
    /// our FIN behind it while its input is still read here: nothing is
    /// left unread when the socket is dropped, so no reset discards them.
    pub(crate) fn wants_shutdown_write(&mut self) -> bool {
        let due = matches!(self.phase, Phase::Closing { .. }) && !self.shut_write && !self.outbox.has_pending();
        if due {
            self.shut_write = true;
        }
        due
    }

    /// Whether to drop the socket: closed, or flushed what it had to say.
    pub(crate) fn is_done(&self) -> bool {
        match self.phase {
            Phase::Done => true,
            Phase::Flushing { .. } => !self.outbox.has_pending(),
            Phase::Open | Phase::Closing { .. } => false,
        }
    }

    /// The hand-off to make, once: the connection is to move to another
    /// shard (after its pending bytes are sent).
    pub(crate) fn take_handoff(&mut self) -> Option<HandOff> {
        self.handoff.take()
    }

    /// What moves with a hand-off, and the bytes read but not parsed.
    pub(crate) fn into_moving(mut self, request: (RequestId, Request)) -> (Moving, Vec<u8>) {
        let moving = Moving {
            format: self.format,
            session: std::mem::take(&mut self.session),
            req_tokens: self.requests.tokens(),
            request: Some(request),
        };
        // Not a close: the connection lives on, elsewhere.
        self.counted = true;
        (moving, self.wire.rx_pending().to_vec())
    }

    /// Bytes read from the socket.
    pub(crate) fn on_bytes(&mut self, bytes: &[u8], now: Instant) {
        ShardMetrics::add(&self.metrics().bytes_in, bytes.len() as u64);
        self.last_rx = now;
        self.pinged = false;
        if let Phase::Closing { discard: true, .. } = self.phase {
            return;
        }
        self.wire.push_rx(bytes);
        self.read_messages(now);
    }

    /// Parses and handles what is already buffered (bytes that came with
    /// the HTTP head or a hand-off).
    pub(crate) fn on_buffered(&mut self, now: Instant) {
        self.read_messages(now);
    }

    /// The socket took `n` of the pending bytes.
    pub(crate) fn on_sent(&mut self, n: usize, now: Instant) {
        if n > 0 {
            ShardMetrics::add(&self.metrics().bytes_out, n as u64);
            self.outbox.consume(n);
            self.last_tx_progress = now;
        }
    }

    /// The peer sent everything it will (EOF): what is pending goes out
    /// within the close linger.
    pub(crate) fn on_eof(&mut self, now: Instant) {
        self.leave(LeaveReason::Disconnected);
        let linger = now + CLOSE_LINGER;
        self.phase = match self.phase {
            Phase::Open | Phase::Closing { .. } if !self.outbox.has_pending() => Phase::Done,
            Phase::Open | Phase::Closing { .. } => Phase::Flushing { deadline: linger },
            Phase::Flushing { deadline } => Phase::Flushing { deadline: deadline.min(linger) },
            Phase::Done => Phase::Done,
        };
    }

    /// The socket failed: nothing more can be sent or read.
    pub(crate) fn on_io_error(&mut self) {
        self.leave(LeaveReason::Disconnected);
        self.phase = Phase::Done;
    }

    /// Takes in what others did to this connection since the last call: a
    /// close its outbox was asked for (by its room, the drain, a full
    /// queue), a room that closed or let go of it.
    pub(crate) fn sync(&mut self, now: Instant) {
        if let Some(reason) = self.outbox.close_reason() {
            self.close(reason, now);
        }
        if self.seat.as_ref().is_some_and(|s| !s.is_held()) {
            self.seat = None;
        }
    }

    /// Timers: close linger, send stall, keepalive; frees idle buffers.
    pub(crate) fn housekeeping(&mut self, now: Instant) {
        self.wire.shrink();
        self.outbox.shrink();
        match self.phase {
            Phase::Closing { deadline, .. } | Phase::Flushing { deadline } if now >= deadline => {
                self.leave(LeaveReason::Disconnected);
                self.phase = Phase::Done;
                return;
            }
            Phase::Open => {}
            _ => return,
        }
        let config = self.shard.config();
        let stalled = now.saturating_duration_since(self.last_tx_progress);
        if self.outbox.has_pending() && stalled >= config.limits.send_stall {
            let secs = stalled.as_secs_f64();
            self.close(CloseReason::TooSlow { detail: format!("socket took no bytes for {secs:.1} s").into() }, now);
            return;
        }
        if !self.outbox.has_pending() {
            self.last_tx_progress = now;
        }
        let silent = now.saturating_duration_since(self.last_rx);
        if self.pinged && silent >= config.ping_interval + config.ping_timeout {
            self.close(CloseReason::KeepaliveTimeout { secs: config.ping_timeout.as_secs() }, now);
        } else if !self.pinged && silent >= config.ping_interval {
            self.pinged = true;
            let _ =
                self.ctx.write(&mut Pipe { wire: &mut self.wire, tx: &*self.outbox }, Message::Ping(Vec::new().into()));
        }
    }

    /// At the end of the connection's life: counts a close nobody
    /// counted (the peer went away) and gives the seat back.
    pub(crate) fn finish(&mut self) {
        if !self.counted {
            self.counted = true;
            self.metrics().close_label("peer_gone");
        }
        self.leave(LeaveReason::Disconnected);
        self.phase = Phase::Done;
    }

    /// The connection is ending (or closing) without `leave_room`: its
    /// seat, if any, is held for a `resume` for the reconnect grace (not
    /// when the server shuts down), else freed with `reason`; a spectator
    /// stops watching. The connection's task is woken: it drives the
    /// socket itself from now on.
    fn leave(&mut self, reason: LeaveReason) {
        if let Some(seat) = self.seat.take() {
            let slot = seat.slot().clone();
            let hold = reason != LeaveReason::Closed(CloseReason::ShuttingDown.label()) && !self.shard.refusing();
            if seat.disconnect(reason, hold) {
                ShardMetrics::inc(&self.metrics().seats_held);
            }
            self.shard.publish(&slot);
            self.outbox.wake();
        }
    }

    /// Reads every complete message tungstenite can make of the bytes in.
    fn read_messages(&mut self, now: Instant) {
        loop {
            let reading = match self.phase {
                Phase::Open => self.handoff.is_none(),
                Phase::Closing { discard, .. } => !discard,
                Phase::Flushing { .. } | Phase::Done => false,
            };
            if !reading {
                break;
            }
            // The common case (a whole, small, final data frame) is taken
            // straight from the wire; tungstenite gets everything else.
            let limit = SIMPLE_FRAME_MAX.min(self.shard.config().limits.max_message_size);
            // Taken out of the slot (not borrowed) so that nothing on_data
            // reaches can ever find it borrowed.
            let mut payload = FRAME.take();
            let taken = self.wire.take_simple_frame(limit, &mut payload).map(|binary| {
                if !binary && std::str::from_utf8(&payload).is_err() {
                    return Err(());
                }
                self.on_data(&payload, binary, now);
                Ok(())
            });
            FRAME.set(payload);
            match taken {
                Some(Ok(())) => continue,
                Some(Err(())) => {
                    self.fail(CloseReason::InvalidUtf8, now);
                    continue;
                }
                None => {}
            }
            let read = self.ctx.read(&mut Pipe { wire: &mut self.wire, tx: &*self.outbox });
            match read {
                Ok(Message::Text(text)) => self.on_data(text.as_bytes(), false, now),
                Ok(Message::Binary(bytes)) => self.on_data(&bytes, true, now),
                Ok(Message::Close(_)) => {
                    // tungstenite queued its answer (or this completes our
                    // own close): send it, then drop the socket.
                    self.count(&CloseReason::Normal);
                    self.leave(LeaveReason::Closed(CloseReason::Normal.label()));
                    self.phase = Phase::Flushing { deadline: now + CLOSE_LINGER };
                }
                Ok(_) => {} // ping (tungstenite answers), pong, raw frame
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.phase = Phase::Flushing { deadline: now + CLOSE_LINGER };
                }
                Err(tungstenite::Error::Capacity(_)) => {
                    let max = self.shard.config().limits.max_message_size;
                    self.fail(CloseReason::TooLarge { max }, now);
                }
                Err(tungstenite::Error::Utf8(_)) => self.fail(CloseReason::InvalidUtf8, now),
                Err(tungstenite::Error::Protocol(p)) => {
                    self.fail(CloseReason::ProtocolError(p.to_string().into()), now);
                }
                Err(e) => {
                    debug!(error = %e, "websocket read failed");
                    self.phase = Phase::Flushing { deadline: now + CLOSE_LINGER };
                }
            }
        }
        // Pongs and close answers tungstenite queued go out with the rest.
        let _ = self.ctx.flush(&mut Pipe { wire: &mut self.wire, tx: &*self.outbox });
    }

    fn count(&mut self, reason: &CloseReason) {
        if !self.counted {
            self.counted = true;
            self.metrics().close(reason);
        }
    }

    /// Closes after a fault in the byte stream: nothing more is parsed;
    /// input is discarded until the peer closes (or the close's wait ends).
    fn fail(&mut self, reason: CloseReason, now: Instant) {
        self.close(reason, now);
        if let Phase::Closing { deadline, .. } = self.phase {
            self.phase = Phase::Closing { deadline, discard: true };
            self.wire.discard_rx();
        }
    }

    /// Sends a close frame with `reason` (once) and leaves the room.
    fn close(&mut self, reason: CloseReason, now: Instant) {
        if self.phase != Phase::Open {
            return;
        }
        self.count(&reason);
        debug!(reason = %reason, code = reason.code(), "closing connection");
        let wait = self.close_wait(&reason);
        self.leave(LeaveReason::Closed(reason.label()));
        // No frame is queued after this one.
        self.outbox.close(reason.clone());
        let frame = CloseFrame { code: CloseCode::from(reason.code()), reason: Utf8Bytes::from(reason.reason_text()) };
        let mut pipe = Pipe { wire: &mut self.wire, tx: &*self.outbox };
        if self.ctx.close(&mut pipe, Some(frame)).is_ok() && self.ctx.flush(&mut pipe).is_ok() {
            self.phase = Phase::Closing { deadline: now + wait, discard: false };
        } else {
            self.phase = Phase::Flushing { deadline: now + wait };
        }
    }

    /// How long a close waits for the peer's answer: the send-stall bound
    /// (at least the close linger). The close frame may queue behind bytes
    /// the kernel still holds for a slow peer or a slow link, which nothing
    /// here can see; dropping the socket before the peer has read up to it
    /// would let the peer's next input meet a closed socket, and the
    /// kernel's reset would discard the close frame and its reason. A peer
    /// that answers (or hangs up) ends the wait at once; one cut off for a
    /// while (a lost route, a phone in a tunnel) still gets the close frame
    /// if it comes back within the wait.
    /// A server shutting down waits the linger only: the process ends with
    /// the drain, and a drain should not last for the peers that do not
    /// answer.
    fn close_wait(&self, reason: &CloseReason) -> Duration {
        if *reason == CloseReason::ShuttingDown {
            CLOSE_LINGER
        } else {
            self.shard.config().limits.send_stall.max(CLOSE_LINGER)
        }
    }

    fn reply(&mut self, id: RequestId, reply: Reply, is_hello: bool, now: Instant) {
        match reply {
            Reply::Cfm(body) => self.push(&ServerMsg::Cfm { id, body }),
            Reply::Rej(code, reason) => {
                self.metrics().reject(code);
                self.push(&ServerMsg::Rej { id, code, reason });
                if is_hello && code == RejectCode::Unauthorized {
                    self.close(CloseReason::RefusedToken, now);
                }
            }
            // Hand-offs are taken before replying; one here is a bug, not
            // a reason to take the shard down.
            Reply::HandOff { .. } | Reply::Later(_) => {
                self.metrics().reject(RejectCode::Internal);
                self.push(&ServerMsg::Rej { id, code: RejectCode::Internal, reason: "misrouted request".into() });
            }
        }
    }

    /// Queues a server message (a full queue closes the connection as too
    /// slow: the outbox asks for it, and [`Connection::sync`] does it).
    fn push(&self, msg: &ServerMsg) {
        ShardMetrics::inc(&self.metrics().messages_out);
        let _ = self.outbox.push_msg(msg);
    }

    fn indicate_error(&self, code: RejectCode, reason: String) {
        self.metrics().reject(code);
        self.push(&ServerMsg::Ind { body: Indication::Error { code, reason } });
    }

    /// One data message.
    fn on_data(&mut self, bytes: &[u8], binary: bool, now: Instant) {
        ShardMetrics::inc(&self.metrics().messages_in);
        if self.phase != Phase::Open {
            // Our close frame is out: what the peer sent meanwhile is read
            // (its close is awaited) and dropped.
            return;
        }
        if self.echo {
            let msg = if binary {
                Message::Binary(bytes.to_vec().into())
            } else {
                Message::Text(Utf8Bytes::try_from(bytes.to_vec()).unwrap_or_default())
            };
            let _ = self.ctx.write(&mut Pipe { wire: &mut self.wire, tx: &*self.outbox }, msg);
            return;
        }
        if binary != self.format.is_binary() {
            let got = if binary { "binary" } else { "text" };
            return self.close(CloseReason::WrongFrameType { format: self.format, got }, now);
        }
        let max = self.shard.config().limits.max_message_size;
        match codec::decode_client(self.format, bytes, max) {
            Ok(msg) => {
                self.decode_errors = 0;
                self.on_message(msg, now);
            }
            Err(e) => {
                self.decode_errors += 1;
                if e.close_code() == 1009 {
                    return self.close(CloseReason::TooLarge { max }, now);
                }
                if self.decode_errors >= self.shard.config().limits.max_decode_errors {
                    let (count, last) = (self.decode_errors, e.to_string().into());
                    return self.close(CloseReason::Undecodable { count, last }, now);
                }
                match e.reject() {
                    Some((id, code)) => self.reply(id, Reply::Rej(code, e.to_string()), false, now),
                    None => self.indicate_error(RejectCode::BadRequest, e.to_string()),
                }
            }
        }
    }

    fn on_message(&mut self, msg: ClientMsg, now: Instant) {
        match msg {
            ClientMsg::Req { id, body } => self.on_request(id, body, now),
            ClientMsg::Input { seq, ack, data } => {
                if !self.input_allowed(now) {
                    return;
                }
                // An input outside the room's input schema is dropped like
                // one in no room: one `error` indication a second at most
                // (not an undecodable message: no 1007 for it).
                let dropped = match &self.seat {
                    Some(seat) if !seat.is_spectator() => {
                        seat.input(seq, ack, &data).err().map(|e| (e.reject_code(), format!("input dropped: {e}")))
                    }
                    // A spectator has no avatar to move: as if in no room.
                    Some(_) => {
                        Some((RejectCode::NotInRoom, "input while watching (a spectator has no seat): dropped".into()))
                    }
                    None => Some((RejectCode::NotInRoom, "input while in no room: dropped".into())),
                };
                if let Some((code, reason)) = dropped {
                    ShardMetrics::inc(&self.metrics().inputs_dropped);
                    if self.input_notice.allow(now) {
                        self.indicate_error(code, reason);
                    }
                }
            }
            ClientMsg::Ack { tick } => {
                // Acks count against the same rate as inputs.
                if self.input_allowed(now) {
                    if let Some(seat) = &self.seat {
                        seat.ack(tick);
                    }
                }
            }
        }
    }

    /// The inputs-per-second limit: false drops this input; far over it,
    /// the connection is closed as flooding.
    fn input_allowed(&mut self, now: Instant) -> bool {
        match self.inputs.check(now) {
            Verdict::Allowed => true,
            verdict => {
                ShardMetrics::inc(&self.metrics().inputs_dropped);
                if verdict == Verdict::Flooding {
                    let limit = self.shard.config().limits.inputs_per_sec;
                    self.close(CloseReason::Flooding { limit }, now);
                }
                false
            }
        }
    }

    fn on_request(&mut self, id: RequestId, body: Request, now: Instant) {
        let limit = self.shard.config().limits.requests_per_sec;
        match self.requests.check(now) {
            Verdict::Allowed => self.answer(id, body, true, now),
            // Answering every request of a flood is work without a bound:
            // far over the rate, the connection is closed, as for inputs.
            Verdict::Flooding => self.close(CloseReason::Flooding { limit }, now),
            Verdict::Refused => self.reply(
                id,
                Reply::Rej(RejectCode::RateLimited, format!("over {limit} requests per second")),
                false,
                now,
            ),
        }
    }

    /// Answers a request (the rate limit passed). `may_move`: a join of a
    /// room on another shard hands the connection over instead.
    fn answer(&mut self, id: RequestId, body: Request, may_move: bool, now: Instant) {
        self.answer_as(id, body, may_move, true, now);
    }

    /// As [`Connection::answer`]; `remote`: a join may pick a room of
    /// another node.
    fn answer_as(&mut self, id: RequestId, body: Request, may_move: bool, remote: bool, now: Instant) {
        self.sync(now);
        let is_hello = matches!(body, Request::Hello { .. });
        let in_cluster = remote && self.shard.cluster.is_some();
        let kept = match &body {
            Request::JoinRoom { .. }
            | Request::JoinOrCreate { .. }
            | Request::Resume { .. }
            | Request::WatchRoom { .. }
                if may_move || in_cluster =>
            {
                Some(body.clone())
            }
            _ => None,
        };
        let had_seat = self.seat.is_some();
        let who = Requester { outbox: &self.outbox, session: &mut self.session, seat: &mut self.seat, remote };
        let reply = requests::handle(&self.shard, who, body, may_move);
        if had_seat != self.seat.is_some() {
            // Joined or left: whoever drives the socket changes.
            self.outbox.wake();
        }
        match reply {
            Reply::HandOff { shard } => match kept {
                Some(body) => self.handoff = Some(HandOff { target: shard, request: Box::new((id, body)) }),
                None => self.reply(id, Reply::Rej(RejectCode::Internal, "misrouted request".into()), false, now),
            },
            Reply::Later(later) => match kept {
                Some(body) => self.later = Some(Box::new((id, body, later))),
                None => self.reply(id, Reply::Rej(RejectCode::Internal, "misrouted request".into()), false, now),
            },
            reply => self.reply(id, reply, is_hello, now),
        }
    }
}

impl Connection {
    /// Polls the request waiting on another node (with the driver's
    /// waker: the cluster's threads wake it); true once it was answered.
    pub(crate) fn poll_later(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Some(later) = self.later.as_mut() else { return false };
        let Poll::Ready(settled) = later.2 .0.as_mut().poll(cx) else { return false };
        let Some(later) = self.later.take() else { return false };
        let (id, body, _) = *later;
        match settled {
            Settled::Answer(result) => self.reply(id, result.into(), false, now),
            Settled::Local => self.answer_as(id, body, true, false, now),
        }
        true
    }
}

impl Drop for Connection {
    /// However the connection ends (a panic included), its seat is given back.
    fn drop(&mut self) {
        self.leave(LeaveReason::Disconnected);
    }
}

#[cfg(test)]
mod tests {
    //! The connection on a virtual clock: no socket, no sleeping.

    use super::*;
    use crate::config::ServerConfig;
    use crate::directory::Directory;
    use crate::metrics::Metrics;
    use crate::outbox::OutboxItem;
    use crate::shard_state::Shared;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn shard(f: impl FnOnce(&mut ServerConfig)) -> Rc<ShardState> {
        let mut config = ServerConfig { shards: 1, ..ServerConfig::default() };
        f(&mut config);
        let shared = Shared {
            config: Arc::new(config),
            metrics: Metrics::new(1),
            directory: Directory::default(),
            stop: Arc::new(AtomicBool::new(false)),
            tls: None,
            cluster: None,
            monitor: crate::monitor::Monitor::new(1, false, 0),
        };
        Rc::new(ShardState::new(0, shared))
    }

    /// A masked client frame.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [7u8, 1, 2, 3];
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    /// The control frames (opcode, payload) waiting in `conn`'s outbox.
    fn sent(conn: &Connection) -> Vec<(u8, Vec<u8>)> {
        let pending = conn.outbox().pending().to_vec();
        let mut out = Vec::new();
        let mut rest = &pending[..];
        while rest.len() >= 2 {
            let len = usize::from(rest[1] & 0x7f);
            out.push((rest[0] & 0x0f, rest[2..2 + len].to_vec()));
            rest = &rest[2 + len..];
        }
        conn.outbox().consume(pending.len());
        out
    }

    #[test]
    fn a_silent_peer_is_pinged_then_closed_1008() {
        let shard = shard(|c| {
            c.ping_interval = Duration::from_secs(15);
            c.ping_timeout = Duration::from_secs(15);
        });
        let t0 = Instant::now();
        let mut conn = Connection::new(&shard, Format::Json, false, Vec::new(), Session::default(), t0);
        conn.housekeeping(t0 + Duration::from_secs(14));
        assert!(sent(&conn).is_empty(), "no ping before the interval");
        conn.housekeeping(t0 + Duration::from_secs(15));
        assert_eq!(sent(&conn), vec![(0x9, Vec::new())], "a ping at the interval");
        conn.housekeeping(t0 + Duration::from_secs(29));
        assert!(conn.outbox().close_reason().is_none());
        conn.housekeeping(t0 + Duration::from_secs(30));
        let close = sent(&conn);
        assert_eq!(close[0].0, 0x8);
        assert_eq!(u16::from_be_bytes([close[0].1[0], close[0].1[1]]), 1008);
        assert!(!conn.is_done(), "waits for the peer's close");
        assert!(conn.wants_shutdown_write(), "our write side shuts once the close frame has left");
        assert!(!conn.wants_shutdown_write(), "once");
        conn.housekeeping(t0 + Duration::from_secs(30) + CLOSE_LINGER);
        assert!(!conn.is_done(), "the close frame may still be in the kernel, behind others");
        conn.housekeeping(t0 + Duration::from_secs(30) + ServerConfig::default().limits.send_stall);
        assert!(conn.is_done(), "the send-stall bound ends the wait");
    }

    #[test]
    fn any_bytes_from_the_peer_reset_the_keepalive() {
        let shard = shard(|_| {});
        let t0 = Instant::now();
        let mut conn = Connection::new(&shard, Format::Json, false, Vec::new(), Session::default(), t0);
        conn.on_bytes(&frame(0xA, b""), t0 + Duration::from_secs(14)); // a pong
        conn.housekeeping(t0 + Duration::from_secs(20));
        assert!(sent(&conn).is_empty(), "silent for 6 s only");
    }

    #[test]
    fn a_socket_that_takes_nothing_is_closed_after_the_send_stall() {
        let shard = shard(|c| c.limits.send_stall = Duration::from_secs(10));
        let t0 = Instant::now();
        let mut conn = Connection::new(&shard, Format::Json, false, Vec::new(), Session::default(), t0);
        let ping = br#"{"type":"req","id":1,"body":{"type":"ping","client_time_us":5}}"#;
        conn.on_bytes(&frame(0x1, ping), t0);
        assert!(conn.outbox().has_pending(), "the pong waits for the socket");
        conn.housekeeping(t0 + Duration::from_secs(9));
        assert!(conn.outbox().close_reason().is_none());
        conn.housekeeping(t0 + Duration::from_secs(10));
        assert!(matches!(conn.outbox().close_reason(), Some(CloseReason::TooSlow { .. })));
    }

    #[test]
    fn a_close_waits_for_the_peer_up_to_the_send_stall_reading_all_the_while() {
        let shard = shard(|c| c.limits.send_stall = Duration::from_secs(10));
        let t0 = Instant::now();
        let ping = br#"{"type":"req","id":1,"body":{"type":"ping","client_time_us":5}}"#;
        // A peer behind a slow link: its input goes on arriving, and is
        // read, while the close frame waits behind what it was sent.
        let mut conn = Connection::new(&shard, Format::Json, false, Vec::new(), Session::default(), t0);
        conn.on_bytes(&frame(0x1, ping), t0);
        conn.close(CloseReason::Normal, t0);
        assert!(!conn.wants_shutdown_write(), "not before the close frame has left");
        for s in 1..10 {
            let now = t0 + Duration::from_secs(s);
            assert!(conn.wants_read(), "input is read while closing");
            conn.on_bytes(&frame(0x1, ping), now);
            conn.on_sent(1, now);
            conn.housekeeping(now);
            assert!(!conn.is_done(), "still waiting at {s} s");
        }
        let left = conn.outbox().pending().len();
        conn.on_sent(left, t0 + Duration::from_secs(9));
        assert!(conn.wants_shutdown_write(), "the write side shuts once the close frame has left");
        conn.housekeeping(t0 + Duration::from_secs(10));
        assert!(conn.is_done(), "the send-stall bound ends the wait");

        // A peer that answers ends it at once.
        let mut conn = Connection::new(&shard, Format::Json, false, Vec::new(), Session::default(), t0);
        conn.close(CloseReason::Normal, t0);
        let left = conn.outbox().pending().len();
        conn.on_sent(left, t0);
        conn.on_bytes(&frame(0x8, &1000u16.to_be_bytes()), t0 + Duration::from_millis(5));
        assert!(conn.is_done(), "the close handshake is complete");
    }

    #[test]
    fn the_peers_close_is_answered_and_the_socket_dropped_once_sent() {
        let shard = shard(|_| {});
        let t0 = Instant::now();
        let mut conn = Connection::new(&shard, Format::Bin, false, Vec::new(), Session::default(), t0);
        conn.on_bytes(&frame(0x8, &1000u16.to_be_bytes()), t0);
        assert_eq!(sent(&conn), vec![(0x8, 1000u16.to_be_bytes().to_vec())]);
        assert!(conn.is_done());
        let m = shard.shared.metrics.render();
        assert!(m.contains("tickforge_closes_total{reason=\"normal\",code=\"1000\"} 1"), "{m}");
    }

    #[test]
    fn inputs_outside_a_room_get_one_error_indication_a_second() {
        let shard = shard(|_| {});
        let t0 = Instant::now();
        let mut conn = Connection::new(&shard, Format::Json, false, Vec::new(), Session::default(), t0);
        let input = br#"{"type":"input","seq":1,"data":{"move_x":0,"move_y":0,"buttons":0}}"#;
        for ms in [0, 100, 900] {
            conn.on_bytes(&frame(0x1, input), t0 + Duration::from_millis(ms));
        }
        let errors = conn.outbox().pending().windows(11).filter(|w| w == b"not_in_room").count();
        assert_eq!(errors, 1);
        conn.on_bytes(&frame(0x1, input), t0 + Duration::from_millis(1000));
        assert!(matches!(conn.outbox().try_next(), Some(OutboxItem::Control(_))));
        assert!(matches!(conn.outbox().try_next(), Some(OutboxItem::Control(_))));
        assert_eq!(conn.outbox().try_next(), None);
    }
}
