//! Codec micro-benchmarks: a tick message (28 entities, one tick of
//! `testutil::evolve` against the previous tick, the arena's size) and an
//! input frame, encoded and decoded in `tickforge.v1.bin` and
//! `tickforge.v1.json`. In-memory inputs only.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tickforge_protocol::codec::{self, Format, TickHeader, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::delta;
use tickforge_protocol::ids::{InputSeq, Tick};
use tickforge_protocol::message::{ClientMsg, InputData};
use tickforge_protocol::testutil::{self, Rng};

/// The state bytes of one arena-sized delta tick in `format`.
fn tick_state(format: Format) -> Vec<u8> {
    let schema = testutil::schema();
    let mut rng = Rng::new(42);
    let a = testutil::snapshot(&mut rng, Tick(100), 28);
    let mut next = 28;
    let b = testutil::evolve(&mut rng, &a, 30, &mut next);
    let mut out = Vec::new();
    match format {
        Format::Bin => delta::bin::encode(&schema, 30, Some(&a), &b, &mut out),
        Format::Json => delta::json::write(&schema, &delta::diff(&schema, Some(&a), &b), &mut out),
    }
    out
}

fn name(format: Format) -> &'static str {
    match format {
        Format::Bin => "bin",
        Format::Json => "json",
    }
}

fn tick(c: &mut Criterion) {
    let header = TickHeader {
        tick: Tick(101),
        server_time_us: 1_763_740_000_000_000,
        baseline: Some(Tick(100)),
        input_seq: InputSeq(1234),
    };
    for format in Format::ALL {
        let state = tick_state(format);
        let mut frame = Vec::new();
        codec::encode_tick(format, &header, &state, &mut frame);
        let mut group = c.benchmark_group(format!("codec/tick/{}", name(format)));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        // The server's path: per-player header + the shared state bytes.
        group.bench_function("encode", |b| {
            let mut out = Vec::with_capacity(frame.len());
            b.iter(|| {
                out.clear();
                codec::encode_tick(format, black_box(&header), black_box(&state), &mut out);
                black_box(out.len())
            });
        });
        group.bench_function("decode", |b| b.iter(|| codec::decode_server(format, black_box(&frame))));
        group.finish();
    }
}

fn input(c: &mut Criterion) {
    let data = InputData { move_x: 90, move_y: -90, buttons: 1 };
    for format in Format::ALL {
        let msg = ClientMsg::Input { seq: InputSeq(1234), ack: Some(Tick(5678)), data: data.to_raw(format) };
        let mut frame = Vec::new();
        codec::encode_client(format, &msg, &mut frame).expect("the data is held in this form");
        let mut group = c.benchmark_group(format!("codec/input/{}", name(format)));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function("encode", |b| {
            let mut out = Vec::with_capacity(64);
            b.iter(|| {
                out.clear();
                let _ = codec::encode_client(format, black_box(&msg), &mut out);
                black_box(out.len())
            });
        });
        group.bench_function("decode", |b| {
            b.iter(|| codec::decode_client(format, black_box(&frame), DEFAULT_MAX_MESSAGE))
        });
        // What the server does per input: the message, then its data with
        // the room's input schema.
        group.bench_function("decode+schema", |b| {
            b.iter(|| match codec::decode_client(format, black_box(&frame), DEFAULT_MAX_MESSAGE) {
                Ok(ClientMsg::Input { data, .. }) => InputData::schema().decode(&data).ok(),
                _ => None,
            })
        });
        group.finish();
    }
}

criterion_group!(benches, tick, input);
criterion_main!(benches);
