//! One simulated player's state, without I/O: the core's loop moves its
//! bytes (ring batches in the steady state, direct calls while it
//! connects) and hands them here with when they arrived; this module reads
//! the messages, times ticks and inputs, and writes input frames.
//!
//! Timing, precisely:
//! - A tick is timed from its `server_time_us` to when its last byte
//!   reached this host's network stack: the kernel's software receive
//!   timestamp (`SO_TIMESTAMPNS`, wall clock, taken as the segment entered
//!   the receive path, before TCP processing), read with the bytes by
//!   `recvmsg`. When one read returns two or more state messages, the
//!   kernel reports one timestamp, the newest segment's, so the earlier
//!   messages are timed as if they came with the last one (their latency
//!   is overstated by at most the gap between them); they are counted in
//!   `ticks_shared_stamp`, with a bound on how late: the time from the
//!   read before, which did not find them, to the stamp. It happens when
//!   ticks land right at a client's input slots, where it reads (so that
//!   its input acks the newest tick that arrived, as a real client's
//!   would): one just after a read, the next just before the following
//!   one. So a client whose ticks land within a margin of its slots (see
//!   `Client::after_ticks`) also reads half a tick period away from when
//!   they arrive, for a while after each such tick; two
//!   ticks then share a read only when the server sends them within half
//!   a period of each other, or the loadgen falls that far behind. When
//!   the room ticks faster than inputs go, those reads are always on.
//! - An input slot is timed from when it was due (its place in the
//!   client's fixed schedule, see [`crate::schedule`]) to the arrival, so
//!   stamped, of the first tick whose `input_seq` includes it.

use crate::scenario;
use crate::schedule::Slots;
use crate::stats::{CoreStats, Errors};
use crate::ws::{self, Msg, Reader, WsError};
use hdrhistogram::Histogram;
use std::os::fd::OwnedFd;
use tickforge_protocol::codec::{self, TickHeader};
use tickforge_protocol::ids::{RoomId, Tick};
use tickforge_protocol::input::InputSchema;
use tickforge_protocol::message::{ClientMsg, Confirm, Indication, InputData, ServerMsg};
use tickforge_protocol::session::{Event, SessionError};
use tickforge_protocol::{ClientSession, Format};

/// How long a client keeps reading between its input slots after its
/// ticks last landed near one.
pub(crate) const MID_HOLD_NS: u64 = 2_000_000_000;

/// Where a client is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Before its ramp-up slot.
    Idle,
    /// TCP connect under way.
    Connecting,
    /// Upgrade request written, waiting for the 101.
    Handshaking,
    /// Open, waiting for its group's first client to create the room.
    WaitRoom,
    /// `create_room` or `join_room` sent, waiting for `joined`.
    Joining,
    /// In its room: inputs and reads on their slots.
    Playing,
    /// The measured window is over: no more inputs, reads go on until its
    /// last inputs are answered (bounded).
    Draining,
    /// Close frame sent, waiting for the server's (bounded).
    Closing,
    /// Over; the socket is closed.
    Done,
}

impl Phase {
    /// Phases served by the prompt path (a poll per step) and the sweep.
    pub(crate) fn is_setup(self) -> bool {
        matches!(self, Self::Connecting | Self::Handshaking | Self::WaitRoom | Self::Joining | Self::Closing)
    }

    /// Phases whose reads go through the core's batches.
    pub(crate) fn is_reading(self) -> bool {
        matches!(self, Self::Playing | Self::Draining)
    }
}

/// How a client's connection ended, when not by its own close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The server closed or the socket failed, by close code or kind.
    Closed(String),
    /// The join was rejected, by code.
    Rejected(String),
}

/// When a read's bytes arrived.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rx {
    /// Wall clock, ns since the Unix epoch.
    pub(crate) wall_ns: u64,
    /// Whether that is the kernel's receive timestamp (else the time the
    /// loadgen read the bytes: no timestamp came with them).
    pub(crate) stamped: bool,
}

/// A core's books and settings, lent to a client while it handles bytes or
/// builds a frame.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) stats: CoreStats,
    /// Tick latency over the current second, for the progress bar.
    pub(crate) recent: Histogram<u64>,
    /// State messages received (whole run), for the progress bar.
    pub(crate) ticks_all: u64,
    /// The measured window, monotonic ns since the run's epoch.
    pub(crate) window: (u64, u64),
    /// Wall clock minus monotonic time, ns (read at each wake-up).
    pub(crate) wall_offset: i64,
    pub(crate) format: Format,
    pub(crate) input_hz: u32,
    pub(crate) full_state_every: u32,
    /// Errors counted since the core last published them.
    pub(crate) new_errors: u64,
    /// The core's generator of mask keys (xorshift64*).
    pub(crate) rng: u64,
    /// Scratch for encoding a message before it is framed.
    pub(crate) scratch: Vec<u8>,
    /// Scratch for the plaintext a TLS read gave.
    pub(crate) plain: Vec<u8>,
}

impl Ctx {
    fn measuring(&self, mono_ns: u64) -> bool {
        mono_ns >= self.window.0 && mono_ns < self.window.1
    }

    /// Counts one error of the kind `f` picks.
    pub(crate) fn error(&mut self, f: impl FnOnce(&mut Errors)) {
        f(&mut self.stats.errors);
        self.new_errors += 1;
    }

    /// A uniform draw in [0, 1) from the core's generator.
    pub(crate) fn uniform(&mut self) -> f64 {
        let b = self.mask();
        f64::from(u32::from_le_bytes(b)) / 4_294_967_296.0
    }

    /// A fresh mask key (xorshift64*).
    pub(crate) fn mask(&mut self) -> [u8; 4] {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32).to_le_bytes()
    }

    /// Appends `msg` as one masked frame of this run's form to `out`.
    pub(crate) fn frame(&mut self, msg: &ClientMsg, out: &mut Vec<u8>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        // Inputs are built in this run's form (`InputData::to_raw`), the
        // only way the encoder can fail.
        codec::encode_client(self.format, msg, &mut scratch).expect("inputs are built in the run's own form");
        self.frame_payload(&scratch, out);
        self.scratch = scratch;
    }

    /// Appends an encoded message as one masked frame of this run's form.
    pub(crate) fn frame_payload(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let op = if self.format.is_binary() { ws::OP_BINARY } else { ws::OP_TEXT };
        let mask = self.mask();
        ws::write_frame(op, payload, mask, out);
    }
}

/// One simulated player.
#[derive(Debug)]
pub(crate) struct Client {
    /// Its index in the run (0-based), which picks its group and phase.
    pub(crate) index: usize,
    pub(crate) phase: Phase,
    pub(crate) fd: Option<OwnedFd>,
    /// The socket is in the ring's registered files, at this client's slot.
    pub(crate) registered: bool,
    /// Bumped whenever an operation of an older life must be ignored.
    pub(crate) gen: u8,
    /// A poll is in flight (prompt path).
    pub(crate) polling: bool,
    /// When its TCP connect started (monotonic ns), for the handshake figure.
    pub(crate) started_ns: u64,
    /// When the current setup phase (or the drain, or the close) gives up.
    pub(crate) deadline_ns: u64,
    /// Bytes received during the handshake.
    pub(crate) head: Vec<u8>,
    pub(crate) handshake: Option<Box<crate::handshake::Handshake>>,
    reader: Reader,
    /// Bytes to send: an input frame, a pong, a close, or what a short
    /// send left over (plaintext: over TLS, [`Client::outgoing`] seals it).
    pub(crate) tx: Vec<u8>,
    /// `wss://`: the TLS session between the socket and `reader`/`tx`.
    pub(crate) tls: Option<Box<crate::tls::ClientTls>>,
    /// The last send came back short or would block: no new input until
    /// `tx` drains (its slots wait, and are timed from when they were due).
    pub(crate) tx_blocked: bool,
    /// Present while joining, and for the whole run on clients that decode.
    pub(crate) session: Option<Box<ClientSession>>,
    /// This client rebuilds the state from every tick.
    pub(crate) decoder: bool,
    /// The room's tick period, ns (from `joined`).
    pub(crate) tick_period_ns: u64,
    /// The newest tick whose header was read (and, on decoders, applied).
    last_tick: Option<Tick>,
    ticks_seen: u64,
    /// The input schedule.
    pub(crate) slots: Slots,
    /// The newest slot an input frame was written for.
    pub(crate) sent_seq: u32,
    /// The newest slot a tick has answered.
    answered_seq: u32,
    /// When the next read half a tick period from the ticks is due (monotonic ns).
    pub(crate) read_due_ns: u64,
    /// Monotonic ns at which its newest tick arrived.
    pub(crate) last_arrival_ns: u64,
    /// It reads between its input slots until then (monotonic ns).
    pub(crate) mid_until_ns: u64,
    /// Entries in the core's wheel.
    pub(crate) input_queued: bool,
    pub(crate) read_queued: bool,
    /// The core's batch counter when this client was last put in a batch.
    pub(crate) mark: u32,
    /// Set when `joined` arrived: the room.
    pub(crate) joined: Option<RoomId>,
    /// The room's input schema when it is not arena's stick: inputs are
    /// then drawn over it ([`scenario::schema_input`]).
    input_schema: Option<Box<InputSchema>>,
    /// Set when the connection ended on the server's side.
    pub(crate) end: Option<End>,
    /// The server's close frame arrived (while closing: done).
    pub(crate) close_seen: bool,
    /// The seat's newest resume token (from the newest `joined`).
    pub(crate) resume: Option<(RoomId, String)>,
    /// Between a drop and the `joined` of its resume.
    pub(crate) reconnecting: bool,
    /// It resumed at least once (its later delta errors are counted apart).
    pub(crate) resumed: bool,
    /// When its socket was dropped, until the first tick after the resume
    /// (monotonic ns).
    dropped_ns: Option<u64>,
    /// The node it plays on, when a `redirect` sent it away from `--url`.
    pub(crate) target: Option<std::sync::Arc<crate::net::Target>>,
    /// A `redirect` just received: (url, room, reservation), to follow.
    pub(crate) redirect: Option<Box<(String, RoomId, String)>>,
    /// The reservation its next join presents (after a redirect).
    pub(crate) reservation: Option<(RoomId, String)>,
    /// When its first room request was sent (monotonic ns; 0: not yet).
    pub(crate) join_sent_ns: u64,
    /// When it drops its socket next (monotonic ns; 0: never).
    pub(crate) next_drop_ns: u64,
    /// State messages in the current read.
    ticks_in_read: u32,
    /// When the current read and the one before it were made (monotonic ns).
    read_ns: u64,
    prev_read_ns: u64,
}

impl Client {
    /// A client that has not started.
    pub(crate) fn new(index: usize, decoder: bool) -> Self {
        Self {
            index,
            phase: Phase::Idle,
            fd: None,
            registered: false,
            gen: 0,
            polling: false,
            started_ns: 0,
            deadline_ns: 0,
            head: Vec::new(),
            handshake: None,
            reader: Reader::default(),
            tx: Vec::new(),
            tls: None,
            tx_blocked: false,
            session: None,
            decoder,
            tick_period_ns: 0,
            last_tick: None,
            ticks_seen: 0,
            slots: Slots::default(),
            sent_seq: 0,
            answered_seq: 0,
            read_due_ns: 0,
            last_arrival_ns: 0,
            mid_until_ns: 0,
            input_queued: false,
            read_queued: false,
            mark: 0,
            joined: None,
            input_schema: None,
            end: None,
            close_seen: false,
            resume: None,
            reconnecting: false,
            resumed: false,
            dropped_ns: None,
            target: None,
            redirect: None,
            reservation: None,
            join_sent_ns: 0,
            next_drop_ns: 0,
            ticks_in_read: 0,
            read_ns: 0,
            prev_read_ns: 0,
        }
    }

    /// Forgets the connection to follow a redirect: a new one (to another
    /// node) joins with the reservation.
    pub(crate) fn leave_for_redirect(&mut self) {
        self.forget_socket();
        self.session = None;
        self.joined = None;
    }

    /// Forgets everything tied to the socket (its bytes both ways, TLS,
    /// handshake, how it ended); the session and seat stay.
    fn forget_socket(&mut self) {
        self.reader = Reader::default();
        self.tx.clear();
        self.tls = None;
        self.head.clear();
        self.handshake = None;
        self.tx_blocked = false;
        self.end = None;
        self.close_seen = false;
    }

    /// Forgets the connection (dropped at `now_ns`, no close frame) but not
    /// the seat: what the next connection resumes. Inputs in flight are
    /// lost with the socket (not timed).
    pub(crate) fn drop_connection(&mut self, now_ns: u64) {
        self.forget_socket();
        self.last_tick = None;
        self.answered_seq = self.sent_seq;
        self.dropped_ns = Some(now_ns);
        self.reconnecting = true;
        self.joined = None;
    }

    /// After a resume at `now_ns`: the input slots that fell due while
    /// disconnected are skipped (returned: how many); the next input is
    /// the next slot's.
    pub(crate) fn skip_missed_slots(&mut self, now_ns: u64) -> u64 {
        let newest = self.slots.newest_due(now_ns);
        let skipped = u64::from(newest.saturating_sub(self.sent_seq));
        self.sent_seq = self.sent_seq.max(newest);
        self.answered_seq = self.sent_seq;
        skipped
    }

    /// What a send takes next: `tx`, or over TLS the ciphertext of `tx`
    /// (sealed now).
    pub(crate) fn outgoing(&mut self) -> &[u8] {
        match self.tls.as_mut() {
            Some(tls) => {
                tls.seal(&mut self.tx);
                &tls.out
            }
            None => &self.tx,
        }
    }

    /// A send took the first `n` bytes of [`Client::outgoing`]; returns
    /// whether bytes are left.
    pub(crate) fn sent(&mut self, n: usize) -> bool {
        let buf = match self.tls.as_mut() {
            Some(tls) => &mut tls.out,
            None => &mut self.tx,
        };
        buf.drain(..n.min(buf.len()));
        !buf.is_empty()
    }

    /// Socket bytes: through TLS first on `wss://` (a fault or the
    /// server's `close_notify` ends the connection), then as
    /// [`Client::on_bytes`].
    pub(crate) fn on_wire(&mut self, data: &[u8], rx: Rx, now_ns: u64, ctx: &mut Ctx) {
        let Some(tls) = self.tls.as_mut() else { return self.on_bytes(data, rx, now_ns, ctx) };
        let mut plain = std::mem::take(&mut ctx.plain);
        plain.clear();
        let fed = tls.feed(data, &mut plain);
        if !plain.is_empty() {
            self.on_bytes(&plain, rx, now_ns, ctx);
        }
        ctx.plain = plain;
        match fed {
            Ok(false) => {}
            Ok(true) => {
                if self.end.is_none() && self.phase != Phase::Closing {
                    self.end = Some(End::Closed("close_notify".into()));
                }
                self.close_seen = true;
            }
            Err(_) => {
                if self.end.is_none() && self.phase != Phase::Closing {
                    self.end = Some(End::Closed("tls".into()));
                }
            }
        }
    }

    /// Handles one read's bytes that arrived at `rx`, read at `now_ns`
    /// (monotonic). Outcomes land in [`Client::joined`], [`Client::end`],
    /// [`Client::close_seen`] and `tx` (pongs).
    pub(crate) fn on_bytes(&mut self, data: &[u8], rx: Rx, now_ns: u64, ctx: &mut Ctx) {
        let rx_mono = mono(rx.wall_ns, ctx.wall_offset).min(now_ns);
        if ctx.measuring(rx_mono) {
            ctx.stats.ws_bytes += data.len() as u64;
        }
        let mut reader = std::mem::take(&mut self.reader);
        let mut pongs: Vec<u8> = Vec::new();
        let fed = reader.feed(data, |msg| match msg {
            Msg::Data { payload, .. } => self.on_message(payload, rx, rx_mono, ctx),
            Msg::Ping(p) => {
                let mask = ctx.mask();
                ws::write_frame(ws::OP_PONG, p, mask, &mut pongs);
            }
            Msg::Pong => {}
            Msg::Close(code) => {
                self.close_seen = true;
                if self.phase != Phase::Closing && self.end.is_none() {
                    self.end = Some(End::Closed(code.map_or_else(|| "none".into(), |c| c.to_string())));
                }
            }
        });
        self.reader = reader;
        if !pongs.is_empty() && !self.close_seen {
            self.tx.extend_from_slice(&pongs);
        }
        if let Err(e) = fed {
            if self.end.is_none() && self.phase != Phase::Closing {
                let kind = match e {
                    WsError::TooLarge { .. } => "too_large",
                    _ => "protocol",
                };
                self.end = Some(End::Closed(kind.into()));
            }
        }
        if self.ticks_in_read > 0 {
            self.after_ticks(rx_mono, now_ns, ctx);
        }
    }

    /// The reads' bookkeeping once a read held state messages: shared
    /// timestamps, when its ticks arrive, and whether they land near its
    /// input slots: within the larger of 4 ms and an eighth of the input
    /// period (a tick that late or early, or a loadgen that late, would
    /// put it on the other side of a slot's read); then the reads between
    /// slots stay on for [`MID_HOLD_NS`].
    fn after_ticks(&mut self, rx_mono: u64, now_ns: u64, ctx: &mut Ctx) {
        let shared = self.ticks_in_read - 1;
        if shared > 0 && ctx.measuring(rx_mono) {
            ctx.stats.ticks_shared_stamp += u64::from(shared);
            // The earlier messages arrived after the previous read: their
            // latency is overstated by less than this.
            let bound = rx_mono.saturating_sub(self.prev_read_ns) / 1000;
            let _ = ctx.stats.shared_stamp_bound.record_n(bound.max(1), u64::from(shared));
        }
        self.last_arrival_ns = rx_mono;
        let p = self.slots.period_ns.max(1);
        let x = (i128::from(rx_mono) - i128::from(self.slots.first_ns)).rem_euclid(i128::from(p)) as u64;
        let near = x.min(p - x) < (p / 8).max(4_000_000);
        if shared > 0 || near {
            self.mid_until_ns = now_ns + MID_HOLD_NS;
        }
    }

    /// Starts a read at `now_ns` (that may find nothing).
    pub(crate) fn new_read(&mut self, now_ns: u64) {
        self.ticks_in_read = 0;
        self.prev_read_ns = self.read_ns;
        self.read_ns = now_ns;
    }

    /// Whether this client reads between its input slots now.
    pub(crate) fn wants_mid(&self, now_ns: u64) -> bool {
        self.phase == Phase::Draining || self.tick_period_ns < self.slots.period_ns || now_ns < self.mid_until_ns
    }

    /// When the next read between input slots is due after `now_ns`: half
    /// a tick period from when its ticks arrive.
    pub(crate) fn next_read(&self, now_ns: u64) -> u64 {
        let p = self.tick_period_ns.max(1);
        let base = self.last_arrival_ns + p / 2;
        if base > now_ns {
            return base;
        }
        base + ((now_ns - base) / p + 1) * p
    }

    fn on_message(&mut self, payload: &[u8], rx: Rx, rx_mono: u64, ctx: &mut Ctx) {
        if self.end.is_some() || self.phase == Phase::Closing {
            return;
        }
        if let Some(session) = self.session.as_mut() {
            match session.handle_message(payload) {
                Ok(()) => {}
                Err(SessionError::Delta { .. }) => {
                    ctx.error(|e| e.delta += 1);
                    if self.resumed {
                        ctx.stats.state_errors_after_resume += 1;
                    }
                    // The tick arrived all the same: it is timed and
                    // counted, though not applied (nor acked).
                    if let Ok(Some(h)) = codec::decode_tick_header(ctx.format, payload) {
                        self.on_tick(&h, payload.len(), rx, rx_mono, ctx);
                    }
                }
                Err(_) => ctx.error(|e| e.protocol += 1),
            }
            while let Some(event) = self.session.as_mut().and_then(|s| s.poll_event()) {
                match event {
                    Event::Tick(h) => self.on_tick(&h, payload.len(), rx, rx_mono, ctx),
                    Event::Confirmed { body: Confirm::Joined(j), .. } if self.phase == Phase::Joining => {
                        self.tick_period_ns = 1_000_000_000 / u64::from(j.tick_hz.max(1));
                        if !j.resume_token.is_empty() {
                            self.resume = Some((j.room_id.clone(), j.resume_token.clone()));
                        }
                        if j.input_schema != *InputData::schema() {
                            self.input_schema = Some(Box::new(j.input_schema));
                        }
                        self.joined = Some(j.room_id);
                    }
                    Event::Confirmed { body: Confirm::Redirect { url, room_id, reservation }, .. }
                        if self.phase == Phase::Joining && self.reservation.is_none() =>
                    {
                        self.redirect = Some(Box::new((url, room_id, reservation)));
                    }
                    Event::Rejected { code, .. } if self.phase == Phase::Joining => {
                        if self.reconnecting {
                            ctx.stats.resumes_refused += 1;
                        }
                        self.end = Some(End::Rejected(code.as_str().into()));
                    }
                    Event::Indication(Indication::RoomClosing { .. }) => {
                        self.end = Some(End::Closed("room_closing".into()));
                    }
                    Event::Indication(Indication::Error { .. }) | Event::Rejected { .. } => {
                        ctx.error(|e| e.protocol += 1);
                    }
                    _ => {}
                }
            }
            if self.joined.is_some() && !self.decoder {
                // Joined: from here on this client reads only tick headers.
                self.session = None;
            }
            return;
        }
        match codec::decode_tick_header(ctx.format, payload) {
            Ok(Some(h)) => {
                if self.last_tick.is_some_and(|last| h.tick <= last) {
                    ctx.error(|e| e.protocol += 1);
                } else {
                    self.on_tick(&h, payload.len(), rx, rx_mono, ctx);
                }
            }
            Ok(None) => match codec::decode_server(ctx.format, payload) {
                Ok(ServerMsg::Ind { body: Indication::RoomClosing { .. } }) => {
                    self.end = Some(End::Closed("room_closing".into()));
                }
                Ok(ServerMsg::Ind { body: Indication::Error { .. } } | ServerMsg::Rej { .. }) | Err(_) => {
                    ctx.error(|e| e.protocol += 1);
                }
                Ok(_) => {}
            },
            Err(_) => ctx.error(|e| e.protocol += 1),
        }
    }

    fn on_tick(&mut self, h: &TickHeader, payload_len: usize, rx: Rx, rx_mono: u64, ctx: &mut Ctx) {
        self.ticks_in_read += 1;
        self.ticks_seen += 1;
        let latency = (rx.wall_ns / 1000).saturating_sub(h.server_time_us).max(1);
        let _ = ctx.recent.record(latency);
        ctx.ticks_all += 1;
        let missed = self.last_tick.map_or(0, |last| h.tick.0.saturating_sub(last.0 + 1));
        self.last_tick = Some(h.tick);
        let measuring = ctx.measuring(rx_mono);
        let stats = &mut ctx.stats;
        if let Some(dropped) = self.dropped_ns.take() {
            // The first tick after a resume: the seat is back.
            let _ = stats.resume_latency.record((rx_mono.saturating_sub(dropped) / 1000).max(1));
        }
        if measuring {
            stats.state_msgs += 1;
            stats.state_payload_bytes += payload_len as u64;
            stats.missed_ticks += missed;
            let _ = stats.tick_latency.record(latency);
            if !rx.stamped {
                stats.ticks_unstamped += 1;
            }
        }
        let upto = h.input_seq.0.min(self.sent_seq);
        for seq in self.answered_seq.saturating_add(1)..=upto {
            let due = self.slots.due(seq);
            if due >= ctx.window.0 && due < ctx.window.1 {
                let _ = stats.input_latency.record((rx_mono.saturating_sub(due) / 1000).max(1));
            }
        }
        self.answered_seq = self.answered_seq.max(upto);
        if measuring && self.ticks_seen % u64::from(ctx.full_state_every) == 0 {
            if let Some(len) = self.session.as_mut().and_then(|s| s.full_state_len()) {
                let _ = stats.full_state.record(len as u64);
                stats.full_state_sum += len as u64;
                stats.full_state_payload_bytes += payload_len as u64;
            }
        }
    }

    /// The newest tick to acknowledge: applied (decoders) or read.
    fn ack(&self) -> Option<Tick> {
        match &self.session {
            Some(s) => s.latest_tick(),
            None => self.last_tick,
        }
    }

    /// Appends one input frame to `tx` covering every slot due by `now_ns`
    /// that no frame covered yet, and records how late each slot was
    /// served. Returns whether a frame was written.
    pub(crate) fn write_input(&mut self, now_ns: u64, ctx: &mut Ctx) -> bool {
        let newest = self.slots.newest_due(now_ns);
        if newest <= self.sent_seq || self.tx_blocked {
            return false;
        }
        for seq in self.sent_seq + 1..=newest {
            let due = self.slots.due(seq);
            if ctx.measuring(due) {
                ctx.stats.input_slots += 1;
                let _ = ctx.stats.loadgen_lag.record((now_ns - due).max(1000) / 1000);
                if seq < newest {
                    ctx.stats.inputs_late += 1;
                }
            }
        }
        if ctx.measuring(self.slots.due(newest)) {
            ctx.stats.inputs_sent += 1;
        }
        let data = match &self.input_schema {
            None => scenario::input(self.index, newest, ctx.input_hz).to_raw(ctx.format),
            Some(schema) => schema
                .encode(ctx.format, &scenario::schema_input(schema, self.index, newest))
                .expect("values are drawn within their fields' types"),
        };
        let msg = ClientMsg::Input { seq: tickforge_protocol::ids::InputSeq(newest), ack: self.ack(), data };
        let mut tx = std::mem::take(&mut self.tx);
        ctx.frame(&msg, &mut tx);
        self.tx = tx;
        self.sent_seq = newest;
        true
    }

    /// Slots due in the window that no tick answered (counted as the
    /// client stops).
    pub(crate) fn unanswered(&self, window: (u64, u64)) -> u64 {
        (self.answered_seq.saturating_add(1)..=self.sent_seq)
            .filter(|&seq| {
                let due = self.slots.due(seq);
                due >= window.0 && due < window.1
            })
            .count() as u64
    }

    /// Whether every input written was answered.
    pub(crate) fn all_answered(&self) -> bool {
        self.answered_seq >= self.sent_seq
    }
}

/// Monotonic ns since the run's epoch for a wall-clock time.
pub(crate) fn mono(wall_ns: u64, wall_offset: i64) -> u64 {
    (wall_ns as i64 - wall_offset).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram;
    use tickforge_protocol::ids::InputSeq;

    const MS: u64 = 1_000_000;

    /// Wall clock = monotonic + WALL ns; the window is [1 s, 100 s).
    fn ctx() -> Ctx {
        Ctx {
            stats: CoreStats::new(),
            recent: histogram(),
            ticks_all: 0,
            window: (1_000 * MS, 100_000 * MS),
            wall_offset: WALL,
            format: Format::Bin,
            input_hz: 30,
            full_state_every: 30,
            new_errors: 0,
            rng: 7,
            scratch: Vec::new(),
            plain: Vec::new(),
        }
    }

    const WALL: i64 = 1_000_000_000_000_000_000;

    fn playing() -> Client {
        let mut c = Client::new(3, false);
        c.phase = Phase::Playing;
        c.tick_period_ns = 33 * MS;
        c.slots = Slots { first_ns: 2_000 * MS, period_ns: 33 * MS };
        c
    }

    /// A server frame holding a tick of `tick` that includes `input_seq`,
    /// taken at `taken_mono` (monotonic ns).
    fn tick_frame(tick: u64, input_seq: u32, taken_mono: u64) -> Vec<u8> {
        let header = TickHeader {
            tick: Tick(tick),
            server_time_us: (taken_mono + WALL as u64) / 1000,
            baseline: None,
            input_seq: InputSeq(input_seq),
        };
        let mut payload = Vec::new();
        codec::encode_tick(Format::Bin, &header, &[0; 20], &mut payload);
        let mut frame = vec![0x82, payload.len() as u8];
        frame.extend_from_slice(&payload);
        frame
    }

    fn rx(mono_ns: u64) -> Rx {
        Rx { wall_ns: mono_ns + WALL as u64, stamped: true }
    }

    #[test]
    fn inputs_are_timed_from_their_slots_even_when_written_late() {
        let mut w = ctx();
        let mut c = playing();
        // Woken 70 ms late for slot 1: slots 1..=3 are due, one frame covers them.
        let now = c.slots.due(1) + 70 * MS;
        assert!(c.write_input(now, &mut w));
        assert_eq!(c.sent_seq, 3);
        assert!(!c.tx.is_empty());
        assert!(!c.write_input(now, &mut w), "nothing new is due");
        assert_eq!(w.stats.input_slots, 3);
        assert_eq!(w.stats.inputs_late, 2);
        assert_eq!(w.stats.inputs_sent, 1);
        // Their lags: 70, 37 and 4 ms.
        assert_eq!(w.stats.loadgen_lag.len(), 3);
        assert_eq!(w.stats.loadgen_lag.max() / 1000, 70);
        // The tick including seq 3 arrives 10 ms after the frame went out.
        let arrival = now + 10 * MS;
        c.on_bytes(&tick_frame(5, 3, arrival - 7 * MS), rx(arrival), arrival, &mut w);
        let h = &w.stats.input_latency;
        assert_eq!(h.len(), 3, "one sample per slot, nothing synthetic");
        let ms: Vec<u64> = h.iter_recorded().map(|v| v.value_iterated_to() / 1000).collect();
        assert_eq!(ms, [14, 47, 80]);
        assert_eq!(w.stats.tick_latency.max() / 1000, 7);
        assert!(c.all_answered());
        assert_eq!(c.unanswered(w.window), 0);
    }

    #[test]
    fn ticks_are_timed_at_their_stamp_not_at_the_read() {
        let mut w = ctx();
        let mut c = playing();
        let arrival = 3_000 * MS;
        // Read 20 ms after it arrived: the stamp, not the read, times it.
        c.on_bytes(&tick_frame(1, 0, arrival - 7 * MS), rx(arrival), arrival + 20 * MS, &mut w);
        assert_eq!(w.stats.tick_latency.max() / 1000, 7);
        assert_eq!(w.stats.state_msgs, 1);
        // Two ticks in one read: the first is timed with the second's stamp.
        let second = arrival + 33 * MS;
        c.new_read(arrival + 20 * MS);
        c.new_read(second + MS);
        let mut both = tick_frame(2, 0, arrival + 33 * MS - 40 * MS);
        both.extend(tick_frame(3, 0, second - 7 * MS));
        c.on_bytes(&both, rx(second), second + MS, &mut w);
        assert_eq!(w.stats.ticks_shared_stamp, 1);
        assert_eq!(w.stats.shared_stamp_bound.max() / 1000, 13, "it came after the read 13 ms before");
        assert_eq!(c.next_read(second + MS), second + c.tick_period_ns / 2);
        assert_eq!(w.stats.ticks_unstamped, 0);
    }

    #[test]
    fn ticks_near_the_slots_turn_on_the_reads_between_them() {
        let mut w = ctx();
        let mut c = playing();
        // Slots at 2000 + k * 33 ms. A tick 15 ms after one: far from both.
        let far = c.slots.due(30) + 15 * MS;
        c.on_bytes(&tick_frame(1, 0, far - MS), rx(far), far + MS, &mut w);
        assert!(!c.wants_mid(far + MS));
        // A tick 3 ms before a slot: near.
        let near = c.slots.due(31) + 30 * MS;
        c.on_bytes(&tick_frame(2, 0, near - MS), rx(near), near + MS, &mut w);
        assert!(c.wants_mid(near + MS));
        assert!(c.wants_mid(near + MS + MID_HOLD_NS - 1));
        assert!(!c.wants_mid(near + MS + MID_HOLD_NS));
        // Two ticks in one read: on as well.
        let mut c = playing();
        let t = c.slots.due(40) + 15 * MS;
        let mut both = tick_frame(1, 0, t - 20 * MS);
        both.extend(tick_frame(2, 0, t - MS));
        c.on_bytes(&both, rx(t), t + MS, &mut w);
        assert!(c.wants_mid(t + MS));
    }

    #[test]
    fn the_read_between_slots_keeps_half_a_period_from_the_ticks() {
        let mut w = ctx();
        let mut c = playing();
        let arrival = 3_000 * MS;
        c.on_bytes(&tick_frame(1, 0, arrival - MS), rx(arrival), arrival + MS, &mut w);
        let half = c.tick_period_ns / 2;
        assert_eq!(c.next_read(arrival + MS), arrival + half);
        // Past that point: the same phase, a period on.
        assert_eq!(c.next_read(arrival + half), arrival + half + c.tick_period_ns);
        assert_eq!(c.next_read(arrival + 5 * c.tick_period_ns), arrival + half + 5 * c.tick_period_ns);
    }

    #[test]
    fn stale_ticks_pings_and_closes() {
        let mut w = ctx();
        let mut c = playing();
        let t = 3_000 * MS;
        c.on_bytes(&tick_frame(5, 0, t), rx(t), t, &mut w);
        c.on_bytes(&tick_frame(5, 0, t), rx(t), t, &mut w);
        assert_eq!(w.stats.errors.protocol, 1, "a tick not newer than the last");
        c.on_bytes(&tick_frame(8, 0, t), rx(t), t, &mut w);
        assert_eq!(w.stats.missed_ticks, 2);
        c.on_bytes(&[0x89, 0x02, b'h', b'i'], rx(t), t, &mut w);
        assert_eq!(c.tx.len(), 2 + 4 + 2, "a masked pong");
        assert!(c.end.is_none());
        c.on_bytes(&[0x88, 0x02, 0x03, 0xf0], rx(t), t, &mut w);
        assert_eq!(c.end, Some(End::Closed("1008".into())));
        let mut c = playing();
        c.on_bytes(&[0x82, 0x81, 0, 0, 0, 0, 0], rx(t), t, &mut w);
        assert_eq!(c.end, Some(End::Closed("protocol".into())));
    }
}
