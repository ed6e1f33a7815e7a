//! One simulated player: a socket driving a `ClientSession`. It connects at
//! its ramp-up slot, joins its group's room (the group's first client
//! creates it), sends one input per period, rebuilds the state from every
//! tick and records what it sees; at the end of the measured window it
//! closes with 1000.

use crate::net::{self, Target};
use crate::scenario;
use crate::stats::{CoreStats, Errors, Live};
use crate::LoadConfig;
use async_tungstenite::WebSocketStream;
use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::Stream;
use glommio::timer::{sleep, Timer};
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tickforge_protocol::ids::{RoomId, Tick};
use tickforge_protocol::message::{Confirm, Indication, Request};
use tickforge_protocol::session::{Event, SessionError};
use tickforge_protocol::{ClientSession, Format};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// How long after the measured window a client may take to close.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Most inputs a client remembers while waiting for the tick that
/// includes them (8 s at 30 Hz); older ones are dropped unmeasured.
const MAX_PENDING_INPUTS: usize = 256;

/// The run's schedule and target, shared by all cores.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) cfg: LoadConfig,
    pub(crate) target: Target,
    /// When client 0 connects.
    pub(crate) t0: Instant,
    pub(crate) measure_start: Instant,
    pub(crate) measure_end: Instant,
}

impl Plan {
    pub(crate) fn new(cfg: LoadConfig, target: Target, t0: Instant) -> Self {
        let measure_start = t0 + cfg.ramp() + cfg.warmup;
        let measure_end = measure_start + cfg.duration;
        Self { cfg, target, t0, measure_start, measure_end }
    }

    fn start_of(&self, index: usize) -> Instant {
        self.t0 + Duration::from_secs_f64(index as f64 / self.cfg.connect_rate)
    }

    fn source(&self, index: usize) -> Option<IpAddr> {
        let ips = &self.cfg.source_ips;
        (!ips.is_empty()).then(|| ips[index % ips.len()])
    }

    fn measuring(&self, at: Instant) -> bool {
        at >= self.measure_start && at < self.measure_end
    }
}

/// A group's room, as its first client finds out.
#[derive(Clone, Debug)]
enum RoomSlot {
    Pending,
    Ready(RoomId),
    Failed,
}

/// One core's shared state: single-threaded, so `RefCell`s, no locks.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) index: usize,
    pub(crate) plan: Arc<Plan>,
    pub(crate) live: Arc<Live>,
    pub(crate) stats: RefCell<CoreStats>,
    /// Tick latency over the last second, for the progress bar.
    pub(crate) recent: RefCell<Histogram<u64>>,
    rooms: RefCell<HashMap<usize, RoomSlot>>,
    pub(crate) done: Cell<bool>,
}

impl Core {
    pub(crate) fn new(index: usize, plan: Arc<Plan>, live: Arc<Live>) -> Self {
        Self {
            index,
            plan,
            live,
            stats: RefCell::new(CoreStats::new()),
            recent: RefCell::new(crate::stats::histogram()),
            rooms: RefCell::new(HashMap::new()),
            done: Cell::new(false),
        }
    }

    fn error(&self, f: impl FnOnce(&mut Errors)) {
        f(&mut self.stats.borrow_mut().errors);
        self.live.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn set_room(&self, group: usize, slot: RoomSlot) {
        self.rooms.borrow_mut().insert(group, slot);
    }

    fn room(&self, group: usize) -> RoomSlot {
        self.rooms.borrow().get(&group).cloned().unwrap_or(RoomSlot::Pending)
    }
}

/// A stream that counts the bytes read through it: WebSocket bytes with
/// frame headers, for bytes per client-tick.
#[derive(Debug)]
pub(crate) struct Counted<S> {
    inner: S,
    read: u64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.read += n as u64;
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

type Ws = WebSocketStream<Counted<glommio::net::TcpStream>>;

/// Runs client `index` to its end; never longer than the measured window's
/// end plus [`CLOSE_GRACE`].
pub(crate) async fn run(core: &Core, index: usize) {
    let deadline = core.plan.measure_end + CLOSE_GRACE;
    future::or(client(core, index), async {
        sleep(deadline.saturating_duration_since(Instant::now())).await;
    })
    .await;
}

async fn sleep_until(at: Instant) {
    let wait = at.saturating_duration_since(Instant::now());
    if !wait.is_zero() {
        sleep(wait).await;
    }
}

/// `fut`, or `None` after `dur`.
async fn within<T>(dur: Duration, fut: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        sleep(dur).await;
        None
    })
    .await
}

fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

async fn send(ws: &mut Ws, format: Format, bytes: Vec<u8>) -> Result<(), tungstenite::Error> {
    let msg = match format {
        Format::Bin => Message::binary(bytes),
        Format::Json => Message::text(String::from_utf8(bytes).map_err(|_| tungstenite::Error::Utf8("input".into()))?),
    };
    ws.send(msg).await
}

async fn client(core: &Core, index: usize) {
    let plan = &*core.plan;
    let cfg = &plan.cfg;
    sleep_until(plan.start_of(index)).await;
    let group = index / cfg.players_per_room;
    let leader = index % cfg.players_per_room == 0;
    let fail_room = || {
        if leader {
            core.set_room(group, RoomSlot::Failed);
        }
    };

    let started = Instant::now();
    let Ok(tcp) = net::connect(plan.target.addr, plan.source(index), cfg.connect_timeout).await else {
        core.error(|e| e.connect += 1);
        fail_room();
        return;
    };
    let Ok(req) = plan.target.request(cfg.format) else {
        core.error(|e| e.handshake_failed += 1);
        fail_room();
        return;
    };
    let counted = Counted { inner: tcp, read: 0 };
    let handshake = async_tungstenite::client_async_with_config(req, counted, Some(net::ws_config()));
    let mut ws = match within(cfg.handshake_timeout, handshake).await {
        Some(Ok((ws, _))) => ws,
        Some(Err(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            core.error(|e| *e.handshake_refused.entry(status).or_default() += 1);
            fail_room();
            return;
        }
        Some(Err(_)) | None => {
            core.error(|e| e.handshake_failed += 1);
            fail_room();
            return;
        }
    };
    {
        let mut stats = core.stats.borrow_mut();
        stats.connected += 1;
        let _ = stats.handshake_latency.record(micros(started.elapsed()).max(1));
    }

    let mut c = Client::new(core, index);
    let body = if leader {
        Request::CreateRoom {
            game: cfg.game.clone(),
            max_players: Some(cfg.players_per_room as u32),
            tick_hz: cfg.tick_hz,
            private: false,
            options: None,
        }
    } else {
        let waited = Instant::now();
        loop {
            match core.room(group) {
                RoomSlot::Ready(room_id) => break Request::JoinRoom { room_id, reservation: None },
                RoomSlot::Failed => {
                    core.error(|e| *e.join_failed.entry("no_room".into()).or_default() += 1);
                    return close(&mut ws).await;
                }
                RoomSlot::Pending if waited.elapsed() >= cfg.join_timeout => {
                    core.error(|e| *e.join_failed.entry("timeout".into()).or_default() += 1);
                    return close(&mut ws).await;
                }
                RoomSlot::Pending => sleep(Duration::from_millis(5)).await,
            }
        }
    };
    let mut out = Vec::new();
    c.session.request(body, &mut out);
    if send(&mut ws, cfg.format, out).await.is_err() {
        core.error(|e| *e.unexpected_close.entry("io".into()).or_default() += 1);
        fail_room();
        return;
    }
    match within(cfg.join_timeout, c.wait_joined(&mut ws)).await {
        Some(Ok(room_id)) => {
            if leader {
                core.set_room(group, RoomSlot::Ready(room_id));
            }
        }
        Some(Err(End::Rejected(code))) => {
            core.error(|e| *e.join_failed.entry(code).or_default() += 1);
            fail_room();
            return close(&mut ws).await;
        }
        Some(Err(End::Closed(kind))) => {
            core.error(|e| *e.unexpected_close.entry(kind).or_default() += 1);
            fail_room();
            return;
        }
        Some(Err(End::Stopped)) | None => {
            core.error(|e| *e.join_failed.entry("timeout".into()).or_default() += 1);
            fail_room();
            return close(&mut ws).await;
        }
    }
    core.stats.borrow_mut().joined += 1;
    core.live.clients.fetch_add(1, Ordering::Relaxed);
    let end = c.play(&mut ws).await;
    core.live.clients.fetch_sub(1, Ordering::Relaxed);
    match end {
        End::Stopped => {
            core.stats.borrow_mut().completed += 1;
            close(&mut ws).await;
        }
        End::Closed(kind) => core.error(|e| *e.unexpected_close.entry(kind).or_default() += 1),
        End::Rejected(_) => {}
    }
}

/// Sends a 1000 close and waits a little for the server's answer.
async fn close(ws: &mut Ws) {
    let frame = CloseFrame { code: CloseCode::Normal, reason: "load run over".into() };
    let _ = within(Duration::from_secs(1), async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = std::future::poll_fn(|cx| Pin::new(&mut *ws).poll_next(cx)).await {}
        }
    })
    .await;
}

/// Why a client's loop ended.
#[derive(Debug)]
enum End {
    /// The measured window ended.
    Stopped,
    /// The server closed or the socket failed, by close code or kind.
    Closed(String),
    /// The join was rejected, by code.
    Rejected(String),
}

/// One received message's facts.
struct Received {
    at: Instant,
    wall_us: u64,
    len: usize,
}

enum Wake {
    Input,
    Stop,
    Msg(Option<Result<Message, tungstenite::Error>>),
}

/// One client's own state.
struct Client<'a> {
    core: &'a Core,
    index: usize,
    session: ClientSession,
    last_tick: Option<Tick>,
    ticks_seen: u64,
    /// Inputs sent and not yet seen in a tick: (seq, when sent).
    pending: VecDeque<(u32, Instant)>,
    bytes_seen: u64,
}

impl<'a> Client<'a> {
    fn new(core: &'a Core, index: usize) -> Self {
        Self {
            core,
            index,
            session: ClientSession::new(core.plan.cfg.format),
            last_tick: None,
            ticks_seen: 0,
            pending: VecDeque::new(),
            bytes_seen: 0,
        }
    }

    /// Reads until the join is answered; the room id, or why not.
    async fn wait_joined(&mut self, ws: &mut Ws) -> Result<RoomId, End> {
        loop {
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Confirmed { body: Confirm::Joined(j), .. } => return Ok(j.room_id),
                    Event::Rejected { code, .. } => return Err(End::Rejected(code.as_str().into())),
                    _ => {}
                }
            }
            let msg = std::future::poll_fn(|cx| Pin::new(&mut *ws).poll_next(cx)).await;
            self.on_message(ws, msg)?;
        }
    }

    /// The input loop: until the measured window ends or the connection does.
    async fn play(&mut self, ws: &mut Ws) -> End {
        let plan = &*self.core.plan;
        let cfg = &plan.cfg;
        let period = cfg.input_period();
        let first = Instant::now();
        let mut n: u32 = 0;
        // One timer per client, for the next input or the end of the
        // measured window, whichever is first. It is polled (which
        // registers it with the reactor, a B-tree insert) once per reset,
        // not on every wake-up: the task's waker stays registered.
        let mut next_input = first;
        let mut input_timer = Timer::new(Duration::ZERO);
        let mut armed = false;
        let mut out = Vec::new();
        self.drain_events(Instant::now(), wall_us(), 0);
        loop {
            let wake = std::future::poll_fn(|cx| {
                let now = Instant::now();
                if now >= plan.measure_end {
                    return Poll::Ready(Wake::Stop);
                }
                if now >= next_input {
                    return Poll::Ready(Wake::Input);
                }
                if !armed {
                    armed = true;
                    if Pin::new(&mut input_timer).poll(cx).is_ready() {
                        return Poll::Ready(Wake::Input);
                    }
                }
                Pin::new(&mut *ws).poll_next(cx).map(Wake::Msg)
            })
            .await;
            match wake {
                Wake::Stop => return End::Stopped,
                Wake::Msg(msg) => match self.on_message(ws, msg) {
                    Ok(Some(got)) => {
                        if let Some(end) = self.drain_events(got.at, got.wall_us, got.len) {
                            return end;
                        }
                    }
                    Ok(None) => {}
                    Err(end) => return end,
                },
                Wake::Input => {
                    let now = Instant::now();
                    if plan.measuring(now) {
                        let lag = micros(now.saturating_duration_since(next_input)).max(1);
                        let _ = self.core.stats.borrow_mut().loadgen_lag.record(lag);
                    }
                    let seq = self.session.input_seq().next().0;
                    let data = scenario::input(self.index, seq, cfg.input_hz);
                    let seq = self.session.input(data, &mut out).0;
                    if self.pending.len() >= MAX_PENDING_INPUTS {
                        self.pending.pop_front();
                    }
                    self.pending.push_back((seq, now));
                    if plan.measuring(now) {
                        self.core.stats.borrow_mut().inputs_sent += 1;
                    }
                    if send(ws, cfg.format, std::mem::take(&mut out)).await.is_err() {
                        return End::Closed("io".into());
                    }
                    // Drift-free slots `first + n * period`; when more than
                    // a period behind, skip the missed slots.
                    n = n.saturating_add(1);
                    let mut next = first + period * n;
                    let now = Instant::now();
                    if next + period < now {
                        let behind = (now - first).as_secs_f64() / period.as_secs_f64();
                        let skip_to = (behind.floor() as u32).saturating_add(1);
                        if plan.measuring(now) {
                            self.core.stats.borrow_mut().inputs_late += u64::from(skip_to.saturating_sub(n));
                        }
                        n = skip_to;
                        next = first + period * n;
                    }
                    next_input = next;
                    input_timer.reset(next.min(plan.measure_end).saturating_duration_since(now));
                    armed = false;
                }
            }
        }
    }

    /// Hands one read to the session (events stay queued): when it was a
    /// message, when it came and how long it was; `Err` when the connection
    /// is over.
    fn on_message(
        &mut self,
        ws: &Ws,
        msg: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Option<Received>, End> {
        let now = Instant::now();
        let now_wall = wall_us();
        let measuring = self.core.plan.measuring(now);
        let read = ws.get_ref().read;
        let new_bytes = read - self.bytes_seen;
        self.bytes_seen = read;
        if measuring {
            self.core.stats.borrow_mut().ws_bytes += new_bytes;
        }
        let payload = match msg {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Text(t))) => t.into(),
            Some(Ok(Message::Close(frame))) => {
                return Err(End::Closed(frame.map_or_else(|| "none".into(), |f| u16::from(f.code).to_string())));
            }
            Some(Ok(_)) => return Ok(None),
            Some(Err(tungstenite::Error::Io(_))) => return Err(End::Closed("io".into())),
            Some(Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )))
            | None => return Err(End::Closed("eof".into())),
            Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                return Err(End::Closed("closed".into()))
            }
            Some(Err(_)) => return Err(End::Closed("protocol".into())),
        };
        match self.session.handle_message(&payload) {
            Ok(()) => {}
            Err(SessionError::Delta { .. }) => self.core.error(|e| e.delta += 1),
            Err(_) => self.core.error(|e| e.protocol += 1),
        }
        Ok(Some(Received { at: now, wall_us: now_wall, len: payload.len() }))
    }

    /// Records what the session saw; `Some` when the room went away.
    fn drain_events(&mut self, now: Instant, now_wall: u64, payload_len: usize) -> Option<End> {
        let plan = &*self.core.plan;
        let measuring = plan.measuring(now);
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Tick(h) => {
                    self.core.live.ticks.fetch_add(1, Ordering::Relaxed);
                    self.ticks_seen += 1;
                    let latency = now_wall.saturating_sub(h.server_time_us).max(1);
                    let _ = self.core.recent.borrow_mut().record(latency);
                    let missed = self.last_tick.map_or(0, |last| h.tick.0.saturating_sub(last.0 + 1));
                    self.last_tick = Some(h.tick);
                    let mut stats = self.core.stats.borrow_mut();
                    if measuring {
                        stats.state_msgs += 1;
                        stats.state_payload_bytes += payload_len as u64;
                        stats.missed_ticks += missed;
                        let _ = stats.tick_latency.record(latency);
                    }
                    let period_us = micros(plan.cfg.input_period());
                    while let Some(&(seq, sent)) = self.pending.front() {
                        if seq > h.input_seq.0 {
                            break;
                        }
                        self.pending.pop_front();
                        if measuring {
                            let _ = stats.input_latency.record_correct(micros(now - sent).max(1), period_us);
                        }
                    }
                    if measuring && self.ticks_seen % u64::from(plan.cfg.full_state_every) == 0 {
                        if let Some(len) = self.session.full_state_len() {
                            let _ = stats.full_state.record(len as u64);
                        }
                    }
                }
                Event::Indication(Indication::RoomClosing { .. }) => {
                    return Some(End::Closed("room_closing".into()));
                }
                Event::Indication(Indication::Error { .. }) | Event::Rejected { .. } => {
                    self.core.error(|e| e.protocol += 1);
                }
                _ => {}
            }
        }
        None
    }
}
