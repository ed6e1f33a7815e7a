//! tickforge's load generator: simulated arena players over real WebSocket
//! connections, measuring the figures of WORKLOAD.md (tick and input
//! latency, bytes per client-tick against full state, missed ticks, errors).
//!
//! # Layout
//! - [`config`]: [`LoadConfig`], what one run simulates.
//! - [`scenario`]: the arena input pattern, a pure function of client index
//!   and input seq.
//! - `net`: URL, bind-before-connect sockets, the pre-run probe.
//! - `client`: one simulated player driving a `protocol::ClientSession`.
//! - [`stats`]: per-core HdrHistograms and counters, merged at the end.
//! - [`report`]: [`Report`]: JSON, table, `.hgrm`, SVG plot.
//!
//! Thread-per-core: `cores` glommio executors, each pinned to one CPU of
//! the process's affinity mask, own whole rooms' worth of clients (a room's
//! clients share a core so its first client can hand the room id to the
//! others without locks). The calling thread only draws progress.
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
mod net;

pub use config::LoadConfig;
pub use report::Report;

use client::{Core, Plan};
use glommio::{LocalExecutorBuilder, Placement};
use indicatif::{ProgressBar, ProgressStyle};
use report::{Interval, Machine, Params};
use stats::{CoreStats, Live};
use std::net::SocketAddr;
use std::rc::Rc;
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
    let target = net::Target::parse(&cfg.url)?;
    net::probe(&target, cfg.format, cfg.handshake_timeout.max(cfg.connect_timeout))?;
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
        source_ips: cfg.source_ips.iter().map(ToString::to_string).collect(),
        connect_rate: cfg.connect_rate,
        ramp_secs: cfg.ramp().as_secs_f64(),
        warmup_secs: cfg.warmup.as_secs_f64(),
        duration_secs: cfg.duration.as_secs_f64(),
    };
    let progress = cfg.progress;
    let spin = cfg.spin_before_park;
    // A little time for the executors to start before client 0's slot.
    let plan = Arc::new(Plan::new(cfg, target, Instant::now() + Duration::from_millis(200)));
    let live = Arc::new(Live::new(cores));
    let finished = Arc::new(AtomicUsize::new(0));

    let mut handles = Vec::with_capacity(cores);
    for k in 0..cores {
        let cpu = cpus[k % cpus.len()];
        let (plan, live, finished) = (plan.clone(), live.clone(), finished.clone());
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(cpu)).name(&format!("loadgen-{k}"));
        if !spin.is_zero() {
            builder = builder.spin_before_park(spin);
        }
        let handle = builder
            .spawn(move || async move {
                let stats = core_main(k, plan, live).await;
                finished.fetch_add(1, Ordering::Release);
                stats
            })
            .map_err(|e| LoadError::Executor(format!("core {k} on CPU {cpu}: {e}")))?;
        handles.push(handle);
    }

    let (intervals, cpu_cores) = watch(&plan, &live, &finished, cores, progress);

    let mut total = CoreStats::new();
    for (k, h) in handles.into_iter().enumerate() {
        let stats = h.join().map_err(|e| LoadError::Executor(format!("core {k}: {e}")))?;
        total.merge(&stats);
    }
    let measured = plan.measure_end.saturating_duration_since(plan.measure_start).as_secs_f64();
    Ok(Report::build(total, params, machine, measured, cpu_cores, intervals))
}

/// One core: spawns its clients, publishes its recent p99 every second,
/// and returns its figures once every client is done.
async fn core_main(k: usize, plan: Arc<Plan>, live: Arc<Live>) -> CoreStats {
    let cfg = &plan.cfg;
    let (cores, ppr, clients) = (cfg.cores, cfg.players_per_room, cfg.clients);
    let core = Rc::new(Core::new(k, plan.clone(), live));
    let publisher = core.clone();
    glommio::spawn_local(async move {
        while !publisher.done.get() {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            let mut recent = publisher.recent.borrow_mut();
            let p99 = if recent.is_empty() { 0 } else { recent.value_at_quantile(0.99) };
            publisher.live.p99_us[publisher.index].store(p99, Ordering::Relaxed);
            recent.reset();
        }
    })
    .detach();
    let groups = clients.div_ceil(ppr);
    let mut tasks = Vec::new();
    for group in (k..groups).step_by(cores) {
        for index in group * ppr..((group + 1) * ppr).min(clients) {
            let core = core.clone();
            tasks.push(glommio::spawn_local(async move { client::run(&core, index).await }));
        }
    }
    for t in tasks {
        t.await;
    }
    core.done.set(true);
    core.stats.replace(CoreStats::new())
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

/// Draws the progress bar, records the per-second intervals and the
/// loadgen's CPU over the measured window, until every core is done.
/// Returns the intervals and the loadgen's CPU use in cores over the part of
/// the measured window it ran (all clients may end early).
fn watch(plan: &Plan, live: &Live, finished: &AtomicUsize, cores: usize, progress: bool) -> (Vec<Interval>, f64) {
    let total = plan.measure_end + client::CLOSE_GRACE - plan.t0;
    let bar = if progress {
        let bar = ProgressBar::new(total.as_millis() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30.cyan/blue} {elapsed:>4} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut intervals = Vec::new();
    let mut last_ticks = 0;
    let mut last = Instant::now();
    let mut cpu_start = None;
    let mut cpu_end = None;
    while finished.load(Ordering::Acquire) < cores {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        if cpu_start.is_none() && now >= plan.measure_start {
            cpu_start = Some((cpu_seconds(), now));
        }
        if cpu_end.is_none() && now >= plan.measure_end {
            cpu_end = Some((cpu_seconds(), now));
        }
        if now - last < Duration::from_secs(1) {
            continue;
        }
        let ticks = live.ticks.load(Ordering::Relaxed);
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
    let (end, end_at) = cpu_end.unwrap_or_else(|| (cpu_seconds(), Instant::now()));
    let cores_used = match cpu_start {
        Some((start, start_at)) if end_at > start_at => (end - start) / (end_at - start_at).as_secs_f64(),
        _ => 0.0,
    };
    (intervals, cores_used)
}
