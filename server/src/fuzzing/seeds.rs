//! The seed corpus of the server's fuzz targets: real request heads (a
//! browser's upgrade, curl, HTTP/1.0, a TLS hello), the golden client
//! messages framed as a client frames them, and scripts of whole sessions.
//! `server/fuzz/seeds` holds them as files (written by the ignored test
//! `write_seed_corpus`); a test runs each through its target's checks.

use super::{client_frame, upgrade_request, ScriptBuilder};
use crate::ws;
use tickforge_protocol::codec::{self, Format};
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::{InputData, Request, ServerMsg};
use tickforge_protocol::value::{Value, ValueMap};

/// One of every client message (the golden tests' examples), as payloads
/// in `format`.
#[must_use]
pub fn client_messages(format: Format) -> Vec<Vec<u8>> {
    use tickforge_protocol::ids::{InputSeq, RequestId, Tick};
    use tickforge_protocol::message::ClientMsg;
    let req = |id, body| ClientMsg::Req { id: RequestId(id), body };
    let mut options = ValueMap::new();
    options.0.insert("mode".into(), Value::String("ctf".into()));
    let msgs = [
        req(1, Request::Hello { token: Some("s3cret".into()), client: Some("demo/1.0".into()) }),
        req(2, Request::ListRooms { game: Some("arena".into()), filter: None }),
        req(2, Request::ListRooms { game: None, filter: Some(options.clone()) }),
        req(
            3,
            Request::CreateRoom {
                game: "arena".into(),
                max_players: Some(8),
                tick_hz: Some(30),
                private: false,
                options: Some(options.clone()),
            },
        ),
        req(4, Request::JoinRoom { room_id: RoomId("r-0-1".into()), reservation: None }),
        req(4, Request::JoinRoom { room_id: RoomId("r-0-1".into()), reservation: Some("q1w2e3".into()) }),
        req(5, Request::JoinOrCreate { game: "arena".into(), options: None }),
        req(6, Request::LeaveRoom),
        req(7, Request::Ping { client_time_us: 1_700_000_000_000_000 }),
        req(8, Request::Resume { room_id: RoomId("r-0-1".into()), resume_token: "c2VjcmV0IHRva2Vu".into() }),
        req(9, Request::WatchRoom { room_id: RoomId("r-0-1".into()) }),
        req(
            10,
            Request::GameMessage {
                name: "chat".into(),
                data: Value::List(vec![Value::Int(-3), Value::Float(1.5), Value::Bytes(vec![0, 255]), Value::Null]),
            },
        ),
        ClientMsg::Input {
            seq: InputSeq(12),
            ack: Some(Tick(1234)),
            data: InputData { move_x: 100, move_y: -50, buttons: 1 }.to_raw(format),
        },
        ClientMsg::Input {
            seq: InputSeq(13),
            ack: None,
            data: InputData { move_x: -127, move_y: 127, buttons: 0 }.to_raw(format),
        },
        ClientMsg::Ack { tick: Tick(1234) },
    ];
    msgs.iter()
        .map(|m| {
            let mut out = Vec::new();
            codec::encode_client(format, m, &mut out).expect("each input is written in its own form");
            out
        })
        .collect()
}

/// The seed corpus of every target: `(target, name, bytes)`, from real
/// requests, the golden messages framed as a client frames them, and
/// scripts of whole sessions. `scripts/fuzz.sh` starts from these.
#[must_use]
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use super::ADMIN_TOKEN;
    let mut out = Vec::new();
    let heads: [(&str, Vec<u8>); 16] = [
        ("upgrade-bin", upgrade_request(Some("tickforge.v1.bin"))),
        ("upgrade-json", upgrade_request(Some("tickforge.v1.json"))),
        ("upgrade-none", upgrade_request(None)),
        (
            "upgrade-browser",
            b"GET /ws?token=ab%2Bc%2F%3D HTTP/1.1\r\nHost: localhost:7700\r\nConnection: Upgrade\r\nPragma: no-cache\r\n\
              Cache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0\r\nUpgrade: websocket\r\n\
              Origin: http://localhost:7700\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n\
              Accept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
              Sec-WebSocket-Protocol: tickforge.v1.json, tickforge.v1.bin\r\n\r\n"
                .to_vec(),
        ),
        ("upgrade-version-8", String::from_utf8_lossy(&upgrade_request(None)).replace(": 13", ": 8").into_bytes()),
        ("curl-metrics", b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:7700\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n".to_vec()),
        ("healthz-1.0", b"GET /healthz HTTP/1.0\r\n\r\n".to_vec()),
        ("head-page", b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("rooms", b"GET /rooms?game=arena HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".to_vec()),
        ("post-rooms", b"POST /rooms HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
        ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec()),
        ("partial", b"GET /app.js HTTP/1.1\r\nHost: x\r\nX-Long: aaaaaaaa".to_vec()),
        ("monitor-json", b"GET /monitor.json HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (
            "monitor-close",
            format!("POST /monitor/rooms/r1/close HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n")
                .into_bytes(),
        ),
        (
            "monitor-disconnect",
            format!(
                "POST /monitor/rooms/r1/players/2/disconnect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \
                 {ADMIN_TOKEN}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        ),
        ("monitor-no-token", b"POST /monitor/rooms/r1/close HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
    ];
    for (name, head) in &heads {
        out.push(("http_head", (*name).to_owned(), head.clone()));
        out.push(("http_answer", (*name).to_owned(), head.clone()));
    }

    // ws_frames: a selector byte (max message, piece sizes), then frames.
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    for (format, opcode) in [(Format::Bin, ws::wire::OPCODE_BINARY), (Format::Json, ws::wire::OPCODE_TEXT)] {
        let mut stream = vec![0x0e];
        for payload in client_messages(format) {
            stream.extend(client_frame(opcode, &payload, mask));
        }
        out.push(("ws_frames", format!("golden-{format:?}").to_lowercase(), stream));
    }
    let mut control = vec![0x05];
    control.extend(client_frame(0x9, b"ping", mask));
    control.extend(client_frame(0xa, b"", mask));
    // A fragmented text message with a ping between its fragments.
    let mut first = client_frame(0x1, b"{\"type\":", mask);
    first[0] &= 0x7f;
    control.extend(first);
    control.extend(client_frame(0x9, b"", mask));
    control.extend(client_frame(0x0, b"\"ack\",\"tick\":1}", mask));
    control.extend(client_frame(0x8, &[0x03, 0xe8, b'b', b'y', b'e'], mask));
    out.push(("ws_frames", "control-and-fragments".into(), control));
    let mut long = vec![0x03];
    long.extend(client_frame(0x2, &[0x5a; 300], mask));
    // A 70,000-byte frame's header (the 8-byte length form) and the
    // first bytes of its payload: the rest never comes.
    let big = client_frame(0x2, &[0xa5; 70_000], mask);
    long.extend_from_slice(&big[..14 + 64]);
    out.push(("ws_frames", "length-forms".into(), long));

    // connection: scripts.
    let framed = |format: Format| {
        let opcode = if format.is_binary() { ws::wire::OPCODE_BINARY } else { ws::wire::OPCODE_TEXT };
        client_messages(format).into_iter().map(move |p| client_frame(opcode, &p, mask))
    };
    for format in [Format::Bin, Format::Json] {
        let mut b = ScriptBuilder::new();
        let m = b.open(Some(format), true);
        b.request(m, 6, 0).send_all().request(m, 0, 0).send_all();
        for i in 0..20 {
            b.input(m, i, -i, (i & 1) as u8).passes(1);
        }
        b.request(m, 3, 0).send_all().request(m, 4, 1).send_all();
        out.push(("connection", format!("model-plays-{format:?}").to_lowercase(), b.build()));

        let mut b = ScriptBuilder::new();
        let h = b.open(Some(format), false);
        for frame in framed(format) {
            b.raw(h, &frame).send_all();
        }
        b.passes(5);
        out.push(("connection", format!("golden-raw-{format:?}").to_lowercase(), b.build()));
    }
    let mut b = ScriptBuilder::new();
    let m = b.open(Some(Format::Bin), true);
    let h = b.open(None, false);
    b.request(m, 1, 20).send_all();
    let mut join = Vec::new();
    codec::encode_client(
        Format::Json,
        &tickforge_protocol::message::ClientMsg::Req {
            id: tickforge_protocol::ids::RequestId(9),
            body: Request::JoinRoom { room_id: RoomId("r-0-1".into()), reservation: None },
        },
        &mut join,
    )
    .expect("a request has no input data");
    b.frame(h, ws::wire::OPCODE_TEXT, &join).passes(3);
    for i in 0..30 {
        b.input(m, 1, 1, 0).tick().send(m, 40 + i * 5).send(h, 9).advance(40);
    }
    b.frame(h, 0x9, b"are you there").frame(h, ws::wire::OPCODE_TEXT, b"{\"type\":\"nope\"}").passes(5);
    b.frame(h, 0x8, &[0x03, 0xe8]).passes(2).eof(h).passes(3);
    out.push(("connection", "model-and-hostile-share-a-room".into(), b.build()));
    let mut b = ScriptBuilder::new();
    let a = b.open(Some(Format::Bin), true);
    let w = b.open(Some(Format::Json), true);
    b.request(a, 11, 1).send_all().request(w, 8, a).send_all().passes(5);
    b.request(w, 9, a).request(a, 10, 7).request(w, 4, 3).send_all().passes(5);
    out.push(("connection", "options-watch-resume-game-message".into(), b.build()));
    let mut b = ScriptBuilder::new();
    let m = b.open(Some(Format::Json), true);
    b.request(m, 0, 0).send_all().passes(3).advance(16_000).advance(16_000).passes(2);
    out.push(("connection", "silent-until-keepalive".into(), b.build()));
    out.extend(super::token::seeds().into_iter().map(|(name, bytes)| ("token", name, bytes)));
    out
}

/// Seeds for the protocol crate's fuzz targets (`protocol/fuzz/seeds`),
/// `(target, name, bytes)`: every client message, and the messages real
/// connections of this server read (confirms, rejects, indications, full
/// and delta ticks, in both forms); values and arena's input data. Its
/// `session_ops` target reads structured input, which has no byte seeds.
#[must_use]
pub fn protocol_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use super::{run_on, Shard};
    let mut out = Vec::new();
    for format in [Format::Bin, Format::Json] {
        let target = if format.is_binary() { "decode_bin" } else { "decode_json" };
        let form = if format.is_binary() { "bin" } else { "json" };
        for (i, m) in client_messages(format).into_iter().enumerate() {
            out.push((target, format!("client-{form}-{i:02}"), m));
        }
    }
    // A session in each form: joins, plays, acks (full and delta ticks),
    // requests answered and refused, a player leaving.
    let mut shard = Shard::default();
    shard.record();
    let mut b = ScriptBuilder::new();
    let bin = b.open(Some(Format::Bin), true);
    let json = b.open(Some(Format::Json), true);
    b.request(bin, 6, 0).request(json, 6, 0).send_all();
    b.request(bin, 0, 0).request(json, 0, 0).send_all();
    for i in 0..4 {
        b.input(bin, i, 1, 1).input(json, -i, 0, 0).passes(1).ack(bin).ack(json);
    }
    b.request(bin, 4, 1).request(json, 5, 9).request(bin, 7, 0).request(json, 1, 200).send_all();
    b.request(bin, 8, 1).request(json, 10, 0).request(json, 3, 0).send_all().passes(2);
    run_on(&mut shard, &b.build());
    let mut seen = std::collections::HashSet::new();
    for (format, payload) in shard.recorded() {
        let target = if format.is_binary() { "decode_bin" } else { "decode_json" };
        let word = |debug: String| {
            debug.split(|c: char| !c.is_alphanumeric()).find(|w| !w.is_empty()).unwrap_or("").to_lowercase()
        };
        let kind = match codec::decode_server(*format, payload) {
            Ok(ServerMsg::Tick(t)) if t.baseline.is_some() => "tick-delta".to_owned(),
            Ok(ServerMsg::Tick(_)) => "tick-full".to_owned(),
            Ok(ServerMsg::Cfm { body, .. }) => format!("cfm-{}", word(format!("{body:?}"))),
            Ok(ServerMsg::Rej { code, .. }) => format!("rej-{}", word(format!("{code:?}"))),
            Ok(ServerMsg::Ind { body }) => format!("ind-{}", word(format!("{body:?}"))),
            Err(_) => continue,
        };
        if seen.insert((target, kind.clone())) {
            out.push((target, format!("server-{kind}"), payload.clone()));
        }
        // A tick's state blob for apply_delta (first byte 0: no baseline).
        if kind == "tick-full" && format.is_binary() && seen.insert(("apply_delta", kind.clone())) {
            let mut blob = vec![0];
            blob.extend_from_slice(payload);
            out.push(("apply_delta", "arena-full-tick-message".into(), blob));
        }
    }
    let values = [
        Value::Null,
        Value::Bool(true),
        Value::Int(-1_234_567),
        Value::Float(0.25),
        Value::String("ctf".into()),
        Value::Bytes(vec![0, 1, 254, 255]),
        Value::List(vec![Value::Int(1), Value::List(vec![Value::Null])]),
        {
            let mut m = ValueMap::new();
            m.0.insert("mode".into(), Value::String("ctf".into()));
            m.0.insert("rounds".into(), Value::Int(3));
            Value::Map(m.0)
        },
    ];
    for (i, v) in values.iter().enumerate() {
        let (mut bin, mut json) = (Vec::new(), Vec::new());
        v.write_bin(&mut bin);
        v.write_json(&mut json);
        out.push(("decode_value", format!("value-{i}-bin"), bin));
        out.push(("decode_value", format!("value-{i}-json"), json));
    }
    // decode_input: 3 fields (i8, i8, u8: arena's), then the data.
    let mut arena = vec![3, 1, 1, 0];
    arena.extend([100, 206, 1]);
    out.push(("decode_input", "arena-bin".into(), arena));
    let mut arena = vec![3, 1, 1, 0];
    arena.extend_from_slice(br#"{"move_x":100,"move_y":-50,"buttons":1}"#);
    out.push(("decode_input", "arena-json".into(), arena));
    out
}

#[cfg(test)]
mod tests {
    use super::super::{check, TARGETS};
    use super::*;

    #[test]
    fn every_seed_passes_its_targets_checks() {
        let seeds = seeds();
        for target in TARGETS {
            assert!(seeds.iter().any(|(t, _, _)| *t == target), "no seed for {target}");
        }
        for (target, name, bytes) in &seeds {
            check(target, bytes);
            let _ = name;
        }
    }

    /// The committed corpus (`server/fuzz/seeds`) holds every seed; run
    /// with `--ignored` to write them after changing [`seeds`].
    #[test]
    #[ignore = "writes server/fuzz/seeds and protocol/fuzz/seeds"]
    fn write_seed_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (dir, seeds) in [("fuzz/seeds", seeds()), ("../protocol/fuzz/seeds", protocol_seeds())] {
            for (target, name, bytes) in seeds {
                let dir = root.join(dir).join(target);
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
            }
        }
    }

    #[test]
    fn protocol_seeds_cover_their_targets() {
        let seeds = protocol_seeds();
        for target in ["decode_bin", "decode_json", "apply_delta", "decode_value", "decode_input"] {
            assert!(seeds.iter().any(|(t, _, _)| *t == target), "no seed for {target}");
        }
        for kind in ["server-tick-delta", "server-tick-full", "server-cfm-joined", "server-rej-"] {
            for target in ["decode_bin", "decode_json"] {
                assert!(
                    seeds.iter().any(|(t, name, _)| *t == target && name.starts_with(kind)),
                    "no {kind} seed for {target}: {:?}",
                    seeds.iter().map(|s| &s.1).collect::<Vec<_>>()
                );
            }
        }
    }
}
