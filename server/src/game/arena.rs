//! `arena`, the reference game (WORKLOAD.md): players steer avatars and fire
//! projectiles in a 1000 x 1000 world among wandering NPCs.
//!
//! The simulation runs on the quantized values themselves (1/16 unit for
//! positions, 1/16 unit/s for velocities), and moves every body by exactly
//! [`step_per_tick`] of its velocity each tick, so the snapshot is the
//! simulation state (bit-exact on clients) and the binary delta's dead
//! reckoning predicts straight-line motion exactly: an NPC walking to its
//! target or a projectile in flight costs no bytes until it turns.
//!
//! Every random draw comes from the room's RNG ([`Ctx::rng`]), in the same
//! order as before the game API had hooks, so a room's bytes depend only on
//! its seed and its players' inputs. Arena takes any options and sets no
//! metadata.

use super::{Ctx, Game, GameRng, GameRoom, PlayerInfo, PlayerInput, Refusal};
use tickforge_protocol::ids::{EntityId, PlayerId, Tick};
use tickforge_protocol::message::InputData;
use tickforge_protocol::schema::{step_per_tick, FieldDef, FieldType, Schema};
use tickforge_protocol::snapshot::Entity;
use tickforge_protocol::value::ValueMap;

/// Quantization of positions and velocities: 1/16 unit (and unit/s).
pub const SCALE: u32 = 16;
/// The world's side in quantized units (1000 units).
pub const WORLD_Q: i32 = 1000 * SCALE as i32;
/// Player speed at full stick, units per second.
pub const PLAYER_SPEED: f64 = 200.0;
/// Projectile speed, units per second.
pub const PROJECTILE_SPEED: f64 = 400.0;
/// NPC speed, units per second.
pub const NPC_SPEED: f64 = 100.0;
/// How long a projectile lives, seconds.
pub const PROJECTILE_LIFE_S: f64 = 1.0;
/// Least time between two shots of one player, seconds.
pub const FIRE_COOLDOWN_S: f64 = 0.25;
/// A hit: a projectile passing within this many units of a centre.
pub const HIT_RADIUS: f64 = 10.0;
/// Damage per hit.
pub const HIT_DAMAGE: i32 = 10;
/// Health at spawn.
pub const FULL_HP: i32 = 100;

/// Entity kind indices (into the schema's kinds).
pub mod kind {
    /// A player's avatar.
    pub const PLAYER: u8 = 0;
    /// A wandering NPC.
    pub const NPC: u8 = 1;
    /// A projectile.
    pub const PROJECTILE: u8 = 2;
}

/// Field indices (into the schema's fields).
pub mod field {
    /// Position x (fixed 1/16, integrates vx).
    pub const X: usize = 0;
    /// Position y (fixed 1/16, integrates vy).
    pub const Y: usize = 1;
    /// Velocity x (fixed 1/16 unit/s).
    pub const VX: usize = 2;
    /// Velocity y (fixed 1/16 unit/s).
    pub const VY: usize = 3;
    /// Health, 0..=100.
    pub const HP: usize = 4;
    /// Score, hits landed.
    pub const SCORE: usize = 5;
}

/// The arena game factory.
#[derive(Debug)]
pub struct Arena {
    /// NPCs per room (WORKLOAD.md default 16).
    pub npcs_per_room: u32,
    schema: Schema,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new(16)
    }
}

impl Arena {
    /// An arena with `npcs_per_room` NPCs in each room.
    #[must_use]
    pub fn new(npcs_per_room: u32) -> Self {
        let f = |name: &str, ty, integrates| FieldDef { name: name.into(), ty, integrates };
        let fixed = FieldType::Fixed(SCALE);
        let schema = Schema {
            kinds: vec!["player".into(), "npc".into(), "projectile".into()],
            fields: vec![
                f("x", fixed, Some(field::VX as u8)),
                f("y", fixed, Some(field::VY as u8)),
                f("vx", fixed, None),
                f("vy", fixed, None),
                f("hp", FieldType::U8, None),
                f("score", FieldType::U16, None),
            ],
        };
        Self { npcs_per_room, schema }
    }
}

impl Game for Arena {
    fn name(&self) -> &str {
        "arena"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn create(&self, ctx: &mut Ctx<'_>, _options: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
        let hz = ctx.tick_hz();
        Ok(Box::new(ArenaRoom::new(ctx.rng(), hz, self.npcs_per_room)))
    }
}

/// One simulated body; all lengths in quantized units.
#[derive(Clone, Debug)]
struct Body {
    id: EntityId,
    kind: u8,
    x: i32,
    y: i32,
    vx: i32,
    vy: i32,
    hp: i32,
    score: i32,
    /// Projectiles: the avatar that fired it.
    owner: EntityId,
    /// Projectiles: the tick it disappears at.
    expires: u64,
    /// NPCs: the point walked to.
    target: (i32, i32),
}

#[derive(Clone, Debug)]
struct Seat {
    player: PlayerId,
    avatar: EntityId,
    last_fire: Option<u64>,
}

/// One arena room's simulation.
#[derive(Debug)]
pub struct ArenaRoom {
    tick_hz: u32,
    next_id: u32,
    /// Sorted by id: ids only grow and new bodies are appended.
    bodies: Vec<Body>,
    seats: Vec<Seat>,
    /// Reused scratch for hit detection.
    hits: Vec<(usize, usize)>,
}

fn quantize(v: f64) -> i32 {
    FieldType::Fixed(SCALE).quantize(v)
}

impl ArenaRoom {
    /// A room with `npcs` NPCs placed with `rng` (the room's).
    #[must_use]
    pub fn new(rng: &mut GameRng, tick_hz: u32, npcs: u32) -> Self {
        let mut room =
            Self { tick_hz: tick_hz.max(1), next_id: 1, bodies: Vec::new(), seats: Vec::new(), hits: Vec::new() };
        for _ in 0..npcs {
            let (x, y) = random_point(rng);
            let id = room.spawn(kind::NPC, x, y);
            let at = room.bodies.len() - 1;
            room.retarget(rng, at);
            debug_assert_eq!(room.bodies[at].id, id);
        }
        room
    }

    fn spawn(&mut self, kind: u8, x: i32, y: i32) -> EntityId {
        // Ids never wrap: at u32::MAX the room keeps reusing the last id,
        // which a room would need 4 billion spawns (years of play) to reach.
        let id = EntityId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        self.bodies.push(Body {
            id,
            kind,
            x,
            y,
            vx: 0,
            vy: 0,
            hp: FULL_HP,
            score: 0,
            owner: EntityId(0),
            expires: 0,
            target: (x, y),
        });
        id
    }

    /// Points NPC `at` at a new random target at NPC speed.
    fn retarget(&mut self, rng: &mut GameRng, at: usize) {
        let target = random_point(rng);
        let b = &mut self.bodies[at];
        b.target = target;
        let (dx, dy) = (f64::from(target.0 - b.x), f64::from(target.1 - b.y));
        let len = dx.hypot(dy);
        if len < 1.0 {
            (b.vx, b.vy) = (0, 0);
        } else {
            b.vx = quantize(dx / len * NPC_SPEED);
            b.vy = quantize(dy / len * NPC_SPEED);
        }
    }

    fn index_of(&self, id: EntityId) -> Option<usize> {
        self.bodies.binary_search_by_key(&id, |b| b.id).ok()
    }

    fn ticks(&self, seconds: f64) -> u64 {
        (seconds * f64::from(self.tick_hz)).round().max(1.0) as u64
    }

    fn apply_inputs(&mut self, tick: u64, inputs: &[PlayerInput]) {
        let cooldown = self.ticks(FIRE_COOLDOWN_S);
        let life = self.ticks(PROJECTILE_LIFE_S);
        for input in inputs {
            let Some(seat) = self.seats.iter().position(|s| s.player == input.player) else { continue };
            let Some(at) = self.index_of(self.seats[seat].avatar) else { continue };
            // -128 is read as -127 so that both directions have one range.
            let axis = |m: i8| f64::from(m.max(-127)) / 127.0 * PLAYER_SPEED;
            let data = InputData::from(input.data);
            let (vx, vy) = (quantize(axis(data.move_x)), quantize(axis(data.move_y)));
            (self.bodies[at].vx, self.bodies[at].vy) = (vx, vy);
            let ready = self.seats[seat].last_fire.is_none_or(|t| tick >= t + cooldown);
            if data.buttons & InputData::FIRE != 0 && ready {
                self.seats[seat].last_fire = Some(tick);
                let (x, y, owner) = (self.bodies[at].x, self.bodies[at].y, self.bodies[at].id);
                let (dx, dy) = if vx == 0 && vy == 0 { (1.0, 0.0) } else { (f64::from(vx), f64::from(vy)) };
                let len = dx.hypot(dy);
                self.spawn(kind::PROJECTILE, x, y);
                let p = self.bodies.last_mut().expect("just spawned");
                p.vx = quantize(dx / len * PROJECTILE_SPEED);
                p.vy = quantize(dy / len * PROJECTILE_SPEED);
                p.owner = owner;
                p.expires = tick + life;
            }
        }
    }

    fn move_bodies(&mut self, rng: &mut GameRng) {
        let hz = self.tick_hz;
        for i in 0..self.bodies.len() {
            let b = &mut self.bodies[i];
            let (sx, sy) = (step_per_tick(b.vx, hz), step_per_tick(b.vy, hz));
            match b.kind {
                kind::PLAYER => {
                    b.x = (b.x + sx).clamp(0, WORLD_Q);
                    b.y = (b.y + sy).clamp(0, WORLD_Q);
                }
                kind::NPC => {
                    let (tx, ty) = b.target;
                    // Squared distances, exact in integers (positions are
                    // under 2^15 quantized units): no square root per NPC
                    // per tick, and no rounding in the comparisons.
                    let remaining = dist2(tx - b.x, ty - b.y);
                    let after = dist2(tx - b.x - sx, ty - b.y - sy);
                    // Per-axis rounding of the step bends the path a little,
                    // so an NPC may pass its target at a small distance:
                    // arrival is also "this step would not bring it closer".
                    if remaining <= dist2(sx, sy) || after >= remaining {
                        (b.x, b.y) = (tx.clamp(0, WORLD_Q), ty.clamp(0, WORLD_Q));
                        self.retarget(rng, i);
                    } else {
                        b.x = (b.x + sx).clamp(0, WORLD_Q);
                        b.y = (b.y + sy).clamp(0, WORLD_Q);
                    }
                }
                _ => {
                    // Projectiles fly on; they are removed after hits are
                    // resolved, so a hit along their last step still counts.
                    b.x = b.x.saturating_add(sx);
                    b.y = b.y.saturating_add(sy);
                }
            }
        }
    }

    /// Removes projectiles whose life ended or that left the world.
    fn expire_projectiles(&mut self, tick: u64) {
        let inside = |v: i32| (0..=WORLD_Q).contains(&v);
        self.bodies.retain(|b| b.kind != kind::PROJECTILE || (tick < b.expires && inside(b.x) && inside(b.y)));
    }

    /// Finds projectiles that passed within the hit radius of a target this
    /// tick (along their last step, so fast ones cannot tunnel through).
    fn resolve_hits(&mut self, rng: &mut GameRng) {
        let hz = self.tick_hz;
        let radius = HIT_RADIUS * f64::from(SCALE);
        let radius2 = radius * radius;
        self.hits.clear();
        for (p, proj) in self.bodies.iter().enumerate().filter(|(_, b)| b.kind == kind::PROJECTILE) {
            let end = (f64::from(proj.x), f64::from(proj.y));
            let start = (end.0 - f64::from(step_per_tick(proj.vx, hz)), end.1 - f64::from(step_per_tick(proj.vy, hz)));
            let target = self.bodies.iter().enumerate().find(|(_, t)| {
                t.kind != kind::PROJECTILE
                    && t.id != proj.owner
                    && segment_distance2(start, end, (f64::from(t.x), f64::from(t.y))) <= radius2
            });
            if let Some((t, _)) = target {
                self.hits.push((p, t));
            }
        }
        let mut removed = Vec::new();
        let mut respawned = Vec::new();
        for k in 0..self.hits.len() {
            let (p, t) = self.hits[k];
            if respawned.contains(&t) {
                // Already down this tick: the projectile flew through the
                // spot the target fell at and hits nothing.
                continue;
            }
            let owner = self.bodies[p].owner;
            let target = &mut self.bodies[t];
            target.hp = (target.hp - HIT_DAMAGE).max(0);
            if target.hp == 0 {
                respawned.push(t);
                let (x, y) = random_point(rng);
                let target = &mut self.bodies[t];
                (target.x, target.y, target.hp) = (x, y, FULL_HP);
                if target.kind == kind::NPC {
                    self.retarget(rng, t);
                }
            }
            if let Some(o) = self.index_of(owner) {
                self.bodies[o].score = (self.bodies[o].score + 1).min(i32::from(u16::MAX));
            }
            removed.push(self.bodies[p].id);
        }
        if !removed.is_empty() {
            self.bodies.retain(|b| !removed.contains(&b.id));
        }
    }
}

/// A uniform point in the world.
fn random_point(rng: &mut GameRng) -> (i32, i32) {
    let x = (rng.unit() * f64::from(WORLD_Q)) as i32;
    let y = (rng.unit() * f64::from(WORLD_Q)) as i32;
    (x, y)
}

/// The squared length of the vector (`dx`, `dy`), exact: quantized
/// coordinates and steps are far below 2^26, so the sum fits an i64.
fn dist2(dx: i32, dy: i32) -> i64 {
    let (dx, dy) = (i64::from(dx), i64::from(dy));
    dx * dx + dy * dy
}

/// Squared distance from point `c` to the segment `a`-`b` (compared with
/// a squared radius: no square root per projectile per target).
fn segment_distance2(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    let (abx, aby) = (b.0 - a.0, b.1 - a.1);
    let len2 = abx * abx + aby * aby;
    let t = if len2 == 0.0 { 0.0 } else { (((c.0 - a.0) * abx + (c.1 - a.1) * aby) / len2).clamp(0.0, 1.0) };
    let (px, py) = (a.0 + t * abx, a.1 + t * aby);
    let (dx, dy) = (c.0 - px, c.1 - py);
    dx * dx + dy * dy
}

impl ArenaRoom {
    /// Spawns `player`'s avatar at a random point; returns its id.
    pub fn add_player(&mut self, rng: &mut GameRng, player: PlayerId) -> EntityId {
        let (x, y) = random_point(rng);
        let avatar = self.spawn(kind::PLAYER, x, y);
        self.seats.push(Seat { player, avatar, last_fire: None });
        avatar
    }

    /// Removes `player`'s avatar.
    pub fn remove_player(&mut self, player: PlayerId) {
        if let Some(seat) = self.seats.iter().position(|s| s.player == player) {
            let avatar = self.seats.swap_remove(seat).avatar;
            self.bodies.retain(|b| b.id != avatar);
        }
    }

    /// One tick: inputs, movement, hits, expiry.
    pub fn step_with(&mut self, rng: &mut GameRng, tick: Tick, inputs: &[PlayerInput]) {
        self.apply_inputs(tick.0, inputs);
        self.move_bodies(rng);
        self.resolve_hits(rng);
        self.expire_projectiles(tick.0);
    }
}

impl GameRoom for ArenaRoom {
    fn join(&mut self, ctx: &mut Ctx<'_>, player: &PlayerInfo, _options: &ValueMap) -> Result<EntityId, Refusal> {
        Ok(self.add_player(ctx.rng(), player.id))
    }

    fn leave(&mut self, _ctx: &mut Ctx<'_>, player: PlayerId, _why: super::LeaveReason) {
        self.remove_player(player);
    }

    fn step(&mut self, ctx: &mut Ctx<'_>, inputs: &[PlayerInput]) {
        let tick = ctx.tick();
        self.step_with(ctx.rng(), tick, inputs);
    }

    fn write_snapshot(&self, out: &mut Vec<Entity>) {
        out.extend(self.bodies.iter().map(|b| {
            let mut e = Entity::new(b.id, b.kind);
            e.values[..6].copy_from_slice(&[b.x, b.y, b.vx, b.vy, b.hp, b.score]);
            e
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A room and its RNG, as a room's context would hold them.
    fn arena(seed: u64, hz: u32, npcs: u32) -> (ArenaRoom, GameRng) {
        let mut rng = GameRng::new(seed);
        (ArenaRoom::new(&mut rng, hz, npcs), rng)
    }

    fn snapshot(room: &ArenaRoom) -> Vec<Entity> {
        let mut out = Vec::new();
        room.write_snapshot(&mut out);
        out
    }

    #[test]
    fn rooms_are_reproducible_from_their_seed() {
        let (mut a, mut ra) = arena(7, 30, 16);
        let (mut b, mut rb) = arena(7, 30, 16);
        for t in 1..200 {
            a.step_with(&mut ra, Tick(t), &[]);
            b.step_with(&mut rb, Tick(t), &[]);
        }
        assert_eq!(snapshot(&a), snapshot(&b));
        assert_eq!(snapshot(&a).len(), 16);
    }

    /// Regression: rounding each axis of the step bent NPC paths so that
    /// they missed their target and walked out of the world for good.
    #[test]
    fn npcs_keep_wandering_inside_the_world() {
        for hz in [10, 30, 128] {
            let (mut room, mut rng) = arena(11, hz, 16);
            let mut targets_reached = 0;
            for t in 1..=u64::from(hz) * 120 {
                let before: Vec<_> = room.bodies.iter().map(|b| b.target).collect();
                room.step_with(&mut rng, Tick(t), &[]);
                targets_reached += room.bodies.iter().zip(&before).filter(|(b, t)| b.target != **t).count();
                for b in &room.bodies {
                    assert!((0..=WORLD_Q).contains(&b.x) && (0..=WORLD_Q).contains(&b.y), "{hz} Hz tick {t}: {b:?}");
                }
            }
            assert!(targets_reached > 16 * 5, "{hz} Hz: NPCs keep picking targets ({targets_reached})");
        }
    }

    #[test]
    fn a_player_moves_at_its_speed_and_stays_in_the_world() {
        let (mut room, mut rng) = arena(1, 30, 0);
        let avatar = room.add_player(&mut rng, PlayerId(1));
        let input =
            PlayerInput { player: PlayerId(1), data: InputData { move_x: 127, move_y: -128, buttons: 0 }.into() };
        let x0 = room.bodies[0].x;
        room.step_with(&mut rng, Tick(1), &[input]);
        let b = &room.bodies[room.index_of(avatar).unwrap()];
        assert_eq!(b.vx, 3200);
        assert_eq!(b.vy, -3200);
        assert_eq!(b.x, (x0 + 107).min(WORLD_Q));
        for t in 2..400 {
            room.step_with(&mut rng, Tick(t), &[input]);
        }
        let b = &room.bodies[0];
        assert_eq!((b.x, b.y), (WORLD_Q, 0));
    }

    /// PROTOCOL.md section 10: bit 0 of `buttons` fires, bits 1 to 7 do nothing.
    #[test]
    fn only_bit_0_of_buttons_fires() {
        let (mut room, mut rng) = arena(1, 30, 0);
        room.add_player(&mut rng, PlayerId(1));
        let projectiles = |r: &ArenaRoom| r.bodies.iter().filter(|b| b.kind == kind::PROJECTILE).count();
        let press =
            |buttons| PlayerInput { player: PlayerId(1), data: InputData { move_x: 0, move_y: 0, buttons }.into() };
        room.step_with(&mut rng, Tick(1), &[press(0xfe)]);
        assert_eq!(projectiles(&room), 0);
        room.step_with(&mut rng, Tick(2), &[press(InputData::FIRE)]);
        assert_eq!(projectiles(&room), 1);
    }

    #[test]
    fn fire_spawns_projectiles_with_a_cooldown_and_a_life() {
        let (mut room, mut rng) = arena(1, 30, 0);
        room.add_player(&mut rng, PlayerId(1));
        let fire = PlayerInput { player: PlayerId(1), data: InputData { move_x: 0, move_y: 0, buttons: 1 }.into() };
        let projectiles = |r: &ArenaRoom| r.bodies.iter().filter(|b| b.kind == kind::PROJECTILE).count();
        room.step_with(&mut rng, Tick(1), &[fire]);
        assert_eq!(projectiles(&room), 1);
        let p = room.bodies.iter().find(|b| b.kind == kind::PROJECTILE).unwrap();
        assert_eq!((p.vx, p.vy), (6400, 0), "a still player fires along +x");
        for t in 2..9 {
            room.step_with(&mut rng, Tick(t), &[fire]);
        }
        assert_eq!(projectiles(&room), 1, "250 ms cooldown at 30 Hz is 8 ticks");
        room.step_with(&mut rng, Tick(9), &[fire]);
        assert_eq!(projectiles(&room), 2);
        let idle = PlayerInput { player: PlayerId(1), data: InputData::default().into() };
        for t in 10..60 {
            room.step_with(&mut rng, Tick(t), &[idle]);
        }
        assert_eq!(projectiles(&room), 0, "projectiles live one second");
    }

    #[test]
    fn a_hit_damages_the_target_and_scores_for_the_owner() {
        let (mut room, mut rng) = arena(3, 30, 0);
        let shooter = room.add_player(&mut rng, PlayerId(1));
        let target = room.add_player(&mut rng, PlayerId(2));
        let (s, t) = (room.index_of(shooter).unwrap(), room.index_of(target).unwrap());
        (room.bodies[s].x, room.bodies[s].y) = (1600, 1600);
        (room.bodies[t].x, room.bodies[t].y) = (1600 + 20 * 16, 1600);
        let fire = PlayerInput { player: PlayerId(1), data: InputData { move_x: 0, move_y: 0, buttons: 1 }.into() };
        for t in 1..6 {
            room.step_with(&mut rng, Tick(t), &[fire]);
        }
        let (s, t) = (room.index_of(shooter).unwrap(), room.index_of(target).unwrap());
        assert_eq!(room.bodies[t].hp, 90);
        assert_eq!(room.bodies[s].score, 1);
        assert!(room.bodies.iter().all(|b| b.kind != kind::PROJECTILE));
    }

    #[test]
    fn the_schema_is_valid_and_leaving_removes_the_avatar() {
        assert_eq!(Arena::default().schema().validate(), Ok(()));
        let (mut room, mut rng) = arena(1, 30, 2);
        let avatar = room.add_player(&mut rng, PlayerId(5));
        assert!(room.index_of(avatar).is_some());
        room.remove_player(PlayerId(5));
        assert!(room.index_of(avatar).is_none());
        assert!(snapshot(&room).windows(2).all(|w| w[0].id < w[1].id));
    }
}
