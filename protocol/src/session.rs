//! The client-side state machine, driven by the loadgen, the tests and any
//! Rust client: bytes in, events and bytes out, no I/O.
//!
//! It numbers requests, remembers the room it joined or watches (schema,
//! input schema, tick rate), applies every tick to its copy of the state
//! (full or delta), keeps the baselines the server may still send deltas
//! against (PROTOCOL.md section 6: every applied state from the newest
//! applied delta's baseline on), and writes `ack`s and inputs, encoded
//! with the room's input schema, that carry the newest applied tick.

use crate::codec::{self, Format, TickHeader};
use crate::delta::{self, DeltaError};
use crate::error::DecodeError;
use crate::ids::{InputSeq, RequestId, RoomId, Tick};
use crate::input::{InputError, InputSchema, InputValues, RawInput};
use crate::message::{ClientMsg, Confirm, Indication, InputData, Joined, RejectCode, Request, ServerMsg, Watching};
use crate::schema::{Schema, SchemaError};
use crate::snapshot::Snapshot;
use std::collections::VecDeque;
use thiserror::Error;

/// The least number of snapshots a session keeps as baselines while acks
/// stall (more when the room's ring holds more: one second of ticks plus
/// two); at 30 Hz about 4 s of ticks.
pub const MAX_BASELINES: usize = 128;

/// What a session saw, in arrival order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A request was confirmed.
    Confirmed {
        /// The request.
        id: RequestId,
        /// The confirmation.
        body: Confirm,
    },
    /// A request was rejected.
    Rejected {
        /// The request.
        id: RequestId,
        /// The code.
        code: RejectCode,
        /// The reason.
        reason: String,
    },
    /// An indication arrived.
    Indication(Indication),
    /// A tick was applied; [`ClientSession::state`] now holds it.
    Tick(TickHeader),
}

/// Why a received message could not be used. The session stays usable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The bytes are not a server message.
    #[error("undecodable server message: {0}")]
    Decode(#[from] DecodeError),
    /// A tick's state could not be applied.
    #[error("tick {tick}: {error}")]
    Delta {
        /// The tick.
        tick: Tick,
        /// Why.
        error: DeltaError,
    },
    /// A tick while in no room.
    #[error("tick {0} while in no room")]
    TickOutsideRoom(Tick),
    /// A tick not newer than the newest applied.
    #[error("tick {tick} is not newer than {latest}")]
    StaleTick {
        /// The tick.
        tick: Tick,
        /// The newest applied.
        latest: Tick,
    },
    /// The room's schema is unusable.
    #[error("room schema: {0}")]
    Schema(#[from] SchemaError),
}

/// How the session is in its room: a player's seat or a spectator's view.
#[derive(Debug)]
enum Seat {
    Player(Joined),
    Spectator(Watching),
}

#[derive(Debug)]
struct RoomState {
    seat: Seat,
    /// Applied snapshots, oldest first; the newest is the current state.
    baselines: VecDeque<Snapshot>,
    /// The baseline of the newest applied delta: the oldest tick the
    /// server may still send a delta against (acks travel in order, and the
    /// server takes each delta against the newest ack it received). A full
    /// state does not move it: an ack sent before it may still arrive.
    mark: Option<Tick>,
    /// The header of the newest applied tick.
    latest_header: Option<TickHeader>,
}

impl RoomState {
    fn new(seat: Seat) -> Self {
        Self { seat, baselines: VecDeque::new(), mark: None, latest_header: None }
    }

    fn schema(&self) -> &Schema {
        match &self.seat {
            Seat::Player(j) => &j.schema,
            Seat::Spectator(w) => &w.schema,
        }
    }

    fn input_schema(&self) -> &InputSchema {
        match &self.seat {
            Seat::Player(j) => &j.input_schema,
            Seat::Spectator(w) => &w.input_schema,
        }
    }

    fn tick_hz(&self) -> u32 {
        match &self.seat {
            Seat::Player(j) => j.tick_hz,
            Seat::Spectator(w) => w.tick_hz,
        }
    }
}

/// A client's protocol state.
#[derive(Debug)]
pub struct ClientSession {
    format: Format,
    next_request: u32,
    input_seq: InputSeq,
    room: Option<RoomState>,
    events: VecDeque<Event>,
    /// Reused buffers for [`ClientSession::full_state_len`].
    scratch: Vec<u8>,
    state_scratch: Vec<u8>,
}

impl ClientSession {
    /// A new session speaking `format`.
    #[must_use]
    pub fn new(format: Format) -> Self {
        Self {
            format,
            next_request: 1,
            input_seq: InputSeq(0),
            room: None,
            events: VecDeque::new(),
            scratch: Vec::new(),
            state_scratch: Vec::new(),
        }
    }

    /// The session's format.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes a message this session built: its inputs are always held in
    /// its own form, so writing cannot fail.
    fn encode(&self, msg: &ClientMsg, out: &mut Vec<u8>) {
        out.clear();
        codec::encode_client(self.format, msg, out).expect("the session holds input data in its own form");
    }

    /// Encodes a request into `out` (cleared first) and returns its id.
    pub fn request(&mut self, body: Request, out: &mut Vec<u8>) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1).max(1);
        self.encode(&ClientMsg::Req { id, body }, out);
        id
    }

    /// Encodes the next input frame into `out` (cleared first), acking the
    /// newest applied tick, and returns its `seq`.
    ///
    /// The stick input of arena's input schema (`move_x` i8, `move_y` i8,
    /// `buttons` u8), written whatever room the session is in (or none):
    /// a room whose game reads another schema refuses it with an `error`
    /// indication. For any game, use [`ClientSession::input_values`].
    pub fn input(&mut self, data: InputData, out: &mut Vec<u8>) -> InputSeq {
        self.send_input(data.to_raw(self.format), out)
    }

    /// Encodes the next input frame into `out` (cleared first) with the
    /// room's input schema (from `joined`), acking the newest applied tick,
    /// and returns its `seq`.
    ///
    /// # Errors
    /// [`InputError::NoSchema`] in no room; [`InputError::WrongCount`] or
    /// [`InputError::OutOfRange`] for values that do not fit the schema.
    /// Nothing is written and the `seq` is not used then.
    pub fn input_values(&mut self, values: &InputValues, out: &mut Vec<u8>) -> Result<InputSeq, InputError> {
        let schema = self.input_schema().ok_or(InputError::NoSchema)?;
        let data = schema.encode(self.format, values)?;
        Ok(self.send_input(data, out))
    }

    fn send_input(&mut self, data: RawInput, out: &mut Vec<u8>) -> InputSeq {
        self.input_seq = self.input_seq.next();
        let msg = ClientMsg::Input { seq: self.input_seq, ack: self.latest_tick(), data };
        self.encode(&msg, out);
        self.input_seq
    }

    /// Encodes an `ack` of the newest applied tick into `out` (cleared
    /// first); `None` (and nothing written) when no tick was applied.
    pub fn ack(&mut self, out: &mut Vec<u8>) -> Option<Tick> {
        out.clear();
        let tick = self.latest_tick()?;
        self.encode(&ClientMsg::Ack { tick }, out);
        Some(tick)
    }

    /// The room joined as a player, if any.
    #[must_use]
    pub fn joined(&self) -> Option<&Joined> {
        match self.room.as_ref().map(|r| &r.seat) {
            Some(Seat::Player(j)) => Some(j),
            _ => None,
        }
    }

    /// The room watched as a spectator, if any.
    #[must_use]
    pub fn watching(&self) -> Option<&Watching> {
        match self.room.as_ref().map(|r| &r.seat) {
            Some(Seat::Spectator(w)) => Some(w),
            _ => None,
        }
    }

    /// The id of the room joined or watched, if any.
    #[must_use]
    pub fn room_id(&self) -> Option<&RoomId> {
        self.room.as_ref().map(|r| match &r.seat {
            Seat::Player(j) => &j.room_id,
            Seat::Spectator(w) => &w.room_id,
        })
    }

    /// The input schema of the room joined or watched, if any.
    #[must_use]
    pub fn input_schema(&self) -> Option<&InputSchema> {
        self.room.as_ref().map(RoomState::input_schema)
    }

    /// The `resume` request that takes this session's seat back on a new
    /// connection (send it from a new session), if it holds one.
    #[must_use]
    pub fn resume_request(&self) -> Option<Request> {
        let j = self.joined().filter(|j| !j.resume_token.is_empty())?;
        Some(Request::Resume { room_id: j.room_id.clone(), resume_token: j.resume_token.clone() })
    }

    /// The newest rebuilt state, if a tick was applied.
    #[must_use]
    pub fn state(&self) -> Option<&Snapshot> {
        self.room.as_ref().and_then(|r| r.baselines.back())
    }

    /// The ticks of the states kept as baselines, oldest first: every
    /// applied state from the newest applied delta's baseline on (bounded
    /// by [`MAX_BASELINES`] or one second of ticks plus two, whichever is
    /// more, never dropping that baseline).
    pub fn baselines(&self) -> impl Iterator<Item = Tick> + '_ {
        self.room.iter().flat_map(|r| r.baselines.iter().map(|s| s.tick))
    }

    /// The newest applied tick.
    #[must_use]
    pub fn latest_tick(&self) -> Option<Tick> {
        self.state().map(|s| s.tick)
    }

    /// The newest input seq sent.
    #[must_use]
    pub fn input_seq(&self) -> InputSeq {
        self.input_seq
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Handles one received message (one WebSocket message's payload).
    ///
    /// # Errors
    /// A [`SessionError`]; the message is then ignored and the session
    /// stays as it was.
    pub fn handle_message(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        match codec::decode_server(self.format, bytes)? {
            ServerMsg::Cfm { id, body } => {
                match &body {
                    // A join (or a resume) starts over: the server sends a
                    // full state next.
                    Confirm::Joined(joined) => {
                        joined.schema.validate()?;
                        joined.input_schema.validate()?;
                        self.room = Some(RoomState::new(Seat::Player(joined.clone())));
                    }
                    Confirm::Watching(watching) => {
                        watching.schema.validate()?;
                        watching.input_schema.validate()?;
                        self.room = Some(RoomState::new(Seat::Spectator(watching.clone())));
                    }
                    Confirm::Left { .. } => self.room = None,
                    _ => {}
                }
                self.events.push_back(Event::Confirmed { id, body });
            }
            ServerMsg::Rej { id, code, reason } => self.events.push_back(Event::Rejected { id, code, reason }),
            ServerMsg::Ind { body } => {
                if matches!(body, Indication::RoomClosing { .. }) {
                    self.room = None;
                }
                self.events.push_back(Event::Indication(body));
            }
            ServerMsg::Tick(t) => {
                let header = TickHeader {
                    tick: t.tick,
                    server_time_us: t.server_time_us,
                    baseline: t.baseline,
                    input_seq: t.input_seq,
                };
                self.apply_tick(&header, &t.state.0)?;
                self.events.push_back(Event::Tick(header));
            }
        }
        Ok(())
    }

    fn apply_tick(&mut self, header: &TickHeader, state: &[u8]) -> Result<(), SessionError> {
        let format = self.format;
        let room = self.room.as_mut().ok_or(SessionError::TickOutsideRoom(header.tick))?;
        if let Some(latest) = room.baselines.back().map(|s| s.tick) {
            if header.tick <= latest {
                return Err(SessionError::StaleTick { tick: header.tick, latest });
            }
        }
        let base = match header.baseline {
            None => None,
            Some(b) => Some(room.baselines.iter().find(|s| s.tick == b).ok_or(SessionError::Delta {
                tick: header.tick,
                error: DeltaError::MissingBaseline { baseline: b },
            })?),
        };
        let (schema, tick_hz) = (room.schema(), room.tick_hz());
        let result = match format {
            Format::Bin => delta::bin::apply(schema, tick_hz, base, header.tick, state),
            Format::Json => delta::json::read(schema, state).and_then(|d| delta::apply(base, &d, header.tick)),
        };
        let snapshot = result.map_err(|error| SessionError::Delta { tick: header.tick, error })?;
        // The server takes each delta against the newest ack it received,
        // and acks arrive in order: after a delta against `b`, no later
        // tick comes against anything older. A full state says nothing of
        // the acks in flight, so it keeps every state (PROTOCOL.md section 6).
        if let Some(b) = header.baseline {
            room.mark = Some(b);
            while room.baselines.front().is_some_and(|s| s.tick < b) {
                room.baselines.pop_front();
            }
        }
        // The server keeps one second of ticks (plus two) as baselines: keep
        // at least as many, so a 128 Hz room's oldest baseline is still here.
        let limit = MAX_BASELINES.max(crate::snapshot::SnapshotRing::capacity_for(tick_hz));
        if room.baselines.len() >= limit {
            // While acks stall the server keeps sending deltas against the
            // mark, which is then the oldest kept: drop the next oldest
            // instead (a ring of 1 s at 128 Hz is 130 ticks, more than
            // MAX_BASELINES).
            let keep_front = room.mark.is_some() && room.baselines.front().map(|s| s.tick) == room.mark;
            room.baselines.remove(usize::from(keep_front));
        }
        room.baselines.push_back(snapshot);
        room.latest_header = Some(*header);
        Ok(())
    }

    /// The size in bytes of the newest tick's message had it carried the
    /// full state (no baseline), in this session's format: the reference
    /// for the delta ratio.
    pub fn full_state_len(&mut self) -> Option<usize> {
        let room = self.room.as_ref()?;
        let state = room.baselines.back()?;
        let header = TickHeader { baseline: None, ..room.latest_header? };
        let schema = room.schema();
        self.state_scratch.clear();
        match self.format {
            Format::Bin => delta::bin::encode(schema, room.tick_hz(), None, state, &mut self.state_scratch),
            Format::Json => delta::json::write(schema, &delta::diff(schema, None, state), &mut self.state_scratch),
        }
        self.scratch.clear();
        codec::encode_tick(self.format, &header, &self.state_scratch, &mut self.scratch);
        Some(self.scratch.len())
    }
}
