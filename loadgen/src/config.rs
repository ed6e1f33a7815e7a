//! [`LoadConfig`]: what one run simulates, validated once before it starts.

use crate::LoadError;
use std::net::IpAddr;
use std::time::Duration;
use tickforge_protocol::Format;

/// One run's parameters. `Default` is WORKLOAD.md's reference load for 100
/// clients against a local server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoadConfig {
    /// The server's WebSocket URL (`ws://HOST:PORT/ws`); `wss` is not spoken.
    pub url: String,
    /// Simulated clients, one socket each. Default 100.
    pub clients: usize,
    /// Players per room: the first client of each group of this many creates
    /// a room with exactly this many seats, the others join it by id.
    /// Default 8.
    pub players_per_room: usize,
    /// Each client asks `join_or_create` on its own instead of groups of
    /// [`Self::players_per_room`] creating and joining rooms: the server
    /// (the cluster) picks and sizes the rooms, and may redirect.
    pub join_or_create: bool,
    /// Inputs per second each client sends (one per tick period). Default 30.
    pub input_hz: u32,
    /// The tick rate asked for in `create_room`; `None` = the server's default.
    pub tick_hz: Option<u32>,
    /// The game to play. Default `arena`.
    pub game: String,
    /// The wire form. Default binary.
    pub format: Format,
    /// Core threads (each with its own io_uring), each pinned to one CPU of
    /// the process's affinity mask (so `taskset` decides which). Default 1.
    pub cores: usize,
    /// Source addresses client sockets bind to, round-robin by client; empty
    /// = the kernel's choice. Several loopback addresses multiply the
    /// ephemeral ports available towards one server port.
    pub source_ips: Vec<IpAddr>,
    /// New connections per second during the ramp-up. Default 500: 10,000
    /// clients ramp in 20 s.
    pub connect_rate: f64,
    /// Time after the ramp-up before measuring (not recorded). Default 5 s.
    pub warmup: Duration,
    /// The measured time. Default 30 s.
    pub duration: Duration,
    /// Bound on one TCP connect. Default 5 s.
    pub connect_timeout: Duration,
    /// Bound on one WebSocket handshake. Default 5 s.
    pub handshake_timeout: Duration,
    /// Bound on one join (room id known and `joined` received). Default 10 s.
    pub join_timeout: Duration,
    /// Sample `full_state_len` once every this many ticks per decoding
    /// client (it re-encodes the whole state). Default 30: once a second at
    /// 30 Hz.
    pub full_state_every: u32,
    /// Every this many clients (by index) one rebuilds the state from every
    /// tick with a `ClientSession` and checks its deltas (an apply failure
    /// is a counted error); the others read each tick's header only, to
    /// ack and time it. Default 8: with 8 players per room, each room's
    /// creator decodes, so every room's deltas are checked, while the
    /// loadgen's CPU stays near the floor's client (rebuilding the state
    /// costs several times what reading a header does). 1 = every client
    /// decodes, as before this option existed.
    pub decode_every: usize,
    /// How long an idle core polls its ring before it sleeps in the kernel
    /// until its next slot. Default 0 (sleep at once). Spinning burns its
    /// CPU while idle but answers a connecting client's events sooner.
    pub spin_before_park: Duration,
    /// Show a progress bar (the binary turns it off when stdout is no TTY).
    pub progress: bool,
    /// Each client drops its socket (no close frame: a network drop) at
    /// this mean interval (uniform in half to one and a half of it) and
    /// takes its seat back with `resume` on a new connection
    /// (`--reconnect-every`). Default none.
    pub reconnect_every: Option<Duration>,
    /// For a `wss://` URL: the PEM certificate(s) the server's chain must
    /// lead to (`--ca FILE`). Default none.
    pub ca: Option<std::path::PathBuf>,
    /// For a `wss://` URL: take any certificate (`--insecure`; the binary
    /// warns on stderr). Default false.
    pub insecure: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            url: "ws://127.0.0.1:7700/ws".into(),
            clients: 100,
            players_per_room: 8,
            join_or_create: false,
            input_hz: 30,
            tick_hz: None,
            game: "arena".into(),
            format: Format::Bin,
            cores: 1,
            source_ips: Vec::new(),
            connect_rate: 500.0,
            warmup: Duration::from_secs(5),
            duration: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            join_timeout: Duration::from_secs(10),
            full_state_every: 30,
            decode_every: 8,
            spin_before_park: Duration::ZERO,
            progress: false,
            ca: None,
            insecure: false,
            reconnect_every: None,
        }
    }
}

impl LoadConfig {
    /// Checks the values that the run cannot start with.
    ///
    /// # Errors
    /// [`LoadError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |what: &str| Err(LoadError::Config(what.into()));
        if self.clients == 0 {
            return bad("--clients must be at least 1");
        }
        if self.reconnect_every.is_some_and(|d| d < Duration::from_millis(100)) {
            return bad("--reconnect-every must be at least 100ms");
        }
        if self.players_per_room == 0 {
            return bad("--players-per-room must be at least 1");
        }
        if !(1..=1000).contains(&self.input_hz) {
            return bad("--input-hz must be within 1..=1000");
        }
        if self.tick_hz.is_some_and(|hz| !(10..=128).contains(&hz)) {
            return bad("--tick-hz must be within 10..=128");
        }
        if self.cores == 0 {
            return bad("--cores must be at least 1");
        }
        if !(self.connect_rate.is_finite() && self.connect_rate > 0.0) {
            return bad("--connect-rate must be a positive number");
        }
        if self.duration.is_zero() {
            return bad("--duration must be more than 0");
        }
        if self.connect_timeout.is_zero() || self.handshake_timeout.is_zero() || self.join_timeout.is_zero() {
            return bad("timeouts must be more than 0");
        }
        if self.full_state_every == 0 {
            return bad("full_state_every must be at least 1");
        }
        if self.decode_every == 0 {
            return bad("--decode-every must be at least 1");
        }
        Ok(())
    }

    /// How long the ramp-up takes: `clients / connect_rate`.
    #[must_use]
    pub fn ramp(&self) -> Duration {
        Duration::from_secs_f64(self.clients.saturating_sub(1) as f64 / self.connect_rate)
    }

    /// The input period.
    #[must_use]
    pub fn input_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.input_hz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_zero_clients_is_not() {
        LoadConfig::default().validate().unwrap();
        let cfg = LoadConfig { clients: 0, ..LoadConfig::default() };
        assert!(matches!(cfg.validate(), Err(LoadError::Config(m)) if m.contains("--clients")));
        let cfg = LoadConfig { tick_hz: Some(500), ..LoadConfig::default() };
        assert!(cfg.validate().is_err());
        let cfg = LoadConfig { decode_every: 0, ..LoadConfig::default() };
        assert!(matches!(cfg.validate(), Err(LoadError::Config(m)) if m.contains("--decode-every")));
    }

    #[test]
    fn ramp_follows_the_connect_rate() {
        let cfg = LoadConfig { clients: 1001, connect_rate: 500.0, ..LoadConfig::default() };
        assert_eq!(cfg.ramp(), Duration::from_secs(2));
    }
}
