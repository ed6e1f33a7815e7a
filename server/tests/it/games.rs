use crate::util::*;
use std::sync::Arc;
use tickforge_protocol::ids::{EntityId, PlayerId, Tick};
use tickforge_protocol::message::{Indication, InputData, Request};
use tickforge_protocol::schema::{FieldDef, FieldType, Schema};
use tickforge_protocol::snapshot::Entity;
use tickforge_protocol::Format;
use tickforge_server::game::{Game, GameRoom, PlayerInput};

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
    fn new_room(&self, _seed: u64, _tick_hz: u32) -> Box<dyn GameRoom> {
        Box::new(CounterRoom { value: 0 })
    }
}

impl GameRoom for CounterRoom {
    fn add_player(&mut self, _player: PlayerId) -> EntityId {
        EntityId(0)
    }
    fn remove_player(&mut self, _player: PlayerId) {}
    fn step(&mut self, _tick: Tick, inputs: &[PlayerInput]) {
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
    assert_eq!(code, tickforge_protocol::message::RejectCode::NotInRoom);
    let t0 = arena.next_tick().tick;
    arena.ack();
    assert!(arena.next_tick().tick > t0);
    assert_eq!(metric(&server.metrics(), "tickforge_room_panics_total"), 1);
}
