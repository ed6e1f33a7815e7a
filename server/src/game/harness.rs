//! [`GameHarness`]: a game's room driven tick by tick without sockets, the
//! way to test a game (the sans-IO habit of the protocol crate).
//!
//! The harness runs the server's real [`Room`] on a virtual clock, and for
//! every player a real client: a [`ClientSession`] that reads the bytes
//! the room wrote to that player's [`Outbox`]. Inputs and game messages
//! are encoded by the client and decoded by the server's codec, in the
//! client's wire form, and checked against the same bounds as on a socket;
//! after every tick each client's rebuilt state is checked against the
//! room's snapshot, bit for bit. What a test reads (snapshots by field
//! name, events, indications, metadata) is what players would see.

use super::{Game, GameLimits, LeaveReason};
use crate::outbox::{Outbox, OutboxItem};
use crate::room::{Room, RoomConfig, TickReport};
use std::rc::Rc;
use std::sync::Arc;
use tickforge_protocol::codec::{self, Format, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::ids::{EntityId, PlayerId, RoomId};
use tickforge_protocol::input::{InputError, InputValues};
use tickforge_protocol::message::{ClientMsg, Confirm, Indication, Joined, RejectCode, Request, ServerMsg};
use tickforge_protocol::schema::Schema;
use tickforge_protocol::session::{ClientSession, Event};
use tickforge_protocol::snapshot::{Entity, Snapshot};
use tickforge_protocol::value::{Value, ValueMap};

/// When the harness's clock starts, µs since the Unix epoch.
const START_US: u64 = 1_700_000_000_000_000;

/// How a harness is set up: seed, tick rate, seats, options, limits and
/// the wire form of its clients.
#[derive(Clone)]
#[must_use]
pub struct HarnessBuilder {
    game: Arc<dyn Game>,
    seed: u64,
    config: RoomConfig,
    options: ValueMap,
    format: Format,
}

impl std::fmt::Debug for HarnessBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarnessBuilder").field("game", &self.game.name()).field("seed", &self.seed).finish()
    }
}

impl HarnessBuilder {
    /// The room's RNG seed (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The tick rate (default 30 Hz).
    pub fn tick_hz(mut self, tick_hz: u32) -> Self {
        let limits = self.config.game_limits.clone();
        self.config = RoomConfig::new(tick_hz, self.config.max_players);
        self.config.game_limits = limits;
        self
    }

    /// The room's seats (default 8; the game may take fewer).
    pub fn max_players(mut self, max_players: u32) -> Self {
        self.config.max_players = max_players;
        self
    }

    /// The room's options (default `{}`).
    pub fn options(mut self, options: ValueMap) -> Self {
        self.options = options;
        self
    }

    /// The bounds on names, values, metadata and events (default: the
    /// server's defaults).
    pub fn limits(mut self, limits: GameLimits) -> Self {
        self.config.game_limits = limits;
        self
    }

    /// The wire form of the clients (default binary).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Creates the room.
    ///
    /// # Errors
    /// As [`Room::create`]: `refused` for options the game does not take,
    /// `internal` when it panicked.
    pub fn build(self) -> Result<GameHarness, (RejectCode, String)> {
        let room = Room::create(RoomId("r-test-1".into()), self.game, self.config, self.seed, self.options)?;
        Ok(GameHarness { room, format: self.format, clients: Vec::new(), now_us: START_US })
    }
}

/// One player's client.
#[derive(Debug)]
struct Client {
    player: PlayerId,
    outbox: Rc<Outbox>,
    session: ClientSession,
    joined: Joined,
    /// Whether it still has its seat (it left, or the room closed).
    seated: bool,
    events: Vec<(String, Value)>,
    indications: Vec<Indication>,
}

/// A game's room and its players' clients, without sockets: the server's
/// real room on a virtual clock, a real client per player reading what the
/// room wrote to it; inputs and game messages go through the wire codec
/// and the server's bounds; after every tick each client's rebuilt state
/// is checked against the room's snapshot, bit for bit.
#[derive(Debug)]
pub struct GameHarness {
    room: Room,
    format: Format,
    clients: Vec<Client>,
    now_us: u64,
}

/// One entity, read by field name.
#[derive(Clone, Copy, Debug)]
pub struct EntityView<'a> {
    schema: &'a Schema,
    entity: &'a Entity,
}

impl EntityView<'_> {
    /// The entity's id.
    #[must_use]
    pub fn id(&self) -> EntityId {
        self.entity.id
    }

    /// The entity's kind, by name.
    #[must_use]
    pub fn kind(&self) -> &str {
        self.schema.kinds.get(usize::from(self.entity.kind)).map_or("?", String::as_str)
    }

    /// The field `name` as its real value (`fixed` fields dequantized).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f64> {
        let i = self.schema.field_index(name)?;
        Some(self.schema.fields[i].ty.dequantize(self.entity.values[i]))
    }

    /// The field `name` as its quantized value.
    #[must_use]
    pub fn get_q(&self, name: &str) -> Option<i32> {
        self.schema.field_index(name).map(|i| self.entity.values[i])
    }

    /// The entity itself.
    #[must_use]
    pub fn entity(&self) -> &Entity {
        self.entity
    }
}

impl GameHarness {
    /// A harness for `game` with the defaults (seed 1, 30 Hz, 8 seats, no
    /// options, binary clients).
    ///
    /// # Errors
    /// As [`HarnessBuilder::build`].
    pub fn new(game: Arc<dyn Game>) -> Result<Self, (RejectCode, String)> {
        Self::builder(game).build()
    }

    /// A builder for a harness of `game`.
    pub fn builder(game: Arc<dyn Game>) -> HarnessBuilder {
        HarnessBuilder { game, seed: 1, config: RoomConfig::new(30, 8), options: ValueMap::new(), format: Format::Bin }
    }

    /// The room under test.
    #[must_use]
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// The room under test, to change.
    pub fn room_mut(&mut self) -> &mut Room {
        &mut self.room
    }

    /// A player joins with no identity and no options.
    ///
    /// # Errors
    /// As [`Room::join_as`]: `room_full`, `refused` with the game's reason, ...
    pub fn join(&mut self) -> Result<PlayerId, (RejectCode, String)> {
        self.join_as(None, None, &ValueMap::new())
    }

    /// A player joins with these join options.
    ///
    /// # Errors
    /// As [`GameHarness::join`].
    pub fn join_with(&mut self, options: &ValueMap) -> Result<PlayerId, (RejectCode, String)> {
        self.join_as(None, None, options)
    }

    /// A player joins with an identity (a `user_id`, and a `name` with it)
    /// and join options.
    ///
    /// # Errors
    /// As [`GameHarness::join`].
    pub fn join_as(
        &mut self,
        user_id: Option<&str>,
        name: Option<&str>,
        options: &ValueMap,
    ) -> Result<PlayerId, (RejectCode, String)> {
        let outbox = Outbox::new(self.format, 4096);
        let identity = user_id.map(|u| crate::auth::Identity { user_id: u.to_owned(), name: name.map(str::to_owned) });
        let joined = self.room.join_as(outbox.clone(), identity.as_ref(), options)?;
        let mut session = ClientSession::new(self.format);
        let mut bytes = Vec::new();
        let msg = ServerMsg::Cfm { id: Default::default(), body: Confirm::Joined(joined.clone()) };
        codec::encode_server(self.format, &msg, &mut bytes);
        session.handle_message(&bytes).expect("the room's joined decodes");
        let player = joined.player_id;
        self.clients.push(Client {
            player,
            outbox,
            session,
            joined,
            seated: true,
            events: Vec::new(),
            indications: Vec::new(),
        });
        self.deliver();
        Ok(player)
    }

    fn client(&self, player: PlayerId) -> &Client {
        self.clients.iter().find(|c| c.player == player).unwrap_or_else(|| panic!("no client for player {}", player.0))
    }

    fn client_mut(&mut self, player: PlayerId) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.player == player)
            .unwrap_or_else(|| panic!("no client for player {}", player.0))
    }

    /// The `joined` player got.
    #[must_use]
    pub fn joined(&self, player: PlayerId) -> &Joined {
        &self.client(player).joined
    }

    /// The player's client (its rebuilt state, its newest tick).
    #[must_use]
    pub fn session(&self, player: PlayerId) -> &ClientSession {
        &self.client(player).session
    }

    /// The player leaves (`leave_room`).
    pub fn leave(&mut self, player: PlayerId) {
        self.free(player, LeaveReason::Left);
    }

    /// The player's connection drops.
    pub fn disconnect(&mut self, player: PlayerId) {
        self.free(player, LeaveReason::Disconnected);
    }

    fn free(&mut self, player: PlayerId, why: LeaveReason) {
        self.room.leave(player, why);
        self.client_mut(player).seated = false;
        self.deliver();
    }

    /// The player sends an input of these values (in the game's input
    /// schema's order), acking its newest tick, through the wire form.
    ///
    /// # Errors
    /// The values do not fit the game's input schema (the room would drop
    /// such an input with an `error` indication).
    pub fn input(&mut self, player: PlayerId, values: impl Into<InputValues>) -> Result<(), InputError> {
        let values = values.into();
        let format = self.format;
        let client = self.client_mut(player);
        let mut bytes = Vec::new();
        client.session.input_values(&values, &mut bytes)?;
        let msg = codec::decode_client(format, &bytes, DEFAULT_MAX_MESSAGE).expect("a client's input decodes");
        let ClientMsg::Input { seq, ack, data } = msg else { unreachable!("an input was encoded") };
        self.room.input_raw(player, seq, ack, &data)
    }

    /// The player sends an input with these fields by name (the others 0).
    ///
    /// # Errors
    /// A name the game's input schema lacks, or a value out of range.
    pub fn input_named(&mut self, player: PlayerId, fields: &[(&str, i32)]) -> Result<(), InputError> {
        let schema = self.room.game().input_schema().clone();
        let mut values = schema.neutral();
        for &(name, value) in fields {
            values.set_named(&schema, name, value)?;
        }
        self.input(player, values)
    }

    /// The player sends `game_message` {`name`, `data`}: encoded by its
    /// client, decoded and checked as the server does, answered by the
    /// game. Returns the `game_reply`'s data or the reject.
    ///
    /// # Errors
    /// The reject the player would get: `bad_request` (a value or name
    /// over the bounds), `not_in_room`, `unsupported`, `refused`, `internal`.
    pub fn message(
        &mut self,
        player: PlayerId,
        name: &str,
        data: impl Into<Value>,
    ) -> Result<Value, (RejectCode, String)> {
        let format = self.format;
        let body = Request::GameMessage { name: name.to_owned(), data: data.into() };
        let client = self.client_mut(player);
        let mut bytes = Vec::new();
        let id = client.session.request(body, &mut bytes);
        let (name, data) = match codec::decode_client(format, &bytes, DEFAULT_MAX_MESSAGE) {
            Ok(ClientMsg::Req { body: Request::GameMessage { name, data }, .. }) => (name, data),
            Ok(other) => unreachable!("a game message was encoded, not {other:?}"),
            Err(e) => return Err((RejectCode::BadRequest, e.to_string())),
        };
        let answer = self.room.config().game_limits.check_message(&name, &data, format);
        let answer = match answer {
            Err(reason) => Err((RejectCode::BadRequest, reason)),
            Ok(()) if !self.client(player).seated => {
                Err((RejectCode::NotInRoom, "game_message while in no room".into()))
            }
            Ok(()) => self.room.game_message(player, &name, &data),
        };
        // The client reads its answer as it would off the socket.
        let msg = match &answer {
            Ok(data) => ServerMsg::Cfm { id, body: Confirm::GameReply { data: data.clone() } },
            Err((code, reason)) => ServerMsg::Rej { id, code: *code, reason: reason.clone() },
        };
        let mut bytes = Vec::new();
        codec::encode_server(format, &msg, &mut bytes);
        let client = self.client_mut(player);
        client.session.handle_message(&bytes).expect("an answer decodes");
        while client.session.poll_event().is_some() {}
        self.deliver();
        answer
    }

    /// Takes one tick (every client acks its newest tick first, as a
    /// client that applies every tick does), delivers what the room wrote,
    /// and checks that every seated client's state is the room's snapshot.
    ///
    /// # Panics
    /// When a client's rebuilt state differs from the room's snapshot: a
    /// bug in the game's entities (ids out of order, a field out of its
    /// type) or in the server.
    pub fn tick(&mut self) -> TickReport {
        for c in self.clients.iter().filter(|c| c.seated) {
            if let Some(tick) = c.session.latest_tick() {
                self.room.ack(c.player, tick);
            }
        }
        self.now_us += 1_000_000 / u64::from(self.room.config().tick_hz);
        let report = self.room.tick(self.now_us);
        self.deliver();
        if self.room.closed().is_none() {
            let server = self.room.latest_snapshot();
            for c in self.clients.iter().filter(|c| c.seated) {
                assert_eq!(c.session.state(), server, "player {}'s state at tick {}", c.player.0, report.tick.0);
            }
        }
        report
    }

    /// Takes `n` ticks.
    pub fn ticks(&mut self, n: u32) {
        for _ in 0..n {
            self.tick();
        }
    }

    /// Reads every frame waiting in the clients' outboxes into them.
    fn deliver(&mut self) {
        for c in &mut self.clients {
            while let Some(item) = c.outbox.try_next() {
                let (OutboxItem::Control(bytes) | OutboxItem::Tick(bytes)) = item;
                c.session.handle_message(&bytes).expect("a valid server message");
            }
            while let Some(event) = c.session.poll_event() {
                match event {
                    Event::Indication(Indication::GameEvent { name, data }) => c.events.push((name, data)),
                    Event::Indication(Indication::RoomClosing { reason }) => {
                        c.seated = false;
                        c.indications.push(Indication::RoomClosing { reason });
                    }
                    Event::Indication(other) => c.indications.push(other),
                    _ => {}
                }
            }
        }
    }

    /// The game events `player` received since the last call, in order.
    pub fn events(&mut self, player: PlayerId) -> Vec<(String, Value)> {
        std::mem::take(&mut self.client_mut(player).events)
    }

    /// The other indications `player` received since the last call
    /// (`player_joined`, `player_left`, `room_closing`, ...).
    pub fn indications(&mut self, player: PlayerId) -> Vec<Indication> {
        std::mem::take(&mut self.client_mut(player).indications)
    }

    /// The room's newest snapshot (empty before the first tick).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        self.room.latest_snapshot().cloned().unwrap_or_default()
    }

    /// The entity `id` in the newest snapshot.
    #[must_use]
    pub fn entity(&self, id: EntityId) -> Option<EntityView<'_>> {
        let schema = self.room.game().schema();
        self.room.latest_snapshot()?.get(id).map(|entity| EntityView { schema, entity })
    }

    /// The entities of kind `kind` (by name) in the newest snapshot.
    #[must_use]
    pub fn entities_of_kind(&self, kind: &str) -> Vec<EntityView<'_>> {
        let schema = self.room.game().schema();
        let Some(k) = schema.kind_index(kind) else { return Vec::new() };
        let Some(snapshot) = self.room.latest_snapshot() else { return Vec::new() };
        snapshot.entities.iter().filter(|e| e.kind == k).map(|entity| EntityView { schema, entity }).collect()
    }

    /// The room's metadata.
    #[must_use]
    pub fn metadata(&self) -> &ValueMap {
        self.room.metadata()
    }

    /// Why the room closed, once it has.
    #[must_use]
    pub fn closed(&self) -> Option<&str> {
        self.room.closed()
    }
}
