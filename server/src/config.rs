//! The server's configuration: one documented struct, validated once.
//!
//! `main.rs` translates flags into a [`ServerConfig`]; tests build one with
//! [`ServerConfig::default`] and change the fields they need. Every field
//! says its unit, its default and what happens when it is hit.

use crate::cluster::ClusterConfig;
use crate::game::{GameLimits, GameRegistry};
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;

/// Tick rates a room may use (Hz), per WORKLOAD.md.
pub const TICK_HZ_RANGE: std::ops::RangeInclusive<u32> = 10..=128;

/// Everything a server needs to run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen. Default `127.0.0.1:7700`; port 0 picks a free port
    /// (read it back from [`crate::ServerHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Shards (executors, one thread each). Default: one per available core.
    /// Each shard accepts on the same port and owns its connections and rooms.
    pub shards: usize,
    /// Pin each shard to its own core (glommio `MaxSpread`). Default true;
    /// ignored (unpinned) when there are more shards than cores.
    pub pin: bool,
    /// Default tick rate of a new room, Hz (10..=128). Default 30: at 30 Hz
    /// a player gets 30 state messages a second.
    pub tick_hz: u32,
    /// Resource bounds.
    pub limits: Limits,
    /// How long a graceful shutdown waits for connections to close before
    /// exiting anyway. Default 10 s.
    pub drain_timeout: Duration,
    /// How long an empty room lives before it is disposed of. Default 30 s.
    pub empty_room_grace: Duration,
    /// How long a seat whose connection ended without `leave_room` is held
    /// for a `resume` (its avatar idle, neutral input), from the room's
    /// next tick on. Default 10 s; 0 frees seats at once (and `joined`
    /// carries no usable resume token). A held seat counts against
    /// `max_players`.
    pub reconnect_grace: Duration,
    /// `Origin` values allowed to open a WebSocket; empty = any. A refused
    /// Origin gets 403. A request without `Origin` (not a browser) passes.
    pub allowed_origins: Vec<String>,
    /// A shared token: when set, a connection must send `hello` with it
    /// before any other request (`rej unauthorized`; a wrong token in
    /// `hello` closes with 1008), or pass it in the handshake as
    /// `/ws?token=...` (a wrong one is answered 403). Default none.
    pub token: Option<String>,
    /// Signed identities (`--auth-secret`, `--auth-secret-file`): when set,
    /// a connection must send `hello` with a JWT signed HS256 with this
    /// secret (claims `sub`, `exp`, optionally `name`) before any other
    /// request, or pass it as `/ws?token=` (a bad one is answered 403). A
    /// refused token gets `rej unauthorized` saying why and closes 1008.
    /// Default none. Not with [`ServerConfig::token`].
    pub auth: Option<crate::auth::AuthSecret>,
    /// Mount `/echo`: every message echoed back (for Autobahn only).
    pub echo: bool,
    /// Send a ping to a connection silent for this long. Default 15 s.
    pub ping_interval: Duration,
    /// Close (1008) a connection that sends nothing for this long after a
    /// ping. Default 15 s: a half-open socket is freed after 30 s at most.
    pub ping_timeout: Duration,
    /// The games this server hosts. Default: the built-in `arena`.
    pub games: GameRegistry,
    /// The token of the monitor's admin actions (`POST /monitor/...`:
    /// close a room, disconnect a player), sent as `Authorization: Bearer
    /// TOKEN`; a request without it (or with another) is answered 401.
    /// Default none: the monitor is read-only and those requests get 403.
    pub admin_token: Option<String>,
    /// Join a cluster through Redis (`--cluster`, `--public-url`, ...).
    /// Default none: a single server, no Redis.
    pub cluster: Option<ClusterConfig>,
    /// Speak TLS on the port (`--tls-cert`/`--tls-key`, or
    /// `--tls-self-signed`): `https://` for every route, `wss://` for
    /// `/ws`, TLS 1.2 and 1.3 only, ALPN `http/1.1`. The handshake timeout
    /// covers the TLS handshake. Default none: plain TCP.
    pub tls: Option<crate::tls::TlsSource>,
}

/// Resource bounds, each with its outcome when hit.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Open connections per shard (handshakes in progress included); 0
    /// (the default) means 16,384 spread over the shards (8,192 each at 2
    /// shards). Beyond it the handshake is answered 503. `shards * this`
    /// must stay under 19,000: the process may hold 20,000 open files.
    pub connections_per_shard: usize,
    /// Largest client message, bytes. Default 64 KiB; a bigger one closes
    /// the connection with 1009.
    pub max_message_size: usize,
    /// Inputs (and acks) per second per player. Default 160 (one per tick at the
    /// fastest tick rate, 128 Hz, with room for jitter);
    /// excess inputs are dropped and counted; a second with more than five
    /// times this closes the connection with 1008.
    pub inputs_per_sec: u32,
    /// Requests per second per connection (burst of the same size).
    /// Default 20; excess requests get `rej rate_limited`; more than five
    /// times this refused in a second closes the connection with 1008.
    pub requests_per_sec: u32,
    /// Rooms per shard. Default 1000; beyond it `create_room` gets
    /// `rej overloaded`.
    pub rooms_per_shard: usize,
    /// Most seats a room may have. Default 64; `create_room` asking for
    /// more gets `rej bad_request`.
    pub max_players_per_room: u32,
    /// Seats of a room created without `max_players` (and by
    /// `join_or_create`). Default 8; a full room answers `rej room_full`.
    pub default_players_per_room: u32,
    /// Time from accept to a complete HTTP request head, the TLS handshake
    /// included on a TLS port. Default 5 s; a slower client (slowloris,
    /// plain or TLS) is disconnected without an answer.
    pub handshake_timeout: Duration,
    /// Control messages (answers, indications) queued for one connection.
    /// Default 256; a connection that lets more pile up is closed 1008
    /// (too slow).
    pub control_queue: usize,
    /// How long a connection's socket may accept no bytes while data waits.
    /// Default 10 s; then it is closed 1008 (too slow). Its room never
    /// waits for it meanwhile: it skips ticks.
    pub send_stall: Duration,
    /// Bytes the kernel may hold unsent per socket (`TCP_NOTSENT_LOWAT`).
    /// Default 4 KiB; 0 leaves the kernel's own (megabytes). Past it the
    /// bytes wait in the connection's queue, where a room skips ticks for
    /// a slow reader instead of queueing seconds of them behind each other
    /// (and behind a close frame and its reason).
    pub send_backlog: usize,
    /// Consecutive undecodable messages before closing with 1007. Default 5.
    pub max_decode_errors: u32,
    /// Spectators per room (`watch_room`). Default 32; beyond it
    /// `rej room_full`. Each costs its room one more tick frame a tick.
    pub max_spectators_per_room: u32,
    /// How far a player may fall behind its room: its newest ack this old,
    /// or this long of ticks its connection could not take. Default 5 s;
    /// then it is closed 1008 (too slow) while the room goes on.
    pub slow_client: Duration,
    /// What games and their players may exchange: message and event
    /// names, values, options, metadata, events per tick, and the time a
    /// game hook may take before it is reported.
    pub game: GameLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            shards: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            pin: true,
            tick_hz: 30,
            limits: Limits::default(),
            drain_timeout: Duration::from_secs(10),
            empty_room_grace: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            token: None,
            admin_token: None,
            auth: None,
            echo: false,
            ping_interval: Duration::from_secs(15),
            ping_timeout: Duration::from_secs(15),
            games: GameRegistry::with_builtin(),
            cluster: None,
            tls: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_per_shard: 0,
            max_message_size: tickforge_protocol::codec::DEFAULT_MAX_MESSAGE,
            inputs_per_sec: 160,
            requests_per_sec: 20,
            rooms_per_shard: 1000,
            max_players_per_room: 64,
            default_players_per_room: 8,
            handshake_timeout: Duration::from_secs(5),
            control_queue: 256,
            send_stall: Duration::from_secs(10),
            send_backlog: 4 * 1024,
            max_decode_errors: 5,
            max_spectators_per_room: 32,
            slow_client: Duration::from_secs(5),
            game: GameLimits::default(),
        }
    }
}

/// A configuration value out of range; names the setting (as its flag).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    /// The setting, named as its command-line flag (`--shards`).
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Connections over all shards when [`Limits::connections_per_shard`] is 0.
pub const DEFAULT_TOTAL_CONNECTIONS: usize = 16_384;

impl ServerConfig {
    /// The connection limit of each shard, [`Limits::connections_per_shard`]
    /// with 0 resolved.
    #[must_use]
    pub fn connections_per_shard(&self) -> usize {
        match self.limits.connections_per_shard {
            0 => (DEFAULT_TOTAL_CONNECTIONS / self.shards.max(1)).max(1),
            n => n,
        }
    }

    /// Checks every value once, so the rest of the server can trust them.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting, problem: String| Err(ConfigError { setting, problem });
        let l = &self.limits;
        if self.shards == 0 || self.shards > 256 {
            return bad("--shards", format!("{} is not in 1..=256", self.shards));
        }
        if !TICK_HZ_RANGE.contains(&self.tick_hz) {
            return bad("--tick-hz", format!("{} is not in 10..=128", self.tick_hz));
        }
        if self.connections_per_shard().saturating_mul(self.shards) > 19_000 {
            return bad(
                "--max-connections",
                format!(
                    "{} per shard x {} shards is over the 19,000 open files this process may use",
                    self.connections_per_shard(),
                    self.shards
                ),
            );
        }
        if l.max_message_size < 128 || l.max_message_size > 64 << 20 {
            return bad("--max-message-size", format!("{} is not in 128..=67108864", l.max_message_size));
        }
        if l.inputs_per_sec == 0 {
            return bad("--max-inputs-per-sec", "must be at least 1".into());
        }
        if l.requests_per_sec == 0 {
            return bad("--max-requests-per-sec", "must be at least 1".into());
        }
        if l.max_players_per_room == 0 {
            return bad("--max-players-per-room", "must be at least 1".into());
        }
        if l.default_players_per_room == 0 || l.default_players_per_room > l.max_players_per_room {
            return bad(
                "--players-per-room",
                format!("{} is not in 1..={}", l.default_players_per_room, l.max_players_per_room),
            );
        }
        if l.control_queue == 0 {
            return bad("--max-control-queue", "must be at least 1".into());
        }
        if l.send_backlog > i32::MAX as usize {
            return bad("--send-backlog", format!("{} is more than {} bytes", l.send_backlog, i32::MAX));
        }
        if l.max_decode_errors == 0 {
            return bad("--max-decode-errors", "must be at least 1".into());
        }
        for (setting, d) in [
            ("--handshake-timeout", l.handshake_timeout),
            ("--send-stall", l.send_stall),
            ("--slow-client", l.slow_client),
            ("--ping-interval", self.ping_interval),
            ("--ping-timeout", self.ping_timeout),
        ] {
            if d.is_zero() {
                return bad(setting, "must be more than 0".into());
            }
        }
        l.game.validate()?;
        if self.auth.is_some() && self.token.is_some() {
            return bad("--token", "cannot be used with --auth-secret: pick the shared token or signed tokens".into());
        }
        if let Some(token) = &self.admin_token {
            // Sent in an Authorization header: visible ASCII, and long
            // enough not to be guessed in the time a 401 takes.
            if token.len() < 8 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return bad("--admin-token", "must be at least 8 visible ASCII characters (no spaces)".into());
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        Ok(())
    }
}

/// Parses a duration with a unit suffix: `500ms`, `10s`, `2m`; a bare
/// number is seconds.
///
/// # Errors
/// A message for a person when the text is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s or 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a byte size with an optional suffix: `65536`, `64k`, `16m`
/// (KiB and MiB).
///
/// # Errors
/// A message for a person when the text is not a size.
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let (num, mult) = if let Some(n) = lower.strip_suffix("kib").or_else(|| lower.strip_suffix('k')) {
        (n, 1024)
    } else if let Some(n) = lower.strip_suffix("mib").or_else(|| lower.strip_suffix('m')) {
        (n, 1024 * 1024)
    } else {
        (lower.as_str(), 1)
    };
    let n: usize = num.trim().parse().map_err(|_| format!("{text:?} is not a size such as 65536, 64k or 16m"))?;
    n.checked_mul(mult).ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = ServerConfig { shards: 2, ..ServerConfig::default() };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn a_bad_value_names_its_flag() {
        let c = ServerConfig { tick_hz: 5, ..ServerConfig::default() };
        assert_eq!(c.validate().unwrap_err().setting, "--tick-hz");
        let mut c = ServerConfig { shards: 8, ..ServerConfig::default() };
        c.limits.connections_per_shard = 5000;
        assert_eq!(c.validate().unwrap_err().setting, "--max-connections");
        let mut c = ServerConfig { shards: 1, ..ServerConfig::default() };
        c.limits.game.max_events_per_tick = 0;
        assert_eq!(c.validate().unwrap_err().setting, "--max-game-events-per-tick");
        c.limits.game = GameLimits::default();
        c.limits.game.max_metadata_bytes = 5000;
        assert_eq!(c.validate().unwrap_err().setting, "--max-metadata-size");
        c.limits.game = GameLimits::default();
        c.limits.game.max_name_bytes = 0;
        assert_eq!(c.validate().unwrap_err().setting, "--max-game-name");
        c.limits.game = GameLimits::default();
        c.limits.game.max_value_bytes = 8192;
        assert_eq!(c.validate().unwrap_err().setting, "--max-game-value-size");
        c.limits.game = GameLimits::default();
        c.limits.game.max_options_bytes = 1;
        assert_eq!(c.validate().unwrap_err().setting, "--max-options-size");
        c.limits.game = GameLimits::default();
        c.limits.game.slow_hook = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().setting, "--slow-game-hook");
    }

    #[test]
    fn an_admin_token_must_be_hard_to_guess_and_fit_a_header() {
        for bad in ["short", "has a space", "tab\there00", "caf\u{e9}-token"] {
            let c = ServerConfig { admin_token: Some(bad.into()), ..ServerConfig::default() };
            assert_eq!(c.validate().unwrap_err().setting, "--admin-token", "{bad:?}");
        }
        let c = ServerConfig { admin_token: Some("0p3rator-t0ken".into()), shards: 1, ..ServerConfig::default() };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn durations_and_sizes_parse_with_suffixes() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_byte_size("64k"), Ok(65536));
        assert_eq!(parse_byte_size("16m"), Ok(16 << 20));
        assert_eq!(parse_byte_size("100"), Ok(100));
        assert!(parse_byte_size("lots").is_err());
    }
}
