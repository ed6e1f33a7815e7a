//! Generators for tests and benches: a seeded RNG, an arena-like schema and
//! random snapshots that evolve like a game's.

use crate::ids::{EntityId, PlayerId, RoomId, Tick};
use crate::message::Joined;
use crate::schema::{step_per_tick, FieldDef, FieldType, Schema};
use crate::snapshot::{Entity, Snapshot};

/// A small seeded RNG (SplitMix64): reproducible runs without a dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A schema shaped like arena's: x, y integrating vx, vy; hp; score.
#[must_use]
pub fn schema() -> Schema {
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

/// The `joined` of a room of [`schema`] at `tick_hz`: room `r-1-1`,
/// player 1, entity 1, 8 seats, the stick input schema.
#[must_use]
pub fn joined(tick_hz: u32) -> Joined {
    Joined {
        room_id: RoomId("r-1-1".into()),
        game: "arena".into(),
        player_id: PlayerId(1),
        entity_id: EntityId(1),
        tick_hz,
        max_players: 8,
        resume_token: "resume-1".into(),
        schema: schema(),
        input_schema: crate::message::InputData::schema().clone(),
    }
}

/// A random entity of [`schema`].
pub fn entity(rng: &mut Rng, id: u32) -> Entity {
    let mut e = Entity::new(EntityId(id), rng.below(3) as u8);
    e.values[0] = rng.below(16_000) as i32;
    e.values[1] = rng.below(16_000) as i32;
    e.values[2] = rng.below(6_400) as i32 - 3_200;
    e.values[3] = rng.below(6_400) as i32 - 3_200;
    e.values[4] = rng.below(101) as i32;
    e.values[5] = rng.below(50) as i32;
    e
}

/// A random snapshot of `n` entities at `tick`.
pub fn snapshot(rng: &mut Rng, tick: Tick, n: usize) -> Snapshot {
    let entities = (1..=n as u32).map(|id| entity(rng, id)).collect();
    Snapshot { tick, entities }
}

/// The next tick's snapshot: movers advance (most in a straight line), a
/// few turn, take damage, score, die or spawn; ids stay sorted.
pub fn evolve(rng: &mut Rng, prev: &Snapshot, tick_hz: u32, next_id: &mut u32) -> Snapshot {
    let mut entities = Vec::with_capacity(prev.entities.len() + 2);
    for e in &prev.entities {
        if rng.chance(0.01) {
            continue;
        }
        let mut e = *e;
        if rng.chance(0.1) {
            e.values[2] = rng.below(6_400) as i32 - 3_200;
            e.values[3] = rng.below(6_400) as i32 - 3_200;
        }
        e.values[0] += step_per_tick(e.values[2], tick_hz);
        e.values[1] += step_per_tick(e.values[3], tick_hz);
        if rng.chance(0.02) {
            e.values[4] = rng.below(101) as i32;
            e.values[5] = (e.values[5] + 1).min(65_535);
        }
        entities.push(e);
    }
    while rng.chance(0.3) {
        *next_id += 1;
        entities.push(entity(rng, *next_id));
    }
    Snapshot { tick: prev.tick.next(), entities }
}
