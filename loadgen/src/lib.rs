//! tickforge's load generator: simulated arena players over real WebSocket
//! connections, measuring the figures of WORKLOAD.md (tick and input
//! latency, bytes per client-tick against full state, missed ticks, errors).
//!
//! # Layout
//! - [`config`]: [`LoadConfig`], what one run simulates.
//! - [`scenario`]: the input patterns (arena's, and random values over any
//!   other game's input schema), pure functions of client index and input
//!   seq.
//! - `schedule`: the slot grid, each client's open-loop input slots, the
//!   timer wheel (pure).
//! - `net`: URL, bind-before-connect sockets, socket options, the pre-run probe.
//! - `handshake` and `ws`: the WebSocket opening handshake and the client
//!   side of its framing, sans-IO.
//! - `client`: one simulated player's state: reads messages (rebuilding
//!   the state with a `protocol::ClientSession` on decoding clients, the
//!   tick header only on the others), times ticks and inputs, writes inputs.
//! - `core`: one core's loop: a pinned thread with its own io_uring
//!   serving its clients in batches (see its docs for one wake-up).
//! - `uring`: the ring, set up for one thread.
//! - `tls`: `wss://`, rustls's sans-IO client between the socket's bytes
//!   and `ws::Reader` / the client's `tx` (the batches move ciphertext; a
//!   record is timed by the stamp of the read that completed it).
//! - [`stats`]: per-core HdrHistograms and counters, merged at the end.
//! - [`report`]: [`Report`]: JSON, table, `.hgrm`, SVG plot.
//!
//! Thread-per-core: `cores` threads, each pinned to one CPU of the
//! process's affinity mask, own whole rooms' worth of clients (a room's
//! clients share a core so its first client can hand the room id to the
//! others without locks). The calling thread only draws progress.
//!
//! # What the figures mean
//! - Tick latency: the kernel's receive timestamp of the read that
//!   completed a state message minus its `server_time_us`. The loadgen's
//!   own delay in reading is not in it; two messages in one read share the
//!   later one's stamp (counted in the report, with how late that could be).
//! - Input latency: from each input slot's due time (open loop, see
//!   `schedule`) to the arrival of the first tick including it; the
//!   loadgen's lag in serving the slot is in it and reported beside it.
//! - The report says when the loadgen was the limit of a run
//!   ([`Report::loadgen_limits`]).
//!
//! # Reconnecting
//! `--reconnect-every`: a playing client drops its socket (no close
//! frame) at that mean interval; a new socket in the same client (its `gen`
//! bumped so the old socket's completions are ignored, its registered-file
//! slot emptied) goes through connect and handshake again, and its room
//! request is a `resume` with the newest token `joined` carried. Input
//! slots that fall due while disconnected are skipped, inputs in flight
//! are lost with the socket (neither is timed); the time from the drop to
//! the first tick after the resume is the resume latency.
//!
//! # What comes next, and where it goes
//! - Following `cfm redirect`: the target a client connects to is one
//!   `net::Target`; a redirect gives the client its own.
//!
//! # Example
//! ```no_run
//! let mut cfg = tickforge_loadgen::LoadConfig::default();
//! cfg.clients = 64;
//! let report = tickforge_loadgen::run(cfg).unwrap();
//! println!("{}", report.table());
//! ```

pub mod config;
pub mod report;
pub mod scenario;
pub mod stats;

mod client;
mod core;
mod handshake;
mod net;
mod schedule;
mod tls;
mod uring;
mod ws;

pub use config::LoadConfig;
pub use report::Report;
pub use tls::insecure_client_config;

use crate::core::{Core, Plan, CLOSE_GRACE};
use indicatif::{ProgressBar, ProgressStyle};
use report::{Interval, Machine, Params, SelfCost};
use stats::{CoreStats, Live};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a run could not be made (as opposed to errors it measured, which
/// are in the [`Report`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A parameter is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The URL cannot be used.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server's port could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server answered the WebSocket handshake with an HTTP status.
    #[error("handshake refused by {url}: HTTP {status} {reason}")]
    HandshakeRefused {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The status text and body.
        reason: String,
    },
    /// The handshake failed otherwise.
    #[error("handshake with {url} failed: {reason}")]
    Handshake {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An executor could not start or failed.
    #[error("executor: {0}")]
    Executor(String),
}

/// Runs the load and returns its figures. Blocks for the ramp-up, the
/// warm-up and the measured time (plus a few seconds to close).
///
/// # Errors
/// [`LoadError::Config`] or [`LoadError::Url`] for bad parameters;
/// [`LoadError::Connect`], [`LoadError::HandshakeRefused`] or
/// [`LoadError::Handshake`] when one probe connection before the run fails;
/// [`LoadError::Executor`] when a core cannot run. Failures during the run
/// are counted in [`Report::errors`] instead.
pub fn run(cfg: LoadConfig) -> Result<Report, LoadError> {
    cfg.validate()?;
    let target = net::Target::parse_with(&cfg.url, || tls::client_config(cfg.ca.as_deref(), cfg.insecure))?;
    net::probe(&target, cfg.format, cfg.handshake_timeout.max(cfg.connect_timeout))?;
    raise_nofile();
    let machine = Machine::current();
    let cpus = allowed_cpus();
    let cores = cfg.cores;
    let params = Params {
        url: cfg.url.clone(),
        clients: cfg.clients,
        players_per_room: cfg.players_per_room,
        input_hz: cfg.input_hz,
        tick_hz: cfg.tick_hz,
        game: cfg.game.clone(),
        subprotocol: cfg.format.subprotocol(),
        cores,
        decode_every: cfg.decode_every,
        source_ips: cfg.source_ips.iter().map(ToString::to_string).collect(),
        connect_rate: cfg.connect_rate,
        ramp_secs: cfg.ramp().as_secs_f64(),
        warmup_secs: cfg.warmup.as_secs_f64(),
        duration_secs: cfg.duration.as_secs_f64(),
    };
    let progress = cfg.progress;
    // A little time for the cores to start before client 0's slot.
    let plan = Arc::new(Plan::new(cfg, target, Instant::now() + Duration::from_millis(200)));
    let live = Arc::new(Live::new(cores));
    let finished = Arc::new(AtomicUsize::new(0));

    let mut handles = Vec::with_capacity(cores);
    for k in 0..cores {
        let cpu = cpus[k % cpus.len()];
        let (plan, live, finished) = (plan.clone(), live.clone(), finished.clone());
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{k}"))
            .spawn(move || {
                // Counted on the way out however the core ends, a panic
                // included, so the watching thread never waits forever.
                let _done = Finished(finished);
                pin(cpu)
                    .and_then(|()| Core::new(k, plan, live))
                    .and_then(Core::run)
                    .map_err(|e| format!("core {k} on CPU {cpu}: {e}"))
            })
            .map_err(|e| LoadError::Executor(format!("core {k}: {e}")))?;
        handles.push(handle);
    }

    let watched = watch(&plan, &live, &finished, cores, progress);

    let mut total = CoreStats::new();
    for (k, h) in handles.into_iter().enumerate() {
        let stats = h.join().map_err(|_| LoadError::Executor(format!("core {k} panicked")))?;
        total.merge(&stats.map_err(LoadError::Executor)?);
    }
    let measured = plan.measure_end.saturating_duration_since(plan.measure_start).as_secs_f64();
    Ok(Report::build(total, params, machine, measured, watched.cost, watched.intervals))
}

/// Counts a core as finished when dropped.
struct Finished(Arc<AtomicUsize>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Pins the calling thread to `cpu` and asks for precise timer wake-ups
/// (the default 50 µs slack would be part of every input's lag).
fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the size matches the set.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: PR_SET_TIMERSLACK takes a plain value (ns).
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    Ok(())
}

/// Raises the soft limit of open files to the hard one (one socket per client).
fn raise_nofile() {
    // SAFETY: a zeroed rlimit is valid; getrlimit fills it.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 && rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max;
        // SAFETY: valid pointer; failure leaves the old limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    }
}

/// The CPUs this process may run on (its affinity mask), in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the size matches the set.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    let cpus: Vec<usize> = if rc == 0 {
        // SAFETY: CPU_ISSET reads within the set.
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
    } else {
        Vec::new()
    };
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

/// The process's user+system CPU seconds so far.
fn cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// What the watching thread saw.
struct Watched {
    intervals: Vec<Interval>,
    cost: SelfCost,
}

/// Draws the progress bar, records the per-second intervals and the
/// loadgen's CPU and ring calls over the measured window, until every core
/// is done. The cost covers the part of the window the cores ran (all
/// clients may end early).
fn watch(plan: &Plan, live: &Live, finished: &AtomicUsize, cores: usize, progress: bool) -> Watched {
    let total = plan.measure_end + CLOSE_GRACE - plan.t0;
    let bar = if progress {
        let bar = ProgressBar::new(total.as_millis() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30.cyan/blue} {elapsed:>4} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let sample =
        |now: Instant| (cpu_seconds(), Live::sum(&live.ticks), Live::sum(&live.enters), Live::sum(&live.sqes), now);
    let mut intervals = Vec::new();
    let mut last_ticks = 0;
    let mut last = Instant::now();
    let mut start = None;
    let mut end = None;
    while finished.load(Ordering::Acquire) < cores {
        // Wake at the window's edges, so its CPU seconds are exact to a few ms.
        let now = Instant::now();
        let edge = [plan.measure_start, plan.measure_end].into_iter().find(|&t| t > now);
        let nap = edge.map_or(Duration::from_millis(100), |t| (t - now).min(Duration::from_millis(100)));
        std::thread::sleep(nap);
        let now = Instant::now();
        if start.is_none() && now >= plan.measure_start {
            start = Some(sample(now));
        }
        if end.is_none() && now >= plan.measure_end {
            end = Some(sample(now));
        }
        if now - last < Duration::from_secs(1) {
            continue;
        }
        let ticks = Live::sum(&live.ticks);
        let rate = (ticks - last_ticks) as f64 / (now - last).as_secs_f64();
        (last_ticks, last) = (ticks, now);
        let phase = if now < plan.t0 + plan.cfg.ramp() {
            "ramp"
        } else if now < plan.measure_start {
            "warmup"
        } else if now < plan.measure_end {
            "measure"
        } else {
            "close"
        };
        let interval = Interval {
            t_secs: now.saturating_duration_since(plan.t0).as_secs_f64(),
            phase,
            clients: live.clients.load(Ordering::Relaxed),
            ticks_per_sec: rate,
            p99_us: live.p99_us(),
            errors: live.errors.load(Ordering::Relaxed),
        };
        bar.set_position(now.saturating_duration_since(plan.t0).as_millis() as u64);
        bar.set_message(format!(
            "{:<7} clients {}/{}  ticks/s {:.0}  p99 (last 1 s) {:.2} ms  errors {}",
            interval.phase,
            interval.clients,
            plan.cfg.clients,
            interval.ticks_per_sec,
            interval.p99_us as f64 / 1000.0,
            interval.errors
        ));
        intervals.push(interval);
    }
    bar.finish_and_clear();
    let end = end.unwrap_or_else(|| sample(Instant::now()));
    let cost = match start {
        Some(start) if end.4 > start.4 => {
            let secs = (end.4 - start.4).as_secs_f64();
            let ticks = (end.1 - start.1).max(1) as f64;
            SelfCost {
                cpu_cores: (end.0 - start.0) / secs,
                cpu_us_per_client_tick: (end.0 - start.0) * 1e6 / ticks,
                enters_per_client_tick: (end.2 - start.2) as f64 / ticks,
                sqes_per_client_tick: (end.3 - start.3) as f64 / ticks,
            }
        }
        _ => SelfCost::default(),
    };
    Watched { intervals, cost }
}
