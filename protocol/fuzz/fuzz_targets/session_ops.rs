//! A `ClientSession` driven by a sequence of operations: its own requests,
//! inputs (the stick and any values) and acks, raw bytes from a hostile
//! server, joins and watches, and valid ticks from a model server (full or
//! against a chosen baseline). Never a panic; a model tick the session
//! applies leaves it holding the model's snapshot (unless a raw message was
//! accepted since the last join), a refused message leaves its state
//! untouched, and an input it writes is one the server reads back.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tickforge_protocol::codec::{self, Format, TickHeader, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::delta;
use tickforge_protocol::ids::{InputSeq, RequestId, RoomId, Tick};
use tickforge_protocol::input::{InputSchema, InputValues};
use tickforge_protocol::message::{ClientMsg, Confirm, Indication, InputData, Request, ServerMsg, Watching};
use tickforge_protocol::snapshot::{Snapshot, SnapshotRing};
use tickforge_protocol::testutil::{self, Rng};
use tickforge_protocol::ClientSession;

#[derive(Arbitrary, Debug)]
enum Op {
    Join {
        hz: u8,
    },
    Watch {
        hz: u8,
    },
    Leave,
    Closing,
    Request,
    Input {
        move_x: i8,
        move_y: i8,
        buttons: u8,
    },
    InputValues(Vec<i32>),
    Ack,
    Raw(Vec<u8>),
    /// The model server steps `steps` ticks and sends the newest, against
    /// the kept tick `back` ticks old (0 = full state).
    Tick {
        steps: u8,
        back: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    json: bool,
    seed: u64,
    ops: Vec<Op>,
}

/// An input the session wrote reads back, with its schema, as the values given.
fn read_back(format: Format, bytes: &[u8], schema: &InputSchema, expected: InputValues) {
    match codec::decode_client(format, bytes, DEFAULT_MAX_MESSAGE) {
        Ok(ClientMsg::Input { data, .. }) => assert_eq!(schema.decode(&data), Ok(expected)),
        other => panic!("not an input: {other:?}"),
    }
}

fuzz_target!(|input: Input| {
    let format = if input.json { Format::Json } else { Format::Bin };
    let schema = testutil::schema();
    let mut rng = Rng::new(input.seed);
    let mut session = ClientSession::new(format);
    let mut out = Vec::new();
    let mut hz = 30;
    let mut ring = SnapshotRing::new(SnapshotRing::capacity_for(hz));
    let mut current = Snapshot::new(Tick(0));
    let mut next_id = 0;
    // False once a raw message was accepted (it may have been a tick or a
    // `joined` the model server did not make): states are then compared
    // again only after the next join.
    let mut trusted = true;
    for op in input.ops.into_iter().take(256) {
        match op {
            Op::Join { hz: h } | Op::Watch { hz: h } => {
                hz = u32::from(h).clamp(10, 128);
                ring = SnapshotRing::new(SnapshotRing::capacity_for(hz));
                current = testutil::snapshot(&mut rng, Tick(1), 8);
                next_id = 8;
                let joined = testutil::joined(hz);
                let body = if matches!(op, Op::Join { .. }) {
                    Confirm::Joined(joined)
                } else {
                    Confirm::Watching(Watching {
                        room_id: joined.room_id,
                        game: joined.game,
                        tick_hz: joined.tick_hz,
                        schema: joined.schema,
                        input_schema: joined.input_schema,
                    })
                };
                out.clear();
                codec::encode_server(format, &ServerMsg::Cfm { id: RequestId(1), body }, &mut out);
                assert_eq!(session.handle_message(&out), Ok(()));
                assert_eq!(session.baselines().count(), 0, "a join or a watch starts over");
                trusted = true;
            }
            Op::Leave => {
                out.clear();
                let body = Confirm::Left { room_id: RoomId("r-1-1".into()) };
                codec::encode_server(format, &ServerMsg::Cfm { id: RequestId(2), body }, &mut out);
                assert_eq!(session.handle_message(&out), Ok(()));
            }
            Op::Closing => {
                out.clear();
                let body = Indication::RoomClosing { reason: "bye".into() };
                codec::encode_server(format, &ServerMsg::Ind { body }, &mut out);
                assert_eq!(session.handle_message(&out), Ok(()));
            }
            Op::Request => {
                session.request(Request::Ping { client_time_us: 1 }, &mut out);
            }
            Op::Input { move_x, move_y, buttons } => {
                let data = InputData { move_x, move_y, buttons };
                session.input(data, &mut out);
                read_back(format, &out, InputData::schema(), data.into());
            }
            Op::InputValues(values) => {
                let Some(values) = InputValues::from_slice(&values) else { continue };
                let before = session.input_seq();
                match session.input_values(&values, &mut out) {
                    Ok(seq) => {
                        assert_eq!(seq, before.next());
                        let schema = session.input_schema().expect("an input was written: a schema is known").clone();
                        read_back(format, &out, &schema, values);
                    }
                    Err(_) => assert_eq!(session.input_seq(), before, "a refused input uses no seq"),
                }
            }
            Op::Ack => {
                let _ = session.ack(&mut out);
            }
            Op::Raw(bytes) => {
                let before = session.state().cloned();
                match session.handle_message(&bytes) {
                    Ok(()) => trusted = false,
                    Err(_) => assert_eq!(session.state(), before.as_ref()),
                }
            }
            Op::Tick { steps, back } => {
                for _ in 0..=steps % 8 {
                    current = testutil::evolve(&mut rng, &current, hz, &mut next_id);
                    let _ = ring.push(current.clone());
                }
                let baseline = (back > 0).then(|| Tick(current.tick.0.saturating_sub(u64::from(back))));
                let base = baseline.and_then(|b| ring.get(b));
                if baseline.is_some() && base.is_none() {
                    continue;
                }
                let mut state = Vec::new();
                match format {
                    Format::Bin => delta::bin::encode(&schema, hz, base, &current, &mut state),
                    Format::Json => delta::json::write(&schema, &delta::diff(&schema, base, &current), &mut state),
                }
                let header = TickHeader { tick: current.tick, server_time_us: 0, baseline, input_seq: InputSeq(0) };
                out.clear();
                codec::encode_tick(format, &header, &state, &mut out);
                let before = session.state().cloned();
                match session.handle_message(&out) {
                    Ok(()) if trusted => assert_eq!(session.state(), Some(&current)),
                    Ok(()) => {}
                    Err(_) => assert_eq!(session.state(), before.as_ref()),
                }
            }
        }
        while session.poll_event().is_some() {}
    }
});
