//! The cluster's settings: where Redis is, how this node is reached and
//! named, and every interval, timeout and bound of the directory, each
//! with its default and its consequence.

use crate::config::ConfigError;
use std::time::Duration;

/// How long a seat reservation holds its seat (CONTRACT.md, Clusters: 10 s).
pub const RESERVATION_TTL: Duration = Duration::from_secs(10);

/// The contract's bound on how long a dead server stays listed.
pub const DEAD_NODE_BOUND: Duration = Duration::from_secs(10);

/// Everything a node needs to join a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Redis, as `redis://[USER:PASSWORD@]HOST:PORT[/DB]` (`--cluster`).
    pub redis_url: String,
    /// The `ws://` or `wss://` address clients reach this node at, the `url`
    /// of a redirect to it (`--public-url`).
    pub public_url: String,
    /// This node's name in the directory (`--node-id`). Default (empty
    /// here): the `host:port` of [`Self::public_url`]. Two live nodes with
    /// one id would overwrite each other's entries.
    pub node_id: String,
    /// The prefix of every Redis key (`--cluster-prefix`, default
    /// `tickforge`): several clusters can share one Redis.
    pub prefix: String,
    /// How often this node writes its heartbeat (`--cluster-heartbeat`,
    /// default 1 s): 3 commands each time.
    pub heartbeat_interval: Duration,
    /// How long a heartbeat lives (`--cluster-ttl`, default 5 s): a node
    /// that stops heartbeating (killed, cut off) drops out of every other
    /// node's view within this plus [`Self::refresh_interval`]. At least
    /// twice the heartbeat interval, so one late heartbeat is no death;
    /// this plus the refresh interval is at most 10 s (the contract).
    pub heartbeat_ttl: Duration,
    /// How often this node reads the directory into its view
    /// (`--cluster-refresh`, default 1 s): 2 commands plus one per node
    /// whose rooms changed. The view is at most this stale.
    pub refresh_interval: Duration,
    /// How long room changes wait to be written together
    /// (`--cluster-flush`, default 200 ms):
    /// however many joins and leaves happen meanwhile, each changed room is
    /// written once per batch (2-3 commands per batch).
    pub flush_interval: Duration,
    /// The bounded wait of a request to another node (reserve a seat,
    /// create a room) (`--cluster-request-timeout`, default 2 s); then it
    /// fails as timed out.
    pub request_timeout: Duration,
    /// Connect, read and write timeout of one Redis call
    /// (`--redis-timeout`, default 1 s): the longest a helper thread waits
    /// on an unresponsive Redis before calling it lost.
    pub io_timeout: Duration,
    /// Requests to other nodes awaiting an answer at once
    /// (`--cluster-max-requests`, default 1024); beyond it a new one fails
    /// at once as overloaded.
    pub max_in_flight: usize,
    /// Requests from other nodes queued for one shard
    /// (`--cluster-shard-inbox`, default 256);
    /// beyond it they are refused as overloaded.
    pub shard_inbox: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            public_url: String::new(),
            node_id: String::new(),
            prefix: "tickforge".into(),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_ttl: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(1),
            flush_interval: Duration::from_millis(200),
            request_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(1),
            max_in_flight: 1024,
            shard_inbox: 256,
        }
    }
}

impl ClusterConfig {
    /// A configuration for Redis at `redis_url` and clients at `public_url`,
    /// every other setting at its default.
    #[must_use]
    pub fn new(redis_url: impl Into<String>, public_url: impl Into<String>) -> Self {
        Self { redis_url: redis_url.into(), public_url: public_url.into(), ..Self::default() }
    }

    /// The node id in force: [`Self::node_id`], else the public URL's
    /// `host:port` (the scheme's default port when it has none).
    #[must_use]
    pub fn effective_node_id(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        public_host_port(&self.public_url).unwrap_or_else(|| self.public_url.clone())
    }

    /// Redis's address for logs and `/healthz`: `host:port/db`, never the
    /// password.
    #[must_use]
    pub fn redis_display(&self) -> String {
        match redis::Client::open(self.redis_url.as_str()) {
            Ok(c) => {
                let info = c.get_connection_info();
                format!("{}/{}", info.addr, info.redis.db)
            }
            Err(_) => "(bad URL)".into(),
        }
    }

    /// Checks every value once.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the flag of the first bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting, problem: String| Err(ConfigError { setting, problem });
        match redis::Client::open(self.redis_url.as_str()) {
            Ok(_) if self.redis_url.starts_with("redis://") => {}
            Ok(_) => return bad("--cluster", format!("{:?}: use redis://HOST:PORT[/DB]", self.redis_url)),
            Err(e) => return bad("--cluster", format!("{:?} is not a Redis URL: {e}", self.redis_url)),
        }
        if self.public_url.is_empty() {
            return bad(
                "--public-url",
                "required with --cluster: the ws:// or wss:// address clients reach this server at".into(),
            );
        }
        if !(self.public_url.starts_with("ws://") || self.public_url.starts_with("wss://"))
            || public_host_port(&self.public_url).is_none()
        {
            return bad("--public-url", format!("{:?} is not a ws:// or wss:// URL with a host", self.public_url));
        }
        let id = self.effective_node_id();
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("--node-id", format!("{id:?}: 1 to 128 characters, no spaces"));
        }
        if self.prefix.is_empty() || self.prefix.len() > 64 || self.prefix.chars().any(|c| c.is_whitespace()) {
            return bad("--cluster-prefix", format!("{:?}: 1 to 64 characters, no spaces", self.prefix));
        }
        for (setting, d) in [
            ("--cluster-heartbeat", self.heartbeat_interval),
            ("--cluster-refresh", self.refresh_interval),
            ("--cluster-request-timeout", self.request_timeout),
            ("--redis-timeout", self.io_timeout),
            ("--cluster-flush", self.flush_interval),
        ] {
            if d < Duration::from_millis(10) {
                return bad(setting, format!("{d:?} is under 10ms"));
            }
        }
        if self.heartbeat_ttl < self.heartbeat_interval * 2 {
            return bad(
                "--cluster-ttl",
                format!(
                    "{:?} is under twice the heartbeat interval ({:?}): one late heartbeat would drop the node",
                    self.heartbeat_ttl, self.heartbeat_interval
                ),
            );
        }
        if self.heartbeat_ttl + self.refresh_interval > DEAD_NODE_BOUND {
            return bad(
                "--cluster-ttl",
                format!(
                    "{:?} plus the refresh interval {:?} is over 10s: a dead server must leave the listing within 10 s",
                    self.heartbeat_ttl, self.refresh_interval
                ),
            );
        }
        if self.max_in_flight == 0 {
            return bad("--cluster-max-requests", "must be at least 1".into());
        }
        if self.shard_inbox == 0 {
            return bad("--cluster-shard-inbox", "must be at least 1".into());
        }
        Ok(())
    }
}

/// `host:port` of a `ws://` or `wss://` URL (80 or 443 when it has no port).
fn public_host_port(url: &str) -> Option<String> {
    let (rest, default_port) =
        if let Some(r) = url.strip_prefix("wss://") { (r, 443) } else { (url.strip_prefix("ws://")?, 80) };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.is_empty() {
        return None;
    }
    // `[::1]:7700`, `host:7700`, `host`.
    let has_port = match authority.rfind(':') {
        Some(i) => authority[i + 1..].parse::<u16>().is_ok() && !authority[..i].is_empty() && !authority.ends_with(']'),
        None => false,
    };
    Some(if has_port { authority.to_string() } else { format!("{authority}:{default_port}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_defaults_to_the_public_host_and_port() {
        let c = ClusterConfig::new("redis://127.0.0.1:6379", "ws://10.0.0.5:7700/ws");
        assert_eq!(c.effective_node_id(), "10.0.0.5:7700");
        let c = ClusterConfig::new("redis://127.0.0.1:6379", "wss://game.example.com/ws");
        assert_eq!(c.effective_node_id(), "game.example.com:443");
        let c = ClusterConfig::new("redis://127.0.0.1:6379", "ws://[::1]:9000");
        assert_eq!(c.effective_node_id(), "[::1]:9000");
        let c = ClusterConfig { node_id: "a".into(), ..c };
        assert_eq!(c.effective_node_id(), "a");
    }

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_flag() {
        let ok = ClusterConfig::new("redis://127.0.0.1:6379/2", "ws://127.0.0.1:7700");
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.redis_display(), "127.0.0.1:6379/2");
        let setting = |c: ClusterConfig| c.validate().unwrap_err().setting;
        assert_eq!(setting(ClusterConfig { redis_url: "http://x".into(), ..ok.clone() }), "--cluster");
        assert_eq!(setting(ClusterConfig { redis_url: "redis://".into(), ..ok.clone() }), "--cluster");
        assert_eq!(setting(ClusterConfig { public_url: String::new(), ..ok.clone() }), "--public-url");
        assert_eq!(setting(ClusterConfig { public_url: "http://x:1".into(), ..ok.clone() }), "--public-url");
        assert_eq!(setting(ClusterConfig { node_id: "a b".into(), ..ok.clone() }), "--node-id");
        let slow = ClusterConfig { heartbeat_ttl: Duration::from_secs(10), ..ok.clone() };
        assert_eq!(setting(slow), "--cluster-ttl");
        let tight = ClusterConfig { heartbeat_ttl: Duration::from_millis(1500), ..ok.clone() };
        assert_eq!(setting(tight), "--cluster-ttl");
        assert_eq!(setting(ClusterConfig { max_in_flight: 0, ..ok }), "--cluster-max-requests");
    }

    #[test]
    fn the_password_never_shows() {
        let c = ClusterConfig::new("redis://user:secret@10.1.2.3:6380/1", "ws://a:1");
        assert_eq!(c.validate(), Ok(()));
        assert!(!c.redis_display().contains("secret"), "{}", c.redis_display());
    }
}
