//! An in-process shard for the fuzz targets in `server/fuzz` and for the
//! tests that replay what they find: real [`Connection`]s, requests and
//! rooms on one shard's state, driven by bytes and a virtual clock, with no
//! socket, thread or executor. Not an API: compiled for tests and with the
//! `fuzzing` feature only.
//!
//! What a fuzz input can do is what a peer and the network can do: send any
//! bytes, read any part of what the server wrote, go quiet while time
//! passes, hang up. Every step checks what a client would see, and panics
//! (a finding) when the server is wrong:
//!
//! - every byte it sends parses as RFC 6455 server frames, in the frame
//!   type of the connection's format, and every message decodes;
//! - an HTTP answer is a whole HTTP/1.1 response whose `Content-Length`
//!   is its body's length;
//! - a well-behaved client (a *model*: a [`ClientSession`] that sends only
//!   what the session writes) rebuilds exactly the room's state at every
//!   tick it applies, whatever the hostile peers in its room do;
//! - what waits for a socket stays bounded ([`MAX_PENDING`]).
//!
//! The room's simulation seed includes the wall clock (as in production),
//! so arena's spawn positions differ between runs; nothing checked here
//! depends on them.
//!
//! # Layout
//! - this module: the checks of `http_head`, `http_answer` and
//!   `ws_frames`, and [`check`], which runs any target's checks on one input;
//! - `shard`: the in-process shard the `connection` target drives;
//! - `script`: that target's input format ([`run_script`], [`ScriptBuilder`]);
//! - `token`: the `token` target's checks (a signed identity in `hello`);
//! - `seeds`: the seed corpus (`server/fuzz/seeds`), made from real
//!   requests and the golden messages.

mod script;
mod seeds;
mod shard;
mod token;

pub use script::{run_on, run_script, ScriptBuilder};
pub use seeds::{client_messages, protocol_seeds, seeds};
pub use shard::{Shard, MAX_CONNECTIONS, MAX_PENDING, MAX_TICKS};
pub use token::check_token;

use crate::config::{Limits, ServerConfig};
use crate::directory::Directory;
use crate::http::routes::{self, Answer};
use crate::http::{self, parse_head};
use crate::metrics::Metrics;
use crate::shard_state::{ShardState, Shared};
use crate::ws::{self, Pipe, Wire};
use std::io;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tickforge_protocol::codec::Format;
use tungstenite::Message;

/// The fuzz shard's `--admin-token` (the monitor's admin actions are on,
/// for `http_answer` to reach them; the dictionary holds it).
pub const ADMIN_TOKEN: &str = "fuzz-admin-token";

/// The configuration the fuzz shard runs: the defaults, one shard, and
/// bounds small enough for a fuzzer to reach (64 KiB messages stay).
#[must_use]
pub fn config() -> ServerConfig {
    let limits = Limits {
        rooms_per_shard: 4,
        control_queue: 32,
        max_players_per_room: 8,
        // Within the ticks a script may take (60 at 30 Hz).
        slow_client: Duration::from_secs(2),
        ..Limits::default()
    };
    ServerConfig {
        shards: 1,
        empty_room_grace: Duration::from_secs(2),
        limits,
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        ..ServerConfig::default()
    }
}

/// An RFC 6455 upgrade request for `/ws`, offering `subprotocol` (none:
/// the server picks JSON).
#[must_use]
pub fn upgrade_request(subprotocol: Option<&str>) -> Vec<u8> {
    let mut head = String::from(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    if let Some(p) = subprotocol {
        head.push_str("Sec-WebSocket-Protocol: ");
        head.push_str(p);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// One masked client frame (FIN set) carrying `payload`.
#[must_use]
pub fn client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    ws::write_frame_header(&mut out, opcode, payload.len());
    out[1] |= 0x80;
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Checks that `bytes` is one whole HTTP/1.1 response with a body of its
/// `Content-Length` (`head_only`: the answer to a `HEAD`, no body), and
/// returns its status.
///
/// # Panics
/// When it is not (a finding).
#[must_use]
pub fn check_response(bytes: &[u8], head_only: bool) -> u16 {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = res.parse(bytes) else {
        panic!("not a whole HTTP response: {:?}", String::from_utf8_lossy(bytes));
    };
    let status = res.code.unwrap_or(0);
    assert!((100..600).contains(&status), "status {status}");
    assert_eq!(res.version, Some(1), "answers are HTTP/1.1");
    let length = res
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok());
    if status == 101 {
        assert_eq!(len, bytes.len(), "bytes after a 101 answer");
        return status;
    }
    let length = length.unwrap_or_else(|| panic!("no Content-Length: {:?}", String::from_utf8_lossy(bytes)));
    let body = bytes.len() - len;
    if head_only {
        assert_eq!(body, 0, "a body in the answer to HEAD");
    } else {
        assert_eq!(body, length, "Content-Length {length}, body {body} bytes");
    }
    status
}

/// What the server answered a request head.
#[derive(Debug)]
pub enum Answered {
    /// The head is not complete yet.
    Incomplete,
    /// A plain HTTP answer (the connection then closes), with its status.
    Plain(u16),
    /// The upgrade was accepted, in this format.
    Upgrade(Format),
}

/// The answer to the request head at the start of `raw` (as a socket's
/// first bytes), checked: what the runtime would write.
///
/// # Panics
/// When the answer is not a well-formed HTTP response (a finding).
#[must_use]
pub fn answer_head(raw: &[u8]) -> Answered {
    let shard = shard_state(config());
    match parse_head(raw) {
        Ok(None) => Answered::Incomplete,
        Err(e) => Answered::Plain(check_response(&http::error(400, &e.to_string(), &[]), false)),
        Ok(Some((head, head_len))) => match routes::answer(&shard, &head, true) {
            Answer::Plain { bytes, status } => {
                let checked = check_response(&bytes, head.method == "HEAD");
                assert_eq!(checked, status, "the status counted is the status sent");
                Answered::Plain(status)
            }
            Answer::Matchmake { len } => {
                // What came with the head, as much as the body's length:
                // without a cluster (as here) the answer waits on no node.
                let rest = raw.get(head_len..).unwrap_or_default();
                let body = &rest[..rest.len().min(len)];
                let (status, bytes) = futures_lite::future::block_on(crate::cluster::serve::matchmake(&shard, body));
                assert_eq!(check_response(&bytes, false), status, "the status counted is the status sent");
                Answered::Plain(status)
            }
            Answer::Upgrade { accepted, .. } => {
                let status = check_response(&ws::switching_protocols(&accepted), false);
                assert_eq!(status, 101);
                Answered::Upgrade(accepted.format)
            }
        },
    }
}

fn shard_state(config: ServerConfig) -> Rc<ShardState> {
    let shared = Shared {
        config: Arc::new(config),
        metrics: Metrics::new(1),
        directory: Directory::default(),
        stop: Arc::new(AtomicBool::new(false)),
        tls: None,
        // With the admin actions on: the fuzzers reach their routes too.
        monitor: crate::monitor::Monitor::new(1, true, crate::shard_state::unix_now_us()),
        cluster: None,
    };
    Rc::new(ShardState::new(0, shared))
}

/// The fuzz targets of `server/fuzz`, by name.
pub const TARGETS: [&str; 5] = ["http_head", "http_answer", "ws_frames", "connection", "token"];

/// Runs one input through the checks of `target` (what its fuzz target
/// does), panicking on a finding.
///
/// # Panics
/// On a finding, or for an unknown target name.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "http_head" => check_head(data),
        "http_answer" => {
            let _ = answer_head(data);
        }
        "ws_frames" => check_frames(data),
        "token" => check_token(data),
        "connection" => {
            let mut shard = run_script(data);
            shard.tick();
            shard.send_all();
            shard.finish();
        }
        other => panic!("no fuzz target {other}"),
    }
}

/// The `http_head` checks: a parsed head is the same when parsed again
/// from exactly its bytes, within the bounds; the header, query and
/// handshake checks never panic, and an accepted handshake's token and
/// key are what was asked.
pub fn check_head(data: &[u8]) {
    use crate::ws::{check_upgrade, HandshakePolicy};
    match parse_head(data) {
        Ok(Some((head, len))) => {
            assert!(len <= data.len() && len <= http::MAX_HEAD, "head length {len}");
            assert_eq!(parse_head(&data[..len]), Ok(Some((head.clone(), len))), "the same head from its own bytes");
            assert!(head.headers.len() <= http::MAX_HEADERS);
            for (name, _) in &head.headers {
                let _ = head.header(name);
                let _ = head.header_has_token(name, "upgrade");
            }
            let mut seen = std::collections::HashSet::new();
            for kv in head.query.as_deref().into_iter().flat_map(|q| q.split('&')) {
                let key = kv.split_once('=').map_or(kv, |(k, _)| k);
                let value = head.query_param(key).expect("a key of the query has a value");
                let raw = kv.split_once('=').map_or("", |(_, v)| v);
                // A repeated key's value is its first one's.
                if seen.insert(key) && !raw.contains('%') {
                    assert_eq!(value, raw, "a value without escapes is itself");
                }
            }
            let origins = ["http://localhost:7700".to_owned()];
            for (allowed_origins, token) in [(&origins[..0], None), (&origins[..], Some("ab+c/="))] {
                for negotiate in [true, false] {
                    let policy = HandshakePolicy { allowed_origins, token, negotiate };
                    match check_upgrade(&head, &policy) {
                        Ok(accepted) => {
                            assert_eq!(accepted.accept_key.len(), 28);
                            if let (Some(t), Some(given)) = (token, head.query_param("token")) {
                                assert_eq!(given, t, "a wrong token was accepted");
                            }
                            let status = check_response(&ws::switching_protocols(&accepted), false);
                            assert_eq!(status, 101);
                        }
                        Err(refused) => {
                            assert!(matches!(refused.status, 400 | 403 | 405 | 426), "status {}", refused.status);
                            let bytes = http::error(refused.status, &refused.why, &refused.headers);
                            assert_eq!(check_response(&bytes, false), refused.status);
                        }
                    }
                }
            }
        }
        Ok(None) => assert!(data.len() <= http::MAX_HEAD, "{} bytes and still incomplete", data.len()),
        Err(_) => {}
    }
}

/// How [`read_frames`] reads a byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameReader {
    /// tungstenite alone reads every frame: the reference.
    Tungstenite,
    /// As a connection (`conn::Connection`) reads: whole small data frames
    /// straight from the wire ([`Wire::take_simple_frame`]), the rest
    /// through tungstenite.
    Connection,
}

/// The `ws_frames` checks: the first byte picks the message limit and the
/// piece sizes; the rest, read whole and read in pieces, by tungstenite
/// alone and as a connection reads it (small whole frames without
/// tungstenite), gives the same messages and the same error, and no
/// message is over the limit.
pub fn check_frames(data: &[u8]) {
    let Some((&sel, stream)) = data.split_first() else { return };
    let max = [16usize, 125, 1024, 65_536][usize::from(sel & 3)];
    let whole = read_frames(stream, &[], max, FrameReader::Tungstenite);
    for m in whole.0.iter().filter(|m| m.is_text() || m.is_binary()) {
        assert!(m.len() <= max, "a {}-byte message through a {max}-byte limit", m.len());
    }
    let n = usize::from(sel >> 2);
    let cuts = if n == 0 { vec![1] } else { vec![n, 1, n * 7 + 3] };
    assert_eq!(read_frames(stream, &cuts, max, FrameReader::Tungstenite), whole, "pieces of {cuts:?}");
    assert_eq!(read_frames(stream, &[], max, FrameReader::Connection), whole, "as a connection reads, whole");
    assert_eq!(
        read_frames(stream, &cuts, max, FrameReader::Connection),
        whole,
        "as a connection reads, pieces of {cuts:?}"
    );
}

/// Feeds one byte stream to a server-side [`Wire`] and tungstenite context
/// in the pieces `cuts` gives (lengths, cycled; 0 = the rest at once), read
/// by `reader`, and returns what came out: each message, then the error
/// that ended it, if any (`WouldBlock` is not an end). Reading stops at the
/// peer's close, as a connection's does.
#[must_use]
pub fn read_frames(
    stream: &[u8],
    cuts: &[usize],
    max_message: usize,
    reader: FrameReader,
) -> (Vec<Message>, Option<String>) {
    let mut ctx = ws::server_context(max_message);
    let mut wire = Wire::default();
    let mut tx = Vec::new();
    let mut messages = Vec::new();
    let mut payload = Vec::new();
    let simple_max = crate::conn::SIMPLE_FRAME_MAX.min(max_message);
    let mut at = 0;
    let mut cut = 0;
    while at < stream.len() {
        let n = match cuts.get(cut % cuts.len().max(1)) {
            Some(&n) if n > 0 => n,
            _ => stream.len() - at,
        };
        cut += 1;
        let end = (at + n).min(stream.len());
        wire.push_rx(&stream[at..end]);
        at = end;
        loop {
            if reader == FrameReader::Connection {
                if let Some(binary) = wire.take_simple_frame(simple_max, &mut payload) {
                    if binary {
                        messages.push(Message::binary(payload.clone()));
                    } else {
                        // The connection's own check (tungstenite's Utf8).
                        match String::from_utf8(payload.clone()) {
                            Ok(text) => messages.push(Message::text(text)),
                            Err(_) => return (messages, Some("utf8".into())),
                        }
                    }
                    continue;
                }
            }
            match ctx.read(&mut Pipe { wire: &mut wire, tx: &mut tx }) {
                Ok(m) => {
                    let close = m.is_close();
                    messages.push(m);
                    if close {
                        return (messages, None);
                    }
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return (messages, Some(error_kind(&e))),
            }
        }
        // What tungstenite wrote back (pongs, the close answer) are whole
        // frames.
        let _ = ctx.flush(&mut Pipe { wire: &mut wire, tx: &mut tx });
    }
    (messages, None)
}

/// An error's kind without its details that depend on how much was read.
fn error_kind(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Capacity(_) => "capacity".into(),
        tungstenite::Error::Utf8(_) => "utf8".into(),
        tungstenite::Error::Protocol(p) => format!("protocol: {p}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_to_real_requests_are_whole_responses() {
        assert!(matches!(answer_head(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), Answered::Plain(200)));
        assert!(matches!(answer_head(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Answered::Plain(200)));
        assert!(matches!(answer_head(b"POST /rooms HTTP/1.1\r\n\r\n"), Answered::Plain(405)));
        assert!(matches!(answer_head(b"GET /nope HTTP/1.1\r\n\r\n"), Answered::Plain(404)));
        assert!(matches!(answer_head(b"\x16\x03\x01\x02\x00\r\n\r\n"), Answered::Plain(400)));
        assert!(matches!(answer_head(b"GET / HTTP/1.1\r\n"), Answered::Incomplete));
        let bin = upgrade_request(Some("tickforge.v1.bin"));
        assert!(matches!(answer_head(&bin), Answered::Upgrade(Format::Bin)));
    }

    #[test]
    fn frames_read_alike_in_any_pieces() {
        let mut stream = client_frame(1, b"hello", [1, 2, 3, 4]);
        stream.extend(client_frame(2, &[7; 300], [9, 9, 9, 9]));
        stream.extend(client_frame(9, b"", [0, 0, 0, 0]));
        for reader in [FrameReader::Tungstenite, FrameReader::Connection] {
            let whole = read_frames(&stream, &[], 1024, reader);
            assert_eq!(whole.0.len(), 3);
            assert_eq!(read_frames(&stream, &[1], 1024, reader), whole);
            assert_eq!(read_frames(&stream, &[3, 100, 2], 1024, reader), whole);
            let (_, err) = read_frames(&stream, &[5], 100, reader);
            assert_eq!(err.as_deref(), Some("capacity"));
        }
        // Invalid UTF-8 in a small text frame: the connection's own check
        // ends the stream as tungstenite's does.
        let bad = client_frame(1, &[0xff, 0xfe], [1, 2, 3, 4]);
        for reader in [FrameReader::Tungstenite, FrameReader::Connection] {
            assert_eq!(read_frames(&bad, &[], 1024, reader), (vec![], Some("utf8".into())));
        }
    }
}
