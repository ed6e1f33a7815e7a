//! `tag`: a game written outside tickforge, against its public game API.
//!
//! Runners move with a stick (`dx`, `dy`); one of them is "it". When "it"
//! comes within reach of another runner, that runner is it, after a second
//! of grace. The room's metadata names who is it; `tagged` events tell
//! everyone; a `shout` message is passed on to the others. Options:
//! `speed` (units per second, 50 to 400, default 150).
//!
//! GAMES.md builds this file step by step.

use std::sync::LazyLock;
use tickforge_protocol::ids::{EntityId, PlayerId};
use tickforge_protocol::input::InputSchema;
use tickforge_protocol::schema::{FieldDef, FieldType, Schema};
use tickforge_protocol::snapshot::Entity;
use tickforge_protocol::value::{Value, ValueMap};
use tickforge_server::game::{Ctx, Game, GameRoom, LeaveReason, MessageError, PlayerInfo, PlayerInput, Refusal};

/// The world's side, units.
pub const WORLD: f64 = 500.0;
/// How close "it" must come to tag, units.
pub const REACH: f64 = 12.0;
/// Seconds a new "it" cannot tag back.
pub const GRACE_S: f64 = 1.0;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let field = |name: &str, ty| FieldDef { name: name.into(), ty, integrates: None };
    Schema {
        kinds: vec!["runner".into()],
        fields: vec![field("x", FieldType::Fixed(8)), field("y", FieldType::Fixed(8)), field("it", FieldType::U8)],
    }
});

static INPUT: LazyLock<InputSchema> =
    LazyLock::new(|| InputSchema::new([("dx", FieldType::I8), ("dy", FieldType::I8)]));

/// The game: registered by name, makes rooms.
#[derive(Debug, Default)]
pub struct Tag;

impl Game for Tag {
    fn name(&self) -> &str {
        "tag"
    }

    fn schema(&self) -> &Schema {
        &SCHEMA
    }

    fn input_schema(&self) -> &InputSchema {
        &INPUT
    }

    fn create(&self, _ctx: &mut Ctx<'_>, options: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
        if let Some(key) = options.keys().find(|k| *k != "speed") {
            return Err(Refusal::new(format!("unknown option {key:?}; tag takes speed")));
        }
        let speed = match options.get("speed") {
            None => 150.0,
            Some(v) => {
                v.as_i64().filter(|s| (50..=400).contains(s)).ok_or_else(|| Refusal::new("speed is 50..=400"))? as f64
            }
        };
        Ok(Box::new(TagRoom { speed, runners: Vec::new(), it: None, it_since: 0 }))
    }
}

/// One runner: its player and position (units).
#[derive(Debug)]
struct Runner {
    player: PlayerId,
    x: f64,
    y: f64,
}

/// One room of tag.
#[derive(Debug)]
pub struct TagRoom {
    speed: f64,
    /// In join order; a runner's entity id is its player id.
    runners: Vec<Runner>,
    it: Option<PlayerId>,
    /// The tick the current "it" became it.
    it_since: u64,
}

impl TagRoom {
    fn make_it(&mut self, ctx: &mut Ctx<'_>, player: Option<PlayerId>) {
        self.it = player;
        self.it_since = ctx.tick().0;
        let it = player.map_or(Value::Null, |p| Value::from(p.0));
        // Small values, set at most once a second: within every bound.
        let _ = ctx.set_metadata("it", it);
    }
}

impl GameRoom for TagRoom {
    fn join(&mut self, ctx: &mut Ctx<'_>, player: &PlayerInfo, _options: &ValueMap) -> Result<EntityId, Refusal> {
        let (x, y) = (ctx.rng().unit() * WORLD, ctx.rng().unit() * WORLD);
        self.runners.push(Runner { player: player.id, x, y });
        if self.it.is_none() {
            self.make_it(ctx, Some(player.id));
        }
        Ok(EntityId(player.id.0))
    }

    fn leave(&mut self, ctx: &mut Ctx<'_>, player: PlayerId, _why: LeaveReason) {
        self.runners.retain(|r| r.player != player);
        if self.it == Some(player) {
            // A random runner takes over (the room's RNG: reproducible).
            let next = (!self.runners.is_empty())
                .then(|| self.runners[ctx.rng().below(self.runners.len() as u64) as usize].player);
            self.make_it(ctx, next);
        }
    }

    fn step(&mut self, ctx: &mut Ctx<'_>, inputs: &[PlayerInput]) {
        let step = self.speed / f64::from(ctx.tick_hz());
        for input in inputs {
            let Some(r) = self.runners.iter_mut().find(|r| r.player == input.player) else { continue };
            let (dx, dy) = (f64::from(input.data.get(0)), f64::from(input.data.get(1)));
            let len = dx.hypot(dy);
            if len > 0.0 {
                r.x = (r.x + dx / len * step).clamp(0.0, WORLD);
                r.y = (r.y + dy / len * step).clamp(0.0, WORLD);
            }
        }
        let Some(it) = self.it else { return };
        if ctx.tick().0 < self.it_since + ctx.ticks_in(GRACE_S) {
            return;
        }
        let Some(chaser) = self.runners.iter().find(|r| r.player == it) else { return };
        let caught = self.runners.iter().find(|r| r.player != it && (r.x - chaser.x).hypot(r.y - chaser.y) <= REACH);
        if let Some(caught) = caught.map(|r| r.player) {
            let data = Value::Map([("by".into(), Value::from(it.0)), ("who".into(), Value::from(caught.0))].into());
            let _ = ctx.broadcast("tagged", data);
            self.make_it(ctx, Some(caught));
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_>, from: PlayerId, name: &str, data: &Value) -> Result<Value, MessageError> {
        match name {
            "shout" => {
                let text =
                    data.as_str().filter(|t| t.len() <= 100).ok_or(MessageError::refuse("shout a short string"))?;
                let data =
                    Value::Map([("from".into(), Value::from(from.0)), ("text".into(), Value::from(text))].into());
                ctx.broadcast_except(from, "shout", data).map_err(|e| MessageError::refuse(e.to_string()))?;
                Ok(Value::Null)
            }
            _ => Err(MessageError::Unknown),
        }
    }

    fn write_snapshot(&self, out: &mut Vec<Entity>) {
        let mut runners: Vec<_> = self.runners.iter().collect();
        runners.sort_by_key(|r| r.player);
        for r in runners {
            let mut e = Entity::new(EntityId(r.player.0), 0);
            e.values[0] = FieldType::Fixed(8).quantize(r.x);
            e.values[1] = FieldType::Fixed(8).quantize(r.y);
            e.values[2] = i32::from(self.it == Some(r.player));
            out.push(e);
        }
    }
}
