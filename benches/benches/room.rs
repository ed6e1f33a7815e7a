//! One room tick at 8 and 64 arena players: the game step plus the fan-out
//! (a delta encoded once per distinct baseline, a frame per player), with
//! the outboxes drained as the writer tasks would, but no socket written.
//!
//! Every player sends WORKLOAD.md's input (the loadgen's own
//! `scenario::input`: a circle over 4 s, fire every 2 s, phase from the
//! index) and acks the previous tick, as a client on loopback does; so each
//! tick encodes real deltas against one shared baseline. `*_mixed_acks`
//! has the players ack one to four ticks back, so up to four encodings are
//! made per tick (the cost of players whose acks lag).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use tickforge_loadgen::scenario;
use tickforge_protocol::codec::Format;
use tickforge_protocol::ids::{InputSeq, PlayerId, RoomId, Tick};
use tickforge_server::game::arena::Arena;
use tickforge_server::outbox::{Outbox, OutboxItem};
use tickforge_server::room::{Room, RoomConfig};

const HZ: u32 = 30;
const PERIOD_US: u64 = 33_333;
const START_US: u64 = 1_763_740_000_000_000;

/// A room with `players` seated, warmed up for two seconds of ticks.
struct Bench {
    room: Room,
    seats: Vec<(Rc<Outbox>, PlayerId)>,
    t: u32,
    lag: bool,
}

impl Bench {
    fn new(players: u32, format: Format, lag: bool) -> Self {
        let mut room = Room::new(RoomId("r-bench".into()), Arc::new(Arena::default()), RoomConfig::new(HZ, players), 1)
            .expect("arena takes any options");
        let seats = (0..players)
            .map(|_| {
                let outbox = Outbox::new(format, 64);
                let joined = room.join(outbox.clone(), None).expect("a seat is free");
                (outbox, joined.player_id)
            })
            .collect();
        let mut bench = Self { room, seats, t: 0, lag };
        for _ in 0..2 * HZ {
            bench.step();
        }
        bench
    }

    /// Inputs from every player, one tick, outboxes drained; frame bytes.
    fn step(&mut self) -> usize {
        self.t += 1;
        let t = self.t;
        for (i, (_, player)) in self.seats.iter().enumerate() {
            let back = if self.lag { 1 + (i as u64 % 4) } else { 1 };
            let ack = Some(Tick(u64::from(t).saturating_sub(back))).filter(|a| a.0 > 0);
            self.room.input(*player, InputSeq(t), ack, scenario::input(i, t, HZ));
        }
        self.room.tick(START_US + u64::from(t) * PERIOD_US);
        let mut bytes = 0;
        for (outbox, _) in &self.seats {
            while let Some(item) = outbox.try_next() {
                if let OutboxItem::Tick(frame) = item {
                    bytes += frame.len();
                }
            }
        }
        bytes
    }
}

fn room_tick(c: &mut Criterion) {
    for (name, format, lag) in [
        ("room_tick/bin", Format::Bin, false),
        ("room_tick/bin_mixed_acks", Format::Bin, true),
        ("room_tick/json", Format::Json, false),
    ] {
        let mut group = c.benchmark_group(name);
        for players in [8u32, 64] {
            group.throughput(Throughput::Elements(u64::from(players)));
            group.bench_with_input(BenchmarkId::from_parameter(players), &players, |b, &players| {
                let mut bench = Bench::new(players, format, lag);
                b.iter(|| black_box(bench.step()));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, room_tick);
criterion_main!(benches);
