//! Golden tests: literal `tickforge.v1.bin` bytes and `tickforge.v1.json`
//! text for every message and variant, every value type, input data and
//! state blob, the same examples PROTOCOL.md prints.
//!
//! The bytes were derived by hand from bincode 2's standard configuration
//! (little endian, varints: below 251 one byte, `0xfb` + u16, `0xfc` + u32,
//! `0xfd` + u64; zigzag for signed integers wider than 8 bits; `i8`/`u8`
//! one raw byte; enum = variant index as a varint u32, then its fields;
//! `Option` = 0 or 1, then the value; `String`/`Vec` = varint length, then
//! the items), not copied from the encoder's output. Each case asserts
//! `encode == literal` and `decode(literal) == value` in both forms.

use tickforge_protocol::codec::{self, Format, TickHeader, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::delta;
use tickforge_protocol::ids::{EntityId, InputSeq, PlayerId, RequestId, RoomId, SessionId, Tick};
use tickforge_protocol::input::{InputSchema, InputValues};
use tickforge_protocol::message::{
    ClientMsg, Confirm, Indication, InputData, Joined, RejectCode, Request, RoomInfo, ServerMsg, StateBytes, TickMsg,
    Watching,
};
use tickforge_protocol::schema::{FieldDef, FieldType, Schema};
use tickforge_protocol::snapshot::{Entity, Snapshot};
use tickforge_protocol::value::{Value, ValueMap};

/// Concatenates literal byte pieces (numbers and ASCII text side by side).
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[track_caller]
fn client_case(msg: &ClientMsg, bin: &[u8], json: &str) {
    client_case_per_form(msg, bin, msg, json);
}

/// A client message whose two forms differ as values (an input's data is
/// held per form).
#[track_caller]
fn client_case_per_form(bin_msg: &ClientMsg, bin: &[u8], json_msg: &ClientMsg, json: &str) {
    let mut out = Vec::new();
    codec::encode_client(Format::Bin, bin_msg, &mut out).unwrap();
    assert_eq!(out, bin, "bin encoding of {bin_msg:?}");
    assert_eq!(codec::decode_client(Format::Bin, bin, DEFAULT_MAX_MESSAGE).as_ref(), Ok(bin_msg), "bin decoding");
    out.clear();
    codec::encode_client(Format::Json, json_msg, &mut out).unwrap();
    assert_eq!(std::str::from_utf8(&out).unwrap(), json, "json encoding of {json_msg:?}");
    assert_eq!(codec::decode_client(Format::Json, json.as_bytes(), DEFAULT_MAX_MESSAGE).as_ref(), Ok(json_msg));
}

/// A map value from literal pairs.
fn map<const N: usize>(pairs: [(&str, Value); N]) -> ValueMap {
    pairs.into_iter().collect()
}

#[track_caller]
fn server_case(msg: &ServerMsg, bin: &[u8], json: &str) {
    let mut out = Vec::new();
    codec::encode_server(Format::Bin, msg, &mut out);
    assert_eq!(out, bin, "bin encoding of {msg:?}");
    assert_eq!(codec::decode_server(Format::Bin, bin).as_ref(), Ok(msg), "bin decoding");
    out.clear();
    codec::encode_server(Format::Json, msg, &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), json, "json encoding of {msg:?}");
    assert_eq!(codec::decode_server(Format::Json, json.as_bytes()).as_ref(), Ok(msg), "json decoding");
}

fn req(id: u32, body: Request) -> ClientMsg {
    ClientMsg::Req { id: RequestId(id), body }
}

fn cfm(id: u32, body: Confirm) -> ServerMsg {
    ServerMsg::Cfm { id: RequestId(id), body }
}

fn ind(body: Indication) -> ServerMsg {
    ServerMsg::Ind { body }
}

/// 1763740000000000 µs (2025-11-21T15:46:40Z) as bincode's u64 varint.
const T0: [u8; 9] = [0xfd, 0x00, 0x18, 0x2d, 0xb8, 0x1c, 0x44, 0x06, 0x00];
/// T0 + 250 µs.
const T0_250: [u8; 9] = [0xfd, 0xfa, 0x18, 0x2d, 0xb8, 0x1c, 0x44, 0x06, 0x00];
/// T0 + 41.1 s (1233 ticks at 30 Hz).
const T1234: [u8; 9] = [0xfd, 0xe0, 0x3a, 0xa0, 0xba, 0x1c, 0x44, 0x06, 0x00];

// ---------------------------------------------------------------- client

#[test]
fn req_hello() {
    client_case(
        &req(1, Request::Hello { token: Some("s3cret".into()), client: Some("bot/1".into()) }),
        // req=0, id=1, hello=0, Some, len 6 "s3cret", Some, len 5 "bot/1"
        &cat(&[&[0, 1, 0, 1, 6], b"s3cret", &[1, 5], b"bot/1"]),
        r#"{"type":"req","id":1,"body":{"type":"hello","token":"s3cret","client":"bot/1"}}"#,
    );
    client_case(
        &req(1, Request::Hello { token: None, client: None }),
        // req=0, id=1, hello=0, None, None
        &[0, 1, 0, 0, 0],
        r#"{"type":"req","id":1,"body":{"type":"hello"}}"#,
    );
}

#[test]
fn req_list_rooms() {
    client_case(
        &req(2, Request::ListRooms { game: Some("arena".into()), filter: None }),
        // req=0, id=2, list_rooms=1, Some, len 5 "arena", filter None
        &cat(&[&[0, 2, 1, 1, 5], b"arena", &[0]]),
        r#"{"type":"req","id":2,"body":{"type":"list_rooms","game":"arena"}}"#,
    );
    client_case(
        &req(2, Request::ListRooms { game: None, filter: None }),
        &[0, 2, 1, 0, 0],
        r#"{"type":"req","id":2,"body":{"type":"list_rooms"}}"#,
    );
    client_case(
        &req(2, Request::ListRooms { game: None, filter: Some(map([("mode", "ctf".into())])) }),
        // game None, filter Some: map=7, 1 entry, "mode", string=4, "ctf"
        &cat(&[&[0, 2, 1, 0, 1, 7, 1, 4], b"mode", &[4, 3], b"ctf"]),
        r#"{"type":"req","id":2,"body":{"type":"list_rooms","filter":{"mode":"ctf"}}}"#,
    );
}

#[test]
fn req_create_room() {
    client_case(
        &req(
            3,
            Request::CreateRoom {
                game: "arena".into(),
                max_players: Some(8),
                tick_hz: None,
                private: true,
                options: None,
            },
        ),
        // req=0, id=3, create_room=2, len 5 "arena", Some 8, None, true, options None
        &cat(&[&[0, 3, 2, 5], b"arena", &[1, 8, 0, 1, 0]]),
        r#"{"type":"req","id":3,"body":{"type":"create_room","game":"arena","max_players":8,"private":true}}"#,
    );
    client_case(
        &req(
            300,
            Request::CreateRoom {
                game: "arena".into(),
                max_players: None,
                tick_hz: Some(60),
                private: false,
                options: None,
            },
        ),
        // req=0, id=300 (0xfb + u16 LE 0x012c), create_room=2, "arena", None, Some 60, false, None
        &cat(&[&[0, 0xfb, 0x2c, 0x01, 2, 5], b"arena", &[0, 1, 60, 0, 0]]),
        r#"{"type":"req","id":300,"body":{"type":"create_room","game":"arena","tick_hz":60,"private":false}}"#,
    );
    client_case(
        &req(
            5,
            Request::CreateRoom {
                game: "arena".into(),
                max_players: None,
                tick_hz: None,
                private: false,
                options: Some(map([("map", "dust".into()), ("rounds", Value::Int(3))])),
            },
        ),
        // ..., None, None, false, Some: map=7, 2 entries (keys ascending):
        // "map" -> string "dust"; "rounds" -> integer=2, 3 zigzag 6
        &cat(&[&[0, 5, 2, 5], b"arena", &[0, 0, 0, 1, 7, 2, 3], b"map", &[4, 4], b"dust", &[6], b"rounds", &[2, 6]]),
        r#"{"type":"req","id":5,"body":{"type":"create_room","game":"arena","private":false,"options":{"map":"dust","rounds":3}}}"#,
    );
}

#[test]
fn req_join_room() {
    client_case(
        &req(4, Request::JoinRoom { room_id: RoomId("r-1-12".into()), reservation: None }),
        // req=0, id=4, join_room=3, len 6 "r-1-12", reservation None
        &cat(&[&[0, 4, 3, 6], b"r-1-12", &[0]]),
        r#"{"type":"req","id":4,"body":{"type":"join_room","room_id":"r-1-12"}}"#,
    );
    client_case(
        &req(4, Request::JoinRoom { room_id: RoomId("r-0-3".into()), reservation: Some(RESERVATION.into()) }),
        // ..., Some, len 10 "rsv-5c1e9a"
        &cat(&[&[0, 4, 3, 5], b"r-0-3", &[1, 10], b"rsv-5c1e9a"]),
        r#"{"type":"req","id":4,"body":{"type":"join_room","room_id":"r-0-3","reservation":"rsv-5c1e9a"}}"#,
    );
}

const RESERVATION: &str = "rsv-5c1e9a";
/// 22 characters of base64url: 132 random bits.
const RESUME_TOKEN: &str = "kq3Jx9Lw2ZkT4bYp7mN0aQ";

#[test]
fn req_join_or_create() {
    client_case(
        &req(7, Request::JoinOrCreate { game: "arena".into(), options: None }),
        // req=0, id=7, join_or_create=4, len 5 "arena", options None
        &cat(&[&[0, 7, 4, 5], b"arena", &[0]]),
        r#"{"type":"req","id":7,"body":{"type":"join_or_create","game":"arena"}}"#,
    );
    client_case(
        &req(7, Request::JoinOrCreate { game: "arena".into(), options: Some(map([("mode", "duel".into())])) }),
        // ..., Some, map=7, 1 entry, "mode" -> string "duel"
        &cat(&[&[0, 7, 4, 5], b"arena", &[1, 7, 1, 4], b"mode", &[4, 4], b"duel"]),
        r#"{"type":"req","id":7,"body":{"type":"join_or_create","game":"arena","options":{"mode":"duel"}}}"#,
    );
}

#[test]
fn req_leave_room() {
    client_case(
        &req(8, Request::LeaveRoom),
        // req=0, id=8, leave_room=5
        &[0, 8, 5],
        r#"{"type":"req","id":8,"body":{"type":"leave_room"}}"#,
    );
}

#[test]
fn req_ping() {
    client_case(
        &req(9, Request::Ping { client_time_us: 1_763_740_000_000_000 }),
        // req=0, id=9, ping=6, 0xfd + u64 LE
        &cat(&[&[0, 9, 6], &T0]),
        r#"{"type":"req","id":9,"body":{"type":"ping","client_time_us":1763740000000000}}"#,
    );
}

#[test]
fn req_resume() {
    client_case(
        &req(10, Request::Resume { room_id: RoomId("r-1-12".into()), resume_token: RESUME_TOKEN.into() }),
        // req=0, id=10, resume=7, "r-1-12", len 22 token
        &cat(&[&[0, 10, 7, 6], b"r-1-12", &[22], RESUME_TOKEN.as_bytes()]),
        r#"{"type":"req","id":10,"body":{"type":"resume","room_id":"r-1-12","resume_token":"kq3Jx9Lw2ZkT4bYp7mN0aQ"}}"#,
    );
}

#[test]
fn req_watch_room() {
    client_case(
        &req(11, Request::WatchRoom { room_id: RoomId("r-1-12".into()) }),
        // req=0, id=11, watch_room=8, "r-1-12"
        &cat(&[&[0, 11, 8, 6], b"r-1-12"]),
        r#"{"type":"req","id":11,"body":{"type":"watch_room","room_id":"r-1-12"}}"#,
    );
}

#[test]
fn req_game_message() {
    client_case(
        &req(12, Request::GameMessage { name: "chat".into(), data: Value::from(map([("text", "gg".into())])) }),
        // req=0, id=12, game_message=9, len 4 "chat", map=7, 1 entry, "text" -> string "gg"
        &cat(&[&[0, 12, 9, 4], b"chat", &[7, 1, 4], b"text", &[4, 2], b"gg"]),
        r#"{"type":"req","id":12,"body":{"type":"game_message","name":"chat","data":{"text":"gg"}}}"#,
    );
}

/// An input message of `schema` in both forms: the data is encoded from
/// `values` per form, and decodes back to them.
#[track_caller]
fn input_case(seq: u32, ack: Option<u64>, schema: &InputSchema, values: &[i32], bin: &[u8], json: &str) {
    let values = InputValues::from_slice(values).unwrap();
    let msg = |format| ClientMsg::Input {
        seq: InputSeq(seq),
        ack: ack.map(Tick),
        data: schema.encode(format, &values).unwrap(),
    };
    client_case_per_form(&msg(Format::Bin), bin, &msg(Format::Json), json);
    for (format, bytes) in [(Format::Bin, bin), (Format::Json, json.as_bytes())] {
        let Ok(ClientMsg::Input { data, .. }) = codec::decode_client(format, bytes, DEFAULT_MAX_MESSAGE) else {
            panic!("{format:?}: not an input")
        };
        assert_eq!(schema.decode(&data), Ok(values), "{format:?}");
    }
}

/// Arena's input keeps the bytes it always had: three raw bytes.
#[test]
fn input_with_and_without_ack() {
    let arena = InputData::schema();
    input_case(
        12,
        Some(1234),
        arena,
        &[10, -5, 1],
        // input=1, seq=12, Some, tick 1234 (0xfb 0xd2 0x04), move_x 10, move_y -5 (i8: one byte 0xfb), buttons 1
        &[1, 12, 1, 0xfb, 0xd2, 0x04, 10, 0xfb, 1],
        r#"{"type":"input","seq":12,"ack":1234,"data":{"move_x":10,"move_y":-5,"buttons":1}}"#,
    );
    input_case(
        13,
        None,
        arena,
        &[-127, 127, 0],
        // input=1, seq=13, None, -127 = 0x81, 127 = 0x7f, 0
        &[1, 13, 0, 0x81, 0x7f, 0],
        r#"{"type":"input","seq":13,"data":{"move_x":-127,"move_y":127,"buttons":0}}"#,
    );
    // The stick struct writes the same data.
    let stick = InputData { move_x: 10, move_y: -5, buttons: InputData::FIRE };
    for format in Format::ALL {
        assert_eq!(
            Ok(stick.to_raw(format)),
            arena.encode(format, &InputValues::from_slice(&[10, -5, 1]).unwrap()),
            "{format:?}"
        );
    }
}

/// The input schema of PROTOCOL.md's example with every wider type.
fn vehicle_input() -> InputSchema {
    InputSchema::new([
        ("steer", FieldType::I16),
        ("throttle", FieldType::U8),
        ("aim", FieldType::Fixed(100)),
        ("item", FieldType::U16),
    ])
}

#[test]
fn input_of_wider_types() {
    input_case(
        3,
        None,
        &vehicle_input(),
        &[-300, 255, 157, 1000],
        // input=1, seq=3, None;
        // steer i16 -300: zigzag 599 = 0xfb + u16 LE 0x0257;
        // throttle u8 255: one raw byte;
        // aim fixed(100) 1.57: 157, zigzag 314 = 0xfb + 0x013a;
        // item u16 1000: 0xfb + 0x03e8
        &[1, 3, 0, 0xfb, 0x57, 0x02, 0xff, 0xfb, 0x3a, 0x01, 0xfb, 0xe8, 0x03],
        r#"{"type":"input","seq":3,"data":{"steer":-300,"throttle":255,"aim":1.57,"item":1000}}"#,
    );
    input_case(
        4,
        None,
        &vehicle_input(),
        &[-1, 0, 2, 250],
        &[1, 4, 0, 1, 0, 4, 250],
        r#"{"type":"input","seq":4,"data":{"steer":-1,"throttle":0,"aim":0.02,"item":250}}"#,
    );
}

#[test]
fn input_schemas() {
    let cases: [(InputSchema, Vec<u8>, &str); 2] = [
        (
            InputData::schema().clone(),
            // 3 fields: "move_x" i8=5, "move_y" i8=5, "buttons" u8=0
            cat(&[&[3, 6], b"move_x", &[5, 6], b"move_y", &[5, 7], b"buttons", &[0]]),
            r#"{"fields":[{"name":"move_x","type":"i8"},{"name":"move_y","type":"i8"},{"name":"buttons","type":"u8"}]}"#,
        ),
        (
            vehicle_input(),
            // "steer" i16=2, "throttle" u8=0, "aim" fixed=4 + scale 100, "item" u16=1
            cat(&[&[4, 5], b"steer", &[2, 8], b"throttle", &[0, 3], b"aim", &[4, 100, 4], b"item", &[1]]),
            r#"{"fields":[{"name":"steer","type":"i16"},{"name":"throttle","type":"u8"},{"name":"aim","type":{"fixed":100}},{"name":"item","type":"u16"}]}"#,
        ),
    ];
    for (schema, bin, json) in cases {
        assert_eq!(schema.validate(), Ok(()));
        assert_eq!(bincode::encode_to_vec(&schema, bincode::config::standard()).unwrap(), bin);
        assert_eq!(bincode::decode_from_slice(&bin, bincode::config::standard()).unwrap(), (schema.clone(), bin.len()));
        assert_eq!(serde_json::to_string(&schema).unwrap(), json);
        assert_eq!(serde_json::from_str::<InputSchema>(json).unwrap(), schema);
    }
}

#[test]
fn ack() {
    client_case(&ClientMsg::Ack { tick: Tick(1234) }, &[2, 0xfb, 0xd2, 0x04], r#"{"type":"ack","tick":1234}"#);
    // 100000 needs the 0xfc + u32 LE form.
    client_case(
        &ClientMsg::Ack { tick: Tick(100_000) },
        &[2, 0xfc, 0xa0, 0x86, 0x01, 0x00],
        r#"{"type":"ack","tick":100000}"#,
    );
}

// ---------------------------------------------------------------- server

#[test]
fn cfm_welcome() {
    let welcome = |user_id: Option<&str>| Confirm::Welcome {
        session_id: SessionId("s-9f2c".into()),
        server_version: "0.1.0".into(),
        user_id: user_id.map(Into::into),
    };
    server_case(
        &cfm(1, welcome(None)),
        // cfm=0, id=1, welcome=0, len 6 "s-9f2c", len 5 "0.1.0", user_id None
        &cat(&[&[0, 1, 0, 6], b"s-9f2c", &[5], b"0.1.0", &[0]]),
        r#"{"type":"cfm","id":1,"body":{"type":"welcome","session_id":"s-9f2c","server_version":"0.1.0"}}"#,
    );
    server_case(
        &cfm(1, welcome(Some("user-42"))),
        // ..., Some, len 7 "user-42"
        &cat(&[&[0, 1, 0, 6], b"s-9f2c", &[5], b"0.1.0", &[1, 7], b"user-42"]),
        r#"{"type":"cfm","id":1,"body":{"type":"welcome","session_id":"s-9f2c","server_version":"0.1.0","user_id":"user-42"}}"#,
    );
}

#[test]
fn cfm_room_list() {
    let room = RoomInfo {
        room_id: RoomId("r-1-12".into()),
        game: "arena".into(),
        players: 3,
        max_players: 8,
        tick_hz: 30,
        spectators: 1,
        metadata: map([("mode", "ctf".into())]),
    };
    server_case(
        &cfm(2, Confirm::RoomList { rooms: vec![room] }),
        // cfm=0, id=2, room_list=1, 1 room: "r-1-12", "arena", players 3, max 8, 30 Hz,
        // 1 spectator, metadata: map=7, 1 entry, "mode" -> string "ctf"
        &cat(&[&[0, 2, 1, 1, 6], b"r-1-12", &[5], b"arena", &[3, 8, 30, 1, 7, 1, 4], b"mode", &[4, 3], b"ctf"]),
        r#"{"type":"cfm","id":2,"body":{"type":"room_list","rooms":[{"room_id":"r-1-12","game":"arena","players":3,"max_players":8,"tick_hz":30,"spectators":1,"metadata":{"mode":"ctf"}}]}}"#,
    );
    server_case(
        &cfm(2, Confirm::RoomList { rooms: vec![] }),
        &[0, 2, 1, 0],
        r#"{"type":"cfm","id":2,"body":{"type":"room_list","rooms":[]}}"#,
    );
}

/// The arena schema, spelled out.
fn arena_schema() -> Schema {
    let f = |name: &str, ty, integrates| FieldDef { name: name.into(), ty, integrates };
    Schema {
        kinds: vec!["player".into(), "npc".into(), "projectile".into()],
        fields: vec![
            f("x", FieldType::Fixed(16), Some(2)),
            f("y", FieldType::Fixed(16), Some(3)),
            f("vx", FieldType::Fixed(16), None),
            f("vy", FieldType::Fixed(16), None),
            f("hp", FieldType::U8, None),
            f("score", FieldType::U16, None),
        ],
    }
}

/// bincode of [`arena_schema`].
fn arena_schema_bin() -> Vec<u8> {
    cat(&[
        &[3, 6],
        b"player",
        &[3],
        b"npc",
        &[10],
        b"projectile",
        &[6],
        &[1],
        b"x",
        &[4, 16, 1, 2], // fixed=4, scale 16, Some(2)
        &[1],
        b"y",
        &[4, 16, 1, 3],
        &[2],
        b"vx",
        &[4, 16, 0], // fixed 16, None
        &[2],
        b"vy",
        &[4, 16, 0],
        &[2],
        b"hp",
        &[0, 0], // u8=0, None
        &[5],
        b"score",
        &[1, 0], // u16=1, None
    ])
}

/// bincode of arena's input schema.
fn arena_input_bin() -> Vec<u8> {
    cat(&[&[3, 6], b"move_x", &[5, 6], b"move_y", &[5, 7], b"buttons", &[0]])
}

const ARENA_INPUT_JSON: &str =
    r#"{"fields":[{"name":"move_x","type":"i8"},{"name":"move_y","type":"i8"},{"name":"buttons","type":"u8"}]}"#;

const ARENA_SCHEMA_JSON: &str = r#"{"kinds":["player","npc","projectile"],"fields":[{"name":"x","type":{"fixed":16},"integrates":2},{"name":"y","type":{"fixed":16},"integrates":3},{"name":"vx","type":{"fixed":16}},{"name":"vy","type":{"fixed":16}},{"name":"hp","type":"u8"},{"name":"score","type":"u16"}]}"#;

#[test]
fn cfm_joined() {
    let joined = Joined {
        room_id: RoomId("r-1-12".into()),
        game: "arena".into(),
        player_id: PlayerId(3),
        entity_id: EntityId(17),
        tick_hz: 30,
        max_players: 8,
        resume_token: RESUME_TOKEN.into(),
        schema: arena_schema(),
        input_schema: InputData::schema().clone(),
    };
    // cfm=0, id=7, joined=2, "r-1-12", "arena", player 3, entity 17, 30 Hz, 8 seats,
    // len 22 resume token, schema, input schema
    let bin = cat(&[
        &[0, 7, 2, 6],
        b"r-1-12",
        &[5],
        b"arena",
        &[3, 17, 30, 8, 22],
        RESUME_TOKEN.as_bytes(),
        &arena_schema_bin(),
        &arena_input_bin(),
    ]);
    let json = format!(
        r#"{{"type":"cfm","id":7,"body":{{"type":"joined","room_id":"r-1-12","game":"arena","player_id":3,"entity_id":17,"tick_hz":30,"max_players":8,"resume_token":"{RESUME_TOKEN}","schema":{ARENA_SCHEMA_JSON},"input_schema":{ARENA_INPUT_JSON}}}}}"#
    );
    server_case(&cfm(7, Confirm::Joined(joined)), &bin, &json);
}

#[test]
fn cfm_watching() {
    let watching = Watching {
        room_id: RoomId("r-1-12".into()),
        game: "arena".into(),
        tick_hz: 30,
        schema: arena_schema(),
        input_schema: InputData::schema().clone(),
    };
    // cfm=0, id=11, watching=5, "r-1-12", "arena", 30 Hz, schema, input schema
    let bin = cat(&[&[0, 11, 5, 6], b"r-1-12", &[5], b"arena", &[30], &arena_schema_bin(), &arena_input_bin()]);
    let json = format!(
        r#"{{"type":"cfm","id":11,"body":{{"type":"watching","room_id":"r-1-12","game":"arena","tick_hz":30,"schema":{ARENA_SCHEMA_JSON},"input_schema":{ARENA_INPUT_JSON}}}}}"#
    );
    server_case(&cfm(11, Confirm::Watching(watching)), &bin, &json);
}

#[test]
fn cfm_game_reply() {
    server_case(
        &cfm(12, Confirm::GameReply { data: Value::from(map([("ok", true.into())])) }),
        // cfm=0, id=12, game_reply=6, map=7, 1 entry, "ok" -> bool=1, true
        &cat(&[&[0, 12, 6, 7, 1, 2], b"ok", &[1, 1]]),
        r#"{"type":"cfm","id":12,"body":{"type":"game_reply","data":{"ok":true}}}"#,
    );
}

#[test]
fn cfm_redirect() {
    server_case(
        &cfm(
            7,
            Confirm::Redirect {
                url: "wss://eu-2.example.com/ws".into(),
                room_id: RoomId("r-0-3".into()),
                reservation: RESERVATION.into(),
            },
        ),
        // cfm=0, id=7, redirect=7, len 25 url, len 5 "r-0-3", len 10 reservation
        &cat(&[&[0, 7, 7, 25], b"wss://eu-2.example.com/ws", &[5], b"r-0-3", &[10], b"rsv-5c1e9a"]),
        r#"{"type":"cfm","id":7,"body":{"type":"redirect","url":"wss://eu-2.example.com/ws","room_id":"r-0-3","reservation":"rsv-5c1e9a"}}"#,
    );
}

#[test]
fn field_types() {
    let cases: [(FieldType, &[u8], &str); 6] = [
        (FieldType::U8, &[0], r#""u8""#),
        (FieldType::U16, &[1], r#""u16""#),
        (FieldType::I16, &[2], r#""i16""#),
        (FieldType::I32, &[3], r#""i32""#),
        (FieldType::Fixed(1000), &[4, 0xfb, 0xe8, 0x03], r#"{"fixed":1000}"#),
        (FieldType::I8, &[5], r#""i8""#),
    ];
    for (ty, bin, json) in cases {
        assert_eq!(bincode::encode_to_vec(ty, bincode::config::standard()).unwrap(), bin, "{ty:?}");
        assert_eq!(bincode::decode_from_slice(bin, bincode::config::standard()).unwrap(), (ty, bin.len()));
        assert_eq!(serde_json::to_string(&ty).unwrap(), json);
        assert_eq!(serde_json::from_str::<FieldType>(json).unwrap(), ty);
    }
}

#[test]
fn cfm_left() {
    server_case(
        &cfm(8, Confirm::Left { room_id: RoomId("r-1-12".into()) }),
        // cfm=0, id=8, left=3, "r-1-12"
        &cat(&[&[0, 8, 3, 6], b"r-1-12"]),
        r#"{"type":"cfm","id":8,"body":{"type":"left","room_id":"r-1-12"}}"#,
    );
}

#[test]
fn cfm_pong() {
    server_case(
        &cfm(9, Confirm::Pong { client_time_us: 1_763_740_000_000_000, server_time_us: 1_763_740_000_000_250 }),
        // cfm=0, id=9, pong=4, two u64 varints
        &cat(&[&[0, 9, 4], &T0, &T0_250]),
        r#"{"type":"cfm","id":9,"body":{"type":"pong","client_time_us":1763740000000000,"server_time_us":1763740000000250}}"#,
    );
}

#[test]
fn rej() {
    server_case(
        &ServerMsg::Rej { id: RequestId(7), code: RejectCode::RoomFull, reason: "room r-12 has 8 of 8 players".into() },
        // rej=1, id=7, room_full=3, len 28, text
        &cat(&[&[1, 7, 3, 28], b"room r-12 has 8 of 8 players"]),
        r#"{"type":"rej","id":7,"code":"room_full","reason":"room r-12 has 8 of 8 players"}"#,
    );
}

#[test]
fn every_reject_code() {
    let names = [
        "bad_request",
        "unsupported",
        "not_found",
        "room_full",
        "already_in_room",
        "not_in_room",
        "unauthorized",
        "rate_limited",
        "overloaded",
        "internal",
        "refused",
    ];
    assert_eq!(RejectCode::ALL.len(), names.len());
    for (index, (code, name)) in RejectCode::ALL.into_iter().zip(names).enumerate() {
        assert_eq!(code.as_str(), name);
        // rej=1, id=1, the code's index, empty reason
        let bin = [1, 1, index as u8, 0];
        let json = format!(r#"{{"type":"rej","id":1,"code":"{name}","reason":""}}"#);
        server_case(&ServerMsg::Rej { id: RequestId(1), code, reason: String::new() }, &bin, &json);
    }
}

#[test]
fn ind_player_joined() {
    server_case(
        &ind(Indication::PlayerJoined { player_id: PlayerId(4), user_id: None, name: None }),
        // ind=2, player_joined=0, player 4, user_id None, name None
        &[2, 0, 4, 0, 0],
        r#"{"type":"ind","body":{"type":"player_joined","player_id":4}}"#,
    );
    server_case(
        &ind(Indication::PlayerJoined {
            player_id: PlayerId(4),
            user_id: Some("user-42".into()),
            name: Some("Ada".into()),
        }),
        // ..., Some "user-42", Some "Ada"
        &cat(&[&[2, 0, 4, 1, 7], b"user-42", &[1, 3], b"Ada"]),
        r#"{"type":"ind","body":{"type":"player_joined","player_id":4,"user_id":"user-42","name":"Ada"}}"#,
    );
}

#[test]
fn ind_player_disconnected_and_reconnected() {
    server_case(
        &ind(Indication::PlayerDisconnected { player_id: PlayerId(4) }),
        // ind=2, player_disconnected=4, player 4
        &[2, 4, 4],
        r#"{"type":"ind","body":{"type":"player_disconnected","player_id":4}}"#,
    );
    server_case(
        &ind(Indication::PlayerReconnected { player_id: PlayerId(4) }),
        // ind=2, player_reconnected=5, player 4
        &[2, 5, 4],
        r#"{"type":"ind","body":{"type":"player_reconnected","player_id":4}}"#,
    );
}

#[test]
fn ind_game_event() {
    server_case(
        &ind(Indication::GameEvent { name: "round_over".into(), data: Value::from(map([("winner", Value::Int(3))])) }),
        // ind=2, game_event=6, len 10 "round_over", map=7, 1 entry, "winner" -> integer=2, 3 zigzag 6
        &cat(&[&[2, 6, 10], b"round_over", &[7, 1, 6], b"winner", &[2, 6]]),
        r#"{"type":"ind","body":{"type":"game_event","name":"round_over","data":{"winner":3}}}"#,
    );
}

// ---------------------------------------------------------------- values

/// One value in both forms, standalone (as inside any message).
#[track_caller]
fn value_case(value: &Value, bin: &[u8], json: &str) {
    let mut out = Vec::new();
    value.write_bin(&mut out);
    assert_eq!(out, bin, "bin encoding of {value:?}");
    assert_eq!(value.bin_len(), bin.len());
    assert_eq!(Value::from_bin(bin).as_ref(), Ok(value), "bin decoding");
    out.clear();
    value.write_json(&mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), json, "json encoding of {value:?}");
    assert_eq!(value.json_len(), json.len());
    assert_eq!(Value::from_json(json.as_bytes()).as_ref(), Ok(value), "json decoding");
    assert_eq!(value.check(), Ok(()));
}

#[test]
fn values_of_every_type() {
    value_case(&Value::Null, &[0], "null");
    value_case(&Value::Bool(true), &[1, 1], "true");
    value_case(&Value::Bool(false), &[1, 0], "false");
    // integer=2, then the i64 zigzag varint: -2 -> 3; 300 -> 600 = 0xfb + u16 LE 0x0258
    value_case(&Value::Int(-2), &[2, 3], "-2");
    value_case(&Value::Int(300), &[2, 0xfb, 0x58, 0x02], "300");
    // float=3, then 8 bytes IEEE 754 LE: 1.5 = 0x3ff8000000000000
    value_case(&Value::Float(1.5), &[3, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f], "1.5");
    value_case(&Value::Float(2.0), &[3, 0, 0, 0, 0, 0, 0, 0, 0x40], "2.0");
    // string=4, len 2, "hi"
    value_case(&Value::from("hi"), &[4, 2, b'h', b'i'], r#""hi""#);
    // bytes=5, len 3, the bytes; JSON: standard padded base64
    value_case(&Value::Bytes(vec![1, 2, 3]), &[5, 3, 1, 2, 3], r#"{"$bytes":"AQID"}"#);
    value_case(&Value::Bytes(vec![0xff]), &[5, 1, 0xff], r#"{"$bytes":"/w=="}"#);
    // list=6, count 2, integer 1, string "a"
    value_case(&Value::List(vec![Value::Int(1), "a".into()]), &[6, 2, 2, 2, 4, 1, b'a'], r#"[1,"a"]"#);
    // map=7, count 2, keys ascending: "a" -> empty list, "b" -> null
    let m = Value::from(map([("b", Value::Null), ("a", Value::List(vec![]))]));
    value_case(&m, &[7, 2, 1, b'a', 6, 0, 1, b'b', 0], r#"{"a":[],"b":null}"#);
}

#[test]
fn values_past_their_bounds_are_bad_requests() {
    use tickforge_protocol::DecodeError;
    // A game message whose data nests 9 lists: rej bad_request naming the bound, both forms.
    let nine = "[".repeat(9) + &"]".repeat(9);
    let text = format!(r#"{{"type":"req","id":12,"body":{{"type":"game_message","name":"x","data":{nine}}}}}"#);
    let err = codec::decode_client(Format::Json, text.as_bytes(), DEFAULT_MAX_MESSAGE).unwrap_err();
    assert_eq!(err.reject(), Some((RequestId(12), RejectCode::BadRequest)));
    assert!(err.to_string().contains("nested deeper than 8"), "{err}");
    let mut bin = cat(&[&[0, 12, 9, 1], b"x"]);
    bin.extend([6, 1].repeat(8));
    bin.extend([6, 0]);
    let err = codec::decode_client(Format::Bin, &bin, DEFAULT_MAX_MESSAGE).unwrap_err();
    assert_eq!(err.reject(), Some((RequestId(12), RejectCode::BadRequest)));
    assert!(err.to_string().contains("nested deeper than 8"), "{err}");
    // Options that are not a map.
    let text = r#"{"type":"req","id":7,"body":{"type":"join_or_create","game":"arena","options":[1]}}"#;
    let err = codec::decode_client(Format::Json, text.as_bytes(), DEFAULT_MAX_MESSAGE).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Malformed { id: Some(RequestId(7)), detail } if detail.contains("expected a map")),
        "{err}"
    );
    // A string over 1 KiB, and a value over 4 KiB.
    let long = "x".repeat(1025);
    let text = format!(r#"{{"type":"req","id":12,"body":{{"type":"game_message","name":"x","data":"{long}"}}}}"#);
    let err = codec::decode_client(Format::Json, text.as_bytes(), DEFAULT_MAX_MESSAGE).unwrap_err();
    assert!(err.to_string().contains("1024-byte limit"), "{err}");
    let big = Value::List(vec![Value::from("y".repeat(1000)); 5]);
    let msg = req(12, Request::GameMessage { name: "x".into(), data: big });
    for format in Format::ALL {
        let mut out = Vec::new();
        codec::encode_client(format, &msg, &mut out).unwrap();
        let err = codec::decode_client(format, &out, DEFAULT_MAX_MESSAGE).unwrap_err();
        assert!(err.to_string().contains("4096-byte limit"), "{format:?}: {err}");
        assert_eq!(err.reject(), Some((RequestId(12), RejectCode::BadRequest)));
    }
}

#[test]
fn ind_player_left() {
    server_case(
        &ind(Indication::PlayerLeft { player_id: PlayerId(4), reason: "left".into() }),
        // ind=2, player_left=1, player 4, len 4 "left"
        &cat(&[&[2, 1, 4, 4], b"left"]),
        r#"{"type":"ind","body":{"type":"player_left","player_id":4,"reason":"left"}}"#,
    );
}

#[test]
fn ind_room_closing() {
    server_case(
        &ind(Indication::RoomClosing { reason: "server shutting down".into() }),
        // ind=2, room_closing=2, len 20, text
        &cat(&[&[2, 2, 20], b"server shutting down"]),
        r#"{"type":"ind","body":{"type":"room_closing","reason":"server shutting down"}}"#,
    );
}

#[test]
fn ind_error() {
    server_case(
        &ind(Indication::Error { code: RejectCode::NotInRoom, reason: "input while in no room".into() }),
        // ind=2, error=3, not_in_room=5, len 22, text
        &cat(&[&[2, 3, 5, 22], b"input while in no room"]),
        r#"{"type":"ind","body":{"type":"error","code":"not_in_room","reason":"input while in no room"}}"#,
    );
}

// ---------------------------------------------------------------- ticks and state

fn player(id: u32, x: i32, y: i32, vx: i32, hp: i32) -> Entity {
    let mut e = Entity::new(EntityId(id), 0);
    e.values[..6].copy_from_slice(&[x, y, vx, 0, hp, 0]);
    e
}

fn npc(id: u32) -> Entity {
    let mut e = Entity::new(EntityId(id), 1);
    e.values[..6].copy_from_slice(&[1600, 1600, 0, 0, 100, 0]);
    e
}

/// Tick 1: player 17 at (10.5, 20.25) moving at 2.0 units/s along x.
fn state_tick1() -> Snapshot {
    Snapshot { tick: Tick(1), entities: vec![player(17, 168, 324, 32, 100)] }
}

/// Tick 1230: npc 9 and player 17 (at x 10.5, moving at 2.0/s).
fn state_tick1230() -> Snapshot {
    Snapshot { tick: Tick(1230), entities: vec![npc(9), player(17, 168, 324, 32, 100)] }
}

/// Tick 1234: npc 9 gone; player 17 moved 4 ticks of `step_per_tick(32, 30)
/// = 1` (to x 10.75, exactly as predicted) and lost 10 hp.
fn state_tick1234() -> Snapshot {
    Snapshot { tick: Tick(1234), entities: vec![player(17, 172, 324, 32, 90)] }
}

#[rustfmt::skip]
const FULL_BIN: [u8; 13] = [
    0,              // removed: none
    0,              // updated: none
    1,              // spawned: 1 entity
    17,             //   id 17 (first id: as is)
    0,              //   kind 0 = player (one raw byte)
    0xd0, 0x02,     //   x  = 168 (10.5 * 16), zigzag 336
    0x88, 0x05,     //   y  = 324 (20.25 * 16), zigzag 648
    0x40,           //   vx = 32 (2.0 * 16), zigzag 64
    0,              //   vy = 0
    100,            //   hp = 100 (u8: plain varint)
    0,              //   score = 0 (u16: plain varint)
];

const FULL_JSON: &str = r#"{"spawned":[{"id":17,"kind":"player","x":10.5,"y":20.25,"vx":2.0,"vy":0.0,"hp":100,"score":0}],"updated":[],"removed":[]}"#;

#[rustfmt::skip]
const DELTA_BIN: [u8; 7] = [
    1, 9,           // removed: 1 id, 9
    1,              // updated: 1 entity
    17,             //   id 17
    0x10,           //   mask: bit 4 = hp (x moved exactly as predicted: not sent)
    0x13,           //   hp residual: 90 - 100 = -10, zigzag 19
    0,              // spawned: none
];

const DELTA_JSON: &str = r#"{"spawned":[],"updated":[{"id":17,"x":10.75,"hp":90}],"removed":[9]}"#;

#[test]
fn state_blobs_and_objects() {
    let schema = arena_schema();
    let (s1, s1230, s1234) = (state_tick1(), state_tick1230(), state_tick1234());

    let mut out = Vec::new();
    delta::bin::encode(&schema, 30, None, &s1, &mut out);
    assert_eq!(out, FULL_BIN);
    assert_eq!(delta::bin::apply(&schema, 30, None, Tick(1), &FULL_BIN), Ok(s1.clone()));
    out.clear();
    delta::bin::encode(&schema, 30, Some(&s1230), &s1234, &mut out);
    assert_eq!(out, DELTA_BIN);
    assert_eq!(delta::bin::apply(&schema, 30, Some(&s1230), Tick(1234), &DELTA_BIN), Ok(s1234.clone()));

    out.clear();
    delta::json::write(&schema, &delta::diff(&schema, None, &s1), &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), FULL_JSON);
    let d = delta::json::read(&schema, FULL_JSON.as_bytes()).unwrap();
    assert_eq!(delta::apply(None, &d, Tick(1)), Ok(s1));
    out.clear();
    delta::json::write(&schema, &delta::diff(&schema, Some(&s1230), &s1234), &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), DELTA_JSON);
    let d = delta::json::read(&schema, DELTA_JSON.as_bytes()).unwrap();
    assert_eq!(delta::apply(Some(&s1230), &d, Tick(1234)), Ok(s1234));
}

/// A schema of ten fields, so that an update mask can need two bytes.
fn tank_schema() -> Schema {
    let f = |name: &str, ty| FieldDef { name: name.into(), ty, integrates: None };
    Schema {
        kinds: vec!["tank".into()],
        fields: vec![
            f("x", FieldType::Fixed(16)),
            f("y", FieldType::Fixed(16)),
            f("hp", FieldType::U8),
            f("ammo", FieldType::U8),
            f("fuel", FieldType::U16),
            f("turret", FieldType::I16),
            f("team", FieldType::U8),
            f("flags", FieldType::U8),
            f("shield", FieldType::U8),
            f("kills", FieldType::U16),
        ],
    }
}

fn tank(id: u32, hp: i32, shield: i32) -> Entity {
    let mut e = Entity::new(EntityId(id), 0);
    e.values[..10].copy_from_slice(&[160, 320, hp, 30, 1000, -90, 1, 0, shield, 0]);
    e
}

/// Issue 15: the field mask is a LEB128 varint of the u32 bitmask. Fields
/// 0 to 6 fit one byte; an update of `hp` (bit 2) and `shield` (bit 8) is
/// mask 0x104 = 260, two bytes `84 02`.
#[test]
fn state_field_mask_of_two_bytes() {
    let schema = tank_schema();
    assert_eq!(schema.validate(), Ok(()));
    let before = Snapshot { tick: Tick(40), entities: vec![tank(5, 100, 0)] };
    let after = Snapshot { tick: Tick(41), entities: vec![tank(5, 80, 50)] };
    #[rustfmt::skip]
    let blob = [
        0,              // removed: none
        1,              // updated: 1 entity
        5,              //   id 5
        0x84, 0x02,     //   mask 0x104 = 260: LEB128 low 7 bits 0x04 | 0x80, then 260 >> 7 = 2
        0x27,           //   hp residual: 80 - 100 = -20, zigzag 39 (bit 2 first: field order)
        0x64,           //   shield residual: 50 - 0 = 50, zigzag 100
        0,              // spawned: none
    ];
    let json = r#"{"spawned":[],"updated":[{"id":5,"hp":80,"shield":50}],"removed":[]}"#;
    let mut out = Vec::new();
    delta::bin::encode(&schema, 30, Some(&before), &after, &mut out);
    assert_eq!(out, blob);
    assert_eq!(delta::bin::apply(&schema, 30, Some(&before), Tick(41), &blob), Ok(after.clone()));
    out.clear();
    delta::json::write(&schema, &delta::diff(&schema, Some(&before), &after), &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), json);
    let d = delta::json::read(&schema, json.as_bytes()).unwrap();
    assert_eq!(delta::apply(Some(&before), &d, Tick(41)), Ok(after));
}

/// Issue 15: an entity whose kind changed is removed and spawned with the
/// same id in one delta. Removals (and updates) apply to the baseline
/// first, spawns after, so the spawn does not meet the id it replaces.
#[test]
fn state_kind_change_removes_then_spawns() {
    let schema = arena_schema();
    let before = Snapshot { tick: Tick(10), entities: vec![npc(9)] };
    let mut shot = Entity::new(EntityId(9), 2);
    shot.values[..6].copy_from_slice(&[1600, 1600, 160, 0, 1, 0]);
    let after = Snapshot { tick: Tick(11), entities: vec![shot] };
    #[rustfmt::skip]
    let blob = [
        1, 9,           // removed: 1 id, 9 (the npc)
        0,              // updated: none
        1,              // spawned: 1 entity
        9,              //   id 9 again
        2,              //   kind 2 = projectile
        0x80, 0x19,     //   x  = 1600 (100.0 * 16), zigzag 3200
        0x80, 0x19,     //   y  = 1600
        0xc0, 0x02,     //   vx = 160 (10.0 * 16), zigzag 320
        0,              //   vy = 0
        1,              //   hp = 1
        0,              //   score = 0
    ];
    let json = r#"{"spawned":[{"id":9,"kind":"projectile","x":100.0,"y":100.0,"vx":10.0,"vy":0.0,"hp":1,"score":0}],"updated":[],"removed":[9]}"#;
    let mut out = Vec::new();
    delta::bin::encode(&schema, 30, Some(&before), &after, &mut out);
    assert_eq!(out, blob);
    assert_eq!(delta::bin::apply(&schema, 30, Some(&before), Tick(11), &blob), Ok(after.clone()));
    out.clear();
    delta::json::write(&schema, &delta::diff(&schema, Some(&before), &after), &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), json);
    let d = delta::json::read(&schema, json.as_bytes()).unwrap();
    assert_eq!(delta::apply(Some(&before), &d, Tick(11)), Ok(after));
    // Without the removal, the spawn meets the id it would replace: refused.
    let spawn_only = [0, 0, 1, 9, 2, 0x80, 0x19, 0x80, 0x19, 0xc0, 0x02, 0, 1, 0];
    assert_eq!(
        delta::bin::apply(&schema, 30, Some(&before), Tick(11), &spawn_only),
        Err(delta::DeltaError::DuplicateEntity(EntityId(9)))
    );
    let json_spawn_only =
        r#"{"spawned":[{"id":9,"kind":"projectile","x":100.0,"y":100.0,"vx":10.0,"vy":0.0,"hp":1,"score":0}]}"#;
    let d = delta::json::read(&schema, json_spawn_only.as_bytes()).unwrap();
    assert_eq!(delta::apply(Some(&before), &d, Tick(11)), Err(delta::DeltaError::DuplicateEntity(EntityId(9))));
}

fn tick_full(state: &[u8]) -> TickMsg {
    TickMsg {
        tick: Tick(1),
        server_time_us: 1_763_740_000_000_000,
        baseline: None,
        input_seq: InputSeq(0),
        state: StateBytes(state.to_vec()),
    }
}

fn tick_delta(state: &[u8]) -> TickMsg {
    TickMsg {
        tick: Tick(1234),
        server_time_us: 1_763_740_041_100_000,
        baseline: Some(Tick(1230)),
        input_seq: InputSeq(12),
        state: StateBytes(state.to_vec()),
    }
}

/// Both forms of a tick, checked separately: the state differs by form.
#[track_caller]
fn tick_case(bin_msg: TickMsg, bin: &[u8], json_msg: TickMsg, json: &str) {
    let (bin_msg, json_msg) = (ServerMsg::Tick(bin_msg), ServerMsg::Tick(json_msg));
    let mut out = Vec::new();
    codec::encode_server(Format::Bin, &bin_msg, &mut out);
    assert_eq!(out, bin);
    assert_eq!(codec::decode_server(Format::Bin, bin), Ok(bin_msg.clone()));
    out.clear();
    codec::encode_server(Format::Json, &json_msg, &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), json);
    assert_eq!(codec::decode_server(Format::Json, json.as_bytes()), Ok(json_msg.clone()));

    // encode_tick (per-player header + shared state bytes) gives the same bytes.
    for (format, msg, literal) in [(Format::Bin, &bin_msg, bin), (Format::Json, &json_msg, json.as_bytes())] {
        let ServerMsg::Tick(t) = msg else { unreachable!() };
        let header =
            TickHeader { tick: t.tick, server_time_us: t.server_time_us, baseline: t.baseline, input_seq: t.input_seq };
        out.clear();
        out.extend_from_slice(b"kept");
        codec::encode_tick(format, &header, &t.state.0, &mut out);
        assert_eq!(&out[..4], b"kept", "encode_tick appends");
        assert_eq!(&out[4..], literal, "{format:?}");
        assert_eq!(codec::tick_msg(&header, t.state.0.clone()), *msg);
    }
}

#[test]
fn tick_full_state() {
    // tick=3, tick 1, time (0xfd + u64), baseline None, input_seq 0, state: len 13, blob
    let bin = cat(&[&[3, 1], &T0, &[0, 0, 13], &FULL_BIN]);
    let json = format!(
        r#"{{"type":"tick","tick":1,"server_time_us":1763740000000000,"baseline":null,"input_seq":0,"state":{FULL_JSON}}}"#
    );
    tick_case(tick_full(&FULL_BIN), &bin, tick_full(FULL_JSON.as_bytes()), &json);
}

#[test]
fn tick_delta_state() {
    // tick=3, tick 1234, time, Some(1230), input_seq 12, state: len 7, blob
    let bin = cat(&[&[3, 0xfb, 0xd2, 0x04], &T1234, &[1, 0xfb, 0xce, 0x04, 12, 7], &DELTA_BIN]);
    let json = format!(
        r#"{{"type":"tick","tick":1234,"server_time_us":1763740041100000,"baseline":1230,"input_seq":12,"state":{DELTA_JSON}}}"#
    );
    tick_case(tick_delta(&DELTA_BIN), &bin, tick_delta(DELTA_JSON.as_bytes()), &json);
}

#[test]
fn tick_state_length_prefix_widens() {
    // A 300-byte state: its length takes 0xfb + u16, in encode_server and encode_tick alike.
    let state = vec![0xaa; 300];
    let msg = ServerMsg::Tick(tick_full(&state));
    let bin = cat(&[&[3, 1], &T0, &[0, 0, 0xfb, 0x2c, 0x01], &state]);
    let mut out = Vec::new();
    codec::encode_server(Format::Bin, &msg, &mut out);
    assert_eq!(out, bin);
    assert_eq!(codec::decode_server(Format::Bin, &bin), Ok(msg));
}

// ---------------------------------------------------------------- decoding rules

#[test]
fn json_accepts_any_key_order_and_whitespace() {
    let text = br#" { "body" : { "game" : "arena" , "type" : "join_or_create" } , "id" : 7 , "type" : "req" } "#;
    assert_eq!(
        codec::decode_client(Format::Json, text, DEFAULT_MAX_MESSAGE),
        Ok(req(7, Request::JoinOrCreate { game: "arena".into(), options: None }))
    );
    let tick = br#"{"state" : {"spawned":[],"updated":[],"removed":[]} , "input_seq":3,"baseline":null,"server_time_us":5,"tick":2,"type":"tick"}"#;
    let ServerMsg::Tick(t) = codec::decode_server(Format::Json, tick).unwrap() else { panic!("not a tick") };
    assert_eq!((t.tick, t.baseline, t.input_seq), (Tick(2), None, InputSeq(3)));
    assert_eq!(t.state.0, br#"{"spawned":[],"updated":[],"removed":[]}"#);
}

#[test]
fn unknown_request_types_are_unsupported_with_their_id() {
    use tickforge_protocol::DecodeError;
    // JSON: a type this version does not know.
    let err =
        codec::decode_client(Format::Json, br#"{"type":"req","id":5,"body":{"type":"fly"}}"#, DEFAULT_MAX_MESSAGE)
            .unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedRequest { id: RequestId(5), name: "fly".into() });
    assert_eq!(err.reject(), Some((RequestId(5), RejectCode::Unsupported)));
    // bin: req=0, id=5, request variant 10 (one past game_message).
    let err = codec::decode_client(Format::Bin, &[0, 5, 10], DEFAULT_MAX_MESSAGE).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedRequest { id: RequestId(5), name: "#10".into() });
    // A known request with a bad field keeps its id: bad_request.
    let err = codec::decode_client(Format::Bin, &[0, 5, 4, 9, b'a'], DEFAULT_MAX_MESSAGE).unwrap_err();
    assert_eq!(err.reject(), Some((RequestId(5), RejectCode::BadRequest)));
    let err =
        codec::decode_client(Format::Json, br#"{"type":"req","id":5,"body":{"type":"ping"}}"#, DEFAULT_MAX_MESSAGE)
            .unwrap_err();
    assert_eq!(err.reject(), Some((RequestId(5), RejectCode::BadRequest)));
    // Trailing bytes after a whole message are malformed.
    let err = codec::decode_client(Format::Bin, &[2, 1, 0], DEFAULT_MAX_MESSAGE).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { id: None, .. }), "{err:?}");
}

/// Every variant has a golden case above: adding a variant breaks this
/// match until a case (and PROTOCOL.md) is added.
#[test]
fn every_variant_is_covered() {
    fn client(m: &ClientMsg) -> &'static str {
        match m {
            ClientMsg::Req { body, .. } => match body {
                Request::Hello { .. }
                | Request::ListRooms { .. }
                | Request::CreateRoom { .. }
                | Request::JoinRoom { .. }
                | Request::JoinOrCreate { .. }
                | Request::LeaveRoom
                | Request::Ping { .. }
                | Request::Resume { .. }
                | Request::WatchRoom { .. }
                | Request::GameMessage { .. } => body.name(),
            },
            ClientMsg::Input { .. } => "input",
            ClientMsg::Ack { .. } => "ack",
        }
    }
    fn server(m: &ServerMsg) -> &'static str {
        match m {
            ServerMsg::Cfm { body, .. } => match body {
                Confirm::Welcome { .. } => "welcome",
                Confirm::RoomList { .. } => "room_list",
                Confirm::Joined(_) => "joined",
                Confirm::Left { .. } => "left",
                Confirm::Pong { .. } => "pong",
                Confirm::Watching(_) => "watching",
                Confirm::GameReply { .. } => "game_reply",
                Confirm::Redirect { .. } => "redirect",
            },
            ServerMsg::Rej { .. } => "rej",
            ServerMsg::Ind { body } => match body {
                Indication::PlayerJoined { .. } => "player_joined",
                Indication::PlayerLeft { .. } => "player_left",
                Indication::RoomClosing { .. } => "room_closing",
                Indication::Error { .. } => "error",
                Indication::PlayerDisconnected { .. } => "player_disconnected",
                Indication::PlayerReconnected { .. } => "player_reconnected",
                Indication::GameEvent { .. } => "game_event",
            },
            ServerMsg::Tick(_) => "tick",
        }
    }
    let _ = (client, server);
    assert_eq!(Request::NAMES.len(), 10);
    assert_eq!(RejectCode::ALL.len(), 11);
}
