//! Games: the trait a game implements and the registry rooms create them from.
//!
//! A [`Game`] is a factory shared by every shard (`Send + Sync`); each room
//! gets its own [`GameRoom`], which lives on one shard and is stepped by the
//! room's tick loop with every player's newest input. A game declares the
//! [`Schema`] of its entities; the protocol crate builds deltas from it.

pub mod arena;

use std::sync::Arc;
use tickforge_protocol::ids::{EntityId, PlayerId, Tick};
use tickforge_protocol::input::{InputSchema, InputValues};
use tickforge_protocol::message::InputData;
use tickforge_protocol::schema::Schema;
use tickforge_protocol::snapshot::Entity;

/// A game type, registered by name.
pub trait Game: Send + Sync + 'static {
    /// The name clients ask for (`arena`).
    fn name(&self) -> &str;
    /// The schema of this game's entities.
    fn schema(&self) -> &Schema;
    /// The fields of this game's input; by default the stick (`move_x`
    /// i8, `move_y` i8, `buttons` u8), which arena reads.
    fn input_schema(&self) -> &InputSchema {
        InputData::schema()
    }
    /// A new room's simulation, seeded for reproducibility.
    fn new_room(&self, seed: u64, tick_hz: u32) -> Box<dyn GameRoom>;
}

/// One player's newest input, as a room hands it to its game each tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerInput {
    /// The player.
    pub player: PlayerId,
    /// Its newest input, in the game's input schema (all zero before the
    /// first one; `InputData::from` reads the stick).
    pub data: InputValues,
}

/// One room's simulation.
pub trait GameRoom {
    /// A player joined: spawn what it controls; returns its avatar entity
    /// (`EntityId(0)` when the game gives none).
    fn add_player(&mut self, player: PlayerId) -> EntityId;
    /// A player left: remove what it controls.
    fn remove_player(&mut self, player: PlayerId);
    /// Advances the simulation by one tick with every player's newest input.
    fn step(&mut self, tick: Tick, inputs: &[PlayerInput]);
    /// Appends the current entities to `out` (cleared by the caller),
    /// sorted by ascending id, values quantized per the schema.
    fn write_snapshot(&self, out: &mut Vec<Entity>);
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
    /// A registry with the built-in games (`arena`).
    #[must_use]
    pub fn with_builtin() -> Self {
        let mut registry = Self::default();
        registry.register(Arc::new(arena::Arena::default()));
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

/// A small seeded RNG (SplitMix64) for games: reproducible rooms.
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
}
