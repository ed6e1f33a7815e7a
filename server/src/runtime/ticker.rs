//! The shard's tick pass: one task and one timer for all its rooms.
//!
//! Each room ticks on its own drift-free schedule ([`Schedule`]), in one of
//! the shard's [`PHASES`] phases of its period (the emptiest for its rate
//! when it is created: [`PhaseLoad`]), so that the rooms of a phase are due
//! at the same instant and the phases spread the shard's work over the
//! period. The task sleeps until the earliest room is due, then takes every
//! room due within [`SLACK`] (that phase's rooms) in one pass:
//!
//! 1. one `RECV` (`MSG_DONTWAIT`) per player socket of those rooms, in one
//!    batch ([`Ring::recv_all`]): each player's inputs, acks and requests
//!    since its last tick, handled at once by its [`Connection`];
//! 2. each room's tick: the game steps with the newest inputs, the room
//!    encodes each distinct delta once and writes every player's frame
//!    into its outbox;
//! 3. one `SEND` per player with bytes pending, in one batch
//!    ([`Ring::send_all`]) per [`SEND_CHUNK`] players (rounded up to a
//!    room's end) whose rooms ticked.
//!
//! So a client-tick costs one receive and one send, and a pass two
//! `io_uring_enter`s, plus one per further chunk of players: no task
//! wake-up, no timer and no syscall per message. A socket that cannot take its bytes
//! keeps them for the next pass (its room skips ticks meanwhile, and
//! closes it if it stays stuck); a player that leaves its room, or is to
//! close, goes back to its own task (see [`super::driver`]).
//!
//! [`Connection`]: crate::conn::Connection

use super::ring::{Received, Socket};
use super::shard::{ConnCell, Shard};
use crate::game::LeaveReason;
use crate::metrics::ShardMetrics;
use crate::monitor::RoomStats;
use crate::outbox::Outbox;
#[cfg(doc)]
use crate::room::schedule::PHASES;
use crate::room::schedule::{PhaseLoad, Schedule};
use crate::room::RoomSlot;
use crate::shard_state::unix_now_us;
use glommio::timer::sleep;
use slab::Slab;
use std::cell::Ref;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{pending, poll_fn};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tickforge_protocol::ids::PlayerId;
use tickforge_protocol::CloseReason;
use tracing::{debug, error, info, warn};

/// Rooms due within this much after the earliest one tick in the same
/// pass. The rooms of a phase are due at the same nanosecond, so this only
/// absorbs a late wake-up and lets rooms of other tick rates due just after
/// join the pass: a room ticks at most this much early. (Before phases, a
/// 4 ms window over rooms spread over the period did the batching, at the
/// price of rooms ticking up to 4 ms early.)
pub(crate) const SLACK: Duration = Duration::from_millis(1);

/// Players whose frames a pass sends together once their rooms ticked (a
/// batch closes at the first room's end that reaches this many): a
/// room's frames wait for about this many players' ticks (more when one
/// room is larger) before they leave, not for the whole pass. At 3,000 clients (passes of ~360
/// players) it took the tick latency p50/p99 from 1.1-1.5/3-6 ms to
/// 0.22/0.45 ms, for 5-9 % more server CPU per client-tick (alternating
/// runs; 256 cost as much); passes under 64 players (1,000 clients) send
/// in one batch as before.
const SEND_CHUNK: usize = 64;

/// A room on the schedule.
#[derive(Debug)]
struct Ticking {
    slot: Rc<RoomSlot>,
    schedule: Schedule,
    /// Its phase of the period (given back to `PhaseLoad` when disposed of).
    phase: u64,
    period_ns: u64,
    /// When it last became empty (disposed of after the grace period).
    empty_since: Option<u64>,
    /// Its player count as last published.
    published: usize,
    /// Its figures for the monitor (written here, once per tick).
    stats: Arc<RoomStats>,
    /// Its players and spectators as the monitor last saw them.
    seen: (usize, usize),
}

/// Buffers a pass reuses.
#[derive(Debug, Default)]
struct PassBuffers {
    due: Vec<usize>,
    cells: Vec<Rc<ConnCell>>,
    reading: Vec<usize>,
    fds: Vec<Socket>,
    received: Vec<Received>,
    sending: Vec<Rc<Outbox>>,
    senders: Vec<usize>,
    sent: Vec<Option<usize>>,
    /// For each cell, the index in `due` of its room; bytes sent per due room.
    cell_room: Vec<usize>,
    room_bytes: Vec<u64>,
}

/// Runs the shard's rooms until the task is dropped (after the drain).
pub(crate) async fn run(shard: Rc<Shard>) {
    let epoch = Instant::now();
    let now_ns = || u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let grace_ns = u64::try_from(shard.state.config().empty_room_grace.as_nanos()).unwrap_or(u64::MAX);
    let mut rooms: Slab<Ticking> = Slab::new();
    let mut phases = PhaseLoad::default();
    let mut queue: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut buffers = PassBuffers::default();
    loop {
        for slot in shard.state.take_new_rooms() {
            let (hz, stats) = {
                let room = slot.room.borrow();
                let c = room.config();
                let stats = RoomStats::new(
                    room.id().0.clone(),
                    room.game_name().to_owned(),
                    shard.state.id,
                    c.tick_hz,
                    c.max_players,
                    c.private,
                );
                (c.tick_hz, shard.state.shared.monitor.register(stats))
            };
            let start = now_ns();
            let phase = phases.take(hz);
            let schedule = Schedule::phased(start, phase, hz);
            let key = rooms.insert(Ticking {
                slot,
                schedule,
                phase,
                period_ns: 1_000_000_000 / u64::from(hz),
                empty_since: Some(start),
                published: 0,
                stats,
                seen: (0, 0),
            });
            queue.push(Reverse((schedule.next_due(), key)));
        }
        let now = now_ns();
        let next = queue.peek().map(|Reverse((due, _))| *due);
        match next {
            Some(due) if due > now => {
                let created =
                    poll_fn(|cx| if shard.state.has_new_rooms(cx.waker()) { Poll::Ready(()) } else { Poll::Pending });
                futures_lite::future::or(sleep(Duration::from_nanos(due - now)), created).await;
                continue;
            }
            Some(_) => {}
            None => {
                poll_fn(|cx| if shard.state.has_new_rooms(cx.waker()) { Poll::Ready(()) } else { Poll::Pending }).await;
                continue;
            }
        }
        // Every room due by now (+ the slack) ticks in this pass.
        let horizon = now + u64::try_from(SLACK.as_nanos()).unwrap_or(0);
        buffers.due.clear();
        while let Some(&Reverse((due, key))) = queue.peek() {
            if due > horizon {
                break;
            }
            queue.pop();
            buffers.due.push(key);
        }
        pass(&shard, epoch, &mut rooms, &mut buffers);
        {
            let m = shard.state.metrics();
            let (enters, submitted) = shard.ring.borrow().counts();
            ShardMetrics::inc(&m.passes);
            m.pass_enters.store(enters, std::sync::atomic::Ordering::Relaxed);
            m.pass_submissions.store(submitted, std::sync::atomic::Ordering::Relaxed);
        }
        // Back on the schedule, or disposed of.
        let ended = now_ns();
        let metrics = shard.state.metrics();
        for i in 0..buffers.due.len() {
            let key = buffers.due[i];
            let t = &mut rooms[key];
            let skipped = t.schedule.advance(ended);
            ShardMetrics::add(&metrics.slots_skipped, skipped);
            t.stats.record_skipped(skipped);
            if let Some(actions) = t.stats.take_actions() {
                // The monitor's admin requests, through the usual paths.
                let mut room = t.slot.room.borrow_mut();
                for player in actions.disconnect {
                    // The seat is freed (no hold for a resume: the
                    // operator wants the player out), then its
                    // connection, if any, is closed.
                    let outbox = room.outbox_of(PlayerId(player)).cloned();
                    if room.leave(PlayerId(player), LeaveReason::ByOperator) {
                        info!(shard = shard.state.id, room = %room.id(), player, "disconnected by an operator");
                    }
                    if let Some(outbox) = outbox {
                        outbox.close(CloseReason::DisconnectedByOperator);
                    }
                }
                if let Some(reason) = actions.close {
                    info!(shard = shard.state.id, room = %room.id(), "room closed by an operator");
                    room.close(&reason);
                }
            }
            let (closed, players, metadata_changed) = {
                let room = t.slot.room.borrow();
                let seen = (room.player_count(), room.spectator_count());
                if seen != t.seen {
                    t.seen = seen;
                    t.stats.set_players(room.player_ids().map(|p| p.0), u32::try_from(seen.1).unwrap_or(u32::MAX));
                }
                (room.closed().is_some(), room.player_count(), room.metadata_changed())
            };
            // The directory (a lock shared by every shard, and the
            // cluster's record) is written only when what it lists changed;
            // the game's counters go to this shard's metrics every tick.
            if players != t.published || metadata_changed {
                ShardMetrics::gauge(&metrics.players, players as i64 - t.published as i64);
                t.published = players;
                shard.state.publish(&t.slot);
            } else {
                shard.state.count_game(&mut t.slot.room.borrow_mut());
            }
            let dispose = closed || {
                if players == 0 {
                    let since = *t.empty_since.get_or_insert(ended);
                    ended.saturating_sub(since) >= grace_ns
                } else {
                    t.empty_since = None;
                    false
                }
            };
            if dispose {
                let t = rooms.remove(key);
                phases.release(t.schedule.tick_hz(), t.phase);
                let mut room = t.slot.room.borrow_mut();
                debug!(shard = shard.state.id, room = %room.id(), "room disposed of");
                room.close("room disposed of");
                ShardMetrics::gauge(&metrics.players, -(t.published as i64));
                let id = room.id().clone();
                drop(room);
                shard.state.shared.monitor.unregister(&id.0);
                shard.state.remove_room(&id);
            } else {
                queue.push(Reverse((t.schedule.next_due(), key)));
            }
        }
        // A pass that found rooms already late lets the shard's other tasks
        // run before the next one.
        if queue.peek().is_some_and(|Reverse((due, _))| *due <= now_ns()) {
            futures_lite::future::yield_now().await;
        }
        if rooms.is_empty() && shard.state.refusing() {
            // Drained: nothing will tick again.
            pending::<()>().await;
        }
    }
}

/// One pass over the rooms `buffers.due`: read their players, tick them,
/// send what they wrote. (`epoch`: when the schedules' clock reads 0.)
fn pass(shard: &Shard, epoch: Instant, rooms: &mut Slab<Ticking>, b: &mut PassBuffers) {
    let now = Instant::now();
    // The sockets this pass drives: the players of its rooms whose tasks
    // are parked (the others drive their own socket).
    b.cells.clear();
    b.cell_room.clear();
    for (at, &key) in b.due.iter().enumerate() {
        for outbox in rooms[key].slot.room.borrow().outboxes() {
            if let Some(cell) = shard.conn(outbox.key()) {
                if cell.parked.get() {
                    b.cells.push(cell);
                    b.cell_room.push(at);
                }
            }
        }
    }

    // 1. Read every player's inputs and requests.
    b.reading.clear();
    b.fds.clear();
    for (i, cell) in b.cells.iter().enumerate() {
        if cell.conn.borrow().wants_read() {
            b.reading.push(i);
            b.fds.push(cell.socket);
        }
    }
    let (cells, reading) = (&b.cells, &b.reading);
    let read = shard.ring.borrow_mut().recv_all(
        &b.fds,
        |i, bytes| {
            let cell = &cells[reading[i]];
            guarded(shard, cell, |conn| cell.receive(conn, bytes, now, shard.state.metrics()));
        },
        &mut b.received,
    );
    if let Err(e) = read {
        error!(shard = shard.state.id, "tick pass: receive batch failed: {e}");
    }
    for (i, received) in b.received.iter().enumerate() {
        let cell = &b.cells[b.reading[i]];
        match received {
            Received::Nothing => {}
            Received::Eof => guarded(shard, cell, |conn| conn.on_eof(now)),
            Received::Failed => guarded(shard, cell, |conn| conn.on_io_error()),
        }
    }

    // 2. Tick the rooms, and 3. send what their players have pending, a
    // chunk of rooms at a time: a room's frames wait for the rooms ticked
    // after it in their chunk only, not for the whole pass.
    let metrics = shard.state.metrics();
    b.room_bytes.clear();
    b.room_bytes.resize(b.due.len(), 0);
    let (mut unsent, mut next_cell) = (0, 0);
    for at in 0..b.due.len() {
        let t = &rooms[b.due[at]];
        let started = Instant::now();
        // Its lag after its due time: what a player's input waits beyond
        // the period, which the clients' tick latency (timed from the
        // tick's own clock reading) does not show. Taken before the tick,
        // counted with it.
        let started_ns = u64::try_from(started.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        let lag_us = started_ns.saturating_sub(t.schedule.next_due()) / 1000;
        let ticked = catch_unwind(AssertUnwindSafe(|| t.slot.room.borrow_mut().tick(unix_now_us())));
        let took = started.elapsed();
        match ticked {
            Ok(report) => {
                let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                metrics.tick(took_us, t.period_ns / 1000);
                metrics.tick_lag.record(lag_us);
                t.stats.record_tick(report.tick.0, took_us);
                // A game's panic (`report.panicked`) is logged by its room
                // and counted with its other game figures when the room is
                // published, below.
                ShardMetrics::add(&metrics.messages_out, (report.sent + report.events) as u64);
                ShardMetrics::add(&metrics.seats_expired, report.seats_expired as u64);
            }
            Err(_) => {
                // Not the game (its panics are caught by the room): a bug
                // of ours. The room closes; the shard goes on.
                ShardMetrics::inc(&metrics.room_panics);
                if let Ok(mut room) = t.slot.room.try_borrow_mut() {
                    warn!(shard = shard.state.id, room = %room.id(), "room tick panicked; room closed");
                    room.close("internal error");
                }
            }
        }
        // This room's players (the cells are in the rooms' order).
        let end = b.cell_room[next_cell..].iter().position(|&r| r != at).map_or(b.cells.len(), |n| next_cell + n);
        unsent += end - next_cell;
        next_cell = end;
        if unsent >= SEND_CHUNK || at + 1 == b.due.len() {
            send_cells(shard, b, end - unsent..end, now);
            unsent = 0;
        }
    }
    for (at, &key) in b.due.iter().enumerate() {
        rooms[key].stats.record_bytes(b.room_bytes[at]);
    }
    b.sending.clear();
    b.cells.clear();
}

/// Sends what the players `range` of `b.cells` have pending, in one batch.
fn send_cells(shard: &Shard, b: &mut PassBuffers, range: std::ops::Range<usize>, now: Instant) {
    b.sending.clear();
    b.senders.clear();
    for i in range {
        let cell = &b.cells[i];
        if !cell.parked.get() {
            continue;
        }
        // Through TLS, the outbox's bytes are encrypted first (as far as
        // the link's backlog allows: a stuck client keeps its tick pending).
        guarded(shard, cell, |conn| cell.seal(conn, now));
        let conn = cell.conn.borrow();
        if cell.has_tx(&conn) {
            b.sending.push(conn.outbox().clone());
            b.senders.push(i);
        }
    }
    {
        let bufs: Vec<(Socket, Ref<'_, [u8]>)> =
            b.senders.iter().zip(&b.sending).map(|(&i, outbox)| (b.cells[i].socket, b.cells[i].tx(outbox))).collect();
        if let Err(e) = shard.ring.borrow_mut().send_all(&bufs, &mut b.sent) {
            error!(shard = shard.state.id, "tick pass: send batch failed: {e}");
            b.sent.clear();
        }
    }
    for (j, sent) in b.sent.iter().enumerate() {
        let cell = &b.cells[b.senders[j]];
        match *sent {
            Some(n) => {
                b.room_bytes[b.cell_room[b.senders[j]]] += n as u64;
                guarded(shard, cell, |conn| cell.sent(conn, n, now));
            }
            None => guarded(shard, cell, |conn| conn.on_io_error()),
        }
    }
}

/// Runs `f` on a connection; a panic in it (a bug, never bad input) ends
/// that connection only: its task is woken to drop the socket.
fn guarded(shard: &Shard, cell: &ConnCell, f: impl FnOnce(&mut crate::conn::Connection)) {
    let Ok(mut conn) = cell.conn.try_borrow_mut() else { return };
    if catch_unwind(AssertUnwindSafe(|| f(&mut conn))).is_err() {
        warn!(shard = shard.state.id, "connection panicked in the tick pass; connection dropped");
        shard.state.metrics().close(&CloseReason::Internal);
        conn.on_io_error();
        conn.outbox().wake();
    }
}
