//! The client-side state machine, driven by the loadgen, the tests and any
//! Rust client: bytes in, events and bytes out, no I/O.
//!
//! It numbers requests, remembers the room it joined (schema, tick rate),
//! applies every tick to its copy of the state (full or delta), keeps the
//! baselines the server may still send deltas against, and writes `ack`s
//! and inputs that carry the newest applied tick.

use crate::codec::{self, Format, TickHeader};
use crate::delta::{self, DeltaError};
use crate::error::DecodeError;
use crate::ids::{InputSeq, RequestId, Tick};
use crate::message::{ClientMsg, Confirm, Indication, InputData, Joined, RejectCode, Request, ServerMsg};
use crate::schema::SchemaError;
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

#[derive(Debug)]
struct RoomState {
    joined: Joined,
    /// Applied snapshots, oldest first; the newest is the current state.
    baselines: VecDeque<Snapshot>,
    /// The header of the newest applied tick.
    latest_header: Option<TickHeader>,
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

    /// Encodes a request into `out` (cleared first) and returns its id.
    pub fn request(&mut self, body: Request, out: &mut Vec<u8>) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1).max(1);
        out.clear();
        codec::encode_client(self.format, &ClientMsg::Req { id, body }, out);
        id
    }

    /// Encodes the next input frame into `out` (cleared first), acking the
    /// newest applied tick, and returns its `seq`.
    pub fn input(&mut self, data: InputData, out: &mut Vec<u8>) -> InputSeq {
        self.input_seq = self.input_seq.next();
        out.clear();
        let msg = ClientMsg::Input { seq: self.input_seq, ack: self.latest_tick(), data };
        codec::encode_client(self.format, &msg, out);
        self.input_seq
    }

    /// Encodes an `ack` of the newest applied tick into `out` (cleared
    /// first); `None` (and nothing written) when no tick was applied.
    pub fn ack(&mut self, out: &mut Vec<u8>) -> Option<Tick> {
        out.clear();
        let tick = self.latest_tick()?;
        codec::encode_client(self.format, &ClientMsg::Ack { tick }, out);
        Some(tick)
    }

    /// The room joined, if any.
    #[must_use]
    pub fn joined(&self) -> Option<&Joined> {
        self.room.as_ref().map(|r| &r.joined)
    }

    /// The newest rebuilt state, if a tick was applied.
    #[must_use]
    pub fn state(&self) -> Option<&Snapshot> {
        self.room.as_ref().and_then(|r| r.baselines.back())
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
                    Confirm::Joined(joined) => {
                        joined.schema.validate()?;
                        self.room =
                            Some(RoomState { joined: joined.clone(), baselines: VecDeque::new(), latest_header: None });
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
        let schema = &room.joined.schema;
        let result = match format {
            Format::Bin => delta::bin::apply(schema, room.joined.tick_hz, base, header.tick, state),
            Format::Json => delta::json::read(schema, state).and_then(|d| delta::apply(base, &d, header.tick)),
        };
        let snapshot = result.map_err(|error| SessionError::Delta { tick: header.tick, error })?;
        // The server's baselines only move forward (acks arrive in order),
        // so nothing older than this tick's baseline will be asked about.
        if let Some(b) = header.baseline {
            while room.baselines.front().is_some_and(|s| s.tick < b) {
                room.baselines.pop_front();
            }
        }
        // The server keeps one second of ticks (plus two) as baselines: keep
        // at least as many, so a 128 Hz room's oldest baseline is still here.
        let limit = MAX_BASELINES.max(crate::snapshot::SnapshotRing::capacity_for(room.joined.tick_hz));
        if room.baselines.len() >= limit {
            // While acks stall the server keeps sending deltas against the
            // last acked tick, which is now the oldest kept: keep it and
            // drop the next oldest instead (a ring of 1 s at 128 Hz is 130
            // ticks, more than MAX_BASELINES).
            let keep_front = header.baseline.is_some() && room.baselines.front().map(|s| s.tick) == header.baseline;
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
        let schema = &room.joined.schema;
        self.state_scratch.clear();
        match self.format {
            Format::Bin => delta::bin::encode(schema, room.joined.tick_hz, None, state, &mut self.state_scratch),
            Format::Json => delta::json::write(schema, &delta::diff(schema, None, state), &mut self.state_scratch),
        }
        self.scratch.clear();
        codec::encode_tick(self.format, &header, &self.state_scratch, &mut self.scratch);
        Some(self.scratch.len())
    }
}
