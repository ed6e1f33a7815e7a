//! `tickforge-loadgen`: the command line over [`tickforge_loadgen::run`].
//!
//! Exit status: 0 when the run met its gates, 1 when a gate
//! (`--max-p99-ms`, `--max-errors`) was exceeded, 2 when the run could not
//! be made (bad flag, unreachable server, refused handshake).

use anyhow::Context as _;
use clap::Parser;
use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tickforge_loadgen::{LoadConfig, LoadError};
use tickforge_protocol::Format;

/// Simulated arena players against a tickforge server; reports tick and
/// input latency percentiles, bytes per client-tick and errors.
#[derive(Debug, Parser)]
#[command(
    name = "tickforge-loadgen",
    version,
    after_help = "DURATION: a number with a unit, us, ms, s or m (250us, 500ms, 1.5s, 30s, 2m); a bare number is \
                  seconds (--duration 10 is 10s).\n\n\
                  Exit status: 0 done (gates met), 1 a gate (--max-p99-ms, --max-errors) exceeded, 2 the run could not \
                  be made (bad flag, unreachable server, refused handshake)."
)]
struct Cli {
    /// Server WebSocket URL: ws://HOST:PORT/PATH, or wss:// (with --ca or --insecure).
    #[arg(long, default_value = "ws://127.0.0.1:7700/ws")]
    url: String,
    /// For wss://: trust the PEM certificate(s) in FILE (e.g. the server's, or its CA).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// For wss://: take any certificate, unverified (testing only; says so on stderr).
    #[arg(long)]
    insecure: bool,
    /// Each client drops its socket at this mean interval and takes its seat back with resume.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    reconnect_every: Option<Duration>,
    /// Simulated clients (one socket each).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Players per room (the first of each group creates the room).
    #[arg(long, default_value_t = 8)]
    players_per_room: usize,
    /// Each client asks join_or_create on its own (the server, or the
    /// cluster, picks and sizes rooms; --players-per-room is ignored).
    #[arg(long)]
    join_or_create: bool,
    /// Inputs per second per client.
    #[arg(long, default_value_t = 30)]
    input_hz: u32,
    /// Room tick rate to ask for (default: the server's).
    #[arg(long)]
    tick_hz: Option<u32>,
    /// Game to play: arena's inputs for a game with the stick input schema,
    /// else random values within each field of the game's input schema.
    /// Use --players-per-room at most the game's seats (lines: 2).
    #[arg(long, default_value = "arena")]
    game: String,
    /// Wire form: bin or json.
    #[arg(long, default_value = "bin", value_parser = parse_format)]
    subprotocol: Format,
    /// Core threads (one io_uring each), pinned to CPUs of the affinity mask.
    #[arg(long, default_value_t = 1)]
    cores: usize,
    /// One client in K (by index) rebuilds the state from every tick and
    /// checks its deltas; the others read tick headers only (ack + timing).
    /// 1 = every client decodes. The default 8 decodes each room's creator
    /// at 8 players per room.
    #[arg(long, value_name = "K", default_value_t = 8)]
    decode_every: usize,
    /// Source addresses to bind client sockets to: `A-B` (IPv4 range) or a
    /// comma-separated list.
    #[arg(long, value_parser = parse_ips)]
    source_ips: Option<SourceIps>,
    /// New connections per second during the ramp-up.
    #[arg(long, default_value_t = 500.0)]
    connect_rate: f64,
    /// Warm-up after the ramp-up, not recorded.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    warmup: Duration,
    /// Measured time.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    duration: Duration,
    /// Connect timeout per client.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Handshake timeout per client.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Idle cores poll their ring this long before sleeping (e.g. 100us, 1ms; default 0).
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    spin: Duration,
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the tick latency distribution (.hgrm) to FILE and the input
    /// latency's to FILE-input.
    #[arg(long, value_name = "FILE")]
    hgrm: Option<PathBuf>,
    /// Plot latency by percentile to FILE (SVG).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Exit 1 when the tick latency p99 exceeds this many milliseconds.
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// Exit 1 when more errors than this occurred (delta errors included).
    #[arg(long)]
    max_errors: Option<u64>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Debug)]
struct SourceIps(Vec<IpAddr>);

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "bin" | "tickforge.v1.bin" => Ok(Format::Bin),
        "json" | "tickforge.v1.json" => Ok(Format::Json),
        _ => Err("expected bin or json".into()),
    }
}

/// `30s`, `500ms`, `2m`, `1.5s`, `250us` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.000_001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a duration like 30s, 500ms or 2m"))?;
    Duration::try_from_secs_f64(v * scale).map_err(|_| format!("{s:?} is not a duration like 30s, 500ms or 2m"))
}

fn parse_ips(s: &str) -> Result<SourceIps, String> {
    if let Some((a, b)) = s.split_once('-') {
        let a: std::net::Ipv4Addr = a.trim().parse().map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let b: std::net::Ipv4Addr = b.trim().parse().map_err(|_| format!("{b:?} is not an IPv4 address"))?;
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a || b - a >= 1024 {
            return Err("the range must go upwards and hold at most 1024 addresses".into());
        }
        return Ok(SourceIps((a..=b).map(|ip| IpAddr::from(std::net::Ipv4Addr::from(ip))).collect()));
    }
    s.split(',')
        .map(|ip| ip.trim().parse().map_err(|_| format!("{ip:?} is not an IP address")))
        .collect::<Result<_, _>>()
        .map(SourceIps)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line: clap's first, without the usage that follows.
            let text = e.to_string();
            eprintln!(
                "tickforge-loadgen: {}",
                text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tickforge-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs and reports; `Ok(false)` when a gate was exceeded.
fn run(cli: &Cli) -> anyhow::Result<bool> {
    let mut cfg = LoadConfig::default();
    cfg.url = cli.url.clone();
    cfg.clients = cli.clients;
    // With join_or_create every client is a group of its own.
    cfg.players_per_room = if cli.join_or_create { 1 } else { cli.players_per_room };
    cfg.join_or_create = cli.join_or_create;
    cfg.input_hz = cli.input_hz;
    cfg.tick_hz = cli.tick_hz;
    cfg.game = cli.game.clone();
    cfg.format = cli.subprotocol;
    cfg.cores = cli.cores;
    cfg.decode_every = cli.decode_every;
    cfg.source_ips = cli.source_ips.clone().map(|s| s.0).unwrap_or_default();
    cfg.connect_rate = cli.connect_rate;
    cfg.warmup = cli.warmup;
    cfg.duration = cli.duration;
    cfg.connect_timeout = cli.connect_timeout;
    cfg.handshake_timeout = cli.handshake_timeout;
    cfg.spin_before_park = cli.spin;
    cfg.progress = !cli.quiet && std::io::stdout().is_terminal();
    cfg.ca = cli.ca.clone();
    cfg.reconnect_every = cli.reconnect_every;
    cfg.insecure = cli.insecure && cli.ca.is_none();
    if cfg.insecure && cli.url.starts_with("wss:") {
        eprintln!(
            "tickforge-loadgen: WARNING: --insecure: the server's TLS certificate is NOT verified; \
             anyone in the path could read and change this traffic. Use --ca FILE outside a test bench."
        );
    }
    // A `LoadError`'s message already names its cause ("cannot connect to
    // ADDR: Connection refused (os error 111)"), and some variants expose
    // that cause as `source()` too: wrapped whole, `{:#}` below would print
    // the OS error twice. Its message alone says it all.
    let mut report = tickforge_loadgen::run(cfg).map_err(|e: LoadError| anyhow::anyhow!("{e}"))?;
    report.command = Some(std::env::args().collect::<Vec<_>>().join(" "));
    // The files first: a stdout that cannot be written (a full disk, a
    // closed pipe) must not lose the report with it.
    if let Some(path) = &cli.json {
        report.write_json(path).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.hgrm {
        report.write_hgrm(path).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.plot {
        report.write_plot(path).with_context(|| format!("writing {}", path.display()))?;
    }
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        out.write_all(report.table().as_bytes())
            .and_then(|()| out.flush())
            .context("printing the report table to stdout")?;
    }
    let mut ok = true;
    if let Some(max_ms) = cli.max_p99_ms {
        let p99_ms = report.tick_latency_us.p99 as f64 / 1000.0;
        if p99_ms > max_ms || report.tick_latency_us.count == 0 {
            eprintln!("tickforge-loadgen: gate failed: tick latency p99 {p99_ms:.3} ms > {max_ms} ms (or no ticks)");
            ok = false;
        }
    }
    if let Some(max) = cli.max_errors {
        if report.errors_total > max {
            eprintln!("tickforge-loadgen: gate failed: {} errors > {max}", report.errors_total);
            ok = false;
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// Every duration flag says `<DURATION>` (which the help explains),
    /// and takes a bare number as seconds, as the help says.
    #[test]
    fn every_duration_flag_is_documented_and_takes_bare_seconds() {
        let cmd = Cli::command();
        let mut seen = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let default = arg.get_default_values().first().and_then(|v| v.to_str()).unwrap_or("");
            // --reconnect-every is a duration without a default (off).
            let is_duration = (default.ends_with('s') && parse_duration(default).is_ok()) || long == "reconnect-every";
            let documented = arg.get_value_names().is_some_and(|n| n.iter().any(|n| n == "DURATION"));
            assert_eq!(is_duration, documented, "--{long} (default {default:?})");
            if documented {
                seen += 1;
                let flag = format!("--{long}");
                let bare = Cli::try_parse_from(["tickforge-loadgen", flag.as_str(), "10"]).unwrap();
                let unit = Cli::try_parse_from(["tickforge-loadgen", flag.as_str(), "10s"]).unwrap();
                assert_eq!(format!("{bare:?}"), format!("{unit:?}"), "{flag}");
            }
        }
        assert_eq!(seen, 6);
        assert!(cmd.get_after_help().is_some_and(|h| h.to_string().contains("a bare number is seconds")));
    }

    #[test]
    fn durations_and_ranges_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_ips("127.0.0.1-127.0.0.8").unwrap().0.len(), 8);
        assert_eq!(parse_ips("127.0.0.1,::1").unwrap().0.len(), 2);
        assert!(parse_ips("127.0.0.8-127.0.0.1").is_err());
    }
}
