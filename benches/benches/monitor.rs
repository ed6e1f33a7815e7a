//! What the tick pass adds per room tick for the operator's monitor: the
//! room's stats (`RoomStats`: the skipped slots, the admin-actions flag,
//! the player list when it changes, the tick and its duration bucket, the
//! bytes out) and the pass's note of which room each parked socket's bytes
//! belong to, for one room of 8 players, as `runtime/ticker.rs` does them.
//! Compare with `room_tick/bin/8` (the room's own tick) and with the
//! end-to-end server CPU per client-tick.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tickforge_server::monitor::RoomStats;

const PLAYERS: usize = 8;

fn room_tick_stats(c: &mut Criterion) {
    let stats = RoomStats::new("r-bench".into(), "arena".into(), 0, 30, PLAYERS as u32, false);
    let mut cell_room: Vec<usize> = Vec::new();
    let mut room_bytes: Vec<u64> = Vec::new();
    let mut seen = (0usize, 0usize);
    let mut tick = 0u64;
    let mut group = c.benchmark_group("monitor");
    group.throughput(Throughput::Elements(PLAYERS as u64));
    group.bench_function("room_tick_stats/8", |b| {
        b.iter(|| {
            tick += 1;
            // run(): the room's turn in the pass.
            stats.record_skipped(black_box(0));
            black_box(stats.take_actions());
            let now = black_box((PLAYERS, 0));
            if now != seen {
                seen = now;
                stats.set_players(0..PLAYERS as u32, 0);
            }
            // pass(): the room's parked sockets, its tick, its bytes.
            cell_room.clear();
            for _ in 0..PLAYERS {
                cell_room.push(black_box(0));
            }
            stats.record_tick(tick, black_box(5));
            room_bytes.clear();
            room_bytes.resize(1, 0);
            for &at in &cell_room {
                room_bytes[at] += black_box(85);
            }
            stats.record_bytes(room_bytes[0]);
        });
    });
    group.finish();
}

criterion_group!(benches, room_tick_stats);
criterion_main!(benches);
