//! Games: the API a studio writes its game against, the registry rooms are
//! created from, and the built-in games.
//!
//! A [`Game`] is a factory shared by every shard (`Send + Sync`): its name,
//! its entity [`Schema`], its [`InputSchema`], and [`Game::create`], which
//! reads a room's options and makes that room's [`GameRoom`]. A game room
//! lives on one shard, is never shared, and is driven by its room through
//! lifecycle hooks, each handed a [`Ctx`]:
//!
//! | hook | when | may |
//! | --- | --- | --- |
//! | [`Game::create`] | `create_room` / `join_or_create` made a room | refuse the options ([`Refusal`]) |
//! | [`GameRoom::join`] | a player takes a seat | refuse it; give it an avatar entity |
//! | [`GameRoom::leave`] | a seat is freed ([`LeaveReason`]) | |
//! | [`GameRoom::step`] | every tick, with each player's newest input | |
//! | [`GameRoom::message`] | a player's `game_message` | reply, refuse, or not know the name |
//! | [`GameRoom::write_snapshot`] | every tick, after `step` | |
//! | [`GameRoom::dispose`] | the room closes (empty, shutdown) | send last events |
//!
//! Through the [`Ctx`] every hook reads the tick clock and the room's
//! seeded [`GameRng`] (so a room is reproducible from its seed and
//! testable tick by tick), sets the room's metadata (listed with the room,
//! filtered by `list_rooms`), and sends game events to one player, several
//! or all. Events leave with the room's next tick (after its state), so a
//! `joined` or a `game_reply` always reaches its player before the events
//! its hook sent.
//!
//! Hooks run on the shard's thread, inside its tick pass or its request
//! handling: they must be synchronous and short. Every hook is guarded: a
//! panic closes that room only (its players get `room_closing` saying
//! `game error in <hook>: <message>`) and is counted in `/metrics`; a hook
//! that runs longer than [`GameLimits::slow_hook`] is logged with its room
//! and counted (`tickforge_game_hook_slow_total{hook=...}`).
//!
//! [`GameHarness`] drives a game's room tick by tick without sockets, with
//! real clients rebuilding its state: the way to test a game.
//!
//! # Example
//! A game where every player's `push` input moves one shared counter, and
//! a `reset` message sets it back (GAMES.md walks through a fuller one):
//! ```
//! use std::sync::{Arc, LazyLock};
//! use tickforge_server::game::{Ctx, Game, GameHarness, GameRoom, MessageError, PlayerInfo, PlayerInput, Refusal};
//! use tickforge_protocol::ids::EntityId;
//! use tickforge_protocol::input::InputSchema;
//! use tickforge_protocol::schema::{FieldDef, FieldType, Schema};
//! use tickforge_protocol::snapshot::Entity;
//! use tickforge_protocol::value::{Value, ValueMap};
//!
//! static SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema {
//!     kinds: vec!["counter".into()],
//!     fields: vec![FieldDef { name: "value".into(), ty: FieldType::I32, integrates: None }],
//! });
//! static INPUT: LazyLock<InputSchema> = LazyLock::new(|| InputSchema::new([("push", FieldType::I8)]));
//!
//! struct Counter;
//! struct CounterRoom(i32);
//!
//! impl Game for Counter {
//!     fn name(&self) -> &str { "counter" }
//!     fn schema(&self) -> &Schema { &SCHEMA }
//!     fn input_schema(&self) -> &InputSchema { &INPUT }
//!     fn create(&self, _: &mut Ctx<'_>, _: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
//!         Ok(Box::new(CounterRoom(0)))
//!     }
//! }
//!
//! impl GameRoom for CounterRoom {
//!     fn join(&mut self, _: &mut Ctx<'_>, _: &PlayerInfo, _: &ValueMap) -> Result<EntityId, Refusal> {
//!         Ok(EntityId(0))
//!     }
//!     fn step(&mut self, _: &mut Ctx<'_>, inputs: &[PlayerInput]) {
//!         self.0 += inputs.iter().map(|i| i.data.get(0)).sum::<i32>();
//!     }
//!     fn message(&mut self, ctx: &mut Ctx<'_>, _: tickforge_protocol::ids::PlayerId, name: &str, _: &Value)
//!         -> Result<Value, MessageError> {
//!         match name {
//!             "reset" => {
//!                 self.0 = 0;
//!                 let _ = ctx.broadcast("reset", Value::Null);
//!                 Ok(Value::Null)
//!             }
//!             _ => Err(MessageError::Unknown),
//!         }
//!     }
//!     fn write_snapshot(&self, out: &mut Vec<Entity>) {
//!         let mut e = Entity::new(EntityId(1), 0);
//!         e.values[0] = self.0;
//!         out.push(e);
//!     }
//! }
//!
//! let mut h = GameHarness::new(Arc::new(Counter)).unwrap();
//! let p = h.join().unwrap();
//! h.input_named(p, &[("push", 2)]).unwrap();
//! h.ticks(3);
//! assert_eq!(h.entities_of_kind("counter")[0].get("value"), Some(6.0));
//! assert_eq!(h.message(p, "reset", Value::Null), Ok(Value::Null));
//! h.tick();
//! assert_eq!(h.events(p)[0].0, "reset");
//! ```

pub mod arena;
pub(crate) mod context;
mod harness;
pub(crate) mod host;
pub mod lines;
#[cfg(test)]
mod tests;

pub use context::{ContextError, Ctx, GameLimits, GameStats};
pub use harness::{EntityView, GameHarness, HarnessBuilder};
pub use host::Hook;

use std::sync::Arc;
use tickforge_protocol::ids::{EntityId, PlayerId};
use tickforge_protocol::input::{InputSchema, InputValues};
use tickforge_protocol::message::InputData;
use tickforge_protocol::schema::Schema;
use tickforge_protocol::snapshot::Entity;
use tickforge_protocol::value::{Value, ValueMap};

/// A game type, registered by name: shared by every shard.
pub trait Game: Send + Sync + 'static {
    /// The name clients ask for (`arena`).
    fn name(&self) -> &str;
    /// The schema of this game's entities (sent in `joined`).
    fn schema(&self) -> &Schema;
    /// The fields of this game's input (sent in `joined`; `input.data` is
    /// read with it); by default the stick (`move_x` i8, `move_y` i8,
    /// `buttons` u8), which arena reads.
    fn input_schema(&self) -> &InputSchema {
        InputData::schema()
    }
    /// Makes a new room's simulation for `options` (the `options` of
    /// `create_room` or `join_or_create`; `{}` when none were given). The
    /// context's metadata starts empty: set what the room lists with.
    ///
    /// # Errors
    /// A [`Refusal`] (options this game does not take): the request gets
    /// `rej refused` with its reason and no room is made.
    fn create(&self, ctx: &mut Ctx<'_>, options: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal>;
}

/// One room's simulation, driven by its room on one shard.
pub trait GameRoom {
    /// The most players this room takes, below the room's own seat count
    /// (`max_players`): a two-player game says `Some(2)`. Read once,
    /// after [`Game::create`]. Default: no bound of the game's own.
    fn seats(&self) -> Option<u32> {
        None
    }

    /// A player takes a seat (already in [`Ctx::players`]): spawn what it
    /// controls and return its avatar entity (`EntityId(0)` for none).
    /// `options` are those of its `join_or_create` (`{}` for `join_room`,
    /// the room's options for the creator of the room).
    ///
    /// # Errors
    /// A [`Refusal`]: the player gets `rej refused` with its reason and
    /// takes no seat.
    fn join(&mut self, ctx: &mut Ctx<'_>, player: &PlayerInfo, options: &ValueMap) -> Result<EntityId, Refusal>;

    /// A seat was freed (no longer in [`Ctx::players`]): remove what the
    /// player controls. Default: nothing.
    fn leave(&mut self, ctx: &mut Ctx<'_>, player: PlayerId, why: LeaveReason) {
        let _ = (ctx, player, why);
    }

    /// Advances the simulation by one tick ([`Ctx::tick`]) with every
    /// seated player's newest input (neutral, all zero, before its first).
    fn step(&mut self, ctx: &mut Ctx<'_>, inputs: &[PlayerInput]);

    /// A player's `game_message`: `Ok` is the `game_reply`'s data. The
    /// name and the value were checked against the server's bounds first.
    /// Default: no message is known.
    ///
    /// # Errors
    /// [`MessageError::Unknown`] (`rej unsupported`) for a name this game
    /// does not know; [`MessageError::Refused`] (`rej refused`) with the
    /// game's reason.
    fn message(&mut self, ctx: &mut Ctx<'_>, from: PlayerId, name: &str, data: &Value) -> Result<Value, MessageError> {
        let _ = (ctx, from, name, data);
        Err(MessageError::Unknown)
    }

    /// Appends the current entities to `out` (cleared by the caller),
    /// sorted by ascending id, values quantized per the schema.
    fn write_snapshot(&self, out: &mut Vec<Entity>);

    /// The room is closing (empty past its grace, or the server shuts
    /// down): events sent now still reach its players, before
    /// `room_closing`. Not called after the game panicked. Default: nothing.
    fn dispose(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }
}

/// One player's newest input, as a room hands it to its game each tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerInput {
    /// The player.
    pub player: PlayerId,
    /// Its newest input, one quantized value per field of the game's input
    /// schema, in order (all zero before the first one; `InputData::from`
    /// reads the stick, [`InputValues::named`] a field by name).
    pub data: InputValues,
}

/// A seated player, as hooks see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlayerInfo {
    /// Its id in the room.
    pub id: PlayerId,
    /// Its user id (the token's `sub`), when identities are on.
    pub user_id: Option<String>,
    /// Its display name (the token's `name`), when it has one.
    pub name: Option<String>,
}

/// Why a seat was freed.
///
/// A connection that ends without `leave_room` does not free its seat at
/// once: the seat is held for the reconnect grace (`--reconnect-grace`),
/// the player still in [`Ctx::players`] with neutral input, and a `resume`
/// on any connection continues it as the same player (no leave, no join:
/// the game sees nothing of the move). Only a seat that is freed reaches
/// [`GameRoom::leave`]. Non-exhaustive: a game treats a reason it does not
/// know as a disconnection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveReason {
    /// The player asked (`leave_room`).
    Left,
    /// Its connection ended (the socket dropped, timed out, or closed) and
    /// the seat was not resumed within the reconnect grace.
    Disconnected,
    /// An operator removed the player (the monitor's disconnect): the
    /// seat is freed at once, never held.
    ByOperator,
    /// Its connection was closed with this close reason's label and its
    /// seat not held: `shutting_down` (a draining server holds no seats),
    /// or any close (`normal`, `too_slow`, `flooding`, ...) when the
    /// reconnect grace is 0.
    Closed(&'static str),
}

impl LeaveReason {
    /// The reason as `player_left` carries it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Disconnected => "disconnected",
            Self::ByOperator => "disconnected by an operator",
            Self::Closed(label) => label,
        }
    }
}

/// A game said no (to options or a join), with its reason for the player.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Refusal {
    /// A refusal with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A game message the game does not answer with a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// The game has no message of this name: `rej unsupported`.
    Unknown,
    /// The game said no, with its reason: `rej refused`.
    Refused(String),
}

impl MessageError {
    /// A refusal with `reason`.
    pub fn refuse(reason: impl Into<String>) -> Self {
        Self::Refused(reason.into())
    }
}

impl From<Refusal> for MessageError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r.0)
    }
}

/// The games a server hosts, by name.
#[derive(Clone, Default)]
pub struct GameRegistry {
    games: Vec<Arc<dyn Game>>,
}

impl std::fmt::Debug for GameRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.games.iter().map(|g| g.name())).finish()
    }
}

impl GameRegistry {
    /// A registry with the built-in games: `arena` (the reference
    /// workload) and `lines` (turn-based: tic-tac-toe, connect four,
    /// gomoku).
    #[must_use]
    pub fn with_builtin() -> Self {
        let mut registry = Self::default();
        registry.register(Arc::new(arena::Arena::default()));
        registry.register(Arc::new(lines::Lines::default()));
        registry
    }

    /// Adds a game; one of the same name is replaced.
    pub fn register(&mut self, game: Arc<dyn Game>) {
        self.games.retain(|g| g.name() != game.name());
        self.games.push(game);
    }

    /// The game called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Game>> {
        self.games.iter().find(|g| g.name() == name)
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.games.iter().map(|g| g.name())
    }
}

/// A small seeded RNG (SplitMix64) for games: reproducible rooms. Each
/// room has one, seeded at its creation ([`Ctx::rng`]).
#[derive(Clone, Debug)]
pub struct GameRng(u64);

impl GameRng {
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

    /// A uniform real in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: no modulo bias worth speaking of for game use.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}
