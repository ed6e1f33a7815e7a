//! `lines`, the second built-in game: two players take turns placing
//! stones until one has k in a row. Different in kind from arena: nothing
//! moves by itself, moves are game messages, results are game events,
//! and the room's phase is in its metadata for lobbies to filter on.
//!
//! - Options (`create_room` / `join_or_create`), each optional:
//!   `variant`: `"tictactoe"` (3 x 3, three in a row; the default),
//!   `"connect4"` (7 wide, 6 high, four in a row, stones fall to the
//!   lowest free row) or `"gomoku"` (15 x 15, five in a row);
//!   `turn_seconds`: 0 to 600, default 30 (0: no limit; a player who lets
//!   it pass loses the round); `restart_seconds`: 1 to 60, default 3
//!   (between a result and the next round). Anything else is refused.
//! - Seats: 2. The first player plays `x`, the second `o`; `x` moves
//!   first in odd rounds, `o` in even ones. A player whose user id already
//!   holds the other seat is refused.
//! - Metadata: `variant`, `phase` (`"waiting"` for a second player,
//!   `"playing"`, `"over"` between rounds), `round` (from 1).
//! - Input: `hover_col` u8, `hover_row` u8: where the player points,
//!   shown to the other (clamped to the board).
//! - Messages: `move` {`col`, `row`} (`row` ignored in connect4) replies
//!   {`col`, `row`, `stone`}; `resign` replies null; `chat` (a string of at
//!   most 200 characters) replies null. Refused with a reason when not
//!   allowed (not your turn, a taken cell, a full column, ...).
//! - Events (to both players): `round_started` {`round`, `x`, `o`,
//!   `first`}; `moved` {`player`, `side`, `col`, `row`}; `turn` {`player`,
//!   `side`}; `round_over` {`winner` (a player id, or null for a draw),
//!   `reason` (`line`, `draw`, `resign`, `timeout`, `forfeit`), `line`
//!   (the winning cells, `[[col,row],...]`)}; `chat` {`from`, `text`}.
//! - Entities: kind `seat` (ids 1 for `x`, 2 for `o`: `side`, `wins`,
//!   `turn` 1 while it is that seat's move, `hover_col`, `hover_row`) and
//!   kind `stone` (ids from 3: `side`, `col`, `row`).

use super::{Ctx, Game, GameRoom, LeaveReason, MessageError, PlayerInfo, PlayerInput, Refusal};
use std::collections::BTreeMap;
use tickforge_protocol::ids::{EntityId, PlayerId, Tick};
use tickforge_protocol::input::InputSchema;
use tickforge_protocol::schema::{FieldDef, FieldType, Schema};
use tickforge_protocol::snapshot::Entity;
use tickforge_protocol::value::{Value, ValueMap};

/// Entity kind indices.
pub mod kind {
    /// A player's seat.
    pub const SEAT: u8 = 0;
    /// A placed stone.
    pub const STONE: u8 = 1;
}

/// Field indices.
pub mod field {
    /// 1 for `x`, 2 for `o`.
    pub const SIDE: usize = 0;
    /// A stone's column (0 = left).
    pub const COL: usize = 1;
    /// A stone's row (0 = top; in connect4 stones fall to the highest row number free).
    pub const ROW: usize = 2;
    /// A seat's rounds won.
    pub const WINS: usize = 3;
    /// A seat's turn flag: 1 while it is to move.
    pub const TURN: usize = 4;
    /// Where a seat's player points: column.
    pub const HOVER_COL: usize = 5;
    /// Where a seat's player points: row.
    pub const HOVER_ROW: usize = 6;
}

/// The longest chat line, characters.
pub const MAX_CHAT_CHARS: usize = 200;

/// A board shape and its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Its name in options and metadata.
    pub name: &'static str,
    /// Columns.
    pub width: u8,
    /// Rows.
    pub height: u8,
    /// Stones in a row that win.
    pub k: u8,
    /// Whether a stone falls to the lowest free row of its column.
    pub gravity: bool,
}

/// The variants, the first the default.
pub const VARIANTS: [Variant; 3] = [
    Variant { name: "tictactoe", width: 3, height: 3, k: 3, gravity: false },
    Variant { name: "connect4", width: 7, height: 6, k: 4, gravity: true },
    Variant { name: "gomoku", width: 15, height: 15, k: 5, gravity: false },
];

/// The `lines` game factory.
#[derive(Debug)]
pub struct Lines {
    schema: Schema,
    input: InputSchema,
}

impl Default for Lines {
    fn default() -> Self {
        let f = |name: &str, ty| FieldDef { name: name.into(), ty, integrates: None };
        let schema = Schema {
            kinds: vec!["seat".into(), "stone".into()],
            fields: vec![
                f("side", FieldType::U8),
                f("col", FieldType::U8),
                f("row", FieldType::U8),
                f("wins", FieldType::U16),
                f("turn", FieldType::U8),
                f("hover_col", FieldType::U8),
                f("hover_row", FieldType::U8),
            ],
        };
        let input = InputSchema::new([("hover_col", FieldType::U8), ("hover_row", FieldType::U8)]);
        Self { schema, input }
    }
}

/// A room's settings, read from its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Settings {
    variant: Variant,
    turn_seconds: u32,
    restart_seconds: u32,
}

fn int_option(
    options: &ValueMap,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    default: u32,
) -> Result<u32, Refusal> {
    match options.get(key) {
        None => Ok(default),
        Some(v) => v.as_i64().filter(|n| range.contains(n)).map(|n| n as u32).ok_or_else(|| {
            Refusal::new(format!("option {key} must be an integer in {}..={}", range.start(), range.end()))
        }),
    }
}

impl Settings {
    fn from_options(options: &ValueMap) -> Result<Self, Refusal> {
        const KEYS: [&str; 3] = ["variant", "turn_seconds", "restart_seconds"];
        if let Some(key) = options.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(Refusal::new(format!("unknown option {key:?}; lines takes {}", KEYS.join(", "))));
        }
        let names = || VARIANTS.iter().map(|v| v.name).collect::<Vec<_>>().join(", ");
        let variant = match options.get("variant") {
            None => VARIANTS[0],
            Some(v) => *v
                .as_str()
                .and_then(|name| VARIANTS.iter().find(|v| v.name == name))
                .ok_or_else(|| Refusal::new(format!("option variant must be one of {}", names())))?,
        };
        Ok(Self {
            variant,
            turn_seconds: int_option(options, "turn_seconds", 0..=600, 30)?,
            restart_seconds: int_option(options, "restart_seconds", 1..=60, 3)?,
        })
    }
}

impl Game for Lines {
    fn name(&self) -> &str {
        "lines"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn input_schema(&self) -> &InputSchema {
        &self.input
    }

    fn create(&self, ctx: &mut Ctx<'_>, options: &ValueMap) -> Result<Box<dyn GameRoom>, Refusal> {
        let settings = Settings::from_options(options)?;
        let room = LinesRoom::new(settings);
        room.publish(ctx);
        Ok(Box::new(room))
    }
}

/// Where a room is between rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Fewer than two players.
    Waiting,
    /// A round is on: `turn` is to move, since tick `since`.
    Playing { turn: u8, since: Tick },
    /// A round ended; the next starts at tick `until` (if two players).
    Over { until: Tick },
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Playing { .. } => "playing",
            Self::Over { .. } => "over",
        }
    }
}

/// A seat: its player (if taken), wins and pointer.
#[derive(Clone, Copy, Debug, Default)]
struct SeatState {
    player: Option<PlayerId>,
    wins: i32,
    hover: (i32, i32),
}

/// A placed stone.
#[derive(Clone, Copy, Debug)]
struct Stone {
    id: EntityId,
    side: u8,
    col: u8,
    row: u8,
}

/// One `lines` room.
#[derive(Debug)]
pub struct LinesRoom {
    settings: Settings,
    phase: Phase,
    round: u32,
    /// Index 0 is `x` (side 1), 1 is `o` (side 2).
    seats: [SeatState; 2],
    /// Side per cell (0 empty), row-major.
    board: Vec<u8>,
    stones: Vec<Stone>,
    next_stone: u32,
}

/// Why a round ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Line,
    Draw,
    Resign,
    Timeout,
    Forfeit,
}

impl End {
    fn name(self) -> &'static str {
        match self {
            Self::Line => "line",
            Self::Draw => "draw",
            Self::Resign => "resign",
            Self::Timeout => "timeout",
            Self::Forfeit => "forfeit",
        }
    }
}

fn side_name(side: u8) -> &'static str {
    if side == 1 {
        "x"
    } else {
        "o"
    }
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<BTreeMap<_, _>>())
}

fn player_value(p: Option<PlayerId>) -> Value {
    p.map_or(Value::Null, |p| Value::from(p.0))
}

impl LinesRoom {
    fn new(settings: Settings) -> Self {
        let v = settings.variant;
        Self {
            settings,
            phase: Phase::Waiting,
            round: 0,
            seats: [SeatState::default(); 2],
            board: vec![0; usize::from(v.width) * usize::from(v.height)],
            stones: Vec::new(),
            next_stone: 3,
        }
    }

    fn cell(&self, col: u8, row: u8) -> u8 {
        self.board[usize::from(row) * usize::from(self.settings.variant.width) + usize::from(col)]
    }

    fn seat_of(&self, player: PlayerId) -> Option<usize> {
        self.seats.iter().position(|s| s.player == Some(player))
    }

    fn seated(&self) -> usize {
        self.seats.iter().filter(|s| s.player.is_some()).count()
    }

    /// Sets the metadata. Its three small keys cannot pass the metadata
    /// bound's floor, so a failure is a server misconfiguration, not
    /// something a player can cause: ignored.
    fn publish(&self, ctx: &mut Ctx<'_>) {
        let _ = ctx.set_metadata("variant", self.settings.variant.name);
        let _ = ctx.set_metadata("phase", self.phase.name());
        let _ = ctx.set_metadata("round", i64::from(self.round));
    }

    /// Sends an event to both players. The two-player room sends a handful
    /// of events a tick, far under the per-tick bound: a refusal would be
    /// a misconfigured server; the round goes on regardless.
    fn tell(ctx: &mut Ctx<'_>, name: &str, data: Value) {
        let _ = ctx.broadcast(name, data);
    }

    fn start_round(&mut self, ctx: &mut Ctx<'_>) {
        self.round += 1;
        self.board.fill(0);
        self.stones.clear();
        let first = if self.round % 2 == 1 { 1 } else { 2 };
        self.phase = Phase::Playing { turn: first, since: ctx.tick() };
        let (x, o) = (self.seats[0].player, self.seats[1].player);
        let data = map([
            ("round", Value::from(i64::from(self.round))),
            ("x", player_value(x)),
            ("o", player_value(o)),
            ("first", Value::from(side_name(first))),
        ]);
        Self::tell(ctx, "round_started", data);
        self.announce_turn(ctx);
        self.publish(ctx);
    }

    fn announce_turn(&self, ctx: &mut Ctx<'_>) {
        if let Phase::Playing { turn, .. } = self.phase {
            let player = self.seats[usize::from(turn - 1)].player;
            Self::tell(ctx, "turn", map([("player", player_value(player)), ("side", Value::from(side_name(turn)))]));
        }
    }

    /// Ends the round: `winner` is a side (0: a draw).
    fn end_round(&mut self, ctx: &mut Ctx<'_>, winner: u8, why: End, line: Vec<(u8, u8)>) {
        let player = if winner == 0 { None } else { self.seats[usize::from(winner - 1)].player };
        if winner != 0 {
            let seat = &mut self.seats[usize::from(winner - 1)];
            seat.wins = (seat.wins + 1).min(i32::from(u16::MAX));
        }
        let cells = line.into_iter().map(|(c, r)| Value::List(vec![i64::from(c).into(), i64::from(r).into()]));
        let data = map([
            ("winner", player_value(player)),
            ("reason", Value::from(why.name())),
            ("line", Value::List(cells.collect())),
        ]);
        Self::tell(ctx, "round_over", data);
        let restart = ctx.ticks_in(f64::from(self.settings.restart_seconds));
        self.phase = Phase::Over { until: Tick(ctx.tick().0 + restart) };
        self.publish(ctx);
    }

    /// The cells of a line of at least k through (col, row), if any.
    fn line_through(&self, col: u8, row: u8) -> Option<Vec<(u8, u8)>> {
        let v = self.settings.variant;
        let side = self.cell(col, row);
        let inside = |c: i32, r: i32| (0..i32::from(v.width)).contains(&c) && (0..i32::from(v.height)).contains(&r);
        for (dc, dr) in [(1, 0), (0, 1), (1, 1), (1, -1)] {
            let mut line = vec![(col, row)];
            for dir in [1, -1] {
                let (mut c, mut r) = (i32::from(col) + dc * dir, i32::from(row) + dr * dir);
                while inside(c, r) && self.cell(c as u8, r as u8) == side {
                    line.push((c as u8, r as u8));
                    c += dc * dir;
                    r += dr * dir;
                }
            }
            if line.len() >= usize::from(v.k) {
                line.sort_unstable();
                return Some(line);
            }
        }
        None
    }

    fn play(&mut self, ctx: &mut Ctx<'_>, from: PlayerId, data: &Value) -> Result<Value, MessageError> {
        let Some(seat) = self.seat_of(from) else { return Err(MessageError::refuse("you have no seat")) };
        let side = seat as u8 + 1;
        let turn = match self.phase {
            Phase::Waiting => {
                return Err(MessageError::refuse("the round has not started: waiting for a second player"))
            }
            Phase::Over { .. } => return Err(MessageError::refuse("the round is over; the next one starts soon")),
            Phase::Playing { turn, .. } => turn,
        };
        if turn != side {
            return Err(MessageError::refuse("not your turn"));
        }
        let v = self.settings.variant;
        let coordinate = |key: &str, size: u8| -> Result<u8, MessageError> {
            data.get(key)
                .and_then(Value::as_i64)
                .filter(|n| (0..i64::from(size)).contains(n))
                .map(|n| n as u8)
                .ok_or_else(|| {
                    MessageError::refuse(format!("move takes {{col, row}}: {key} is an integer in 0..{size}"))
                })
        };
        let col = coordinate("col", v.width)?;
        let row = if v.gravity {
            (0..v.height)
                .rev()
                .find(|&r| self.cell(col, r) == 0)
                .ok_or_else(|| MessageError::refuse(format!("column {col} is full")))?
        } else {
            let row = coordinate("row", v.height)?;
            if self.cell(col, row) != 0 {
                return Err(MessageError::refuse(format!("cell ({col}, {row}) is taken")));
            }
            row
        };
        self.board[usize::from(row) * usize::from(v.width) + usize::from(col)] = side;
        let id = EntityId(self.next_stone);
        self.next_stone = self.next_stone.saturating_add(1);
        self.stones.push(Stone { id, side, col, row });
        let moved = map([
            ("player", Value::from(from.0)),
            ("side", Value::from(side_name(side))),
            ("col", Value::from(i64::from(col))),
            ("row", Value::from(i64::from(row))),
        ]);
        Self::tell(ctx, "moved", moved);
        if let Some(line) = self.line_through(col, row) {
            self.end_round(ctx, side, End::Line, line);
        } else if self.board.iter().all(|&c| c != 0) {
            self.end_round(ctx, 0, End::Draw, Vec::new());
        } else {
            self.phase = Phase::Playing { turn: 3 - side, since: ctx.tick() };
            self.announce_turn(ctx);
        }
        Ok(map([
            ("col", Value::from(i64::from(col))),
            ("row", Value::from(i64::from(row))),
            ("stone", Value::from(id.0)),
        ]))
    }
}

impl GameRoom for LinesRoom {
    fn seats(&self) -> Option<u32> {
        Some(2)
    }

    fn join(&mut self, ctx: &mut Ctx<'_>, player: &PlayerInfo, _options: &ValueMap) -> Result<EntityId, Refusal> {
        if let Some(user) = &player.user_id {
            let other = self.seats.iter().filter_map(|s| s.player).find_map(|p| ctx.player(p)?.user_id.as_ref());
            if other == Some(user) {
                return Err(Refusal::new(format!("user {user} already plays in this room")));
            }
        }
        let Some(seat) = self.seats.iter().position(|s| s.player.is_none()) else {
            return Err(Refusal::new("both seats are taken"));
        };
        self.seats[seat] = SeatState { player: Some(player.id), ..SeatState::default() };
        if self.seated() == 2 && self.phase == Phase::Waiting {
            self.start_round(ctx);
        }
        Ok(EntityId(seat as u32 + 1))
    }

    fn leave(&mut self, ctx: &mut Ctx<'_>, player: PlayerId, _why: LeaveReason) {
        let Some(seat) = self.seat_of(player) else { return };
        self.seats[seat] = SeatState::default();
        match self.phase {
            Phase::Playing { .. } => {
                let winner = 2 - seat as u8; // the other seat's side
                self.end_round(ctx, winner, End::Forfeit, Vec::new());
            }
            Phase::Over { .. } | Phase::Waiting => {}
        }
    }

    fn step(&mut self, ctx: &mut Ctx<'_>, inputs: &[PlayerInput]) {
        let v = self.settings.variant;
        for input in inputs {
            if let Some(seat) = self.seat_of(input.player) {
                let col = input.data.get(0).clamp(0, i32::from(v.width) - 1);
                let row = input.data.get(1).clamp(0, i32::from(v.height) - 1);
                self.seats[seat].hover = (col, row);
            }
        }
        match self.phase {
            Phase::Playing { turn, since } if self.settings.turn_seconds > 0 => {
                let limit = ctx.ticks_in(f64::from(self.settings.turn_seconds));
                if ctx.tick().since(since) >= limit {
                    self.end_round(ctx, 3 - turn, End::Timeout, Vec::new());
                }
            }
            Phase::Over { until } if ctx.tick() >= until => {
                if self.seated() == 2 {
                    self.start_round(ctx);
                } else {
                    self.phase = Phase::Waiting;
                    self.publish(ctx);
                }
            }
            _ => {}
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_>, from: PlayerId, name: &str, data: &Value) -> Result<Value, MessageError> {
        match name {
            "move" => self.play(ctx, from, data),
            "resign" => {
                let Some(seat) = self.seat_of(from) else { return Err(MessageError::refuse("you have no seat")) };
                if !matches!(self.phase, Phase::Playing { .. }) {
                    return Err(MessageError::refuse("no round is being played"));
                }
                self.end_round(ctx, 2 - seat as u8, End::Resign, Vec::new());
                Ok(Value::Null)
            }
            "chat" => {
                let text = data.as_str().filter(|t| t.chars().count() <= MAX_CHAT_CHARS).ok_or_else(|| {
                    MessageError::refuse(format!("chat takes a string of at most {MAX_CHAT_CHARS} characters"))
                })?;
                Self::tell(ctx, "chat", map([("from", Value::from(from.0)), ("text", Value::from(text))]));
                Ok(Value::Null)
            }
            _ => Err(MessageError::Unknown),
        }
    }

    fn write_snapshot(&self, out: &mut Vec<Entity>) {
        for (i, seat) in self.seats.iter().enumerate() {
            if seat.player.is_none() {
                continue;
            }
            let side = i as u8 + 1;
            let mut e = Entity::new(EntityId(u32::from(side)), kind::SEAT);
            e.values[field::SIDE] = i32::from(side);
            e.values[field::WINS] = seat.wins;
            e.values[field::TURN] = i32::from(matches!(self.phase, Phase::Playing { turn, .. } if turn == side));
            (e.values[field::HOVER_COL], e.values[field::HOVER_ROW]) = seat.hover;
            out.push(e);
        }
        out.extend(self.stones.iter().map(|s| {
            let mut e = Entity::new(s.id, kind::STONE);
            e.values[field::SIDE] = i32::from(s.side);
            e.values[field::COL] = i32::from(s.col);
            e.values[field::ROW] = i32::from(s.row);
            e
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::GameHarness;
    use std::sync::Arc;
    use tickforge_protocol::codec::Format;
    use tickforge_protocol::message::RejectCode;

    fn options(pairs: &[(&str, Value)]) -> ValueMap {
        pairs.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    fn room(pairs: &[(&str, Value)]) -> GameHarness {
        GameHarness::builder(Arc::new(Lines::default())).options(options(pairs)).build().unwrap()
    }

    fn at(col: i64, row: i64) -> Value {
        map([("col", Value::Int(col)), ("row", Value::Int(row))])
    }

    fn phase(h: &GameHarness) -> &str {
        h.metadata().get("phase").and_then(Value::as_str).unwrap()
    }

    fn event<'a>(events: &'a [(String, Value)], name: &str) -> &'a Value {
        &events.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in {events:?}")).1
    }

    #[test]
    fn options_choose_a_variant_and_anything_else_is_refused() {
        let h = room(&[]);
        assert_eq!(h.metadata().get("variant"), Some(&Value::from("tictactoe")));
        assert_eq!(phase(&h), "waiting");
        assert_eq!(h.metadata().get("round"), Some(&Value::Int(0)));
        let c4 = room(&[("variant", "connect4".into()), ("turn_seconds", Value::Int(0))]);
        assert_eq!(c4.metadata().get("variant"), Some(&Value::from("connect4")));
        let refused = |pairs: &[(&str, Value)]| {
            let err = GameHarness::builder(Arc::new(Lines::default())).options(options(pairs)).build().unwrap_err();
            assert_eq!(err.0, RejectCode::Refused);
            err.1
        };
        assert!(refused(&[("variant", "chess".into())]).contains("tictactoe, connect4, gomoku"));
        assert!(refused(&[("variant", Value::Int(3))]).contains("must be one of"));
        assert!(refused(&[("map", "dust".into())]).contains("unknown option \"map\""));
        assert!(refused(&[("turn_seconds", Value::Int(601))]).contains("0..=600"));
        assert!(refused(&[("restart_seconds", Value::Float(2.0))]).contains("integer"));
    }

    /// A whole tic-tac-toe round in both wire forms: turns, refusals, the
    /// win, the metadata's phases, the next round.
    #[test]
    fn a_round_is_played_won_and_followed_by_the_next() {
        for format in [Format::Bin, Format::Json] {
            let mut h = GameHarness::builder(Arc::new(Lines::default())).format(format).build().unwrap();
            let x = h.join().unwrap();
            assert_eq!(
                h.message(x, "move", at(0, 0)).unwrap_err().1,
                "the round has not started: waiting for a second player"
            );
            let o = h.join().unwrap();
            assert_eq!(h.joined(x).entity_id, EntityId(1));
            assert_eq!(h.joined(o).entity_id, EntityId(2));
            assert_eq!(h.room().config().max_players, 2, "two seats");
            assert_eq!(h.join().unwrap_err().0, RejectCode::RoomFull);
            assert_eq!((phase(&h), h.metadata().get("round")), ("playing", Some(&Value::Int(1))));
            h.tick();
            let events = h.events(o);
            assert_eq!(event(&events, "round_started").get("first"), Some(&Value::from("x")));
            assert_eq!(event(&events, "turn").get("player"), Some(&Value::Int(x.0.into())));
            let seat = |h: &GameHarness, id| h.entity(EntityId(id)).unwrap().get("turn");
            assert_eq!((seat(&h, 1), seat(&h, 2)), (Some(1.0), Some(0.0)));

            assert_eq!(h.message(o, "move", at(1, 1)), Err((RejectCode::Refused, "not your turn".into())));
            let reply = h.message(x, "move", at(0, 0)).unwrap();
            assert_eq!(reply, map([("col", Value::Int(0)), ("row", Value::Int(0)), ("stone", Value::Int(3))]));
            assert_eq!(h.message(o, "move", at(0, 0)).unwrap_err().1, "cell (0, 0) is taken");
            assert!(h.message(o, "move", at(3, 0)).unwrap_err().1.contains("col is an integer in 0..3"));
            assert!(h.message(o, "move", Value::from("b2")).unwrap_err().1.contains("move takes {col, row}"));
            for (player, col, row) in [(o, 1, 1), (x, 1, 0), (o, 2, 2), (x, 2, 0)] {
                h.message(player, "move", at(col, row)).unwrap();
            }
            h.tick();
            let events = h.events(o);
            let over = event(&events, "round_over");
            assert_eq!(over.get("winner"), Some(&Value::Int(x.0.into())));
            assert_eq!(over.get("reason"), Some(&Value::from("line")));
            let line = Value::List(vec![at_list(0, 0), at_list(1, 0), at_list(2, 0)]);
            assert_eq!(over.get("line"), Some(&line));
            assert_eq!(events.iter().filter(|(n, _)| n == "moved").count(), 5, "o saw every move");
            assert_eq!(phase(&h), "over");
            assert_eq!(h.entity(EntityId(1)).unwrap().get("wins"), Some(1.0));
            assert_eq!(h.entities_of_kind("stone").len(), 5);
            assert!(h.message(o, "move", at(2, 1)).unwrap_err().1.contains("round is over"));
            h.events(x);
            // Three seconds (90 ticks at 30 Hz) after the winning move, at
            // tick 1, round 2: o first.
            h.ticks(88);
            assert_eq!(phase(&h), "over");
            h.tick();
            assert_eq!((phase(&h), h.metadata().get("round")), ("playing", Some(&Value::Int(2))));
            h.tick();
            assert!(h.entities_of_kind("stone").is_empty(), "a clear board");
            assert_eq!(event(&h.events(x), "round_started").get("first"), Some(&Value::from("o")));
            assert_eq!(h.message(x, "move", at(1, 1)).unwrap_err().1, "not your turn");
        }
    }

    fn at_list(col: i64, row: i64) -> Value {
        Value::List(vec![Value::Int(col), Value::Int(row)])
    }

    fn two(pairs: &[(&str, Value)]) -> (GameHarness, PlayerId, PlayerId) {
        let mut h = room(pairs);
        let (x, o) = (h.join().unwrap(), h.join().unwrap());
        h.tick();
        (h, x, o)
    }

    #[test]
    fn connect4_stones_fall_and_full_columns_refuse() {
        let (mut h, x, o) = two(&[("variant", "connect4".into())]);
        let drop = |col: i64| map([("col", Value::Int(col))]);
        assert_eq!(h.message(x, "move", drop(3)).unwrap().get("row"), Some(&Value::Int(5)));
        assert_eq!(h.message(o, "move", drop(3)).unwrap().get("row"), Some(&Value::Int(4)));
        for (p, _) in (0..4).map(|i| (if i % 2 == 0 { x } else { o }, i)) {
            h.message(p, "move", drop(3)).unwrap();
        }
        assert_eq!(h.message(x, "move", drop(3)).unwrap_err().1, "column 3 is full");
        assert!(h.message(x, "move", drop(7)).unwrap_err().1.contains("0..7"));
        // A new room: x along the bottom row, o stacking in column 6.
        let (mut h, x, o) = two(&[("variant", "connect4".into())]);
        for col in 0..3 {
            h.message(x, "move", drop(col)).unwrap();
            h.message(o, "move", drop(6)).unwrap();
        }
        h.message(x, "move", drop(3)).unwrap();
        h.tick();
        let events = h.events(o);
        let over = event(&events, "round_over");
        assert_eq!(over.get("reason"), Some(&Value::from("line")));
        assert_eq!(over.get("winner"), Some(&Value::Int(x.0.into())));
        let bottom = Value::List((0..4).map(|c| at_list(c, 5)).collect());
        assert_eq!(over.get("line"), Some(&bottom));
    }

    #[test]
    fn gomoku_wins_on_a_diagonal() {
        let (mut h, x, o) = two(&[("variant", "gomoku".into())]);
        for i in 0..4 {
            h.message(x, "move", at(i, i)).unwrap();
            h.message(o, "move", at(i, 14)).unwrap();
        }
        h.message(x, "move", at(4, 4)).unwrap();
        h.tick();
        let events = h.events(x);
        let line = event(&events, "round_over").get("line").unwrap().as_list().unwrap().len();
        assert_eq!(line, 5);
    }

    #[test]
    fn a_full_board_without_a_line_is_a_draw() {
        let (mut h, x, o) = two(&[]);
        // x o x / x o o / o x x
        for (p, c, r) in
            [(x, 0, 0), (o, 1, 0), (x, 2, 0), (o, 1, 1), (x, 0, 1), (o, 2, 1), (x, 1, 2), (o, 0, 2), (x, 2, 2)]
        {
            h.message(p, "move", at(c, r)).unwrap();
        }
        h.tick();
        let events = h.events(x);
        let over = event(&events, "round_over");
        assert_eq!((over.get("winner"), over.get("reason")), (Some(&Value::Null), Some(&Value::from("draw"))));
        assert_eq!(h.entity(EntityId(1)).unwrap().get("wins"), Some(0.0));
    }

    #[test]
    fn a_turn_left_too_long_loses_the_round() {
        let (mut h, x, o) = two(&[("turn_seconds", Value::Int(1))]);
        h.message(x, "move", at(1, 1)).unwrap();
        h.ticks(29);
        assert_eq!(phase(&h), "playing");
        h.tick();
        assert_eq!(phase(&h), "over");
        let events = h.events(x);
        let over = event(&events, "round_over");
        assert_eq!(
            (over.get("winner"), over.get("reason")),
            (Some(&Value::Int(x.0.into())), Some(&Value::from("timeout")))
        );
        let _ = o;
    }

    #[test]
    fn leaving_forfeits_and_a_newcomer_takes_the_seat() {
        let (mut h, x, o) = two(&[("restart_seconds", Value::Int(1))]);
        h.leave(x);
        h.tick();
        let events = h.events(o);
        let over = event(&events, "round_over");
        assert_eq!(
            (over.get("winner"), over.get("reason")),
            (Some(&Value::Int(o.0.into())), Some(&Value::from("forfeit")))
        );
        h.ticks(30);
        assert_eq!(phase(&h), "waiting", "one player left");
        let newcomer = h.join().unwrap();
        assert_eq!(h.joined(newcomer).entity_id, EntityId(1), "the free seat is x");
        assert_eq!((phase(&h), h.metadata().get("round")), ("playing", Some(&Value::Int(2))));
        h.tick();
        assert_eq!(h.entity(EntityId(1)).unwrap().get("wins"), Some(0.0), "a new player starts at 0");
        assert_eq!(h.entity(EntityId(2)).unwrap().get("wins"), Some(1.0));
    }

    #[test]
    fn resign_chat_and_unknown_messages() {
        let (mut h, x, o) = two(&[]);
        assert_eq!(h.message(o, "chat", Value::from("gl hf")), Ok(Value::Null));
        let long = "a".repeat(MAX_CHAT_CHARS + 1);
        assert!(h.message(o, "chat", Value::from(long.as_str())).unwrap_err().1.contains("at most 200"));
        assert_eq!(h.message(o, "chat", Value::Int(5)).unwrap_err().0, RejectCode::Refused);
        assert_eq!(h.message(x, "dance", Value::Null).unwrap_err().0, RejectCode::Unsupported);
        assert_eq!(h.message(x, "resign", Value::Null), Ok(Value::Null));
        assert!(h.message(x, "resign", Value::Null).unwrap_err().1.contains("no round"));
        h.tick();
        let events = h.events(x);
        assert_eq!(event(&events, "chat"), &map([("from", Value::Int(o.0.into())), ("text", Value::from("gl hf"))]));
        let over = event(&events, "round_over");
        assert_eq!(
            (over.get("winner"), over.get("reason")),
            (Some(&Value::Int(o.0.into())), Some(&Value::from("resign")))
        );
    }

    #[test]
    fn one_user_cannot_take_both_seats() {
        let mut h = room(&[]);
        h.join_as(Some("u-7"), Some("Sam"), &ValueMap::new()).unwrap();
        let (code, reason) = h.join_as(Some("u-7"), Some("Sam"), &ValueMap::new()).unwrap_err();
        assert_eq!(code, RejectCode::Refused);
        assert_eq!(reason, "user u-7 already plays in this room");
        assert!(h.join_as(Some("u-8"), None, &ValueMap::new()).is_ok());
    }

    #[test]
    fn hover_inputs_show_on_the_seat_clamped_to_the_board() {
        let (mut h, x, _o) = two(&[]);
        h.input_named(x, &[("hover_col", 2), ("hover_row", 200)]).unwrap();
        h.tick();
        let seat = h.entity(EntityId(1)).unwrap();
        assert_eq!((seat.get("hover_col"), seat.get("hover_row")), (Some(2.0), Some(2.0)));
        assert!(h.input_named(x, &[("hover_col", 256)]).is_err(), "u8");
        assert_eq!(Lines::default().schema().validate(), Ok(()));
        assert_eq!(Lines::default().input_schema().validate(), Ok(()));
    }
}
