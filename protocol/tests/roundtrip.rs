//! Property tests: codec round-trips in both forms (messages, values,
//! input data); deltas rebuild their target exactly; a client session
//! driven through lost ticks, lost and delayed acks holds the server's
//! snapshot bit for bit after every applied tick, keeps exactly the
//! baselines PROTOCOL.md section 6 names, and refuses a delta against a
//! baseline it lacks; and no decoder panics on random or truncated bytes.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::collections::BTreeSet;
use tickforge_protocol::codec::{self, Format, TickHeader, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::delta::{self, DeltaError};
use tickforge_protocol::ids::{EntityId, InputSeq, PlayerId, RequestId, RoomId, SessionId, Tick};
use tickforge_protocol::input::{InputSchema, InputValues, MAX_INPUT_FIELDS};
use tickforge_protocol::message::{
    ClientMsg, Confirm, Indication, InputData, Joined, RejectCode, Request, RoomInfo, ServerMsg, StateBytes, TickMsg,
    Watching,
};
use tickforge_protocol::schema::{FieldDef, FieldType, Schema, MAX_FIELDS};
use tickforge_protocol::session::{Event, SessionError, MAX_BASELINES};
use tickforge_protocol::snapshot::{Entity, Snapshot, SnapshotRing};
use tickforge_protocol::testutil::{self, Rng};
use tickforge_protocol::value::{Value, ValueMap, BYTES_KEY};
use tickforge_protocol::ClientSession;

// ---------------------------------------------------------------- message strategies

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_-]{0,12}", any::<String>()]
}

/// Any value within the bounds (up to 8 levels deep).
fn any_value() -> impl Strategy<Value = Value> {
    let key = text().prop_filter("not the reserved key", |k| k != BYTES_KEY).boxed();
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
        text().prop_map(Value::String),
        vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(8, 48, 4, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::List),
            proptest::collection::btree_map(key.clone(), inner, 0..4).prop_map(Value::Map),
        ]
    })
    .prop_filter("within the size bound", |v| v.check().is_ok())
}

fn value_map() -> impl Strategy<Value = ValueMap> {
    any_value().prop_map(|v| match v {
        Value::Map(m) => ValueMap(m),
        other => [("v", other)].into_iter().collect(),
    })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (option::of(text()), option::of(text())).prop_map(|(token, client)| Request::Hello { token, client }),
        (option::of(text()), option::of(value_map())).prop_map(|(game, filter)| Request::ListRooms { game, filter }),
        (text(), option::of(any::<u32>()), option::of(any::<u32>()), any::<bool>(), option::of(value_map())).prop_map(
            |(game, max_players, tick_hz, private, options)| Request::CreateRoom {
                game,
                max_players,
                tick_hz,
                private,
                options
            }
        ),
        (text(), option::of(text())).prop_map(|(r, reservation)| Request::JoinRoom { room_id: RoomId(r), reservation }),
        (text(), option::of(value_map())).prop_map(|(game, options)| Request::JoinOrCreate { game, options }),
        Just(Request::LeaveRoom),
        any::<u64>().prop_map(|client_time_us| Request::Ping { client_time_us }),
        (text(), text()).prop_map(|(r, resume_token)| Request::Resume { room_id: RoomId(r), resume_token }),
        text().prop_map(|r| Request::WatchRoom { room_id: RoomId(r) }),
        (text(), any_value()).prop_map(|(name, data)| Request::GameMessage { name, data }),
    ]
}

/// Any field type, `fixed` with a usable scale.
fn input_field_type() -> impl Strategy<Value = FieldType> {
    prop_oneof![
        Just(FieldType::U8),
        Just(FieldType::I8),
        Just(FieldType::U16),
        Just(FieldType::I16),
        Just(FieldType::I32),
        prop_oneof![Just(1u32), Just(16), Just(100), Just(1000), 1u32..100_000].prop_map(FieldType::Fixed),
    ]
}

/// A valid input schema of 0..=16 fields and values within it (mostly at
/// or near the edges of each type).
fn input_schema_and_values() -> impl Strategy<Value = (InputSchema, InputValues)> {
    vec((input_field_type(), any::<u64>()), 0..=MAX_INPUT_FIELDS).prop_map(|fields| {
        let schema = InputSchema::new(
            fields.iter().enumerate().map(|(i, (ty, _))| (["a", "b", "c", "d"][i % 4], *ty)).collect::<Vec<_>>(),
        );
        let mut schema = schema;
        for (i, f) in schema.fields.iter_mut().enumerate() {
            f.name = format!("{}{i}", f.name);
        }
        let values: Vec<i32> = fields
            .iter()
            .map(|(ty, seed)| {
                let (lo, hi) = ty.range();
                match seed % 4 {
                    0 => lo,
                    1 => hi,
                    _ => (i64::from(lo) + (seed >> 2) as i64 % (i64::from(hi) - i64::from(lo) + 1)) as i32,
                }
            })
            .collect();
        (schema, InputValues::from_slice(&values).unwrap())
    })
}

fn client_msg(format: Format) -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        (any::<u32>(), request()).prop_map(|(id, body)| ClientMsg::Req { id: RequestId(id), body }),
        (any::<u32>(), option::of(any::<u64>()), input_schema_and_values()).prop_map(
            move |(seq, ack, (schema, values))| ClientMsg::Input {
                seq: InputSeq(seq),
                ack: ack.map(Tick),
                data: schema.encode(format, &values).unwrap(),
            }
        ),
        any::<u64>().prop_map(|t| ClientMsg::Ack { tick: Tick(t) }),
    ]
}

fn reject_code() -> impl Strategy<Value = RejectCode> {
    (0..RejectCode::ALL.len()).prop_map(|i| RejectCode::ALL[i])
}

fn field_type() -> impl Strategy<Value = FieldType> {
    prop_oneof![
        Just(FieldType::U8),
        Just(FieldType::U16),
        Just(FieldType::I16),
        Just(FieldType::I32),
        any::<u32>().prop_map(FieldType::Fixed),
        Just(FieldType::I8),
    ]
}

/// Any schema, valid or not: the codec carries it either way.
fn any_schema() -> impl Strategy<Value = Schema> {
    let field = (text(), field_type(), option::of(any::<u8>())).prop_map(|(name, ty, integrates)| FieldDef {
        name,
        ty,
        integrates,
    });
    (vec(text(), 0..4), vec(field, 0..7)).prop_map(|(kinds, fields)| Schema { kinds, fields })
}

/// Any input schema, valid or not: the codec carries it either way.
fn any_input_schema() -> impl Strategy<Value = InputSchema> {
    vec((text(), field_type()), 0..5).prop_map(|fields| InputSchema {
        fields: fields.into_iter().map(|(name, ty)| tickforge_protocol::input::InputField { name, ty }).collect(),
    })
}

fn confirm() -> impl Strategy<Value = Confirm> {
    let room = (text(), text(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), value_map()).prop_map(
        |(room_id, game, players, max_players, tick_hz, spectators, metadata)| RoomInfo {
            room_id: RoomId(room_id),
            game,
            players,
            max_players,
            tick_hz,
            spectators,
            metadata,
        },
    );
    let joined = (
        (text(), text(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (text(), any_schema(), any_input_schema()),
    )
        .prop_map(
            |((room_id, game, player_id, entity_id, tick_hz, max_players), (resume_token, schema, input_schema))| {
                Joined {
                    room_id: RoomId(room_id),
                    game,
                    player_id: PlayerId(player_id),
                    entity_id: EntityId(entity_id),
                    tick_hz,
                    max_players,
                    resume_token,
                    schema,
                    input_schema,
                }
            },
        );
    let watching = (text(), text(), any::<u32>(), any_schema(), any_input_schema()).prop_map(
        |(room_id, game, tick_hz, schema, input_schema)| Watching {
            room_id: RoomId(room_id),
            game,
            tick_hz,
            schema,
            input_schema,
        },
    );
    prop_oneof![
        (text(), text(), option::of(text())).prop_map(|(s, v, user_id)| Confirm::Welcome {
            session_id: SessionId(s),
            server_version: v,
            user_id
        }),
        vec(room, 0..4).prop_map(|rooms| Confirm::RoomList { rooms }),
        joined.prop_map(Confirm::Joined),
        text().prop_map(|r| Confirm::Left { room_id: RoomId(r) }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(client_time_us, server_time_us)| Confirm::Pong { client_time_us, server_time_us }),
        watching.prop_map(Confirm::Watching),
        any_value().prop_map(|data| Confirm::GameReply { data }),
        (text(), text(), text()).prop_map(|(url, r, reservation)| Confirm::Redirect {
            url,
            room_id: RoomId(r),
            reservation
        }),
    ]
}

fn indication() -> impl Strategy<Value = Indication> {
    prop_oneof![
        (any::<u32>(), option::of(text()), option::of(text()))
            .prop_map(|(p, user_id, name)| { Indication::PlayerJoined { player_id: PlayerId(p), user_id, name } }),
        (any::<u32>(), text()).prop_map(|(p, reason)| Indication::PlayerLeft { player_id: PlayerId(p), reason }),
        text().prop_map(|reason| Indication::RoomClosing { reason }),
        (reject_code(), text()).prop_map(|(code, reason)| Indication::Error { code, reason }),
        any::<u32>().prop_map(|p| Indication::PlayerDisconnected { player_id: PlayerId(p) }),
        any::<u32>().prop_map(|p| Indication::PlayerReconnected { player_id: PlayerId(p) }),
        (text(), any_value()).prop_map(|(name, data)| Indication::GameEvent { name, data }),
    ]
}

/// State bytes in a form's own shape: any bytes for bin, a state object's
/// text for JSON (the JSON form embeds the state as JSON, verbatim).
fn state_bytes(format: Format) -> BoxedStrategy<StateBytes> {
    match format {
        Format::Bin => vec(any::<u8>(), 0..300).prop_map(StateBytes).boxed(),
        Format::Json => (any::<u64>(), 0usize..6)
            .prop_map(|(seed, n)| {
                let mut rng = Rng::new(seed);
                let schema = testutil::schema();
                let a = testutil::snapshot(&mut rng, Tick(1), n);
                let mut next = n as u32;
                let b = testutil::evolve(&mut rng, &a, 30, &mut next);
                let base = (seed % 2 == 0).then_some(&a);
                let mut out = Vec::new();
                delta::json::write(&schema, &delta::diff(&schema, base, &b), &mut out);
                StateBytes(out)
            })
            .boxed(),
    }
}

fn server_msg(format: Format) -> impl Strategy<Value = ServerMsg> {
    let tick = (any::<u64>(), any::<u64>(), option::of(any::<u64>()), any::<u32>(), state_bytes(format)).prop_map(
        |(tick, server_time_us, baseline, input_seq, state)| {
            ServerMsg::Tick(TickMsg {
                tick: Tick(tick),
                server_time_us,
                baseline: baseline.map(Tick),
                input_seq: InputSeq(input_seq),
                state,
            })
        },
    );
    prop_oneof![
        (any::<u32>(), confirm()).prop_map(|(id, body)| ServerMsg::Cfm { id: RequestId(id), body }),
        (any::<u32>(), reject_code(), text()).prop_map(|(id, code, reason)| ServerMsg::Rej {
            id: RequestId(id),
            code,
            reason
        }),
        indication().prop_map(|body| ServerMsg::Ind { body }),
        tick,
    ]
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Bin), Just(Format::Json)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_messages_round_trip_bin(msg in client_msg(Format::Bin)) {
        let mut out = Vec::new();
        codec::encode_client(Format::Bin, &msg, &mut out).unwrap();
        prop_assert_eq!(codec::decode_client(Format::Bin, &out, usize::MAX), Ok(msg));
    }

    #[test]
    fn client_messages_round_trip_json(msg in client_msg(Format::Json)) {
        let mut out = Vec::new();
        codec::encode_client(Format::Json, &msg, &mut out).unwrap();
        prop_assert_eq!(codec::decode_client(Format::Json, &out, usize::MAX), Ok(msg));
    }

    /// Input data of any valid schema survives both forms, through the
    /// whole message, and the other form's data is refused by the encoder.
    #[test]
    fn input_data_round_trips((schema, values) in input_schema_and_values(), format in format()) {
        prop_assert_eq!(schema.validate(), Ok(()));
        let data = schema.encode(format, &values).unwrap();
        prop_assert_eq!(schema.decode(&data), Ok(values));
        let msg = ClientMsg::Input { seq: InputSeq(1), ack: None, data };
        let mut out = Vec::new();
        codec::encode_client(format, &msg, &mut out).unwrap();
        let Ok(ClientMsg::Input { data, .. }) = codec::decode_client(format, &out, DEFAULT_MAX_MESSAGE) else {
            return Err(TestCaseError::fail("not an input"));
        };
        prop_assert_eq!(schema.decode(&data), Ok(values));
        let other = if format == Format::Bin { Format::Json } else { Format::Bin };
        out.clear();
        prop_assert!(codec::encode_client(other, &msg, &mut out).is_err());
        prop_assert!(out.is_empty());
    }

    /// Values survive both forms standalone, and their sizes are those of
    /// the encodings.
    #[test]
    fn values_round_trip(v in any_value()) {
        let mut bin = Vec::new();
        v.write_bin(&mut bin);
        prop_assert_eq!(bin.len(), v.bin_len());
        prop_assert_eq!(Value::from_bin(&bin), Ok(v.clone()));
        let mut json = Vec::new();
        v.write_json(&mut json);
        prop_assert_eq!(json.len(), v.json_len());
        prop_assert_eq!(Value::from_json(&json), Ok(v));
    }

    /// Whatever decodes as a value is within every bound and re-encodes to
    /// itself.
    #[test]
    fn random_values_decode_within_bounds(bytes in vec(any::<u8>(), 0..64), text in "[\\[\\]{}\":,0-9a-z$ .eE+-]{0,64}") {
        if let Ok(v) = Value::from_bin(&bytes) {
            prop_assert_eq!(v.check(), Ok(()));
            let mut again = Vec::new();
            v.write_bin(&mut again);
            prop_assert_eq!(Value::from_bin(&again), Ok(v));
        }
        if let Ok(v) = Value::from_json(text.as_bytes()) {
            prop_assert!(v.check().is_ok() || v.bin_len() > tickforge_protocol::value::MAX_SIZE);
            let mut again = Vec::new();
            v.write_json(&mut again);
            prop_assert_eq!(Value::from_json(&again), Ok(v));
        }
    }

    #[test]
    fn server_messages_round_trip_bin(msg in server_msg(Format::Bin)) {
        let mut out = Vec::new();
        codec::encode_server(Format::Bin, &msg, &mut out);
        prop_assert_eq!(codec::decode_server(Format::Bin, &out), Ok(msg));
    }

    #[test]
    fn server_messages_round_trip_json(msg in server_msg(Format::Json)) {
        let mut out = Vec::new();
        codec::encode_server(Format::Json, &msg, &mut out);
        prop_assert!(std::str::from_utf8(&out).is_ok());
        prop_assert_eq!(codec::decode_server(Format::Json, &out), Ok(msg));
    }
}

// ---------------------------------------------------------------- deltas

/// A valid schema with 1..=MAX_FIELDS fields of random types, some fixed
/// fields integrating a velocity of the same scale.
fn valid_schema() -> impl Strategy<Value = Schema> {
    (1usize..=4, 1usize..=MAX_FIELDS, any::<u64>()).prop_map(|(kinds, nfields, seed)| {
        let mut rng = Rng::new(seed);
        let scales = [1, 10, 16, 100, 1000];
        let mut fields: Vec<FieldDef> = (0..nfields)
            .map(|i| {
                let ty = match rng.below(5) {
                    0 => FieldType::U8,
                    1 => FieldType::U16,
                    2 => FieldType::I16,
                    3 => FieldType::I32,
                    _ => FieldType::Fixed(scales[rng.below(scales.len() as u64) as usize]),
                };
                FieldDef { name: format!("f{i}"), ty, integrates: None }
            })
            .collect();
        for i in 0..nfields {
            let j = rng.below(nfields as u64) as usize;
            if i != j && matches!(fields[i].ty, FieldType::Fixed(_)) && fields[i].ty == fields[j].ty && rng.chance(0.7)
            {
                fields[i].integrates = Some(j as u8);
            }
        }
        let schema = Schema { kinds: (0..kinds).map(|k| format!("k{k}")).collect(), fields };
        assert_eq!(schema.validate(), Ok(()));
        schema
    })
}

/// A random value of a type: mostly small, sometimes at the type's edges.
fn value(rng: &mut Rng, ty: FieldType) -> i32 {
    let (lo, hi) = ty.range();
    match rng.below(4) {
        0 => lo,
        1 => hi,
        _ => (i64::from(lo) + rng.below((i64::from(hi) - i64::from(lo) + 1) as u64) as i64) as i32,
    }
    .clamp(lo, hi)
}

fn random_entity(rng: &mut Rng, schema: &Schema, id: u32) -> Entity {
    let mut e = Entity::new(EntityId(id), rng.below(schema.kinds.len() as u64) as u8);
    for (f, def) in schema.fields.iter().enumerate() {
        e.values[f] = if rng.chance(0.5) { value(rng, def.ty) } else { rng.below(200) as i32 };
        if !def.ty.holds(e.values[f]) {
            e.values[f] = 0;
        }
    }
    e
}

/// A random snapshot: random sparse ids, random values.
fn random_snapshot(rng: &mut Rng, schema: &Schema, tick: Tick, n: usize) -> Snapshot {
    let mut ids = BTreeSet::new();
    while ids.len() < n {
        ids.insert(if rng.chance(0.1) { rng.next_u64() as u32 } else { rng.below(4 * n as u64 + 1) as u32 });
    }
    Snapshot { tick, entities: ids.into_iter().map(|id| random_entity(rng, schema, id)).collect() }
}

/// A successor of `a` `ticks` ticks later: some removed, some respawned
/// with another kind, some moved exactly by dead reckoning, some changed,
/// some new.
fn successor(rng: &mut Rng, schema: &Schema, hz: u32, a: &Snapshot, ticks: u64) -> Snapshot {
    let mut entities = Vec::new();
    for e in &a.entities {
        if rng.chance(0.1) {
            continue;
        }
        let mut e = *e;
        if rng.chance(0.05) {
            e = random_entity(rng, schema, e.id.0);
        }
        // Dead reckoning as the game does it (wrapping, as the predictor does).
        let base = e.values;
        for (f, def) in schema.fields.iter().enumerate() {
            if let Some(v) = def.integrates {
                let step = i64::from(tickforge_protocol::schema::step_per_tick(base[usize::from(v)], hz));
                e.values[f] = i64::from(base[f]).wrapping_add((ticks as i64).wrapping_mul(step)) as i32;
            }
        }
        for (f, def) in schema.fields.iter().enumerate() {
            if rng.chance(0.15) {
                e.values[f] = value(rng, def.ty);
            }
        }
        entities.push(e);
    }
    let mut next = a.entities.last().map_or(0, |e| e.id.0);
    while rng.chance(0.4) && next < u32::MAX {
        next += 1 + rng.below(3) as u32;
        entities.push(random_entity(rng, schema, next));
    }
    entities.sort_by_key(|e| e.id);
    entities.dedup_by_key(|e| e.id);
    Snapshot { tick: Tick(a.tick.0 + ticks), entities }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deltas_rebuild_their_target(
        schema in valid_schema(),
        seed in any::<u64>(),
        n in 0usize..40,
        ticks in 1u64..8,
        hz in prop_oneof![Just(10u32), Just(30), Just(60), Just(128)],
        unrelated in any::<bool>(),
    ) {
        let mut rng = Rng::new(seed);
        let a = random_snapshot(&mut rng, &schema, Tick(100), n);
        let b = if unrelated {
            let m = rng.below(40) as usize;
            random_snapshot(&mut rng, &schema, Tick(100 + ticks), m)
        } else {
            successor(&mut rng, &schema, hz, &a, ticks)
        };
        // Plain delta (the JSON semantics), and through its JSON text.
        let d = delta::diff(&schema, Some(&a), &b);
        prop_assert_eq!(delta::apply(Some(&a), &d, b.tick), Ok(b.clone()));
        let mut text = Vec::new();
        delta::json::write(&schema, &d, &mut text);
        let read = delta::json::read(&schema, &text);
        prop_assert_eq!(read.as_ref(), Ok(&d));
        prop_assert_eq!(delta::apply(Some(&a), &read.unwrap(), b.tick), Ok(b.clone()));
        // Full state from nothing.
        let full = delta::diff(&schema, None, &b);
        prop_assert_eq!(delta::apply(None, &full, b.tick), Ok(b.clone()));
        // The binary blob, against the baseline and from nothing.
        let mut blob = Vec::new();
        delta::bin::encode(&schema, hz, Some(&a), &b, &mut blob);
        prop_assert_eq!(delta::bin::apply(&schema, hz, Some(&a), b.tick, &blob), Ok(b.clone()));
        blob.clear();
        delta::bin::encode(&schema, hz, None, &b, &mut blob);
        prop_assert_eq!(delta::bin::apply(&schema, hz, None, b.tick, &blob), Ok(b.clone()));
    }

    #[test]
    fn testutil_deltas_rebuild_their_target(seed in any::<u64>(), n in 0usize..64, steps in 1usize..6) {
        let schema = testutil::schema();
        let mut rng = Rng::new(seed);
        let a = testutil::snapshot(&mut rng, Tick(1), n);
        let mut next = n as u32;
        let mut b = a.clone();
        for _ in 0..steps {
            b = testutil::evolve(&mut rng, &b, 30, &mut next);
        }
        let mut encoder = delta::bin::Encoder::default();
        let mut blob = Vec::new();
        encoder.encode(&schema, 30, Some(&a), &b, &mut blob);
        prop_assert_eq!(delta::bin::apply(&schema, 30, Some(&a), b.tick, &blob), Ok(b.clone()));
        prop_assert_eq!(delta::apply(Some(&a), &delta::diff(&schema, Some(&a), &b), b.tick), Ok(b));
    }
}

// ---------------------------------------------------------------- session

/// Loss, delay and misbehaviour of one simulated link.
#[derive(Clone, Copy, Debug)]
struct Link {
    tick_loss: f64,
    ack_loss: f64,
    /// Ticks an ack spends in flight: one sent after tick `t` reaches the
    /// server before it builds tick `t + 1 + ack_delay`. While acks are in
    /// flight the server sends full states (no ack yet) or deltas against
    /// older acks, so the client must keep those older states.
    ack_delay: usize,
    /// Chance the server sends a delta against a tick the client never got.
    wrong_baseline: f64,
}

impl Link {
    const CLEAN: Self = Self { tick_loss: 0.0, ack_loss: 0.0, ack_delay: 0, wrong_baseline: 0.0 };
}

/// Drives a server-side ring + encoder and one `ClientSession` through
/// `ticks` ticks of `testutil::evolve` over `link`; asserts the client's
/// state equals the server's snapshot after every applied tick, and that
/// it keeps exactly the baselines PROTOCOL.md section 6 names: every
/// applied state from the newest applied delta's baseline on (all of them
/// before the first delta; a full state moves nothing). Returns (ticks
/// applied, deltas applied, wrong baselines refused).
fn drive(format: Format, seed: u64, n: usize, hz: u32, ticks: u64, link: Link) -> (u64, u64, u64) {
    let schema = testutil::schema();
    let mut rng = Rng::new(seed);
    let mut client = ClientSession::new(format);
    let mut out = Vec::new();

    // Join: the client asks, the server confirms with the schema.
    let id = client.request(Request::JoinOrCreate { game: "arena".into(), options: None }, &mut out);
    assert!(matches!(codec::decode_client(format, &out, DEFAULT_MAX_MESSAGE), Ok(ClientMsg::Req { .. })));
    let joined = testutil::joined(hz);
    out.clear();
    codec::encode_server(format, &ServerMsg::Cfm { id, body: Confirm::Joined(joined) }, &mut out);
    client.handle_message(&out).expect("joined");
    assert!(matches!(client.poll_event(), Some(Event::Confirmed { .. })));

    let mut ring = SnapshotRing::new(SnapshotRing::capacity_for(hz));
    let mut encoder = delta::bin::Encoder::default();
    let mut acked: Option<Tick> = None;
    let mut in_flight: std::collections::VecDeque<(u64, Option<Tick>)> = std::collections::VecDeque::new();
    let mut mark: Option<Tick> = None;
    let mut applied = BTreeSet::new();
    let mut next_id = n as u32;
    let mut current = testutil::snapshot(&mut rng, Tick(1), n);
    let (mut deltas, mut refused) = (0, 0);
    let (mut state, mut frame) = (Vec::new(), Vec::new());
    for t in 1..=ticks {
        if t > 1 {
            current = testutil::evolve(&mut rng, &current, hz, &mut next_id);
        }
        let _evicted = ring.push(current.clone());
        let current = &current;
        while in_flight.front().is_some_and(|(arrives, _)| *arrives <= t) {
            let (_, ack) = in_flight.pop_front().expect("front");
            acked = acked.max(ack);
        }

        // The baseline: the newest ack, if still kept; sometimes (a server
        // bug) a kept tick the client never applied.
        let wrong = rng.chance(link.wrong_baseline).then(|| {
            (current.tick.0.saturating_sub(ring.len() as u64 - 1)..current.tick.0)
                .rev()
                .map(Tick)
                .find(|b| ring.get(*b).is_some() && !applied.contains(b))
        });
        let baseline = match wrong {
            Some(Some(b)) => Some(b),
            _ => acked.filter(|a| ring.get(*a).is_some()),
        };
        let base = baseline.map(|b| ring.get(b).expect("kept"));
        state.clear();
        match format {
            Format::Bin => encoder.encode(&schema, hz, base, current, &mut state),
            Format::Json => delta::json::write(&schema, &delta::diff(&schema, base, current), &mut state),
        }
        let header = TickHeader {
            tick: current.tick,
            server_time_us: 1_000_000 + t * 33_333,
            baseline,
            input_seq: client.input_seq(),
        };
        frame.clear();
        codec::encode_tick(format, &header, &state, &mut frame);

        if let Some(Some(b)) = wrong {
            let before = client.state().cloned();
            let result = client.handle_message(&frame);
            assert_eq!(
                result,
                Err(SessionError::Delta { tick: current.tick, error: DeltaError::MissingBaseline { baseline: b } })
            );
            assert_eq!(client.state(), before.as_ref(), "a refused tick leaves the state alone");
            assert_eq!(client.poll_event(), None);
            refused += 1;
        } else if !rng.chance(link.tick_loss) {
            client.handle_message(&frame).unwrap_or_else(|e| panic!("tick {t} (baseline {baseline:?}): {e}"));
            assert_eq!(client.poll_event(), Some(Event::Tick(header)));
            assert_eq!(client.state(), Some(current), "tick {t}: client state differs from the server's");
            applied.insert(current.tick);
            deltas += u64::from(baseline.is_some());
            mark = baseline.or(mark);
        }
        let mut expected: Vec<Tick> = applied.iter().copied().filter(|a| mark.is_none_or(|m| *a >= m)).collect();
        // Bounded memory: the oldest go first, never the mark.
        let limit = MAX_BASELINES.max(SnapshotRing::capacity_for(hz));
        while expected.len() > limit {
            expected.remove(usize::from(Some(expected[0]) == mark));
        }
        assert_eq!(client.baselines().collect::<Vec<_>>(), expected, "tick {t}: kept baselines (mark {mark:?})");

        // The client answers every tick period with an input or an ack of
        // its newest applied tick; some are lost.
        out.clear();
        match rng.below(3) {
            0 => {
                client.input(InputData { move_x: 1, move_y: -1, buttons: 0 }, &mut out);
            }
            1 => {
                let values = InputValues::from(InputData { move_x: -3, move_y: 0, buttons: 1 });
                client.input_values(&values, &mut out).expect("the stick fits the room's input schema");
            }
            _ => {
                client.ack(&mut out);
            }
        }
        if !out.is_empty() && !rng.chance(link.ack_loss) {
            let ack = match codec::decode_client(format, &out, DEFAULT_MAX_MESSAGE) {
                Ok(ClientMsg::Input { ack, data, .. }) => {
                    let values = InputData::schema().decode(&data).expect("the server reads the input");
                    assert!(matches!(InputData::from(values), InputData { move_y: -1 | 0, .. }));
                    ack
                }
                Ok(ClientMsg::Ack { tick }) => Some(tick),
                other => panic!("unexpected client message {other:?}"),
            };
            in_flight.push_back((t + 1 + link.ack_delay as u64, ack));
        }
    }
    (applied.len() as u64, deltas, refused)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sessions_track_the_server_through_loss(
        format in format(),
        seed in any::<u64>(),
        n in 0usize..40,
        hz in prop_oneof![Just(10u32), Just(30), Just(60), Just(128)],
        tick_loss in 0.0f64..0.5,
        ack_loss in 0.0f64..0.9,
        ack_delay in prop_oneof![Just(0usize), 1usize..6],
        wrong_baseline in prop_oneof![Just(0.0f64), 0.0f64..0.2],
    ) {
        let link = Link { tick_loss, ack_loss, ack_delay, wrong_baseline };
        let (applied, _, _) = drive(format, seed, n, hz, 90, link);
        prop_assert!(applied > 0);
    }
}

#[test]
fn a_lossless_link_is_all_deltas_after_the_first_tick() {
    for format in Format::ALL {
        assert_eq!(drive(format, 7, 28, 30, 100, Link::CLEAN), (100, 99, 0), "{format:?}");
    }
}

/// Issue 15: full states arrive while the first ack is in flight (ticks 1
/// to 4 are full, the ack of tick 1 reaches the server before tick 5);
/// tick 5 is a delta against tick 1, which the client kept although every
/// tick it applied since was a full state.
#[test]
fn a_full_state_while_an_older_ack_is_in_flight_keeps_that_baseline() {
    for format in Format::ALL {
        let link = Link { ack_delay: 3, ..Link::CLEAN };
        assert_eq!(drive(format, 7, 28, 30, 100, link), (100, 96, 0), "{format:?}");
    }
}

#[test]
fn wrong_baselines_are_refused_and_the_session_recovers() {
    for format in Format::ALL {
        let link = Link { tick_loss: 0.2, ack_loss: 0.3, ack_delay: 1, wrong_baseline: 0.2 };
        let (applied, deltas, refused) = drive(format, 11, 28, 30, 200, link);
        assert!(refused > 10 && applied > 100 && deltas > 50, "{format:?}: {applied} {deltas} {refused}");
    }
}

/// Acks stall for over a second at the fastest tick rate: the server keeps
/// sending deltas against the last ack while its ring keeps it, and the
/// client must still hold that baseline.
#[test]
fn a_stalled_ack_at_128_hz_keeps_its_baseline() {
    for format in Format::ALL {
        let link = Link { ack_loss: 1.0, ..Link::CLEAN };
        // No ack ever arrives: all full states; then with the first ack only.
        assert_eq!(drive(format, 3, 10, 128, 140, link).1, 0);
    }
    for format in Format::ALL {
        let schema = testutil::schema();
        let hz = 128;
        let mut rng = Rng::new(5);
        let mut client = ClientSession::new(format);
        let mut out = Vec::new();
        let joined = testutil::joined(hz);
        codec::encode_server(format, &ServerMsg::Cfm { id: RequestId(1), body: Confirm::Joined(joined) }, &mut out);
        client.handle_message(&out).unwrap();
        let mut ring = SnapshotRing::new(SnapshotRing::capacity_for(hz));
        let mut next_id = 10;
        let mut current = testutil::snapshot(&mut rng, Tick(1), 10);
        for t in 1..=(ring.capacity() as u64 + 5) {
            if t > 1 {
                current = testutil::evolve(&mut rng, &current, hz, &mut next_id);
            }
            ring.push(current.clone());
            // Only tick 1 is ever acked.
            let baseline = (t > 1).then_some(Tick(1)).filter(|b| ring.get(*b).is_some());
            let base = baseline.and_then(|b| ring.get(b));
            let mut state = Vec::new();
            match format {
                Format::Bin => delta::bin::encode(&schema, hz, base, &current, &mut state),
                Format::Json => delta::json::write(&schema, &delta::diff(&schema, base, &current), &mut state),
            }
            let header = TickHeader { tick: current.tick, server_time_us: t, baseline, input_seq: InputSeq(0) };
            out.clear();
            codec::encode_tick(format, &header, &state, &mut out);
            client.handle_message(&out).unwrap_or_else(|e| panic!("{format:?} tick {t} (baseline {baseline:?}): {e}"));
            assert_eq!(client.state(), Some(&current));
        }
    }
}

// ---------------------------------------------------------------- never panic

fn valid_server_frames(format: Format) -> Vec<Vec<u8>> {
    let schema = testutil::schema();
    let mut rng = Rng::new(1);
    let a = testutil::snapshot(&mut rng, Tick(1), 5);
    let mut next = 5;
    let b = testutil::evolve(&mut rng, &a, 30, &mut next);
    let mut state = Vec::new();
    match format {
        Format::Bin => delta::bin::encode(&schema, 30, Some(&a), &b, &mut state),
        Format::Json => delta::json::write(&schema, &delta::diff(&schema, Some(&a), &b), &mut state),
    }
    let msgs = [
        ServerMsg::Cfm {
            id: RequestId(1),
            body: Confirm::Joined(Joined {
                room_id: RoomId("r-1-12".into()),
                game: "arena".into(),
                player_id: PlayerId(3),
                entity_id: EntityId(17),
                tick_hz: 30,
                max_players: 8,
                resume_token: "t0k3n".into(),
                schema,
                input_schema: InputData::schema().clone(),
            }),
        },
        ServerMsg::Cfm {
            id: RequestId(2),
            body: Confirm::RoomList {
                rooms: vec![RoomInfo {
                    room_id: RoomId("r-1-12".into()),
                    game: "arena".into(),
                    players: 3,
                    max_players: 8,
                    tick_hz: 30,
                    spectators: 1,
                    metadata: [("mode", Value::from("ctf")), ("round", Value::Int(300))].into_iter().collect(),
                }],
            },
        },
        ServerMsg::Rej { id: RequestId(7), code: RejectCode::RoomFull, reason: "full".into() },
        ServerMsg::Ind { body: Indication::PlayerLeft { player_id: PlayerId(2), reason: "left".into() } },
        ServerMsg::Ind {
            body: Indication::GameEvent {
                name: "round_over".into(),
                data: Value::List(vec![Value::Bytes(vec![1, 2]), Value::Float(-2.5)]),
            },
        },
        ServerMsg::Tick(TickMsg {
            tick: Tick(2),
            server_time_us: 1_763_740_000_000_000,
            baseline: Some(Tick(1)),
            input_seq: InputSeq(300),
            state: StateBytes(state),
        }),
    ];
    msgs.iter()
        .map(|m| {
            let mut out = Vec::new();
            codec::encode_server(format, m, &mut out);
            out
        })
        .collect()
}

fn valid_client_frames(format: Format) -> Vec<Vec<u8>> {
    let msgs = [
        ClientMsg::Req {
            id: RequestId(300),
            body: Request::CreateRoom {
                game: "arena".into(),
                max_players: Some(8),
                tick_hz: Some(60),
                private: true,
                options: Some([("map", Value::from("dust")), ("seed", Value::Bytes(vec![7; 5]))].into_iter().collect()),
            },
        },
        ClientMsg::Req { id: RequestId(1), body: Request::Hello { token: Some("t".into()), client: None } },
        ClientMsg::Req {
            id: RequestId(2),
            body: Request::GameMessage {
                name: "buy".into(),
                data: Value::List(vec![Value::Int(-300), Value::Float(0.5), Value::Null, Value::Bool(true)]),
            },
        },
        ClientMsg::Input { seq: InputSeq(70_000), ack: Some(Tick(1 << 40)), data: InputData::default().to_raw(format) },
        ClientMsg::Ack { tick: Tick(1234) },
    ];
    msgs.iter()
        .map(|m| {
            let mut out = Vec::new();
            codec::encode_client(format, m, &mut out).unwrap();
            out
        })
        .collect()
}

#[test]
fn truncated_encodings_are_refused_without_panicking() {
    let schema = testutil::schema();
    for format in Format::ALL {
        for frame in valid_client_frames(format) {
            assert!(codec::decode_client(format, &frame, DEFAULT_MAX_MESSAGE).is_ok());
            for len in 0..frame.len() {
                match codec::decode_client(format, &frame[..len], DEFAULT_MAX_MESSAGE) {
                    Err(_) => {}
                    // Binary input data runs to the end of the message, so
                    // a cut inside it still decodes: the schema refuses it.
                    Ok(ClientMsg::Input { data, .. }) => {
                        assert!(InputData::schema().decode(&data).is_err(), "{format:?} {len}");
                    }
                    Ok(other) => panic!("{format:?} {len}: {other:?}"),
                }
            }
        }
        for frame in valid_server_frames(format) {
            assert!(codec::decode_server(format, &frame).is_ok());
            for len in 0..frame.len() {
                assert!(codec::decode_server(format, &frame[..len]).is_err(), "{format:?} {len}");
            }
        }
    }
    let mut rng = Rng::new(9);
    let a = testutil::snapshot(&mut rng, Tick(1), 20);
    let mut next = 20;
    let b = testutil::evolve(&mut rng, &a, 30, &mut next);
    for base in [None, Some(&a)] {
        let mut blob = Vec::new();
        delta::bin::encode(&schema, 30, base, &b, &mut blob);
        for len in 0..blob.len() {
            assert!(delta::bin::apply(&schema, 30, base, b.tick, &blob[..len]).is_err(), "{len}");
        }
        let mut text = Vec::new();
        delta::json::write(&schema, &delta::diff(&schema, base, &b), &mut text);
        for len in 0..text.len() {
            assert!(delta::json::read(&schema, &text[..len]).is_err(), "{len}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..200), format in format()) {
        let _ = codec::decode_client(format, &bytes, DEFAULT_MAX_MESSAGE);
        let _ = codec::decode_server(format, &bytes);
    }

    #[test]
    fn mutated_frames_never_panic(format in format(), pick in any::<prop::sample::Index>(), edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut frames = valid_client_frames(format);
        frames.extend(valid_server_frames(format));
        let mut frame = pick.get(&frames).clone();
        for (at, byte) in edits {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        let _ = codec::decode_client(format, &frame, DEFAULT_MAX_MESSAGE);
        let _ = codec::decode_server(format, &frame);
        let mut session = ClientSession::new(format);
        let _ = session.handle_message(&frame);
    }

    #[test]
    fn random_blobs_never_panic_or_misorder(bytes in vec(any::<u8>(), 0..120), seed in any::<u64>(), with_base in any::<bool>()) {
        let schema = testutil::schema();
        let mut rng = Rng::new(seed);
        let base = testutil::snapshot(&mut rng, Tick(1), 8);
        let base = with_base.then_some(&base);
        if let Ok(s) = delta::bin::apply(&schema, 30, base, Tick(2), &bytes) {
            prop_assert!(s.is_well_formed());
        }
        if let Ok(d) = delta::json::read(&schema, &bytes) {
            if let Ok(s) = delta::apply(base, &d, Tick(2)) {
                prop_assert!(s.is_well_formed());
            }
        }
    }

    #[test]
    fn mutated_blobs_never_panic_or_misorder(seed in any::<u64>(), edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let schema = testutil::schema();
        let mut rng = Rng::new(seed);
        let a = testutil::snapshot(&mut rng, Tick(1), 12);
        let mut next = 12;
        let b = testutil::evolve(&mut rng, &a, 30, &mut next);
        let mut blob = Vec::new();
        delta::bin::encode(&schema, 30, Some(&a), &b, &mut blob);
        let mut text = Vec::new();
        delta::json::write(&schema, &delta::diff(&schema, Some(&a), &b), &mut text);
        for (at, byte) in &edits {
            let i = at.index(blob.len());
            blob[i] = *byte;
            let i = at.index(text.len());
            text[i] = *byte;
        }
        if let Ok(s) = delta::bin::apply(&schema, 30, Some(&a), b.tick, &blob) {
            prop_assert!(s.is_well_formed());
        }
        if let Ok(d) = delta::json::read(&schema, &text) {
            if let Ok(s) = delta::apply(Some(&a), &d, b.tick) {
                prop_assert!(s.is_well_formed());
            }
        }
    }
}
