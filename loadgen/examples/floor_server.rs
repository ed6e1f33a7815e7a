//! A stand-in server for measuring the loadgen's own cost: it speaks just
//! enough of tickforge's protocol for `tickforge-loadgen` (the handshake,
//! `create_room` / `join_room`, inputs, acks, ticks with a delta against
//! the previous tick or the full state) and moves its bytes the way the
//! floor's server does (`../shared/tools/limit duplex-paced`): one thread,
//! one io_uring (`SINGLE_ISSUER | DEFER_TASKRUN`), once per tick one batch
//! of `RECV`s (`MSG_DONTWAIT`) for every client and one batch of `SEND`s.
//! No poll waits on its sockets, so an input the loadgen sends wakes
//! nothing: what the loadgen's CPU shows is its own work and the kernel's
//! TCP work on both sides, as with the floor's client.
//!
//! ```text
//! cargo run --release -p tickforge-loadgen --example floor_server -- 127.0.0.1:0
//! taskset -c 0 target/release/examples/floor_server 127.0.0.1:0     # prints "listening on ADDR"
//! ```
//!
//! Handshakes and the room request are served by a short-lived thread per
//! connection (blocking, tungstenite); the socket is then handed to the
//! tick thread. All rooms tick together at 30 Hz; every connection's first
//! request gets `joined` (`create_room` makes a room, `join_room` needs one).

use io_uring::{opcode, types, IoUring};
use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tickforge_protocol::codec::{self, Format, Negotiation, TickHeader};
use tickforge_protocol::delta;
use tickforge_protocol::ids::{EntityId, InputSeq, PlayerId, RoomId, Tick};
use tickforge_protocol::message::{ClientMsg, Confirm, Joined, RejectCode, Request, ServerMsg};
use tickforge_protocol::testutil::{self, Rng};
use tungstenite::handshake::server::{ErrorResponse, Request as HsRequest, Response};
use tungstenite::http::HeaderValue;
use tungstenite::Message;

const HZ: u32 = 30;
const RX: usize = 4096;
const ENTRIES: u32 = 4096;

/// A client handed to the tick thread.
struct Handed {
    fd: RawFd,
    format: Format,
}

/// A client on the tick thread.
struct Conn {
    fd: RawFd,
    format: Format,
    /// Bytes of a frame not complete yet.
    carry: Vec<u8>,
    input_seq: InputSeq,
    ack: Option<Tick>,
    closed: bool,
    out: Vec<u8>,
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floor_server: cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    println!("listening on {}", listener.local_addr().expect("a bound listener has an address"));
    let rooms: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (tx, rx) = mpsc::channel::<Handed>();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (tx, rooms) = (tx.clone(), rooms.clone());
            std::thread::spawn(move || {
                if let Some(h) = setup(stream, &rooms) {
                    let _ = tx.send(h);
                }
            });
        }
    });
    ticks(&rx);
}

/// The handshake and the room request, blocking; the socket, non-blocking,
/// once `joined` is written.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn setup(stream: TcpStream, rooms: &Mutex<HashSet<String>>) -> Option<Handed> {
    stream.set_nodelay(true).ok()?;
    let mut format = Format::Json;
    let callback = |req: &HsRequest, mut resp: Response| -> Result<Response, ErrorResponse> {
        let offered = req.headers().get_all("Sec-WebSocket-Protocol").iter().filter_map(|v| v.to_str().ok());
        if let Negotiation::Chosen(f) = Format::negotiate(offered) {
            format = f;
            resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(f.subprotocol()));
        }
        Ok(resp)
    };
    let mut ws = tungstenite::accept_hdr(stream, callback).ok()?;
    loop {
        let bytes = match ws.read().ok()? {
            Message::Binary(b) => b.to_vec(),
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Close(_) => return None,
            _ => continue,
        };
        let Ok(ClientMsg::Req { id, body }) = codec::decode_client(format, &bytes, codec::DEFAULT_MAX_MESSAGE) else {
            continue;
        };
        let joined = |room: String| ServerMsg::Cfm {
            id,
            body: Confirm::Joined(Joined {
                room_id: RoomId(room),
                game: "arena".into(),
                player_id: PlayerId(1),
                entity_id: EntityId(1),
                tick_hz: HZ,
                max_players: 8,
                resume_token: String::new(),
                schema: testutil::schema(),
                input_schema: tickforge_protocol::message::InputData::schema().clone(),
            }),
        };
        let (reply, done) = match body {
            Request::CreateRoom { .. } => {
                let mut rooms = rooms.lock().ok()?;
                let room = format!("r-{}", rooms.len() + 1);
                rooms.insert(room.clone());
                (joined(room), true)
            }
            Request::JoinRoom { room_id, .. } if rooms.lock().ok()?.contains(&room_id.0) => (joined(room_id.0), true),
            _ => (ServerMsg::Rej { id, code: RejectCode::NotFound, reason: "no such room".into() }, false),
        };
        let mut out = Vec::new();
        codec::encode_server(format, &reply, &mut out);
        let msg = if format.is_binary() { Message::binary(out) } else { Message::text(String::from_utf8(out).ok()?) };
        ws.send(msg).ok()?;
        if done {
            let stream = ws.into_inner();
            stream.set_nonblocking(true).ok()?;
            return Some(Handed { fd: stream.into_raw_fd(), format });
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Submits what is queued and reaps `want` completions.
fn submit_reap(ring: &mut IoUring, want: usize, mut f: impl FnMut(u64, i32)) {
    let mut got = 0;
    while got < want {
        match ring.submit_and_wait(want - got) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => panic!("io_uring_enter: {e}"),
        }
        for cqe in ring.completion() {
            f(cqe.user_data(), cqe.result());
            got += 1;
        }
    }
}

/// The tick thread: every 1/30 s, read every client, then send every client
/// its tick.
fn ticks(handed: &mpsc::Receiver<Handed>) {
    let mut ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(ENTRIES * 2)
        .build(ENTRIES)
        .expect("io_uring setup");
    ring.submitter().register_files_sparse(20_000).expect("register files");
    let mut conns: Vec<Conn> = Vec::new();
    let mut rx = vec![0u8; ENTRIES as usize * RX];
    let schema = testutil::schema();
    let mut rng = Rng::new(1);
    let mut next_id = 24;
    let mut prev = testutil::snapshot(&mut rng, Tick(0), 24);
    let period = Duration::from_secs_f64(1.0 / f64::from(HZ));
    let start = Instant::now();
    let mut n: u32 = 0;
    let (mut full, mut delta_blob) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    loop {
        n += 1;
        let at = start + period * n;
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        while let Ok(h) = handed.try_recv() {
            let slot = conns.len() as u32;
            ring.submitter().register_files_update(slot, &[h.fd]).expect("register a socket");
            conns.push(Conn {
                fd: h.fd,
                format: h.format,
                carry: Vec::new(),
                input_seq: InputSeq(0),
                ack: None,
                closed: false,
                out: Vec::new(),
            });
        }
        // 1) every client's inputs.
        let live: Vec<u32> = (0..conns.len() as u32).filter(|&j| !conns[j as usize].closed).collect();
        let mut todo = live.clone();
        while !todo.is_empty() {
            let mut again = Vec::new();
            for chunk in todo.chunks(ENTRIES as usize) {
                for (k, &j) in chunk.iter().enumerate() {
                    let buf = rx[k * RX..].as_mut_ptr();
                    let e = opcode::Recv::new(types::Fixed(j), buf, RX as u32)
                        .flags(libc::MSG_DONTWAIT)
                        .build()
                        .user_data((u64::from(j) << 32) | k as u64);
                    // SAFETY: the buffer outlives the batch, reaped below.
                    unsafe { ring.submission().push(&e).expect("room in the queue") };
                }
                let mut done = Vec::new();
                submit_reap(&mut ring, chunk.len(), |ud, res| done.push((ud, res)));
                for (ud, res) in done {
                    let (j, k) = ((ud >> 32) as usize, (ud & 0xffff_ffff) as usize);
                    let c = &mut conns[j];
                    if res > 0 {
                        let n = res as usize;
                        read_frames(c, &rx[k * RX..k * RX + n]);
                        if n == RX {
                            again.push(j as u32);
                        }
                    } else if res != -libc::EAGAIN {
                        c.closed = true;
                    }
                }
            }
            todo = again;
        }
        // 2) the tick: one delta from the previous tick and one full state
        // per form, the same bytes for every client.
        let state = testutil::evolve(&mut rng, &prev, HZ, &mut next_id);
        for (i, format) in Format::ALL.into_iter().enumerate() {
            full[i].clear();
            delta_blob[i].clear();
            match format {
                Format::Bin => {
                    delta::bin::encode(&schema, HZ, None, &state, &mut full[i]);
                    delta::bin::encode(&schema, HZ, Some(&prev), &state, &mut delta_blob[i]);
                }
                Format::Json => {
                    delta::json::write(&schema, &delta::diff(&schema, None, &state), &mut full[i]);
                    delta::json::write(&schema, &delta::diff(&schema, Some(&prev), &state), &mut delta_blob[i]);
                }
            }
        }
        let server_time_us = now_us();
        let live: Vec<u32> = live.into_iter().filter(|&j| !conns[j as usize].closed).collect();
        for chunk in live.chunks(ENTRIES as usize) {
            for &j in chunk {
                let c = &mut conns[j as usize];
                let i = usize::from(c.format == Format::Json);
                let on_prev = c.ack == Some(prev.tick);
                let header = TickHeader {
                    tick: state.tick,
                    server_time_us,
                    baseline: on_prev.then_some(prev.tick),
                    input_seq: c.input_seq,
                };
                let mut payload = Vec::new();
                codec::encode_tick(c.format, &header, if on_prev { &delta_blob[i] } else { &full[i] }, &mut payload);
                c.out.clear();
                c.out.push(if c.format.is_binary() { 0x82 } else { 0x81 });
                if payload.len() < 126 {
                    c.out.push(payload.len() as u8);
                } else {
                    c.out.push(126);
                    c.out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                }
                c.out.extend_from_slice(&payload);
                let e = opcode::Send::new(types::Fixed(j), c.out.as_ptr(), c.out.len() as u32)
                    .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(u64::from(j));
                // SAFETY: `out` is left alone until the batch is reaped.
                unsafe { ring.submission().push(&e).expect("room in the queue") };
            }
            submit_reap(&mut ring, chunk.len(), |ud, res| {
                if res < 0 && res != -libc::EAGAIN {
                    conns[ud as usize].closed = true;
                }
            });
        }
        prev = state;
        for (j, c) in conns.iter_mut().enumerate() {
            if c.closed && c.fd >= 0 {
                let _ = ring.submitter().register_files_update(j as u32, &[-1]);
                // SAFETY: the socket is ours, closed once.
                unsafe { libc::close(c.fd) };
                c.fd = -1;
            }
        }
    }
}

/// Reads the client frames in `data`: inputs and acks, a close.
fn read_frames(c: &mut Conn, data: &[u8]) {
    c.carry.extend_from_slice(data);
    let mut at = 0;
    let buf = std::mem::take(&mut c.carry);
    while buf.len() - at >= 6 {
        let (b0, b1) = (buf[at], buf[at + 1]);
        let (len, head) = match b1 & 0x7f {
            126 if buf.len() - at >= 8 => (usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])), 8),
            126 => break,
            127 => {
                c.closed = true;
                return;
            }
            n => (usize::from(n), 6),
        };
        if buf.len() - at < head + len {
            break;
        }
        let mask = [buf[at + head - 4], buf[at + head - 3], buf[at + head - 2], buf[at + head - 1]];
        let payload: Vec<u8> =
            buf[at + head..at + head + len].iter().enumerate().map(|(i, b)| b ^ mask[i & 3]).collect();
        at += head + len;
        match b0 & 0x0f {
            0x8 => {
                c.closed = true;
                return;
            }
            0x1 | 0x2 => match codec::decode_client(c.format, &payload, codec::DEFAULT_MAX_MESSAGE) {
                Ok(ClientMsg::Input { seq, ack, .. }) => {
                    c.input_seq = seq.max(c.input_seq);
                    c.ack = ack.or(c.ack);
                }
                Ok(ClientMsg::Ack { tick }) => c.ack = Some(tick),
                _ => {}
            },
            _ => {}
        }
    }
    c.carry = buf[at..].to_vec();
}
