//! The game API through [`GameHarness`]: hooks and their context, every
//! bound, every panic, with real clients reading the room's bytes.

use super::*;
use crate::game::harness::GameHarness;
use std::time::Duration;
use tickforge_protocol::codec::Format;
use tickforge_protocol::ids::{PlayerId, Tick};
use tickforge_protocol::message::{Indication, RejectCode};
use tickforge_protocol::schema::{FieldDef, FieldType};
use tickforge_protocol::value::MAX_DEPTH;

/// Where a [`Probe`] panics or sleeps, and what it does on messages.
#[derive(Clone, Debug, Default)]
struct Plan {
    panic_in: Option<Hook>,
    sleep_in: Option<(Hook, Duration)>,
    refuse_options: bool,
}

/// A test game whose every hook records what it saw, sends what a message
/// asks, and panics or sleeps where its [`Plan`] says.
struct Probe {
    plan: Plan,
    schema: Schema,
    input: InputSchema,
}

impl Probe {
    fn new(plan: Plan) -> Arc<Self> {
        let field = |name: &str| FieldDef { name: name.into(), ty: FieldType::I32, integrates: None };
        let schema = Schema { kinds: vec!["probe".into()], fields: vec![field("sum"), field("players")] };
        let input = InputSchema::new([("push", FieldType::I16)]);
        Arc::new(Self { plan, schema, input })
    }
}

fn trip(plan: &Plan, hook: Hook) {
    if let Some((h, d)) = plan.sleep_in {
        if h == hook {
            std::thread::sleep(d);
        }
    }
    assert!(plan.panic_in != Some(hook), "probe told to fail in {}", hook.name());
}

struct ProbeRoom {
    plan: Plan,
    sum: i32,
    log: Vec<String>,
}

impl Game for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn input_schema(&self) -> &InputSchema {
        &self.input
    }
    fn create(&self, ctx: &mut Ctx<'_>, options: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
        trip(&self.plan, Hook::Create);
        if self.plan.refuse_options && !options.is_empty() {
            return Err(Refusal::new("probe takes no options"));
        }
        ctx.set_metadata("created_at", i64::try_from(ctx.tick().0).unwrap()).unwrap();
        Ok(Box::new(ProbeRoom { plan: self.plan.clone(), sum: 0, log: Vec::new() }))
    }
}

impl GameRoom for ProbeRoom {
    fn seats(&self) -> Option<u32> {
        Some(4)
    }
    fn join(&mut self, ctx: &mut Ctx<'_>, player: &PlayerInfo, options: &ValueMap) -> Result<EntityId, Refusal> {
        trip(&self.plan, Hook::Join);
        ctx.send(player.id, "welcome", Value::from(player.name.clone().unwrap_or_default())).unwrap();
        if options.get("refuse").is_some() {
            return Err(Refusal::new("asked to refuse"));
        }
        self.log.push(format!("join {} {:?}", player.id.0, player.user_id));
        Ok(EntityId(0))
    }
    fn leave(&mut self, ctx: &mut Ctx<'_>, player: PlayerId, why: LeaveReason) {
        trip(&self.plan, Hook::Leave);
        assert!(ctx.player(player).is_none(), "a leaving player is out of the roster");
        ctx.broadcast("left", Value::from(why.as_str())).unwrap();
    }
    fn step(&mut self, ctx: &mut Ctx<'_>, inputs: &[PlayerInput]) {
        trip(&self.plan, Hook::Step);
        self.sum += inputs.iter().map(|i| i.data.get(0)).sum::<i32>();
        if ctx.tick().0 % 10 == 0 {
            let _ = ctx.set_metadata("ten", i64::try_from(ctx.tick().0).unwrap());
        }
    }
    fn message(&mut self, ctx: &mut Ctx<'_>, from: PlayerId, name: &str, data: &Value) -> Result<Value, MessageError> {
        trip(&self.plan, Hook::Message);
        let n = || data.as_i64().unwrap_or(0);
        match name {
            "echo" => Ok(data.clone()),
            "spam" => {
                let results: Vec<_> = (0..n()).map(|i| ctx.send(from, "spam", Value::Int(i))).collect();
                let refused = results.iter().filter(|r| r.is_err()).count();
                Ok(Value::Int(refused as i64))
            }
            "shout" => ctx.broadcast_except(from, "shout", data.clone()).map(|()| Value::Null).map_err(bad),
            "to" => ctx.send(PlayerId(n() as u32), "to", Value::Null).map(|()| Value::Null).map_err(bad),
            "event_named" => {
                let name = data.as_str().unwrap_or("");
                ctx.broadcast(name, Value::Null).map(|()| Value::Null).map_err(bad)
            }
            "event_floats" => {
                let floats = Value::List(vec![Value::Float(0.5); n() as usize]);
                ctx.broadcast("v", floats).map(|()| Value::Null).map_err(bad)
            }
            "meta" => {
                let map = data.as_map().cloned().unwrap_or_default();
                for (k, v) in map {
                    ctx.set_metadata(k, v).map_err(bad)?;
                }
                Ok(Value::Null)
            }
            "reply_floats" => Ok(Value::List(vec![Value::Float(0.123_456_789); n() as usize])),
            "meta_deep" => {
                let mut deep = Value::Null;
                for _ in 0..n() {
                    deep = Value::List(vec![deep]);
                }
                ctx.set_metadata("deep", deep).map(|()| Value::Null).map_err(bad)
            }
            "time" => Ok(Value::List(vec![
                Value::Int(ctx.tick().0 as i64),
                Value::Float(ctx.seconds()),
                Value::Int(ctx.ticks_in(1.5) as i64),
                Value::Int(ctx.rng().below(1000) as i64),
            ])),
            "no" => Err(MessageError::refuse("not now")),
            "log" => Ok(Value::List(self.log.iter().map(|l| Value::from(l.as_str())).collect())),
            _ => Err(MessageError::Unknown),
        }
    }
    fn write_snapshot(&self, out: &mut Vec<Entity>) {
        trip(&self.plan, Hook::Snapshot);
        let mut e = Entity::new(EntityId(1), 0);
        e.values[0] = self.sum;
        out.push(e);
    }
    fn dispose(&mut self, ctx: &mut Ctx<'_>) {
        trip(&self.plan, Hook::Dispose);
        ctx.broadcast("bye", Value::Int(self.sum.into())).unwrap();
    }
}

fn bad(e: ContextError) -> MessageError {
    MessageError::Refused(e.to_string())
}

fn harness(plan: Plan) -> GameHarness {
    GameHarness::new(Probe::new(plan)).unwrap()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn hooks_see_the_tick_clock_the_rng_and_the_roster() {
    let mut h = GameHarness::builder(Probe::new(Plan::default())).seed(9).tick_hz(20).build().unwrap();
    assert_eq!(h.metadata().get("created_at"), Some(&Value::Int(0)));
    let a = h.join_as(Some("u-1"), Some("Ann"), &ValueMap::new()).unwrap();
    assert_eq!(h.joined(a).input_schema.fields[0].name, "push");
    h.ticks(3);
    let Value::List(time) = h.message(a, "time", Value::Null).unwrap() else { panic!("a list") };
    assert_eq!(&time[..3], [Value::Int(3), Value::Float(0.15), Value::Int(30)]);
    // The same seed draws the same numbers.
    let mut again = GameHarness::builder(Probe::new(Plan::default())).seed(9).tick_hz(20).build().unwrap();
    let b = again.join().unwrap();
    again.ticks(3);
    let Value::List(time_again) = again.message(b, "time", Value::Null).unwrap() else { panic!("a list") };
    assert_eq!(time[3], time_again[3]);
    assert_eq!(h.message(a, "log", Value::Null).unwrap(), Value::List(vec![Value::from("join 1 Some(\"u-1\")")]));
    // The welcome the join hook sent leaves with the next tick, after `joined`.
    assert_eq!(h.events(a), vec![("welcome".to_owned(), Value::from("Ann"))]);
}

#[test]
fn inputs_reach_step_in_the_games_schema_and_clients_rebuild_the_state() {
    for format in [Format::Bin, Format::Json] {
        let mut h = GameHarness::builder(Probe::new(Plan::default())).format(format).build().unwrap();
        let (a, b) = (h.join().unwrap(), h.join().unwrap());
        h.input_named(a, &[("push", 300)]).unwrap();
        h.input_named(b, &[("push", -100)]).unwrap();
        h.ticks(5);
        assert_eq!(h.entities_of_kind("probe")[0].get("sum"), Some(1000.0), "{format:?}");
        assert!(matches!(
            h.input_named(a, &[("pull", 1)]),
            Err(tickforge_protocol::input::InputError::UnknownField { .. })
        ));
        assert!(h.input_named(a, &[("push", 40_000)]).is_err(), "out of i16");
    }
}

#[test]
fn a_refused_join_takes_no_seat_and_sends_nothing() {
    let mut h = harness(Plan::default());
    let a = h.join().unwrap();
    let refuse: ValueMap = [("refuse", true)].into_iter().collect();
    assert_eq!(h.join_with(&refuse), Err((RejectCode::Refused, "asked to refuse".into())));
    h.tick();
    assert_eq!(names(&h.events(a)), ["welcome"], "only a's own welcome");
    assert!(h.indications(a).is_empty(), "no player_joined for a refused player");
    assert_eq!(h.room().player_count(), 1);
}

#[test]
fn the_games_seat_bound_caps_the_room() {
    let mut h = GameHarness::builder(Probe::new(Plan::default())).max_players(8).build().unwrap();
    for _ in 0..4 {
        h.join().unwrap();
    }
    assert_eq!(h.join().unwrap_err().0, RejectCode::RoomFull);
    assert_eq!(h.room().config().max_players, 4);
}

#[test]
fn options_can_be_refused_at_creation() {
    let refusing = Plan { refuse_options: true, ..Plan::default() };
    let options: ValueMap = [("map", "dust")].into_iter().collect();
    let err = GameHarness::builder(Probe::new(refusing.clone())).options(options).build().unwrap_err();
    assert_eq!(err, (RejectCode::Refused, "probe takes no options".into()));
    assert!(GameHarness::new(Probe::new(refusing)).is_ok());
}

#[test]
fn messages_are_answered_refused_or_unknown() {
    let mut h = harness(Plan::default());
    let a = h.join().unwrap();
    let data = Value::Map([("k".to_owned(), Value::Bytes(vec![1, 2]))].into());
    assert_eq!(h.message(a, "echo", data.clone()), Ok(data));
    assert_eq!(h.message(a, "no", Value::Null), Err((RejectCode::Refused, "not now".into())));
    let (code, reason) = h.message(a, "dance", Value::Null).unwrap_err();
    assert_eq!(code, RejectCode::Unsupported);
    assert!(reason.contains("no message \"dance\""), "{reason}");
    h.leave(a);
    assert_eq!(h.message(a, "echo", Value::Null).unwrap_err().0, RejectCode::NotInRoom);
}

#[test]
fn message_names_and_data_are_bounded_value_first() {
    let limits = GameLimits { max_name_bytes: 8, max_value_bytes: 64, ..GameLimits::default() };
    for format in [Format::Bin, Format::Json] {
        let mut h =
            GameHarness::builder(Probe::new(Plan::default())).limits(limits.clone()).format(format).build().unwrap();
        let a = h.join().unwrap();
        let (code, reason) = h.message(a, "a-very-long-name", Value::Null).unwrap_err();
        assert_eq!(code, RejectCode::BadRequest);
        assert!(reason.contains("8-byte limit"), "{reason}");
        assert_eq!(h.message(a, "", Value::Null).unwrap_err().0, RejectCode::BadRequest);
        // A value over the bound: bad_request whatever the name.
        let big = Value::from("x".repeat(100));
        let (code, reason) = h.message(a, "a-very-long-name", big).unwrap_err();
        assert_eq!(code, RejectCode::BadRequest);
        assert!(reason.contains("data is"), "{reason}");
        // Past the contract's own depth: the codec refuses it.
        let mut deep = Value::Null;
        for _ in 0..=MAX_DEPTH {
            deep = Value::List(vec![deep]);
        }
        assert_eq!(h.message(a, "echo", deep).unwrap_err().0, RejectCode::BadRequest, "{format:?}");
        assert_eq!(h.message(a, "echo", Value::Int(1)), Ok(Value::Int(1)));
    }
}

#[test]
fn a_reply_the_game_may_not_send_is_an_internal_reject() {
    let mut h = harness(Plan::default());
    let a = h.join().unwrap();
    assert_eq!(h.message(a, "reply_floats", Value::Int(1)), Ok(Value::List(vec![Value::Float(0.123_456_789)])));
    let limits = GameLimits { max_value_bytes: 32, ..GameLimits::default() };
    let mut h = GameHarness::builder(Probe::new(Plan::default())).limits(limits).build().unwrap();
    let a = h.join().unwrap();
    // 29 bytes in binary, 37 in JSON: over the bound in one form is over.
    let (code, reason) = h.message(a, "reply_floats", Value::Int(3)).unwrap_err();
    assert_eq!(code, RejectCode::Internal);
    assert!(reason.contains("bad value"), "{reason}");
    assert!(h.closed().is_none(), "the room goes on");
}

#[test]
fn events_go_to_one_several_or_all_after_the_ticks_state() {
    let mut h = harness(Plan::default());
    let (a, b, c) = (h.join().unwrap(), h.join().unwrap(), h.join().unwrap());
    h.tick();
    for p in [a, b, c] {
        h.events(p);
        h.indications(p);
    }
    h.message(a, "shout", Value::from("hi")).unwrap();
    assert!(h.events(b).is_empty(), "events wait for the next tick");
    let before = h.session(b).latest_tick();
    h.tick();
    assert_eq!(h.events(b), vec![("shout".to_owned(), Value::from("hi"))]);
    assert!(h.session(b).latest_tick() > before, "the tick came first");
    assert_eq!(names(&h.events(c)), ["shout"]);
    assert!(h.events(a).is_empty(), "all but the sender");
    h.message(a, "to", Value::Int(i64::from(c.0))).unwrap();
    h.tick();
    assert!(h.events(b).is_empty());
    assert_eq!(names(&h.events(c)), ["to"]);
    let (code, reason) = h.message(a, "to", Value::Int(99)).unwrap_err();
    assert_eq!(code, RejectCode::Refused);
    assert!(reason.contains("player 99 is not in this room"), "{reason}");
}

#[test]
fn events_per_player_per_tick_are_bounded_and_counted() {
    let limits = GameLimits { max_events_per_tick: 5, ..GameLimits::default() };
    let mut h = GameHarness::builder(Probe::new(Plan::default())).limits(limits).build().unwrap();
    let a = h.join().unwrap();
    h.tick();
    h.events(a);
    h.room_mut().take_game_stats();
    assert_eq!(h.message(a, "spam", Value::Int(8)), Ok(Value::Int(3)), "three refused to the game");
    let report = h.tick();
    assert_eq!(report.events, 5);
    assert_eq!(h.events(a).len(), 5);
    let stats = h.room_mut().take_game_stats();
    assert_eq!((stats.events_sent, stats.events_dropped), (5, 3));
    // A new tick, a new budget.
    assert_eq!(h.message(a, "spam", Value::Int(5)), Ok(Value::Int(0)));
}

#[test]
fn event_names_and_values_are_checked_for_the_game() {
    let mut h = harness(Plan::default());
    let a = h.join().unwrap();
    h.tick();
    assert_eq!(names(&h.events(a)), ["welcome"]);
    let (_, reason) = h.message(a, "event_named", Value::from("")).unwrap_err();
    assert!(reason.contains("empty"), "{reason}");
    let long = "n".repeat(65);
    let (_, reason) = h.message(a, "event_named", Value::from(long.as_str())).unwrap_err();
    assert!(reason.contains("64-byte limit"), "{reason}");
    // 500 floats: 4,503 bytes in binary, over the contract's 4 KiB.
    let (_, reason) = h.message(a, "event_floats", Value::Int(500)).unwrap_err();
    assert!(reason.contains("value is over the 4096-byte limit"), "{reason}");
    h.tick();
    assert!(h.events(a).is_empty(), "nothing was sent");
}

#[test]
fn metadata_is_set_by_the_game_and_bounded() {
    let limits = GameLimits { max_metadata_bytes: 64, ..GameLimits::default() };
    let mut h = GameHarness::builder(Probe::new(Plan::default())).limits(limits).build().unwrap();
    let a = h.join().unwrap();
    assert!(h.room_mut().metadata_update().is_some(), "created_at, once");
    assert!(h.room_mut().metadata_update().is_none());
    h.ticks(10);
    assert_eq!(h.metadata().get("ten"), Some(&Value::Int(10)));
    assert!(h.room().metadata_changed());
    let meta = |v: Value| Value::Map([("mode".to_owned(), v)].into());
    assert_eq!(h.message(a, "meta", meta(Value::from("ctf"))), Ok(Value::Null));
    let (_, reason) = h.message(a, "meta", meta(Value::from("x".repeat(60)))).unwrap_err();
    assert!(reason.contains("metadata would be"), "{reason}");
    assert_eq!(h.metadata().get("mode"), Some(&Value::from("ctf")), "a refused change changes nothing");
    // Metadata is a value: at most MAX_DEPTH levels, the map itself one.
    let (_, reason) = h.message(a, "meta_deep", Value::Int(MAX_DEPTH as i64)).unwrap_err();
    assert!(reason.contains("deeper"), "{reason}");
    assert_eq!(h.message(a, "meta_deep", Value::Int(MAX_DEPTH as i64 - 1)), Ok(Value::Null));
    assert_eq!(h.room().info().metadata.get("mode"), Some(&Value::from("ctf")));
}

#[test]
fn leaving_tells_the_game_why() {
    let mut h = harness(Plan::default());
    let (a, b, c) = (h.join().unwrap(), h.join().unwrap(), h.join().unwrap());
    h.leave(b);
    h.disconnect(c);
    h.tick();
    let why: Vec<Value> = h.events(a).into_iter().filter(|(n, _)| n == "left").map(|(_, v)| v).collect();
    assert_eq!(why, [Value::from("left"), Value::from("disconnected")]);
    let left: Vec<_> = h
        .indications(a)
        .into_iter()
        .filter_map(|i| match i {
            Indication::PlayerLeft { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(left, ["left", "disconnected"]);
}

#[test]
fn dispose_speaks_last_before_room_closing() {
    let mut h = harness(Plan::default());
    let a = h.join().unwrap();
    h.input_named(a, &[("push", 2)]).unwrap();
    h.ticks(3);
    h.events(a);
    h.room_mut().close("server shutting down");
    h.tick();
    assert_eq!(h.events(a), vec![("bye".to_owned(), Value::Int(6))]);
    assert_eq!(h.indications(a), vec![Indication::RoomClosing { reason: "server shutting down".into() }]);
}

/// A panic in any hook closes that room only, saying which hook; the game
/// is not called again; the panic is counted.
#[test]
fn a_panic_in_any_hook_closes_the_room_saying_where() {
    for hook in [Hook::Join, Hook::Leave, Hook::Step, Hook::Message, Hook::Snapshot, Hook::Dispose] {
        let plan = Plan { panic_in: Some(hook), ..Plan::default() };
        let mut h = harness(plan);
        let joined = h.join();
        if hook == Hook::Join {
            assert_eq!(joined.unwrap_err().0, RejectCode::Internal);
            assert_eq!(h.closed(), Some("game error in join: probe told to fail in join"));
            continue;
        }
        let (a, b) = (joined.unwrap(), h.join().unwrap());
        match hook {
            Hook::Leave => h.leave(b),
            Hook::Message => {
                let (code, reason) = h.message(a, "echo", Value::Null).unwrap_err();
                assert_eq!(code, RejectCode::Internal);
                assert!(reason.contains("room closed"), "{reason}");
            }
            Hook::Dispose => h.room_mut().close("room disposed of"),
            _ => {
                let report = h.tick();
                assert_eq!(report.panicked.as_deref(), Some(&*format!("probe told to fail in {}", hook.name())));
            }
        }
        h.tick();
        let expected = if hook == Hook::Dispose {
            "room disposed of".to_owned()
        } else {
            format!("game error in {}: probe told to fail in {}", hook.name(), hook.name())
        };
        assert_eq!(h.closed(), Some(expected.as_str()), "{hook:?}");
        assert!(h.indications(a).contains(&Indication::RoomClosing { reason: expected }), "{hook:?}");
        assert_eq!(h.room_mut().take_game_stats().panics, 1, "{hook:?}");
        assert_eq!(h.room().player_count(), 0);
    }
    // Creation: no room at all.
    let plan = Plan { panic_in: Some(Hook::Create), ..Plan::default() };
    let (code, reason) = GameHarness::new(Probe::new(plan)).unwrap_err();
    assert_eq!(code, RejectCode::Internal);
    assert!(reason.contains("probe told to fail in create"), "{reason}");
}

#[test]
fn a_slow_hook_is_counted() {
    let limits = GameLimits { slow_hook: Duration::from_millis(1), ..GameLimits::default() };
    let plan = Plan { sleep_in: Some((Hook::Message, Duration::from_millis(20))), ..Plan::default() };
    let mut h = GameHarness::builder(Probe::new(plan)).limits(limits).build().unwrap();
    let a = h.join().unwrap();
    h.room_mut().take_game_stats();
    assert_eq!(h.message(a, "echo", Value::Int(1)), Ok(Value::Int(1)), "a slow hook still answers");
    let stats = h.room_mut().take_game_stats();
    let message = Hook::ALL.iter().position(|h| *h == Hook::Message).unwrap();
    assert_eq!(stats.slow_hooks[message], 1);
}

#[test]
fn the_tick_clock_helpers_round_as_documented() {
    let mut rng = GameRng::new(1);
    let mut state = context::RoomState::new(GameLimits::default());
    let room_id = tickforge_protocol::ids::RoomId("r".into());
    let ctx = Ctx { room_id: &room_id, tick: Tick(45), tick_hz: 30, rng: &mut rng, state: &mut state };
    assert_eq!(ctx.seconds(), 1.5);
    assert_eq!(ctx.ticks_in(0.01), 1, "a positive time is at least a tick");
    assert_eq!(ctx.ticks_in(0.0), 0);
    assert_eq!(ctx.ticks_in(2.0), 60);
    let mut rng = GameRng::new(3);
    assert!((0..1000).all(|_| rng.below(6) < 6));
    assert_eq!(rng.below(0), 0);
}
