//! A fake tickforge server: thread per connection, sync tungstenite. It
//! answers `create_room` / `join_room` (enforcing `max_players`), sends
//! ticks built with the protocol's generators as deltas against the
//! client's newest ack, and can refuse handshakes, drop ticks, corrupt
//! deltas, and inject known delays: every tick sent a fixed time after its
//! `server_time_us`, each input reflected in a tick sent a fixed hold after
//! it arrived, a handshake answered late. Its waits are deadlines (reads
//! time out when the next send is due), so what it injects is what a
//! client should measure.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tickforge_protocol::codec::{self, Format, TickHeader};
use tickforge_protocol::delta;
use tickforge_protocol::ids::{EntityId, InputSeq, PlayerId, RoomId, Tick};
use tickforge_protocol::message::{ClientMsg, Confirm, Joined, RejectCode, Request, ServerMsg};
use tickforge_protocol::snapshot::Snapshot;
use tickforge_protocol::testutil::{self, Rng};
use tungstenite::handshake::server::{ErrorResponse, Request as HsRequest, Response};
use tungstenite::http::HeaderValue;
use tungstenite::Message;

/// How the fake behaves.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Behaviour {
    /// Answer every handshake with this HTTP status.
    pub(crate) refuse: Option<u16>,
    /// Skip ticks whose number is a multiple of this.
    pub(crate) drop_every: Option<u64>,
    /// Every tick's `server_time_us` is this long before it is sent.
    pub(crate) tick_delay: Option<Duration>,
    /// Instead of ticking at 30 Hz, send one tick per input, this long
    /// after the input arrived, including its seq.
    pub(crate) echo_hold: Option<Duration>,
    /// Answer the handshake this long after the request arrived.
    pub(crate) handshake_delay: Option<Duration>,
    /// Send ticks whose number is a multiple of this with a state blob
    /// that cannot be applied (the header is fine).
    pub(crate) corrupt_every: Option<u64>,
    /// Send ticks whose number is a multiple of this together with the
    /// next one (both taken at the same time, written in one go).
    pub(crate) pair_every: Option<u64>,
}

/// Rooms: id -> (seats, players).
pub(crate) type Rooms = Arc<Mutex<HashMap<String, (u32, u32)>>>;

/// How long each handshake took on the fake's side: from the accept to
/// the 101 written.
pub(crate) type Handshakes = Arc<Mutex<Vec<Duration>>>;

/// What one connection's thread records for the tests to read.
struct Records {
    handshakes: Handshakes,
    holds: Handshakes,
    writes: Handshakes,
}

pub(crate) struct FakeServer {
    pub(crate) addr: SocketAddr,
    pub(crate) rooms: Rooms,
    pub(crate) handshakes: Handshakes,
    /// In echo mode, how long each input was in fact held: from when the
    /// fake read it to when it wrote the tick including it.
    pub(crate) holds: Handshakes,
    /// How late each tick message left: from when it was taken (its
    /// `server_time_us` plus the injected delay) to when its write
    /// returned. A busy host delays the fake's thread; the loadgen's
    /// figures are checked against this, not against a punctual fake.
    pub(crate) writes: Handshakes,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    /// Forgets the handshakes, holds and writes recorded so far (before a
    /// run is made again).
    pub(crate) fn clear_records(&self) {
        self.handshakes.lock().unwrap().clear();
        self.holds.lock().unwrap().clear();
        self.writes.lock().unwrap().clear();
    }

    pub(crate) fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let rooms = Rooms::default();
        let handshakes = Handshakes::default();
        let holds = Handshakes::default();
        let writes = Handshakes::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, h, held, wrote) = (rooms.clone(), stop.clone(), handshakes.clone(), holds.clone(), writes.clone());
        thread::spawn(move || {
            // Blocking accepts: a connection is served the moment it comes
            // (Drop wakes this loop with a connection of its own).
            for stream in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { return };
                let accepted = Instant::now();
                let records = Records { handshakes: h.clone(), holds: held.clone(), writes: wrote.clone() };
                let (r, s) = (r.clone(), s.clone());
                thread::spawn(move || serve(stream, behaviour, &r, &s, accepted, &records));
            }
        });
        Self { addr, rooms, handshakes, holds, writes, stop }
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Whether `stream` has bytes within `wait` (to the nanosecond).
fn readable(stream: &TcpStream, wait: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ts = libc::timespec { tv_sec: wait.as_secs() as libc::time_t, tv_nsec: wait.subsec_nanos().into() };
    // SAFETY: one valid pollfd and timespec; no signal mask.
    unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) > 0 }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// One connection's tick state.
struct Ticker {
    format: Format,
    behaviour: Behaviour,
    rng: Rng,
    next_id: u32,
    state: Snapshot,
    sent: Vec<Snapshot>,
    acked: Option<Tick>,
    input_seq: InputSeq,
}

impl Ticker {
    /// The next tick's message, including `input_seq`, taken now (minus
    /// the injected delay); `None` when it is to be dropped.
    fn next(&mut self) -> Option<Vec<u8>> {
        let schema = testutil::schema();
        let tick_hz = 30;
        self.state = testutil::evolve(&mut self.rng, &self.state, tick_hz, &mut self.next_id);
        let base = self.acked.and_then(|a| self.sent.iter().find(|s| s.tick == a));
        let mut blob = Vec::new();
        match self.format {
            Format::Bin => delta::bin::encode(&schema, tick_hz, base, &self.state, &mut blob),
            Format::Json => delta::json::write(&schema, &delta::diff(&schema, base, &self.state), &mut blob),
        }
        let baseline = base.map(|b| b.tick);
        self.sent.push(self.state.clone());
        if self.sent.len() > 64 {
            self.sent.remove(0);
        }
        let n = self.state.tick.0;
        if self.behaviour.drop_every.is_some_and(|k| n % k == 0) {
            return None;
        }
        if self.behaviour.corrupt_every.is_some_and(|k| n % k == 0) {
            blob = match self.format {
                Format::Bin => vec![0xff; 6],
                Format::Json => br#"{"spawned":[{"id":1}]}"#.to_vec(),
            };
        }
        let delay = self.behaviour.tick_delay.unwrap_or_default().as_micros() as u64;
        let header =
            TickHeader { tick: self.state.tick, server_time_us: now_us() - delay, baseline, input_seq: self.input_seq };
        let mut out = Vec::new();
        codec::encode_tick(self.format, &header, &blob, &mut out);
        Some(out)
    }
}

#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    rooms: &Rooms,
    stop: &AtomicBool,
    accepted: Instant,
    records: &Records,
) {
    let Records { handshakes, holds, writes } = records;
    stream.set_nonblocking(false).unwrap();
    stream.set_nodelay(true).unwrap();
    if let Some(status) = behaviour.refuse {
        let mut buf = [0u8; 2048];
        let _ = stream.read(&mut buf);
        let _ =
            write!(stream, "HTTP/1.1 {status} Refused\r\nContent-Length: 11\r\nConnection: close\r\n\r\nserver full");
        return;
    }
    let mut format = Format::Json;
    let callback = |req: &HsRequest, mut resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(d) = behaviour.handshake_delay {
            thread::sleep(d);
        }
        let offered = req.headers().get_all("Sec-WebSocket-Protocol").iter().filter_map(|v| v.to_str().ok());
        if let codec::Negotiation::Chosen(f) = Format::negotiate(offered) {
            format = f;
            resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(f.subprotocol()));
        }
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else { return };
    handshakes.lock().unwrap().push(accepted.elapsed());
    ws.get_mut().set_nonblocking(true).unwrap();
    let period = Duration::from_secs_f64(1.0 / 30.0);
    let mut rng = Rng::new(7);
    let state = testutil::snapshot(&mut rng, Tick(0), 16);
    let mut t =
        Ticker { format, behaviour, rng, next_id: 16, state, sent: Vec::new(), acked: None, input_seq: InputSeq(0) };
    let mut room: Option<String> = None;
    let mut next_tick = Instant::now() + period;
    // Echo mode: inputs waiting for their tick: when it is due, the seq,
    // when the input was read.
    let mut echoes: VecDeque<(Instant, InputSeq, Instant)> = VecDeque::new();
    let send = |ws: &mut tungstenite::WebSocket<TcpStream>, bytes: Vec<u8>| match format {
        Format::Bin => ws.send(Message::binary(bytes)),
        Format::Json => ws.send(Message::text(String::from_utf8(bytes).unwrap())),
    };
    'conn: while !stop.load(Ordering::Relaxed) {
        let due = match behaviour.echo_hold {
            Some(_) => echoes.front().map(|e| e.0),
            None => room.as_ref().map(|_| next_tick),
        };
        let wait = due.map_or(Duration::from_millis(5), |d| d.saturating_duration_since(Instant::now()));
        // ppoll, not SO_RCVTIMEO: a socket timeout is rounded up to a
        // jiffy (up to 4 ms late), ppoll's to the nanosecond. Then every
        // message there is (the socket is non-blocking).
        if readable(ws.get_ref(), wait.min(Duration::from_millis(5))) {
            loop {
                let bytes = match ws.read() {
                    Ok(Message::Binary(b)) => b.to_vec(),
                    Ok(Message::Text(t)) => t.as_bytes().to_vec(),
                    Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break 'conn,
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break 'conn,
                };
                if let Some(seq) = handle(&bytes, format, &mut ws, &send, rooms, &mut room, &mut t.acked) {
                    match behaviour.echo_hold {
                        Some(hold) => {
                            let now = Instant::now();
                            echoes.push_back((now + hold, seq, now));
                        }
                        None => t.input_seq = seq,
                    }
                }
            }
        }
        if room.is_none() {
            continue;
        }
        let now = Instant::now();
        let taken = Instant::now();
        let mut out = Vec::new();
        if behaviour.echo_hold.is_some() {
            while echoes.front().is_some_and(|e| e.0 <= now) {
                let (_, seq, read) = echoes.pop_front().unwrap();
                t.input_seq = seq;
                out.extend(t.next());
                holds.lock().unwrap().push(read.elapsed());
            }
        } else if now >= next_tick {
            next_tick += period;
            out.extend(t.next());
            if behaviour.pair_every.is_some_and(|k| t.state.tick.0 % k == 0) {
                next_tick += period;
                out.extend(t.next());
            }
        }
        let count = out.len();
        for msg in out {
            match send(&mut ws, msg) {
                Ok(()) => {}
                // The rest stays in tungstenite's buffer for the next flush.
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break 'conn,
            }
        }
        if count > 0 {
            let late = taken.elapsed();
            writes.lock().unwrap().extend(std::iter::repeat_n(late, count));
        }
    }
    if let Some(id) = room {
        if let Some(r) = rooms.lock().unwrap().get_mut(&id) {
            r.1 -= 1;
        }
    }
}

/// Handles one client message; the input's seq when it was an input.
#[allow(clippy::too_many_arguments)]
fn handle(
    bytes: &[u8],
    format: Format,
    ws: &mut tungstenite::WebSocket<TcpStream>,
    send: &impl Fn(&mut tungstenite::WebSocket<TcpStream>, Vec<u8>) -> tungstenite::Result<()>,
    rooms: &Rooms,
    room: &mut Option<String>,
    acked: &mut Option<Tick>,
) -> Option<InputSeq> {
    let msg = codec::decode_client(format, bytes, codec::DEFAULT_MAX_MESSAGE).ok()?;
    let reply = match msg {
        ClientMsg::Input { seq, ack, .. } => {
            *acked = ack.or(*acked);
            return Some(seq);
        }
        ClientMsg::Ack { tick } => {
            *acked = Some(tick);
            return None;
        }
        ClientMsg::Req { id, body } => {
            let mut rooms = rooms.lock().unwrap();
            let joined = |room_id: &str, seats: u32, player: u32| ServerMsg::Cfm {
                id,
                body: Confirm::Joined(Joined {
                    room_id: RoomId(room_id.into()),
                    game: "arena".into(),
                    player_id: PlayerId(player),
                    entity_id: EntityId(player),
                    tick_hz: 30,
                    max_players: seats,
                    resume_token: String::new(),
                    schema: testutil::schema(),
                    input_schema: tickforge_protocol::message::InputData::schema().clone(),
                }),
            };
            match body {
                Request::CreateRoom { max_players, .. } => {
                    let room_id = format!("r-{}", rooms.len() + 1);
                    let seats = max_players.unwrap_or(8);
                    rooms.insert(room_id.clone(), (seats, 1));
                    *room = Some(room_id.clone());
                    joined(&room_id, seats, 1)
                }
                Request::JoinRoom { room_id, .. } => match rooms.get_mut(&room_id.0) {
                    Some((seats, players)) if *players < *seats => {
                        *players += 1;
                        *room = Some(room_id.0.clone());
                        joined(&room_id.0, *seats, *players)
                    }
                    Some(_) => ServerMsg::Rej { id, code: RejectCode::RoomFull, reason: "full".into() },
                    None => ServerMsg::Rej { id, code: RejectCode::NotFound, reason: "no room".into() },
                },
                _ => ServerMsg::Rej { id, code: RejectCode::Unsupported, reason: "fake".into() },
            }
        }
    };
    let mut out = Vec::new();
    codec::encode_server(format, &reply, &mut out);
    let _ = send(ws, out);
    None
}
