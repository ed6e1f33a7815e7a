//! The tick duration of one arena room: game step plus fan-out encoding,
//! for 8 players at 30 Hz (WORKLOAD.md), as an HdrHistogram.
//!
//! `cargo run --release -p tickforge-benches --bin tick_duration -- [players] [ticks]`
//!
//! Each player sends WORKLOAD.md's input (a circle over 4 s, fire every 2 s)
//! and acks every tick it receives, so each tick encodes real deltas. The
//! outboxes are drained as a connection's writer would, but no socket is
//! written: that cost is the writer tasks', not the tick's.

use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::Instant;
use tickforge_protocol::codec::Format;
use tickforge_protocol::ids::{InputSeq, RoomId, Tick};
use tickforge_protocol::message::InputData;
use tickforge_server::game::arena::Arena;
use tickforge_server::outbox::{Outbox, OutboxItem};
use tickforge_server::room::{Room, RoomConfig};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let players: u32 = args.next().map_or(Ok(8), |a| a.parse()).map_err(|e| anyhow::anyhow!("players: {e}"))?;
    let ticks: u32 = args.next().map_or(Ok(9_000), |a| a.parse()).map_err(|e| anyhow::anyhow!("ticks: {e}"))?;
    let hz = 30;
    let mut room = Room::new(RoomId("r-bench".into()), Arc::new(Arena::default()), RoomConfig::new(hz, players), 1)
        .map_err(|(_, why)| anyhow::anyhow!(why))?;
    let mut seats = Vec::new();
    for _ in 0..players {
        let outbox = Outbox::new(Format::Bin, 64);
        let joined = room.join(outbox.clone(), None).map_err(|(_, why)| anyhow::anyhow!(why))?;
        seats.push((outbox, joined.player_id));
    }
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut bytes = 0usize;
    for t in 1..=ticks {
        let t_s = f64::from(t) / f64::from(hz);
        for (i, (_, player)) in seats.iter().enumerate() {
            let angle = (t_s / 4.0 + i as f64 * 0.37) * std::f64::consts::TAU;
            let fire = (t_s + i as f64 * 0.25) % 2.0 < 1.0 / f64::from(hz);
            let data = InputData {
                move_x: (angle.cos() * 127.0) as i8,
                move_y: (angle.sin() * 127.0) as i8,
                buttons: u8::from(fire),
            };
            // Every player acked the previous tick, as a client on loopback does.
            room.input(*player, InputSeq(t), Some(Tick(u64::from(t) - 1)).filter(|t| t.0 > 0), data);
        }
        let start = Instant::now();
        room.tick(1_763_740_000_000_000 + u64::from(t) * 33_333);
        histogram.record(start.elapsed().as_nanos() as u64)?;
        for (outbox, _) in &seats {
            while let Some(item) = outbox.try_next() {
                if let OutboxItem::Tick(frame) = item {
                    bytes += frame.len();
                }
            }
        }
    }
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "room of {players} arena players, {ticks} ticks at {hz} Hz: tick duration p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; mean frame {:.1} B",
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        histogram.max() as f64 / 1000.0,
        bytes as f64 / f64::from(ticks * players),
    );
    Ok(())
}
