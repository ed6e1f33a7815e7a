//! What a game's hooks see and do through their [`Ctx`]: the tick clock,
//! the room's seeded RNG, its players, its metadata and the events it
//! sends, each bounded by the server's [`GameLimits`].

use super::{GameRng, PlayerInfo};
use crate::config::ConfigError;
use std::time::Duration;
use thiserror::Error;
use tickforge_protocol::codec::Format;
use tickforge_protocol::ids::{PlayerId, RoomId, Tick};
use tickforge_protocol::value::{self, Value, ValueError, ValueMap};

/// The bounds on what games and their players exchange, each with a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GameLimits {
    /// Longest game message or event name, bytes (`--max-game-name`).
    /// Default 64; a longer `game_message` name is `rej bad_request`.
    pub max_name_bytes: usize,
    /// Largest `game_message` data, game reply and game event data, bytes
    /// of its encoding (`--max-game-value-size`, at most the contract's
    /// 4096). Default 4096. A message's data is measured in the form it
    /// arrived in (JSON text or binary); what the game sends, in the larger
    /// of the two (it goes to clients of both forms). Over it: `rej
    /// bad_request` for a message, an error to the game for what it sends.
    pub max_value_bytes: usize,
    /// Largest `options` of `create_room` and `join_or_create`, bytes of
    /// their encoding as received (`--max-options-size`). Default 1024;
    /// over it: `rej bad_request`.
    pub max_options_bytes: usize,
    /// Largest room metadata, bytes of its larger encoding
    /// (`--max-metadata-size`, at most 4096). Default 1024: a `room_list`
    /// of 1,000 rooms stays near a megabyte. A change past it is refused
    /// to the game ([`ContextError::MetadataTooLarge`]).
    pub max_metadata_bytes: usize,
    /// Game events one player receives per tick (`--max-game-events-per-tick`).
    /// Default 32; more are dropped, counted, and refused to the game
    /// ([`ContextError::TooManyEvents`]). Events also take places in the
    /// player's control queue (`--max-control-queue`): a player that reads
    /// nothing while events pile up is closed as too slow, not queued for
    /// without end.
    pub max_events_per_tick: u32,
    /// A hook that runs longer is logged with its room and counted in
    /// `/metrics` (`--slow-game-hook`). Default 5 ms (a sixth of a 30 Hz
    /// tick period).
    pub slow_hook: Duration,
}

impl Default for GameLimits {
    fn default() -> Self {
        Self {
            max_name_bytes: 64,
            max_value_bytes: value::MAX_SIZE,
            max_options_bytes: 1024,
            max_metadata_bytes: 1024,
            max_events_per_tick: 32,
            slow_hook: Duration::from_millis(5),
        }
    }
}

impl GameLimits {
    /// Checks every bound against its range.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting, problem: String| Err(ConfigError { setting, problem });
        let max = value::MAX_SIZE;
        if self.max_name_bytes == 0 || self.max_name_bytes > value::MAX_STRING {
            return bad("--max-game-name", format!("{} is not in 1..={}", self.max_name_bytes, value::MAX_STRING));
        }
        if self.max_value_bytes < 16 || self.max_value_bytes > max {
            return bad("--max-game-value-size", format!("{} is not in 16..={max}", self.max_value_bytes));
        }
        if self.max_options_bytes < 2 || self.max_options_bytes > max {
            return bad("--max-options-size", format!("{} is not in 2..={max}", self.max_options_bytes));
        }
        if self.max_metadata_bytes < 2 || self.max_metadata_bytes > max {
            return bad("--max-metadata-size", format!("{} is not in 2..={max}", self.max_metadata_bytes));
        }
        if self.max_events_per_tick == 0 || self.max_events_per_tick > 65_536 {
            return bad("--max-game-events-per-tick", format!("{} is not in 1..=65536", self.max_events_per_tick));
        }
        if self.slow_hook.is_zero() {
            return bad("--slow-game-hook", "must be more than 0".into());
        }
        Ok(())
    }

    /// Checks a game message or event name.
    ///
    /// # Errors
    /// A reason for a person: empty, or over [`GameLimits::max_name_bytes`].
    pub fn check_name(&self, name: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err("the name is empty".into());
        }
        if name.len() > self.max_name_bytes {
            return Err(format!("the name is {} bytes, over the {}-byte limit", name.len(), self.max_name_bytes));
        }
        Ok(())
    }

    /// Checks a value a client sent (`what`: `data`, `options`), measured
    /// in the form it arrived in, against `max` bytes.
    ///
    /// # Errors
    /// A reason for a person naming `what` and the bound.
    pub fn check_received(what: &str, v: &Value, format: Format, max: usize) -> Result<(), String> {
        let size = match format {
            Format::Bin => v.bin_len(),
            Format::Json => v.json_len(),
        };
        if size > max {
            return Err(format!("{what} is {size} bytes, over the {max}-byte limit"));
        }
        Ok(())
    }

    /// Checks a `game_message` as received in `format`: its data first
    /// (whatever the name, as CONTRACT.md asks), then its name.
    ///
    /// # Errors
    /// A reason for a person (the server answers `rej bad_request`).
    pub fn check_message(&self, name: &str, data: &Value, format: Format) -> Result<(), String> {
        Self::check_received("game_message data", data, format, self.max_value_bytes)?;
        self.check_name(name).map_err(|e| format!("game_message name refused: {e}"))
    }

    /// Checks a value the game sends to clients (event data, a reply):
    /// the contract's bounds, and both encodings within
    /// [`GameLimits::max_value_bytes`].
    ///
    /// # Errors
    /// [`ContextError::Value`] or [`ContextError::ValueTooLarge`].
    pub fn check_outgoing(&self, v: &Value) -> Result<(), ContextError> {
        v.check()?;
        let size = v.bin_len().max(v.json_len());
        if size > self.max_value_bytes {
            return Err(ContextError::ValueTooLarge { size, max: self.max_value_bytes });
        }
        Ok(())
    }
}

/// What a game tried to do through its [`Ctx`] and could not.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContextError {
    /// An event name that is empty or too long.
    #[error("event name refused: {0}")]
    BadName(String),
    /// A value outside the contract's bounds (depth, strings, floats).
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A value over [`GameLimits::max_value_bytes`].
    #[error("value is {size} bytes, over the {max}-byte limit")]
    ValueTooLarge {
        /// Its larger encoding, bytes.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// Metadata over [`GameLimits::max_metadata_bytes`]: the change was
    /// not made.
    #[error("metadata would be {size} bytes, over the {max}-byte limit")]
    MetadataTooLarge {
        /// Its larger encoding with the change, bytes.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// An event to a player who has no seat in the room: nothing was sent.
    #[error("player {} is not in this room", .0 .0)]
    NoSuchPlayer(PlayerId),
    /// A player already has [`GameLimits::max_events_per_tick`] events
    /// this tick: it does not get this one (the others named do).
    #[error("player {} already gets {max} events this tick", player.0)]
    TooManyEvents {
        /// The first player over the bound.
        player: PlayerId,
        /// The bound.
        max: u32,
    },
}

/// Who an event goes to, as a hook named them.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Recipients<'a> {
    /// Every player, but the one named.
    All { except: Option<PlayerId> },
    /// These players.
    Only(&'a [PlayerId]),
}

/// An event a hook sent, delivered with the room's next tick to the
/// players it was counted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutEvent {
    pub(crate) to: Vec<PlayerId>,
    pub(crate) name: String,
    pub(crate) data: Value,
}

/// A seated player and the events it was sent this tick.
#[derive(Clone, Debug)]
struct Member {
    info: PlayerInfo,
    events: u32,
}

/// Counters a room's owner drains into the shard's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GameStats {
    /// Hooks that ran longer than [`GameLimits::slow_hook`], by
    /// [`super::host::Hook`] index.
    pub slow_hooks: [u32; super::host::Hook::ALL.len()],
    /// Event deliveries queued (one per recipient).
    pub events_sent: u64,
    /// Event deliveries dropped over [`GameLimits::max_events_per_tick`].
    pub events_dropped: u64,
    /// Hooks that panicked (each closes its room).
    pub panics: u32,
}

impl GameStats {
    /// Whether anything was counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A room's game-facing state: what the [`Ctx`] reads and changes.
#[derive(Debug)]
pub(crate) struct RoomState {
    pub(crate) limits: GameLimits,
    members: Vec<Member>,
    roster: Vec<PlayerInfo>,
    metadata: ValueMap,
    /// Bumped by each metadata change (the directory is written on a change).
    pub(crate) metadata_version: u64,
    pub(crate) events: Vec<OutEvent>,
    pub(crate) stats: GameStats,
}

impl RoomState {
    pub(crate) fn new(limits: GameLimits) -> Self {
        Self {
            limits,
            members: Vec::new(),
            roster: Vec::new(),
            metadata: ValueMap::new(),
            metadata_version: 0,
            events: Vec::new(),
            stats: GameStats::default(),
        }
    }

    pub(crate) fn metadata(&self) -> &ValueMap {
        &self.metadata
    }

    pub(crate) fn add_member(&mut self, info: PlayerInfo) {
        self.roster.push(info.clone());
        self.members.push(Member { info, events: 0 });
    }

    pub(crate) fn remove_member(&mut self, player: PlayerId) {
        self.roster.retain(|p| p.id != player);
        self.members.retain(|m| m.info.id != player);
    }

    /// Takes the queued events and starts a new tick's event budget.
    pub(crate) fn take_events(&mut self, into: &mut Vec<OutEvent>) {
        into.append(&mut self.events);
        for m in &mut self.members {
            m.events = 0;
        }
    }

    /// Counts one event for each recipient under the budget, who get it;
    /// returns them and the first one over it.
    fn spend(&mut self, to: &Recipients<'_>) -> (Vec<PlayerId>, Option<PlayerId>) {
        let max = self.limits.max_events_per_tick;
        let (mut accepted, mut over) = (Vec::new(), None);
        for m in &mut self.members {
            let named = match to {
                Recipients::All { except } => *except != Some(m.info.id),
                Recipients::Only(ids) => ids.contains(&m.info.id),
            };
            if !named {
                continue;
            }
            if m.events >= max {
                self.stats.events_dropped += 1;
                over.get_or_insert(m.info.id);
            } else {
                m.events += 1;
                self.stats.events_sent += 1;
                accepted.push(m.info.id);
            }
        }
        (accepted, over)
    }
}

/// What a hook works with: the room's clock, RNG, players, metadata and
/// events. Handed to every hook; valid for that call only.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub(crate) room_id: &'a RoomId,
    pub(crate) tick: Tick,
    pub(crate) tick_hz: u32,
    pub(crate) rng: &'a mut GameRng,
    pub(crate) state: &'a mut RoomState,
}

impl Ctx<'_> {
    /// The room's id.
    #[must_use]
    pub fn room_id(&self) -> &RoomId {
        self.room_id
    }

    /// The tick clock: in [`super::GameRoom::step`] the tick being taken
    /// (the first is 1); elsewhere the newest tick taken (0 before the
    /// first).
    #[must_use]
    pub fn tick(&self) -> Tick {
        self.tick
    }

    /// The room's tick rate, Hz.
    #[must_use]
    pub fn tick_hz(&self) -> u32 {
        self.tick_hz
    }

    /// The tick clock in seconds (`tick / tick_hz`): game time, which
    /// never jumps or drifts with the host's clock.
    #[must_use]
    pub fn seconds(&self) -> f64 {
        self.tick.0 as f64 / f64::from(self.tick_hz.max(1))
    }

    /// How many ticks `seconds` of game time take at this room's rate
    /// (rounded, at least 1 for a positive time).
    #[must_use]
    pub fn ticks_in(&self, seconds: f64) -> u64 {
        let ticks = (seconds * f64::from(self.tick_hz.max(1))).round();
        if seconds > 0.0 {
            ticks.max(1.0) as u64
        } else {
            0
        }
    }

    /// The room's RNG, seeded when the room was created: a room replays
    /// the same way from the same seed, inputs and messages.
    pub fn rng(&mut self) -> &mut GameRng {
        self.rng
    }

    /// The seated players, in the order they joined.
    #[must_use]
    pub fn players(&self) -> &[PlayerInfo] {
        &self.state.roster
    }

    /// The seated player `id`.
    #[must_use]
    pub fn player(&self, id: PlayerId) -> Option<&PlayerInfo> {
        self.state.roster.iter().find(|p| p.id == id)
    }

    /// The room's metadata (listed with it; `list_rooms` filters on it).
    #[must_use]
    pub fn metadata(&self) -> &ValueMap {
        &self.state.metadata
    }

    /// Sets one metadata key. The directory (and so `list_rooms` and
    /// `/rooms`) sees the change after the hook, at most once a tick:
    /// metadata is for finding rooms, not a per-tick state channel.
    ///
    /// # Errors
    /// A value outside the contract's bounds, or metadata that would pass
    /// [`GameLimits::max_metadata_bytes`]: nothing is changed.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Result<(), ContextError> {
        let key = key.into();
        let value = value.into();
        if self.state.metadata.get(&key) == Some(&value) {
            return Ok(());
        }
        let old = self.state.metadata.insert(key.clone(), value);
        if let Err(e) = self.check_metadata() {
            match old {
                Some(v) => self.state.metadata.insert(key, v),
                None => self.state.metadata.remove(&key),
            };
            return Err(e);
        }
        self.state.metadata_version += 1;
        Ok(())
    }

    /// Removes one metadata key; returns its value.
    pub fn remove_metadata(&mut self, key: &str) -> Option<Value> {
        let old = self.state.metadata.remove(key);
        if old.is_some() {
            self.state.metadata_version += 1;
        }
        old
    }

    /// Checks the whole metadata map as one value, without copying it.
    fn check_metadata(&mut self) -> Result<(), ContextError> {
        let map = Value::Map(std::mem::take(&mut self.state.metadata.0));
        let checked = map.check().map_err(ContextError::from).and_then(|()| {
            let (size, max) = (map.bin_len().max(map.json_len()), self.state.limits.max_metadata_bytes);
            if size > max {
                Err(ContextError::MetadataTooLarge { size, max })
            } else {
                Ok(())
            }
        });
        let Value::Map(map) = map else { unreachable!("built as a map above") };
        self.state.metadata.0 = map;
        checked
    }

    /// Sends the event `name` with `data` to one player.
    ///
    /// # Errors
    /// As [`Ctx::send_many`].
    pub fn send(&mut self, to: PlayerId, name: &str, data: impl Into<Value>) -> Result<(), ContextError> {
        self.queue(Recipients::Only(&[to]), name, data.into())
    }

    /// Sends the event `name` with `data` to these players.
    ///
    /// # Errors
    /// A bad name or value, or a player not in the room: nothing is sent.
    /// A player over [`GameLimits::max_events_per_tick`]: the others get it.
    pub fn send_many(&mut self, to: &[PlayerId], name: &str, data: impl Into<Value>) -> Result<(), ContextError> {
        self.queue(Recipients::Only(to), name, data.into())
    }

    /// Sends the event `name` with `data` to every seated player.
    ///
    /// # Errors
    /// As [`Ctx::send_many`].
    pub fn broadcast(&mut self, name: &str, data: impl Into<Value>) -> Result<(), ContextError> {
        self.queue(Recipients::All { except: None }, name, data.into())
    }

    /// Sends the event `name` with `data` to every seated player but `except`.
    ///
    /// # Errors
    /// As [`Ctx::send_many`].
    pub fn broadcast_except(
        &mut self,
        except: PlayerId,
        name: &str,
        data: impl Into<Value>,
    ) -> Result<(), ContextError> {
        self.queue(Recipients::All { except: Some(except) }, name, data.into())
    }

    fn queue(&mut self, to: Recipients<'_>, name: &str, data: Value) -> Result<(), ContextError> {
        self.state.limits.check_name(name).map_err(ContextError::BadName)?;
        self.state.limits.check_outgoing(&data)?;
        if let Recipients::Only(ids) = to {
            if let Some(&missing) = ids.iter().find(|id| self.player(**id).is_none()) {
                return Err(ContextError::NoSuchPlayer(missing));
            }
        }
        let (accepted, over) = self.state.spend(&to);
        if !accepted.is_empty() {
            self.state.events.push(OutEvent { to: accepted, name: name.to_owned(), data });
        }
        match over {
            Some(player) => Err(ContextError::TooManyEvents { player, max: self.state.limits.max_events_per_tick }),
            None => Ok(()),
        }
    }
}
