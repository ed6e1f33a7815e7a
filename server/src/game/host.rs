//! A room's game, guarded: [`GameHost`] owns the game's room, its RNG and
//! its [`RoomState`], builds each hook's [`Ctx`], and runs every hook under
//! `catch_unwind` and a stopwatch. A panic is reported to the room (which
//! closes) and the game is never called again; a slow hook is logged with
//! its room and counted.
//!
//! The stopwatch reads the monotonic clock around each hook: a measurement
//! for operators, never an input of the game (which sees the tick clock).

use super::context::{GameStats, OutEvent, RoomState};
use super::{Ctx, Game, GameLimits, GameRng, GameRoom, LeaveReason, MessageError, PlayerInfo, PlayerInput};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;
use tickforge_protocol::ids::{EntityId, PlayerId, RoomId, Tick};
use tickforge_protocol::snapshot::Entity;
use tickforge_protocol::value::{Value, ValueMap};
use tracing::warn;

/// The hooks, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// [`Game::create`].
    Create,
    /// [`GameRoom::join`].
    Join,
    /// [`GameRoom::leave`].
    Leave,
    /// [`GameRoom::step`].
    Step,
    /// [`GameRoom::message`].
    Message,
    /// [`GameRoom::write_snapshot`].
    Snapshot,
    /// [`GameRoom::dispose`].
    Dispose,
}

impl Hook {
    /// Every hook, in metrics order.
    pub const ALL: [Self; 7] =
        [Self::Create, Self::Join, Self::Leave, Self::Step, Self::Message, Self::Snapshot, Self::Dispose];

    /// Its name in logs, metrics and `room_closing` reasons.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Step => "step",
            Self::Message => "message",
            Self::Snapshot => "write_snapshot",
            Self::Dispose => "dispose",
        }
    }
}

/// A hook that did not return normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HookError {
    /// The game refused (options, a join), with its reason.
    Refused(String),
    /// The hook panicked with this message: the game is not called again.
    Panicked(String),
}

/// The text of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Runs `f` under `catch_unwind` and the stopwatch.
fn guarded<R>(
    room_id: &RoomId,
    state: &mut RoomState,
    hook: Hook,
    f: impl FnOnce(&mut RoomState) -> R,
) -> Result<R, String> {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| f(state)));
    let took = started.elapsed();
    if took > state.limits.slow_hook {
        let i = Hook::ALL.iter().position(|h| *h == hook).unwrap_or(0);
        state.stats.slow_hooks[i] = state.stats.slow_hooks[i].saturating_add(1);
        let took_ms = took.as_secs_f64() * 1e3;
        let limit_ms = state.limits.slow_hook.as_secs_f64() * 1e3;
        warn!(room = %room_id, hook = hook.name(), took_ms, limit_ms, "game hook ran long");
    }
    result.map_err(|panic| panic_message(&*panic))
}

/// A room's game and everything its hooks reach.
pub(crate) struct GameHost {
    room_id: RoomId,
    tick_hz: u32,
    game: Box<dyn GameRoom>,
    rng: GameRng,
    state: RoomState,
    /// Set by a panic: the game is not called again.
    failed: bool,
}

impl std::fmt::Debug for GameHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GameHost").field("room_id", &self.room_id).field("failed", &self.failed).finish_non_exhaustive()
    }
}

impl GameHost {
    /// Makes a room of `game` with `options`, its RNG seeded with `seed`.
    pub(crate) fn create(
        game: &dyn Game,
        room_id: RoomId,
        tick_hz: u32,
        seed: u64,
        options: &ValueMap,
        limits: GameLimits,
    ) -> Result<Self, HookError> {
        let mut rng = GameRng::new(seed);
        let mut state = RoomState::new(limits);
        let made = guarded(&room_id, &mut state, Hook::Create, |state| {
            let mut ctx = Ctx { room_id: &room_id, tick: Tick(0), tick_hz, rng: &mut rng, state };
            game.create(&mut ctx, options)
        });
        match made {
            Ok(Ok(game)) => Ok(Self { room_id, tick_hz, game, rng, state, failed: false }),
            Ok(Err(refusal)) => Err(HookError::Refused(refusal.0)),
            Err(panic) => Err(HookError::Panicked(panic)),
        }
    }

    /// Calls a hook with a context at `tick`.
    fn call<R>(
        &mut self,
        hook: Hook,
        tick: Tick,
        f: impl FnOnce(&mut dyn GameRoom, &mut Ctx<'_>) -> R,
    ) -> Result<R, String> {
        if self.failed {
            return Err("the game failed earlier".into());
        }
        let queued = self.state.events.len();
        let (room_id, tick_hz, game, rng) = (&self.room_id, self.tick_hz, &mut self.game, &mut self.rng);
        let result = guarded(room_id, &mut self.state, hook, |state| {
            let mut ctx = Ctx { room_id, tick, tick_hz, rng, state };
            f(game.as_mut(), &mut ctx)
        });
        if result.is_err() {
            // What the failed hook sent half-way is not sent.
            self.state.events.truncate(queued);
            self.fault();
        }
        result
    }

    /// A hook panicked: the game is not called again.
    fn fault(&mut self) {
        self.failed = true;
        self.state.stats.panics = self.state.stats.panics.saturating_add(1);
    }

    /// The game's seat bound ([`GameRoom::seats`]).
    pub(crate) fn seats(&self) -> Option<u32> {
        if self.failed {
            return None;
        }
        catch_unwind(AssertUnwindSafe(|| self.game.seats())).ok().flatten()
    }

    /// Seats `player`: the game's join hook, which may refuse (then the
    /// player is not in the roster and the events the hook sent are taken
    /// back).
    pub(crate) fn join(&mut self, tick: Tick, player: &PlayerInfo, options: &ValueMap) -> Result<EntityId, HookError> {
        let queued = self.state.events.len();
        self.state.add_member(player.clone());
        match self.call(Hook::Join, tick, |game, ctx| game.join(ctx, player, options)) {
            Ok(Ok(entity)) => Ok(entity),
            Ok(Err(refusal)) => {
                self.state.remove_member(player.id);
                self.state.events.truncate(queued);
                Err(HookError::Refused(refusal.0))
            }
            Err(panic) => {
                self.state.remove_member(player.id);
                Err(HookError::Panicked(panic))
            }
        }
    }

    /// Frees `player`'s seat: out of the roster, then the leave hook.
    pub(crate) fn leave(&mut self, tick: Tick, player: PlayerId, why: LeaveReason) -> Result<(), String> {
        self.state.remove_member(player);
        self.call(Hook::Leave, tick, |game, ctx| game.leave(ctx, player, why))
    }

    /// One tick of the simulation.
    pub(crate) fn step(&mut self, tick: Tick, inputs: &[PlayerInput]) -> Result<(), String> {
        self.call(Hook::Step, tick, |game, ctx| game.step(ctx, inputs))
    }

    /// A player's game message.
    pub(crate) fn message(
        &mut self,
        tick: Tick,
        from: PlayerId,
        name: &str,
        data: &Value,
    ) -> Result<Result<Value, MessageError>, String> {
        self.call(Hook::Message, tick, |game, ctx| game.message(ctx, from, name, data))
    }

    /// The room's entities.
    pub(crate) fn write_snapshot(&mut self, out: &mut Vec<Entity>) -> Result<(), String> {
        if self.failed {
            return Err("the game failed earlier".into());
        }
        let game = &self.game;
        let result = guarded(&self.room_id, &mut self.state, Hook::Snapshot, |_| game.write_snapshot(out));
        if result.is_err() {
            self.fault();
        }
        result
    }

    /// The room closes: the dispose hook (not after a panic).
    pub(crate) fn dispose(&mut self, tick: Tick) -> Result<(), String> {
        if self.failed {
            return Ok(());
        }
        self.call(Hook::Dispose, tick, |game, ctx| game.dispose(ctx))
    }

    /// The events queued since the last call; starts a new event budget.
    pub(crate) fn take_events(&mut self, into: &mut Vec<OutEvent>) {
        self.state.take_events(into);
    }

    /// Whether events wait for delivery.
    pub(crate) fn has_events(&self) -> bool {
        !self.state.events.is_empty()
    }

    /// The room's metadata and its version (bumped by each change).
    pub(crate) fn metadata(&self) -> (&ValueMap, u64) {
        (self.state.metadata(), self.state.metadata_version)
    }

    /// The server's bounds for this room's game.
    pub(crate) fn limits(&self) -> &GameLimits {
        &self.state.limits
    }

    /// The counters since the last call.
    pub(crate) fn take_stats(&mut self) -> GameStats {
        std::mem::take(&mut self.state.stats)
    }
}
