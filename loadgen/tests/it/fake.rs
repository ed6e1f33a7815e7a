//! A fake tickforge server: thread per connection, sync tungstenite. It
//! answers `create_room` / `join_room` (enforcing `max_players`), sends a
//! tick every 1/30 s built with the protocol's generators as a delta
//! against the client's newest ack, and can refuse handshakes or drop ticks.

use std::collections::HashMap;
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
}

/// Rooms: id -> (seats, players).
pub(crate) type Rooms = Arc<Mutex<HashMap<String, (u32, u32)>>>;

pub(crate) struct FakeServer {
    pub(crate) addr: SocketAddr,
    pub(crate) rooms: Rooms,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub(crate) fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let rooms = Rooms::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (rooms.clone(), stop.clone());
        thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, s) = (r.clone(), s.clone());
                        thread::spawn(move || serve(stream, behaviour, &r, &s));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(2)),
                    Err(_) => return,
                }
            }
        });
        Self { addr, rooms, stop }
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn serve(mut stream: TcpStream, behaviour: Behaviour, rooms: &Rooms, stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    if let Some(status) = behaviour.refuse {
        let mut buf = [0u8; 2048];
        let _ = stream.read(&mut buf);
        let _ =
            write!(stream, "HTTP/1.1 {status} Refused\r\nContent-Length: 8\r\nConnection: close\r\n\r\nserver full");
        return;
    }
    let mut format = Format::Json;
    let callback = |req: &HsRequest, mut resp: Response| -> Result<Response, ErrorResponse> {
        let offered = req.headers().get_all("Sec-WebSocket-Protocol").iter().filter_map(|v| v.to_str().ok());
        if let codec::Negotiation::Chosen(f) = Format::negotiate(offered) {
            format = f;
            resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(f.subprotocol()));
        }
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else { return };
    ws.get_mut().set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    let schema = testutil::schema();
    let tick_hz = 30;
    let period = Duration::from_secs_f64(1.0 / f64::from(tick_hz));
    let mut rng = Rng::new(7);
    let mut next_id = 16;
    let mut state = testutil::snapshot(&mut rng, Tick(0), 16);
    let mut sent: Vec<Snapshot> = Vec::new();
    let mut acked: Option<Tick> = None;
    let mut input_seq = InputSeq(0);
    let mut room: Option<String> = None;
    let mut next_tick = Instant::now() + period;
    let send = |ws: &mut tungstenite::WebSocket<TcpStream>, bytes: Vec<u8>| match format {
        Format::Bin => ws.send(Message::binary(bytes)),
        Format::Json => ws.send(Message::text(String::from_utf8(bytes).unwrap())),
    };
    while !stop.load(Ordering::Relaxed) {
        match ws.read() {
            Ok(Message::Binary(b)) => handle(&b, format, &mut ws, &send, rooms, &mut room, &mut acked, &mut input_seq),
            Ok(Message::Text(t)) => {
                handle(t.as_bytes(), format, &mut ws, &send, rooms, &mut room, &mut acked, &mut input_seq);
            }
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if room.is_none() || Instant::now() < next_tick {
            continue;
        }
        next_tick += period;
        state = testutil::evolve(&mut rng, &state, tick_hz, &mut next_id);
        let base = acked.and_then(|a| sent.iter().find(|s| s.tick == a));
        let mut blob = Vec::new();
        let header =
            TickHeader { tick: state.tick, server_time_us: now_us(), baseline: base.map(|b| b.tick), input_seq };
        match format {
            Format::Bin => delta::bin::encode(&schema, tick_hz, base, &state, &mut blob),
            Format::Json => delta::json::write(&schema, &delta::diff(&schema, base, &state), &mut blob),
        }
        sent.push(state.clone());
        if sent.len() > 64 {
            sent.remove(0);
        }
        if behaviour.drop_every.is_some_and(|n| state.tick.0 % n == 0) {
            continue;
        }
        let mut out = Vec::new();
        codec::encode_tick(format, &header, &blob, &mut out);
        if send(&mut ws, out).is_err() {
            break;
        }
    }
    if let Some(id) = room {
        if let Some(r) = rooms.lock().unwrap().get_mut(&id) {
            r.1 -= 1;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn handle(
    bytes: &[u8],
    format: Format,
    ws: &mut tungstenite::WebSocket<TcpStream>,
    send: &impl Fn(&mut tungstenite::WebSocket<TcpStream>, Vec<u8>) -> tungstenite::Result<()>,
    rooms: &Rooms,
    room: &mut Option<String>,
    acked: &mut Option<Tick>,
    input_seq: &mut InputSeq,
) {
    let Ok(msg) = codec::decode_client(format, bytes, codec::DEFAULT_MAX_MESSAGE) else { return };
    let reply = match msg {
        ClientMsg::Input { seq, ack, .. } => {
            *input_seq = seq;
            *acked = ack.or(*acked);
            return;
        }
        ClientMsg::Ack { tick } => {
            *acked = Some(tick);
            return;
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
}
