//! One loadgen core: a thread pinned to one CPU with its own io_uring, and
//! whole rooms' worth of clients (a room's clients share a core, so its
//! first client hands the room id to the others without locks).
//!
//! # One wake-up
//! The core sleeps in `io_uring_enter` until the next grid step that holds
//! due slots (about 1 ms: see [`crate::schedule`]) or until a client that is
//! still connecting has news. Then, for every client due:
//! 1. one `RECVMSG` (`MSG_DONTWAIT`) each, all in one batch and one enter:
//!    the state messages that arrived since, with their kernel receive
//!    timestamps; a client whose read filled its slot is read again;
//! 2. one input frame each, masked, acking the newest tick just read, all
//!    `SEND`s (`MSG_DONTWAIT | MSG_NOSIGNAL`) in one batch and one enter.
//!
//! So in the steady state a client costs one receive and one send per
//! input period (plus a receive half a tick period from its ticks while
//! they land near its slots: see `client`), and the core two enters per
//! step for all of its clients due in it, with no task, timer or poll per
//! client. Clients that are connecting, handshaking, joining or closing
//! take the prompt path instead: one poll each for the step they wait on,
//! answered with plain non-blocking calls, so the handshake figure is not
//! rounded to a step.
//!
//! # Layout
//! - this file: the plan, the core's state, its loop, and the dispatch of
//!   the wheel's due entries;
//! - `prompt`: connecting, the handshake, the room, closing, the sweep;
//! - `batch`: the batched reads and sends of the steady state.

mod batch;
mod prompt;

use crate::client::{Client, Ctx, Phase};
use crate::net::Target;
use crate::schedule::{Grid, Wheel};
use crate::stats::{histogram, CoreStats, Live};
use crate::uring::Ring;
use crate::LoadConfig;
use batch::RxArena;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tickforge_protocol::ids::RoomId;

/// How long after the measured window a client may take to finish (its
/// drain and its close); then whatever is left is dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// After the window, how long a client keeps reading for the ticks that
/// answer its last inputs before it closes.
const DRAIN: Duration = Duration::from_secs(1);

/// How long a client waits for the server's close frame after its own.
const LINGER: Duration = Duration::from_secs(1);

/// How often the setup deadlines are checked.
const SWEEP_NS: u64 = 10_000_000;

/// Submission queue entries of a core's ring: the largest batch.
const RING_ENTRIES: u32 = 1024;

// What a completion is for (bits 32..40 of its user data).
const K_RECV: u64 = 1;
const K_SEND: u64 = 2;
const K_POLL: u64 = 3;
const K_CANCEL: u64 = 4;

// What a wheel entry is for (its low bit).
const W_INPUT: u32 = 0;
const W_READ: u32 = 1;

fn user_data(local: u32, kind: u64, slot: usize, gen: u8) -> u64 {
    u64::from(local) | kind << 32 | (slot as u64) << 40 | u64::from(gen) << 56
}

fn parts(ud: u64) -> (usize, u64, usize, u8) {
    ((ud & 0xffff_ffff) as usize, (ud >> 32) & 0xff, ((ud >> 40) & 0xffff) as usize, (ud >> 56) as u8)
}

/// The run's schedule and target, shared by all cores. Times are also kept
/// as ns since `epoch` (monotonic), the cores' clock.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) cfg: LoadConfig,
    pub(crate) target: Target,
    pub(crate) epoch: Instant,
    /// When client 0 connects.
    pub(crate) t0: Instant,
    pub(crate) measure_start: Instant,
    pub(crate) measure_end: Instant,
}

impl Plan {
    pub(crate) fn new(cfg: LoadConfig, target: Target, t0: Instant) -> Self {
        let measure_start = t0 + cfg.ramp() + cfg.warmup;
        let measure_end = measure_start + cfg.duration;
        Self { cfg, target, epoch: Instant::now().min(t0), t0, measure_start, measure_end }
    }

    fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    fn start_ns(&self, index: usize) -> u64 {
        self.ns(self.t0) + (index as f64 / self.cfg.connect_rate * 1e9) as u64
    }
}

/// A group's room, as its first client finds out.
#[derive(Clone, Debug)]
enum RoomSlot {
    Pending,
    Ready(RoomId),
    Failed,
}

/// The wall clock, ns since the Unix epoch.
fn wall_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A core's state.
pub(crate) struct Core {
    k: usize,
    plan: Arc<Plan>,
    live: Arc<Live>,
    ring: Ring,
    clients: Vec<Client>,
    /// Clients not started yet, in start order.
    starts: VecDeque<u32>,
    grid: Grid,
    wheel: Wheel,
    rx: RxArena,
    ctx: Ctx,
    rooms: HashMap<usize, RoomSlot>,
    waiting: HashMap<usize, Vec<u32>>,
    /// The nodes redirects sent clients to, by URL (parsed and resolved once).
    targets: HashMap<String, Arc<Target>>,
    /// Clients on the prompt path (checked by the sweep).
    setup: Vec<u32>,
    fired: Vec<u32>,
    reads: Vec<u32>,
    inputs: Vec<u32>,
    sends: Vec<u32>,
    retry: Vec<u32>,
    todo: Vec<u32>,
    cqes: Vec<(u64, i32)>,
    /// Completions as reaped, before sorting.
    all: Vec<(u64, i32)>,
    /// Completions of the prompt path met while reaping a batch.
    later: Vec<(u64, i32)>,
    direct: Vec<u8>,
    mark: u32,
    /// Clients not done.
    active: usize,
    next_sweep: u64,
    next_publish: u64,
    hard_end: u64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("k", &self.k).field("clients", &self.clients.len()).finish()
    }
}

impl Core {
    /// Core `k` of `cores`, with the clients of every `cores`-th group.
    pub(crate) fn new(k: usize, plan: Arc<Plan>, live: Arc<Live>) -> io::Result<Self> {
        let cfg = &plan.cfg;
        let (cores, ppr) = (cfg.cores, cfg.players_per_room);
        let mut clients = Vec::new();
        for group in (k..cfg.clients.div_ceil(ppr)).step_by(cores) {
            for index in group * ppr..((group + 1) * ppr).min(cfg.clients) {
                clients.push(Client::new(index, index % cfg.decode_every == 0));
            }
        }
        let grid = Grid::new(1_000_000_000 / u64::from(cfg.input_hz));
        let now = plan.ns(Instant::now());
        // Room for a full input period and a tick period at 10 Hz, twice.
        let steps = (2 * grid.steps_per_period).max(2 * 100_000_000 / grid.step_ns + 2) as usize;
        let window = (plan.ns(plan.measure_start), plan.ns(plan.measure_end));
        let ctx = Ctx {
            stats: CoreStats::new(),
            recent: histogram(),
            ticks_all: 0,
            window,
            wall_offset: 0,
            format: cfg.format,
            input_hz: cfg.input_hz,
            full_state_every: cfg.full_state_every,
            new_errors: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (k as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ wall_now_ns(),
            scratch: Vec::new(),
            plain: Vec::new(),
        };
        Ok(Self {
            k,
            ring: Ring::new(RING_ENTRIES, clients.len() as u32)?,
            starts: (0..clients.len() as u32).collect(),
            active: clients.len(),
            clients,
            grid,
            wheel: Wheel::new(grid.step_ns, steps, now),
            rx: RxArena::new(RING_ENTRIES as usize),
            ctx,
            rooms: HashMap::new(),
            waiting: HashMap::new(),
            targets: HashMap::new(),
            setup: Vec::new(),
            fired: Vec::new(),
            reads: Vec::new(),
            inputs: Vec::new(),
            sends: Vec::new(),
            retry: Vec::new(),
            todo: Vec::new(),
            cqes: Vec::new(),
            all: Vec::new(),
            later: Vec::new(),
            direct: vec![0; 64 * 1024],
            mark: 0,
            next_sweep: now,
            next_publish: now + 1_000_000_000,
            hard_end: window.1 + CLOSE_GRACE.as_nanos() as u64,
            live,
            plan,
        })
    }

    /// Monotonic ns since the epoch; refreshes the wall clock's offset.
    fn clock(&mut self) -> u64 {
        let mono = self.plan.ns(Instant::now());
        self.ctx.wall_offset = wall_now_ns() as i64 - mono as i64;
        mono
    }

    /// Runs every client of this core to its end; returns the figures.
    pub(crate) fn run(mut self) -> io::Result<CoreStats> {
        let spin = self.plan.cfg.spin_before_park.as_nanos() as u64;
        loop {
            let now = self.clock();
            if now >= self.hard_end {
                break;
            }
            self.start_due(now)?;
            if now >= self.next_sweep {
                self.sweep(now)?;
                self.next_sweep = now + SWEEP_NS;
            }
            self.serve(now)?;
            self.prompt(now)?;
            self.counters();
            if now >= self.next_publish {
                self.publish();
                self.next_publish = now + 1_000_000_000;
            }
            if self.active == 0 {
                break;
            }
            let mut next = self.next_sweep.min(self.next_publish).min(self.hard_end);
            if let Some(&first) = self.starts.front() {
                next = next.min(self.plan.start_ns(self.clients[first as usize].index));
            }
            if let Some(t) = self.wheel.next_due_ns(64) {
                next = next.min(t);
            }
            let mut now = self.plan.ns(Instant::now());
            let spin_until = now + spin;
            while now < next.min(spin_until) {
                self.ring.wait(Duration::ZERO)?;
                self.ring.reap(&mut self.later);
                if !self.later.is_empty() {
                    break;
                }
                now = self.plan.ns(Instant::now());
            }
            if self.later.is_empty() && next > now {
                self.ring.wait(Duration::from_nanos(next - now))?;
            } else {
                self.ring.submit_and_wait(0)?;
            }
            self.ring.reap(&mut self.later);
        }
        self.publish();
        self.counters();
        for local in 0..self.clients.len() {
            self.clients[local].fd = None;
        }
        self.ctx.stats.ring_enters = self.ring.enters;
        self.ctx.stats.ring_sqes = self.ring.sqes;
        Ok(self.ctx.stats)
    }

    /// Stores the counters the watching thread samples (every wake-up).
    fn counters(&self) {
        let live = &self.live;
        live.ticks[self.k].store(self.ctx.ticks_all, Ordering::Relaxed);
        live.enters[self.k].store(self.ring.enters, Ordering::Relaxed);
        live.sqes[self.k].store(self.ring.sqes, Ordering::Relaxed);
    }

    /// Publishes the progress figures (every second).
    fn publish(&mut self) {
        let live = &self.live;
        live.errors.fetch_add(std::mem::take(&mut self.ctx.new_errors), Ordering::Relaxed);
        let recent = &mut self.ctx.recent;
        let p99 = if recent.is_empty() { 0 } else { recent.value_at_quantile(0.99) };
        live.p99_us[self.k].store(p99, Ordering::Relaxed);
        recent.reset();
    }

    /// Keeps room for `n` entries in the submission queue.
    fn room_for(&mut self, n: usize) -> io::Result<()> {
        if self.ring.space() < n {
            self.ring.submit_and_wait(0)?;
        }
        Ok(())
    }

    /// Serves the clients due now: their reads in one batch, then their
    /// inputs in another.
    fn serve(&mut self, now: u64) -> io::Result<()> {
        self.fired.clear();
        self.wheel.take_due(now, &mut self.fired);
        if self.fired.is_empty() {
            return Ok(());
        }
        self.mark = self.mark.wrapping_add(1);
        let mark = self.mark;
        self.reads.clear();
        self.inputs.clear();
        let window_end = self.ctx.window.1;
        let fired = std::mem::take(&mut self.fired);
        for &e in &fired {
            let (local, what) = (e >> 1, e & 1);
            let c = &mut self.clients[local as usize];
            if what == W_INPUT {
                c.input_queued = false;
                if c.phase != Phase::Playing {
                    continue;
                }
                if c.next_drop_ns != 0 && now >= c.next_drop_ns {
                    // --reconnect-every: this client's socket goes now.
                    self.reconnect(local, now)?;
                    continue;
                }
                let due = c.slots.due(c.sent_seq + 1);
                if due > now {
                    c.input_queued = true;
                    self.wheel.insert(due, e);
                    continue;
                }
                if due >= window_end {
                    // The window is over: no more inputs; read on until
                    // the last ones are answered.
                    self.ctx.stats.completed += 1;
                    c.phase = Phase::Draining;
                    c.deadline_ns = now + DRAIN.as_nanos() as u64;
                } else {
                    self.inputs.push(local);
                }
            } else {
                c.read_queued = false;
                if !c.phase.is_reading() {
                    continue;
                }
                if c.read_due_ns > now {
                    c.read_queued = true;
                    self.wheel.insert(c.read_due_ns, e);
                    continue;
                }
                if !c.wants_mid(now) {
                    continue;
                }
            }
            if c.mark != mark {
                c.mark = mark;
                c.new_read(now);
                self.reads.push(local);
            }
        }
        self.fired = fired;
        self.read_batch(now)?;
        self.send_batch()?;
        // The next slots and reads.
        let reads = std::mem::take(&mut self.reads);
        for &local in &reads {
            let c = &mut self.clients[local as usize];
            if c.phase == Phase::Playing && !c.input_queued {
                // A socket that took no input keeps its slots waiting
                // (they stay due, timed from then): try it again soon,
                // not on every step.
                let next = c.slots.due(c.sent_seq + 1);
                let next = if c.tx_blocked { next.max(now + c.slots.period_ns / 4) } else { next };
                c.input_queued = true;
                self.wheel.insert(next, local << 1 | W_INPUT);
            }
            if c.phase.is_reading() && !c.read_queued && c.wants_mid(now) {
                c.read_due_ns = c.next_read(now);
                c.read_queued = true;
                self.wheel.insert(c.read_due_ns, local << 1 | W_READ);
            }
            if c.phase == Phase::Draining && (c.all_answered() || now >= c.deadline_ns) {
                let unanswered = c.unanswered(self.ctx.window);
                self.ctx.stats.inputs_unanswered += unanswered;
                self.begin_close(local, now)?;
            }
        }
        self.reads = reads;
        Ok(())
    }
}
