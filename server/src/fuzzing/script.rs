//! The `connection` target's input format: a script of peer and network
//! operations run on a fresh [`Shard`] ([`run_script`]), and the builder
//! the seeds and the tests write scripts with ([`ScriptBuilder`]).

use super::{client_frame, Shard};
use std::time::Duration;
use tickforge_protocol::codec::Format;
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::{InputData, Request};
use tickforge_protocol::value::{Value, ValueMap};

/// Runs a fuzz script on a fresh [`Shard`]: the `connection` target's
/// input format, also used by the tests that replay its findings.
///
/// The script is a sequence of operations, each one byte (`op`) followed
/// by its arguments; a missing argument reads as 0 and ends the script.
/// `c` is a peer index (modulo the peers so far).
///
/// | op % 16 | arguments | what |
/// | --- | --- | --- |
/// | 0 | `f` | open: `f & 3` = bin, json, none offered (3: none); `f & 4`: a model client |
/// | 1 | `c`, `n`, n bytes | peer `c` sends the bytes |
/// | 2 | `c`, `k`, `x` | model `c` requests: `k % 12` = join_or_create, create_room (hz 10 + x), join the room of peer `x`, leave, list_rooms (a filter when `x & 2`), ping, hello, join_or_create of an unknown game, watch the room of peer `x`, resume peer `x`'s seat, game_message, join_or_create with options |
/// | 3 | `c`, `x`, `y`, `b` | model `c` sends an input |
/// | 4 | `c` | model `c` acks its newest tick |
/// | 5 | `c`, `n` (2 bytes LE) | peer `c`'s socket takes at most `n` bytes |
/// | 6 | | every socket takes everything |
/// | 7 | `ms` (2 bytes LE) | time passes |
/// | 8 | | every room ticks |
/// | 9 | `c` | peer `c` hangs up (EOF) |
/// | 10 | `c` | peer `c`'s socket fails |
/// | 11 | | a pass: every room ticks, every socket takes everything, 1/30 s passes |
/// | 12..16 | | nothing |
pub fn run_script(script: &[u8]) -> Shard {
    let mut shard = Shard::default();
    run_on(&mut shard, script);
    shard
}

/// Runs a script (as [`run_script`]) on `shard`.
pub fn run_on(shard: &mut Shard, script: &[u8]) {
    let mut s = Script { bytes: script, at: 0 };
    while let Some(op) = s.byte() {
        let peer = |s: &mut Script<'_>, shard: &Shard| -> Option<usize> {
            let n = shard.peers();
            let c = usize::from(s.byte()?);
            (n > 0).then(|| c % n)
        };
        match op % 16 {
            0 => {
                let Some(f) = s.byte() else { break };
                let sub =
                    [Some(Format::Bin.subprotocol()), Some(Format::Json.subprotocol()), None][usize::from(f & 3) % 3];
                let _ = shard.open(sub, f & 4 != 0);
            }
            1 => {
                let Some(c) = peer(&mut s, shard) else { break };
                let Some(n) = s.byte() else { break };
                let bytes = s.take(usize::from(n));
                shard.raw(c, bytes);
            }
            2 => {
                let Some(c) = peer(&mut s, shard) else { break };
                let (Some(k), Some(x)) = (s.byte(), s.byte()) else { break };
                let arena = || "arena".to_owned();
                let other = usize::from(x) % shard.peers();
                let room_of_other = || shard.room_of(other).unwrap_or_else(|| RoomId(format!("r-0-{x}")));
                let options = || {
                    let mut map = ValueMap::new();
                    map.0.insert("mode".into(), Value::Int(i64::from(x % 3)));
                    Some(map)
                };
                let body = match k % 12 {
                    0 => Request::JoinOrCreate { game: arena(), options: None },
                    1 => Request::CreateRoom {
                        game: arena(),
                        max_players: Some(u32::from(x % 9)),
                        tick_hz: Some(10 + u32::from(x)),
                        private: x & 1 != 0,
                        options: None,
                    },
                    2 => Request::JoinRoom { room_id: room_of_other(), reservation: None },
                    3 => Request::LeaveRoom,
                    4 => Request::ListRooms {
                        game: (x & 1 != 0).then(arena),
                        filter: (x & 2 != 0).then(options).flatten(),
                    },
                    5 => Request::Ping { client_time_us: u64::from(x) },
                    6 => Request::Hello { token: None, client: Some("fuzz".into()) },
                    7 => Request::JoinOrCreate { game: "no-such-game".into(), options: None },
                    8 => Request::WatchRoom { room_id: room_of_other() },
                    9 => shard
                        .resume_of(other)
                        .unwrap_or(Request::Resume { room_id: room_of_other(), resume_token: "x".into() }),
                    10 => Request::GameMessage { name: "ping".into(), data: Value::Int(i64::from(x)) },
                    _ => Request::JoinOrCreate { game: arena(), options: options() },
                };
                shard.request(c, body);
            }
            3 => {
                let Some(c) = peer(&mut s, shard) else { break };
                let (Some(x), Some(y), Some(b)) = (s.byte(), s.byte(), s.byte()) else { break };
                let data = InputData { move_x: x as i8, move_y: y as i8, buttons: b };
                shard.input(c, data);
            }
            4 => {
                let Some(c) = peer(&mut s, shard) else { break };
                shard.ack(c);
            }
            5 => {
                let Some(c) = peer(&mut s, shard) else { break };
                let (Some(lo), Some(hi)) = (s.byte(), s.byte()) else { break };
                shard.send(c, usize::from(u16::from_le_bytes([lo, hi])));
            }
            6 => shard.send_all(),
            7 => {
                let (Some(lo), Some(hi)) = (s.byte(), s.byte()) else { break };
                shard.advance(Duration::from_millis(u64::from(u16::from_le_bytes([lo, hi]))));
            }
            8 => shard.tick(),
            9 => {
                let Some(c) = peer(&mut s, shard) else { break };
                shard.eof(c);
            }
            10 => {
                let Some(c) = peer(&mut s, shard) else { break };
                shard.io_error(c);
            }
            11 => {
                shard.tick();
                shard.send_all();
                shard.advance(Duration::from_micros(33_333));
            }
            _ => {}
        }
    }
}

/// A cursor over a script.
struct Script<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Script<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let end = (self.at + n).min(self.bytes.len());
        let taken = &self.bytes[self.at..end];
        self.at = end;
        taken
    }
}

/// Builds `connection` scripts (the seed corpus and the tests' inputs).
#[derive(Clone, Debug, Default)]
pub struct ScriptBuilder {
    bytes: Vec<u8>,
    peers: u8,
}

impl ScriptBuilder {
    /// An empty script.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The script's bytes.
    #[must_use]
    pub fn build(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// Opens a peer (`format`: `None` offers no subprotocol); returns its index.
    pub fn open(&mut self, format: Option<Format>, model: bool) -> u8 {
        let f = match format {
            Some(Format::Bin) => 0,
            Some(Format::Json) => 1,
            None => 2,
        };
        self.bytes.extend([0, f | if model { 4 } else { 0 }]);
        self.peers += 1;
        self.peers - 1
    }

    /// Peer `c` sends `bytes` (in pieces of at most 255).
    pub fn raw(&mut self, c: u8, bytes: &[u8]) -> &mut Self {
        for piece in bytes.chunks(255) {
            self.bytes.extend([1, c, piece.len() as u8]);
            self.bytes.extend_from_slice(piece);
        }
        self
    }

    /// Peer `c` sends one masked frame of `payload`.
    pub fn frame(&mut self, c: u8, opcode: u8, payload: &[u8]) -> &mut Self {
        self.raw(c, &client_frame(opcode, payload, [0x37, 0xfa, 0x21, 0x3d]))
    }

    /// Model `c` requests (`k`, `x` as in [`run_script`]).
    pub fn request(&mut self, c: u8, k: u8, x: u8) -> &mut Self {
        self.bytes.extend([2, c, k, x]);
        self
    }

    /// Model `c` sends an input.
    pub fn input(&mut self, c: u8, x: i8, y: i8, b: u8) -> &mut Self {
        self.bytes.extend([3, c, x as u8, y as u8, b]);
        self
    }

    /// Model `c` acks.
    pub fn ack(&mut self, c: u8) -> &mut Self {
        self.bytes.extend([4, c]);
        self
    }

    /// Peer `c`'s socket takes at most `n` bytes.
    pub fn send(&mut self, c: u8, n: u16) -> &mut Self {
        self.bytes.push(5);
        self.bytes.push(c);
        self.bytes.extend(n.to_le_bytes());
        self
    }

    /// Every socket takes everything.
    pub fn send_all(&mut self) -> &mut Self {
        self.bytes.push(6);
        self
    }

    /// Time passes.
    pub fn advance(&mut self, ms: u16) -> &mut Self {
        self.bytes.push(7);
        self.bytes.extend(ms.to_le_bytes());
        self
    }

    /// Every room ticks.
    pub fn tick(&mut self) -> &mut Self {
        self.bytes.push(8);
        self
    }

    /// Peer `c` hangs up.
    pub fn eof(&mut self, c: u8) -> &mut Self {
        self.bytes.extend([9, c]);
        self
    }

    /// Peer `c`'s socket fails.
    pub fn io_error(&mut self, c: u8) -> &mut Self {
        self.bytes.extend([10, c]);
        self
    }

    /// `n` passes (tick, send, 1/30 s).
    pub fn passes(&mut self, n: usize) -> &mut Self {
        self.bytes.extend(std::iter::repeat_n(11, n));
        self
    }
}
