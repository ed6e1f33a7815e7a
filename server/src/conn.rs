//! One connection: the HTTP request head (with the handshake timeout), the
//! plain routes, and for a WebSocket the connection's one task.
//!
//! The task is a small driver loop (like quinn's `ConnectionDriver`): it
//! waits for whichever comes first of socket readable, socket writable,
//! the connection's [`Outbox`] and a housekeeping timer; moves bytes
//! between the socket and [`Wire`]; lets tungstenite's sans-IO
//! `WebSocketContext` turn them into messages; and handles each message
//! synchronously (decode, limits, requests, inputs). Every way a
//! connection ends is a [`CloseReason`] (or the peer going away), counted
//! in the metrics; nothing here returns an error to the shard.

use crate::http::{self, parse_head, RequestHead, Route};
use crate::metrics::ShardMetrics;
use crate::outbox::{Outbox, OutboxItem};
use crate::relocate::{self, Moving};
use crate::requests::{self, Reply, Session};
use crate::shard::{RoomSlot, Shard};
use crate::ws::{self, HandshakePolicy, Wire};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_lite::FutureExt as _;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::sync::StaticPermit;
use glommio::timer::Timer;
use std::future::{poll_fn, Future};
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tickforge_protocol::codec::{self, Format};
use tickforge_protocol::ids::{PlayerId, RequestId};
use tickforge_protocol::message::{ClientMsg, Indication, RejectCode, Request, ServerMsg};
use tickforge_protocol::CloseReason;
use tracing::{debug, warn};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketContext};
use tungstenite::{Message, Utf8Bytes};

/// How long a connection waits for the peer's close frame (and for its
/// last bytes to drain) after sending its own, before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Stop reading while this many received bytes wait to be parsed.
const RX_HIGH_WATER: usize = 64 * 1024;

/// Take more from the outbox only while less than this waits for the socket.
const TX_LOW_WATER: usize = 16 * 1024;

/// A connection sending more than this many times its input rate within
/// one second is flooding: closed 1008.
const FLOOD_FACTOR: u32 = 5;

/// Serves one accepted socket; `permit` is `None` when the shard is at its
/// connection limit (the answer is then 503). A panic (a bug, never bad
/// input) ends only this connection: it is logged and counted as an
/// `internal` close, and the shard goes on.
pub(crate) async fn serve(shard: Rc<Shard>, stream: TcpStream, permit: Option<StaticPermit>) {
    let task = AssertUnwindSafe(serve_inner(shard.clone(), stream, permit.is_some()));
    if let Err(panic) = task.catch_unwind().await {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        warn!(shard = shard.id, panic = %what, "connection task panicked; connection dropped");
        shard.metrics().close(&CloseReason::Internal);
    }
    drop(permit);
}

/// Counts an open connection in the metrics while it lives.
struct OpenConnection<'a>(&'a ShardMetrics);

impl<'a> OpenConnection<'a> {
    fn new(m: &'a ShardMetrics) -> Self {
        ShardMetrics::gauge(&m.connections, 1);
        Self(m)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        ShardMetrics::gauge(&self.0.connections, -1);
    }
}

async fn serve_inner(shard: Rc<Shard>, mut stream: TcpStream, have_permit: bool) {
    let _open = OpenConnection::new(shard.metrics());
    let _ = stream.set_nodelay(true);
    let head = read_head(&shard, &mut stream).await;
    if let Some((head, rest)) = head {
        route(&shard, stream, head, rest, have_permit).await;
    }
}

/// Reads a request head within the handshake timeout; answers 400 itself
/// for a malformed one. `None`: nothing more to do with this socket.
async fn read_head(shard: &Shard, stream: &mut TcpStream) -> Option<(RequestHead, Vec<u8>)> {
    let timeout = shard.config().limits.handshake_timeout;
    let read = async {
        // Read straight into the heap buffer: no array in this future,
        // whose size every connection's task keeps for its whole life.
        let mut buf = Vec::new();
        loop {
            let len = buf.len();
            buf.resize(len + 1024, 0);
            let n = match stream.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return Err(None),
                Ok(n) => n,
            };
            buf.truncate(len + n);
            match parse_head(&buf) {
                Ok(Some((head, len))) => return Ok((head, buf.split_off(len))),
                Ok(None) => {}
                Err(e) => return Err(Some(e)),
            }
        }
    };
    let timed = async {
        glommio::timer::sleep(timeout).await;
        Err(None)
    };
    match futures_lite::future::or(read, timed).await {
        Ok(head) => Some(head),
        Err(Some(e)) => {
            answer(shard, stream, http::error(400, &e.to_string(), &[]), 400).await;
            None
        }
        Err(None) => None,
    }
}

/// Writes a whole plain answer and closes: our side first, then, after
/// reading (and dropping) what the client still sends, such as a request
/// body, for at most a second, so that unread input does not turn the close
/// into a RST that could discard the answer.
async fn answer(shard: &Shard, stream: &mut TcpStream, bytes: Vec<u8>, status: u16) {
    shard.metrics().http_status(status);
    if !write_within(shard, stream, &bytes).await {
        return;
    }
    let _ = stream.close().await;
    let drain = async {
        let mut sink = vec![0u8; 1024];
        let mut total = 0usize;
        while let Ok(n @ 1..) = stream.read(&mut sink).await {
            total += n;
            if total > 1 << 20 {
                break;
            }
        }
    };
    futures_lite::future::or(drain, glommio::timer::sleep(Duration::from_secs(1))).await;
}

/// Writes `bytes` within the handshake timeout: a client that does not
/// read its answer (a zero receive window) cannot hold the task and its
/// connection permit forever. Returns whether everything was written.
async fn write_within(shard: &Shard, stream: &mut TcpStream, bytes: &[u8]) -> bool {
    let write = async { stream.write_all(bytes).await.is_ok() && stream.flush().await.is_ok() };
    let timed = async {
        glommio::timer::sleep(shard.config().limits.handshake_timeout).await;
        false
    };
    futures_lite::future::or(write, timed).await
}

async fn route(shard: &Rc<Shard>, mut stream: TcpStream, head: RequestHead, rest: Vec<u8>, have_permit: bool) {
    let config = shard.config();
    let Some(route) = http::route(&head.path, config.echo) else {
        let body = http::error(404, &format!("no such path: {}", head.path), &[]);
        return answer(shard, &mut stream, body, 404).await;
    };
    let is_ws = matches!(route, Route::Ws | Route::Echo);
    let head_only = !is_ws && head.method == "HEAD";
    if !is_ws && head.method != "GET" && !head_only {
        let why = format!("{} is not allowed on {}: use GET", head.method, head.path);
        return answer(shard, &mut stream, http::error(405, &why, &[("Allow", "GET, HEAD")]), 405).await;
    }
    let ok = |ty: &str, body: &[u8]| http::response(200, ty, &[], body);
    let reply = match route {
        Route::Page => match crate::web::asset(&head.path) {
            Some((ty, bytes)) => ok(ty, bytes),
            None => http::error(404, &format!("no such path: {}", head.path), &[]),
        },
        Route::Healthz if shard.refusing() => http::error(503, "draining: shutting down", &[]),
        Route::Healthz => ok("text/plain; charset=utf-8", b"ok\n"),
        Route::Metrics => ok("text/plain; version=0.0.4; charset=utf-8", shard.shared.metrics.render().as_bytes()),
        Route::Rooms => {
            let rooms = shard.list_rooms(None);
            let body = serde_json::to_vec(&serde_json::json!({ "rooms": rooms })).unwrap_or_default();
            ok("application/json", &body)
        }
        Route::Ws | Route::Echo => {
            if shard.refusing() {
                http::error(503, "server shutting down", &[])
            } else if !have_permit {
                let limit = config.connections_per_shard();
                http::error(503, &format!("server full: {limit} connections on this shard"), &[])
            } else {
                let policy = HandshakePolicy {
                    allowed_origins: &config.allowed_origins,
                    token: config.token.as_deref(),
                    negotiate: route == Route::Ws,
                };
                match ws::check_upgrade(&head, &policy) {
                    Err(refused) => http::error(refused.status, &refused.why, &refused.headers),
                    Ok(accepted) => {
                        let answer = ws::switching_protocols(&accepted);
                        if !write_within(shard, &mut stream, &answer).await {
                            return;
                        }
                        shard.metrics().http_status(101);
                        let authed = config.token.is_none() || head.query_param("token").is_some();
                        let session = Session { session_id: None, authed };
                        let mut conn =
                            Conn::new(shard, accepted.format, route == Route::Echo, Wire::with_rx(rest), session);
                        // The request head is not needed for the connection's life.
                        drop(head);
                        conn.run(stream).await;
                        return;
                    }
                }
            }
        }
    };
    let mut reply = reply;
    let status = std::str::from_utf8(&reply[9..12]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    if head_only {
        if let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
            reply.truncate(end + 4);
        }
    }
    answer(shard, &mut stream, reply, status).await;
}

/// What woke the driver loop.
enum Wake {
    Read(io::Result<usize>),
    Wrote(io::Result<usize>),
    Item(OutboxItem),
    Timer,
}

/// One WebSocket connection's state.
#[derive(Debug)]
pub(crate) struct Conn {
    shard: Rc<Shard>,
    outbox: Rc<Outbox>,
    ctx: WebSocketContext,
    wire: Wire,
    format: Format,
    echo: bool,
    /// This connection's key in the shard's connection slab.
    key: Option<usize>,
    session: Session,
    /// The room this connection is in and its player id there (refreshed
    /// from the outbox's membership after every request).
    room: Option<(Rc<RoomSlot>, PlayerId)>,
    decode_errors: u32,
    last_not_in_room: Option<Instant>,
    req_tokens: f64,
    req_refilled: Instant,
    input_window: Instant,
    inputs_in_window: u32,
    /// Requests refused as rate limited in the current one-second window.
    limited_window: Instant,
    limited_in_window: u32,
    /// A close frame was sent (or the socket is being given up).
    closing: bool,
    /// The close was counted in the metrics.
    counted: bool,
    /// Nothing more will be read; leave once `tx` drained.
    finished: bool,
    /// The byte stream failed (a close frame is queued): what arrives is
    /// read and dropped until the peer closes, so that the socket is not
    /// closed with unread input (which would send RST and make the peer's
    /// kernel discard our close frame).
    discarding: bool,
    /// Our side of the socket was shut down (after the close frame).
    shut_write: bool,
    close_deadline: Option<Instant>,
    last_rx: Instant,
    pinged: bool,
    last_tx_progress: Instant,
    /// A join answered on another shard: set, the loop hands off and ends.
    handoff: Option<(usize, RequestId, Request)>,
}

impl Conn {
    pub(crate) fn new(shard: &Rc<Shard>, format: Format, echo: bool, wire: Wire, session: Session) -> Self {
        let limits = &shard.config().limits;
        let outbox = Outbox::new(format, limits.control_queue);
        let now = Instant::now();
        Self {
            shard: shard.clone(),
            outbox,
            ctx: ws::server_context(limits.max_message_size),
            wire,
            format,
            echo,
            key: None,
            session,
            room: None,
            decode_errors: 0,
            last_not_in_room: None,
            req_tokens: f64::from(limits.requests_per_sec),
            req_refilled: now,
            input_window: now,
            inputs_in_window: 0,
            limited_window: now,
            limited_in_window: 0,
            closing: false,
            counted: false,
            finished: false,
            discarding: false,
            shut_write: false,
            close_deadline: None,
            last_rx: now,
            pinged: false,
            last_tx_progress: now,
            handoff: None,
        }
    }

    /// Rebuilds a connection that arrived from another shard.
    pub(crate) fn from_moving(shard: &Rc<Shard>, moving: Moving, already_read: Vec<u8>) -> Self {
        let mut conn = Self::new(shard, moving.format, false, Wire::with_rx(already_read), moving.session);
        conn.req_tokens = moving.req_tokens;
        conn
    }

    fn metrics(&self) -> &ShardMetrics {
        self.shard.metrics()
    }

    fn housekeeping_period(&self) -> Duration {
        let c = self.shard.config();
        [Duration::from_secs(1), c.limits.send_stall / 4, c.ping_interval / 4, c.ping_timeout / 4]
            .into_iter()
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(10))
    }

    /// Runs the connection to its end (or until it is handed to another
    /// shard).
    pub(crate) async fn run(&mut self, mut stream: TcpStream) {
        self.key = Some(self.shard.conns.borrow_mut().insert(self.outbox.clone()));
        if self.shard.refusing() {
            self.outbox.close(CloseReason::ShuttingDown);
        }
        self.drive(&mut stream).await;
        if let Some((target, id, body)) = self.handoff.take() {
            self.leave_room("moved");
            self.release();
            let moving = Moving {
                format: self.format,
                session: std::mem::take(&mut self.session),
                req_tokens: self.req_tokens,
                request: Some((id, body)),
            };
            // Boxed: rare, and its future would otherwise enlarge every
            // connection's task.
            Box::pin(relocate::send(&self.shard, target, stream, self.wire.rx_pending().to_vec(), moving)).await;
            return;
        }
        if !self.counted {
            self.metrics().close_label("peer_gone");
        }
        self.leave_room("disconnected");
        self.release();
        let _ = stream.close().await;
    }

    /// Answers a request carried over from another shard, then runs.
    pub(crate) async fn run_with(&mut self, stream: TcpStream, request: Option<(RequestId, Request)>) {
        if let Some((id, body)) = request {
            let reply = requests::answer_after_handoff(&self.shard, &self.outbox, &mut self.session, body);
            self.refresh_room();
            self.reply(id, reply, false);
        }
        self.run(stream).await;
    }

    fn release(&mut self) {
        if let Some(key) = self.key.take() {
            self.shard.conns.borrow_mut().try_remove(key);
        }
    }

    async fn drive(&mut self, stream: &mut TcpStream) {
        let period = self.housekeeping_period();
        let mut timer = Timer::new(period);
        loop {
            self.read_messages();
            if self.handoff.is_some() {
                // Everything before the join is answered: send it, then move.
                while let Some(item) = self.outbox.try_next() {
                    match item {
                        OutboxItem::Control(payload) => self.send_payload(payload),
                        OutboxItem::Tick(_) => {}
                        OutboxItem::Close(reason) => {
                            self.handoff = None;
                            self.close(reason);
                            break;
                        }
                    }
                }
                if self.handoff.is_some() {
                    if !Box::pin(self.flush_all(stream)).await {
                        self.handoff = None;
                    }
                    return;
                }
            }
            self.pump_outbox();
            let _ = self.ctx.flush(&mut self.wire);
            if self.finished && self.wire.tx_pending().is_empty() {
                return;
            }
            if self.discarding {
                self.wire.discard_rx();
                if self.wire.tx_pending().is_empty() && !self.shut_write {
                    self.shut_write = true;
                    let _ = stream.shutdown(std::net::Shutdown::Write).await;
                }
            }
            self.wire.settle();
            let want_read = !self.finished && (self.discarding || self.wire.rx_pending().len() < RX_HIGH_WATER);
            let want_write = !self.wire.tx_pending().is_empty();
            let want_item = !self.closing && !self.finished && self.wire.tx_pending().len() < TX_LOW_WATER;
            let outbox = self.outbox.clone();
            let shard = &self.shard;
            let wire = &mut self.wire;
            let wake = poll_fn(|cx| {
                if want_write {
                    if let Poll::Ready(r) = Pin::new(&mut *stream).poll_write(cx, wire.tx_pending()) {
                        return Poll::Ready(Wake::Wrote(r));
                    }
                }
                if want_read {
                    // Read into the shard's scratch buffer (glommio reads
                    // synchronously once the socket is ready) and keep only
                    // what arrived: an idle connection holds no read buffer.
                    let mut scratch = shard.scratch.borrow_mut();
                    if let Poll::Ready(r) = Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
                        if let Ok(n) = r {
                            wire.push_rx(&scratch[..n]);
                        }
                        return Poll::Ready(Wake::Read(r));
                    }
                }
                if want_item {
                    let next = pin!(outbox.next());
                    if let Poll::Ready(item) = next.poll(cx) {
                        return Poll::Ready(Wake::Item(item));
                    }
                }
                if Pin::new(&mut timer).poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Read(Err(_)) | Wake::Wrote(Err(_)) => return,
                Wake::Read(Ok(0)) => {
                    // The peer sent everything it will: finish writing what
                    // is pending (a close frame, say) within the linger.
                    if self.wire.tx_pending().is_empty() {
                        return;
                    }
                    self.finished = true;
                    let linger = Instant::now() + CLOSE_LINGER;
                    self.close_deadline = Some(self.close_deadline.map_or(linger, |d| d.min(linger)));
                }
                Wake::Read(Ok(n)) => {
                    ShardMetrics::add(&self.metrics().bytes_in, n as u64);
                    self.last_rx = Instant::now();
                    self.pinged = false;
                }
                Wake::Wrote(Ok(n)) => {
                    ShardMetrics::add(&self.metrics().bytes_out, n as u64);
                    self.wire.consume_tx(n);
                    self.last_tx_progress = Instant::now();
                }
                Wake::Item(item) => self.send_item(item),
                Wake::Timer => {
                    timer = Timer::new(period);
                    if self.housekeeping() {
                        return;
                    }
                }
            }
        }
    }

    /// Writes everything pending to the socket (before a hand-off), within
    /// the close linger; false when the socket failed or stalled.
    async fn flush_all(&mut self, stream: &mut TcpStream) -> bool {
        let _ = self.ctx.flush(&mut self.wire);
        let deadline = Instant::now() + self.shard.config().limits.send_stall;
        while !self.wire.tx_pending().is_empty() {
            let write = stream.write(self.wire.tx_pending());
            let timed = async {
                glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
                Err(io::ErrorKind::TimedOut.into())
            };
            match futures_lite::future::or(write, timed).await {
                Ok(n) if n > 0 => {
                    ShardMetrics::add(&self.metrics().bytes_out, n as u64);
                    self.wire.consume_tx(n);
                }
                _ => return false,
            }
        }
        true
    }

    /// Timers: close linger, send stall, keepalive. True: drop the socket.
    fn housekeeping(&mut self) -> bool {
        self.wire.shrink();
        let now = Instant::now();
        if self.close_deadline.is_some_and(|d| now >= d) {
            return true;
        }
        let config = self.shard.config();
        if !self.closing {
            let stalled = now.duration_since(self.last_tx_progress);
            if !self.wire.tx_pending().is_empty() && stalled >= config.limits.send_stall {
                let secs = stalled.as_secs_f64();
                self.close(CloseReason::TooSlow { detail: format!("socket took no bytes for {secs:.1} s").into() });
                return false;
            }
            let silent = now.duration_since(self.last_rx);
            if silent >= config.ping_interval + config.ping_timeout && self.pinged {
                self.close(CloseReason::KeepaliveTimeout { secs: config.ping_timeout.as_secs() });
            } else if silent >= config.ping_interval && !self.pinged {
                self.pinged = true;
                let _ = self.ctx.write(&mut self.wire, Message::Ping(Vec::new().into()));
            }
        }
        if self.wire.tx_pending().is_empty() {
            self.last_tx_progress = now;
        }
        false
    }

    /// Reads every complete message tungstenite can make of the bytes in.
    fn read_messages(&mut self) {
        while !self.finished && !self.discarding && self.handoff.is_none() {
            match self.ctx.read(&mut self.wire) {
                Ok(Message::Text(text)) => self.on_data(text.as_bytes(), false),
                Ok(Message::Binary(bytes)) => self.on_data(&bytes, true),
                Ok(Message::Close(_)) => {
                    if !self.counted {
                        self.counted = true;
                        self.metrics().close(&CloseReason::Normal);
                    }
                    self.closing = true;
                    self.close_deadline.get_or_insert(Instant::now() + CLOSE_LINGER);
                }
                Ok(_) => {} // ping (tungstenite answers), pong, raw frame
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.finished = true;
                }
                Err(tungstenite::Error::Capacity(_)) => {
                    let max = self.shard.config().limits.max_message_size;
                    self.fail(CloseReason::TooLarge { max });
                }
                Err(tungstenite::Error::Utf8(_)) => self.fail(CloseReason::InvalidUtf8),
                Err(tungstenite::Error::Protocol(p)) => self.fail(CloseReason::ProtocolError(p.to_string().into())),
                Err(e) => {
                    debug!(error = %e, "websocket read failed");
                    self.finished = true;
                }
            }
        }
    }

    /// Closes after a fault in the byte stream: nothing more is parsed;
    /// input is discarded until the peer closes (or the close linger ends).
    fn fail(&mut self, reason: CloseReason) {
        self.close(reason);
        self.discarding = true;
    }

    /// Sends a close frame with `reason` (once) and leaves the room.
    fn close(&mut self, reason: CloseReason) {
        if self.closing {
            return;
        }
        self.closing = true;
        if !self.counted {
            self.counted = true;
            self.metrics().close(&reason);
        }
        debug!(reason = %reason, code = reason.code(), "closing connection");
        self.leave_room(reason.label());
        let frame = CloseFrame { code: CloseCode::from(reason.code()), reason: Utf8Bytes::from(reason.reason_text()) };
        if self.ctx.close(&mut self.wire, Some(frame)).is_err() {
            self.finished = true;
        }
        self.close_deadline = Some(Instant::now() + CLOSE_LINGER);
    }

    /// Takes outbox items while the socket keeps up.
    fn pump_outbox(&mut self) {
        while !self.closing && !self.finished && self.wire.tx_pending().len() < TX_LOW_WATER {
            match self.outbox.try_next() {
                Some(item) => self.send_item(item),
                None => break,
            }
        }
    }

    fn send_item(&mut self, item: OutboxItem) {
        match item {
            OutboxItem::Control(payload) | OutboxItem::Tick(payload) => self.send_payload(payload),
            OutboxItem::Close(reason) => self.close(reason),
        }
    }

    fn send_payload(&mut self, payload: Vec<u8>) {
        if self.closing {
            return;
        }
        let msg = if self.format.is_binary() {
            Message::Binary(payload.into())
        } else {
            // Every JSON payload comes from `codec::encode_*` (serde_json, and
            // state text written by `delta::json`), which emit UTF-8 only:
            // validating each frame again per client per tick is wasted work.
            debug_assert!(std::str::from_utf8(&payload).is_ok(), "our JSON encoders emit UTF-8");
            // SAFETY: see above; the payload is UTF-8 by construction.
            Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(tungstenite::Bytes::from(payload)) })
        };
        if self.ctx.write(&mut self.wire, msg).is_ok() {
            ShardMetrics::inc(&self.metrics().messages_out);
        }
    }

    /// Queues a server message (answers and indications go through the
    /// outbox, bounded: a full queue closes the connection as too slow).
    fn push(&self, msg: &ServerMsg) {
        let _ = self.outbox.push_msg(msg);
    }

    fn reply(&mut self, id: RequestId, reply: Reply, is_hello: bool) {
        match reply {
            Reply::Cfm(body) => self.push(&ServerMsg::Cfm { id, body }),
            Reply::Rej(code, reason) => {
                self.metrics().reject(code);
                self.push(&ServerMsg::Rej { id, code, reason });
                if is_hello && code == RejectCode::Unauthorized {
                    self.outbox.close(CloseReason::RefusedToken);
                }
            }
            // Hand-offs are taken before replying; one here is a bug, not
            // a reason to take the shard down.
            Reply::HandOff { .. } => {
                self.metrics().reject(RejectCode::Internal);
                self.push(&ServerMsg::Rej { id, code: RejectCode::Internal, reason: "misrouted request".into() });
            }
        }
    }

    fn indicate_error(&self, code: RejectCode, reason: String) {
        self.metrics().reject(code);
        self.push(&ServerMsg::Ind { body: Indication::Error { code, reason } });
    }

    /// One data message.
    fn on_data(&mut self, bytes: &[u8], binary: bool) {
        ShardMetrics::inc(&self.metrics().messages_in);
        if self.closing {
            return;
        }
        if self.echo {
            let msg = if binary {
                Message::Binary(bytes.to_vec().into())
            } else {
                Message::Text(Utf8Bytes::try_from(bytes.to_vec()).unwrap_or_default())
            };
            let _ = self.ctx.write(&mut self.wire, msg);
            return;
        }
        if binary != self.format.is_binary() {
            let got = if binary { "binary" } else { "text" };
            return self.close(CloseReason::WrongFrameType { format: self.format, got });
        }
        let max = self.shard.config().limits.max_message_size;
        match codec::decode_client(self.format, bytes, max) {
            Ok(msg) => {
                self.decode_errors = 0;
                self.on_message(msg);
            }
            Err(e) => {
                self.decode_errors += 1;
                if e.close_code() == 1009 {
                    return self.close(CloseReason::TooLarge { max });
                }
                if self.decode_errors >= self.shard.config().limits.max_decode_errors {
                    let (count, last) = (self.decode_errors, e.to_string().into());
                    return self.close(CloseReason::Undecodable { count, last });
                }
                match e.reject() {
                    Some((id, code)) => self.reply(id, Reply::Rej(code, e.to_string()), false),
                    None => self.indicate_error(RejectCode::BadRequest, e.to_string()),
                }
            }
        }
    }

    fn on_message(&mut self, msg: ClientMsg) {
        match msg {
            ClientMsg::Req { id, body } => self.on_request(id, body),
            ClientMsg::Input { seq, ack, data } => {
                if !self.input_allowed() {
                    return;
                }
                // An input refused by the room's input schema is dropped like
                // one in no room: one `error` indication a second at most.
                let dropped = match self.current_room() {
                    Some((slot, player)) => slot
                        .room
                        .borrow_mut()
                        .input_raw(player, seq, ack, &data)
                        .err()
                        .map(|e| (e.reject_code(), format!("input dropped: {e}"))),
                    None => Some((RejectCode::NotInRoom, "input while in no room: dropped".into())),
                };
                if let Some((code, reason)) = dropped {
                    ShardMetrics::inc(&self.metrics().inputs_dropped);
                    let now = Instant::now();
                    if self.last_not_in_room.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
                        self.last_not_in_room = Some(now);
                        self.indicate_error(code, reason);
                    }
                }
            }
            ClientMsg::Ack { tick } => {
                // Acks count against the same rate as inputs.
                if !self.input_allowed() {
                    return;
                }
                if let Some((slot, player)) = self.current_room() {
                    slot.room.borrow_mut().ack(player, tick);
                }
            }
        }
    }

    /// The inputs-per-second limit: false drops this input; far over it,
    /// the connection is closed as flooding.
    fn input_allowed(&mut self) -> bool {
        let limit = self.shard.config().limits.inputs_per_sec;
        let now = Instant::now();
        if now.duration_since(self.input_window) >= Duration::from_secs(1) {
            self.input_window = now;
            self.inputs_in_window = 0;
        }
        self.inputs_in_window = self.inputs_in_window.saturating_add(1);
        if self.inputs_in_window <= limit {
            return true;
        }
        ShardMetrics::inc(&self.metrics().inputs_dropped);
        if self.inputs_in_window > limit.saturating_mul(FLOOD_FACTOR) {
            self.close(CloseReason::Flooding { limit });
        }
        false
    }

    fn requests_allowed(&mut self) -> bool {
        let rate = f64::from(self.shard.config().limits.requests_per_sec);
        let now = Instant::now();
        let refill = now.duration_since(self.req_refilled).as_secs_f64() * rate;
        self.req_refilled = now;
        self.req_tokens = (self.req_tokens + refill).min(rate);
        if self.req_tokens >= 1.0 {
            self.req_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn on_request(&mut self, id: RequestId, body: Request) {
        if !self.requests_allowed() {
            let limit = self.shard.config().limits.requests_per_sec;
            // Answering every request of a flood is work without a bound:
            // far over the rate, the connection is closed, as for inputs.
            let now = Instant::now();
            if now.duration_since(self.limited_window) >= Duration::from_secs(1) {
                self.limited_window = now;
                self.limited_in_window = 0;
            }
            self.limited_in_window = self.limited_in_window.saturating_add(1);
            if self.limited_in_window > limit.saturating_mul(FLOOD_FACTOR) {
                return self.close(CloseReason::Flooding { limit });
            }
            return self.reply(
                id,
                Reply::Rej(RejectCode::RateLimited, format!("over {limit} requests per second")),
                false,
            );
        }
        let is_hello = matches!(body, Request::Hello { .. });
        let kept = match &body {
            Request::JoinRoom { .. } | Request::JoinOrCreate { .. } => Some(body.clone()),
            _ => None,
        };
        let reply = requests::handle(&self.shard, &self.outbox, &mut self.session, body);
        match reply {
            Reply::HandOff { shard } => match kept {
                Some(body) => self.handoff = Some((shard, id, body)),
                None => self.reply(id, Reply::Rej(RejectCode::Internal, "misrouted request".into()), false),
            },
            Reply::Cfm(_) | Reply::Rej(..) => {
                self.refresh_room();
                self.reply(id, reply, is_hello);
            }
        }
    }

    /// Re-reads which room this connection is in from its outbox's
    /// membership (after every request, which may join or leave).
    fn refresh_room(&mut self) {
        self.room = self.outbox.membership().and_then(|m| {
            let slot = self.shard.rooms.borrow().get(&m.room_id).cloned()?;
            Some((slot, m.player_id))
        });
    }

    /// The room and player id, when this connection is in a room. Cached
    /// (no lookup per input): a room that closed is noticed here; a player
    /// the room removed is ignored by the room itself (ids are never reused
    /// in a room) and its connection is being closed anyway.
    fn current_room(&mut self) -> Option<(Rc<RoomSlot>, PlayerId)> {
        match &self.room {
            Some((slot, player)) if slot.room.borrow().closed().is_none() => Some((slot.clone(), *player)),
            Some(_) => {
                self.room = None;
                None
            }
            None => None,
        }
    }

    /// Leaves the room this connection is in, if any.
    fn leave_room(&mut self, reason: &str) {
        self.refresh_room();
        if let Some((slot, player)) = self.room.take() {
            slot.room.borrow_mut().leave(player, reason);
            self.shard.publish(&slot);
        }
        self.outbox.set_membership(None);
    }
}

impl Drop for Conn {
    /// However the connection ends (a panic included), its seat and its
    /// slab entry are given back.
    fn drop(&mut self) {
        self.leave_room("disconnected");
        self.release();
    }
}
