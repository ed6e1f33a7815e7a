//! Delta micro-benchmarks at 32, 256 and 1024 entities: one tick of
//! `testutil::evolve` at 30 Hz (most entities move in a straight line, a
//! few turn, take damage, die or spawn), diffed and encoded against the
//! previous tick, then applied, in the binary blob and the JSON object.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use tickforge_protocol::delta::{self, Delta};
use tickforge_protocol::ids::Tick;
use tickforge_protocol::snapshot::Snapshot;
use tickforge_protocol::testutil::{self, Rng};

const SIZES: [usize; 3] = [32, 256, 1024];
const HZ: u32 = 30;

/// A baseline and the next tick's snapshot with `n` entities.
fn pair(n: usize) -> (Snapshot, Snapshot) {
    let mut rng = Rng::new(n as u64);
    let a = testutil::snapshot(&mut rng, Tick(100), n);
    let mut next = n as u32;
    let b = testutil::evolve(&mut rng, &a, HZ, &mut next);
    (a, b)
}

fn bin(c: &mut Criterion) {
    let schema = testutil::schema();
    let mut group = c.benchmark_group("delta/bin");
    for n in SIZES {
        let (a, b) = pair(n);
        group.throughput(Throughput::Elements(n as u64));
        let mut encoder = delta::bin::Encoder::default();
        let mut blob = Vec::new();
        encoder.encode(&schema, HZ, Some(&a), &b, &mut blob);
        group.bench_with_input(BenchmarkId::new("diff_encode", n), &n, |bench, _| {
            let mut out = Vec::with_capacity(blob.len());
            bench.iter(|| {
                out.clear();
                encoder.encode(&schema, HZ, Some(black_box(&a)), black_box(&b), &mut out);
                black_box(out.len())
            });
        });
        group.bench_with_input(BenchmarkId::new("apply", n), &n, |bench, _| {
            bench.iter(|| delta::bin::apply(&schema, HZ, Some(black_box(&a)), b.tick, black_box(&blob)))
        });
    }
    group.finish();
}

fn json(c: &mut Criterion) {
    let schema = testutil::schema();
    let mut group = c.benchmark_group("delta/json");
    for n in SIZES {
        let (a, b) = pair(n);
        group.throughput(Throughput::Elements(n as u64));
        let mut text = Vec::new();
        delta::json::write(&schema, &delta::diff(&schema, Some(&a), &b), &mut text);
        group.bench_with_input(BenchmarkId::new("diff_encode", n), &n, |bench, _| {
            let mut d = Delta::default();
            let mut out = Vec::with_capacity(text.len());
            bench.iter(|| {
                out.clear();
                delta::diff_into(&schema, Some(black_box(&a)), black_box(&b), &mut d);
                delta::json::write(&schema, &d, &mut out);
                black_box(out.len())
            });
        });
        group.bench_with_input(BenchmarkId::new("apply", n), &n, |bench, _| {
            bench.iter(|| {
                let d = delta::json::read(&schema, black_box(&text)).expect("valid state");
                delta::apply(Some(black_box(&a)), &d, b.tick)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bin, json);
criterion_main!(benches);
