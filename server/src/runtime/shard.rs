//! One shard at run time: a pinned glommio executor that accepts on the
//! shared port, bounds its connections with permits, owns their sockets
//! (a slab of [`ConnCell`]s), runs its rooms' tick pass and one
//! housekeeping sweep over every connection, and drains on shutdown.

use super::driver;
use super::listen::Listeners;
use super::relocate::{self, LocalMesh, SharedMesh};
use super::ring::{Ring, Socket};
use super::ticker;
use super::tls::{Inbound, ShardTls, TlsLink};
use crate::conn::Connection;
use crate::metrics::ShardMetrics;
use crate::outbox::Outbox;
use crate::shard_state::{ShardState, Shared};
use glommio::net::TcpListener;
use glommio::sync::Semaphore;
use glommio::timer::sleep;
use slab::Slab;
use std::cell::{Cell, OnceCell, Ref, RefCell};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickforge_protocol::CloseReason;
use tracing::{debug, error, info, warn};

/// Connections over the limit that may still be answered 503 at once;
/// beyond these, extra connections are dropped without an answer.
const OVERFLOW_ANSWERS: u64 = 64;

/// Registered-file slots of the tick ring beyond the connection limit.
const HANDIN_SLOTS: u64 = 64;

/// A WebSocket connection on this shard: its socket's fd (the driver
/// task's stream owns it), its state, and who drives its socket now.
#[derive(Debug)]
pub(crate) struct ConnCell {
    /// The socket (owned by the connection's task), as the tick ring
    /// names it.
    pub(crate) socket: Socket,
    /// The connection's state.
    pub(crate) conn: RefCell<Connection>,
    /// Its room's tick pass drives the socket (the task waits).
    pub(crate) parked: Cell<bool>,
    /// Its TLS session, on a TLS port: between the socket and `conn`.
    pub(crate) tls: RefCell<Option<Box<TlsLink>>>,
}

impl ConnCell {
    /// Bytes read from the socket: to the connection, through TLS first
    /// when the port speaks it (a TLS fault drops the connection; the
    /// peer's `close_notify` is its end of input).
    pub(crate) fn receive(&self, conn: &mut Connection, bytes: &[u8], now: Instant, metrics: &ShardMetrics) {
        let mut tls = self.tls.borrow_mut();
        let Some(link) = tls.as_mut() else { return conn.on_bytes(bytes, now) };
        match link.receive(bytes, |plain| conn.on_bytes(plain, now)) {
            Ok(Inbound::Open) => {}
            Ok(Inbound::Closed) => conn.on_eof(now),
            Err(e) => {
                debug!("connection dropped: {e}");
                ShardMetrics::inc(&metrics.tls_errors);
                conn.on_io_error();
            }
        }
    }

    /// Through TLS, encrypts what the outbox holds as far as the link's
    /// ciphertext backlog allows (what it takes leaves the outbox).
    pub(crate) fn seal(&self, conn: &mut Connection, now: Instant) {
        let mut tls = self.tls.borrow_mut();
        let Some(link) = tls.as_mut() else { return };
        let taken = link.encrypt(&conn.outbox().pending());
        if taken > 0 {
            conn.on_sent(taken, now);
        }
    }

    /// Whether bytes wait for the socket (ciphertext through TLS).
    pub(crate) fn has_tx(&self, conn: &Connection) -> bool {
        match self.tls.borrow().as_ref() {
            Some(link) => link.has_pending(),
            None => conn.outbox().has_pending(),
        }
    }

    /// The bytes waiting for the socket: the link's ciphertext through
    /// TLS, else `outbox`'s (the connection's own) frames.
    pub(crate) fn tx<'a>(&'a self, outbox: &'a Outbox) -> Ref<'a, [u8]> {
        let tls = self.tls.borrow();
        if tls.is_some() {
            Ref::map(tls, |t| t.as_ref().map_or(&[][..], |link| link.pending()))
        } else {
            outbox.pending()
        }
    }

    /// The socket took `n` of the bytes [`ConnCell::tx`] gave.
    pub(crate) fn sent(&self, conn: &mut Connection, n: usize, now: Instant) {
        match self.tls.borrow_mut().as_mut() {
            Some(link) => link.consume(n),
            None => conn.on_sent(n, now),
        }
    }
}

/// One shard's runtime.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) state: Rc<ShardState>,
    /// Every open WebSocket connection.
    conns: RefCell<Slab<Rc<ConnCell>>>,
    pub(crate) permits: Rc<Semaphore>,
    overflow: Rc<Semaphore>,
    /// The tick pass's ring.
    pub(crate) ring: RefCell<Ring>,
    /// The buffer connections outside a room read their socket into (then
    /// keep only the bytes that arrived).
    pub(crate) scratch: RefCell<Vec<u8>>,
    /// Sending ends to the other shards, for hand-offs.
    pub(crate) mesh: OnceCell<LocalMesh>,
    /// The TLS configuration, on a TLS port.
    tls: Option<ShardTls>,
}

impl Shard {
    /// Registers a connection whose task owns socket `fd`, and the socket
    /// in the tick ring's file table (the slot of its key).
    pub(crate) fn insert(&self, fd: RawFd, tls: Option<Box<TlsLink>>, conn: Connection) -> Rc<ConnCell> {
        let outbox = conn.outbox().clone();
        let mut conns = self.conns.borrow_mut();
        let entry = conns.vacant_entry();
        let key = entry.key();
        // The ring is borrowed only inside a tick pass, which never awaits,
        // so a task that runs finds it free.
        let socket = match self.ring.try_borrow_mut() {
            Ok(mut ring) => ring.register(key, fd),
            Err(_) => Socket { fd, fixed: None },
        };
        let cell =
            Rc::new(ConnCell { socket, conn: RefCell::new(conn), parked: Cell::new(false), tls: RefCell::new(tls) });
        entry.insert(cell.clone());
        outbox.set_key(key);
        cell
    }

    /// Forgets a connection (its task is ending, or moving it to another
    /// shard), and its socket's slot in the tick ring: the ring holds a
    /// reference to a registered socket, which must go before the fd is
    /// closed or handed off. Twice is harmless.
    pub(crate) fn remove(&self, cell: &ConnCell) {
        let key = cell.conn.borrow().outbox().key();
        let mut conns = self.conns.borrow_mut();
        if conns.get(key).is_some_and(|c| std::ptr::eq(Rc::as_ptr(c), cell)) {
            conns.remove(key);
            match self.ring.try_borrow_mut() {
                Ok(mut ring) => ring.unregister(cell.socket),
                Err(_) => error!(shard = self.state.id, "a socket's ring slot was not emptied: the ring was busy"),
            }
        }
    }

    /// The TLS configuration a new connection starts with (`None`: the
    /// port speaks plain TCP).
    pub(crate) fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.as_ref().map(ShardTls::config)
    }

    /// The connection with slab key `key`.
    pub(crate) fn conn(&self, key: usize) -> Option<Rc<ConnCell>> {
        self.conns.borrow().get(key).cloned()
    }

    /// How often every connection's timers are looked at: a quarter of the
    /// shortest of them, between 10 ms and 250 ms.
    fn sweep_period(&self) -> Duration {
        let c = self.state.config();
        [Duration::from_millis(250), c.limits.send_stall / 4, c.ping_interval / 4, c.ping_timeout / 4]
            .into_iter()
            .min()
            .unwrap_or(Duration::from_millis(250))
            .max(Duration::from_millis(10))
    }
}

/// The process's open-files limit (`RLIMIT_NOFILE`, soft).
fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0 {
        limit.rlim_cur
    } else {
        u64::MAX
    }
}

/// Runs one shard until the stop flag is set and its connections drained.
/// It claims one of `listeners`; its id is its index in the hand-off mesh.
pub(crate) async fn run_shard(shared: Shared, listeners: Arc<Listeners>, mesh: SharedMesh) {
    let Some(fd) = listeners.claim() else { return };
    // SAFETY: a bound, listening TCP socket (see `super::listen`) whose
    // ownership this shard took from `listeners` (closed when dropped).
    let listener = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
    let stop = shared.stop.clone();
    let Some((id, senders, receivers)) = relocate::join(mesh).await else {
        // The listener is dropped (closed) here: the kernel sends this
        // port's connections to the other shards only.
        error!("a shard could not join the hand-off mesh; stopping the server");
        stop.store(true, Ordering::Relaxed);
        return;
    };
    let limit = shared.config.connections_per_shard() as u64;
    // A slot per connection the shard admits, and some for the hand-ins
    // served over the limit (see `driver::serve_arrived`); a connection
    // beyond them is named by its fd. The kernel refuses a table larger
    // than the process may open files, and no more sockets could be open.
    let file_slots = u32::try_from((limit + HANDIN_SLOTS).min(open_files_limit())).unwrap_or(u32::MAX);
    let ring = match Ring::new(file_slots) {
        Ok(ring) => ring,
        Err(e) => {
            error!("shard {id}: cannot set up its io_uring ring: {e}; stopping the server");
            stop.store(true, Ordering::Relaxed);
            return;
        }
    };
    let state = Rc::new(ShardState::new(id, shared));
    let shard = Rc::new(Shard {
        state: state.clone(),
        conns: RefCell::new(Slab::new()),
        permits: Rc::new(Semaphore::new(limit)),
        overflow: Rc::new(Semaphore::new(OVERFLOW_ANSWERS)),
        ring: RefCell::new(ring),
        scratch: RefCell::new(vec![0; 16 * 1024]),
        mesh: OnceCell::new(),
        tls: state.shared.tls.clone().map(ShardTls::new),
    });
    let _ = shard.mesh.set(senders);
    state.enable_handoffs();
    relocate::start(&shard, receivers);
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    {
        let ring = shard.ring.borrow();
        info!(shard = id, ring = ring.setup(), file_slots = ring.file_slots(), "shard {id} serving on {addr}");
    }

    crate::cluster::serve::spawn_tasks(&state);
    let accept = glommio::spawn_local(accept_loop(shard.clone(), listener));
    let ticker = glommio::spawn_local(ticker::run(shard.clone()));
    let sweep = glommio::spawn_local(sweep_loop(shard.clone()));
    let monitor = glommio::spawn_local(monitor_loop(shard.state.clone()));

    while !stop.load(Ordering::Relaxed) {
        sleep(Duration::from_millis(25)).await;
    }
    drain(&shard).await;
    drop(accept);
    drop(sweep);
    drop(monitor);
    drop(ticker);
    info!(shard = id, "shard {id} stopped");
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                ShardMetrics::inc(&shard.state.metrics().accepted);
                match shard.permits.try_acquire_static_permit(1) {
                    Ok(permit) => {
                        glommio::spawn_local(driver::serve(shard.clone(), stream, Some(permit))).detach();
                    }
                    Err(_) => match shard.overflow.try_acquire_static_permit(1) {
                        Ok(overflow) => {
                            let shard = shard.clone();
                            glommio::spawn_local(async move {
                                driver::serve(shard, stream, None).await;
                                drop(overflow);
                            })
                            .detach();
                        }
                        Err(_) => drop(stream),
                    },
                }
            }
            Err(e) => {
                warn!(shard = shard.state.id, error = %e, "accept failed");
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The shard's one timer over its connections: keepalive, send stall,
/// close linger, idle buffers. A connection whose timers ended it is woken
/// so that its task drops the socket.
async fn sweep_loop(shard: Rc<Shard>) {
    let period = shard.sweep_period();
    loop {
        sleep(period).await;
        let now = Instant::now();
        let conns: Vec<Rc<ConnCell>> = shard.conns.borrow().iter().map(|(_, c)| c.clone()).collect();
        for cell in conns {
            if let Some(link) = cell.tls.borrow_mut().as_mut() {
                link.shrink();
            }
            let mut conn = cell.conn.borrow_mut();
            conn.housekeeping(now);
            if conn.is_done() {
                conn.outbox().wake();
            }
        }
    }
}

/// The shard's share of the monitor: once a second, the CPU time its
/// thread used (the `cpu_busy` of `/monitor.json`); on shard 0, every
/// [`SAMPLE_EVERY`] a sample of every room for the charts and the
/// last-minute figures.
///
/// [`SAMPLE_EVERY`]: crate::monitor::SAMPLE_EVERY
async fn monitor_loop(state: Rc<ShardState>) {
    let epoch = Instant::now();
    let sample_every = crate::monitor::SAMPLE_EVERY;
    let mut next_sample = Duration::ZERO;
    loop {
        let wall = epoch.elapsed();
        let load = state.shared.monitor.shard(state.id);
        load.record(thread_cpu_ns(), u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX));
        if state.id == 0 && wall >= next_sample {
            state.shared.monitor.sample(crate::shard_state::unix_now_us(), &state.shared.metrics);
            next_sample = wall + sample_every;
        }
        sleep(Duration::from_secs(1)).await;
    }
}

/// The CPU time this thread has used, ns (0 if the clock cannot be read).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out pointer to a timespec on the stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Graceful shutdown of one shard: refuse new work, close every room with
/// `room_closing`, close every connection with 1001, and wait for them (at
/// most the drain timeout).
async fn drain(shard: &Rc<Shard>) {
    let state = &shard.state;
    state.start_draining();
    let rooms = state.all_rooms();
    for slot in &rooms {
        slot.room.borrow_mut().close("server shutting down");
    }
    let conns: Vec<_> = shard.conns.borrow().iter().map(|(_, c)| c.conn.borrow().outbox().clone()).collect();
    info!(shard = state.id, rooms = rooms.len(), connections = conns.len(), "draining");
    for outbox in conns {
        outbox.close(CloseReason::ShuttingDown);
    }
    let deadline = Instant::now() + state.config().drain_timeout;
    while !shard.conns.borrow().is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    let left = shard.conns.borrow().len();
    if left > 0 {
        warn!(shard = state.id, connections = left, "drain timeout: dropping connections");
    }
}
