//! `tickforge`: the server binary. Flags become a validated
//! [`ServerConfig`]; SIGINT/SIGTERM start a graceful drain; exit 0 after it.

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tickforge_server::auth::AuthSecret;
use tickforge_server::cluster::ClusterConfig;
use tickforge_server::config::{parse_byte_size, parse_duration};
use tickforge_server::signals::ShutdownSignals;
use tickforge_server::tls::TlsSource;
use tickforge_server::ServerConfig;

mod config_file;

/// What every `<DURATION>` flag takes (the same words in the loadgen's help).
const DURATION_HELP: &str = "DURATION: a number with a unit, ms, s, m or min (500ms, 1.5s, 10s, 2m); a bare \
                             number is seconds (--drain-timeout 10 is 10s).";

/// tickforge: a game state server hosting authoritative rooms over WebSocket.
#[derive(Debug, Parser)]
#[command(name = "tickforge", version, about, after_help = DURATION_HELP)]
struct Cli {
    /// Read flags from a TOML file: each key is a flag without its dashes
    /// (tick-hz = 60); flags on the command line win.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Address to listen on (HTTP and WebSocket on one port).
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Shards (pinned executors); default: one per available core.
    #[arg(long)]
    shards: Option<usize>,
    /// Do not pin shards to cores.
    #[arg(long)]
    no_pin: bool,
    /// Default tick rate of new rooms, Hz (10..=128).
    #[arg(long, default_value_t = 30)]
    tick_hz: u32,
    /// Open connections per shard; beyond it handshakes get 503 (0: 16384 / shards).
    #[arg(long, default_value_t = 0)]
    max_connections: usize,
    /// Largest client message (e.g. 65536, 64k, 16m); bigger closes 1009.
    #[arg(long, default_value = "64k", value_parser = parse_byte_size)]
    max_message_size: usize,
    /// Inputs per second per player; excess dropped, 5x closes 1008.
    #[arg(long, default_value_t = 160)]
    max_inputs_per_sec: u32,
    /// Requests per second per connection; excess gets rej rate_limited, 5x closes 1008.
    #[arg(long, default_value_t = 20)]
    max_requests_per_sec: u32,
    /// Rooms per shard; beyond it create_room gets rej overloaded.
    #[arg(long, default_value_t = 1000)]
    max_rooms: usize,
    /// Most seats a room may have.
    #[arg(long, default_value_t = 64)]
    max_players_per_room: u32,
    /// Seats of a room created without max_players (and by join_or_create).
    #[arg(long, default_value_t = 8)]
    players_per_room: u32,
    /// Time allowed for a complete HTTP request head.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Control messages queued per connection; more closes 1008.
    #[arg(long, default_value_t = 256)]
    max_control_queue: usize,
    /// A socket accepting no bytes this long while data waits is closed 1008.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    send_stall: Duration,
    /// Unsent bytes the kernel may hold per socket (TCP_NOTSENT_LOWAT; 0: the kernel's own).
    #[arg(long, default_value = "4k", value_parser = parse_byte_size)]
    send_backlog: usize,
    /// A player this far behind its room (acks, untaken ticks) is closed 1008.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    slow_client: Duration,
    /// Consecutive undecodable messages before closing 1007.
    #[arg(long, default_value_t = 5)]
    max_decode_errors: u32,
    /// Longest game message and event name, bytes; longer gets rej bad_request.
    #[arg(long, default_value_t = 64)]
    max_game_name: usize,
    /// Largest game message, reply and event data, bytes (at most 4096); bigger gets rej bad_request.
    #[arg(long, default_value = "4096", value_parser = parse_byte_size)]
    max_game_value_size: usize,
    /// Largest create_room / join_or_create options, bytes (at most 4096); bigger gets rej bad_request.
    #[arg(long, default_value = "1024", value_parser = parse_byte_size)]
    max_options_size: usize,
    /// Largest room metadata a game may set, bytes (at most 4096).
    #[arg(long, default_value = "1024", value_parser = parse_byte_size)]
    max_metadata_size: usize,
    /// Game events one player may get per tick; more are dropped and counted.
    #[arg(long, default_value_t = 32)]
    max_game_events_per_tick: u32,
    /// A game hook running longer is logged with its room and counted in /metrics.
    #[arg(long, default_value = "5ms", value_name = "DURATION", value_parser = parse_duration)]
    slow_game_hook: Duration,
    /// Graceful shutdown waits at most this long for connections.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// An empty room is disposed of after this long.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    empty_room_grace: Duration,
    /// A seat whose connection ended is held this long for a resume (0: freed at once).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    reconnect_grace: Duration,
    /// Spectators per room (watch_room); beyond it rej room_full.
    #[arg(long, default_value_t = 32)]
    max_spectators_per_room: u32,
    /// Ping a connection silent this long.
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    ping_interval: Duration,
    /// Close (1008) a connection silent this long after a ping.
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    ping_timeout: Duration,
    /// An Origin allowed to open a WebSocket (repeatable); none = any.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Require `hello` with this token before other requests.
    #[arg(long)]
    token: Option<String>,
    /// Require `hello` with a JWT signed HS256 with this secret (claims sub, exp, name?); not with --token.
    #[arg(long, value_name = "SECRET")]
    auth_secret: Option<String>,
    /// As --auth-secret, the secret read from FILE (one trailing newline trimmed).
    #[arg(long, value_name = "FILE")]
    auth_secret_file: Option<std::path::PathBuf>,
    /// Speak TLS with this PEM certificate chain (leaf first); needs --tls-key. SIGHUP reloads it.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Speak TLS with a certificate for localhost and 127.0.0.1 made at start (development; logs its SHA-256 fingerprint).
    #[arg(long)]
    tls_self_signed: bool,
    /// Turn on the monitor's admin actions (close a room, disconnect a player),
    /// authorized by this token (Authorization: Bearer TOKEN); without it the
    /// monitor is read-only.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Mount /echo, echoing every message (for Autobahn conformance runs).
    #[arg(long)]
    echo: bool,
    /// Join a cluster through Redis at redis://HOST:PORT[/DB].
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// The ws:// or wss:// address clients reach this server at (required with --cluster).
    #[arg(long, value_name = "URL", requires = "cluster")]
    public_url: Option<String>,
    /// This server's name in the cluster (default: host:port of --public-url).
    #[arg(long, requires = "cluster")]
    node_id: Option<String>,
    /// Prefix of the cluster's Redis keys (several clusters may share a Redis).
    #[arg(long, default_value = "tickforge")]
    cluster_prefix: String,
    /// How often this server heartbeats to the cluster directory.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    cluster_heartbeat: Duration,
    /// Heartbeat lifetime: a dead server leaves the listing this long (plus --cluster-refresh) after.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    cluster_ttl: Duration,
    /// How often the cluster directory is read into this server's view.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    cluster_refresh: Duration,
    /// Room changes are written to the directory together at most this often.
    #[arg(long, default_value = "200ms", value_name = "DURATION", value_parser = parse_duration)]
    cluster_flush: Duration,
    /// Bounded wait of a request to another server (reserve a seat, create a room).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_duration)]
    cluster_request_timeout: Duration,
    /// Connect, read and write timeout of one Redis call.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    redis_timeout: Duration,
    /// Requests to other servers awaiting answers at once; more fail as overloaded.
    #[arg(long, default_value_t = 1024)]
    cluster_max_requests: usize,
    /// Requests from other servers queued per shard; more are refused as overloaded.
    #[arg(long, default_value_t = 256)]
    cluster_shard_inbox: usize,
}

impl Cli {
    fn into_config(self) -> ServerConfig {
        let mut c = ServerConfig::default();
        c.listen = self.listen;
        if let Some(n) = self.shards {
            c.shards = n;
        }
        c.pin = !self.no_pin;
        c.tick_hz = self.tick_hz;
        c.drain_timeout = self.drain_timeout;
        c.empty_room_grace = self.empty_room_grace;
        c.reconnect_grace = self.reconnect_grace;
        c.allowed_origins = self.allowed_origins;
        c.token = self.token;
        c.admin_token = self.admin_token;
        c.echo = self.echo;
        c.tls = match (self.tls_cert, self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(TlsSource::Files { cert, key }),
            (_, _, true) => Some(TlsSource::SelfSigned),
            _ => None,
        };
        c.ping_interval = self.ping_interval;
        c.ping_timeout = self.ping_timeout;
        let l = &mut c.limits;
        l.connections_per_shard = self.max_connections;
        l.max_message_size = self.max_message_size;
        l.inputs_per_sec = self.max_inputs_per_sec;
        l.requests_per_sec = self.max_requests_per_sec;
        l.rooms_per_shard = self.max_rooms;
        l.max_players_per_room = self.max_players_per_room;
        l.default_players_per_room = self.players_per_room;
        l.handshake_timeout = self.handshake_timeout;
        l.control_queue = self.max_control_queue;
        l.send_stall = self.send_stall;
        l.send_backlog = self.send_backlog;
        l.slow_client = self.slow_client;
        l.max_decode_errors = self.max_decode_errors;
        l.game.max_name_bytes = self.max_game_name;
        l.game.max_value_bytes = self.max_game_value_size;
        l.game.max_options_bytes = self.max_options_size;
        l.game.max_metadata_bytes = self.max_metadata_size;
        l.game.max_events_per_tick = self.max_game_events_per_tick;
        l.game.slow_hook = self.slow_game_hook;
        l.max_spectators_per_room = self.max_spectators_per_room;
        if let Some(redis_url) = self.cluster {
            let mut k = ClusterConfig::new(redis_url, self.public_url.unwrap_or_default());
            k.node_id = self.node_id.unwrap_or_default();
            k.prefix = self.cluster_prefix;
            k.heartbeat_interval = self.cluster_heartbeat;
            k.heartbeat_ttl = self.cluster_ttl;
            k.refresh_interval = self.cluster_refresh;
            k.flush_interval = self.cluster_flush;
            k.request_timeout = self.cluster_request_timeout;
            k.io_timeout = self.redis_timeout;
            k.max_in_flight = self.cluster_max_requests;
            k.shard_inbox = self.cluster_shard_inbox;
            c.cluster = Some(k);
        }
        c
    }
}

fn main() -> ExitCode {
    let expanded = match config_file::expand(std::env::args_os().collect(), &Cli::command()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tickforge: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(&expanded.args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            if let Some(text) = config_file::name_key(&expanded, &e) {
                eprintln!("tickforge: {text}");
                return ExitCode::from(2);
            }
            // One line naming the flag (clap's first paragraph: a missing
            // flag is named on the lines after the first), then exit 2.
            let text = e.render().to_string();
            let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            let first = if first.is_empty() { "invalid arguments".to_owned() } else { first.join(" ") };
            eprintln!("tickforge: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // Colour only for a person at a terminal, and never under NO_COLOR
    // (https://no-color.org): a log file or a pipe gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if cli.tls_self_signed && cli.tls_cert.is_some() {
        eprintln!("tickforge: --tls-self-signed cannot be used with --tls-cert: pick one certificate");
        return ExitCode::from(2);
    }
    let auth = match (&cli.auth_secret, &cli.auth_secret_file) {
        (Some(_), Some(_)) => Some(Err("--auth-secret cannot be used with --auth-secret-file: pick one".to_owned())),
        (Some(s), None) => Some(AuthSecret::new(s.as_bytes()).map_err(|e| format!("--auth-secret: {e}"))),
        (None, Some(path)) => Some(AuthSecret::from_file(path).map_err(|e| format!("--auth-secret-file {e}"))),
        (None, None) => None,
    };
    let auth = match auth.transpose() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tickforge: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = cli.into_config();
    config.auth = auth;
    if let Err(e) = config.validate() {
        // A value from the file is named as the file's key.
        let key = e.setting.trim_start_matches("--");
        match &expanded.path {
            Some(path) if expanded.from_file.iter().any(|k| k == key) => {
                eprintln!("tickforge: {}: {}", config_file::origin(path, key), e.problem);
            }
            _ => eprintln!("tickforge: {e}"),
        }
        return ExitCode::from(2);
    }
    // A certificate that cannot be served is a bad flag: say which, exit 2.
    if let Some(source @ TlsSource::Files { .. }) = &config.tls {
        if let Err(e) = tickforge_server::tls::load(source) {
            eprintln!("tickforge: {e}");
            return ExitCode::from(2);
        }
    }
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickforge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let signals = ShutdownSignals::block();
    let server = tickforge_server::start(config).context("starting the server")?;
    let sig = signals.wait_serving(&server);
    tracing::info!(signal = sig, "shutting down: draining connections");
    server.shutdown();
    server.wait().context("draining")?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every duration flag says `<DURATION>` (which the help explains),
    /// and takes a bare number as seconds, as the help says.
    #[test]
    fn every_duration_flag_is_documented_and_takes_bare_seconds() {
        let cmd = Cli::command();
        let mut seen = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let default = arg.get_default_values().first().and_then(|v| v.to_str()).unwrap_or("");
            let is_duration = default.ends_with('s') && parse_duration(default).is_ok();
            let documented = arg.get_value_names().is_some_and(|n| n.iter().any(|n| n == "DURATION"));
            assert_eq!(is_duration, documented, "--{long} (default {default:?})");
            if documented {
                seen += 1;
                let flag = format!("--{long}");
                let bare = Cli::try_parse_from(["tickforge", flag.as_str(), "10"]).unwrap();
                let unit = Cli::try_parse_from(["tickforge", flag.as_str(), "10s"]).unwrap();
                assert_eq!(format!("{bare:?}"), format!("{unit:?}"), "{flag}");
            }
        }
        assert_eq!(seen, 15);
        assert!(cmd.get_after_help().is_some_and(|h| h.to_string().contains("a bare number is seconds")));
    }
}
