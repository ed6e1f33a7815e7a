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
//! input period, and the core two enters per step for all of its clients
//! due in it, with no task, timer or poll per client. Clients that are
//! connecting, handshaking, joining or closing take the prompt path
//! instead: one poll each for the step they wait on, answered with plain
//! non-blocking calls, so the handshake figure is not rounded to a step.

use crate::client::{Client, Ctx, End, Phase, Rx};
use crate::handshake::{Answer, Handshake};
use crate::net::{self, Target};
use crate::schedule::{Grid, Slots, Wheel};
use crate::stats::{histogram, CoreStats, Live};
use crate::uring::Ring;
use crate::{scenario, ws, LoadConfig};
use io_uring::{opcode, types};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::Request;
use tickforge_protocol::ClientSession;

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

/// Bytes one batched read takes at most; a read that fills it is repeated.
const RX_SLOT: usize = 4096;

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

/// The batch reads' buffers: one slot per read in flight, each with its
/// `msghdr` and room for the timestamp's control message. Built once; the
/// pointers inside stay valid because nothing here is ever resized.
struct RxArena {
    bufs: Vec<u8>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::msghdr>,
    ctl: Vec<[u64; 8]>,
}

impl RxArena {
    fn new(slots: usize) -> Self {
        let mut a = Self {
            bufs: vec![0; slots * RX_SLOT],
            // SAFETY: all-zero iovec and msghdr are valid (null pointers, zero lengths).
            iov: vec![unsafe { std::mem::zeroed() }; slots],
            hdrs: vec![unsafe { std::mem::zeroed() }; slots],
            ctl: vec![[0; 8]; slots],
        };
        let base = a.bufs.as_mut_ptr();
        for i in 0..slots {
            // SAFETY: within `bufs`.
            a.iov[i] = libc::iovec { iov_base: unsafe { base.add(i * RX_SLOT) }.cast(), iov_len: RX_SLOT };
        }
        a
    }

    /// The slot's header, reset for a new read.
    fn prepare(&mut self, slot: usize) -> *mut libc::msghdr {
        self.ctl[slot] = [0; 8];
        let h = &mut self.hdrs[slot];
        h.msg_name = std::ptr::null_mut();
        h.msg_namelen = 0;
        h.msg_iov = &raw mut self.iov[slot];
        h.msg_iovlen = 1;
        h.msg_control = self.ctl[slot].as_mut_ptr().cast();
        h.msg_controllen = size_of::<[u64; 8]>();
        h.msg_flags = 0;
        h
    }

    fn data(&self, slot: usize, len: usize) -> &[u8] {
        &self.bufs[slot * RX_SLOT..slot * RX_SLOT + len]
    }
}

/// The kernel receive timestamp in a `recvmsg`'s control data (wall ns).
fn stamp_of(hdr: &libc::msghdr) -> Option<u64> {
    // SAFETY: the header describes our own control buffer; CMSG_* stay within it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET
                && c.cmsg_type == libc::SCM_TIMESTAMPNS
                && c.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::timespec>() as u32) as usize
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

/// One non-blocking `recvmsg` with its timestamp (the prompt path).
fn recv_direct(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut ctl = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: all-zero msghdr is valid; the pointers set below outlive the call.
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_iov = &raw mut iov;
    h.msg_iovlen = 1;
    h.msg_control = ctl.as_mut_ptr().cast();
    h.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: valid fd number and header.
    let n = unsafe { libc::recvmsg(fd, &mut h, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, stamp_of(&h)))
}

/// One non-blocking send (the prompt path); how many bytes went.
fn send_direct(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: valid buffer.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

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

    fn arm_poll(&mut self, local: u32, events: i16) -> io::Result<()> {
        self.room_for(1)?;
        let c = &mut self.clients[local as usize];
        let Some(fd) = c.fd.as_ref().map(AsRawFd::as_raw_fd) else { return Ok(()) };
        c.polling = true;
        let e =
            opcode::PollAdd::new(types::Fd(fd), events as u32).build().user_data(user_data(local, K_POLL, 0, c.gen));
        // SAFETY: a poll points to no buffer.
        unsafe { self.ring.push(&e) };
        Ok(())
    }

    /// Closes a client's socket (cancelling its poll) and marks it done.
    fn close(&mut self, local: u32) -> io::Result<()> {
        let c = &mut self.clients[local as usize];
        if c.phase == Phase::Done {
            return Ok(());
        }
        if matches!(c.phase, Phase::Playing | Phase::Draining) {
            self.live.clients.fetch_sub(1, Ordering::Relaxed);
        }
        let (polling, gen, registered) = (c.polling, c.gen, c.registered);
        c.registered = false;
        c.phase = Phase::Done;
        c.polling = false;
        c.gen = c.gen.wrapping_add(1);
        c.fd = None;
        c.session = None;
        c.handshake = None;
        c.head = Vec::new();
        c.tx = Vec::new();
        self.active -= 1;
        if registered {
            // The table holds the socket open until its slot is emptied.
            self.ring.register(local, -1)?;
        }
        if polling {
            self.room_for(1)?;
            let e = opcode::PollRemove::new(user_data(local, K_POLL, 0, gen))
                .build()
                .user_data(user_data(local, K_CANCEL, 0, gen));
            // SAFETY: no buffer.
            unsafe { self.ring.push(&e) };
        }
        Ok(())
    }

    /// Sends our close frame and waits (bounded) for the server's.
    fn begin_close(&mut self, local: u32, now: u64) -> io::Result<()> {
        let c = &mut self.clients[local as usize];
        if matches!(c.phase, Phase::Playing | Phase::Draining) {
            self.live.clients.fetch_sub(1, Ordering::Relaxed);
        }
        c.phase = Phase::Closing;
        c.deadline_ns = now + LINGER.as_nanos() as u64;
        let mask = self.ctx.mask();
        c.tx.clear();
        ws::write_close(1000, "load run over", mask, &mut c.tx);
        let fd = c.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        if c.close_seen || send_direct(fd, &c.tx).is_err() {
            return self.close(local);
        }
        self.setup.push(local);
        if self.clients[local as usize].polling {
            return Ok(());
        }
        self.arm_poll(local, libc::POLLIN)
    }

    /// A client whose connection ended on the server's side: counts it.
    fn ended(&mut self, local: u32, end: End) -> io::Result<()> {
        let phase = self.clients[local as usize].phase;
        let index = self.clients[local as usize].index;
        match end {
            End::Closed(kind) => {
                self.ctx.error(|e| *e.unexpected_close.entry(kind).or_default() += 1);
                if phase.is_setup() {
                    self.fail_room(index)?;
                }
                self.close(local)
            }
            End::Rejected(code) => {
                self.ctx.error(|e| *e.join_failed.entry(code).or_default() += 1);
                self.fail_room(index)?;
                self.clients[local as usize].end = None;
                self.begin_close(local, self.plan.ns(Instant::now()))
            }
        }
    }

    /// A group's first client failed before its room existed: its other
    /// clients cannot join.
    fn fail_room(&mut self, index: usize) -> io::Result<()> {
        let ppr = self.plan.cfg.players_per_room;
        if index % ppr != 0 {
            return Ok(());
        }
        let group = index / ppr;
        if matches!(self.rooms.get(&group), Some(RoomSlot::Ready(_))) {
            return Ok(());
        }
        self.rooms.insert(group, RoomSlot::Failed);
        let now = self.plan.ns(Instant::now());
        for local in self.waiting.remove(&group).unwrap_or_default() {
            if self.clients[local as usize].phase == Phase::WaitRoom {
                self.ctx.error(|e| *e.join_failed.entry("no_room".into()).or_default() += 1);
                self.begin_close(local, now)?;
            }
        }
        Ok(())
    }

    /// Starts the clients whose ramp-up slot has come: a non-blocking
    /// connect and a poll for its end.
    fn start_due(&mut self, now: u64) -> io::Result<()> {
        while let Some(&local) = self.starts.front() {
            let index = self.clients[local as usize].index;
            if self.plan.start_ns(index) > now {
                break;
            }
            self.starts.pop_front();
            let cfg = &self.plan.cfg;
            let source = (!cfg.source_ips.is_empty()).then(|| cfg.source_ips[index % cfg.source_ips.len()]);
            let c = &mut self.clients[local as usize];
            c.started_ns = now;
            match net::start_connect(self.plan.target.addr, source) {
                Ok(fd) => {
                    c.fd = Some(fd);
                    c.phase = Phase::Connecting;
                    c.deadline_ns = now + cfg.connect_timeout.as_nanos() as u64;
                    self.setup.push(local);
                    self.arm_poll(local, libc::POLLOUT)?;
                }
                Err(_) => {
                    self.ctx.error(|e| e.connect += 1);
                    c.phase = Phase::Connecting;
                    self.fail_room(index)?;
                    self.close(local)?;
                }
            }
        }
        Ok(())
    }

    /// Gives up on the prompt-path clients past their deadline.
    fn sweep(&mut self, now: u64) -> io::Result<()> {
        let mut setup = std::mem::take(&mut self.setup);
        setup.retain(|&l| self.clients[l as usize].phase.is_setup());
        setup.sort_unstable();
        setup.dedup();
        for &local in &setup {
            let c = &self.clients[local as usize];
            if now < c.deadline_ns || !c.phase.is_setup() {
                continue;
            }
            let index = c.index;
            match c.phase {
                Phase::Connecting => {
                    self.ctx.error(|e| e.connect += 1);
                    self.fail_room(index)?;
                    self.close(local)?;
                }
                Phase::Handshaking => {
                    self.ctx.error(|e| e.handshake_failed += 1);
                    self.fail_room(index)?;
                    self.close(local)?;
                }
                Phase::WaitRoom | Phase::Joining => {
                    self.ctx.error(|e| *e.join_failed.entry("timeout".into()).or_default() += 1);
                    self.fail_room(index)?;
                    self.begin_close(local, now)?;
                }
                _ => self.close(local)?,
            }
        }
        setup.retain(|&l| self.clients[l as usize].phase.is_setup());
        setup.append(&mut self.setup);
        self.setup = setup;
        Ok(())
    }

    /// The prompt path: every poll completion met since the last pass.
    fn prompt(&mut self, now: u64) -> io::Result<()> {
        while !self.later.is_empty() {
            let batch = std::mem::take(&mut self.later);
            for &(ud, res) in &batch {
                let (local, kind, _, gen) = parts(ud);
                if kind != K_POLL || self.clients[local].gen != gen || !self.clients[local].polling {
                    continue;
                }
                self.clients[local].polling = false;
                self.on_ready(local as u32, res, now)?;
            }
        }
        Ok(())
    }

    /// A prompt-path client's socket is ready (or failed, `res` < 0).
    fn on_ready(&mut self, local: u32, res: i32, now: u64) -> io::Result<()> {
        let c = &self.clients[local as usize];
        let Some(fd) = c.fd.as_ref().map(AsRawFd::as_raw_fd) else { return Ok(()) };
        let index = c.index;
        match c.phase {
            Phase::Connecting => {
                let ok = res >= 0 && net::socket_error(fd).is_ok() && net::client_options(fd).is_ok();
                if !ok {
                    self.ctx.error(|e| e.connect += 1);
                    self.fail_room(index)?;
                    return self.close(local);
                }
                let hs = Handshake::new(&self.plan.target, self.plan.cfg.format);
                if !matches!(send_direct(fd, &hs.request), Ok(n) if n == hs.request.len()) {
                    self.ctx.error(|e| e.handshake_failed += 1);
                    self.fail_room(index)?;
                    return self.close(local);
                }
                let c = &mut self.clients[local as usize];
                c.handshake = Some(Box::new(hs));
                c.phase = Phase::Handshaking;
                c.deadline_ns = now + self.plan.cfg.handshake_timeout.as_nanos() as u64;
                self.arm_poll(local, libc::POLLIN)
            }
            Phase::Handshaking => self.on_handshake(local, fd, now),
            Phase::Joining | Phase::Closing => {
                loop {
                    let got = recv_direct(fd, &mut self.direct);
                    let c = &mut self.clients[local as usize];
                    match got {
                        Ok((0, _)) => {
                            if c.phase == Phase::Closing {
                                return self.close(local);
                            }
                            return self.ended(local, End::Closed("eof".into()));
                        }
                        Ok((n, stamp)) => {
                            let rx = Rx { wall_ns: stamp.unwrap_or_else(wall_now_ns), stamped: stamp.is_some() };
                            c.on_bytes(&self.direct[..n], rx, now, &mut self.ctx);
                            if n < self.direct.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            if c.phase == Phase::Closing {
                                return self.close(local);
                            }
                            return self.ended(local, End::Closed("io".into()));
                        }
                    }
                }
                self.after_prompt_read(local, now)
            }
            _ => Ok(()),
        }
    }

    /// What a joining or closing client's read led to.
    fn after_prompt_read(&mut self, local: u32, now: u64) -> io::Result<()> {
        let c = &mut self.clients[local as usize];
        if c.phase == Phase::Closing {
            if c.close_seen {
                return self.close(local);
            }
            return self.arm_poll(local, libc::POLLIN);
        }
        if let Some(end) = c.end.take() {
            return self.ended(local, end);
        }
        if let Some(room) = c.joined.take() {
            return self.on_joined(local, room, now);
        }
        self.arm_poll(local, libc::POLLIN)
    }

    fn on_handshake(&mut self, local: u32, fd: RawFd, now: u64) -> io::Result<()> {
        let index = self.clients[local as usize].index;
        let (n, _) = match recv_direct(fd, &mut self.direct) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.arm_poll(local, libc::POLLIN),
            Err(_) => (0, None),
        };
        let c = &mut self.clients[local as usize];
        if n == 0 {
            self.ctx.error(|e| e.handshake_failed += 1);
            self.fail_room(index)?;
            return self.close(local);
        }
        c.head.extend_from_slice(&self.direct[..n]);
        let answer = c.handshake.as_ref().map_or(Answer::Failed("no handshake".into()), |h| h.answer(&c.head));
        match answer {
            Answer::Incomplete => self.arm_poll(local, libc::POLLIN),
            Answer::Refused { status, .. } => {
                self.ctx.error(|e| *e.handshake_refused.entry(status).or_default() += 1);
                self.fail_room(index)?;
                self.close(local)
            }
            Answer::Failed(_) => {
                self.ctx.error(|e| e.handshake_failed += 1);
                self.fail_room(index)?;
                self.close(local)
            }
            Answer::Open { head_len } => {
                let rest = c.head.split_off(head_len);
                c.head = Vec::new();
                c.handshake = None;
                self.ctx.stats.connected += 1;
                let _ = self.ctx.stats.handshake_latency.record((now.saturating_sub(c.started_ns) / 1000).max(1));
                c.session = Some(Box::new(ClientSession::new(self.plan.cfg.format)));
                c.phase = Phase::WaitRoom;
                c.deadline_ns = now + self.plan.cfg.join_timeout.as_nanos() as u64;
                if !rest.is_empty() {
                    let rx = Rx { wall_ns: wall_now_ns(), stamped: false };
                    c.on_bytes(&rest, rx, now, &mut self.ctx);
                }
                self.request_room(local, now)
            }
        }
    }

    /// An open client asks for its room: the first of its group creates
    /// it, the others join it once it exists.
    fn request_room(&mut self, local: u32, now: u64) -> io::Result<()> {
        let plan = Arc::clone(&self.plan);
        let cfg = &plan.cfg;
        let index = self.clients[local as usize].index;
        let (group, leader) = (index / cfg.players_per_room, index % cfg.players_per_room == 0);
        let body = if leader {
            Request::CreateRoom {
                game: cfg.game.clone(),
                max_players: Some(cfg.players_per_room as u32),
                tick_hz: cfg.tick_hz,
                private: false,
            }
        } else {
            match self.rooms.get(&group).cloned().unwrap_or(RoomSlot::Pending) {
                RoomSlot::Ready(room_id) => Request::JoinRoom { room_id },
                RoomSlot::Failed => {
                    self.ctx.error(|e| *e.join_failed.entry("no_room".into()).or_default() += 1);
                    return self.begin_close(local, now);
                }
                RoomSlot::Pending => {
                    self.waiting.entry(group).or_default().push(local);
                    self.setup.push(local);
                    return Ok(());
                }
            }
        };
        let c = &mut self.clients[local as usize];
        let Some(session) = c.session.as_mut() else { return self.close(local) };
        let mut payload = std::mem::take(&mut self.ctx.scratch);
        session.request(body, &mut payload);
        c.tx.clear();
        self.ctx.frame_payload(&payload, &mut c.tx);
        self.ctx.scratch = payload;
        let fd = c.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        match send_direct(fd, &c.tx) {
            Ok(n) => {
                c.tx.drain(..n);
            }
            Err(_) => {
                self.fail_room(index)?;
                return self.ended(local, End::Closed("io".into()));
            }
        }
        c.phase = Phase::Joining;
        c.deadline_ns = now + cfg.join_timeout.as_nanos() as u64;
        self.setup.push(local);
        self.arm_poll(local, libc::POLLIN)
    }

    /// `joined`: the client plays from its first input slot on.
    fn on_joined(&mut self, local: u32, room: RoomId, now: u64) -> io::Result<()> {
        let ppr = self.plan.cfg.players_per_room;
        self.ctx.stats.joined += 1;
        self.live.clients.fetch_add(1, Ordering::Relaxed);
        let c = &mut self.clients[local as usize];
        let (index, group) = (c.index, c.index / ppr);
        if c.decoder {
            self.ctx.stats.decoders += 1;
        }
        c.phase = Phase::Playing;
        if let Some(fd) = c.fd.as_ref().map(AsRawFd::as_raw_fd) {
            self.ring.register(local, fd)?;
            c.registered = true;
        }
        let offset = (scenario::phase(index) * self.grid.steps_per_period as f64) as u64;
        c.slots = Slots { first_ns: self.grid.first_slot(now, offset), period_ns: self.grid.period_ns() };
        c.input_queued = true;
        self.wheel.insert(c.slots.first_ns, (local << 1) | W_INPUT);
        // Reads half a tick period from the ticks besides, while it learns
        // where they land (from now, until the first tick read).
        c.last_arrival_ns = now;
        c.mid_until_ns = now + crate::client::MID_HOLD_NS;
        c.read_due_ns = c.next_read(now);
        c.read_queued = true;
        self.wheel.insert(c.read_due_ns, (local << 1) | W_READ);
        if index % ppr == 0 {
            self.rooms.insert(group, RoomSlot::Ready(room));
            for follower in self.waiting.remove(&group).unwrap_or_default() {
                if self.clients[follower as usize].phase == Phase::WaitRoom {
                    self.request_room(follower, now)?;
                }
            }
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
        self.send_batch(now)?;
        // The next slots and reads.
        let reads = std::mem::take(&mut self.reads);
        for &local in &reads {
            let c = &mut self.clients[local as usize];
            if c.phase == Phase::Playing && !c.input_queued {
                c.input_queued = true;
                self.wheel.insert(c.slots.due(c.sent_seq + 1), local << 1 | W_INPUT);
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

    /// Reaps `want` completions of the batch just pushed into `self.cqes`
    /// (the prompt path's go to `later`).
    fn reap_batch(&mut self, want: usize) -> io::Result<()> {
        self.cqes.clear();
        let mut got = 0;
        let mut all = std::mem::take(&mut self.all);
        while got < want {
            self.ring.submit_and_wait(want - got)?;
            self.ring.reap(&mut all);
            for (ud, res) in all.drain(..) {
                let kind = parts(ud).1;
                if kind == K_RECV || kind == K_SEND {
                    self.cqes.push((ud, res));
                    got += 1;
                } else {
                    self.later.push((ud, res));
                }
            }
        }
        self.all = all;
        Ok(())
    }

    /// One `RECVMSG` per client in `reads`, in batches; again for those
    /// whose read filled its slot.
    fn read_batch(&mut self, now: u64) -> io::Result<()> {
        let mut todo = std::mem::take(&mut self.todo);
        todo.clear();
        todo.extend_from_slice(&self.reads);
        let slots = self.rx.iov.len();
        while !todo.is_empty() {
            self.retry.clear();
            for chunk in todo.chunks(slots) {
                self.room_for(self.ring_capacity())?;
                let mut pushed = 0;
                for (slot, &local) in chunk.iter().enumerate() {
                    let c = &self.clients[local as usize];
                    if !c.registered || c.end.is_some() {
                        continue;
                    }
                    let hdr = self.rx.prepare(slot);
                    let e = opcode::RecvMsg::new(types::Fixed(local), hdr)
                        .flags(libc::MSG_DONTWAIT as u32)
                        .build()
                        .user_data(user_data(local, K_RECV, slot, c.gen));
                    // SAFETY: the slot's header, iovec, buffer and control
                    // bytes stay put until this batch is reaped below.
                    unsafe { self.ring.push(&e) };
                    pushed += 1;
                }
                self.reap_batch(pushed)?;
                let cqes = std::mem::take(&mut self.cqes);
                for &(ud, res) in &cqes {
                    let (local, _, slot, gen) = parts(ud);
                    let c = &mut self.clients[local];
                    if c.gen != gen {
                        continue;
                    }
                    if res > 0 {
                        let n = res as usize;
                        let stamp = stamp_of(&self.rx.hdrs[slot]);
                        let rx = Rx { wall_ns: stamp.unwrap_or_else(wall_now_ns), stamped: stamp.is_some() };
                        c.on_bytes(self.rx.data(slot, n), rx, now, &mut self.ctx);
                        if n == RX_SLOT {
                            self.retry.push(local as u32);
                        }
                    } else if res == 0 {
                        c.end.get_or_insert(End::Closed("eof".into()));
                    } else if res != -libc::EAGAIN {
                        c.end.get_or_insert(End::Closed("io".into()));
                    }
                }
                self.cqes = cqes;
            }
            std::mem::swap(&mut todo, &mut self.retry);
        }
        self.todo = todo;
        for i in 0..self.reads.len() {
            let local = self.reads[i];
            if let Some(end) = self.clients[local as usize].end.take() {
                self.ended(local, end)?;
            }
        }
        Ok(())
    }

    fn ring_capacity(&self) -> usize {
        RING_ENTRIES as usize
    }

    /// The inputs due, and whatever else waits to be sent (pongs, the rest
    /// of a short send), one `SEND` per client in batches.
    fn send_batch(&mut self, now: u64) -> io::Result<()> {
        self.sends.clear();
        for i in 0..self.reads.len() {
            let local = self.reads[i];
            let c = &mut self.clients[local as usize];
            if !c.phase.is_reading() {
                continue;
            }
            if c.phase == Phase::Playing {
                c.write_input(now, &mut self.ctx);
            }
            if !c.tx.is_empty() {
                self.sends.push(local);
            }
        }
        let sends = std::mem::take(&mut self.sends);
        for chunk in sends.chunks(self.ring_capacity()) {
            self.room_for(self.ring_capacity())?;
            for &local in chunk {
                let c = &self.clients[local as usize];
                let e = opcode::Send::new(types::Fixed(local), c.tx.as_ptr(), c.tx.len() as u32)
                    .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(local, K_SEND, 0, c.gen));
                // SAFETY: `tx` is not touched until the batch is reaped below.
                unsafe { self.ring.push(&e) };
            }
            self.reap_batch(chunk.len())?;
            let cqes = std::mem::take(&mut self.cqes);
            for &(ud, res) in &cqes {
                let (local, _, _, gen) = parts(ud);
                let c = &mut self.clients[local];
                if c.gen != gen {
                    continue;
                }
                if res >= 0 {
                    c.tx.drain(..res as usize);
                    c.tx_blocked = !c.tx.is_empty();
                } else if res == -libc::EAGAIN {
                    c.tx_blocked = true;
                } else {
                    c.end.get_or_insert(End::Closed("io".into()));
                }
            }
            self.cqes = cqes;
            for &local in chunk {
                if let Some(end) = self.clients[local as usize].end.take() {
                    self.ended(local, end)?;
                }
            }
        }
        self.sends = sends;
        Ok(())
    }
}
