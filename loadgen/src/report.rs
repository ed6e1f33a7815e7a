//! The run's figures: the [`Report`] (serde JSON), the human table, the
//! `.hgrm` percentile distributions and the SVG latency-by-percentile plot.

use crate::stats::{CoreStats, Errors};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// A latency figure's percentiles, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Smallest sample.
    pub min: u64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Largest sample.
    pub max: u64,
}

impl Latency {
    /// The percentiles of `h`.
    #[must_use]
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean(),
            min: h.min(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// The run's parameters, as given.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Params {
    /// Server URL.
    pub url: String,
    /// Simulated clients.
    pub clients: usize,
    /// Players per room.
    pub players_per_room: usize,
    /// Inputs per second per client.
    pub input_hz: u32,
    /// Tick rate asked for (`null`: the server's default).
    pub tick_hz: Option<u32>,
    /// Game.
    pub game: String,
    /// Subprotocol.
    pub subprotocol: &'static str,
    /// Loadgen core threads.
    pub cores: usize,
    /// One client in this many (by index) rebuilt the state from every tick.
    pub decode_every: usize,
    /// Source addresses.
    pub source_ips: Vec<String>,
    /// Connects per second during the ramp-up.
    pub connect_rate: f64,
    /// Ramp-up, s.
    pub ramp_secs: f64,
    /// Warm-up, s.
    pub warmup_secs: f64,
    /// Measured time, s.
    pub duration_secs: f64,
}

/// Where the run ran.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Machine {
    /// Online CPUs.
    pub nproc: usize,
    /// CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Start of the run, UTC, ISO 8601.
    pub date: String,
}

impl Machine {
    /// This machine, now.
    #[must_use]
    pub fn current() -> Self {
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().into())
            })
            .unwrap_or_default();
        Self {
            nproc: usize::try_from(online).unwrap_or(0),
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().into(),
            date: utc_now(),
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
#[must_use]
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc(secs)
}

fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// One second of the run, as the progress bar saw it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Interval {
    /// Seconds since the first connect.
    pub t_secs: f64,
    /// `ramp`, `warmup`, `measure` or `close`.
    pub phase: &'static str,
    /// Clients in a room.
    pub clients: u64,
    /// State messages received per second.
    pub ticks_per_sec: f64,
    /// The worst core's tick-latency p99 over the last second, µs.
    pub p99_us: u64,
    /// Errors so far.
    pub errors: u64,
}

/// Client counts.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Clients {
    /// Asked for.
    pub target: usize,
    /// Connected (handshake done).
    pub connected: u64,
    /// Joined a room.
    pub joined: u64,
    /// Still in their room at the end of the measured window.
    pub completed: u64,
    /// Joins answered with a `redirect` to another node of a cluster, and
    /// followed.
    pub redirected: u64,
}

/// What the loadgen itself cost over the measured window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct SelfCost {
    /// CPU (user + system, the whole process) in cores.
    pub cpu_cores: f64,
    /// CPU per state message received, µs: the figure to hold against the
    /// floor's client side (`limit duplex-paced`'s `rcv_cpu` per client-tick).
    pub cpu_us_per_client_tick: f64,
    /// `io_uring_enter` calls per state message.
    pub enters_per_client_tick: f64,
    /// Ring operations submitted per state message (one receive and one
    /// send per client and input period in the steady state).
    pub sqes_per_client_tick: f64,
}

/// Everything one run measured (WORKLOAD.md's figures), plus the run's
/// parameters and machine. Serializes to the `--json` report.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The loadgen's version.
    pub version: &'static str,
    /// The command line, when the binary sets it.
    pub command: Option<String>,
    /// The parameters.
    pub params: Params,
    /// The machine.
    pub machine: Machine,
    /// Client counts.
    pub clients: Clients,
    /// The measured window, s.
    pub measured_secs: f64,
    /// State messages received in the measured window.
    pub state_messages: u64,
    /// State messages per second.
    pub ticks_per_sec: f64,
    /// Arrival minus the tick's `server_time_us`, µs. Arrival is the
    /// kernel's receive timestamp of the read that completed the message
    /// (wall clock, as the bytes reached this host's network stack), not
    /// when the loadgen read them.
    pub tick_latency_us: Latency,
    /// From each input slot's due time (open loop) to the arrival of the
    /// first tick including it, µs: one sample per slot, none added.
    pub input_latency_us: Latency,
    /// Connect start until the WebSocket is open, µs (whole run).
    pub handshake_latency_us: Latency,
    /// Room request until `joined` on the node the client reached, µs.
    pub join_latency_us: Latency,
    /// Room request until `joined` through a redirect (the new
    /// connection, its handshake and the reserved join included), µs.
    pub join_redirected_latency_us: Latency,
    /// How late the loadgen served its input slots, µs: its own scheduling
    /// delay, part of the input latency of those slots (not of the tick
    /// latency, which is stamped by the kernel).
    pub loadgen_lag_us: Latency,
    /// WebSocket bytes received (frame headers and every message included)
    /// per state message.
    pub bytes_per_client_tick: f64,
    /// State message payload bytes (no frame header) per state message.
    pub payload_bytes_per_tick: f64,
    /// Mean payload of the sampled state messages had they carried the
    /// full state (no baseline).
    pub full_state_bytes: f64,
    /// Samples behind `full_state_bytes` (decoding clients only).
    pub full_state_samples: u64,
    /// Payload to payload: the sampled messages' real payload bytes over
    /// what the same messages would be with the full state (WebSocket
    /// frame headers and other messages left out of both).
    pub delta_ratio: f64,
    /// Gaps in the tick numbers clients saw.
    pub missed_ticks: u64,
    /// State messages timed with a later message's receive timestamp (two
    /// or more in one read: their latency is overstated by at most the gap
    /// between them).
    pub ticks_shared_stamp: u64,
    /// For those, the most their latency can be overstated, µs: the time
    /// from the read before (which did not find them) to the stamp.
    pub shared_stamp_bound_us: Latency,
    /// State messages that came without a kernel timestamp (timed when read).
    pub ticks_unstamped: u64,
    /// Of those, the ones whose latency may be overstated by over 1 ms.
    pub shared_over_1ms: u64,
    /// Input slots due in the measured window and served.
    pub input_slots: u64,
    /// Input frames sent for them.
    pub inputs_sent: u64,
    /// Slots the loadgen woke more than one input period late for: covered
    /// by a later slot's frame, still timed from their own due time.
    pub inputs_late: u64,
    /// Slots due in the window that no tick answered before the client stopped.
    pub inputs_unanswered: u64,
    /// Clients that rebuilt the state from every tick (the others read
    /// tick headers only).
    pub decoding_clients: u64,
    /// `--reconnect-every`: what the drops and resumes did (whole run).
    pub reconnects: Reconnects,
    /// Errors by kind.
    pub errors: Errors,
    /// All errors.
    pub errors_total: u64,
    /// The loadgen's own CPU use over the measured window, in cores (as
    /// `loadgen_cost.cpu_cores`).
    pub loadgen_cpu_cores: f64,
    /// The loadgen's own cost over the measured window.
    pub loadgen_cost: SelfCost,
    /// Why the loadgen, not the server, limited this run's figures (empty:
    /// it did not): its CPU saturated, its lag, slots it could not keep,
    /// state messages it could not time alone.
    pub loadgen_limits: Vec<String>,
    /// Per-second series.
    pub intervals: Vec<Interval>,
    /// The merged histograms, for `.hgrm` and plots.
    #[serde(skip)]
    pub histograms: Histograms,
}

/// What `--reconnect-every` did over the whole run.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct Reconnects {
    /// Sockets dropped (no close frame).
    pub drops: u64,
    /// Seats taken back with `resume`.
    pub resumes: u64,
    /// From a drop to the first tick after its resume, µs (a new TCP
    /// connection, the handshake, `resume`, `joined`, the full state).
    pub resume_latency_us: Latency,
    /// Resumes refused (`rej`); each also ends its client, counted in errors.
    pub refused: u64,
    /// Delta errors on clients after one of their resumes: a rebuilt state
    /// that did not stay exact (decoding clients).
    pub state_errors_after_resume: u64,
    /// Input slots that fell due while a client was disconnected (skipped,
    /// not sent nor timed).
    pub slots_skipped: u64,
}

/// The merged latency histograms (µs).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Histograms {
    /// Tick latency.
    pub tick: Histogram<u64>,
    /// Input latency (from the slots).
    pub input: Histogram<u64>,
    /// Handshake latency.
    pub handshake: Histogram<u64>,
}

impl Report {
    pub(crate) fn build(
        stats: CoreStats,
        params: Params,
        machine: Machine,
        measured_secs: f64,
        cost: SelfCost,
        intervals: Vec<Interval>,
    ) -> Self {
        let per_tick = |bytes: u64| if stats.state_msgs == 0 { 0.0 } else { bytes as f64 / stats.state_msgs as f64 };
        let full_state_bytes = if stats.full_state.is_empty() { 0.0 } else { stats.full_state.mean() };
        let delta_ratio = if stats.full_state_sum == 0 {
            0.0
        } else {
            stats.full_state_payload_bytes as f64 / stats.full_state_sum as f64
        };
        let mut report = Self {
            version: env!("CARGO_PKG_VERSION"),
            command: None,
            clients: Clients {
                target: params.clients,
                connected: stats.connected,
                joined: stats.joined,
                completed: stats.completed,
                redirected: stats.redirected,
            },
            params,
            machine,
            measured_secs,
            state_messages: stats.state_msgs,
            ticks_per_sec: if measured_secs > 0.0 { stats.state_msgs as f64 / measured_secs } else { 0.0 },
            tick_latency_us: Latency::of(&stats.tick_latency),
            input_latency_us: Latency::of(&stats.input_latency),
            handshake_latency_us: Latency::of(&stats.handshake_latency),
            join_latency_us: Latency::of(&stats.join_latency),
            join_redirected_latency_us: Latency::of(&stats.join_latency_redirected),
            loadgen_lag_us: Latency::of(&stats.loadgen_lag),
            bytes_per_client_tick: per_tick(stats.ws_bytes),
            payload_bytes_per_tick: per_tick(stats.state_payload_bytes),
            full_state_bytes,
            full_state_samples: stats.full_state.len(),
            delta_ratio,
            missed_ticks: stats.missed_ticks,
            ticks_shared_stamp: stats.ticks_shared_stamp,
            shared_stamp_bound_us: Latency::of(&stats.shared_stamp_bound),
            shared_over_1ms: stats.shared_stamp_bound.count_between(1001, u64::MAX),
            ticks_unstamped: stats.ticks_unstamped,
            input_slots: stats.input_slots,
            inputs_sent: stats.inputs_sent,
            inputs_late: stats.inputs_late,
            inputs_unanswered: stats.inputs_unanswered,
            decoding_clients: stats.decoders,
            reconnects: Reconnects {
                drops: stats.drops,
                resumes: stats.resumes,
                resume_latency_us: Latency::of(&stats.resume_latency),
                refused: stats.resumes_refused,
                state_errors_after_resume: stats.state_errors_after_resume,
                slots_skipped: stats.slots_skipped_by_drops,
            },
            errors_total: stats.errors.total(),
            errors: stats.errors,
            loadgen_cpu_cores: cost.cpu_cores,
            loadgen_cost: cost,
            loadgen_limits: Vec::new(),
            intervals,
            histograms: Histograms {
                tick: stats.tick_latency,
                input: stats.input_latency,
                handshake: stats.handshake_latency,
            },
        };
        report.loadgen_limits = report.limits();
        report
    }

    /// Why the loadgen limited this run, by the rules the field docs give:
    /// its CPU at 90 % or more of its cores; its lag p99 over a tenth of
    /// the input period; more than 1 % of the slots served a period late,
    /// or of the state messages timed with a shared timestamp that may be
    /// over 1 ms late (enough to move a p99); any state message without a
    /// timestamp.
    fn limits(&self) -> Vec<String> {
        let mut why = Vec::new();
        let cores = self.params.cores as f64;
        if self.loadgen_cost.cpu_cores >= 0.9 * cores {
            why.push(format!(
                "its CPU was saturated ({:.2} of {} cores)",
                self.loadgen_cost.cpu_cores, self.params.cores
            ));
        }
        let period_us = 1e6 / f64::from(self.params.input_hz.max(1));
        let lag = self.loadgen_lag_us.p99 as f64;
        if lag > period_us / 10.0 {
            why.push(format!(
                "its lag p99 ({:.2} ms) is over a tenth of the input period: input latency includes it",
                lag / 1000.0
            ));
        }
        // Enough to move a p99.
        let percent = |n: u64, of: u64| of > 0 && n * 100 > of;
        if percent(self.inputs_late, self.input_slots) {
            why.push(format!(
                "{} of {} input slots were served over a period late",
                self.inputs_late, self.input_slots
            ));
        }
        if percent(self.shared_over_1ms, self.state_messages) {
            why.push(format!(
                "{} of {} state messages were timed with a later message's timestamp, up to {:.2} ms late",
                self.shared_over_1ms,
                self.state_messages,
                self.shared_stamp_bound_us.max as f64 / 1000.0
            ));
        }
        if self.ticks_unstamped > 0 {
            why.push(format!("{} state messages had no kernel timestamp (timed when read)", self.ticks_unstamped));
        }
        why
    }

    /// The human table.
    #[must_use]
    pub fn table(&self) -> String {
        let p = &self.params;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "tickforge-loadgen {}: {} clients ({} per room), {} Hz inputs, {}, {} s measured after {:.1} s ramp + {} s warm-up",
            self.version,
            p.clients,
            p.players_per_room,
            p.input_hz,
            p.subprotocol,
            p.duration_secs,
            p.ramp_secs,
            p.warmup_secs
        );
        let _ = writeln!(
            s,
            "clients: {} connected, {} joined ({} redirected), {} to the end",
            self.clients.connected, self.clients.joined, self.clients.redirected, self.clients.completed
        );
        let _ = writeln!(
            s,
            "{:<22}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "latency (ms)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "count"
        );
        for (name, l) in [
            ("tick", &self.tick_latency_us),
            ("input (from its slot)", &self.input_latency_us),
            ("handshake", &self.handshake_latency_us),
            ("join", &self.join_latency_us),
            ("join (redirected)", &self.join_redirected_latency_us),
            ("loadgen lag", &self.loadgen_lag_us),
        ] {
            let ms = |v: u64| v as f64 / 1000.0;
            let _ = writeln!(
                s,
                "{name:<22}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p99_9),
                ms(l.p99_99),
                ms(l.max),
                l.count
            );
        }
        let _ = writeln!(
            s,
            "state messages: {} ({:.0}/s), missed ticks: {}",
            self.state_messages, self.ticks_per_sec, self.missed_ticks
        );
        let _ = writeln!(
            s,
            "bytes per client-tick: {:.1} (payload {:.1}); full state: {:.1} bytes; delta ratio: {:.1} %",
            self.bytes_per_client_tick,
            self.payload_bytes_per_tick,
            self.full_state_bytes,
            self.delta_ratio * 100.0
        );
        let e = &self.errors;
        let _ = writeln!(
            s,
            "errors: {} total: connect {}, handshake refused {:?}, handshake failed {}, join failed {:?}, unexpected close {:?}, protocol {}, delta {}",
            self.errors_total,
            e.connect,
            e.handshake_refused,
            e.handshake_failed,
            e.join_failed,
            e.unexpected_close,
            e.protocol,
            e.delta
        );
        let _ = writeln!(
            s,
            "inputs: {} slots, {} frames sent, {} slots late, {} unanswered; state messages timed with a shared timestamp {} ({} possibly over 1 ms late, at most {:.2} ms), without one {}",
            self.input_slots,
            self.inputs_sent,
            self.inputs_late,
            self.inputs_unanswered,
            self.ticks_shared_stamp,
            self.shared_over_1ms,
            self.shared_stamp_bound_us.max as f64 / 1000.0,
            self.ticks_unstamped
        );
        let r = &self.reconnects;
        if r.drops > 0 {
            let l = &r.resume_latency_us;
            let _ = writeln!(
                s,
                "reconnects: {} drops, {} resumed ({} refused); resume latency (drop to first tick) ms: p50 {:.3}, p99 {:.3}, max {:.3}; state errors after a resume: {}; {} input slots skipped while disconnected",
                r.drops,
                r.resumes,
                r.refused,
                l.p50 as f64 / 1000.0,
                l.p99 as f64 / 1000.0,
                l.max as f64 / 1000.0,
                r.state_errors_after_resume,
                r.slots_skipped
            );
        }
        let c = &self.loadgen_cost;
        let _ = writeln!(
            s,
            "loadgen: CPU {:.2} of {} core(s), {:.2} us per client-tick ({:.2} enters, {:.2} ring ops); {} of {} clients decoded every tick (--decode-every {})",
            c.cpu_cores,
            p.cores,
            c.cpu_us_per_client_tick,
            c.enters_per_client_tick,
            c.sqes_per_client_tick,
            self.decoding_clients,
            self.clients.joined,
            p.decode_every
        );
        if self.loadgen_limits.is_empty() {
            let _ = writeln!(s, "loadgen limit: no (its CPU, lag and timestamps left the figures to the server)");
        } else {
            let _ = writeln!(s, "LOADGEN WAS THE LIMIT of this run: {}", self.loadgen_limits.join("; "));
        }
        s
    }

    /// Writes the JSON report.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Writes the tick latency's percentile distribution to `path` and the
    /// input latency's beside it (`NAME-input.hgrm`), in HdrHistogram's
    /// `.hgrm` text form, values in milliseconds.
    ///
    /// # Errors
    /// A file could not be written.
    pub fn write_hgrm(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let input_path = sibling(path, "-input");
        std::fs::write(path, hgrm(&self.histograms.tick))?;
        std::fs::write(&input_path, hgrm(&self.histograms.input))?;
        Ok(vec![path.to_path_buf(), input_path])
    }

    /// Plots tick and input latency by percentile (log x axis) as SVG.
    ///
    /// # Errors
    /// The plot could not be drawn or written.
    pub fn write_plot(&self, path: &Path) -> io::Result<()> {
        let title = format!(
            "tickforge: {} clients, {} Hz, {}",
            self.params.clients, self.params.input_hz, self.params.subprotocol
        );
        plot(path, &title, &[("tick latency", &self.histograms.tick), ("input latency", &self.histograms.input)])
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

/// `dir/stem{suffix}.ext` for `dir/stem.ext`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}{suffix}"),
    };
    path.with_file_name(name)
}

/// HdrHistogram's percentile distribution text, values µs -> ms.
#[must_use]
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 { format!("{:>14.2}", 1.0 / (1.0 - q)) } else { String::new() };
            let _ = writeln!(s, "{:>12.3} {:>14.12} {:>10} {inv}", v.value_iterated_to() as f64 / 1000.0, q, total);
        }
    }
    let mean = if h.is_empty() { 0.0 } else { h.mean() / 1000.0 };
    let stdev = if h.is_empty() { 0.0 } else { h.stdev() / 1000.0 };
    let _ = writeln!(s, "#[Mean    = {mean:>12.3}, StdDeviation   = {stdev:>12.3}]");
    let _ = writeln!(s, "#[Max     = {:>12.3}, Total count    = {:>12}]", h.max() as f64 / 1000.0, h.len());
    let _ = writeln!(s, "#[Buckets = {:>12}, SubBuckets     = {:>12}]", h.buckets(), h.distinct_values());
    s
}

/// Draws latency (ms) by percentile, log x axis (1/(1-q)), one line per
/// histogram, as SVG.
///
/// # Errors
/// The drawing or the file failed.
pub fn plot(path: &Path, title: &str, series: &[(&str, &Histogram<u64>)]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    const X_MAX: f64 = 100_000.0;
    let lines: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, h)| {
            let points = if h.is_empty() {
                Vec::new()
            } else {
                h.iter_quantiles(5)
                    .map(|v| {
                        (1.0 / (1.0 - v.quantile_iterated_to()).max(1.0 / X_MAX), v.value_iterated_to() as f64 / 1000.0)
                    })
                    .collect()
            };
            (*name, points)
        })
        .collect();
    let y_max = lines.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)).fold(0.1_f64, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1.0..X_MAX).log_scale(), 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 1.0 / x);
            if p < 99.0 {
                format!("{p:.0}%")
            } else {
                format!("{}%", format!("{p:.4}").trim_end_matches('0').trim_end_matches('.'))
            }
        })
        .draw()?;
    let colors = [RED, BLUE, GREEN, MAGENTA];
    for (i, (name, points)) in lines.into_iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_763_740_800), "2025-11-21T16:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn hgrm_ends_at_the_max() {
        let mut h = crate::stats::histogram();
        for v in 1..=1000 {
            h.record(v * 10).unwrap();
        }
        let text = hgrm(&h);
        assert!(text.contains("Total count    =         1000]"), "{text}");
        assert!(text.lines().filter(|l| l.contains("1.000000000000")).count() == 1, "{text}");
    }

    #[test]
    fn siblings() {
        assert_eq!(sibling(Path::new("a/run.hgrm"), "-input"), PathBuf::from("a/run-input.hgrm"));
        assert_eq!(sibling(Path::new("run"), "-input"), PathBuf::from("run-input"));
    }

    #[test]
    fn a_plot_is_an_svg() {
        let mut h = crate::stats::histogram();
        for v in 1..=10_000 {
            h.record(v).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("tickforge-loadgen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        plot(&path, "test", &[("tick latency", &h), ("empty", &crate::stats::histogram())]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("tick latency"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
