//! The cross-language corpus of the JavaScript client (`clients/js`): the
//! Rust codec writes every message and value in both forms, and an arena
//! room runs a few hundred ticks for a binary and a JSON client with random
//! loss of ticks and of the clients' inputs and acks, recording every byte
//! each client received and sent and the state its `ClientSession` rebuilt
//! after each tick. The library's tests (`clients/js/test/corpus.test.js`)
//! read it and must decode and write the same bytes and rebuild the same
//! states, bit for bit; its benchmark decodes the same ticks.
//!
//! Written to `$CARGO_TARGET_TMPDIR/js-corpus/corpus.json` (or
//! `$TICKFORGE_CORPUS_DIR/corpus.json`); `scripts/js-test.sh` runs this
//! test before the library's.

use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use tickforge_protocol::codec::{self, Format, TickHeader};
use tickforge_protocol::delta;
use tickforge_protocol::ids::{EntityId, InputSeq, PlayerId, RequestId, RoomId, SessionId, Tick};
use tickforge_protocol::input::{InputField, InputSchema, InputValues};
use tickforge_protocol::message::{
    ClientMsg, Confirm, Indication, InputData, Joined, RejectCode, Request, RoomInfo, ServerMsg, Watching,
};
use tickforge_protocol::schema::{FieldDef, FieldType, Schema};
use tickforge_protocol::session::ClientSession;
use tickforge_protocol::snapshot::Snapshot;
use tickforge_protocol::testutil::{self, Rng};
use tickforge_protocol::value::{Value, ValueMap};
use tickforge_server::game::arena::Arena;
use tickforge_server::outbox::{Outbox, OutboxItem};
use tickforge_server::room::{Room, RoomConfig};

/// Random messages per variant, besides the fixed edge cases.
const RANDOM_PER_VARIANT: usize = 12;
/// Ticks the arena room runs.
const TICKS: u32 = 360;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the JSON form is UTF-8")
}

/// Both forms of a payload: hex for binary, the text for JSON.
fn payload(format: Format, bytes: &[u8]) -> String {
    match format {
        Format::Bin => hex(bytes),
        Format::Json => text(bytes),
    }
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

const STRINGS: &[&str] = &[
    "",
    "a",
    "arena",
    "r-0-12",
    "héllo wörld",
    "日本語のテキスト",
    "emoji 🎮🕹️",
    "quote \" and backslash \\",
    "control \u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}",
    "slash / and <tag> & 'apos'",
    "\u{2028}\u{2029}\u{feff}",
    "$bytes",
    "__proto__",
    "constructor",
    "\u{10ffff}\u{e000}\u{ffff}",
];

fn string(rng: &mut Rng) -> String {
    match rng.below(8) {
        // Long enough for a three-byte length varint (251 and more bytes).
        0 => "x".repeat(240 + rng.below(40) as usize),
        1 => {
            let n = rng.below(12) as usize;
            (0..n).map(|_| char::from_u32(0x20 + rng.below(0x5e) as u32).unwrap_or('?')).collect()
        }
        _ => (*pick(rng, STRINGS)).to_owned(),
    }
}

fn u32_any(rng: &mut Rng) -> u32 {
    const EDGES: &[u32] = &[0, 1, 7, 250, 251, 255, 256, 65_535, 65_536, 1 << 24, u32::MAX - 1, u32::MAX];
    if rng.chance(0.5) {
        *pick(rng, EDGES)
    } else {
        rng.next_u64() as u32 >> rng.below(32)
    }
}

/// A u64 a JavaScript number holds exactly (ticks and times never pass 2^53).
fn u64_js(rng: &mut Rng) -> u64 {
    const EDGES: &[u64] =
        &[0, 1, 250, 251, 65_535, 65_536, 4_294_967_295, 4_294_967_296, 1_763_740_000_000_000, (1 << 53) - 1];
    if rng.chance(0.5) {
        *pick(rng, EDGES)
    } else {
        rng.next_u64() >> (11 + rng.below(53))
    }
}

const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    2.0,
    -3.0,
    0.1,
    0.5,
    1.5,
    -3.25,
    10.75,
    1.57,
    0.02,
    100.0,
    1e15,
    1e16,
    1e17,
    1e21,
    1e22,
    123_456_789.125,
    0.001,
    1e-5,
    1e-6,
    1e-7,
    1.5e300,
    1e300,
    1e-300,
    5e-324,
    f64::MAX,
    f64::MIN_POSITIVE,
    9_007_199_254_740_993.0,
    std::f64::consts::PI,
    -std::f64::consts::E,
];

fn float(rng: &mut Rng) -> f64 {
    if rng.chance(0.6) {
        return *pick(rng, FLOATS);
    }
    loop {
        let f = f64::from_bits(rng.next_u64());
        if f.is_finite() {
            return f;
        }
    }
}

fn int(rng: &mut Rng) -> i64 {
    const EDGES: &[i64] = &[
        0,
        1,
        -1,
        63,
        -64,
        125,
        126,
        300,
        -300,
        32_767,
        -32_768,
        1 << 31,
        -(1 << 31),
        (1 << 53) - 1,
        -((1 << 53) - 1),
        1 << 53,
        (1 << 53) + 1,
        -((1 << 53) + 1),
        i64::MAX,
        i64::MIN,
    ];
    if rng.chance(0.5) {
        *pick(rng, EDGES)
    } else {
        (rng.next_u64() as i64) >> rng.below(64)
    }
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    let top = if depth >= 4 { 6 } else { 8 };
    match rng.below(top) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(0.5)),
        2 => Value::Int(int(rng)),
        3 => Value::Float(float(rng)),
        4 => Value::String(string(rng)),
        5 => {
            let len = if rng.chance(0.1) { 300 } else { 9 };
            Value::Bytes((0..rng.below(len)).map(|_| rng.next_u64() as u8).collect())
        }
        6 => Value::List((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => Value::Map((0..rng.below(4)).map(|_| (key(rng), value(rng, depth + 1))).collect()),
    }
}

fn key(rng: &mut Rng) -> String {
    loop {
        let k = string(rng);
        if k != "$bytes" {
            return k;
        }
    }
}

/// A random value within every bound.
fn checked_value(rng: &mut Rng) -> Value {
    loop {
        let v = value(rng, 0);
        if v.check().is_ok() {
            return v;
        }
    }
}

fn map(rng: &mut Rng) -> ValueMap {
    loop {
        let m: ValueMap = (0..rng.below(4)).map(|_| (key(rng), value(rng, 1))).collect::<BTreeMap<_, _>>().into();
        if m.check().is_ok() {
            return m;
        }
    }
}

fn opt<T>(rng: &mut Rng, f: impl FnOnce(&mut Rng) -> T) -> Option<T> {
    rng.chance(0.5).then(|| f(rng))
}

fn field_type(rng: &mut Rng) -> FieldType {
    match rng.below(6) {
        0 => FieldType::U8,
        1 => FieldType::U16,
        2 => FieldType::I16,
        3 => FieldType::I32,
        4 => FieldType::I8,
        _ => FieldType::Fixed(*pick(rng, &[1, 10, 16, 100, 1000, 65_536, u32::MAX])),
    }
}

/// A valid random entity schema.
fn schema(rng: &mut Rng) -> Schema {
    let kinds = (0..1 + rng.below(5))
        .map(|i| format!("kind-{i}-{}", string(rng).chars().take(4).collect::<String>()))
        .collect();
    let n = rng.below(13) as usize;
    let mut fields: Vec<FieldDef> =
        (0..n).map(|i| FieldDef { name: format!("f{i}"), ty: field_type(rng), integrates: None }).collect();
    // Pair fixed fields of one scale: the first integrates the second.
    for i in 0..n {
        for j in 0..n {
            if i != j && rng.chance(0.3) {
                if let (FieldType::Fixed(a), FieldType::Fixed(b)) = (fields[i].ty, fields[j].ty) {
                    if a == b && fields[i].integrates.is_none() {
                        fields[i].integrates = Some(j as u8);
                    }
                }
            }
        }
    }
    let s = Schema { kinds, fields };
    s.validate().expect("a valid schema");
    s
}

fn input_schema(rng: &mut Rng) -> InputSchema {
    let n = rng.below(17) as usize;
    InputSchema { fields: (0..n).map(|i| InputField { name: format!("in{i}"), ty: field_type(rng) }).collect() }
}

fn room_info(rng: &mut Rng) -> RoomInfo {
    RoomInfo {
        room_id: RoomId(string(rng)),
        game: string(rng),
        players: u32_any(rng),
        max_players: u32_any(rng),
        tick_hz: u32_any(rng),
        spectators: u32_any(rng),
        metadata: map(rng),
    }
}

fn request(rng: &mut Rng, variant: usize) -> Request {
    match variant {
        0 => Request::Hello { token: opt(rng, string), client: opt(rng, string) },
        1 => Request::ListRooms { game: opt(rng, string), filter: opt(rng, map) },
        2 => Request::CreateRoom {
            game: string(rng),
            max_players: opt(rng, u32_any),
            tick_hz: opt(rng, u32_any),
            private: rng.chance(0.5),
            options: opt(rng, map),
        },
        3 => Request::JoinRoom { room_id: RoomId(string(rng)), reservation: opt(rng, string) },
        4 => Request::JoinOrCreate { game: string(rng), options: opt(rng, map) },
        5 => Request::LeaveRoom,
        6 => Request::Ping { client_time_us: u64_js(rng) },
        7 => Request::Resume { room_id: RoomId(string(rng)), resume_token: string(rng) },
        8 => Request::WatchRoom { room_id: RoomId(string(rng)) },
        _ => Request::GameMessage { name: string(rng), data: checked_value(rng) },
    }
}

fn joined(rng: &mut Rng) -> Joined {
    Joined {
        room_id: RoomId(string(rng)),
        game: string(rng),
        player_id: PlayerId(u32_any(rng)),
        entity_id: EntityId(u32_any(rng)),
        tick_hz: u32_any(rng),
        max_players: u32_any(rng),
        resume_token: string(rng),
        schema: schema(rng),
        input_schema: input_schema(rng),
    }
}

fn confirm(rng: &mut Rng, variant: usize) -> Confirm {
    match variant {
        0 => Confirm::Welcome {
            session_id: SessionId(string(rng)),
            server_version: string(rng),
            user_id: opt(rng, string),
        },
        1 => Confirm::RoomList { rooms: (0..rng.below(4)).map(|_| room_info(rng)).collect() },
        2 => Confirm::Joined(joined(rng)),
        3 => Confirm::Left { room_id: RoomId(string(rng)) },
        4 => Confirm::Pong { client_time_us: u64_js(rng), server_time_us: u64_js(rng) },
        5 => Confirm::Watching(Watching {
            room_id: RoomId(string(rng)),
            game: string(rng),
            tick_hz: u32_any(rng),
            schema: schema(rng),
            input_schema: input_schema(rng),
        }),
        6 => Confirm::GameReply { data: checked_value(rng) },
        _ => Confirm::Redirect { url: string(rng), room_id: RoomId(string(rng)), reservation: string(rng) },
    }
}

fn code(rng: &mut Rng) -> RejectCode {
    *pick(rng, &RejectCode::ALL)
}

fn indication(rng: &mut Rng, variant: usize) -> Indication {
    match variant {
        0 => Indication::PlayerJoined {
            player_id: PlayerId(u32_any(rng)),
            user_id: opt(rng, string),
            name: opt(rng, string),
        },
        1 => Indication::PlayerLeft { player_id: PlayerId(u32_any(rng)), reason: string(rng) },
        2 => Indication::RoomClosing { reason: string(rng) },
        3 => Indication::Error { code: code(rng), reason: string(rng) },
        4 => Indication::PlayerDisconnected { player_id: PlayerId(u32_any(rng)) },
        5 => Indication::PlayerReconnected { player_id: PlayerId(u32_any(rng)) },
        _ => Indication::GameEvent { name: string(rng), data: checked_value(rng) },
    }
}

/// Random input values within the schema's types.
fn input_values(rng: &mut Rng, schema: &InputSchema) -> InputValues {
    let values: Vec<i32> = schema
        .fields
        .iter()
        .map(|f| {
            let (lo, hi) = f.ty.range();
            match rng.below(4) {
                0 => lo,
                1 => hi,
                2 => 0,
                _ => (i64::from(lo) + rng.below((i64::from(hi) - i64::from(lo) + 1) as u64) as i64) as i32,
            }
        })
        .collect();
    InputValues::from_slice(&values).expect("at most 16 fields")
}

fn field_type_json(ty: FieldType) -> Json {
    serde_json::to_value(ty).expect("a field type serializes")
}

/// One message in both forms.
fn both(dir: &str, bin: &[u8], json: &[u8]) -> Json {
    json!({ "dir": dir, "bin": hex(bin), "json": text(json) })
}

fn server_pair(msg: &ServerMsg) -> Json {
    let (mut bin, mut text) = (Vec::new(), Vec::new());
    codec::encode_server(Format::Bin, msg, &mut bin);
    codec::encode_server(Format::Json, msg, &mut text);
    both("server", &bin, &text)
}

fn client_pair(msg: &ClientMsg) -> Json {
    let (mut bin, mut text) = (Vec::new(), Vec::new());
    codec::encode_client(Format::Bin, msg, &mut bin).expect("not an input");
    codec::encode_client(Format::Json, msg, &mut text).expect("not an input");
    both("client", &bin, &text)
}

/// Every message variant in both forms: fixed and random cases.
fn messages(rng: &mut Rng) -> Vec<Json> {
    let mut out = Vec::new();
    for _ in 0..RANDOM_PER_VARIANT {
        for variant in 0..Request::NAMES.len() {
            out.push(client_pair(&ClientMsg::Req { id: RequestId(u32_any(rng)), body: request(rng, variant) }));
        }
        out.push(client_pair(&ClientMsg::Ack { tick: Tick(u64_js(rng)) }));
        // Inputs: written from values with a schema, in both forms.
        let schema = if rng.chance(0.3) { InputData::schema().clone() } else { input_schema(rng) };
        let values = input_values(rng, &schema);
        let (seq, ack) = (InputSeq(u32_any(rng)), opt(rng, |r| Tick(u64_js(r))));
        let mut forms = Vec::new();
        for format in Format::ALL {
            let data = schema.encode(format, &values).expect("values in range");
            let mut bytes = Vec::new();
            codec::encode_client(format, &ClientMsg::Input { seq, ack, data }, &mut bytes).expect("same form");
            forms.push(bytes);
        }
        let fields: Vec<Json> =
            schema.fields.iter().map(|f| json!({ "name": f.name, "type": field_type_json(f.ty) })).collect();
        let mut entry = both("client", &forms[0], &forms[1]);
        entry["input"] = json!({ "schema": { "fields": fields }, "seq": seq.0, "ack": ack.map(|t| t.0), "values": values.as_slice() });
        out.push(entry);
        for variant in 0..8 {
            out.push(server_pair(&ServerMsg::Cfm { id: RequestId(u32_any(rng)), body: confirm(rng, variant) }));
        }
        out.push(server_pair(&ServerMsg::Rej { id: RequestId(u32_any(rng)), code: code(rng), reason: string(rng) }));
        for variant in 0..7 {
            out.push(server_pair(&ServerMsg::Ind { body: indication(rng, variant) }));
        }
    }
    out
}

/// Random values in both forms.
fn values(rng: &mut Rng) -> Vec<Json> {
    let mut out: Vec<Json> = FLOATS
        .iter()
        .map(|f| Value::Float(*f))
        // Bytes as large as JSON allows: 11 + 4080 + 2 characters.
        .chain([Value::Int(i64::MIN), Value::Int(i64::MAX), Value::Bytes(vec![7; 3060])])
        .chain((0..300).map(|_| checked_value(rng)))
        .map(|v| {
            let (mut bin, mut text) = (Vec::new(), Vec::new());
            v.write_bin(&mut bin);
            v.write_json(&mut text);
            json!({ "bin": hex(&bin), "json": self::text(&text) })
        })
        .collect();
    out.truncate(400);
    out
}

fn schema_json(schema: &Schema) -> Json {
    serde_json::to_value(schema).expect("a schema serializes")
}

fn rows(snapshot: &Snapshot, fields: usize) -> Json {
    snapshot
        .entities
        .iter()
        .map(|e| {
            let mut row = vec![json!(e.id.0), json!(e.kind)];
            row.extend(e.values[..fields].iter().map(|v| json!(v)));
            Json::Array(row)
        })
        .collect()
}

/// One observed client of the arena room.
struct Observed {
    format: Format,
    outbox: Rc<Outbox>,
    session: ClientSession,
    player: PlayerId,
    steps: Vec<Json>,
    joined: Json,
}

/// WORKLOAD.md's stick for bot `index` at tick `t`.
fn bot_input(index: usize, t: u32) -> InputData {
    let t_s = f64::from(t) / 30.0;
    let angle = (t_s / 4.0 + index as f64 * 0.37) * std::f64::consts::TAU;
    InputData {
        move_x: (angle.cos() * 127.0).round() as i8,
        move_y: (angle.sin() * 127.0).round() as i8,
        buttons: u8::from((t_s + index as f64 * 0.25) % 2.0 < 1.0 / 30.0),
    }
}

/// An arena room with bots and one binary and one JSON observed client;
/// ticks, inputs and acks are lost at random.
fn arena_sessions(rng: &mut Rng) -> Vec<Json> {
    let hz = 30;
    let mut room = Room::new(RoomId("r-0-1".into()), Arc::new(Arena::default()), RoomConfig::new(hz, 12), 0x5eed)
        .expect("arena takes any options");
    let mut bots: Vec<(PlayerId, Rc<Outbox>)> = Vec::new();
    let join_bot = |room: &mut Room, bots: &mut Vec<(PlayerId, Rc<Outbox>)>| {
        let outbox = Outbox::new(Format::Bin, 1024);
        let joined = room.join(outbox.clone(), None).expect("a free seat");
        bots.push((joined.player_id, outbox));
    };
    for _ in 0..4 {
        join_bot(&mut room, &mut bots);
    }
    let mut observed: Vec<Observed> = Format::ALL
        .into_iter()
        .map(|format| {
            let outbox = Outbox::new(format, 1024);
            let joined = room.join(outbox.clone(), None).expect("a free seat");
            let msg = ServerMsg::Cfm { id: RequestId(1), body: Confirm::Joined(joined.clone()) };
            let mut bytes = Vec::new();
            codec::encode_server(format, &msg, &mut bytes);
            let mut session = ClientSession::new(format);
            session.handle_message(&bytes).expect("joined decodes");
            while session.poll_event().is_some() {}
            Observed {
                format,
                outbox,
                session,
                player: joined.player_id,
                steps: Vec::new(),
                joined: json!(payload(format, &bytes)),
            }
        })
        .collect();
    let stick = InputData::schema();
    for t in 1..=TICKS {
        // Bots: an input each tick and a perfect ack; one leaves, one joins.
        for (i, (id, outbox)) in bots.iter().enumerate() {
            room.input(*id, InputSeq(t), Some(room.current_tick()), bot_input(i, t));
            while outbox.try_next().is_some() {}
        }
        if t == 120 {
            let (id, _) = bots.remove(1);
            room.leave(id, tickforge_server::game::LeaveReason::Left);
        }
        if t == 200 {
            join_bot(&mut room, &mut bots);
        }
        // Observed clients: an input (70 %) or an ack, each lost at 25 %.
        for o in &mut observed {
            let mut bytes = Vec::new();
            let step = if rng.chance(0.7) {
                let values = input_values(rng, stick);
                let seq = o.session.input_values(&values, &mut bytes).expect("values in range");
                json!({ "send": payload(o.format, &bytes), "input": values.as_slice(), "seq": seq.0 })
            } else if o.session.ack(&mut bytes).is_some() {
                json!({ "send": payload(o.format, &bytes), "ack": true })
            } else {
                continue;
            };
            let lost = rng.chance(0.25);
            let mut step = step;
            step["lost"] = json!(lost);
            o.steps.push(step);
            if !lost {
                match codec::decode_client(o.format, &bytes, codec::DEFAULT_MAX_MESSAGE).expect("own message decodes") {
                    ClientMsg::Input { seq, ack, data } => {
                        room.input_raw(o.player, seq, ack, &data).expect("arena reads it");
                    }
                    ClientMsg::Ack { tick } => room.ack(o.player, tick),
                    ClientMsg::Req { .. } => unreachable!("no requests here"),
                }
            }
        }
        room.tick(1_763_740_000_000_000 + u64::from(t) * 33_333);
        for o in &mut observed {
            let fields = o.session.joined().expect("in the room").schema.fields.len();
            while let Some(item) = o.outbox.try_next() {
                let (bytes, is_tick) = match item {
                    OutboxItem::Control(b) => (b, false),
                    OutboxItem::Tick(b) => (b, true),
                };
                if is_tick && rng.chance(0.15) {
                    continue; // lost on the way
                }
                o.session.handle_message(&bytes).expect("the room's messages apply");
                while o.session.poll_event().is_some() {}
                let mut step = json!({ "recv": payload(o.format, &bytes) });
                if is_tick {
                    let state = o.session.state().expect("a state");
                    step["tick"] = json!(state.tick.0);
                    step["state"] = rows(state, fields);
                    step["baselines"] = o.session.baselines().map(|t| t.0).collect();
                }
                o.steps.push(step);
            }
        }
    }
    let schema = room_schema();
    observed
        .into_iter()
        .map(|o| {
            json!({
                "format": o.format.subprotocol(),
                "tick_hz": hz,
                "schema": schema_json(&schema),
                "joined": o.joined,
                "steps": o.steps,
            })
        })
        .collect()
}

fn room_schema() -> Schema {
    use tickforge_server::game::Game as _;
    Arena::default().schema().clone()
}

/// The criterion delta bench's input (`benches/benches/delta.rs`, 32
/// entities) and its tick message, for the JavaScript benchmark.
fn bench_pair() -> Json {
    let (n, hz) = (32usize, 30);
    let mut rng = Rng::new(n as u64);
    let a = testutil::snapshot(&mut rng, Tick(100), n);
    let mut next = n as u32;
    let b = testutil::evolve(&mut rng, &a, hz, &mut next);
    let schema = testutil::schema();
    let mut blob = Vec::new();
    delta::bin::encode(&schema, hz, Some(&a), &b, &mut blob);
    let mut text = Vec::new();
    delta::json::write(&schema, &delta::diff(&schema, Some(&a), &b), &mut text);
    let header = TickHeader {
        tick: b.tick,
        server_time_us: 1_763_740_000_000_000,
        baseline: Some(a.tick),
        input_seq: InputSeq(12),
    };
    let (mut bin_msg, mut json_msg) = (Vec::new(), Vec::new());
    codec::encode_tick(Format::Bin, &header, &blob, &mut bin_msg);
    codec::encode_tick(Format::Json, &header, &text, &mut json_msg);
    json!({
        "schema": schema_json(&schema),
        "tick_hz": hz,
        "base_tick": a.tick.0,
        "base": rows(&a, schema.fields.len()),
        "tick": b.tick.0,
        "state": rows(&b, schema.fields.len()),
        "bin": hex(&bin_msg),
        "json": self::text(&json_msg),
    })
}

#[test]
fn writes_the_javascript_clients_corpus() {
    let mut rng = Rng::new(0x7ec_f0e6);
    let corpus = json!({
        "version": 1,
        "messages": messages(&mut rng),
        "values": values(&mut rng),
        "sessions": arena_sessions(&mut rng),
        "bench": bench_pair(),
    });
    let dir = std::env::var_os("TICKFORGE_CORPUS_DIR")
        .map_or_else(|| std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-corpus"), Into::into);
    std::fs::create_dir_all(&dir).expect("the corpus directory can be made");
    let path = dir.join("corpus.json");
    std::fs::write(&path, serde_json::to_vec(&corpus).expect("the corpus serializes")).expect("the corpus is written");
    let sessions = corpus["sessions"].as_array().map_or(0, Vec::len);
    assert_eq!(sessions, 2, "a binary and a JSON client");
    for s in corpus["sessions"].as_array().into_iter().flatten() {
        let ticks = s["steps"].as_array().into_iter().flatten().filter(|st| st.get("tick").is_some()).count();
        assert!(ticks > (TICKS as usize) * 3 / 4, "{} of {TICKS} ticks delivered", ticks);
    }
    eprintln!("corpus: {}", path.display());
}
