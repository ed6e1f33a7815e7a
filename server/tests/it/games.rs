use crate::util::*;
use std::sync::Arc;
use tickforge_protocol::ids::EntityId;
use tickforge_protocol::message::{Indication, InputData, Request};
use tickforge_protocol::schema::{FieldDef, FieldType, Schema};
use tickforge_protocol::snapshot::Entity;
use tickforge_protocol::value::ValueMap;
use tickforge_protocol::Format;
use tickforge_server::game::{Ctx, Game, GameRoom, PlayerInfo, PlayerInput, Refusal};

/// A shared counter: each tick, every player's `move_x` is added to it.
/// `move_x == 99` makes the step panic (to test that a room's panic stays
/// in that room).
struct Counter {
    schema: Schema,
}

impl Counter {
    fn new() -> Self {
        let field = FieldDef { name: "value".into(), ty: FieldType::I32, integrates: None };
        Self { schema: Schema { kinds: vec!["counter".into()], fields: vec![field] } }
    }
}

struct CounterRoom {
    value: i32,
}

impl Game for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn create(&self, _ctx: &mut Ctx<'_>, _options: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
        Ok(Box::new(CounterRoom { value: 0 }))
    }
}

impl GameRoom for CounterRoom {
    fn join(&mut self, _ctx: &mut Ctx<'_>, _player: &PlayerInfo, _options: &ValueMap) -> Result<EntityId, Refusal> {
        Ok(EntityId(0))
    }
    fn step(&mut self, _ctx: &mut Ctx<'_>, inputs: &[PlayerInput]) {
        for i in inputs {
            let move_x = InputData::from(i.data).move_x;
            assert!(move_x != 99, "the counter was asked to fail");
            self.value += i32::from(move_x);
        }
    }
    fn write_snapshot(&self, out: &mut Vec<Entity>) {
        let mut e = Entity::new(EntityId(1), 0);
        e.values[0] = self.value;
        out.push(e);
    }
}

fn value(c: &Client) -> i32 {
    c.session.state().unwrap().entities[0].values[0]
}

fn stick(x: i8) -> InputData {
    InputData { move_x: x, move_y: 0, buttons: 0 }
}

#[test]
fn a_game_registered_by_a_test_is_served() {
    let server = TestServer::with(|c| c.games.register(Arc::new(Counter::new())));
    let mut a = connect(&server, Format::Bin);
    let mut b = connect(&server, Format::Json);
    let ja = a.join_or_create("counter");
    assert_eq!(ja.schema.fields[0].name, "value");
    assert_eq!(b.join_or_create("counter").room_id, ja.room_id);
    // a pushes the counter up...
    a.input(stick(1));
    loop {
        b.ack();
        b.next_tick();
        if value(&b) >= 10 {
            break;
        }
    }
    // ...then b pushes it down faster; both rebuild the same value.
    a.input(stick(0));
    b.input(stick(-3));
    let high = value(&b);
    loop {
        b.ack();
        b.next_tick();
        if value(&b) < high - 10 {
            break;
        }
    }
    b.input(stick(0));
    // Let both settle on the same tick and compare.
    let t = b.next_tick().tick;
    loop {
        a.ack();
        if a.next_tick().tick >= t {
            break;
        }
    }
    while b.session.latest_tick() < a.session.latest_tick() {
        b.next_tick();
    }
    while a.session.latest_tick() < b.session.latest_tick() {
        a.next_tick();
    }
    assert_eq!(a.session.state(), b.session.state());
    // The arena is still there too.
    let mut c = connect(&server, Format::Bin);
    assert_eq!(c.join_or_create("arena").game, "arena");
}

#[test]
fn a_panicking_game_closes_only_its_room() {
    let server = TestServer::with(|c| c.games.register(Arc::new(Counter::new())));
    let mut arena = connect(&server, Format::Json);
    arena.join_or_create("arena");
    let mut doomed = connect(&server, Format::Json);
    doomed.join_or_create("counter");
    doomed.next_tick();
    doomed.input(stick(99));
    let reason = doomed.wait_indication("room_closing", |i| match i {
        Indication::RoomClosing { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.contains("asked to fail"), "{reason}");
    // The connection stays usable, in no room, and the shard goes on.
    doomed.call(Request::Ping { client_time_us: 3 });
    doomed.input(stick(1));
    let code = doomed.wait_indication("error", |i| match i {
        Indication::Error { code, .. } => Some(*code),
        _ => None,
    });
    assert_eq!(code, RejectCode::NotInRoom);
    let t0 = arena.next_tick().tick;
    arena.ack();
    assert!(arena.next_tick().tick > t0);
    assert_eq!(metric(&server.metrics(), "tickforge_room_panics_total"), 1);
}

// ---- The game API over real sockets: lines, options, metadata, filters,
// game messages and events, and every bad-input path of them. ----

use std::time::Duration;
use tickforge_protocol::message::{Confirm, RejectCode};
use tickforge_protocol::value::Value;
use tickforge_server::game::{ContextError, MessageError};

fn opts(pairs: &[(&str, Value)]) -> Option<ValueMap> {
    Some(pairs.iter().map(|(k, v)| (*k, v.clone())).collect())
}

fn create(c: &mut Client, game: &str, options: Option<ValueMap>) -> Result<Confirm, (RejectCode, String)> {
    let id =
        c.request(Request::CreateRoom { game: game.into(), max_players: None, tick_hz: None, private: false, options });
    c.answer(id)
}

fn joined(confirm: Confirm) -> tickforge_protocol::message::Joined {
    match confirm {
        Confirm::Joined(j) => j,
        other => panic!("expected joined, got {other:?}"),
    }
}

fn message(c: &mut Client, name: &str, data: Value) -> Result<Value, (RejectCode, String)> {
    let id = c.request(Request::GameMessage { name: name.into(), data });
    c.answer(id).map(|confirm| match confirm {
        Confirm::GameReply { data } => data,
        other => panic!("expected game_reply, got {other:?}"),
    })
}

fn game_event(c: &mut Client, name: &str) -> Value {
    c.wait_indication(name, |i| match i {
        Indication::GameEvent { name: n, data } if n == name => Some(data.clone()),
        _ => None,
    })
}

fn rooms(c: &mut Client, filter: Option<ValueMap>) -> Vec<tickforge_protocol::message::RoomInfo> {
    match c.call(Request::ListRooms { game: None, filter }) {
        Confirm::RoomList { rooms } => rooms,
        other => panic!("expected room_list, got {other:?}"),
    }
}

fn cell(col: i64, row: i64) -> Value {
    Value::Map([("col".to_owned(), Value::Int(col)), ("row".to_owned(), Value::Int(row))].into())
}

/// The built-in turn-based game end to end: a room made with options,
/// found by its metadata, moves as game messages, results as game events,
/// a binary and a JSON player.
#[test]
fn lines_is_played_over_real_sockets() {
    let server = TestServer::start();
    let mut x = connect(&server, Format::Bin);
    let mut o = connect(&server, Format::Json);
    let j = joined(create(&mut x, "lines", opts(&[("turn_seconds", Value::Int(0))])).unwrap());
    assert_eq!(j.max_players, 2);
    assert_eq!(j.input_schema.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["hover_col", "hover_row"]);
    // A lobby finds rooms waiting for a player by their metadata.
    let waiting = opts(&[("phase", "waiting".into()), ("variant", "tictactoe".into())]);
    let found = rooms(&mut o, waiting.clone());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].room_id, j.room_id);
    assert_eq!(found[0].metadata.get("round"), Some(&Value::Int(0)));
    assert!(rooms(&mut o, opts(&[("phase", "playing".into())])).is_empty());
    assert!(rooms(&mut o, opts(&[("mode", "ctf".into())])).is_empty(), "a key the metadata lacks never matches");
    joined(o.call(Request::JoinRoom { room_id: j.room_id.clone(), reservation: None }));
    assert!(rooms(&mut o, waiting).is_empty());
    assert_eq!(rooms(&mut o, opts(&[("phase", "playing".into())])).len(), 1);
    let listed = http(server.addr, "GET", "/rooms", "");
    assert!(
        listed.body.contains(r#""metadata":{"phase":"playing","round":1,"variant":"tictactoe"}"#),
        "{}",
        listed.body
    );

    assert_eq!(game_event(&mut o, "turn").get("side"), Some(&Value::from("x")));
    assert_eq!(message(&mut o, "move", cell(1, 1)), Err((RejectCode::Refused, "not your turn".into())));
    assert_eq!(message(&mut x, "move", cell(0, 0)).unwrap().get("stone"), Some(&Value::Int(3)));
    let moved = game_event(&mut o, "moved");
    assert_eq!((moved.get("col"), moved.get("side")), (Some(&Value::Int(0)), Some(&Value::from("x"))));
    for (p, col, row) in [(1, 1, 1), (0, 1, 0), (1, 2, 2), (0, 2, 0)] {
        let who = if p == 0 { &mut x } else { &mut o };
        message(who, "move", cell(col, row)).unwrap();
    }
    for c in [&mut x, &mut o] {
        let over = game_event(c, "round_over");
        assert_eq!(over.get("winner"), Some(&Value::Int(j.player_id.0.into())));
        assert_eq!(over.get("reason"), Some(&Value::from("line")));
    }
    // The state carries the stones: both rebuild the same board.
    let stones = |c: &mut Client| {
        c.next_tick();
        c.session.state().unwrap().entities.iter().filter(|e| e.kind == 1).count()
    };
    assert_eq!(stones(&mut x), 5);
    assert_eq!(stones(&mut o), 5);
    assert_eq!(message(&mut o, "chat", Value::from("gg")), Ok(Value::Null));
    assert_eq!(game_event(&mut x, "chat").get("text"), Some(&Value::from("gg")));
    let (code, reason) = message(&mut x, "dance", Value::Null).unwrap_err();
    assert_eq!(code, RejectCode::Unsupported);
    assert!(reason.contains("no message \"dance\""), "{reason}");
    assert_eq!(rooms(&mut o, opts(&[("phase", "over".into())])).len(), 1);
}

/// `join_or_create` joins only rooms made with equal options (none is the
/// same as `{}`); options the game refuses are `rej refused`.
#[test]
fn join_or_create_matches_options() {
    let server = TestServer::start();
    let mut clients: Vec<Client> = (0..5).map(|_| connect(&server, Format::Json)).collect();
    let joc = |c: &mut Client, options| {
        let id = c.request(Request::JoinOrCreate { game: "lines".into(), options });
        c.answer(id).map(joined)
    };
    let c4 = opts(&[("variant", "connect4".into())]);
    let a = joc(&mut clients[0], c4.clone()).unwrap();
    let b = joc(&mut clients[1], opts(&[("variant", "tictactoe".into())])).unwrap();
    assert_ne!(a.room_id, b.room_id, "other options, another room");
    let c = joc(&mut clients[2], c4).unwrap();
    assert_eq!(c.room_id, a.room_id);
    let d = joc(&mut clients[3], None).unwrap();
    let e = joc(&mut clients[4], Some(ValueMap::new())).unwrap();
    assert_ne!(d.room_id, b.room_id, "{{}} is not {{variant: tictactoe}}, though it plays the same");
    assert_eq!(d.room_id, e.room_id, "none is the same as {{}}");
    let mut f = connect(&server, Format::Bin);
    let (code, reason) = joc(&mut f, opts(&[("variant", "chess".into())])).unwrap_err();
    assert_eq!(code, RejectCode::Refused);
    assert!(reason.contains("must be one of tictactoe, connect4, gomoku"), "{reason}");
    let (code, reason) = create(&mut f, "lines", opts(&[("board", Value::Int(9))])).unwrap_err();
    assert_eq!(code, RejectCode::Refused);
    assert!(reason.contains("unknown option \"board\""), "{reason}");
    // Arena takes any options.
    assert!(create(&mut f, "arena", opts(&[("map", "dust".into())])).is_ok());
}

/// Every bound of the game API answers with a reason; the connection
/// stays usable after each.
#[test]
fn game_bad_input_gets_clear_answers() {
    let server = TestServer::with(|c| {
        c.limits.game.max_name_bytes = 16;
        c.limits.game.max_value_bytes = 128;
        c.limits.game.max_options_bytes = 64;
    });
    for format in [Format::Bin, Format::Json] {
        let mut c = connect(&server, format);
        // Outside a room.
        let (code, reason) = message(&mut c, "move", cell(0, 0)).unwrap_err();
        assert_eq!((code, reason.as_str()), (RejectCode::NotInRoom, "game_message while in no room"));
        // Options over their bound.
        let big = opts(&[("variant", Value::from("x".repeat(80)))]);
        let (code, reason) = create(&mut c, "lines", big.clone()).unwrap_err();
        assert_eq!(code, RejectCode::BadRequest);
        assert!(reason.contains("options is") && reason.contains("64-byte limit"), "{reason}");
        let id = c.request(Request::JoinOrCreate { game: "lines".into(), options: big });
        assert_eq!(c.answer(id).unwrap_err().0, RejectCode::BadRequest);
        let filter = opts(&[("phase", Value::from("x".repeat(200)))]);
        let id = c.request(Request::ListRooms { game: None, filter });
        assert_eq!(c.answer(id).unwrap_err().0, RejectCode::BadRequest);
        joined(create(&mut c, "lines", None).unwrap());
        // Names: empty, too long.
        let (code, reason) = message(&mut c, "", Value::Null).unwrap_err();
        assert_eq!(code, RejectCode::BadRequest);
        assert!(reason.contains("empty"), "{reason}");
        let (code, reason) = message(&mut c, "a-name-longer-than-16", Value::Null).unwrap_err();
        assert_eq!(code, RejectCode::BadRequest);
        assert!(reason.contains("16-byte limit"), "{reason}");
        // Data over the bound: bad_request whatever the name.
        let (code, reason) = message(&mut c, "no-such-message", Value::from("x".repeat(200))).unwrap_err();
        assert_eq!(code, RejectCode::BadRequest);
        assert!(reason.contains("128-byte limit"), "{reason}");
        // Past the contract's depth: the message does not decode.
        let mut deep = Value::Null;
        for _ in 0..9 {
            deep = Value::List(vec![deep]);
        }
        let (code, reason) = message(&mut c, "no-such-message", deep).unwrap_err();
        assert_eq!(code, RejectCode::BadRequest, "{format:?}");
        assert!(reason.contains("deeper than 8"), "{reason}");
        // An input of arena's shape to lines: dropped with an error indication.
        c.input(stick(1));
        let reason = c.wait_indication("error", |i| match i {
            Indication::Error { code: RejectCode::BadRequest, reason } => Some(reason.clone()),
            _ => None,
        });
        assert!(reason.contains("input dropped"), "{reason}");
        assert!(matches!(c.call(Request::Ping { client_time_us: 1 }), Confirm::Pong { .. }));
    }
}

/// A test game for the bounds the server enforces on what a game sends,
/// and for a panic in a message hook.
struct Chatty {
    schema: Schema,
}

struct ChattyRoom;

impl Game for Chatty {
    fn name(&self) -> &str {
        "chatty"
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn create(&self, ctx: &mut Ctx<'_>, _options: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
        ctx.set_metadata("mood", "chatty").unwrap();
        Ok(Box::new(ChattyRoom))
    }
}

impl GameRoom for ChattyRoom {
    fn join(&mut self, _ctx: &mut Ctx<'_>, _player: &PlayerInfo, _options: &ValueMap) -> Result<EntityId, Refusal> {
        Ok(EntityId(0))
    }
    fn step(&mut self, _ctx: &mut Ctx<'_>, _inputs: &[PlayerInput]) {}
    fn message(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: tickforge_protocol::ids::PlayerId,
        name: &str,
        data: &Value,
    ) -> Result<Value, MessageError> {
        match name {
            "spam" => {
                let sent = (0..data.as_i64().unwrap_or(0))
                    .filter(|i| {
                        !matches!(ctx.send(from, "spam", Value::Int(*i)), Err(ContextError::TooManyEvents { .. }))
                    })
                    .count();
                Ok(Value::Int(sent as i64))
            }
            "slow" => {
                std::thread::sleep(Duration::from_millis(30));
                Ok(Value::Null)
            }
            "boom" => panic!("chatty was asked to fail"),
            _ => Err(MessageError::Unknown),
        }
    }
    fn write_snapshot(&self, _out: &mut Vec<Entity>) {}
}

fn chatty() -> Arc<Chatty> {
    Arc::new(Chatty { schema: Counter::new().schema })
}

/// What a game sends is bounded per player per tick (the rest dropped and
/// counted); a slow hook is counted by name; a panicking message hook
/// closes its room only.
#[test]
fn events_are_bounded_slow_hooks_counted_and_a_panic_closes_one_room() {
    let server = TestServer::with(|c| {
        c.games.register(chatty());
        c.limits.game.max_events_per_tick = 4;
        c.limits.game.slow_hook = Duration::from_millis(5);
    });
    let mut a = connect(&server, Format::Bin);
    let room = joined(create(&mut a, "chatty", None).unwrap());
    let listed = rooms(&mut a, opts(&[("mood", "chatty".into())]));
    assert_eq!(listed.iter().map(|r| &r.room_id).collect::<Vec<_>>(), [&room.room_id], "metadata set at creation");
    assert_eq!(message(&mut a, "spam", Value::Int(10)), Ok(Value::Int(4)));
    for i in 0..4 {
        assert_eq!(game_event(&mut a, "spam"), Value::Int(i));
    }
    // The next tick has a new budget.
    a.next_tick();
    assert_eq!(message(&mut a, "spam", Value::Int(1)), Ok(Value::Int(1)));
    assert_eq!(game_event(&mut a, "spam"), Value::Int(0));
    let m = server.metrics();
    assert_eq!(metric(&m, "tickforge_game_events_total"), 5);
    assert_eq!(metric(&m, "tickforge_game_events_dropped_total"), 6);

    assert_eq!(message(&mut a, "slow", Value::Null), Ok(Value::Null));
    assert!(metric(&server.metrics(), "tickforge_game_hook_slow_total{hook=\"message\"}") >= 1);

    let mut bystander = connect(&server, Format::Json);
    bystander.join_or_create("arena");
    let (code, reason) = message(&mut a, "boom", Value::Null).unwrap_err();
    assert_eq!(code, RejectCode::Internal);
    assert!(reason.contains("room closed"), "{reason}");
    let closing = a.wait_indication("room_closing", |i| match i {
        Indication::RoomClosing { reason } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(closing, "game error in message: chatty was asked to fail");
    assert_eq!(message(&mut a, "spam", Value::Int(1)).unwrap_err().0, RejectCode::NotInRoom);
    let t = bystander.next_tick().tick;
    bystander.ack();
    assert!(bystander.next_tick().tick > t, "the other room ticks on");
    assert_eq!(metric(&server.metrics(), "tickforge_room_panics_total"), 1);
}

/// Sessions under a game: the signed identity reaches the join hook (lines
/// refuses the same user twice); a dropped player's seat stays the game's
/// for the grace, and a resume on a new connection continues the round as
/// the same player (no forfeit); the leave hook runs only once a seat's
/// grace ends (then lines forfeits the round).
#[test]
fn lines_sees_identities_and_a_held_seat_continues_its_round() {
    use crate::identity::{secret, token};
    use std::time::{Duration, Instant};
    let grace = Duration::from_millis(800);
    let server = TestServer::with(|c| {
        c.auth = Some(secret());
        c.reconnect_grace = grace;
    });
    let hello = |c: &mut Client, user: &str| {
        assert!(matches!(c.call(Request::Hello { token: Some(token(user)), client: None }), Confirm::Welcome { .. }));
    };
    let mut x = connect(&server, Format::Bin);
    hello(&mut x, "alice");
    let j = joined(create(&mut x, "lines", opts(&[("turn_seconds", Value::Int(0))])).unwrap());
    let mut again = connect(&server, Format::Json);
    hello(&mut again, "alice");
    let id = again.request(Request::JoinRoom { room_id: j.room_id.clone(), reservation: None });
    assert_eq!(again.answer(id).unwrap_err(), (RejectCode::Refused, "user alice already plays in this room".into()));
    let mut o = connect(&server, Format::Json);
    hello(&mut o, "bob");
    let jo = joined(o.call(Request::JoinRoom { room_id: j.room_id.clone(), reservation: None }));
    let bob = x.wait_indication("player_joined", |i| match i {
        Indication::PlayerJoined { player_id, user_id, .. } if *player_id == jo.player_id => user_id.clone(),
        _ => None,
    });
    assert_eq!(bob, "bob");
    game_event(&mut o, "turn");
    message(&mut x, "move", cell(0, 0)).unwrap();
    message(&mut o, "move", cell(1, 1)).unwrap();

    // x's socket drops mid-round: held, not left; the round goes on.
    drop(x);
    let gone = o.wait_indication("player_disconnected", |i| match i {
        Indication::PlayerDisconnected { player_id } => Some(*player_id),
        Indication::GameEvent { name, .. } if name == "round_over" => panic!("the round ended on a drop"),
        _ => None,
    });
    assert_eq!(gone, j.player_id);
    let mut x = connect(&server, Format::Bin);
    hello(&mut x, "alice");
    let back = joined(x.call(Request::Resume { room_id: j.room_id.clone(), resume_token: j.resume_token.clone() }));
    assert_eq!((back.player_id, back.entity_id), (j.player_id, j.entity_id));
    // Still x's turn, in the same round.
    assert!(message(&mut x, "move", cell(0, 1)).unwrap().get("stone").is_some());
    let moved = o.wait_indication("x's move after the resume", |i| match i {
        Indication::GameEvent { name, data }
            if name == "moved"
                && (data.get("col"), data.get("row")) == (Some(&Value::Int(0)), Some(&Value::Int(1))) =>
        {
            data.get("side").cloned()
        }
        Indication::GameEvent { name, .. } if name == "round_over" => panic!("the round ended on a drop"),
        _ => None,
    });
    assert_eq!(moved, Value::from("x"));

    // o drops for good: its seat is freed past the grace, and only then
    // does the game see it leave (a forfeit).
    drop(o);
    let dropped_at = Instant::now();
    let over = game_event(&mut x, "round_over");
    assert!(dropped_at.elapsed() >= grace, "the game saw the leave before the grace ended");
    assert_eq!(over.get("reason"), Some(&Value::from("forfeit")));
    assert_eq!(over.get("winner"), Some(&Value::Int(j.player_id.0.into())));
    assert_eq!(metric(&server.metrics(), "tickforge_seats_expired_total"), 1);
}

/// A spectator of a game's room: its state like a player's, no game
/// messages (`not_in_room`), and no game events (they are for seats).
#[test]
fn a_spectator_of_lines_sees_the_state_but_sends_no_game_messages() {
    use tickforge_protocol::session::Event;
    let server = TestServer::start();
    let mut x = connect(&server, Format::Bin);
    let j = joined(create(&mut x, "lines", opts(&[("turn_seconds", Value::Int(0))])).unwrap());
    let mut watcher = connect(&server, Format::Json);
    assert!(matches!(watcher.call(Request::WatchRoom { room_id: j.room_id.clone() }), Confirm::Watching(_)));
    let (code, reason) = message(&mut watcher, "chat", Value::from("hi")).unwrap_err();
    assert_eq!(code, RejectCode::NotInRoom, "{reason}");
    let mut o = connect(&server, Format::Json);
    joined(o.call(Request::JoinRoom { room_id: j.room_id.clone(), reservation: None }));
    game_event(&mut o, "round_started");
    message(&mut x, "move", cell(1, 1)).unwrap();
    game_event(&mut o, "moved");
    // The stone is in the spectator's state; no event reached it.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match watcher.next_event().expect("the spectator stays connected") {
            Event::Indication(Indication::GameEvent { name, .. }) => panic!("a spectator got game event {name}"),
            Event::Tick(_) if watcher.session.state().unwrap().entities.iter().any(|e| e.kind == 1) => break,
            _ => assert!(std::time::Instant::now() < deadline, "the stone never reached the spectator"),
        }
    }
}
