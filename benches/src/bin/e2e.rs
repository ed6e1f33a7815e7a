//! The end-to-end benchmark: a real `tickforge --shards 1` pinned to one
//! CPU, `tickforge-loadgen --cores 1` pinned to another, as separate
//! processes, over a matrix of client counts; writes the "End-to-end"
//! section of BENCHMARKS.md and the per-scenario JSON reports and SVG plots
//! in benches/results/.
//!
//! It builds nothing: run `cargo build --release -p tickforge-server -p
//! tickforge-loadgen` first. Then, from the repository root:
//!
//! ```text
//! cargo run --release -p tickforge-benches --bin e2e                # the full matrix (~20 min)
//! cargo run --release -p tickforge-benches --bin e2e -- --quick     # 500 and 1,000 clients, 5 s each
//! cargo run --release -p tickforge-benches --bin e2e -- --clients 2500,5000 --json-clients none \
//!     --duration 10s --warmup 2s --no-write
//! ```
//!
//! Per scenario: the server starts on a free port (`taskset -c 0`,
//! `--no-pin` so its shard stays on that CPU, connection and room limits
//! raised to fit the scenario), the loadgen runs (`taskset -c 1`), the
//! runner samples the server's CPU seconds (utime+stime of /proc/PID/stat)
//! and the messages it sent (`tickforge_messages_out_total` of /metrics)
//! over the loadgen's measured window but its last part (a quarter, 1 to
//! 5 s, at most half), then its
//! kernel crossings (`perf stat -e raw_syscalls:sys_enter,
//! io_uring:io_uring_submit_req -p PID`) over that part (perf attached
//! costs CPU), and its RSS (VmRSS), then stops the server with SIGTERM. Right
//! after each row it runs the floor (`../shared/tools/limit duplex-paced`,
//! built with `cargo build --release --manifest-path
//! ../shared/tools/limit/Cargo.toml --target-dir target/limit`) at the same
//! client count on the same CPUs, so each row's costs per client-tick are
//! also given as ratios to the floor measured in the same window. Every
//! scenario is bounded in time.
//!
//! When README.md holds the markers `<!-- figures:begin -->` and
//! `<!-- figures:end -->`, the summary table between them is rewritten
//! from the same run, so the README and BENCHMARKS.md never disagree.

use anyhow::{bail, Context as _, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BEGIN: &str = "<!-- e2e:begin (written by benches/src/bin/e2e.rs) -->";
const END: &str = "<!-- e2e:end -->";
const README_BEGIN: &str = "<!-- figures:begin -->";
const README_END: &str = "<!-- figures:end -->";

#[derive(Debug, Clone)]
struct Opts {
    clients: Vec<usize>,
    json_clients: Vec<usize>,
    /// Client counts run again over TLS (`wss://`, the server on
    /// `--tls-self-signed`, the loadgen `--insecure`), binary form.
    wss_clients: Vec<usize>,
    duration_s: f64,
    warmup_s: f64,
    connect_rate: f64,
    players_per_room: usize,
    server_cpu: String,
    loadgen_cpu: String,
    source_ips: String,
    /// Niceness of both processes (negative: ahead of concurrent builds on
    /// a shared host); `None` = inherit.
    nice: Option<i32>,
    bin_dir: PathBuf,
    out: PathBuf,
    results: PathBuf,
    write: bool,
    /// The floor's binary; `None`: no floor runs.
    limit_bin: Option<PathBuf>,
    /// Seconds the floor measures each client count.
    floor_secs: f64,
    /// The README whose figures table follows the run.
    readme: PathBuf,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            clients: vec![500, 1_000, 2_000, 3_000, 4_000, 6_000, 8_000],
            json_clients: vec![1_000],
            wss_clients: Vec::new(),
            duration_s: 30.0,
            warmup_s: 5.0,
            connect_rate: 1_000.0,
            players_per_room: 8,
            server_cpu: "0".into(),
            loadgen_cpu: "1".into(),
            source_ips: "127.0.0.1-127.0.0.8".into(),
            nice: Some(-10),
            bin_dir: "target/release".into(),
            out: "BENCHMARKS.md".into(),
            results: "benches/results".into(),
            write: true,
            limit_bin: Some("target/limit/release/limit".into()),
            floor_secs: 4.0,
            readme: "README.md".into(),
        }
    }
}

const USAGE: &str =
    "usage: e2e [--quick] [--clients N,N..] [--json-clients N,..|none] [--wss-clients N,..] [--duration SECS] \
[--warmup SECS] [--connect-rate N] [--server-cpu CPU] [--loadgen-cpu CPU] [--source-ips A-B|none] [--nice N|none] \
[--bin-dir DIR] [--out FILE] [--results DIR] [--no-write] [--limit-bin FILE|none] [--floor-secs SECS] \
[--readme FILE]";

fn parse_list(s: &str) -> Result<Vec<usize>> {
    if s == "none" {
        return Ok(Vec::new());
    }
    s.split(',').map(|n| n.trim().replace('_', "").parse().with_context(|| format!("{n:?} is not a count"))).collect()
}

fn parse_secs(s: &str) -> Result<f64> {
    let (n, scale) = match s.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (s.strip_suffix('s').unwrap_or(s), 1.0),
    };
    Ok(n.parse::<f64>().with_context(|| format!("{s:?} is not a duration"))? * scale)
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value; {USAGE}"));
        match a.as_str() {
            "--quick" => {
                o.clients = vec![500, 1_000];
                o.json_clients = vec![500];
                o.duration_s = 5.0;
                o.warmup_s = 1.0;
            }
            "--clients" => o.clients = parse_list(&val()?)?,
            "--json-clients" => o.json_clients = parse_list(&val()?)?,
            "--wss-clients" => o.wss_clients = parse_list(&val()?)?,
            "--duration" => o.duration_s = parse_secs(&val()?)?,
            "--warmup" => o.warmup_s = parse_secs(&val()?)?,
            "--connect-rate" => o.connect_rate = val()?.parse().context("--connect-rate")?,
            "--server-cpu" => o.server_cpu = val()?,
            "--loadgen-cpu" => o.loadgen_cpu = val()?,
            "--source-ips" => o.source_ips = val()?,
            "--nice" => {
                let v = val()?;
                o.nice = if v == "none" { None } else { Some(v.parse().context("--nice")?) };
            }
            "--bin-dir" => o.bin_dir = val()?.into(),
            "--out" => o.out = val()?.into(),
            "--results" => o.results = val()?.into(),
            "--no-write" => o.write = false,
            "--limit-bin" => {
                let v = val()?;
                o.limit_bin = if v == "none" { None } else { Some(v.into()) };
            }
            "--floor-secs" => o.floor_secs = parse_secs(&val()?)?,
            "--readme" => o.readme = val()?.into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    Ok(o)
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    clients: usize,
    form: &'static str,
    /// Over TLS (`wss://`).
    tls: bool,
}

impl Scenario {
    fn name(self) -> String {
        format!("e2e-{}-{}", self.clients, self.label().replace('+', "-"))
    }

    /// The form as the table shows it: `bin`, `json`, `bin+wss`.
    fn label(self) -> String {
        if self.tls {
            format!("{}+wss", self.form)
        } else {
            self.form.to_owned()
        }
    }
}

/// What one scenario measured.
#[derive(Debug)]
struct Outcome {
    scenario: Scenario,
    report: Value,
    server_cpu_cores: f64,
    rss_idle_kib: u64,
    rss_peak_kib: u64,
    server_cmd: String,
    loadgen_cmd: String,
    loadgen_status: i32,
    /// The host's 1-minute load average at the end of the measured window
    /// (other processes on the same CPUs distort every figure).
    load_avg: f64,
    /// How busy the server's CPU was (all processes), 0..1.
    server_cpu_busy: f64,
    /// How busy the loadgen's CPU was (all processes), 0..1.
    loadgen_cpu_busy: f64,
    /// Server CPU seconds over the window.
    server_cpu_secs: f64,
    /// Messages the server sent over the window (its /metrics), or the
    /// state messages the loadgen received when /metrics had no count.
    server_msgs: f64,
    /// Where `server_msgs` came from.
    server_msgs_from: &'static str,
    /// The server's syscalls plus io_uring submissions over the window's
    /// last part (after its CPU was read), or why perf could not count them.
    crossings: Result<f64, String>,
    /// Messages the server sent while perf counted.
    perf_msgs: f64,
    /// The floor at the same client count, right after the row.
    floor: Result<Floor, String>,
}

/// The floor (`limit duplex-paced`) at one client count.
#[derive(Debug, Clone)]
struct Floor {
    /// Its server's CPU per client-tick, µs.
    server_us: f64,
    /// Its client side's CPU per client-tick, µs.
    client_us: f64,
    /// CPU other processes took on its two CPUs meanwhile (0..1 each).
    other: (f64, f64),
    /// Every input and state frame arrived.
    valid: bool,
    /// The command.
    cmd: String,
}

impl Outcome {
    /// The server's CPU per message sent, µs.
    fn server_us(&self) -> f64 {
        self.server_cpu_secs * 1e6 / self.server_msgs
    }

    /// The loadgen's CPU per state message, µs (its own report).
    fn loadgen_us(&self) -> f64 {
        f(&self.report, &["loadgen_cost", "cpu_us_per_client_tick"])
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A whole answer to `GET path` (through TLS when `tls`: the server's own
/// self-signed certificate, taken unverified), read to the server's close.
fn get(port: u16, path: &str, tls: bool, timeout: Duration) -> Option<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(timeout));
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    if tls {
        let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
        let conn = rustls::ClientConnection::new(tickforge_benches::trust_all_tls_client(), name).ok()?;
        let mut s = rustls::StreamOwned::new(conn, s);
        s.write_all(request.as_bytes()).ok()?;
        let _ = s.read_to_string(&mut text);
    } else {
        let mut s = s;
        s.write_all(request.as_bytes()).ok()?;
        let _ = s.read_to_string(&mut text);
    }
    Some(text)
}

fn healthy(port: u16, tls: bool) -> bool {
    get(port, "/healthz", tls, Duration::from_millis(500)).is_some_and(|t| t.starts_with("HTTP/1.1 200"))
}

/// `tickforge_messages_out_total` from the server's /metrics.
fn messages_out(port: u16, tls: bool) -> Option<f64> {
    let text = get(port, "/metrics", tls, Duration::from_secs(2))?;
    text.lines().find_map(|l| l.strip_prefix("tickforge_messages_out_total ").and_then(|v| v.trim().parse().ok()))
}

/// The server's kernel crossings counted by a `perf stat` over the
/// window's last part: spawned here, read by [`crossings`].
fn start_perf(pid: u32, secs: f64, out: &Path) -> Result<Child, String> {
    let _ = std::fs::remove_file(out);
    Command::new("perf")
        .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter,io_uring:io_uring_submit_req", "-o"])
        .arg(out)
        .args(["-p", &pid.to_string(), "--", "sleep", &format!("{secs:.3}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("perf not runnable: {e}"))
}

/// The syscalls plus io_uring submissions `perf stat` counted, or why not.
fn crossings(perf: Result<Child, String>, out: &Path) -> Result<f64, String> {
    let child = perf?;
    let done = child.wait_with_output().map_err(|e| format!("perf: {e}"))?;
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut total = 0.0;
    let mut seen = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        match fields.first().map(|v| v.trim().parse::<f64>()) {
            Some(Ok(v)) => {
                total += v;
                seen += 1;
            }
            _ => return Err(format!("perf could not count ({})", line.trim())),
        }
    }
    if seen == 2 {
        Ok(total)
    } else {
        let err = String::from_utf8_lossy(&done.stderr);
        Err(format!("perf not permitted or not counting ({})", err.lines().next().unwrap_or("no output").trim()))
    }
}

/// Runs the floor at `n` clients on the rows' two CPUs (its own pinning
/// puts its server on CPU 0 and its client on CPU 1).
fn run_floor(o: &Opts, n: usize) -> Result<Floor, String> {
    let bin = o.limit_bin.as_ref().ok_or("no floor binary")?;
    if !bin.exists() {
        return Err(format!(
            "{} is missing: cargo build --release --manifest-path ../shared/tools/limit/Cargo.toml --target-dir target/limit",
            bin.display()
        ));
    }
    let args: Vec<String> = vec![
        "-c".into(),
        format!("{},{}", o.server_cpu, o.loadgen_cpu),
        bin.display().to_string(),
        "duplex-paced".into(),
        "--size".into(),
        "256".into(),
        "--steps".into(),
        n.to_string(),
        "--step-secs".into(),
        format!("{}", o.floor_secs),
    ];
    let (mut cmd, cmdline) = pinned(o.nice, &args);
    let child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(20));
    prioritize(child.id(), o.nice);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with('{')).ok_or_else(|| {
        format!("no result ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""))
    })?;
    let r: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let hz = f(&r, &["hz"]);
    Ok(Floor {
        server_us: f(&r, &["ns_per_msg_cpu"]) / 1000.0,
        client_us: f(&r, &["rcv_cpu"]) / (n as f64 * hz) * 1e6,
        other: (f(&r, &["cpu0_other"]), f(&r, &["cpu1_other"])),
        valid: r["valid"].as_bool().unwrap_or(false),
        cmd: cmdline,
    })
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32, hz: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / hz)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// `nice -n N setsid taskset ARGS` (or `taskset ARGS`): the program keeps
/// the spawned process's pid, as each execs the next. `setsid` gives it a
/// session of its own, so an autogroup of its own whose nice
/// [`prioritize`] can set: with autogroup scheduling, a process's nice only
/// counts within its session, and builds in other sessions would share the
/// CPU with it evenly whatever its nice.
fn pinned(nice: Option<i32>, args: &[String]) -> (Command, String) {
    let mut full: Vec<String> = Vec::new();
    if let Some(n) = nice {
        full.extend(["nice".into(), "-n".into(), n.to_string(), "setsid".into()]);
    }
    full.push("taskset".into());
    full.extend(args.iter().cloned());
    let mut cmd = Command::new(&full[0]);
    cmd.args(&full[1..]);
    (cmd, full.join(" "))
}

/// Sets the nice of `pid`'s autogroup (see [`pinned`]); best effort.
fn prioritize(pid: u32, nice: Option<i32>) {
    if let Some(n) = nice {
        let _ = std::fs::write(format!("/proc/{pid}/autogroup"), n.to_string());
    }
}

/// Busy and total jiffies of one CPU (/proc/stat).
fn cpu_jiffies(cpu: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let name = format!("cpu{cpu}");
    let line = stat.lines().find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

fn busy(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> f64 {
    match (a, b) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
        _ => f64::NAN,
    }
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn run_scenario(o: &Opts, s: Scenario, hz: f64) -> Result<Outcome> {
    let port = free_port()?;
    let server_bin = o.bin_dir.join("tickforge");
    let loadgen_bin = o.bin_dir.join("tickforge-loadgen");
    let rooms = s.clients.div_ceil(o.players_per_room);
    let server_args: Vec<String> = vec![
        "-c".into(),
        o.server_cpu.clone(),
        server_bin.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--shards".into(),
        "1".into(),
        "--no-pin".into(),
        "--max-connections".into(),
        (s.clients + 256).max(2048).to_string(),
        "--max-rooms".into(),
        (rooms + 64).max(1000).to_string(),
    ];
    let mut server_args = server_args;
    if s.tls {
        server_args.push("--tls-self-signed".into());
    }
    let log_path = o.results.join(format!("{}.server.log", s.name()));
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let (mut server_cmd, server_cmdline) = pinned(o.nice, &server_args);
    let mut server = server_cmd
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", server_bin.display()))?;
    let pid = server.id();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    prioritize(pid, o.nice);
    while !healthy(port, s.tls) {
        if let Ok(Some(status)) = server.try_wait() {
            bail!("the server exited with {status}; see {}", log_path.display());
        }
        if started.elapsed() > Duration::from_secs(10) {
            stop(&mut server);
            bail!("the server did not answer /healthz within 10 s; see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle_kib = rss_kib(pid).unwrap_or(0);

    let json_path = o.results.join(format!("{}.json", s.name()));
    let plot_path = o.results.join(format!("{}.svg", s.name()));
    let mut loadgen_args: Vec<String> = vec![
        "-c".into(),
        o.loadgen_cpu.clone(),
        loadgen_bin.display().to_string(),
        "--url".into(),
        format!("{}://127.0.0.1:{port}/ws", if s.tls { "wss" } else { "ws" }),
        "--clients".into(),
        s.clients.to_string(),
        "--players-per-room".into(),
        o.players_per_room.to_string(),
        "--subprotocol".into(),
        s.form.into(),
        "--cores".into(),
        "1".into(),
        "--connect-rate".into(),
        o.connect_rate.to_string(),
        "--warmup".into(),
        format!("{}s", o.warmup_s),
        "--duration".into(),
        format!("{}s", o.duration_s),
        "--json".into(),
        json_path.display().to_string(),
        "--plot".into(),
        plot_path.display().to_string(),
        "--quiet".into(),
    ];
    if o.source_ips != "none" {
        loadgen_args.extend(["--source-ips".into(), o.source_ips.clone()]);
    }
    if s.tls {
        // The server's certificate was made at its start, for this run.
        loadgen_args.push("--insecure".into());
    }
    let _ = std::fs::remove_file(&json_path);
    let lg_log_path = o.results.join(format!("{}.loadgen.log", s.name()));
    let lg_log = std::fs::File::create(&lg_log_path)?;
    let spawned = Instant::now();
    let (mut loadgen_cmd, loadgen_cmdline) = pinned(o.nice, &loadgen_args);
    let mut loadgen = loadgen_cmd
        .stdin(Stdio::null())
        .stdout(lg_log.try_clone()?)
        .stderr(lg_log)
        .spawn()
        .with_context(|| format!("starting {}", loadgen_bin.display()))?;
    std::thread::sleep(Duration::from_millis(20));
    prioritize(loadgen.id(), o.nice);
    // The loadgen's schedule: probe, 200 ms start-up, ramp-up, warm-up, measured.
    let ramp = s.clients.saturating_sub(1) as f64 / o.connect_rate;
    let measure_start = spawned + Duration::from_secs_f64(0.25 + ramp + o.warmup_s);
    let measure_end = measure_start + Duration::from_secs_f64(o.duration_s);
    // The CPU is read before perf attaches: its tracepoints cost the server
    // ~10 % more CPU per message (alternating runs at 1,000 clients), which
    // the floor, run without it, does not pay. So the window's last part
    // (a quarter of it, at least 1 s but at most half, at most 5 s) counts
    // the crossings and the rest the CPU.
    let perf_secs = (o.duration_s / 4.0).clamp(1.0_f64.min(o.duration_s / 2.0), 5.0);
    let perf_start = measure_end - Duration::from_secs_f64(perf_secs);
    let deadline = measure_end + Duration::from_secs(60);
    let (mut cpu0, mut cpu1, mut rss_peak, mut load) = (None, None, rss_idle_kib, f64::NAN);
    let (mut jiffies0, mut jiffies1) = ((None, None), (None, None));
    let (mut msgs0, mut msgs1, mut msgs2) = (None, None, None);
    let perf_path = o.results.join(format!("{}.perf.csv", s.name()));
    let mut perf = None;
    let status = loop {
        let now = Instant::now();
        if cpu0.is_none() && now >= measure_start {
            cpu0 = cpu_secs(pid, hz).map(|c| (c, now));
            jiffies0 = (cpu_jiffies(&o.server_cpu), cpu_jiffies(&o.loadgen_cpu));
            msgs0 = messages_out(port, s.tls);
        }
        if now >= measure_start && now < measure_end {
            rss_peak = rss_peak.max(rss_kib(pid).unwrap_or(0));
        }
        if cpu0.is_some() && cpu1.is_none() && now >= perf_start {
            cpu1 = cpu_secs(pid, hz).map(|c| (c, now));
            load = load_avg();
            jiffies1 = (cpu_jiffies(&o.server_cpu), cpu_jiffies(&o.loadgen_cpu));
            msgs1 = messages_out(port, s.tls);
            // Timed from now: the reads above take a moment.
            let left = measure_end.saturating_duration_since(Instant::now()).as_secs_f64();
            perf = Some(if left >= perf_secs / 2.0 {
                start_perf(pid, left, &perf_path)
            } else {
                Err(format!("only {left:.2} s of the window were left for perf"))
            });
        }
        if perf.is_some() && msgs2.is_none() && now >= measure_end {
            msgs2 = messages_out(port, s.tls);
        }
        if let Some(status) = loadgen.try_wait()? {
            break status;
        }
        if now > deadline {
            if let Some(Ok(mut p)) = perf.take() {
                let _ = p.kill();
                let _ = p.wait();
            }
            let _ = loadgen.kill();
            let _ = loadgen.wait();
            stop(&mut server);
            bail!("{}: the loadgen ran past its deadline and was killed", s.name());
        }
        // Woken at the window's end itself, so the message count closing
        // perf's part is read when perf stops.
        let nap = match (&perf, msgs2) {
            (Some(_), None) => measure_end.saturating_duration_since(Instant::now()),
            _ => Duration::MAX,
        };
        std::thread::sleep(nap.clamp(Duration::from_millis(1), Duration::from_millis(100)));
    };
    // All clients may end before the window does (e.g. closed as too slow):
    // sample at the loadgen's exit then.
    if cpu0.is_some() && cpu1.is_none() {
        cpu1 = cpu_secs(pid, hz).map(|c| (c, Instant::now()));
        load = load_avg();
        jiffies1 = (cpu_jiffies(&o.server_cpu), cpu_jiffies(&o.loadgen_cpu));
        msgs1 = messages_out(port, s.tls);
    }
    let perf_msgs = match (msgs1, msgs2) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => f64::NAN,
    };
    let crossings = match (perf, msgs2) {
        (Some(perf), Some(_)) if perf_msgs.is_finite() => crossings(perf, &perf_path),
        (Some(perf), Some(_)) => {
            let _ = crossings(perf, &perf_path);
            Err("the server's /metrics gave no message count for perf's part of the window".into())
        }
        (Some(perf), None) => {
            let _ = crossings(perf, &perf_path);
            Err("the loadgen ended before perf's part of the window did".into())
        }
        (None, _) if cpu0.is_some() => Err("the loadgen ended before perf's part of the window began".into()),
        (None, _) => Err("the window was not reached".into()),
    };
    let _ = std::fs::remove_file(&perf_path);
    let server_alive = server.try_wait()?.is_none();
    stop(&mut server);
    if !server_alive {
        bail!("{}: the server died during the run; see {}", s.name(), log_path.display());
    }
    let text = std::fs::read_to_string(&json_path).with_context(|| {
        let log = std::fs::read_to_string(&lg_log_path).unwrap_or_default();
        format!("{}: no report ({status}): {}", s.name(), log.trim())
    })?;
    let report: Value = serde_json::from_str(&text)?;
    let (server_cpu_cores, server_cpu_secs) = match (cpu0, cpu1) {
        (Some((c0, t0)), Some((c1, t1))) if t1 > t0 => ((c1 - c0) / (t1 - t0).as_secs_f64(), c1 - c0),
        _ => (f64::NAN, f64::NAN),
    };
    let (server_msgs, server_msgs_from) = match (msgs0, msgs1) {
        (Some(a), Some(b)) if b > a => (b - a, "server /metrics"),
        _ => (f(&report, &["state_messages"]), "loadgen count"),
    };
    let _ = std::fs::remove_file(&log_path);
    let _ = std::fs::remove_file(&lg_log_path);
    Ok(Outcome {
        scenario: s,
        report,
        server_cpu_cores,
        rss_idle_kib,
        rss_peak_kib: rss_peak,
        server_cmd: server_cmdline,
        loadgen_cmd: loadgen_cmdline,
        loadgen_status: status.code().unwrap_or(-1),
        load_avg: load,
        server_cpu_busy: busy(jiffies0.0, jiffies1.0),
        loadgen_cpu_busy: busy(jiffies0.1, jiffies1.1),
        server_cpu_secs,
        server_msgs,
        server_msgs_from,
        crossings,
        perf_msgs,
        floor: Err("not run yet".into()),
    })
}

fn f(v: &Value, path: &[&str]) -> f64 {
    path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap_or(f64::NAN)
}

fn ms(v: &Value, path: &[&str]) -> String {
    format!("{:.2}", f(v, path) / 1000.0)
}

/// The tick rate the rooms are asked for (the server's default): each
/// client should receive this many state messages a second.
const ASKED_HZ: f64 = 30.0;

/// State messages a second received, and the share of those asked for.
fn delivered(r: &Value, clients: usize) -> String {
    let tps = f(r, &["ticks_per_sec"]);
    format!("{tps:.0} ({:.0} %)", 100.0 * tps / (ASKED_HZ * clients as f64))
}

/// The table's header row.
const HEADER: &str = "| clients | form | state msgs/s (of 30/s per client) | tick p50 ms | tick p99 ms | tick p99.9 ms | tick max ms | input p99 ms | bytes/client-tick | full-state bytes | delta ratio | missed ticks | errors | server CPU | its CPU busy | server RSS MiB | RSS/client KiB | loadgen CPU | its CPU busy | loadgen lag p99 ms | host load | server us/client-tick | floor server us | server / floor | loadgen us/client-tick | floor client us | loadgen / floor client | server crossings/client-tick | floor CPUs taken by others |";

/// `v` with `digits` decimals, or `-` when it is not a number.
fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

/// The floor's and the ratio columns of a row.
fn floor_cells(out: &Outcome) -> [String; 5] {
    match &out.floor {
        Ok(fl) => [
            num(fl.server_us, 2),
            num(out.server_us() / fl.server_us, 2),
            num(fl.client_us, 2),
            num(out.loadgen_us() / fl.client_us, 2),
            format!("{:.2} / {:.2}{}", fl.other.0, fl.other.1, if fl.valid { "" } else { " (invalid run)" }),
        ],
        Err(_) => ["-".into(), "-".into(), "-".into(), "-".into(), "-".into()],
    }
}

/// The server's kernel crossings per message, or a dash (the reason is
/// listed under the table).
fn crossing_cell(out: &Outcome) -> String {
    match &out.crossings {
        Ok(n) => num(n / out.perf_msgs, 2),
        Err(_) => "perf n/a".into(),
    }
}

/// The markdown section.
fn section(o: &Opts, outcomes: &[Outcome], failures: &[String]) -> String {
    let mut s = String::new();
    let machine = outcomes.first().map(|o| &o.report["machine"]);
    let _ = writeln!(s, "## End-to-end\n");
    let _ = writeln!(
        s,
        "Written by `cargo run --release -p tickforge-benches --bin e2e{}` on {} ({} CPUs, {}; kernel {}).",
        std::env::args().skip(1).map(|a| format!(" {a}")).collect::<String>(),
        machine.and_then(|m| m["date"].as_str()).unwrap_or("?"),
        machine.and_then(|m| m["nproc"].as_u64()).unwrap_or(0),
        machine.and_then(|m| m["cpu"].as_str()).unwrap_or("?"),
        machine.and_then(|m| m["kernel"].as_str()).unwrap_or("?"),
    );
    let _ = writeln!(
        s,
        "The reference workload of WORKLOAD.md: arena, {} players per room, one input per client at 30 Hz, \
         {} s warm-up, {} s measured. Server: `tickforge --shards 1` on CPU {}; loadgen: \
         `tickforge-loadgen --cores 1` on CPU {}; one host, loopback, so both clocks are one. \
         Server CPU is user+system seconds per measured second (1.00 = its one core saturated); \
         RSS per client is (peak RSS under load - idle RSS) / clients. The loadgen times each tick by the \
         kernel's receive timestamp and each input from its scheduled slot; its report says when it was the limit \
         of a row (its CPU saturated, its lag over a tenth of the input period, slots it served a period late, \
         ticks it could not time apart): such rows are named under the table. \"Its CPU busy\" is how busy that CPU was with all \
         processes (/proc/stat): when it is near 1.00 while the process's own share is well below, other \
         processes (builds, other benchmarks on a shared host) took the CPU and the latency figures of that row \
         are inflated. Host load is the 1-minute load average at the end of the measured window. Both \
         processes ran at nice {}, each in its own session (autogroup) with that nice.\n\n\
         Costs per client-tick: server us is the server's user+system CPU seconds over the window divided by the \
         messages it sent in it (its `tickforge_messages_out_total`); loadgen us is the loadgen's own CPU over the \
         window divided by the state messages it received (its report). Right after each row the floor \
         (`../shared/tools/limit duplex-paced --size 256`, the same client count, the same two CPUs: its server on \
         CPU 0, its client on CPU 1) gives its server's and its client's CPU per client-tick; the ratios compare \
         each side with the floor measured minutes apart at most, on the same host. \"Floor CPUs taken by \
         others\" is what other processes took of CPU 0 / CPU 1 during the floor's run. Server crossings are its \
         syscalls plus io_uring submissions (`perf stat -e raw_syscalls:sys_enter,io_uring:io_uring_submit_req \
         -p PID`) per message sent, counted over the window's last quarter (at most 5 s) after its CPU was read \
         over the rest: perf's tracepoints cost the server ~10 % more CPU per message, which the floor does not \
         pay.\n",
        o.players_per_room,
        o.warmup_s,
        o.duration_s,
        o.server_cpu,
        o.loadgen_cpu,
        o.nice.map_or_else(|| "0 (inherited)".to_string(), |n| n.to_string())
    );
    let _ = writeln!(s, "{HEADER}");
    // One alignment cell per header cell: clients and form, then numbers.
    let columns = HEADER.matches('|').count() - 1;
    let _ = writeln!(s, "|---:|---|{}", "---:|".repeat(columns - 2));
    for out in outcomes {
        let r = &out.report;
        let clients = out.scenario.clients;
        let per_client = (out.rss_peak_kib.saturating_sub(out.rss_idle_kib)) as f64 / clients as f64;
        let cells = floor_cells(out);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} % | {} | {} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
            clients,
            out.scenario.label(),
            delivered(r, clients),
            ms(r, &["tick_latency_us", "p50"]),
            ms(r, &["tick_latency_us", "p99"]),
            ms(r, &["tick_latency_us", "p99_9"]),
            ms(r, &["tick_latency_us", "max"]),
            ms(r, &["input_latency_us", "p99"]),
            f(r, &["bytes_per_client_tick"]),
            f(r, &["full_state_bytes"]),
            f(r, &["delta_ratio"]) * 100.0,
            r["missed_ticks"],
            r["errors_total"],
            out.server_cpu_cores,
            out.server_cpu_busy,
            out.rss_peak_kib as f64 / 1024.0,
            per_client,
            f(r, &["loadgen_cpu_cores"]),
            out.loadgen_cpu_busy,
            ms(r, &["loadgen_lag_us", "p99"]),
            out.load_avg,
            num(out.server_us(), 2),
            cells[0],
            cells[1],
            num(out.loadgen_us(), 2),
            cells[2],
            cells[3],
            crossing_cell(out),
            cells[4],
        );
    }
    let _ = writeln!(s);
    for out in outcomes {
        let limits = out.report["loadgen_limits"].as_array().map(Vec::len).unwrap_or(0);
        if limits > 0 {
            let _ = writeln!(
                s,
                "- {} clients, {}: the loadgen was the limit of this row: {}.",
                out.scenario.clients,
                out.scenario.label(),
                out.report["loadgen_limits"]
                    .as_array()
                    .map(|v| v.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default()
            );
        }
        if let Err(why) = &out.crossings {
            let _ = writeln!(
                s,
                "- {} clients, {}: no kernel crossings: {why}.",
                out.scenario.clients,
                out.scenario.label()
            );
        }
        if let Err(why) = &out.floor {
            let _ = writeln!(s, "- {} clients, {}: no floor: {why}.", out.scenario.clients, out.scenario.label());
        }
        if out.server_msgs_from != "server /metrics" {
            let _ = writeln!(
                s,
                "- {} clients, {}: server us per client-tick over the loadgen's count of state messages (no /metrics count).",
                out.scenario.clients, out.scenario.label()
            );
        }
    }
    let _ = writeln!(s);
    let best = best(outcomes);
    let _ = writeln!(
        s,
        "Largest client count (binary form) with tick-latency p99 under 5 ms, no missed ticks, no errors and at \
         least 99 % of the state messages asked for: **{}**.\n",
        best.map_or("none of those run".to_string(), |n| n.to_string())
    );
    for line in failures {
        let _ = writeln!(s, "- FAILED: {line}");
    }
    if !failures.is_empty() {
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "Latency by percentile (tick and input latency), one plot per row:\n");
    for out in outcomes {
        let name = out.scenario.name();
        let _ = writeln!(
            s,
            "- {} clients, {}: [{name}.svg](benches/results/{name}.svg), report [{name}.json](benches/results/{name}.json)",
            out.scenario.clients, out.scenario.label()
        );
    }
    let _ = writeln!(s, "\n<details><summary>Commands</summary>\n");
    for out in outcomes {
        let _ = writeln!(
            s,
            "```\n{}\n{}\n{}```\n(loadgen exit status {})\n",
            out.server_cmd,
            out.loadgen_cmd,
            out.floor.as_ref().map(|fl| format!("{}\n", fl.cmd)).unwrap_or_default(),
            out.loadgen_status
        );
    }
    let _ = writeln!(s, "</details>");
    s
}

/// The README's figures table: the binary rows of this run (plain, then
/// over TLS, marked `wss`), in brief.
fn summary(o: &Opts, outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let date = outcomes.first().and_then(|o| o.report["machine"]["date"].as_str()).unwrap_or("?");
    let _ = writeln!(
        s,
        "From the end-to-end run of {date} (`e2e{}`): `tickforge --shards 1` on one core, the loadgen on another, \
         arena at 30 Hz, {} players per room, binary form, {} s measured per row; the floor is \
         `limit duplex-paced` at the same client count, run right after each row. Full table: \
         [BENCHMARKS.md](BENCHMARKS.md).\n",
        std::env::args().skip(1).map(|a| format!(" {a}")).collect::<String>(),
        o.players_per_room,
        o.duration_s
    );
    let _ = writeln!(
        s,
        "| clients | tick p99 ms | delivered | errors | server us/client-tick (x floor) | server crossings/client-tick | loadgen us/client-tick (x floor client) | RSS/client KiB |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for out in outcomes.iter().filter(|o| o.scenario.form == "bin") {
        let r = &out.report;
        let clients = out.scenario.clients;
        let ratio = |v: f64, floor: Option<f64>| match floor {
            Some(fl) => format!("{} ({}x)", num(v, 1), num(v / fl, 2)),
            None => num(v, 1),
        };
        let floor = out.floor.as_ref().ok();
        let limited =
            if r["loadgen_limits"].as_array().is_some_and(|v| !v.is_empty()) { " (loadgen-limited)" } else { "" };
        let tls = if out.scenario.tls { " wss" } else { "" };
        let _ = writeln!(
            s,
            "| {clients}{tls}{limited} | {} | {:.1} % | {} | {} | {} | {} | {:.1} |",
            ms(r, &["tick_latency_us", "p99"]),
            100.0 * f(r, &["ticks_per_sec"]) / (ASKED_HZ * clients as f64),
            r["errors_total"],
            ratio(out.server_us(), floor.map(|f| f.server_us)),
            crossing_cell(out),
            ratio(out.loadgen_us(), floor.map(|f| f.client_us)),
            out.rss_peak_kib.saturating_sub(out.rss_idle_kib) as f64 / clients as f64,
        );
    }
    let _ = writeln!(
        s,
        "\nLargest client count with tick-latency p99 under 5 ms, at least 99 % of the state messages, no missed \
         ticks and no errors: **{}**.",
        best(outcomes).map_or("none of those run".to_string(), |n| n.to_string())
    );
    s
}

/// The largest binary row that met the latency target.
fn best(outcomes: &[Outcome]) -> Option<usize> {
    outcomes
        .iter()
        .filter(|o| o.scenario.form == "bin")
        .filter(|o| f(&o.report, &["tick_latency_us", "p99"]) < 5_000.0)
        .filter(|o| f(&o.report, &["ticks_per_sec"]) >= 0.99 * ASKED_HZ * o.scenario.clients as f64)
        .filter(|o| o.report["missed_ticks"].as_u64() == Some(0) && o.report["errors_total"].as_u64() == Some(0))
        .map(|o| o.scenario.clients)
        .max()
}

/// `text` with what lies between the `begin` and `end` marker lines
/// replaced by `body`; `None` when the markers are not both there, in order.
fn replace_between(text: &str, begin: &str, end: &str, body: &str) -> Option<String> {
    let b = text.find(begin)?;
    let e = b + text[b..].find(end)?;
    Some(format!("{}{begin}\n{body}{}", &text[..b], &text[e..]))
}

/// Replaces the section between the markers (or appends it).
fn write_section(path: &Path, body: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{BEGIN}\n{body}{END}\n");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let rest = old[e + END.len()..].trim_start_matches('\n');
            let gap = if rest.is_empty() { "" } else { "\n" };
            format!("{}{block}{gap}{rest}", &old[..b])
        }
        _ => format!("{}\n{block}", old.trim_end_matches('\n').to_owned() + "\n"),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

fn main() -> Result<()> {
    let o = parse_args()?;
    for bin in ["tickforge", "tickforge-loadgen"] {
        let p = o.bin_dir.join(bin);
        if !p.exists() {
            bail!(
                "{} is missing: run `cargo build --release -p tickforge-server -p tickforge-loadgen` first",
                p.display()
            );
        }
    }
    std::fs::create_dir_all(&o.results)?;
    let hz = clock_ticks();
    let scenarios: Vec<Scenario> = o
        .clients
        .iter()
        .map(|&clients| Scenario { clients, form: "bin", tls: false })
        .chain(o.json_clients.iter().map(|&clients| Scenario { clients, form: "json", tls: false }))
        .chain(o.wss_clients.iter().map(|&clients| Scenario { clients, form: "bin", tls: true }))
        .collect();
    let started = Instant::now();
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for s in scenarios {
        eprintln!("e2e: {} clients, {} ({:.0} s so far)", s.clients, s.label(), started.elapsed().as_secs_f64());
        match run_scenario(&o, s, hz) {
            Ok(mut out) => {
                if o.limit_bin.is_some() {
                    out.floor = run_floor(&o, s.clients);
                } else {
                    out.floor = Err("not asked for (--limit-bin none)".into());
                }
                let r = &out.report;
                eprintln!(
                    "e2e:   tick p99 {} ms, input p99 {} ms, {:.1} B/client-tick ({:.1} % of full), missed {}, errors {}, server CPU {:.2}, RSS {:.1} MiB, loadgen CPU {:.2}",
                    ms(r, &["tick_latency_us", "p99"]),
                    ms(r, &["input_latency_us", "p99"]),
                    f(r, &["bytes_per_client_tick"]),
                    f(r, &["delta_ratio"]) * 100.0,
                    r["missed_ticks"],
                    r["errors_total"],
                    out.server_cpu_cores,
                    out.rss_peak_kib as f64 / 1024.0,
                    f(r, &["loadgen_cpu_cores"]),
                );
                let cells = floor_cells(&out);
                eprintln!(
                    "e2e:   server {} us/client-tick ({}x the floor's {}), {} crossings/client-tick; loadgen {} us/client-tick ({}x the floor client's {}){}",
                    num(out.server_us(), 2),
                    cells[1],
                    cells[0],
                    crossing_cell(&out),
                    num(out.loadgen_us(), 2),
                    cells[3],
                    cells[2],
                    match &out.floor {
                        Err(e) => format!("; floor: {e}"),
                        Ok(_) => String::new(),
                    }
                );
                outcomes.push(out);
            }
            Err(e) => {
                eprintln!("e2e:   FAILED: {e:#}");
                failures.push(format!("{} clients, {}: {e:#}", s.clients, s.label()));
            }
        }
    }
    let body = section(&o, &outcomes, &failures);
    if o.write {
        write_section(&o.out, &body)?;
        eprintln!("e2e: wrote {} in {:.0} s", o.out.display(), started.elapsed().as_secs_f64());
        let readme = std::fs::read_to_string(&o.readme).unwrap_or_default();
        match replace_between(&readme, README_BEGIN, README_END, &summary(&o, &outcomes)) {
            Some(text) if !outcomes.is_empty() => {
                std::fs::write(&o.readme, text).with_context(|| format!("writing {}", o.readme.display()))?;
                eprintln!("e2e: wrote the figures table of {}", o.readme.display());
            }
            Some(_) => {}
            None => eprintln!("e2e: {} has no {README_BEGIN} ... {README_END} markers: left alone", o.readme.display()),
        }
    } else {
        print!("{body}\n{}", summary(&o, &outcomes));
    }
    if outcomes.is_empty() {
        bail!("no scenario ran");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_goes_between_its_markers_only() {
        let text = "# x\n\nintro\n<!-- figures:begin -->\nold\ntable\n<!-- figures:end -->\nafter\n";
        let new = replace_between(text, README_BEGIN, README_END, "new\n").unwrap();
        assert_eq!(new, "# x\n\nintro\n<!-- figures:begin -->\nnew\n<!-- figures:end -->\nafter\n");
        // Twice gives the same.
        assert_eq!(replace_between(&new, README_BEGIN, README_END, "new\n").unwrap(), new);
        assert_eq!(replace_between("no markers", README_BEGIN, README_END, "x"), None);
        assert_eq!(replace_between("<!-- figures:end --> <!-- figures:begin -->", README_BEGIN, README_END, "x"), None);
    }

    #[test]
    fn perf_counts_are_read_from_its_csv() {
        let dir = std::env::temp_dir().join(format!("e2e-perf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("p.csv");
        let ok = "# started on x\n\n1234,,raw_syscalls:sys_enter,1000,100.00,,\n766,,io_uring:io_uring_submit_req,1000,100.00,,\n";
        let perf = Command::new("true").stderr(Stdio::piped()).spawn().map_err(|e| e.to_string());
        std::fs::write(&out, ok).unwrap();
        assert_eq!(crossings(perf, &out), Ok(2000.0));
        let refused = "<not supported>,,raw_syscalls:sys_enter,0,100.00,,\n";
        let perf = Command::new("true").stderr(Stdio::piped()).spawn().map_err(|e| e.to_string());
        std::fs::write(&out, refused).unwrap();
        assert!(crossings(perf, &out).is_err());
        assert!(crossings(Err("perf not runnable".into()), &out).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
